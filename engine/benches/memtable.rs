//! Memtable point operations at the size a busy shard's memtable reaches (100,000 keys of
//! the load generator's shape, `user` + 10 digits, 256-byte values), in random order so that
//! the CPU caches do not hold the skip list.
//!
//! `cargo bench -p tierkv-engine --bench memtable`

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use tierkv_engine::memtable::Memtable;
use tierkv_engine::types::{Entry, EntryKind, SeqNo};

const KEYS: u64 = 100_000;

fn key(n: u64) -> Bytes {
    Bytes::from(format!("user{n:010}"))
}

fn entry(n: u64, seq: u64) -> Entry {
    Entry {
        key: key(n),
        seq: SeqNo(seq),
        kind: EntryKind::Put {
            value: Bytes::from(vec![b'v'; 256]),
            content_type: None,
        },
        expires_at: None,
    }
}

/// A scrambled walk over `0..KEYS` (a multiplicative step coprime with `KEYS`).
fn next(i: &mut u64) -> u64 {
    *i = (*i + 7_919 * 13) % KEYS;
    *i
}

fn benches(c: &mut Criterion) {
    let m = Memtable::new();
    let mut i = 0;
    for seq in 1..=KEYS {
        let n = next(&mut i);
        m.insert(entry(n, seq));
    }
    let keys: Vec<Bytes> = (0..KEYS).map(key).collect();
    let mut g = c.benchmark_group("memtable_100k");
    g.throughput(Throughput::Elements(1));
    g.bench_function("get", |b| {
        b.iter(|| {
            let n = next(&mut i);
            let k = keys.get(usize::try_from(n).unwrap_or(0)).expect("key");
            m.get(k).expect("present")
        });
    });
    let mut seq = KEYS;
    g.bench_function("overwrite", |b| {
        b.iter_batched(
            || {
                seq += 1;
                entry(next(&mut i), seq)
            },
            |e| m.insert(e),
            criterion::BatchSize::SmallInput,
        );
    });
    // Keys this memtable has not seen: these link a skip-list node and add an index entry.
    let mut fresh = KEYS;
    g.bench_function("insert_new", |b| {
        b.iter_batched(
            || {
                seq += 1;
                fresh += 1;
                entry(fresh, seq)
            },
            |e| m.insert(e),
            criterion::BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
