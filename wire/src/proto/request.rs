//! Encoding and decoding of [`Request`]s (kinds 1–6 and 8) and of the `Traced` wrapper (kind 7,
//! design note 0011).

use bytes::Bytes;
use tierkv_engine::codec::{Dec, DecodeError, Enc};
use tierkv_engine::types::{Mutation, ReadConsistency, SeqNo, ShardId, WriteBatch, WriteOp};

use super::codec::{
    REQ_DESCRIBE, REQ_GET, REQ_GET_IF_CHANGED, REQ_GET_LEASED, REQ_SCAN, REQ_STATUS,
    REQ_STATUS_WITH_CONFIGURATIONS, REQ_TRACED, REQ_WRITE, dec_at, finish, get_bytes,
    get_condition, get_count, get_flag, get_opt_bytes, get_opt_u64, header, len32, open,
    put_condition, put_opt_bytes, put_opt_u64,
};
use super::{Request, TraceContext};

/// Smallest encoded write op: delete tag, empty key, no condition.
const MIN_OP_LEN: usize = 6;

fn put_consistency(enc: &mut Enc, c: ReadConsistency) {
    enc.u8(match c {
        ReadConsistency::Strong => 0,
        ReadConsistency::Eventual => 1,
    });
}

fn put_mutation(enc: &mut Enc, m: &Mutation) {
    match m {
        Mutation::Put {
            key,
            value,
            content_type,
            expires_at,
        } => {
            enc.u8(1);
            enc.bytes32(key);
            let flags = u8::from(content_type.is_some()) | (u8::from(expires_at.is_some()) << 1);
            enc.u8(flags);
            if let Some(t) = expires_at {
                enc.u64(*t);
            }
            if let Some(ct) = content_type {
                enc.bytes32(ct);
            }
            enc.bytes32(value);
        }
        Mutation::Delete { key } => {
            enc.u8(2);
            enc.bytes32(key);
        }
    }
}

/// Encodes a request.
#[must_use]
pub fn encode_request(req: &Request) -> Bytes {
    match req {
        Request::Get {
            shard,
            key,
            consistency,
        } => {
            let mut enc = header(REQ_GET);
            enc.u32(shard.0);
            enc.bytes32(key);
            put_consistency(&mut enc, *consistency);
            finish(enc)
        }
        Request::Write { shard, batch } => {
            let mut enc = header(REQ_WRITE);
            enc.u32(shard.0);
            enc.u8(u8::from(batch.report_prior));
            enc.u32(len32(batch.ops.len()));
            for op in &batch.ops {
                put_mutation(&mut enc, &op.mutation);
                put_condition(&mut enc, op.condition);
            }
            finish(enc)
        }
        Request::Scan {
            shard,
            prefix,
            start_after,
            limit,
            consistency,
        } => {
            let mut enc = header(REQ_SCAN);
            enc.u32(shard.0);
            enc.bytes32(prefix);
            put_opt_bytes(&mut enc, start_after.as_ref());
            enc.u32(*limit);
            put_consistency(&mut enc, *consistency);
            finish(enc)
        }
        Request::Status => finish(header(REQ_STATUS)),
        Request::StatusWithConfigurations => finish(header(REQ_STATUS_WITH_CONFIGURATIONS)),
        Request::GetIfChanged { shard, key, known } => {
            let mut enc = header(REQ_GET_IF_CHANGED);
            enc.u32(shard.0);
            enc.bytes32(key);
            enc.u64(known.0);
            finish(enc)
        }
        Request::GetLeased { shard, key, known } => {
            let mut enc = header(REQ_GET_LEASED);
            enc.u32(shard.0);
            enc.bytes32(key);
            put_opt_u64(&mut enc, known.map(|k| k.0));
            finish(enc)
        }
        Request::Describe { max_events } => {
            let mut enc = header(REQ_DESCRIBE);
            enc.u32(*max_events);
            finish(enc)
        }
    }
}

fn get_consistency(d: &mut Dec<'_>) -> Result<ReadConsistency, DecodeError> {
    match d.u8()? {
        0 => Ok(ReadConsistency::Strong),
        1 => Ok(ReadConsistency::Eventual),
        _ => Err(d.err("unknown consistency")),
    }
}

fn get_mutation(d: &mut Dec<'_>, src: &Bytes) -> Result<Mutation, DecodeError> {
    match d.u8()? {
        1 => {
            let key = get_bytes(d, src)?;
            let flags = d.u8()?;
            if flags & !0b11 != 0 {
                return Err(d.err("unknown mutation flags"));
            }
            let expires_at = if flags & 0b10 != 0 {
                Some(d.u64()?)
            } else {
                None
            };
            let content_type = if flags & 0b01 != 0 {
                Some(get_bytes(d, src)?)
            } else {
                None
            };
            let value = get_bytes(d, src)?;
            Ok(Mutation::Put {
                key,
                value,
                content_type,
                expires_at,
            })
        }
        2 => Ok(Mutation::Delete {
            key: get_bytes(d, src)?,
        }),
        _ => Err(d.err("unknown mutation")),
    }
}

