//! The OpenAPI 3.1 contract, generated from the handlers' `#[utoipa::path]` annotations plus
//! the error responses each operation can give (added here from one table, so every error
//! is a `Problem` with its `code`).
//!
//! `openapi.yaml` at the repository root is [`openapi_yaml`] checked in; the `openapi_yaml_is_current`
//! test fails when they differ. Regenerate with
//! `TIERKV_BLESS=1 cargo test -p tierkv-gateway openapi`.
//!
//! Fuzzing with schemathesis (`scripts/api-fuzz`: a live `tierkv dev`, then
//! `schemathesis run openapi.yaml --checks all`) finds no 5xx and no
//! schema violations; its `positive_data_acceptance` check does report the API's legitimate
//! 412 (conditional requests) and 422 (reused `Idempotency-Key`) answers, so exclude it
//! (`--exclude-checks positive_data_acceptance`) or accept 412/422.

use utoipa::OpenApi as _;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{Schema, SchemaType};
use utoipa::openapi::{ContentBuilder, Object, OpenApi, Ref, RefOr, ResponseBuilder, Type};

use crate::problem::PROBLEM_JSON;
use crate::routes::{batch, health, kv, list};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "TierKV API",
        description = "Public HTTP/JSON API of TierKV, a distributed key-value database over object storage.\n\nEvery error is `application/problem+json` (RFC 9457) with a stable `code`: see the `ErrorCode` schema.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        kv::get_kv, kv::head_kv, kv::put_kv, kv::delete_kv,
        list::list, batch::batch,
        health::live, health::ready, health::metrics, health::openapi_yaml,
    ),
    components(schemas(crate::problem::Problem, crate::problem::ErrorCode)),
    tags(
        (name = "kv", description = "Keys and values."),
        (name = "ops", description = "Health, metrics, contract."),
        (name = "admin", description = "The admin API behind the dashboard (`/ui/`): cluster, nodes, shards, events, traffic, hot keys (design note 0010). Every route but signing in and out needs the cluster secret as a bearer token, or the session cookie that signing in sets."),
    )
)]
struct ApiDoc;

/// Error statuses an operation can answer, besides the 500/503/504 every operation can.
const ERRORS: &[(&str, &str, &[u16])] = &[
    ("/v1/kv/{key}", "get", &[400, 404, 429]),
    ("/v1/kv/{key}", "head", &[400, 404, 429]),
    ("/v1/kv/{key}", "put", &[400, 412, 413, 422, 429]),
    ("/v1/kv/{key}", "delete", &[400, 412, 422, 429]),
    ("/v1/kv", "get", &[400]),
    ("/v1/batch", "post", &[400, 413, 415, 422]),
    ("/admin/v1/session", "get", &[400, 401]),
    ("/admin/v1/session", "post", &[400, 401, 413, 415]),
    ("/admin/v1/session", "delete", &[400]),
    ("/admin/v1/cluster", "get", &[400, 401]),
    ("/admin/v1/nodes", "get", &[400, 401]),
    ("/admin/v1/shards", "get", &[400, 401]),
    ("/admin/v1/events", "get", &[400, 401]),
    ("/admin/v1/traffic", "get", &[400, 401]),
    ("/admin/v1/hot-keys", "get", &[400, 401]),
];

fn describe(status: u16) -> &'static str {
    match status {
        400 => {
            "Bad request: key_empty, key_too_long, batch_empty, invalid_ttl, invalid_idempotency_key, malformed_json, unknown_field, invalid_request."
        }
        401 => {
            "unauthorized: the admin API needs the cluster secret as a bearer token or a session cookie (or the credentials given are wrong)."
        }
        404 => "key_not_found (or not_found for unknown routes).",
        412 => "precondition_failed: If-Match / If-None-Match did not hold.",
        413 => "value_too_large, body_too_large or batch_too_large.",
        415 => "unsupported_media_type: the body must be application/json.",
        429 => {
            "rate_limited: this key got more requests than its per-key limit allows; retry after Retry-After seconds."
        }
        422 => {
            "idempotency_key_reused: the Idempotency-Key was first used for a different request."
        }
        500 => "data_corruption or internal.",
        503 => {
            "backpressure, storage_unavailable, not_leader, overloaded (with Retry-After) or shutting_down."
        }
        504 => "timeout.",
        _ => "Error.",
    }
}

fn problem_response(status: u16) -> RefOr<utoipa::openapi::Response> {
    let mut b = ResponseBuilder::new()
        .description(describe(status))
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        );
    if status == 401 {
        b = b.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(Some(Object::with_type(Type::String)))
                .description(Some("`Bearer realm=\"tierkv-admin\"`"))
                .build(),
        );
    }
    if matches!(status, 429 | 503) {
        b = b.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(Object::with_type(Type::Integer)))
                .description(Some(
                    "Seconds to wait before retrying (not on shutting_down).",
                ))
                .build(),
        );
    }
    RefOr::T(b.build())
}

fn add_errors(op: &mut Operation, statuses: &[u16]) {
    for s in statuses.iter().chain(&[500, 503, 504]) {
        op.responses
            .responses
            .entry(s.to_string())
            .or_insert_with(|| problem_response(*s));
    }
}

/// Optional parameters are simply absent when not given: `type: [string, "null"]` (which
/// utoipa emits for `Option<T>`) would invite clients and fuzzers to send the text `null`.
fn not_nullable(op: &mut Operation) {
    for p in op.parameters.iter_mut().flatten() {
        if let RefOr::T(p) = p
            && let Some(RefOr::T(Schema::Object(o))) = p.schema.as_mut()
            && let SchemaType::Array(types) = &o.schema_type
        {
            let kept: Vec<Type> = types
                .iter()
                .filter(|t| **t != Type::Null)
                .cloned()
                .collect();
            if let [one] = kept.as_slice() {
                o.schema_type = SchemaType::Type(one.clone());
            }
        }
    }
}

/// The admin API's credentials: the cluster secret as a bearer token, or the session cookie.
fn security_schemes(doc: &mut OpenApi) {
    use utoipa::openapi::security::{
        ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
    };
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("The cluster secret (`cluster.secret`)."))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            "tierkv_admin",
            "The session cookie `POST /admin/v1/session` sets.",
        ))),
    );
}

/// The OpenAPI document of the API.
#[must_use]
pub fn openapi() -> OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::admin::ApiDocAdmin::openapi());
    security_schemes(&mut doc);
    for (path, item) in &mut doc.paths.paths {
        let ops = [
            ("get", item.get.as_mut()),
            ("head", item.head.as_mut()),
            ("put", item.put.as_mut()),
            ("post", item.post.as_mut()),
            ("delete", item.delete.as_mut()),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let extra = ERRORS
                .iter()
                .find(|(p, m, _)| p == path && *m == method)
                .map_or(&[][..], |(_, _, s)| *s);
            add_errors(op, extra);
            not_nullable(op);
        }
    }
    doc
}

/// [`openapi`] as YAML (what `GET /openapi.yaml` serves and `openapi.yaml` holds).
#[must_use]
pub fn openapi_yaml() -> String {
    openapi()
        .to_yaml()
        .unwrap_or_else(|e| format!("# could not render the OpenAPI document: {e}\n"))
}
