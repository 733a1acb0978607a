//! Fuzz targets of the gateway's decoders of bytes from disk: the entries of the value
//! cache's disk tier (see `tierkv_engine::fuzzing`; the workspace's
//! `tests/fuzz_decoders.rs` runs them). Compiled for this crate's tests and, with the
//! `testing` feature, for other crates'.

use bytes::Bytes;
use foyer::Code;
use tierkv_engine::fuzzing::{Reseal, Target};

use crate::cache::CachedValue;
use crate::cache::store::StoreKey;

fn encoded(v: &impl Code) -> Bytes {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    #[allow(clippy::expect_used)]
    v.encode(&mut out).expect("encoding into memory");
    Bytes::from(out)
}

/// The disk tier's key and value codecs.
#[must_use]
pub fn targets() -> Vec<Target> {
    let values = [
        CachedValue {
            version: 42,
            value: Bytes::from_static(b"a cached value"),
            content_type: Some(Bytes::from_static(b"text/plain")),
            expires_at: Some(1_700_000_000_000),
        },
        CachedValue {
            version: 7,
            value: Bytes::new(),
            content_type: None,
            expires_at: None,
        },
    ];
    vec![
        Target {
            name: "gateway_cache.key",
            samples: vec![encoded(&StoreKey(Bytes::from_static(b"users/42")))],
            reseal: Reseal::None,
            fixed_allocation: 0,
            decode: Box::new(|b| {
                let _ = StoreKey::decode(&mut &b[..]);
            }),
        },
        Target {
            name: "gateway_cache.value",
            samples: values.iter().map(encoded).collect(),
            reseal: Reseal::None,
            fixed_allocation: 0,
            decode: Box::new(|b| {
                let _ = CachedValue::decode(&mut &b[..]);
            }),
        },
    ]
}
