//! Messages between the replicas of a shard and their binary encoding.
//!
//! Every message travels in an envelope naming the shard and the sender. Integers are
//! little-endian; the checksum is CRC-32C of everything before it.
//!
//! # Envelope
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | u32 | magic [`MAGIC`]: the bytes `"TKVR"` as a little-endian u32 |
//! | 4 | u16 | format version: 1, or [`VERSION`] = 2 for a message that carries a configuration; others are rejected |
//! | 6 | u32 | shard id |
//! | 10 | u32 | sender node id |
//! | 14 | u8 | kind (1 Append, 2 Ack, 3 Gap, 4 Promise, 5 Promised, 6 Refused, 7 Fetch, 8 Records, 9 Handover, 10 Promise with `handover_of`, 11 Ack from a rejoining replica, 12 FlushRequest: u64 epoch, u64 upto, u8 hard (0 or 1)) |
//! | 15 | ... | fields of the kind, in declaration order: epochs, seqs and millis as u64 |
//! | end−4 | u32 | crc32c of bytes `0..end−4` |
//!
//! Record lists (`Append`, `Records`) are a u32 count, then per record: u64 epoch, u64 seq,
//! u32 entry count and that many entry bodies ([`crate::codec::put_entry_body`]; the entry's
//! version is the record's seq). A barrier is a record with no entries.
//!
//! # Format version 2 (design note 0009)
//!
//! A message is written in version 1, byte for byte as before, unless it carries a
//! configuration: an `Append` or `Records` holding a configuration record, or a `Promised`
//! from a replica whose configuration in force is not the genesis one. Those are written in
//! version 2, which differs in two places:
//!
//! - each record of a record list has a u8 *record kind* after its seq: 0, a batch (u32 entry
//!   count and the entry bodies, as in version 1), or 1, a configuration record (its
//!   [`Membership`] encoding, see [`super::membership`]);
//! - `Promised` ends with a u8 flag (0 or 1) and, if 1, the responder's configuration in
//!   force. A version-1 `Promised` means "the genesis configuration".
//!
//! Nodes write no configuration before every member runs a version that reads version 2
//! (note 0009, "Compatibility"), so a rolling upgrade only ever sees version 1.
//!
//! [`decode`] never panics: short, corrupt or oversized input is a [`DecodeError`].

use bytes::Bytes;

use crate::codec::{Dec, DecodeError, Enc, get_entry_body, put_entry_body, split_crc_trailer};
use crate::types::{Entry, Epoch, SeqNo, ShardId};

use super::{Membership, Millis, NodeId, Record};

/// Envelope magic: `"TKVR"` as a little-endian u32.
pub const MAGIC: u32 = u32::from_le_bytes(*b"TKVR");
/// The format version of messages that carry no configuration (written as before note 0009).
pub const VERSION_1: u16 = 1;
/// The format version of messages that carry a configuration (module docs).
pub const VERSION: u16 = 2;
/// Versions this build reads.
pub const SUPPORTED_VERSIONS: &[u16] = &[VERSION_1, VERSION];

