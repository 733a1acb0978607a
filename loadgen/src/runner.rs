//! Running a benchmark: the optional load phase, then the measured phase in closed or open
//! loop, with a progress line every second.
//!
//! # Closed loop
//! `--concurrency` workers each own a [`Target`] (one connection) and issue their next
//! operation as soon as the previous one returns. Latency runs from the actual send.
//!
//! # Open loop
//! Operation `i` is due at `start + i / rate` on a fixed timeline. `--max-in-flight` workers
//! share an atomic ticket counter: a free worker takes the next ticket, sleeps until its due
//! time if that is still ahead, and issues it. A worker that takes a ticket whose due time
//! has already passed counts a *late start*: at that due time every in-flight slot was busy.
//! A late operation's latency runs from its *due* time, so when every worker is stuck behind
//! a slow response the operations that queue up behind it carry that wait in their latency
//! (no coordinated omission). An operation taken in time runs from when the timer woke its
//! worker (at the due time plus at most the timer's 1 ms granularity), so timer slop is not
//! charged to the server.
//!
//! # Ending
//! Both loops stop by themselves: at `warmup + duration` (no new operation starts after it;
//! in open loop, no ticket due after it is taken) and/or once `--ops` measured operations have
//! been claimed. Operations that start during the warmup are not recorded.

use crate::keys::{KeyChooser, key_name};
use crate::options::{BenchOptions, TargetKind};
use crate::progress::progress_loop;
use crate::report::{Figures, LoadReport, ModeReport, Report, SCHEMA};
use crate::stats::Recorder;
use crate::target::etcd::EtcdTarget;
use crate::target::redis::RedisTarget;
use crate::target::tierkv::TierKvTarget;
use crate::target::{OpError, OpResult, Target};
use crate::workload::{OpKind, Workload};
use anyhow::Context as _;
use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Runs the benchmark described by `opts` against its target and returns the report.
pub async fn run(opts: &BenchOptions) -> anyhow::Result<Report> {
    opts.validate()?;
    let endpoint = opts.endpoint();
    let addr: SocketAddr = tokio::net::lookup_host(&endpoint)
        .await
        .with_context(|| format!("resolving {endpoint}"))?
        .next()
        .with_context(|| format!("{endpoint} resolved to no address"))?;
    let host = endpoint.clone();
    let consistency = opts.consistency;
    match opts.target {
        TargetKind::Tierkv => {
            let staleness = opts.max_staleness.clone();
            let key = opts.api_key.clone();
            run_with(opts, move || {
                TierKvTarget::new(addr, &host, consistency, staleness.clone())
                    .with_api_key(key.as_deref())
            })
            .await
        }
        TargetKind::Etcd => run_with(opts, move || EtcdTarget::new(addr, &host, consistency)).await,
        TargetKind::Redis => run_with(opts, move || RedisTarget::new(addr)).await,
    }
}

/// Runs the benchmark with targets built by `make` (one per worker).
pub async fn run_with<T, F>(opts: &BenchOptions, make: F) -> anyhow::Result<Report>
where
    T: Target,
    F: Fn() -> T + Send + Sync + 'static,
{
    opts.validate()?;
    let make = Arc::new(make);
    let load = if opts.load || opts.load_only {
        Some(load_phase(opts, &make).await)
    } else {
        None
    };
    let (figures, elapsed) = if opts.load_only {
        (Figures::from_recorder(&Recorder::default()), Duration::ZERO)
    } else {
        measured_phase(opts, &make).await?
    };
    let elapsed_secs = elapsed.as_secs_f64();
    Ok(Report {
        schema: SCHEMA.to_owned(),
        target: opts.target.to_string(),
        endpoint: opts.endpoint(),
        workload: opts.workload.to_string(),
        distribution: match opts.distribution {
            crate::keys::Distribution::Uniform => "uniform".to_owned(),
            crate::keys::Distribution::Zipfian => "zipfian".to_owned(),
        },
        zipf_theta: (opts.distribution == crate::keys::Distribution::Zipfian).then_some(opts.theta),
        keys: opts.keys,
        value_size: opts.value_size,
        ttl_secs: opts.workload.uses_ttl().then_some(opts.ttl),
        consistency: opts.consistency.map(|c| c.to_string()),
        mode: ModeReport {
            kind: if opts.rate.is_some() {
                "open"
            } else {
                "closed"
            }
            .to_owned(),
            workers: opts.workers(),
            rate: opts.rate,
        },
        warmup_secs: opts.warmup.as_secs_f64(),
        elapsed_secs,
        total_ops: figures.total_ops,
        ops_per_sec: if elapsed_secs > 0.0 {
            figures.total_ops as f64 / elapsed_secs
        } else {
            0.0
        },
        ok: figures.ok,
        not_found: figures.not_found,
        conflicts: figures.conflicts,
        errors: figures.errors,
        late_starts: figures.late_starts,
        latency_us: figures.latency_us,
        ops: figures.ops,
        errors_by_kind: figures.errors_by_kind,
        load,
    })
}

