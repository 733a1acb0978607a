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
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn, ParameterStyle};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder};
use utoipa::openapi::schema::{Schema, SchemaType};
use utoipa::openapi::{
    ContentBuilder, Object, OpenApi, Ref, RefOr, Required, ResponseBuilder, Type,
};

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
        (name = "admin", description = "The admin API behind the dashboard (`/ui/`): cluster, nodes, shards, events, traffic, hot keys (design note 0010). Every route but signing in and out needs the role `admin`: an admin API key or the cluster secret as a bearer token, or the session cookie that signing in sets (design note 0012)."),
        (name = "membership", description = "Membership changes (design note 0009): add, drain, remove and replace members while the cluster serves, and follow the moves they cause. Same credentials as the admin API (role `admin`). Refusals change nothing and have stable codes: member_not_found (404), member_exists, member_state, too_few_members, member_not_empty, members_outdated, membership_unsupported (409)."),
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
    ("/admin/v1/members", "post", &[400, 401, 409, 413, 415]),
    ("/admin/v1/members/{id}", "delete", &[400, 401, 404, 409]),
    (
        "/admin/v1/members/{id}/drain",
        "post",
        &[400, 401, 404, 409],
    ),
    (
        "/admin/v1/members/{id}/replace",
        "post",
        &[400, 401, 404, 409, 413, 415],
    ),
    ("/admin/v1/moves", "get", &[400, 401]),
];

fn describe(status: u16) -> &'static str {
    match status {
        400 => {
            "Bad request: key_empty, key_too_long, batch_empty, invalid_ttl, invalid_idempotency_key, malformed_json, unknown_field, invalid_request."
        }
        401 => {
            "unauthorized: no valid credentials (an API key, the cluster secret, or a dashboard session)."
        }
        403 => "forbidden: the API key's role or key prefixes do not allow this request.",
        404 => {
            "key_not_found, member_not_found (or not_found for unknown routes and unknown API key ids)."
        }
        409 => {
            "A membership change was refused, nothing changed: member_exists, member_state, too_few_members, member_not_empty, members_outdated or membership_unsupported."
        }
        412 => "precondition_failed: If-Match / If-None-Match did not hold.",
        413 => "value_too_large, body_too_large or batch_too_large.",
        415 => "unsupported_media_type: the body must be application/json.",
        429 => {
            "rate_limited: this key got more requests than its per-key limit allows, or this address presented too many wrong credentials; retry after Retry-After seconds."
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
                .description(Some("`Bearer realm=\"tierkv\"`"))
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

// Schemas the handlers' annotations cannot say, so that the contract describes what the
// server accepts (schemathesis finds no "mostly rejected" operation): parameters that
// exclude each other become one exploded object parameter whose `oneOf` names the valid
// combinations (serialized as ordinary query parameters: `?ttl=60`), `SignIn` is one of
// its two forms, and links join the operations for stateful testing.
//
// What stays looser than the server: a key is 1..=1024 *bytes* after percent-decoding,
// which JSON Schema cannot count (`maxLength: 1024` counts characters; a stricter character
// bound would make the server accept keys the contract calls invalid), and `expires_at`
// must lie in the future, which a static contract cannot say.

/// A closed object schema with these properties, all required.
fn closed(props: &[(&str, Schema)]) -> ObjectBuilder {
    let mut b = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
    for (name, schema) in props {
        b = b.property(*name, schema.clone()).required(*name);
    }
    b
}

/// An optional query parameter `name` whose object value is serialized as its properties
/// (`style: form, explode: true`).
fn exploded(name: &str, description: &str, schema: Schema) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .style(Some(ParameterStyle::Form))
        .explode(Some(true))
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// `ttl` or `expires_at` (not both) of a PUT.
fn expiry_param() -> Parameter {
    let ttl: Schema = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(315_360_000))
        .description(Some("Seconds from now until the value expires."))
        .into();
    let at: Schema = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .description(Some(
            "Unix time in seconds at which the value expires: in the future, at most 315360000 s away (400 invalid_ttl otherwise).",
        ))
        .into();
    exploded(
        "expiry",
        "Expiry, sent as the query parameter `ttl=<seconds>` or `expires_at=<unix seconds>` (not both; neither: no expiry).",
        OneOfBuilder::new()
            .item(closed(&[("ttl", ttl)]))
            .item(closed(&[("expires_at", at)]))
            .into(),
    )
}

/// `consistency` and `max_staleness` of a read (`max_staleness` only with `eventual`).
fn read_param() -> Parameter {
    let level = |v: &str| -> Schema {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([v]))
            .into()
    };
    let staleness: Schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(
            "^0*([0-9]{1,6}|[12][0-9]{6}|3[0-5][0-9]{5}|3600000)ms$|^0*([0-9]{1,3}|[12][0-9]{3}|3[0-5][0-9]{2}|3600)s$",
        ))
        .description(Some(
            "`<n>ms` or `<n>s`, at most 3600s. Default: 1s (`gateway.cache.default_max_staleness`).",
        ))
        .examples(["250ms"])
        .into();
    exploded(
        "read",
        "Read consistency, sent as the query parameters `consistency` and `max_staleness`: `consistency=strong` (the default: linearizable, confirmed by the shard's leader) or `consistency=eventual` (possibly stale, never staler than `max_staleness`; may be answered from the gateway's cache without a round trip). `max_staleness` applies to eventual reads only.",
        OneOfBuilder::new()
            .item(closed(&[("consistency", level("strong"))]))
            .item(closed(&[("consistency", level("eventual"))]))
            .item(closed(&[
                ("consistency", level("eventual")),
                ("max_staleness", staleness),
            ]))
            .into(),
    )
}

