//! The dashboard: `admin-ui/dist` (the built `admin-ui/`, committed) embedded in the binary,
//! so that a gateway serves it without Node anywhere (design note 0010, "The dashboard and
//! its embedding").
//!
//! - `GET /` and `GET /ui` redirect to `/ui/`.
//! - `GET /ui/<file>` serves the file; files under `assets/` have content-hashed names and
//!   are cached for a year, `index.html` is never cached.
//! - Any other path under `/ui/` that names no file serves `index.html` (the dashboard's
//!   own routes: `/ui/shards`, `/ui/keys`, ...), except under `assets/` (404).
//!
//! Every answer carries a strict `Content-Security-Policy` (scripts, styles and requests
//! from this origin only; no framing), `X-Content-Type-Options: nosniff` and
//! `Referrer-Policy: no-referrer`.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use include_dir::{Dir, include_dir};

use crate::error::ApiError;
use crate::state::AppState;

/// The built dashboard.
static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../admin-ui/dist");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'; form-action 'self'";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(to_ui))
        .route("/ui", get(to_ui))
        .route("/ui/", get(index))
        .route("/ui/{*path}", get(file))
}

async fn to_ui() -> Redirect {
    Redirect::to("/ui/")
}

async fn index() -> Response {
    serve("index.html").unwrap_or_else(|| ApiError::NotFound.into_response())
}

async fn file(Path(path): Path<String>) -> Response {
    if let Some(res) = serve(&path) {
        return res;
    }
    if path.starts_with("assets/") {
        return ApiError::NotFound.into_response();
    }
    index().await
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json" | "map") => "application/json",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The embedded file at `path` with its headers, if there is one.
fn serve(path: &str) -> Option<Response> {
    let f = DIST.get_file(path)?;
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut res = (StatusCode::OK, f.contents()).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed build is complete: an index that loads only files that are embedded.
    #[test]
    fn the_embedded_dashboard_is_complete() {
        let index = DIST
            .get_file("index.html")
            .and_then(|f| f.contents_utf8())
            .expect("admin-ui/dist/index.html is embedded");
        let mut refs = 0;
        for part in index.split("/ui/").skip(1) {
            let path: String = part
                .chars()
                .take_while(|c| !matches!(c, '"' | '\'' | '>' | ' ' | '?'))
                .collect();
            if path.is_empty() {
                continue;
            }
            refs += 1;
            assert!(
                DIST.get_file(&path).is_some(),
                "index.html loads {path}, which is not embedded"
            );
        }
        assert!(refs >= 1, "index.html loads no script: {index}");
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type("assets/index-1a2b.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("x"), "application/octet-stream");
    }
}