/// A value of `size` printable bytes.
fn make_value(rng: &mut SmallRng, size: usize) -> Bytes {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..size)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
        .collect::<Vec<u8>>()
        .into()
}

fn worker_rng(seed: u64, worker: usize) -> SmallRng {
    SmallRng::seed_from_u64(seed ^ (worker as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Runs one operation under `--timeout`; a timeout drops the target's connection.
async fn timed_op<T: Target>(
    target: &mut T,
    kind: OpKind,
    key: &str,
    value: &Bytes,
    ttl: Option<u32>,
    timeout: Duration,
) -> OpResult {
    let fut = async {
        match kind {
            OpKind::Read => target.read(key).await,
            OpKind::Update => target.update(key, value.clone(), ttl).await,
            OpKind::Rmw => target.rmw(key, value.clone()).await,
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => {
            target.reset();
            Err(OpError::Timeout)
        }
    }
}

/// Writes every key once with `--concurrency` workers.
async fn load_phase<T, F>(opts: &BenchOptions, make: &Arc<F>) -> LoadReport
where
    T: Target,
    F: Fn() -> T + Send + Sync + 'static,
{
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..opts.concurrency {
        let (next, errors, make) = (next.clone(), errors.clone(), make.clone());
        let (keys, value_size, seed, timeout) =
            (opts.keys, opts.value_size, opts.seed, opts.timeout);
        tasks.push(tokio::spawn(async move {
            let mut target = make();
            let mut rng = worker_rng(seed, w);
            let value = make_value(&mut rng, value_size);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= keys {
                    break;
                }
                let key = key_name(i);
                let r = timed_op(&mut target, OpKind::Update, &key, &value, None, timeout).await;
                if r.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        // A panicking worker is a bug; its keys simply stay unwritten.
        let _ = t.await;
    }
    LoadReport {
        ops: opts.keys,
        errors: errors.load(Ordering::Relaxed),
        elapsed_secs: start.elapsed().as_secs_f64(),
    }
}

/// What every worker of the measured phase shares.
struct Plan {
    workload: Workload,
    keys: KeyChooser,
    value_size: usize,
    ttl: Option<u32>,
    timeout: Duration,
    seed: u64,
    start: Instant,
    /// End of warmup: operations starting (closed) or due (open) before it are not recorded.
    measure_from: Instant,
    /// No operation starts (closed) or is due (open) at or after this.
    deadline: Option<Instant>,
    /// Most measured operations.
    ops_limit: Option<u64>,
    /// Measured operations claimed so far (closed loop).
    claimed: AtomicU64,
    /// Open loop: next ticket and ticket interval.
    rate: Option<f64>,
    next_ticket: AtomicU64,
    /// Open loop: the first ticket due at or after `measure_from`.
    first_measured_ticket: u64,
}

impl Plan {
    fn due(&self, ticket: u64, rate: f64) -> Instant {
        self.start + Duration::from_secs_f64(ticket as f64 / rate)
    }
}

async fn measured_phase<T, F>(
    opts: &BenchOptions,
    make: &Arc<F>,
) -> anyhow::Result<(Figures, Duration)>
where
    T: Target,
    F: Fn() -> T + Send + Sync + 'static,
{
    let keys = KeyChooser::new(opts.distribution, opts.keys, opts.theta, opts.seed)?;
    let start = Instant::now();
    let measure_from = start + opts.warmup;
    let plan = Arc::new(Plan {
        workload: opts.workload,
        keys,
        value_size: opts.value_size,
        ttl: opts.workload.uses_ttl().then_some(opts.ttl),
        timeout: opts.timeout,
        seed: opts.seed,
        start,
        measure_from,
        deadline: opts.effective_duration().map(|d| measure_from + d),
        ops_limit: opts.ops,
        claimed: AtomicU64::new(0),
        rate: opts.rate,
        next_ticket: AtomicU64::new(0),
        first_measured_ticket: opts
            .rate
            .map(|r| (opts.warmup.as_secs_f64() * r).ceil() as u64)
            .unwrap_or(0),
    });

    let recorders: Vec<Arc<Mutex<Recorder>>> = (0..opts.workers())
        .map(|_| Arc::new(Mutex::new(Recorder::default())))
        .collect();
    let (stop_progress, progress) = if opts.quiet {
        (None, None)
    } else {
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(progress_loop(
            plan.start,
            plan.measure_from,
            recorders.clone(),
            rx,
        ));
        (Some(tx), Some(task))
    };

    let mut tasks = Vec::new();
    for (w, rec) in recorders.iter().enumerate() {
        let (plan, rec, make) = (plan.clone(), rec.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let target = make();
            match plan.rate {
                Some(rate) => open_worker(&plan, rate, target, w, &rec).await,
                None => closed_worker(&plan, target, w, &rec).await,
            }
        }));
    }
    for t in tasks {
        t.await.context("a worker panicked")?;
    }
    let end = Instant::now();
    if let Some(tx) = stop_progress {
        let _ = tx.send(());
    }
    if let Some(task) = progress {
        let _ = task.await;
    }

    let mut all = Recorder::default();
    for r in &recorders {
        all.merge(&r.lock().unwrap_or_else(|p| p.into_inner()));
    }
    Ok((
        Figures::from_recorder(&all),
        end.saturating_duration_since(measure_from),
    ))
}

fn record(rec: &Mutex<Recorder>, kind: OpKind, latency: Duration, result: &OpResult, late: bool) {
    // A poisoned lock means another thread panicked mid-record; keep counting anyway.
    let mut r = rec.lock().unwrap_or_else(|p| p.into_inner());
    r.record(kind, latency, result);
    if late {
        r.late_starts += 1;
    }
}

async fn closed_worker<T: Target>(plan: &Plan, mut target: T, w: usize, rec: &Mutex<Recorder>) {
    let mut rng = worker_rng(plan.seed, w);
    let value = make_value(&mut rng, plan.value_size);
    loop {
        let now = Instant::now();
        if plan.deadline.is_some_and(|d| now >= d) {
            break;
        }
        let measured = now >= plan.measure_from;
        if measured
            && let Some(limit) = plan.ops_limit
            && plan.claimed.fetch_add(1, Ordering::Relaxed) >= limit
        {
            break;
        }
        let kind = plan.workload.next_op(&mut rng);
        let key = key_name(plan.keys.next(&mut rng));
        let sent = Instant::now();
        let result = timed_op(&mut target, kind, &key, &value, plan.ttl, plan.timeout).await;
        if measured {
            record(rec, kind, sent.elapsed(), &result, false);
        }
    }
}

async fn open_worker<T: Target>(
    plan: &Plan,
    rate: f64,
    mut target: T,
    w: usize,
    rec: &Mutex<Recorder>,
) {
    let mut rng = worker_rng(plan.seed, w);
    let value = make_value(&mut rng, plan.value_size);
    loop {
        let ticket = plan.next_ticket.fetch_add(1, Ordering::Relaxed);
        let due = plan.due(ticket, rate);
        if plan.deadline.is_some_and(|d| due >= d) {
            break;
        }
        let measured = ticket >= plan.first_measured_ticket;
        if measured
            && let Some(limit) = plan.ops_limit
            && ticket - plan.first_measured_ticket >= limit
        {
            break;
        }
        // Late: every slot was busy when this op fell due, so its wait is server-caused
        // queueing and counts from `due`. Otherwise the timer wakes us at `due` plus its
        // granularity (up to 1 ms), a generator artifact that must not count.
        let late = Instant::now() > due;
        let start = if late {
            due
        } else {
            tokio::time::sleep_until(due).await;
            Instant::now()
        };
        let kind = plan.workload.next_op(&mut rng);
        let key = key_name(plan.keys.next(&mut rng));
        let result = timed_op(&mut target, kind, &key, &value, plan.ttl, plan.timeout).await;
        if measured {
            record(rec, kind, start.elapsed(), &result, late);
        }
    }
}
