//! Command-line options (`tierkv-bench --help`). The library takes the parsed struct, so
//! tests build runs with `BenchOptions::try_parse_from([...])` exactly as a user would.

use crate::keys::Distribution;
use crate::target::Consistency;
use crate::workload::Workload;
use clap::Parser;
use std::fmt;
use std::time::Duration;

/// Which system to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum TargetKind {
    /// TierKV HTTP API.
    Tierkv,
    /// etcd v3 JSON gateway.
    Etcd,
    /// Redis (RESP over TCP).
    Redis,
}

impl TargetKind {
    /// The endpoint used when `--endpoint` is not given.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Self::Tierkv => "127.0.0.1:8080",
            Self::Etcd => "127.0.0.1:2379",
            Self::Redis => "127.0.0.1:6379",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tierkv => "tierkv",
            Self::Etcd => "etcd",
            Self::Redis => "redis",
        })
    }
}

/// YCSB-style load generator for TierKV, etcd and Redis.
///
/// Closed loop by default (`--concurrency` workers, each issuing its next operation when the
/// previous one returns). `--rate` switches to open loop: operations are scheduled on a fixed
/// timeline and latency is measured from each operation's intended start.
#[derive(Debug, Clone, Parser)]
#[command(name = "tierkv-bench", version)]
pub struct BenchOptions {
    /// System under test. Default: tierkv.
    #[arg(long, value_enum, default_value_t = TargetKind::Tierkv)]
    pub target: TargetKind,

    /// `host:port` (an `http://` prefix is accepted). Default: 127.0.0.1:8080 (tierkv),
    /// :2379 (etcd), :6379 (redis).
    #[arg(long)]
    pub endpoint: Option<String>,

    /// Workload: a (50/50 read/update), b (95/5), c (read only), w (write only),
    /// f (50% read, 50% read-modify-write), ttl (writes with `--ttl`). Default: a.
    #[arg(long, short = 'w', value_enum, default_value_t = Workload::A)]
    pub workload: Workload,

    /// Number of distinct keys (`user0000000000` ...). Default: 100000.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,

    /// Key popularity. Default: zipfian.
    #[arg(long, value_enum, default_value_t = Distribution::Zipfian)]
    pub distribution: Distribution,

    /// Zipfian skew, in (0, 1). Default: 0.99.
    #[arg(long, default_value_t = 0.99)]
    pub theta: f64,

    /// Value size in bytes. Default: 256.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,

    /// TTL in seconds for the `ttl` workload. Default: 60.
    #[arg(long, default_value_t = 60)]
    pub ttl: u32,

    /// Read consistency (tierkv: `?consistency=`; etcd: eventual = serializable).
    /// Default: the server's default.
    #[arg(long, value_enum)]
    pub consistency: Option<Consistency>,

    /// TierKV, `--consistency eventual` only: the reads' `max_staleness` (`<n>ms` or `<n>s`),
    /// how stale an answer from the gateway's cache may be. Default: the gateway's default.
    #[arg(long, value_name = "BOUND")]
    pub max_staleness: Option<String>,

    /// Closed-loop workers (one connection each). Default: 32.
    #[arg(long, short = 'c', default_value_t = 32)]
    pub concurrency: usize,

    /// Open loop: target operations per second.
    #[arg(long, short = 'r')]
    pub rate: Option<f64>,

    /// Open loop: most operations in flight (= connections). Default: `--concurrency`.
    #[arg(long)]
    pub max_in_flight: Option<usize>,

    /// Measured run time (after warmup). Default: 10s unless `--ops` is given.
    #[arg(long, short = 'd', value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,

    /// Stop after this many measured operations.
    #[arg(long, short = 'n')]
    pub ops: Option<u64>,

    /// Run this long before measuring; those operations are not reported. Default: 0s.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub warmup: Duration,

    /// Write every key once before the run so reads hit.
    #[arg(long, alias = "preload")]
    pub load: bool,

    /// Only run the load phase.
    #[arg(long)]
    pub load_only: bool,

    /// Per-operation timeout; the connection is reopened after one. Default: 10s.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub timeout: Duration,

