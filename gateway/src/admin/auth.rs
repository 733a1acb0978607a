//! The operator's credentials (design note 0010, "Authentication"; note 0012): the cluster
//! secret and dashboard sessions, both of role `admin` on every route. API keys are checked
//! beside them by `crate::auth`, which calls [`AdminAuth::authorize`] for these:
//! - `Authorization: Bearer <secret>`, or
//! - the session cookie [`COOKIE`] = `v1.<expires_ms>.<nonce>.<mac>`, `mac` being
//!   HMAC-SHA-256 keyed with the secret over `tierkv-admin-session|v1|<expires_ms>|<nonce>`:
//!   any gateway with the same secret accepts it, and a new secret ends every session.
//!
//! A session starts with `POST /admin/v1/session` and either the secret or a one-time login
//! token ([`AdminAuth::issue_login_token`]: `tierkv dev` prints a link carrying one in its
//! URL fragment). Tokens are kept as SHA-256 digests only, valid once and for
//! [`LOGIN_TOKEN_LIFETIME`], at most [`MAX_LOGIN_TOKENS`] at a time. Every comparison of a
//! presented credential is constant-time (digests of equal length through `subtle`, or the
//! MAC's own verification); no credential is ever logged.

use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE as COOKIE_HEADER};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Name of the session cookie.
pub(crate) const COOKIE: &str = "tierkv_admin";
/// How long a session lasts.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long a login token may wait to be used.
pub const LOGIN_TOKEN_LIFETIME: Duration = Duration::from_secs(600);
/// Login tokens outstanding at most (the oldest is dropped beyond).
pub(crate) const MAX_LOGIN_TOKENS: usize = 16;
/// What the session MAC covers before the expiry and nonce.
const MAC_CONTEXT: &str = "tierkv-admin-session|v1|";

type HmacSha256 = Hmac<Sha256>;

/// How a request was authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// The cluster secret as a bearer token.
    Bearer,
    /// A session cookie valid until this unix millisecond.
    Session {
        /// Expiry of the session.
        expires_at_ms: u64,
    },
    /// An API key of role `admin` (design note 0012).
    Key,
    /// Authentication is turned off (`gateway.auth.enabled = false`).
    Open,
}

/// What a sign-in presents.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Credential<'a> {
    /// The cluster secret.
    Secret(&'a str),
    /// A one-time login token.
    Token(&'a str),
}

/// The admin credentials of a gateway: the cluster secret and outstanding login tokens.
pub(crate) struct AdminAuth {
    /// SHA-256 of the secret (presented secrets are compared as digests).
    secret_digest: [u8; 32],
    /// The session MAC, keyed with the secret.
    mac: HmacSha256,
    /// `(SHA-256 of the token, expiry in unix millis)`, oldest first. Held only to look up.
    tokens: Mutex<Vec<([u8; 32], u64)>>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth").finish_non_exhaustive()
    }
}

fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) const MISSING: &str =
    "the admin API needs the cluster secret as a bearer token, or a session cookie";
const WRONG: &str = "the credentials are not valid";
const EXPIRED: &str = "the session has expired; sign in again";

impl AdminAuth {
    /// Credentials for `secret` (the cluster secret; must not be empty).
    pub(crate) fn new(secret: &str) -> Option<Self> {
        if secret.is_empty() {
            return None;
        }
        let mac = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
        Some(Self {
            secret_digest: digest(secret.as_bytes()),
            mac,
            tokens: Mutex::new(Vec::new()),
        })
    }

    /// The operator check: the bearer secret, or else a valid session cookie.
    pub(crate) fn authorize(
        &self,
        headers: &HeaderMap,
        now_ms: u64,
    ) -> Result<Principal, ApiError> {
        if let Some(v) = headers.get(AUTHORIZATION) {
            // Presented credentials that are wrong fail, whatever else came with them.
            let presented = v
                .as_bytes()
                .strip_prefix(b"Bearer ")
                .ok_or(ApiError::Unauthorized { detail: WRONG })?;
            return if self.is_secret(presented) {
                Ok(Principal::Bearer)
            } else {
                Err(ApiError::Unauthorized { detail: WRONG })
            };
        }
        match session_cookie(headers) {
            Some(cookie) => self.verify_session(cookie, now_ms),
            None => Err(ApiError::Unauthorized { detail: MISSING }),
        }
    }

