//! TCP proxies between the processes of a test cluster, to partition it at process level.
//!
//! One [`Proxy`] per ordered pair (A dials B): A is told to dial B at the proxy's port
//! (`cluster.peer_addresses`, `gateway.cluster.peer_addresses`), and the proxy forwards to
//! B's real port. Each direction of a proxy's connections ("forward": bytes A writes to B;
//! "backward": B's answers to A) can be
//!
//! - **blocked**: the proxy reads the bytes and discards them, keeping both connections
//!   open: the peer goes silent without a FIN or RST (a black hole, a half-open peer), as
//!   when a host dies or a network drops everything. The connections that lost bytes are
//!   closed when the direction is healed (TCP would have given up on them meanwhile: what
//!   was lost can never arrive, and HTTP/2 cannot resume a stream with a hole);
//! - **delayed**: every chunk is held for a fixed time before it is written.
//!
//! [`Net`] holds the proxies of a cluster and speaks of messages: `block(a, b)` drops what
//! `a` sends to `b` whichever connection carries it (the forward direction of proxy (a,b)
//! and the backward direction of proxy (b,a)). Everything is bounded (connections per
//! proxy, chunks queued per direction) and stops when the proxy is dropped.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Most connections one proxy holds at once; more are closed as they arrive.
const MAX_CONNECTIONS: usize = 64;
/// Chunks read but not yet written (delayed) per direction of a connection; the reader
/// waits when they are full.
const QUEUED_CHUNKS: usize = 64;
/// Largest chunk read at once.
const CHUNK: usize = 64 << 10;

/// What happens to one direction of a proxy's connections.
#[derive(Debug, Default)]
struct Direction {
    blocked: AtomicBool,
    delay_ms: AtomicU64,
}

/// One live connection through a proxy.
struct Conn {
    /// Bytes were discarded on it (it is closed at the heal).
    lost: Arc<AtomicBool>,
    stop: CancellationToken,
}

#[derive(Default)]
struct State {
    forward: Direction,
    backward: Direction,
    conns: std::sync::Mutex<Vec<Conn>>,
}

/// A TCP proxy from a local port to `target`.
pub struct Proxy {
    port: u16,
    state: Arc<State>,
    stop: CancellationToken,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Proxy {
    /// Starts a proxy on a free port of 127.0.0.1 to `target` (`host:port`; it need not be
    /// listening yet: each connection dials it when it arrives). The port is none of
    /// `avoid` (ports reserved for processes that have not bound them yet).
    pub async fn start(target: String, avoid: &[u16]) -> Self {
        let mut listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let mut held = Vec::new();
        while avoid.contains(&listener.local_addr().expect("addr").port()) {
            // Keep it bound (so the next bind gets another port), then let it go.
            held.push(listener);
            listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        }
        drop(held);
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(State::default());
        let stop = CancellationToken::new();
        tokio::spawn(accept(listener, target, Arc::clone(&state), stop.clone()));
        Self { port, state, stop }
    }

    /// The address to dial instead of the target.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn direction(&self, forward: bool) -> &Direction {
        if forward {
            &self.state.forward
        } else {
            &self.state.backward
        }
    }

    /// Blocks (discards) or heals one direction; healing closes the connections that lost
    /// bytes.
    pub fn set_blocked(&self, forward: bool, blocked: bool) {
        self.direction(forward)
            .blocked
            .store(blocked, Ordering::SeqCst);
        if !blocked {
            self.close_damaged();
        }
    }

    /// Holds every chunk of one direction for `delay` (zero: none).
    pub fn set_delay(&self, forward: bool, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.direction(forward).delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Closes every connection on which bytes were discarded.
    fn close_damaged(&self) {
        let mut conns = self.state.conns.lock().expect("conns");
        conns.retain(|c| {
            if c.lost.load(Ordering::SeqCst) {
                c.stop.cancel();
            }
            !c.stop.is_cancelled()
        });
    }

    /// Connections open through the proxy now.
    pub fn connections(&self) -> usize {
        let mut conns = self.state.conns.lock().expect("conns");
        conns.retain(|c| !c.stop.is_cancelled());
        conns.len()
    }
}

async fn accept(listener: TcpListener, target: String, state: Arc<State>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((client, _)) = accepted else { continue };
        let conn_stop = stop.child_token();
        let lost = Arc::new(AtomicBool::new(false));
        {
            let mut conns = state.conns.lock().expect("conns");
            conns.retain(|c| !c.stop.is_cancelled());
            if conns.len() >= MAX_CONNECTIONS {
                continue; // dropping `client` closes it
            }
            conns.push(Conn {
                lost: Arc::clone(&lost),
                stop: conn_stop.clone(),
            });
        }
        tokio::spawn(connection(
            client,
            target.clone(),
            Arc::clone(&state),
            lost,
            conn_stop,
        ));
    }
}