    /// RNG seed (key choice, op mix, values, zipfian scrambling). Default: 1.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// TierKV: the API key sent as `Authorization: Bearer <key>` with every request (design
    /// note 0012; `tierkv dev` prints one and keeps it in `<data_dir>/admin.key`).
    #[arg(
        long,
        env = "TIERKV_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,

    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    /// No progress line on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Invalid option combinations.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// `--keys 0`.
    #[error("--keys must be at least 1")]
    NoKeys,
    /// `--concurrency 0` or `--max-in-flight 0`.
    #[error("--concurrency and --max-in-flight must be at least 1")]
    NoWorkers,
    /// `--rate` not a positive finite number.
    #[error("--rate must be a positive number of operations per second, got {rate}")]
    BadRate {
        /// The rejected rate.
        rate: f64,
    },
    /// `--theta` outside (0, 1).
    #[error("--theta must be in (0, 1), got {theta}")]
    BadTheta {
        /// The rejected value.
        theta: f64,
    },
    /// `--ttl 0` with the ttl workload.
    #[error("--ttl must be at least 1 second")]
    BadTtl,
}

impl BenchOptions {
    /// Checks option combinations clap cannot express.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.keys == 0 {
            return Err(OptionsError::NoKeys);
        }
        if self.concurrency == 0 || self.max_in_flight == Some(0) {
            return Err(OptionsError::NoWorkers);
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(OptionsError::BadRate { rate });
        }
        if !(self.theta > 0.0 && self.theta < 1.0) {
            return Err(OptionsError::BadTheta { theta: self.theta });
        }
        if self.workload.uses_ttl() && self.ttl == 0 {
            return Err(OptionsError::BadTtl);
        }
        Ok(())
    }

    /// The endpoint without any `http://` prefix.
    pub fn endpoint(&self) -> String {
        let e = self
            .endpoint
            .as_deref()
            .unwrap_or(self.target.default_endpoint());
        let e = e.strip_prefix("http://").unwrap_or(e);
        e.trim_end_matches('/').to_owned()
    }

    /// The measured duration bound: `--duration`, or 10s when neither it nor `--ops` is set.
    pub fn effective_duration(&self) -> Option<Duration> {
        match (self.duration, self.ops) {
            (Some(d), _) => Some(d),
            (None, Some(_)) => None,
            (None, None) => Some(Duration::from_secs(10)),
        }
    }

    /// Number of workers (connections) for the measured phase.
    pub fn workers(&self) -> usize {
        match self.rate {
            Some(_) => self.max_in_flight.unwrap_or(self.concurrency),
            None => self.concurrency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_defaults_and_validation() {
        let o = BenchOptions::try_parse_from(["tierkv-bench"]).expect("parses");
        assert_eq!(o.target, TargetKind::Tierkv);
        assert_eq!(o.keys, 100_000);
        assert_eq!(o.value_size, 256);
        assert_eq!(o.effective_duration(), Some(Duration::from_secs(10)));
        assert_eq!(o.endpoint(), "127.0.0.1:8080");
        assert!(o.validate().is_ok());

        let o = BenchOptions::try_parse_from([
            "tierkv-bench",
            "--target=redis",
            "--ops=10",
            "--rate=100",
            "--max-in-flight=4",
            "--preload",
        ])
        .expect("parses");
        assert_eq!(o.endpoint(), "127.0.0.1:6379");
        assert_eq!(o.effective_duration(), None);
        assert_eq!(o.workers(), 4);
        assert!(o.load);

        let o = BenchOptions::try_parse_from(["tierkv-bench", "--theta=1.0"]).expect("parses");
        assert_eq!(o.validate(), Err(OptionsError::BadTheta { theta: 1.0 }));
        let o = BenchOptions::try_parse_from(["tierkv-bench", "--rate=0"]).expect("parses");
        assert_eq!(o.validate(), Err(OptionsError::BadRate { rate: 0.0 }));
        let o = BenchOptions::try_parse_from(["tierkv-bench", "--endpoint=http://h:1/"])
            .expect("parses");
        assert_eq!(o.endpoint(), "h:1");
    }
}
