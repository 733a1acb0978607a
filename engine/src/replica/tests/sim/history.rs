//! The client history: writes (invoked when sent, returned when acknowledged) and strong
//! reads served by a replica while `Replica::can_serve_strong_read` holds, read from that
//! replica's applied state. At the end it is checked for linearizability per key with the
//! Wing–Gong checker (`tierkv-checker`). A write that was never acknowledged counts as
//! "outcome unknown" if its record ended up committed, and is dropped otherwise (it never
//! took effect).

use bytes::Bytes;
use tierkv_checker::{Call, Operation, Outcome, Verdict, check};

use crate::types::{EntryKind, Epoch, SeqNo};

use super::Sim;

/// One client operation.
#[derive(Debug, Clone)]
pub(crate) struct HistOp {
    client: usize,
    key: Bytes,
    /// `Some(v)` for a write of `v`; `None` for a read.
    write: Option<Bytes>,
    /// A read's result.
    read: Option<Option<Bytes>>,
    invoked: u64,
    returned: Option<u64>,
    proposed: Option<(SeqNo, Epoch)>,
}

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl HistOp {
    /// A read of `key` by `client` that returned `value`.
    pub(super) fn read(
        client: usize,
        key: Bytes,
        value: Option<Bytes>,
        invoked: u64,
        returned: u64,
    ) -> Self {
        Self {
            client,
            key,
            write: None,
            read: Some(value),
            invoked,
            returned: Some(returned),
            proposed: None,
        }
    }
}

impl Sim {
    pub(super) fn begin_write(&mut self, c: usize) {
        let e = self.payload(c);
        let EntryKind::Put { value, .. } = e.kind else {
            return;
        };
        self.clients[c].op = self.history.len();
        self.history.push(HistOp {
            client: c,
            key: e.key,
            write: Some(value),
            read: None,
            invoked: self.now,
            returned: None,
            proposed: None,
        });
    }

    pub(super) fn note_proposed(&mut self, c: usize, seq: SeqNo, epoch: Epoch) {
        let op = self.clients[c].op;
        if let Some(h) = self.history.get_mut(op) {
            h.proposed = Some((seq, epoch));
        }
    }

    pub(super) fn note_ack(&mut self, c: usize) {
        let op = self.clients[c].op;
        let now = self.now;
        if let Some(h) = self.history.get_mut(op) {
            h.returned = Some(now);
        }
    }

    /// Applies committed records to node `i`'s state, from its log or, below its flushed
    /// base, from the segments.
    pub(super) fn apply_committed(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let Some(rep) = node.rep.as_ref() else {
            return;
        };
        let commit = rep.commit_seq();
        while node.applied < commit {
            let s = node.applied.next();
            let Some(rec) = rep.log().get(s).or_else(|| self.audit.segments.get(&s.0)) else {
                let what = format!(
                    "n{}: committed seq {s} is neither in its log nor flushed",
                    i + 1
                );
                self.audit.safety(what);
                return;
            };
            for e in &rec.entries {
                match &e.kind {
                    EntryKind::Put { value, .. } => {
                        node.kv.insert(e.key.clone(), value.clone());
                    }
                    EntryKind::Tombstone => {
                        node.kv.remove(&e.key);
                    }
                }
            }
            node.applied = s;
        }
    }

    /// A strong read of a random key at a random node, recorded if the node may serve it.
    pub(super) fn strong_read(&mut self) {
        use rand::Rng;
        let i = self.rng.random_range(0..self.nodes.len());
        let key = Bytes::from(format!("k{}", self.rng.random_range(0..4)));
        let local = self.local(i);
        let Some(rep) = self.nodes[i].rep.as_ref() else {
            return;
        };
        if !rep.can_serve_strong_read(local) {
            return;
        }
        let value = self.nodes[i].kv.get(&key).cloned();
        self.history.push(HistOp {
            client: 100 + i,
            key,
            write: None,
            read: Some(value),
            invoked: self.now,
            returned: Some(self.now),
            proposed: None,
        });
    }

    /// Checks the history; a violation is a safety failure.
    pub(super) fn check_linearizable(&mut self) {
        let mut ops = Vec::with_capacity(self.history.len());
        for h in &self.history {
            let (call, outcome) = match (&h.write, &h.read) {
                (Some(v), _) => {
                    let outcome = if h.returned.is_some() {
                        Outcome::Ok
                    } else if h
                        .proposed
                        .is_some_and(|(s, e)| self.audit.committed_epoch(s) == Some(e))
                    {
                        Outcome::Unknown
                    } else {
                        continue; // never took effect
                    };
                    (Call::Write(text(v)), outcome)
                }
                (None, Some(r)) => (Call::Read, Outcome::Read(r.as_ref().map(text))),
                (None, None) => continue,
            };
            ops.push(Operation {
                client: h.client,
                key: text(&h.key),
                call,
                outcome,
                invoked: h.invoked,
                returned: h.returned.unwrap_or(u64::MAX),
            });
        }
        if let Verdict::NotLinearizable {
            key,
            longest_prefix,
            ..
        } = check(&ops)
        {
            self.audit.safety(format!(
                "history of key {key} is not linearizable (stuck after {} operations)",
                longest_prefix.len()
            ));
        }
    }
}
