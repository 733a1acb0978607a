//! [`Listener`]: a TCP listener that serves plain HTTP or TLS, and [`serve`], which runs an
//! axum router on it with each connection's [`Peer`] in every request's extensions.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use axum::serve::IncomingStream;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;

use crate::figures::{LISTENER, TlsFigures};
use crate::load::server_config;
use crate::reload::watch;
use crate::settings::{ServerTlsSettings, TlsError};

/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes under way at once; past it the listener stops accepting until one ends
/// (connections wait in the kernel's backlog), so idle connections cannot pile up tasks.
const MAX_HANDSHAKES: usize = 1024;

/// Who is at the other end of a connection, in every request's extensions (also as
/// `ConnectInfo<SocketAddr>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// The client presented a certificate that this listener verified against its
    /// `client_ca_file` during the handshake (never true without TLS).
    pub client_cert: bool,
}

/// A connection of a [`Listener`]: plain TCP or TLS over TCP.
pub type Io = Either<TcpStream, TlsStream<TcpStream>>;

/// A listener serving plain HTTP, or TLS with the configuration current at each handshake.
pub struct Listener {
    tcp: TcpListener,
    /// The configuration new handshakes use (swapped by the reload task); `None`: plain.
    tls: Option<Arc<ArcSwap<ServerConfig>>>,
    /// The reloads of `tls` and its certificate's expiry (`None`: plain).
    figures: Option<Arc<TlsFigures>>,
    /// Handshakes under way; `accept` returns the ones that complete.
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, Peer)>>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("addr", &self.tcp.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl From<TcpListener> for Listener {
    fn from(tcp: TcpListener) -> Self {
        Self {
            tcp,
            tls: None,
            figures: None,
            handshakes: JoinSet::new(),
        }
    }
}

impl Listener {
    /// `tcp` with the TLS of `settings` (plain when it names no certificate). Loads the files
    /// now (an error names the setting and the file) and watches them for changes every
    /// `settings.reload_interval`, counting the reloads in [`Self::figures`].
    pub fn new(tcp: TcpListener, settings: &ServerTlsSettings) -> Result<Self, TlsError> {
        settings.validate()?;
        if !settings.enabled() {
            return Ok(Self::from(tcp));
        }
        let (cfg, not_after) = server_config(settings)?;
        let current = Arc::new(ArcSwap::from_pointee(cfg));
        let figures = Arc::new(TlsFigures::new(LISTENER, not_after));
        let files = [
            &settings.cert_file,
            &settings.key_file,
            &settings.client_ca_file,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        let s = settings.clone();
        watch(
            "tls",
            &figures,
            files,
            settings.reload_interval,
            &current,
            move || server_config(&s),
        );
        Ok(Self {
            tcp,
            tls: Some(current),
            figures: Some(figures),
            handshakes: JoinSet::new(),
        })
    }

    /// The reloads of the TLS configuration and its certificate's expiry (`what` =
    /// [`LISTENER`]); `None` for a plain listener. Take it before serving: [`serve`] consumes
    /// the listener.
    #[must_use]
    pub fn figures(&self) -> Option<Arc<TlsFigures>> {
        self.figures.clone()
    }

    /// Whether connections are TLS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The URL scheme clients use: `https` or `http`.
    #[must_use]
    pub fn scheme(&self) -> &'static str {
        if self.is_tls() { "https" } else { "http" }
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// The next TCP connection (with `TCP_NODELAY`: answers written in parts leave at once);
/// errors are logged and retried as axum's own listener does.
async fn accept_tcp(tcp: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match tcp.accept().await {
            Ok((s, addr)) => {
                if let Err(e) = s.set_nodelay(true) {
                    tracing::debug!(error = %e, "setting TCP_NODELAY");
                }
                return (s, addr);
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // Out of file descriptors and the like: do not spin.
                tracing::error!(error = %e, "accepting a connection");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// One handshake, bounded in time; `None` when it failed (logged at debug level: a port
/// scanner or a client without the right certificate is not the server's problem).
async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    addr: SocketAddr,
) -> Option<(TlsStream<TcpStream>, Peer)> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => {
            let client_cert = s.get_ref().1.peer_certificates().is_some();
            Some((s, Peer { addr, client_cert }))
        }
        Ok(Err(e)) => {
            tracing::debug!(peer = %addr, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(peer = %addr, "TLS handshake timed out");
            None
        }
    }
}

impl axum::serve::Listener for Listener {
    type Io = Io;
    type Addr = Peer;

    async fn accept(&mut self) -> (Io, Peer) {
        let Self {
            tcp,
            tls,
            handshakes,
            ..
        } = self;
        let Some(tls) = tls else {
            let (s, addr) = accept_tcp(tcp).await;
            return (
                Either::Left(s),
                Peer {
                    addr,
                    client_cert: false,
                },
            );
        };
        loop {
            tokio::select! {
                (s, addr) = accept_tcp(tcp), if handshakes.len() < MAX_HANDSHAKES => {
                    let acceptor = TlsAcceptor::from(tls.load_full());
                    handshakes.spawn(handshake(acceptor, s, addr));
                }
                Some(done) = handshakes.join_next(), if !handshakes.is_empty() => {
                    if let Ok(Some((s, peer))) = done {
                        return (Either::Right(s), peer);
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Peer> {
        Ok(Peer {
            addr: self.tcp.local_addr()?,
            client_cert: false,
        })
    }
}

/// Serves `router` on `listener` until `shutdown` (then drains, as `axum::serve` does). Each
/// request carries its connection's [`Peer`] and `ConnectInfo<SocketAddr>` in its
/// extensions.
pub async fn serve(
    listener: Listener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, MakePeerService { router })
        .with_graceful_shutdown(shutdown)
        .await
}

/// Makes each connection's service: the router with the connection's peer.
#[derive(Clone)]
struct MakePeerService {
    router: Router,
}

impl<'a> tower::Service<IncomingStream<'a, Listener>> for MakePeerService {
    type Response = PeerService;
    type Error = Infallible;
    type Future = std::future::Ready<Result<PeerService, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'a, Listener>) -> Self::Future {
        std::future::ready(Ok(PeerService {
            router: self.router.clone(),
            peer: *stream.remote_addr(),
        }))
    }
}

/// The router of one connection: puts the peer into each request's extensions.
#[derive(Clone)]
struct PeerService {
    router: Router,
    peer: Peer,
}

impl tower::Service<Request> for PeerService {
    type Response = Response;
    type Error = Infallible;
    type Future = <Router as tower::Service<Request>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        req.extensions_mut().insert(self.peer);
        req.extensions_mut().insert(ConnectInfo(self.peer.addr));
        self.router.call(req)
    }
}