/// A message between replicas of one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Leader → follower: records after `prev_seq` (none for a heartbeat).
    Append {
        /// The leader's epoch.
        epoch: Epoch,
        /// Seq of the record before `records`.
        prev_seq: SeqNo,
        /// Epoch of the leader's record at `prev_seq` (prefix check).
        prev_epoch: Epoch,
        /// Contiguous records from `prev_seq + 1`.
        records: Vec<Record>,
        /// The leader's commit point.
        commit_seq: SeqNo,
        /// The leader's latest manifest's flushed prefix.
        flushed_seq: SeqNo,
        /// The leader's clock when sending (echoed in the ack; the lease counts from it).
        sent_at: Millis,
    },
    /// Follower → leader: the log matches the leader's durably up to `last_seq`.
    Ack {
        /// The leader's epoch.
        epoch: Epoch,
        /// Highest seq durably matching.
        last_seq: SeqNo,
        /// `sent_at` of the newest `Append` covered.
        sent_at: Millis,
        /// The follower is rejoining after disk loss ([`super::Recovered::amnesia_floor`]):
        /// once it holds everything committed, the leader hands the shard to another
        /// replica, so that a newer epoch's barrier reaches it and ends the rejoin.
        rejoining: bool,
    },
    /// Follower → leader: the prefix check failed; resend records after `last_seq`.
    Gap {
        /// The leader's epoch.
        epoch: Epoch,
        /// Where to resume.
        last_seq: SeqNo,
    },
    /// Candidate → replica: promise `epoch`.
    Promise {
        /// The claimed epoch.
        epoch: Epoch,
        /// Set when the leader of this epoch handed the shard over to the candidate
        /// ([`Msg::Handover`]): a replica that promised exactly this epoch may grant the
        /// promise although its lease promise still holds, since that leader stopped serving.
        handover_of: Option<Epoch>,
    },
    /// Replica → candidate: promise made durably; this is the end of my log.
    Promised {
        /// The promised epoch.
        epoch: Epoch,
        /// Epoch of my last record.
        last_epoch: Epoch,
        /// Seq of my last record.
        last_seq: SeqNo,
        /// My configuration in force (`None`: the genesis one): a candidate counts promises
        /// against the configuration of the log it adopts (design note 0009 §3).
        membership: Option<Membership>,
    },
    /// Refusal of a `Promise`, `Append` or `Fetch`.
    Refused {
        /// My promised epoch.
        promised_epoch: Epoch,
        /// Time left on my lease promise (zero if the refusal is for a stale epoch).
        lease_remaining: Millis,
    },
    /// Candidate → replica with the longest log: send your records after `after_seq`.
    Fetch {
        /// The candidate's epoch.
        epoch: Epoch,
        /// First seq not needed.
        after_seq: SeqNo,
    },
    /// Answer to a `Fetch`: the whole tail after `prev_seq`.
    Records {
        /// The candidate's epoch.
        epoch: Epoch,
        /// Seq before the first record (at least the sender's flushed base).
        prev_seq: SeqNo,
        /// Epoch of the sender's record at `prev_seq`.
        prev_epoch: Epoch,
        /// The records.
        records: Vec<Record>,
    },
    /// Leader of `epoch` → the replica it hands the shard to: "I stopped leading `epoch` (no
    /// more proposals, no strong reads) and you hold every record I sequenced; take over now."
    Handover {
        /// The epoch that ended.
        epoch: Epoch,
    },
    /// Follower → its leader of `epoch`: "my node's write buffers need this shard flushed up
    /// to `upto`" (design note 0007). Advisory: it changes no promise, log or commit point;
    /// the leader flushes at most up to its commit point. `hard`: the follower's node is past
    /// its unflushed limit, so the leader refuses writes to the shard for a while.
    FlushRequest {
        /// The leader's epoch as the follower knows it.
        epoch: Epoch,
        /// Flush at least up to here (the follower's log end; the leader caps it).
        upto: SeqNo,
        /// The follower is past its limit: refuse writes too.
        hard: bool,
    },
}

/// A decoded message with its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The shard.
    pub shard: ShardId,
    /// The sender.
    pub from: NodeId,
    /// The message.
    pub msg: Msg,
}

const KIND_APPEND: u8 = 1;
const KIND_ACK: u8 = 2;
const KIND_GAP: u8 = 3;
const KIND_PROMISE: u8 = 4;
const KIND_PROMISED: u8 = 5;
const KIND_REFUSED: u8 = 6;
const KIND_FETCH: u8 = 7;
const KIND_RECORDS: u8 = 8;
const KIND_HANDOVER: u8 = 9;
const KIND_HANDOVER_PROMISE: u8 = 10;
const KIND_REJOINING_ACK: u8 = 11;
const KIND_FLUSH_REQUEST: u8 = 12;
/// Smallest encoded record (epoch, seq, count).
const MIN_RECORD_LEN: usize = 20;
/// Smallest encoded entry body.
const MIN_ENTRY_LEN: usize = 4;
/// Record kinds inside version-2 record lists.
const RECORD_BATCH: u8 = 0;
const RECORD_CONFIG: u8 = 1;

/// The version `msg` is written in: 2 only if it carries a configuration.
fn version_of(msg: &Msg) -> u16 {
    let carries = match msg {
        Msg::Append { records, .. } | Msg::Records { records, .. } => {
            records.iter().any(|r| r.membership.is_some())
        }
        Msg::Promised { membership, .. } => membership.is_some(),
        _ => false,
    };
    if carries { VERSION } else { VERSION_1 }
}

