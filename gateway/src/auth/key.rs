//! The API key format (design note 0012): `tkv_<id>_<secret>`, `id` 16 lowercase hex
//! characters (8 random bytes, public), `secret` 43 characters of unpadded base64url
//! (32 random bytes). Stored only as [`digest`]: SHA-256 over
//! `tierkv-api-key|v1|<id>|<secret>`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// What every key starts with.
pub const KEY_PREFIX: &str = "tkv_";
/// Length of a key id (hex characters).
pub(crate) const ID_LEN: usize = 16;
/// Length of a key's secret part (base64url characters of 32 bytes).
const SECRET_LEN: usize = 43;
/// What the stored digest covers before the id and the secret.
const HASH_CONTEXT: &str = "tierkv-api-key|v1|";

/// A key just made: its id, the whole key (shown once) and its digest (stored).
#[derive(Clone)]
pub(crate) struct NewKey {
    pub(crate) id: String,
    pub(crate) token: String,
    pub(crate) digest: [u8; 32],
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A new random key (the operating system's generator through `rand`).
pub(crate) fn generate() -> NewKey {
    let id = hex(&rand::random::<[u8; 8]>());
    let secret = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let digest = digest(&id, &secret);
    NewKey {
        token: format!("{KEY_PREFIX}{id}_{secret}"),
        id,
        digest,
    }
}

/// `(id, secret)` of a token that has the shape of a key; `None` for anything else.
pub(crate) fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let secret_ok = secret.len() == SECRET_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

/// Whether `id` is a well-formed key id.
pub(crate) fn is_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The stored digest of key `id` with `secret`.
pub(crate) fn digest(id: &str, secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(HASH_CONTEXT.as_bytes());
    h.update(id.as_bytes());
    h.update(b"|");
    h.update(secret.as_bytes());
    h.finalize().into()
}

pub(crate) fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

/// A 32-byte digest from its hex form.
pub(crate) fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_differ() {
        let a = generate();
        let b = generate();
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), KEY_PREFIX.len() + ID_LEN + 1 + SECRET_LEN);
        let (id, secret) = parse(&a.token).expect("parses");
        assert_eq!(id, a.id);
        assert_eq!(digest(id, secret), a.digest);
        assert_ne!(digest(&b.id, secret), a.digest, "the id is hashed too");
        assert_eq!(unhex32(&hex(&a.digest)), Some(a.digest));
        assert!(!format!("{a:?}").contains(secret), "Debug hides the secret");
    }

    #[test]
    fn other_shapes_are_not_keys() {
        let t = generate().token;
        for bad in [
            "",
            "tkv_",
            "tierkv-dev-secret",
            &t[..t.len() - 1],
            &format!("{t}x"),
            &t.replacen("tkv_", "tkx_", 1),
            &t.to_uppercase(),
            &t.replacen('_', "-", 2),
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        assert!(is_id("0123456789abcdef"));
        assert!(!is_id("0123456789abcdeF"));
        assert!(!is_id("0123"));
    }
}
