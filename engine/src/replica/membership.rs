//! Configurations of a shard's replica set (design note 0009): who votes, and what a quorum
//! is while the set changes.
//!
//! A configuration is *steady* (one voter set `C`) or *joint* (`C_old`, `C_new`) during a
//! change. A quorum of a steady configuration is a quorum of `C`; of a joint one, a quorum
//! of `C_old` **and** a quorum of `C_new`, so that every quorum of the joint configuration
//! intersects every quorum of either half. Learners (replicas the leader replicates to that
//! are not voters) appear in no configuration: nothing ever counts them.
//!
//! Quorum sizes keep the write quorum `W` of the settings: a set of `k` voters needs
//! `max(k / 2 + 1, k − (N − W))` of them, where `N − W` is the number of failures the
//! shard's settings tolerate (with the default `W` a majority, this is a majority).
//! Any two quorums of one set intersect because each is a majority.
//!
//! # Encoding (inside replication messages of format version 2, see [`super::msg`])
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | u8 | tag: 1 steady, 2 joint |
//! | 1 | u16 | voter count of the (old) set, then that many u32 node ids in rank order |
//! | ... | u16 | joint only: voter count of the new set, then its u32 node ids |
//!
//! A set must be non-empty, at most [`MAX_VOTERS`] ids, without duplicates.

use crate::codec::{Dec, DecodeError, Enc};

use super::NodeId;

/// Most voters in one set of a configuration (a shard has a handful of replicas; the bound
/// keeps a damaged length from allocating).
pub const MAX_VOTERS: usize = 64;

const TAG_STEADY: u8 = 1;
const TAG_JOINT: u8 = 2;

/// A configuration of the shard's replica set: whose acks and promises count.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Membership {
    /// One voter set, in rank order (the first goes first in a takeover and is the
    /// preferred leader).
    Steady(Vec<NodeId>),
    /// A change from `old` to `new` in progress: a quorum needs a quorum of each.
    Joint {
        /// The set being left.
        old: Vec<NodeId>,
        /// The set being entered (its rank order is the order after the change).
        new: Vec<NodeId>,
    },
}

impl Membership {
    /// Whether `node` is a voter (of either half, for a joint configuration).
    #[must_use]
    pub fn is_voter(&self, node: NodeId) -> bool {
        // Without `halves()`: the node's status publishing asks this after every step.
        match self {
            Self::Steady(v) => v.contains(&node),
            Self::Joint { old, new } => old.contains(&node) || new.contains(&node),
        }
    }

    /// Whether this is a joint configuration.
    #[must_use]
    pub fn is_joint(&self) -> bool {
        matches!(self, Self::Joint { .. })
    }

    /// The voter sets whose quorums are all needed: one for steady, two for joint.
    #[must_use]
    pub fn halves(&self) -> Vec<&[NodeId]> {
        match self {
            Self::Steady(v) => vec![v.as_slice()],
            Self::Joint { old, new } => vec![old.as_slice(), new.as_slice()],
        }
    }

    /// Every voter once, in rank order: the new set's first (they lead after the change),
    /// then the old set's others.
    #[must_use]
    pub fn voters(&self) -> Vec<NodeId> {
        match self {
            Self::Steady(v) => v.clone(),
            Self::Joint { old, new } => {
                let mut all = new.clone();
                all.extend(old.iter().filter(|n| !new.contains(n)));
                all
            }
        }
    }

    /// The set this configuration ends in: the steady set, or a joint one's new set.
    #[must_use]
    pub fn destination(&self) -> &[NodeId] {
        match self {
            Self::Steady(v) => v,
            Self::Joint { new, .. } => new,
        }
    }

    /// Whether the replicas for which `holds` is true form a quorum. Only voters are looked
    /// at (`learners_not_counted`, design note 0009).
    #[must_use]
    pub fn is_quorum(&self, tolerate: usize, holds: impl Fn(NodeId) -> bool) -> bool {
        self.halves().iter().all(|h| {
            let n = h.iter().filter(|v| holds(**v)).count();
            n >= quorum_size(h.len(), tolerate)
        })
    }

    /// The greatest value `v` such that the voters whose `value` is at least `v` form a
    /// quorum (a commit point from match points, a lease start from ack times). `None` if
    /// no value is held by a quorum. Non-voters are never asked.
    pub fn quorum_value<T: Ord + Copy>(
        &self,
        tolerate: usize,
        value: impl Fn(NodeId) -> Option<T>,
    ) -> Option<T> {
        let mut out: Option<T> = None;
        for h in self.halves() {
            let mut vals: Vec<T> = h.iter().filter_map(|n| value(*n)).collect();
            vals.sort_unstable_by(|a, b| b.cmp(a));
            let q = quorum_size(h.len(), tolerate);
            let v = *vals.get(q.checked_sub(1)?)?;
            out = Some(out.map_or(v, |o| o.min(v)));
        }
        out
    }

