//! The simulator's actors: clients (propose, wait for the commit, retry elsewhere), the
//! leader's periodic flush to the object store, and the partition/crash nemesis.

use bytes::Bytes;
use rand::Rng;

use crate::replica::{Input, Record, Replica, Role};
use crate::types::{Entry, EntryKind, SeqNo};

use super::{ANY, ClientState, Ev, MS, Sim};

impl Sim {
    pub(super) fn on_committed(&mut self, i: usize, upto: SeqNo) {
        let rep = self.nodes[i].rep.as_ref().expect("node is up");
        let leader_epoch = rep.leader_epoch();
        self.audit.on_commit(i, rep, upto, leader_epoch);
        let Some(epoch) = leader_epoch else { return };
        let mut acks = Vec::new();
        for c in 0..self.clients.len() {
            if let ClientState::Waiting {
                node,
                epoch: e,
                seq,
                ..
            } = self.clients[c].state
                && node == i
                && e == epoch
                && seq <= upto
            {
                let rec = rep
                    .log()
                    .get(seq)
                    .cloned()
                    .expect("acked record in the leader's log");
                acks.push((c, rec));
            }
        }
        for (c, rec) in acks {
            let want = self.payload(c);
            if rec.entries.first().map(|e| &e.kind) != Some(&want.kind) {
                self.audit.safety(format!(
                    "ack of seq {} carries another client's payload",
                    rec.seq
                ));
            }
            self.audit.on_ack(rec, self.now);
            self.note_ack(c);
            let cl = &mut self.clients[c];
            cl.state = ClientState::Idle;
            cl.write += 1;
            cl.attempt = 0;
            let t = self.now + self.rng.random_range(5 * MS..40 * MS);
            self.at(t, Ev::Client(c));
        }
    }

    pub(super) fn payload(&self, c: usize) -> Entry {
        let cl = &self.clients[c];
        Entry {
            key: Bytes::from(format!("k{}", (cl.write * 7 + c as u64) % 4)),
            seq: SeqNo(0),
            kind: EntryKind::Put {
                value: Bytes::from(format!("c{c}w{}a{}", cl.write, cl.attempt)),
                content_type: None,
            },
            expires_at: None,
        }
    }

    pub(super) fn retry(&mut self, c: usize, target: usize, wait: u64) {
        let cl = &mut self.clients[c];
        cl.state = ClientState::Idle;
        cl.target = target;
        cl.attempt += 1;
        if cl.attempt > 5 {
            cl.write += 1; // bounded retries: give up on this write
            cl.attempt = 0;
        }
        self.at(self.now + wait, Ev::Client(c));
    }

    pub(super) fn client(&mut self, c: usize) {
        match self.clients[c].state {
            ClientState::Idle => {
                self.begin_write(c);
                self.clients[c].state = ClientState::Sending;
                let node = self.clients[c].target;
                let t = self.now + self.rng.random_range(MS..5 * MS);
                self.at(t, Ev::Arrive { client: c, node });
            }
            ClientState::Waiting { deadline, .. } if self.now >= deadline => {
                let target = self.rng.random_range(0..self.nodes.len());
                self.retry(c, target, MS);
            }
            ClientState::Waiting { .. } | ClientState::Sending => {}
        }
    }

    pub(super) fn arrive(&mut self, c: usize, node: usize) {
        self.log(|| format!("client {c} -> n{}", node + 1));
        if !self.nodes[node].up {
            let target = self.rng.random_range(0..self.nodes.len());
            self.retry(c, target, 100 * MS);
            return;
        }
        let entries = vec![self.payload(c)];
        self.feed(node, Input::Propose { entries }, Some(c));
        if self.clients[c].state == ClientState::Sending {
            self.clients[c].state = ClientState::Idle;
            self.at(self.now + 10 * MS, Ev::Client(c));
        }
    }

    pub(super) fn flush(&mut self) {
        for i in 0..self.nodes.len() {
            let Some(f) = self.nodes[i].rep.as_ref().map(Replica::commit_seq) else {
                continue;
            };
            self.flush_at(i, f);
        }
        let t = self.now + self.rng.random_range(300 * MS..700 * MS);
        self.at(t, Ev::Flush);
    }

