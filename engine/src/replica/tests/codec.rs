//! Round trip and robustness of the message encoding.

use bytes::Bytes;
use proptest::prelude::*;

use crate::replica::msg::{Envelope, Msg, decode, encode};
use crate::replica::{Millis, NodeId, Record};
use crate::types::{Entry, EntryKind, Epoch, SeqNo, ShardId};

fn entry(seq: u64) -> impl Strategy<Value = Entry> {
    (
        proptest::collection::vec(any::<u8>(), 1..16),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(move |(key, value, ct, exp)| Entry {
            key: Bytes::from(key),
            seq: SeqNo(seq),
            kind: match value {
                None => EntryKind::Tombstone,
                Some(v) => EntryKind::Put {
                    value: Bytes::from(v),
                    content_type: ct.map(Bytes::from),
                },
            },
            expires_at: exp,
        })
}

fn records() -> impl Strategy<Value = Vec<Record>> {
    (0u64..1000, 0usize..4).prop_flat_map(|(start, n)| {
        (0..n)
            .map(|i| {
                let seq = start + i as u64 + 1;
                (any::<u64>(), proptest::collection::vec(entry(seq), 0..3)).prop_map(
                    move |(epoch, entries)| Record {
                        epoch: Epoch(epoch),
                        seq: SeqNo(seq),
                        entries,
                    },
                )
            })
            .collect::<Vec<_>>()
    })
}

fn msg() -> impl Strategy<Value = Msg> {
    let e = || any::<u64>().prop_map(Epoch);
    let s = || any::<u64>().prop_map(SeqNo);
    let m = || any::<u64>().prop_map(Millis);
    prop_oneof![
        (e(), s(), e(), records(), s(), s(), m()).prop_map(
            |(epoch, prev_seq, prev_epoch, records, commit_seq, flushed_seq, sent_at)| {
                Msg::Append {
                    epoch,
                    prev_seq,
                    prev_epoch,
                    records,
                    commit_seq,
                    flushed_seq,
                    sent_at,
                }
            }
        ),
        (e(), s(), m(), any::<bool>()).prop_map(|(epoch, last_seq, sent_at, rejoining)| {
            Msg::Ack {
                epoch,
                last_seq,
                sent_at,
                rejoining,
            }
        }),
        (e(), s()).prop_map(|(epoch, last_seq)| Msg::Gap { epoch, last_seq }),
        (e(), proptest::option::of(e()))
            .prop_map(|(epoch, handover_of)| Msg::Promise { epoch, handover_of }),
        e().prop_map(|epoch| Msg::Handover { epoch }),
        (e(), s(), any::<bool>()).prop_map(|(epoch, upto, hard)| Msg::FlushRequest {
            epoch,
            upto,
            hard
        }),
        (e(), e(), s()).prop_map(|(epoch, last_epoch, last_seq)| Msg::Promised {
            epoch,
            last_epoch,
            last_seq
        }),
        (e(), m()).prop_map(|(promised_epoch, lease_remaining)| Msg::Refused {
            promised_epoch,
            lease_remaining
        }),
        (e(), s()).prop_map(|(epoch, after_seq)| Msg::Fetch { epoch, after_seq }),
        (e(), s(), e(), records()).prop_map(|(epoch, prev_seq, prev_epoch, records)| {
            Msg::Records {
                epoch,
                prev_seq,
                prev_epoch,
                records,
            }
        }),
    ]
}

proptest! {
    #[test]
    fn messages_round_trip(m in msg(), shard in any::<u32>(), from in any::<u32>()) {
        let b = encode(ShardId(shard), NodeId(from), &m);
        let got = decode(&b).expect("decodes");
        prop_assert_eq!(got, Envelope { shard: ShardId(shard), from: NodeId(from), msg: m });
    }

    #[test]
    fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&Bytes::from(data));
    }

    #[test]
    fn any_flipped_or_cut_message_is_rejected(m in msg(), flip in any::<usize>(), bit in 0u8..8) {
        let b = encode(ShardId(1), NodeId(2), &m);
        let mut v = b.to_vec();
        let i = flip % v.len();
        v[i] ^= 1 << bit;
        prop_assert!(decode(&Bytes::from(v)).is_err());
        let cut = b.slice(..flip % b.len());
        prop_assert!(decode(&cut).is_err());
    }
}

#[test]
fn unknown_version_is_rejected() {
    let b = encode(
        ShardId(1),
        NodeId(2),
        &Msg::Promise {
            epoch: Epoch(3),
            handover_of: None,
        },
    );
    let mut v = b.to_vec();
    v[4] = 9;
    let n = v.len() - 4;
    let crc = crc32c::crc32c(&v[..n]);
    v[n..].copy_from_slice(&crc.to_le_bytes());
    let err = decode(&Bytes::from(v)).expect_err("rejected");
    assert_eq!(err.what, "unsupported message version");
}