    /// Whether `presented` is the secret (constant-time over digests).
    fn is_secret(&self, presented: &[u8]) -> bool {
        digest(presented).ct_eq(&self.secret_digest).into()
    }

    /// Checks a sign-in; the value of a new session cookie and its expiry if it holds.
    /// A login token is used up by this call, valid or not for anything else.
    pub(crate) fn sign_in(
        &self,
        credential: Credential<'_>,
        now_ms: u64,
    ) -> Result<(String, u64), ApiError> {
        let ok = match credential {
            Credential::Secret(s) => self.is_secret(s.as_bytes()),
            Credential::Token(t) => self.redeem(t, now_ms),
        };
        if !ok {
            return Err(ApiError::Unauthorized { detail: WRONG });
        }
        let expires = now_ms.saturating_add(millis(SESSION_LIFETIME));
        Ok((
            self.session_value(expires, &hex(&rand::random::<[u8; 16]>())),
            expires,
        ))
    }

    fn session_mac(&self, expires_ms: u64, nonce: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(MAC_CONTEXT.as_bytes());
        mac.update(expires_ms.to_string().as_bytes());
        mac.update(b"|");
        mac.update(nonce.as_bytes());
        mac
    }

    fn session_value(&self, expires_ms: u64, nonce: &str) -> String {
        let tag = self.session_mac(expires_ms, nonce).finalize().into_bytes();
        format!("v1.{expires_ms}.{nonce}.{}", hex(&tag))
    }

    fn verify_session(&self, value: &str, now_ms: u64) -> Result<Principal, ApiError> {
        let wrong = ApiError::Unauthorized { detail: WRONG };
        let mut parts = value.split('.');
        let (Some("v1"), Some(expires), Some(nonce), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(wrong);
        };
        let expires_ms: u64 = expires
            .parse()
            .map_err(|_| ApiError::Unauthorized { detail: WRONG })?;
        let tag = unhex(tag).ok_or(ApiError::Unauthorized { detail: WRONG })?;
        // Constant-time (the MAC's own comparison).
        self.session_mac(expires_ms, nonce)
            .verify_slice(&tag)
            .map_err(|_| ApiError::Unauthorized { detail: WRONG })?;
        if expires_ms <= now_ms {
            return Err(ApiError::Unauthorized { detail: EXPIRED });
        }
        if expires_ms > now_ms.saturating_add(millis(SESSION_LIFETIME) + 60_000) {
            // Signed with this secret, but not by this version's rules.
            return Err(wrong);
        }
        Ok(Principal::Session {
            expires_at_ms: expires_ms,
        })
    }

    /// A new one-time login token, valid for [`LOGIN_TOKEN_LIFETIME`] from `now_ms`.
    pub(crate) fn issue_login_token(&self, now_ms: u64) -> String {
        let token = hex(&rand::random::<[u8; 32]>());
        let mut tokens = self.tokens.lock();
        tokens.retain(|(_, exp)| *exp > now_ms);
        if tokens.len() >= MAX_LOGIN_TOKENS {
            tokens.remove(0);
        }
        tokens.push((
            digest(token.as_bytes()),
            now_ms.saturating_add(millis(LOGIN_TOKEN_LIFETIME)),
        ));
        token
    }

    /// Uses up `token`: true if it was outstanding and not expired.
    fn redeem(&self, token: &str, now_ms: u64) -> bool {
        let presented = digest(token.as_bytes());
        let mut tokens = self.tokens.lock();
        // Every entry is compared (constant time each), so the position leaks nothing.
        let mut found = None;
        for (i, (d, _)) in tokens.iter().enumerate() {
            if bool::from(d.ct_eq(&presented)) {
                found = Some(i);
            }
        }
        match found {
            Some(i) => tokens.remove(i).1 > now_ms,
            None => false,
        }
    }
}

