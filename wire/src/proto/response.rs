//! Encoding and decoding of [`Response`]s (kinds 16–23; the error body is in `error.rs`, the
//! `Described` document in `describe.rs`).

use bytes::Bytes;
use tierkv_engine::codec::{Dec, DecodeError, Enc, get_entry_body, put_entry_body};
use tierkv_engine::replica::{ChangePhase, LeaseMark, Membership, NodeId};
use tierkv_engine::shard::ScanPage;
use tierkv_engine::types::{Entry, Epoch, SeqNo, ShardId};

use super::codec::{
    RESP_DESCRIBED, RESP_ERROR, RESP_GOT, RESP_LEASED, RESP_SCANNED, RESP_STATUS,
    RESP_STATUS_WITH_CONFIGURATIONS, RESP_UNCHANGED, RESP_WRITTEN, dec_at, finish, get_count,
    get_flag, get_opt_bytes, get_opt_u32, get_opt_u64, header, len32, open, put_opt_bytes,
    put_opt_u64,
};
use super::error::{get_error, put_error};
use super::{
    DESCRIBE_FORMAT, LeasedRead, NodeDescription, NodeStatus, ReplicaRole, Response,
    ShardConfiguration, ShardStatus,
};

/// Smallest encoded prior version.
const MIN_PRIOR_LEN: usize = 1;
/// Smallest encoded entry: seq and a tombstone body with a one-byte key.
const MIN_ENTRY_LEN: usize = 12;
/// Smallest encoded shard status.
const MIN_SHARD_STATUS_LEN: usize = 38;

fn put_entry(enc: &mut Enc, e: &Entry) {
    enc.u64(e.seq.0);
    put_entry_body(enc, &e.key, &e.kind, e.expires_at);
}

/// Most ids in an encoded target (as many as a configuration's set).
const MAX_TARGET: usize = tierkv_engine::replica::membership::MAX_VOTERS;

fn phase_code(p: ChangePhase) -> u8 {
    match p {
        ChangePhase::Done => 0,
        ChangePhase::Learning => 1,
        ChangePhase::Joint => 2,
        ChangePhase::Final => 3,
        ChangePhase::Releasing => 4,
    }
}

fn put_configuration(enc: &mut Enc, c: &ShardConfiguration) {
    c.committed.encode(enc);
    c.in_force.encode(enc);
    // A target longer than a configuration's set is cut (none is: a target is a placement).
    let target = &c.target[..c.target.len().min(MAX_TARGET)];
    enc.u16(u16::try_from(target.len()).unwrap_or(u16::MAX));
    for n in target {
        enc.u32(n.0);
    }
    enc.u8(phase_code(c.phase));
}

fn get_configuration(d: &mut Dec<'_>) -> Result<ShardConfiguration, DecodeError> {
    let committed = Membership::decode(d)?;
    let in_force = Membership::decode(d)?;
    let n = usize::from(d.u16()?);
    if n > MAX_TARGET {
        return Err(d.err("target too long"));
    }
    let mut target = Vec::with_capacity(n);
    for _ in 0..n {
        target.push(NodeId(d.u32()?));
    }
    let phase = match d.u8()? {
        0 => ChangePhase::Done,
        1 => ChangePhase::Learning,
        2 => ChangePhase::Joint,
        3 => ChangePhase::Final,
        4 => ChangePhase::Releasing,
        _ => return Err(d.err("unknown move phase")),
    };
    Ok(ShardConfiguration {
        committed,
        in_force,
        target,
        phase,
    })
}

fn role_code(r: ReplicaRole) -> u8 {
    match r {
        ReplicaRole::Follower => 1,
        ReplicaRole::Candidate => 2,
        ReplicaRole::Recovering => 3,
        ReplicaRole::Leader => 4,
    }
}

/// Encodes a response.
#[must_use]
pub fn encode_response(resp: &Response) -> Bytes {
    match resp {
        Response::Got(entry) => {
            let mut enc = header(RESP_GOT);
            match entry {
                Some(e) => {
                    enc.u8(1);
                    put_entry(&mut enc, e);
                }
                None => enc.u8(0),
            }
            finish(enc)
        }
        Response::Written { seq, prior } => {
            let mut enc = header(RESP_WRITTEN);
            enc.u64(seq.0);
            enc.u32(len32(prior.len()));
            for p in prior {
                put_opt_u64(&mut enc, p.map(|s| s.0));
            }
            finish(enc)
        }
        Response::Scanned(page) => {
            let mut enc = header(RESP_SCANNED);
            enc.u32(len32(page.entries.len()));
            for e in &page.entries {
                put_entry(&mut enc, e);
            }
            put_opt_bytes(&mut enc, page.next.as_ref());
            finish(enc)
        }
        Response::Status(st) => {
            // Kind 19 byte for byte unless the answer carries configurations (revision 5).
            let configured = st.shards.iter().any(|s| s.configuration.is_some());
            let mut enc = header(if configured {
                RESP_STATUS_WITH_CONFIGURATIONS
            } else {
                RESP_STATUS
            });
            enc.u32(st.node.0);
            enc.u64(st.map_version);
            enc.u32(len32(st.shards.len()));
            for s in &st.shards {
                enc.u32(s.shard.0);
                enc.u8(role_code(s.role));
                enc.u64(s.epoch.0);
                match s.leader {
                    Some(l) => {
                        enc.u8(1);
                        enc.u32(l.0);
                    }
                    None => enc.u8(0),
                }
                enc.u64(s.commit_seq.0);
                enc.u64(s.last_seq.0);
                enc.u64(s.flushed_seq.0);
                if configured {
                    match &s.configuration {
                        Some(c) => {
                            enc.u8(1);
                            put_configuration(&mut enc, c);
                        }
                        None => enc.u8(0),
                    }
                }
            }
            finish(enc)
        }
        Response::Described(doc) => {
            let mut enc = header(RESP_DESCRIBED);
            enc.u16(DESCRIBE_FORMAT);
            // Plain structs of numbers and strings: serializing cannot fail.
            let json = serde_json::to_vec(doc).unwrap_or_else(|_| b"{}".to_vec());
            enc.bytes32(&json);
            finish(enc)
        }
        Response::Error(e) => {
            let mut enc = header(RESP_ERROR);
            put_error(&mut enc, e);
            finish(enc)
        }
        Response::Unchanged => finish(header(RESP_UNCHANGED)),
        Response::Leased {
            lease_ms,
            mark,
            read,
        } => {
            let mut enc = header(RESP_LEASED);
            enc.u32(*lease_ms);
            enc.u64(mark.epoch.0);
            enc.u64(mark.seq.0);
            match read {
                LeasedRead::Unchanged => enc.u8(0),
                LeasedRead::Got(None) => enc.u8(1),
                LeasedRead::Got(Some(e)) => {
                    enc.u8(2);
                    put_entry(&mut enc, e);
                }
            }
            finish(enc)
        }
    }
}