/// Replaces the parameters named `names` of `op` with `with`, where the first of them was.
fn replace_params(op: &mut Operation, names: &[&str], with: Parameter) {
    let Some(params) = op.parameters.as_mut() else {
        return;
    };
    let at = params
        .iter()
        .position(|p| matches!(p, RefOr::T(p) if names.contains(&p.name.as_str())))
        .unwrap_or(params.len());
    params.retain(|p| !matches!(p, RefOr::T(p) if names.contains(&p.name.as_str())));
    params.insert(at.min(params.len()), RefOr::T(with));
}

/// `SignIn`: exactly one of `secret` and `token`.
fn sign_in_schema(doc: &mut OpenApi) {
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let text = |d: &str| -> Schema {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(d))
            .into()
    };
    let schema: Schema = OneOfBuilder::new()
        .description(Some(
            "`POST /admin/v1/session`: exactly one of `secret` and `token`.",
        ))
        .item(closed(&[("secret", text("The cluster secret."))]))
        .item(closed(&[(
            "token",
            text("A one-time login token (from the link `tierkv dev` prints)."),
        )]))
        .into();
    components
        .schemas
        .insert("SignIn".to_owned(), RefOr::T(schema));
}

/// OpenAPI links for stateful testing and generated clients: a written key can be read
/// (`GetWritten`) and deleted with its ETag (`DeleteWritten`); a read key deleted with the
/// ETag it was read with; a listed key read.
fn links(doc: &mut OpenApi) {
    let link = |op: &str, params: &[(&str, &str)], description: &str| {
        let mut b = LinkBuilder::new().operation_id(op).description(description);
        for (name, value) in params {
            b = b.parameter(*name, *value);
        }
        RefOr::T(b.build())
    };
    let add = |doc: &mut OpenApi, path: &str, method: &str, status: &str, name: &str, l| {
        let Some(item) = doc.paths.paths.get_mut(path) else {
            return;
        };
        let op = match method {
            "get" => item.get.as_mut(),
            "put" => item.put.as_mut(),
            _ => None,
        };
        if let Some(op) = op
            && let Some(RefOr::T(resp)) = op.responses.responses.get_mut(status)
        {
            resp.links.insert(name.to_owned(), l);
        }
    };
    for status in ["200", "201"] {
        add(
            doc,
            "/v1/kv/{key}",
            "put",
            status,
            "GetWritten",
            link(
                "get_kv",
                &[("key", "$request.path.key")],
                "Read the value just written.",
            ),
        );
        add(
            doc,
            "/v1/kv/{key}",
            "put",
            status,
            "DeleteWritten",
            link(
                "delete_kv",
                &[
                    ("key", "$request.path.key"),
                    ("If-Match", "$response.header.ETag"),
                ],
                "Delete the value just written, if it is still the current version.",
            ),
        );
    }
    add(
        doc,
        "/v1/kv/{key}",
        "get",
        "200",
        "DeleteRead",
        link(
            "delete_kv",
            &[
                ("key", "$request.path.key"),
                ("If-Match", "$response.header.ETag"),
            ],
            "Delete the value just read, if it is still the current version.",
        ),
    );
    add(
        doc,
        "/v1/kv",
        "get",
        "200",
        "GetListed",
        link(
            "get_kv",
            &[("key", "$response.body#/items/0/key")],
            "Read the first key of the page (a `utf8` key; a `base64` one must be decoded first).",
        ),
    );
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
            match (path.as_str(), method) {
                ("/v1/kv/{key}", "put") => {
                    replace_params(op, &["ttl", "expires_at"], expiry_param())
                }
                ("/v1/kv/{key}", "get") => {
                    replace_params(op, &["consistency", "max_staleness"], read_param());
                }
                _ => {}
            }
        }
    }
    sign_in_schema(&mut doc);
    links(&mut doc);
    crate::auth::openapi::apply(&mut doc, problem_response);
    doc
}

/// [`openapi`] as YAML (what `GET /openapi.yaml` serves and `openapi.yaml` holds).
#[must_use]
pub fn openapi_yaml() -> String {
    openapi()
        .to_yaml()
        .unwrap_or_else(|e| format!("# could not render the OpenAPI document: {e}\n"))
}
