//! The answers of the reads that compare a caller's cached version (design notes 0008 and
//! 0014): `GetIfChanged` and `GetLeased`.

use tierkv_engine::replica::LeaseMark;
use tierkv_engine::types::{ReadConsistency, SeqNo};
use tierkv_wire::proto::{LeasedRead, RemoteError, Response};

use crate::driver::ShardHandle;

fn err(e: &tierkv_engine::Error) -> Response {
    Response::Error(RemoteError::from_engine(e))
}

/// Served exactly like a strong `Get` (the lease is checked before the read); only the
/// answer differs when the caller's version is still the live one (design note 0008).
pub(crate) async fn get_if_changed(h: &ShardHandle, key: &[u8], known: SeqNo) -> Response {
    match h.get(key, ReadConsistency::Strong).await {
        Ok(Some(e)) if e.seq == known => Response::Unchanged,
        Ok(entry) => Response::Got(entry),
        Err(e) => err(&e),
    }
}

/// A strong read after the leader recorded a read lease (design note 0014); `Unchanged`
/// when `known` is the live version.
pub(crate) async fn get_leased(h: &ShardHandle, key: &[u8], known: Option<SeqNo>) -> Response {
    match h.get_leased(key).await {
        Ok((lease, entry)) => {
            let lease_ms = lease.map_or(0, |l| u32::try_from(l.duration.0).unwrap_or(u32::MAX));
            let mark = lease.map_or(LeaseMark::NONE, |l| l.mark);
            let read = match entry {
                Some(e) if Some(e.seq) == known => LeasedRead::Unchanged,
                other => LeasedRead::Got(other),
            };
            Response::Leased {
                lease_ms,
                mark,
                read,
            }
        }
        Err(e) => err(&e),
    }
}