fn get_entry(d: &mut Dec<'_>, src: &Bytes) -> Result<Entry, DecodeError> {
    let seq = SeqNo(d.u64()?);
    let b = get_entry_body(d, src)?;
    Ok(Entry {
        key: b.key,
        seq,
        kind: b.kind,
        expires_at: b.expires_at,
    })
}

fn get_role(d: &mut Dec<'_>) -> Result<ReplicaRole, DecodeError> {
    Ok(match d.u8()? {
        1 => ReplicaRole::Follower,
        2 => ReplicaRole::Candidate,
        3 => ReplicaRole::Recovering,
        4 => ReplicaRole::Leader,
        _ => return Err(d.err("unknown role")),
    })
}

/// Decodes a response; never panics.
pub fn decode_response(buf: &Bytes) -> Result<Response, DecodeError> {
    let (src, pos, kind) = open(buf)?;
    let mut d = dec_at(&src, pos)?;
    let resp = match kind {
        RESP_GOT => Response::Got(if get_flag(&mut d)? {
            Some(get_entry(&mut d, &src)?)
        } else {
            None
        }),
        RESP_WRITTEN => {
            let seq = SeqNo(d.u64()?);
            let n = get_count(&mut d, MIN_PRIOR_LEN)?;
            let mut prior = Vec::with_capacity(n);
            for _ in 0..n {
                prior.push(get_opt_u64(&mut d)?.map(SeqNo));
            }
            Response::Written { seq, prior }
        }
        RESP_SCANNED => {
            let n = get_count(&mut d, MIN_ENTRY_LEN)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push(get_entry(&mut d, &src)?);
            }
            let next = get_opt_bytes(&mut d, &src)?;
            Response::Scanned(ScanPage { entries, next })
        }
        RESP_STATUS | RESP_STATUS_WITH_CONFIGURATIONS => {
            let configured = kind == RESP_STATUS_WITH_CONFIGURATIONS;
            let node = NodeId(d.u32()?);
            let map_version = d.u64()?;
            let n = get_count(&mut d, MIN_SHARD_STATUS_LEN)?;
            let mut shards = Vec::with_capacity(n);
            for _ in 0..n {
                let mut s = ShardStatus {
                    shard: ShardId(d.u32()?),
                    role: get_role(&mut d)?,
                    epoch: Epoch(d.u64()?),
                    leader: get_opt_u32(&mut d)?.map(NodeId),
                    commit_seq: SeqNo(d.u64()?),
                    last_seq: SeqNo(d.u64()?),
                    flushed_seq: SeqNo(d.u64()?),
                    configuration: None,
                };
                if configured && get_flag(&mut d)? {
                    s.configuration = Some(get_configuration(&mut d)?);
                }
                shards.push(s);
            }
            Response::Status(NodeStatus {
                node,
                map_version,
                shards,
            })
        }
        RESP_DESCRIBED => {
            if d.u16()? != DESCRIBE_FORMAT {
                return Err(d.err("unsupported describe format"));
            }
            let at = d.pos();
            let doc: NodeDescription =
                serde_json::from_slice(d.bytes32()?).map_err(|_| DecodeError {
                    what: "describe document is not valid JSON",
                    offset: at,
                })?;
            Response::Described(Box::new(doc))
        }
        RESP_ERROR => Response::Error(get_error(&mut d, &src)?),
        RESP_UNCHANGED => Response::Unchanged,
        RESP_LEASED => {
            let lease_ms = d.u32()?;
            let mark = LeaseMark {
                epoch: Epoch(d.u64()?),
                seq: SeqNo(d.u64()?),
            };
            let read = match d.u8()? {
                0 => LeasedRead::Unchanged,
                1 => LeasedRead::Got(None),
                2 => LeasedRead::Got(Some(get_entry(&mut d, &src)?)),
                _ => return Err(d.err("unknown leased answer")),
            };
            Response::Leased {
                lease_ms,
                mark,
                read,
            }
        }
        _ => {
            return Err(DecodeError {
                what: "unknown response kind",
                offset: 6,
            });
        }
    };
    d.finish()?;
    Ok(resp)
}