/// Relays one connection until either side closes or the proxy stops it.
async fn connection(
    client: TcpStream,
    target: String,
    state: Arc<State>,
    lost: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    let server = tokio::select! {
        () = stop.cancelled() => return,
        s = TcpStream::connect(&target) => s,
    };
    let Ok(server) = server else {
        stop.cancel();
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let forward = pump(cr, sw, Arc::clone(&state), true, Arc::clone(&lost));
    let backward = pump(sr, cw, state, false, lost);
    tokio::select! {
        () = stop.cancelled() => {}
        () = forward => {}
        () = backward => {}
    }
    stop.cancel();
}

/// Copies one direction, applying its block and delay.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: Arc<State>,
    forward: bool,
    lost: Arc<AtomicBool>,
) {
    let (tx, mut rx) = mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(QUEUED_CHUNKS);
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let dir = if forward {
                &state.forward
            } else {
                &state.backward
            };
            if dir.blocked.load(Ordering::SeqCst) {
                lost.store(true, Ordering::SeqCst);
                continue;
            }
            let delay = Duration::from_millis(dir.delay_ms.load(Ordering::SeqCst));
            let at = tokio::time::Instant::now() + delay;
            if tx.send((at, buf[..n].to_vec())).await.is_err() {
                return;
            }
        }
    };
    // The writer ends once the reader has ended and everything queued is written.
    tokio::join!(reader, writer);
}

/// One end of a link: a node (by id) or a gateway (by index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum End {
    Node(u32),
    Gateway(usize),
}

/// The proxies between every process of a cluster that dials another one: node → node and
/// gateway → node.
pub struct Net {
    proxies: BTreeMap<(End, u32), Proxy>,
}

impl Net {
    /// Proxies from each node of `nodes` to every other one, and from each of `gateways`
    /// gateways to every node; `nodes` maps an id to its real `host:port`.
    pub async fn start(nodes: &BTreeMap<u32, String>, gateways: usize) -> Self {
        let avoid: Vec<u16> = nodes
            .values()
            .filter_map(|a| a.rsplit_once(':')?.1.parse().ok())
            .collect();
        let mut proxies = BTreeMap::new();
        for (&to, target) in nodes {
            for &from in nodes.keys().filter(|&&f| f != to) {
                let p = Proxy::start(target.clone(), &avoid).await;
                proxies.insert((End::Node(from), to), p);
            }
            for g in 0..gateways {
                let p = Proxy::start(target.clone(), &avoid).await;
                proxies.insert((End::Gateway(g), to), p);
            }
        }
        Self { proxies }
    }

    /// `id=host:port` of every node `from` dials through a proxy, for
    /// `cluster.peer_addresses` / `gateway.cluster.peer_addresses`.
    pub fn overrides(&self, from: End) -> Vec<String> {
        self.proxies
            .iter()
            .filter(|((f, _), _)| *f == from)
            .map(|((_, to), p)| format!("{to}={}", p.addr()))
            .collect()
    }

    /// The same as a TOML array (an environment variable's value).
    pub fn overrides_env(&self, from: End) -> String {
        let items: Vec<String> = self
            .overrides(from)
            .iter()
            .map(|i| format!("\"{i}\""))
            .collect();
        format!("[{}]", items.join(","))
    }

    /// The proxy of connections `from` opens to node `to`.
    pub fn proxy(&self, from: End, to: u32) -> &Proxy {
        self.proxies
            .get(&(from, to))
            .expect("a proxy for that link")
    }

    /// Both directions of the message flow `from` → `to`: the connections `from` opens
    /// to `to` (forward) and the answers on the connections `to` opens to `from` (backward).
    fn flows(&self, from: End, to: End) -> Vec<(&Proxy, bool)> {
        let mut out = Vec::new();
        if let End::Node(t) = to
            && let Some(p) = self.proxies.get(&(from, t))
        {
            out.push((p, true));
        }
        if let End::Node(f) = from
            && let Some(p) = self.proxies.get(&(to, f))
        {
            out.push((p, false));
        }
        out
    }

    /// Drops (black-holes) everything `from` sends to `to`; connections stay open.
    pub fn block(&self, from: End, to: End) {
        for (p, forward) in self.flows(from, to) {
            p.set_blocked(forward, true);
        }
    }

    /// Lets `from` reach `to` again.
    pub fn heal(&self, from: End, to: End) {
        for (p, forward) in self.flows(from, to) {
            p.set_blocked(forward, false);
        }
    }

    /// Delays everything `from` sends to `to` by `delay`.
    pub fn delay(&self, from: End, to: End, delay: Duration) {
        for (p, forward) in self.flows(from, to) {
            p.set_delay(forward, delay);
        }
    }

    /// Every end that has a link with node `id`.
    fn others(&self, id: u32) -> Vec<End> {
        let mut ends: Vec<End> = self
            .proxies
            .keys()
            .flat_map(|(f, t)| [*f, End::Node(*t)])
            .filter(|e| *e != End::Node(id))
            .collect();
        ends.sort();
        ends.dedup();
        ends
    }

    /// Cuts node `id` off from every node (`gateways` too: from every process) in both
    /// directions.
    pub fn isolate(&self, id: u32, gateways: bool) {
        for e in self.others(id) {
            if matches!(e, End::Gateway(_)) && !gateways {
                continue;
            }
            self.block(End::Node(id), e);
            self.block(e, End::Node(id));
        }
    }

    /// Heals every link and removes every delay.
    pub fn heal_all(&self) {
        for p in self.proxies.values() {
            for forward in [true, false] {
                p.set_delay(forward, Duration::ZERO);
                p.set_blocked(forward, false);
            }
        }
    }
}