    /// Checks the sets are non-empty, bounded and without duplicates.
    pub fn validate(&self) -> Result<(), &'static str> {
        for h in self.halves() {
            if h.is_empty() {
                return Err("a configuration has an empty voter set");
            }
            if h.len() > MAX_VOTERS {
                return Err("a configuration has too many voters");
            }
            let mut s = h.to_vec();
            s.sort_unstable();
            s.dedup();
            if s.len() != h.len() {
                return Err("a configuration lists a voter twice");
            }
        }
        Ok(())
    }

    /// Appends the encoding (module docs).
    pub fn encode(&self, enc: &mut Enc) {
        match self {
            Self::Steady(v) => {
                enc.u8(TAG_STEADY);
                put_set(enc, v);
            }
            Self::Joint { old, new } => {
                enc.u8(TAG_JOINT);
                put_set(enc, old);
                put_set(enc, new);
            }
        }
    }

    /// Reads an encoding; never panics.
    pub fn decode(d: &mut Dec<'_>) -> Result<Self, DecodeError> {
        let m = match d.u8()? {
            TAG_STEADY => Self::Steady(get_set(d)?),
            TAG_JOINT => Self::Joint {
                old: get_set(d)?,
                new: get_set(d)?,
            },
            _ => return Err(d.err("unknown configuration tag")),
        };
        m.validate().map_err(|what| d.err(what))?;
        Ok(m)
    }
}

impl std::fmt::Display for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &[NodeId]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            Self::Steady(v) => write!(f, "{{{}}}", set(v)),
            Self::Joint { old, new } => write!(f, "({{{}}} -> {{{}}})", set(old), set(new)),
        }
    }
}

/// Voters needed among `k`: a majority, or more if the settings' write quorum asks for more
/// (`k − tolerate`, where `tolerate = N − W`).
#[must_use]
pub fn quorum_size(k: usize, tolerate: usize) -> usize {
    (k / 2 + 1).max(k.saturating_sub(tolerate))
}

fn put_set(enc: &mut Enc, v: &[NodeId]) {
    enc.u16(u16::try_from(v.len()).unwrap_or(u16::MAX));
    for n in v {
        enc.u32(n.0);
    }
}

fn get_set(d: &mut Dec<'_>) -> Result<Vec<NodeId>, DecodeError> {
    let n = usize::from(d.u16()?);
    if n > MAX_VOTERS || n > d.remaining() / 4 {
        return Err(d.err("voter count exceeds input"));
    }
    (0..n).map(|_| d.u32().map(NodeId)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u32]) -> Vec<NodeId> {
        v.iter().copied().map(NodeId).collect()
    }

    #[test]
    fn quorum_sizes_keep_the_write_quorum() {
        assert_eq!(quorum_size(3, 1), 2);
        assert_eq!(quorum_size(4, 1), 3);
        assert_eq!(quorum_size(5, 2), 3);
        assert_eq!(quorum_size(3, 0), 3, "W = N stays W = N");
        assert_eq!(quorum_size(1, 1), 1);
        assert_eq!(quorum_size(2, 1), 2, "never less than a majority");
    }

    #[test]
    fn a_joint_quorum_needs_both_halves() {
        let m = Membership::Joint {
            old: ids(&[1, 2, 3]),
            new: ids(&[1, 2, 4]),
        };
        let has = |set: &'static [u32]| move |n: NodeId| set.contains(&n.0);
        assert!(m.is_quorum(1, has(&[1, 2])));
        assert!(
            !m.is_quorum(1, has(&[3, 4])),
            "one of each half is not enough"
        );
        assert!(!m.is_quorum(1, has(&[2, 3, 5])), "5 is no voter");
        assert!(m.is_quorum(1, has(&[2, 3, 4])));
        assert_eq!(m.voters(), ids(&[1, 2, 4, 3]));
    }

    #[test]
    fn quorum_value_is_the_minimum_over_halves() {
        let m = Membership::Joint {
            old: ids(&[1, 2, 3]),
            new: ids(&[3, 4, 5]),
        };
        let v = |n: NodeId| Some([0u64, 10, 9, 8, 2, 1][n.0 as usize]);
        // old: 10, 9, 8 -> 9; new: 8, 2, 1 -> 2.
        assert_eq!(m.quorum_value(1, v), Some(2));
        let steady = Membership::Steady(ids(&[1, 2, 3]));
        assert_eq!(steady.quorum_value(1, v), Some(9));
        assert_eq!(steady.quorum_value(1, |_| None::<u64>), None);
        // A learner's value is never asked for.
        assert_eq!(
            steady.quorum_value(1, |n| (n.0 <= 1 || n.0 == 7).then_some(5u64)),
            None
        );
    }

    #[test]
    fn validation_refuses_empty_and_duplicate_sets() {
        assert!(Membership::Steady(vec![]).validate().is_err());
        assert!(Membership::Steady(ids(&[1, 1])).validate().is_err());
        assert!(
            Membership::Joint {
                old: ids(&[1]),
                new: vec![]
            }
            .validate()
            .is_err()
        );
        assert!(Membership::Steady(ids(&[1, 2])).validate().is_ok());
    }
}