/// Wraps one encoded request envelope (kinds 1–6, from [`encode_request`]) with the trace
/// context of its operation: a `Traced` envelope (kind 7, revision 4, design note 0011).
#[must_use]
pub fn encode_traced(ctx: &TraceContext, envelope: &[u8]) -> Bytes {
    let mut enc = header(REQ_TRACED);
    enc.raw(&ctx.trace_id);
    enc.raw(&ctx.span_id);
    enc.u8(ctx.flags);
    enc.bytes32(envelope);
    finish(enc)
}

/// Decodes a request; never panics. A `Traced` envelope yields its inner request (the
/// context is dropped: see [`decode_traced_request`]).
pub fn decode_request(buf: &Bytes) -> Result<Request, DecodeError> {
    decode_traced_request(buf).map(|(req, _)| req)
}

/// Decodes a request and the trace context it carries, if it is wrapped in `Traced`
/// (kind 7); never panics. The inner request may not be `Traced` again, and the context's
/// ids may not be zero.
pub fn decode_traced_request(buf: &Bytes) -> Result<(Request, Option<TraceContext>), DecodeError> {
    let (src, pos, kind) = open(buf)?;
    if kind != REQ_TRACED {
        return decode_plain(&src, pos, kind).map(|req| (req, None));
    }
    let mut d = dec_at(&src, pos)?;
    let mut ctx = TraceContext {
        trace_id: [0; 16],
        span_id: [0; 8],
        flags: 0,
    };
    ctx.trace_id.copy_from_slice(d.take(16)?);
    ctx.span_id.copy_from_slice(d.take(8)?);
    ctx.flags = d.u8()?;
    if !ctx.is_valid() {
        return Err(d.err("trace context with a zero id"));
    }
    let inner = get_bytes(&mut d, &src)?;
    d.finish()?;
    let (isrc, ipos, ikind) = open(&inner)?;
    if ikind == REQ_TRACED {
        return Err(DecodeError {
            what: "nested traced request",
            offset: 6,
        });
    }
    decode_plain(&isrc, ipos, ikind).map(|req| (req, Some(ctx)))
}

/// Decodes the fields of a request of kinds 1–6, 8 and 9 (`src` is the envelope without its
/// trailer, `pos` just after the kind byte).
fn decode_plain(src: &Bytes, pos: usize, kind: u8) -> Result<Request, DecodeError> {
    let src = src.clone();
    let mut d = dec_at(&src, pos)?;
    let req = match kind {
        REQ_GET => Request::Get {
            shard: ShardId(d.u32()?),
            key: get_bytes(&mut d, &src)?,
            consistency: get_consistency(&mut d)?,
        },
        REQ_WRITE => {
            let shard = ShardId(d.u32()?);
            let report_prior = get_flag(&mut d)?;
            let n = get_count(&mut d, MIN_OP_LEN)?;
            let mut ops = Vec::with_capacity(n);
            for _ in 0..n {
                ops.push(WriteOp {
                    mutation: get_mutation(&mut d, &src)?,
                    condition: get_condition(&mut d)?,
                });
            }
            Request::Write {
                shard,
                batch: WriteBatch { ops, report_prior },
            }
        }
        REQ_SCAN => Request::Scan {
            shard: ShardId(d.u32()?),
            prefix: get_bytes(&mut d, &src)?,
            start_after: get_opt_bytes(&mut d, &src)?,
            limit: d.u32()?,
            consistency: get_consistency(&mut d)?,
        },
        REQ_STATUS => Request::Status,
        REQ_STATUS_WITH_CONFIGURATIONS => Request::StatusWithConfigurations,
        REQ_GET_IF_CHANGED => Request::GetIfChanged {
            shard: ShardId(d.u32()?),
            key: get_bytes(&mut d, &src)?,
            known: SeqNo(d.u64()?),
        },
        REQ_DESCRIBE => Request::Describe {
            max_events: d.u32()?,
        },
        REQ_GET_LEASED => Request::GetLeased {
            shard: ShardId(d.u32()?),
            key: get_bytes(&mut d, &src)?,
            known: get_opt_u64(&mut d)?.map(SeqNo),
        },
        _ => {
            return Err(DecodeError {
                what: "unknown request kind",
                offset: 6,
            });
        }
    };
    d.finish()?;
    Ok(req)
}