fn put_records(enc: &mut Enc, records: &[Record], version: u16) {
    enc.u32(u32::try_from(records.len()).unwrap_or(u32::MAX));
    for r in records {
        enc.u64(r.epoch.0);
        enc.u64(r.seq.0);
        if version >= VERSION {
            if let Some(m) = &r.membership {
                enc.u8(RECORD_CONFIG);
                m.encode(enc);
                continue;
            }
            enc.u8(RECORD_BATCH);
        }
        enc.u32(u32::try_from(r.entries.len()).unwrap_or(u32::MAX));
        for e in &r.entries {
            put_entry_body(enc, &e.key, &e.kind, e.expires_at);
        }
    }
}

fn get_records(d: &mut Dec<'_>, src: &Bytes, version: u16) -> Result<Vec<Record>, DecodeError> {
    let n = usize::try_from(d.u32()?).map_err(|_| d.err("length overflow"))?;
    if n > d.remaining() / MIN_RECORD_LEN {
        return Err(d.err("record count exceeds input"));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let epoch = Epoch(d.u64()?);
        let seq = SeqNo(d.u64()?);
        if version >= VERSION {
            match d.u8()? {
                RECORD_BATCH => {}
                RECORD_CONFIG => {
                    out.push(Record {
                        epoch,
                        seq,
                        entries: Vec::new(),
                        membership: Some(Membership::decode(d)?),
                    });
                    continue;
                }
                _ => return Err(d.err("unknown record kind")),
            }
        }
        let m = usize::try_from(d.u32()?).map_err(|_| d.err("length overflow"))?;
        if m > d.remaining() / MIN_ENTRY_LEN {
            return Err(d.err("entry count exceeds input"));
        }
        let mut entries = Vec::with_capacity(m);
        for _ in 0..m {
            let b = get_entry_body(d, src)?;
            entries.push(Entry {
                key: b.key,
                seq,
                kind: b.kind,
                expires_at: b.expires_at,
            });
        }
        // The record outlives the chunk it arrived in (log, memtable): own its bytes.
        crate::types::compact_entries(&mut entries);
        out.push(Record::batch(epoch, seq, entries));
    }
    Ok(out)
}

/// Encodes `msg` from `from` about `shard`.
#[must_use]
pub fn encode(shard: ShardId, from: NodeId, msg: &Msg) -> Bytes {
    let version = version_of(msg);
    let mut enc = Enc::with_capacity(64);
    enc.u32(MAGIC);
    enc.u16(version);
    enc.u32(shard.0);
    enc.u32(from.0);
    match msg {
        Msg::Append {
            epoch,
            prev_seq,
            prev_epoch,
            records,
            commit_seq,
            flushed_seq,
            sent_at,
        } => {
            enc.u8(KIND_APPEND);
            enc.u64(epoch.0);
            enc.u64(prev_seq.0);
            enc.u64(prev_epoch.0);
            put_records(&mut enc, records, version);
            enc.u64(commit_seq.0);
            enc.u64(flushed_seq.0);
            enc.u64(sent_at.0);
        }
        Msg::Ack {
            epoch,
            last_seq,
            sent_at,
            rejoining,
        } => {
            enc.u8(if *rejoining {
                KIND_REJOINING_ACK
            } else {
                KIND_ACK
            });
            enc.u64(epoch.0);
            enc.u64(last_seq.0);
            enc.u64(sent_at.0);
        }
        Msg::Gap { epoch, last_seq } => {
            enc.u8(KIND_GAP);
            enc.u64(epoch.0);
            enc.u64(last_seq.0);
        }
        Msg::Promise {
            epoch,
            handover_of: None,
        } => {
            enc.u8(KIND_PROMISE);
            enc.u64(epoch.0);
        }
        Msg::Promise {
            epoch,
            handover_of: Some(of),
        } => {
            enc.u8(KIND_HANDOVER_PROMISE);
            enc.u64(epoch.0);
            enc.u64(of.0);
        }
        Msg::Handover { epoch } => {
            enc.u8(KIND_HANDOVER);
            enc.u64(epoch.0);
        }
        Msg::Promised {
            epoch,
            last_epoch,
            last_seq,
            membership,
        } => {
            enc.u8(KIND_PROMISED);
            enc.u64(epoch.0);
            enc.u64(last_epoch.0);
            enc.u64(last_seq.0);
            if let Some(m) = membership {
                enc.u8(1);
                m.encode(&mut enc);
            }
        }
        Msg::Refused {
            promised_epoch,
            lease_remaining,
        } => {
            enc.u8(KIND_REFUSED);
            enc.u64(promised_epoch.0);
            enc.u64(lease_remaining.0);
        }
        Msg::Fetch { epoch, after_seq } => {
            enc.u8(KIND_FETCH);
            enc.u64(epoch.0);
            enc.u64(after_seq.0);
        }
        Msg::Records {
            epoch,
            prev_seq,
            prev_epoch,
            records,
        } => {
            enc.u8(KIND_RECORDS);
            enc.u64(epoch.0);
            enc.u64(prev_seq.0);
            enc.u64(prev_epoch.0);
            put_records(&mut enc, records, version);
        }
        Msg::FlushRequest { epoch, upto, hard } => {
            enc.u8(KIND_FLUSH_REQUEST);
            enc.u64(epoch.0);
            enc.u64(upto.0);
            enc.u8(u8::from(*hard));
        }
    }
    enc.crc_trailer();
    enc.finish()
}

