//! YCSB workloads: which operation comes next.

use rand::Rng;
use std::fmt;

/// A named workload (YCSB letters plus `w` and `ttl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Workload {
    /// 50% read, 50% update.
    A,
    /// 95% read, 5% update.
    B,
    /// 100% read.
    C,
    /// 100% update (write).
    W,
    /// YCSB F: 50% read, 50% read-modify-write (GET, then a conditional PUT).
    F,
    /// 100% writes with a TTL (`--ttl`).
    Ttl,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::A => "a",
            Self::B => "b",
            Self::C => "c",
            Self::W => "w",
            Self::F => "f",
            Self::Ttl => "ttl",
        })
    }
}

/// One operation type. The index order is the order used in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// Point read.
    Read,
    /// Blind write (with a TTL in the `ttl` workload).
    Update,
    /// Read-modify-write with a version check.
    Rmw,
}

impl OpKind {
    /// Every kind, in report order.
    pub const ALL: [OpKind; 3] = [OpKind::Read, OpKind::Update, OpKind::Rmw];

    /// Stable lowercase name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Update => "update",
            Self::Rmw => "rmw",
        }
    }

    /// Dense index into per-kind arrays.
    pub fn index(self) -> usize {
        match self {
            Self::Read => 0,
            Self::Update => 1,
            Self::Rmw => 2,
        }
    }
}

/// The proportions of a workload; they sum to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix {
    /// Share of reads.
    pub read: f64,
    /// Share of updates.
    pub update: f64,
    /// Share of read-modify-writes.
    pub rmw: f64,
}

impl Workload {
    /// The operation mix.
    pub fn mix(self) -> Mix {
        let (read, update, rmw) = match self {
            Self::A => (0.5, 0.5, 0.0),
            Self::B => (0.95, 0.05, 0.0),
            Self::C => (1.0, 0.0, 0.0),
            Self::W | Self::Ttl => (0.0, 1.0, 0.0),
            Self::F => (0.5, 0.0, 0.5),
        };
        Mix { read, update, rmw }
    }

    /// Whether writes carry a TTL.
    pub fn uses_ttl(self) -> bool {
        matches!(self, Self::Ttl)
    }

    /// Draws the next operation kind.
    pub fn next_op<R: Rng + ?Sized>(self, rng: &mut R) -> OpKind {
        let m = self.mix();
        let u: f64 = rng.random();
        if u < m.read {
            OpKind::Read
        } else if u < m.read + m.update {
            OpKind::Update
        } else if m.rmw > 0.0 {
            OpKind::Rmw
        } else if m.update > 0.0 {
            OpKind::Update
        } else {
            OpKind::Read
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn workload_mix_ratios_within_tolerance() {
        const DRAWS: usize = 10_000;
        let all = [
            Workload::A,
            Workload::B,
            Workload::C,
            Workload::W,
            Workload::F,
            Workload::Ttl,
        ];
        let mut rng = SmallRng::seed_from_u64(99);
        for w in all {
            let mut n = [0usize; 3];
            for _ in 0..DRAWS {
                n[w.next_op(&mut rng).index()] += 1;
            }
            let m = w.mix();
            assert!((m.read + m.update + m.rmw - 1.0).abs() < 1e-9);
            for (kind, want) in [
                (OpKind::Read, m.read),
                (OpKind::Update, m.update),
                (OpKind::Rmw, m.rmw),
            ] {
                let got = n[kind.index()] as f64 / DRAWS as f64;
                // 3 sigma of a binomial at p = 0.5 over 10k draws is 0.015.
                assert!(
                    (got - want).abs() < 0.02,
                    "{w} {}: got {got:.3}, want {want}",
                    kind.name()
                );
            }
        }
    }
}
