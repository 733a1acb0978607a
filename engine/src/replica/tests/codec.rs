//! Round trip and robustness of the message encoding.

use bytes::Bytes;
use proptest::prelude::*;

use crate::replica::msg::{Envelope, Msg, decode, encode};
use crate::replica::{Membership, Millis, NodeId, Record};
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

fn voter_set() -> impl Strategy<Value = Vec<NodeId>> {
    proptest::collection::btree_set(any::<u32>(), 1..6)
        .prop_map(|s| s.into_iter().map(NodeId).collect())
}

fn membership() -> impl Strategy<Value = Membership> {
    prop_oneof![
        voter_set().prop_map(Membership::Steady),
        (voter_set(), voter_set()).prop_map(|(old, new)| Membership::Joint { old, new }),
    ]
}

fn records() -> impl Strategy<Value = Vec<Record>> {
    (0u64..1000, 0usize..4).prop_flat_map(|(start, n)| {
        (0..n)
            .map(|i| {
                let seq = start + i as u64 + 1;
                (
                    any::<u64>(),
                    proptest::collection::vec(entry(seq), 0..3),
                    proptest::option::weighted(0.3, membership()),
                )
                    .prop_map(move |(epoch, entries, membership)| Record {
                        epoch: Epoch(epoch),
                        seq: SeqNo(seq),
                        // A configuration record carries no entries.
                        entries: if membership.is_some() {
                            Vec::new()
                        } else {
                            entries
                        },
                        membership,
                    })
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
        (e(), e(), s(), proptest::option::of(membership())).prop_map(
            |(epoch, last_epoch, last_seq, membership)| Msg::Promised {
                epoch,
                last_epoch,
                last_seq,
                membership,
            }
        ),
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

fn ids(v: &[u32]) -> Vec<NodeId> {
    v.iter().copied().map(NodeId).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Bytes {
    let v: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect();
    Bytes::from(v)
}

/// Golden bytes (computed independently of this codec, design note 0009): a `Promised` that
/// carries a joint configuration is written in format version 2 with a trailing flag and
/// the configuration.
const PROMISED_V2: &str = "544b56520200030000000200000005070000000000000006000000000000002a00000000000000010203000100000002000000030000000300010000000200000004000000e3872cae";
/// An `Append` with a configuration record (steady {1,2,4}) and a barrier, version 2: each
/// record has a record-kind byte after its seq.
const APPEND_V2: &str = "544b565202000300000001000000010700000000000000290000000000000006000000000000000200000007000000000000002a000000000000000101030001000000020000000400000007000000000000002b00000000000000000000000028000000000000001e00000000000000e803000000000000c590db00";
/// A `Promised` of a replica under the genesis configuration: version 1, byte for byte what
/// nodes wrote before note 0009 (rolling upgrades see only these).
const PROMISED_V1: &str =
    "544b56520100030000000200000005070000000000000006000000000000002a00000000000000f0618cc0";

fn promised_v2() -> Msg {
    Msg::Promised {
        epoch: Epoch(7),
        last_epoch: Epoch(6),
        last_seq: SeqNo(42),
        membership: Some(Membership::Joint {
            old: ids(&[1, 2, 3]),
            new: ids(&[1, 2, 4]),
        }),
    }
}

fn append_v2() -> Msg {
    Msg::Append {
        epoch: Epoch(7),
        prev_seq: SeqNo(41),
        prev_epoch: Epoch(6),
        records: vec![
            Record {
                epoch: Epoch(7),
                seq: SeqNo(42),
                entries: Vec::new(),
                membership: Some(Membership::Steady(ids(&[1, 2, 4]))),
            },
            Record::batch(Epoch(7), SeqNo(43), Vec::new()),
        ],
        commit_seq: SeqNo(40),
        flushed_seq: SeqNo(30),
        sent_at: Millis(1000),
    }
}

#[test]
fn configuration_messages_match_their_golden_bytes() {
    assert_eq!(
        hex(&encode(ShardId(3), NodeId(2), &promised_v2())),
        PROMISED_V2
    );
    assert_eq!(hex(&encode(ShardId(3), NodeId(1), &append_v2())), APPEND_V2);
    let v1 = Msg::Promised {
        epoch: Epoch(7),
        last_epoch: Epoch(6),
        last_seq: SeqNo(42),
        membership: None,
    };
    assert_eq!(hex(&encode(ShardId(3), NodeId(2), &v1)), PROMISED_V1);
    for (bytes, from, msg) in [
        (PROMISED_V2, 2, promised_v2()),
        (APPEND_V2, 1, append_v2()),
        (PROMISED_V1, 2, v1),
    ] {
        let got = decode(&unhex(bytes)).expect("golden bytes decode");
        assert_eq!(
            got,
            Envelope {
                shard: ShardId(3),
                from: NodeId(from),
                msg
            }
        );
    }
}

/// Re-computes the trailer of a damaged message, so that the decoder has to notice the
/// damage itself, not through the checksum.
fn with_crc(mut v: Vec<u8>) -> Bytes {
    let n = v.len() - 4;
    let crc = crc32c::crc32c(&v[..n]);
    v[n..].copy_from_slice(&crc.to_le_bytes());
    Bytes::from(v)
}

#[test]
fn damaged_configurations_are_rejected_even_with_a_valid_checksum() {
    let good = unhex(PROMISED_V2).to_vec();
    // The configuration starts after the envelope (15), three u64s (24) and the flag (1).
    let at = 15 + 24;
    let mut flag = good.clone();
    flag[at] = 2;
    assert_eq!(
        decode(&with_crc(flag)).expect_err("bad flag").what,
        "configuration flag is not 0 or 1"
    );
    let mut tag = good.clone();
    tag[at + 1] = 9;
    assert_eq!(
        decode(&with_crc(tag)).expect_err("bad tag").what,
        "unknown configuration tag"
    );
    let mut empty = good.clone();
    // The old set's count (u16 at +2) set to zero: the ids that follow become trailing junk
    // or a misread new set; either way it is refused.
    empty[at + 2] = 0;
    assert!(decode(&with_crc(empty)).is_err());
    let mut dup = good.clone();
    // Old set {1,2,3} -> {1,1,3}: a voter listed twice.
    dup[at + 4 + 4] = 1;
    assert_eq!(
        decode(&with_crc(dup)).expect_err("duplicate").what,
        "a configuration lists a voter twice"
    );
    let mut huge = good;
    huge[at + 2] = 0xff;
    huge[at + 3] = 0xff;
    assert_eq!(
        decode(&with_crc(huge)).expect_err("count").what,
        "voter count exceeds input"
    );
    let mut kind = unhex(APPEND_V2).to_vec();
    // The first record's kind byte: envelope, three u64s, the record count, epoch and seq.
    kind[15 + 24 + 4 + 16] = 7;
    assert_eq!(
        decode(&with_crc(kind)).expect_err("record kind").what,
        "unknown record kind"
    );
}

#[test]
fn a_version_1_message_cannot_smuggle_a_configuration() {
    // The same Promised bytes as version 2, relabelled version 1: the configuration is
    // trailing input for a version-1 decoder, which refuses it.
    let mut v = unhex(PROMISED_V2).to_vec();
    v[4] = 1;
    assert!(decode(&with_crc(v)).is_err());
}