/// Decodes an envelope; never panics.
pub fn decode(buf: &Bytes) -> Result<Envelope, DecodeError> {
    let body = split_crc_trailer(buf)?;
    let src = buf.slice(..body.len());
    let mut d = Dec::new(&src);
    if d.u32()? != MAGIC {
        return Err(DecodeError {
            what: "bad magic",
            offset: 0,
        });
    }
    let version = d.u16()?;
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(DecodeError {
            what: "unsupported message version",
            offset: 4,
        });
    }
    let shard = ShardId(d.u32()?);
    let from = NodeId(d.u32()?);
    let kind = d.u8()?;
    let e = |d: &mut Dec<'_>| d.u64().map(Epoch);
    let s = |d: &mut Dec<'_>| d.u64().map(SeqNo);
    let msg = match kind {
        KIND_APPEND => Msg::Append {
            epoch: e(&mut d)?,
            prev_seq: s(&mut d)?,
            prev_epoch: e(&mut d)?,
            records: get_records(&mut d, &src, version)?,
            commit_seq: s(&mut d)?,
            flushed_seq: s(&mut d)?,
            sent_at: Millis(d.u64()?),
        },
        KIND_ACK | KIND_REJOINING_ACK => Msg::Ack {
            epoch: e(&mut d)?,
            last_seq: s(&mut d)?,
            sent_at: Millis(d.u64()?),
            rejoining: kind == KIND_REJOINING_ACK,
        },
        KIND_GAP => Msg::Gap {
            epoch: e(&mut d)?,
            last_seq: s(&mut d)?,
        },
        KIND_PROMISE => Msg::Promise {
            epoch: e(&mut d)?,
            handover_of: None,
        },
        KIND_HANDOVER_PROMISE => Msg::Promise {
            epoch: e(&mut d)?,
            handover_of: Some(e(&mut d)?),
        },
        KIND_HANDOVER => Msg::Handover { epoch: e(&mut d)? },
        KIND_PROMISED => Msg::Promised {
            epoch: e(&mut d)?,
            last_epoch: e(&mut d)?,
            last_seq: s(&mut d)?,
            membership: if version >= VERSION {
                match d.u8()? {
                    0 => None,
                    1 => Some(Membership::decode(&mut d)?),
                    _ => return Err(d.err("configuration flag is not 0 or 1")),
                }
            } else {
                None
            },
        },
        KIND_REFUSED => Msg::Refused {
            promised_epoch: e(&mut d)?,
            lease_remaining: Millis(d.u64()?),
        },
        KIND_FETCH => Msg::Fetch {
            epoch: e(&mut d)?,
            after_seq: s(&mut d)?,
        },
        KIND_RECORDS => Msg::Records {
            epoch: e(&mut d)?,
            prev_seq: s(&mut d)?,
            prev_epoch: e(&mut d)?,
            records: get_records(&mut d, &src, version)?,
        },
        KIND_FLUSH_REQUEST => Msg::FlushRequest {
            epoch: e(&mut d)?,
            upto: s(&mut d)?,
            hard: match d.u8()? {
                0 => false,
                1 => true,
                _ => return Err(d.err("flush request flag is not 0 or 1")),
            },
        },
        _ => return Err(d.err("unknown message kind")),
    };
    d.finish()?;
    Ok(Envelope { shard, from, msg })
}