/// The value of the session cookie, if the request carries one.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value of a session.
pub(crate) fn set_cookie(value: &str) -> String {
    format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that ends a session in the browser.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn auth() -> AdminAuth {
        AdminAuth::new("s3cret").expect("a secret")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("header value"));
        }
        h
    }

    fn code(r: Result<Principal, ApiError>) -> Option<&'static str> {
        r.err().map(|e| match e {
            ApiError::Unauthorized { detail } => detail,
            _ => "other",
        })
    }

    #[test]
    fn bearer_secret_only() {
        let a = auth();
        assert_eq!(
            a.authorize(&headers(&[("authorization", "Bearer s3cret")]), NOW)
                .ok(),
            Some(Principal::Bearer)
        );
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret ",
            "bearer s3cret",
            "Basic s3cret",
            "s3cret",
        ] {
            assert_eq!(
                code(a.authorize(&headers(&[("authorization", wrong)]), NOW)),
                Some(WRONG),
                "{wrong}"
            );
        }
        assert_eq!(code(a.authorize(&HeaderMap::new(), NOW)), Some(MISSING));
        assert!(AdminAuth::new("").is_none(), "no secret, no admin API");
    }

    #[test]
    fn sessions_are_signed_expire_and_survive_other_cookies() {
        let a = auth();
        assert!(a.sign_in(Credential::Secret("nope"), NOW).is_err());
        let (value, expires) = a
            .sign_in(Credential::Secret("s3cret"), NOW)
            .expect("signed in");
        assert_eq!(expires, NOW + millis(SESSION_LIFETIME));
        let cookie = format!("theme=dark; {COOKIE}={value}; other=1");
        let h = headers(&[("cookie", &cookie)]);
        assert_eq!(
            a.authorize(&h, NOW + 1000).ok(),
            Some(Principal::Session {
                expires_at_ms: expires
            })
        );
        // Another gateway with the same secret accepts it; another secret does not.
        assert!(auth().authorize(&h, NOW).is_ok());
        let other = AdminAuth::new("other").expect("a secret");
        assert_eq!(code(other.authorize(&h, NOW)), Some(WRONG));
        assert_eq!(code(a.authorize(&h, expires)), Some(EXPIRED));
        // Any change to the value breaks it, the expiry above all.
        let (_, rest) = value.split_once('.').expect("dots");
        let (_, after_expiry) = rest.split_once('.').expect("dots");
        let longer = format!("v1.{}.{after_expiry}", expires + 3_600_000);
        for tampered in [
            longer.as_str(),
            &value[..value.len() - 1],
            &value.replace("v1.", "v2."),
            "v1.1.2.3",
            "",
        ] {
            let c = format!("{COOKIE}={tampered}");
            assert!(
                a.authorize(&headers(&[("cookie", &c)]), NOW).is_err(),
                "{tampered}"
            );
        }
        // A bearer header that is wrong fails even with a good cookie.
        let both = headers(&[("cookie", &cookie), ("authorization", "Bearer x")]);
        assert_eq!(code(a.authorize(&both, NOW)), Some(WRONG));
    }

    #[test]
    fn login_tokens_work_once_and_expire() {
        let a = auth();
        let t = a.issue_login_token(NOW);
        assert_eq!(t.len(), 64);
        assert!(a.sign_in(Credential::Token("00"), NOW).is_err());
        assert!(a.sign_in(Credential::Token(&t), NOW + 1).is_ok());
        assert!(
            a.sign_in(Credential::Token(&t), NOW + 2).is_err(),
            "used up"
        );
        let late = a.issue_login_token(NOW);
        assert!(
            a.sign_in(Credential::Token(&late), NOW + millis(LOGIN_TOKEN_LIFETIME))
                .is_err()
        );
        assert!(
            a.sign_in(Credential::Token(&late), NOW).is_err(),
            "used up by the late try"
        );
        // Bounded: the oldest go first.
        let first = a.issue_login_token(NOW);
        for _ in 0..MAX_LOGIN_TOKENS {
            a.issue_login_token(NOW);
        }
        assert!(a.tokens.lock().len() <= MAX_LOGIN_TOKENS);
        assert!(a.sign_in(Credential::Token(&first), NOW).is_err());
        // A token is never usable as the secret, nor the secret as a token.
        let t = a.issue_login_token(NOW);
        assert!(
            a.authorize(&headers(&[("authorization", &format!("Bearer {t}"))]), NOW)
                .is_err()
        );
        assert!(a.sign_in(Credential::Token("s3cret"), NOW).is_err());
    }

    #[test]
    fn cookies_attributes() {
        let c = set_cookie("v");
        for part in [
            "tierkv_admin=v",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=43200",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(clear_cookie().contains("Max-Age=0"));
    }
}
