//! Key namespaces inside a shard and the JSON encoding of binary keys.
//!
//! Engine key layout (decided; part of the stored format):
//!
//! | namespace         | engine key                               |
//! |-------------------|------------------------------------------|
//! | user data         | `0x01` ++ user key                       |
//! | idempotency record| `0x00` ++ `b"idem/"` ++ idempotency key  |
//!
//! Both are routed by the *user* key (`routing::shard_for(user_key, n)`), so a write's
//! idempotency record lives in the data key's shard and is written in the same atomic batch.
//!
//! JSON carries keys as strings with an encoding marker (`utf8` or `base64`, standard
//! alphabet with padding): the gateway answers `utf8` whenever the bytes are valid UTF-8 and
//! `base64` otherwise, and accepts either in requests (base64 is decoded leniently: padding
//! optional). Any key round-trips this way.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tierkv_engine::types::MAX_USER_KEY_LEN;
use utoipa::ToSchema;

use crate::error::ApiError;

/// Lenient decoder: standard alphabet, padding optional, non-zero trailing bits allowed.
const B64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Namespace byte of user data.
pub(crate) const DATA_NS: u8 = 0x01;
/// Namespace byte of internal records.
pub(crate) const INTERNAL_NS: u8 = 0x00;
/// Prefix of idempotency records (after [`INTERNAL_NS`]).
pub(crate) const IDEM_PREFIX: &[u8] = b"idem/";

/// Engine key of user key `user`.
#[must_use]
pub(crate) fn data_key(user: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(user.len() + 1);
    b.put_u8(DATA_NS);
    b.put_slice(user);
    b.freeze()
}

/// Engine key of the idempotency record of `idem`.
#[must_use]
pub(crate) fn idem_record_key(idem: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(idem.len() + 1 + IDEM_PREFIX.len());
    b.put_u8(INTERNAL_NS);
    b.put_slice(IDEM_PREFIX);
    b.put_slice(idem);
    b.freeze()
}

/// The user key of a data engine key, if it is one.
#[must_use]
pub(crate) fn user_key(engine_key: &Bytes) -> Option<Bytes> {
    (engine_key.first() == Some(&DATA_NS)).then(|| engine_key.slice(1..))
}

/// Checks a user key against the data model (1..=1024 bytes).
pub(crate) fn validate_user_key(key: &[u8]) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(ApiError::KeyEmpty);
    }
    if key.len() > MAX_USER_KEY_LEN {
        return Err(ApiError::KeyTooLong {
            len: key.len(),
            max: MAX_USER_KEY_LEN,
        });
    }
    Ok(())
}

/// How a key or value is written in a JSON string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The string is the bytes (valid UTF-8).
    #[default]
    Utf8,
    /// The string is the bytes in standard base64 with padding.
    Base64,
}

impl Encoding {
    /// Decodes `s` written in this encoding.
    pub fn decode(self, s: &str, what: &str) -> Result<Bytes, ApiError> {
        match self {
            Self::Utf8 => Ok(Bytes::copy_from_slice(s.as_bytes())),
            Self::Base64 => B64_LENIENT
                .decode(s)
                .map(Bytes::from)
                .map_err(|e| ApiError::invalid(format!("{what} is not valid base64: {e}"))),
        }
    }
}

/// Writes `bytes` as a JSON string: UTF-8 when possible, else base64.
#[must_use]
pub(crate) fn encode(bytes: &[u8]) -> (String, Encoding) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_owned(), Encoding::Utf8),
        Err(_) => (B64.encode(bytes), Encoding::Base64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_do_not_overlap_and_round_trip() {
        let d = data_key(b"abc");
        assert_eq!(&d[..], b"\x01abc");
        assert_eq!(user_key(&d).as_deref(), Some(&b"abc"[..]));
        let i = idem_record_key(b"abc");
        assert_eq!(&i[..], b"\x00idem/abc");
        assert_eq!(user_key(&i), None);
    }

    #[test]
    fn encoding_round_trips_any_bytes() {
        for k in [&b"plain"[..], b"\xff\xfe\x00", b"a b/c"] {
            let (s, enc) = encode(k);
            assert_eq!(&enc.decode(&s, "key").expect("decode")[..], k);
        }
        assert_eq!(encode(b"\xff").1, Encoding::Base64);
        assert!(Encoding::Base64.decode("!!", "key").is_err());
    }

    #[test]
    fn key_limits() {
        assert!(matches!(validate_user_key(b""), Err(ApiError::KeyEmpty)));
        assert!(validate_user_key(&[b'a'; 1024]).is_ok());
        assert!(matches!(
            validate_user_key(&[b'a'; 1025]),
            Err(ApiError::KeyTooLong { .. })
        ));
    }
}
