//! Fuzzing of every decoder that reads bytes from the network or from disk (node RPC
//! requests, traced requests, responses, batch bodies and streamed answers; replication
//! messages; WAL payloads, frames and files; manifests; every part of a segment object;
//! shard maps): mutated valid encodings, resealed behind their checksums, and arbitrary
//! bytes. No input may panic a decoder or make it allocate more than a small multiple of
//! the input (a length or count field must never be trusted before the bytes it promises
//! are there).
//!
//! `TIERKV_FUZZ_CASES` sets the cases per target (CI runs the default; longer runs:
//! `TIERKV_FUZZ_CASES=200000 cargo nextest run --release --test fuzz_decoders`).

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tierkv_engine::fuzzing::{Target, cases, run};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated while `f` runs (reallocations count their growth).
fn allocated(f: &dyn Fn()) -> usize {
    let region = Region::new(GLOBAL);
    f();
    let c = region.change();
    c.bytes_allocated
        .saturating_add(usize::try_from(c.bytes_reallocated.max(0)).unwrap_or(usize::MAX))
}

fn fuzz(targets: Vec<Target>) {
    let n = cases(1000);
    let mut failures = Vec::new();
    for t in &targets {
        match run(t, n, &allocated) {
            Ok(o) => eprintln!(
                "{:<24} {} cases, largest allocation {} bytes for a {}-byte input",
                o.name, o.cases, o.largest_allocation.0, o.largest_allocation.1
            ),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn engine_decoders_survive_damaged_and_arbitrary_input() {
    fuzz(tierkv_engine::fuzzing::targets());
}

#[test]
fn wire_decoders_survive_damaged_and_arbitrary_input() {
    fuzz(tierkv_wire::fuzzing::targets());
}

/// The allocation check can fail: a decoder that trusts a count field is caught.
#[test]
fn a_decoder_that_trusts_a_length_field_is_caught() {
    use bytes::Bytes;
    use tierkv_engine::fuzzing::Reseal;
    let trusting = Target {
        name: "planted.trusting_length",
        samples: vec![Bytes::from_static(&[1, 0, 0, 0, 7])],
        reseal: Reseal::None,
        fixed_allocation: 0,
        decode: Box::new(|b| {
            if let Some(n) = b.get(..4) {
                let n = u32::from_le_bytes([n[0], n[1], n[2], n[3]]) as usize;
                let v: Vec<u8> = Vec::with_capacity(n.min(64 << 20));
                std::hint::black_box(v);
            }
        }),
    };
    let err = run(&trusting, 1000, &allocated).expect_err("a 64 MiB allocation from 5 bytes");
    assert!(err.contains("allocated"), "{err}");
    let panicking = Target {
        name: "planted.panic",
        samples: vec![Bytes::from_static(&[0, 1, 2, 3])],
        reseal: Reseal::None,
        fixed_allocation: 0,
        decode: Box::new(|b| assert!(b.len() != 3, "three bytes")),
    };
    let err = run(&panicking, 1000, &allocated).expect_err("a panic on a 3-byte input");
    assert!(err.contains("planted.panic"), "{err}");
}

#[test]
fn gateway_decoders_survive_damaged_and_arbitrary_input() {
    fuzz(tierkv_gateway::fuzzing::targets());
}