    /// Node `i`, if it is the serving leader of the newest manifest epoch, flushes its log up
    /// to `upto` (its commit point on the periodic flush; what a follower's flush request
    /// allowed otherwise) and loads the manifest it published.
    pub(super) fn flush_at(&mut self, i: usize, upto: SeqNo) {
        let Some(rep) = self.nodes[i].rep.as_ref() else {
            return;
        };
        let Some(epoch) = rep.leader_epoch() else {
            return;
        };
        if rep.role() != Role::Leader
            || upto <= self.store.flushed
            || epoch < self.store.manifest_epoch
        {
            return;
        }
        let records: Vec<Record> = rep.log().range(self.store.flushed, upto).cloned().collect();
        let Some(last) = records.last() else { return };
        let (f, fe) = (last.seq, last.epoch);
        let fm = rep.log().membership_at(f).cloned();
        self.audit.on_flush(&records);
        self.stats.flushes += 1;
        self.store.flushed = f;
        self.store.flushed_epoch = fe;
        self.store.flushed_membership = fm.clone();
        self.feed(
            i,
            Input::ManifestLoaded {
                flushed_seq: f,
                flushed_epoch: fe,
                membership: fm,
            },
            None,
        );
    }

    /// `Params::deaf_leader`: the leader stops hearing anything, until the heal (tried
    /// again shortly while there is no leader).
    pub(super) fn deafen(&mut self) {
        let leader = (0..self.nodes.len()).find(|j| {
            self.nodes[*j]
                .rep
                .as_ref()
                .is_some_and(|r| r.leader_epoch().is_some())
        });
        let Some(l) = leader.filter(|_| !self.healed) else {
            if !self.healed {
                let t = self.now + 200 * MS;
                self.at(t, Ev::Deafen);
            }
            return;
        };
        self.log(|| format!("n{} goes deaf", l + 1));
        self.nodes[l].deaf = true;
        self.deaf_window = Some((l, false));
    }

    /// The heal ends a deaf window: some other replica must have served as leader in it
    /// (the others hear each other; the deaf one, still heard, must not keep them waiting).
    pub(super) fn end_deafness(&mut self) {
        let Some((deaf, served)) = self.deaf_window.take() else {
            return;
        };
        self.nodes[deaf].deaf = false;
        if !served {
            self.audit.liveness_violation(format!(
                "n{} heard nothing from the others for the whole fault period and no other \
                 replica served as leader meanwhile",
                deaf + 1
            ));
        }
    }

    pub(super) fn partition(&mut self) {
        if self.healed {
            return;
        }
        let n = self.nodes.len();
        match self.rng.random_range(0..4) {
            0 => {
                let leader = (0..n).find(|j| {
                    self.nodes[*j]
                        .rep
                        .as_ref()
                        .is_some_and(|r| r.leader_epoch().is_some())
                });
                let v = match leader {
                    Some(l) if self.rng.random_bool(0.5) => l,
                    _ => self.rng.random_range(0..n),
                };
                for (i, node) in self.nodes.iter_mut().enumerate() {
                    node.group = u32::from(i == v);
                }
            }
            1 => {
                for node in &mut self.nodes {
                    node.group = self.rng.random_range(0..2);
                }
            }
            _ => {
                for node in &mut self.nodes {
                    node.group = 0;
                }
            }
        }
        let groups: Vec<u32> = self.nodes.iter().map(|n| n.group).collect();
        self.log(|| format!("partition {groups:?}"));
        let t = self.now + self.rng.random_range(300 * MS..4000 * MS);
        self.at(t, Ev::Partition);
        if self.rng.random_bool(0.6) {
            let t = self.now + self.rng.random_range(0..1000 * MS);
            self.at(t, Ev::Crash(ANY));
        } else if self.rng.random_bool(0.5) {
            let t = self.now + self.rng.random_range(0..1000 * MS);
            self.at(t, Ev::Drain);
        }
    }
}
