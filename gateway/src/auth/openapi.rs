//! The contract's side of authentication (design note 0012): the `api_key` security scheme
//! beside `bearer` (the cluster secret) and `session` (the dashboard's cookie), and each
//! operation's requirements and `401`/`403` answers, derived from [`super::classify`] so the
//! document cannot disagree with the middleware.

use utoipa::OpenApi as _;
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};

use super::{Need, Role, classify};

/// Error statuses of the key routes, besides those of every protected operation.
const KEY_ERRORS: &[(&str, &str, &[u16])] = &[
    ("/admin/v1/keys", "get", &[400]),
    ("/admin/v1/keys", "post", &[400, 413, 415]),
    ("/admin/v1/keys/{id}", "delete", &[400, 404]),
];

/// Adds the key routes, the schemes, and every operation's requirements. `problem` builds
/// an error answer for a status.
pub(crate) fn apply(
    doc: &mut OpenApi,
    problem: impl Fn(u16) -> utoipa::openapi::RefOr<utoipa::openapi::Response>,
) {
    doc.merge(super::handlers::ApiDocKeys::openapi());
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "api_key",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("tkv_<id>_<secret>")
                .description(Some(
                    "An API key (`POST /admin/v1/keys`, `tierkv admin keys create`). Roles: `read` (GET/HEAD on /v1), `write` (all of /v1), `admin` (everything).",
                ))
                .build(),
        ),
    );
    for (path, item) in &mut doc.paths.paths {
        let ops: [(axum::http::Method, Option<&mut Operation>); 5] = [
            (axum::http::Method::GET, item.get.as_mut()),
            (axum::http::Method::HEAD, item.head.as_mut()),
            (axum::http::Method::PUT, item.put.as_mut()),
            (axum::http::Method::POST, item.post.as_mut()),
            (axum::http::Method::DELETE, item.delete.as_mut()),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let lower = method.as_str().to_ascii_lowercase();
            for (_, _, statuses) in KEY_ERRORS
                .iter()
                .filter(|(p, m, _)| p == path && *m == lower)
            {
                for st in *statuses {
                    op.responses
                        .responses
                        .entry(st.to_string())
                        .or_insert_with(|| problem(*st));
                }
            }
            // Path templates classify like the concrete paths they stand for.
            match classify(&method, &path.replace("{key}", "k").replace("{id}", "0")) {
                Need::Open => op.security = Some(vec![SecurityRequirement::default()]),
                Need::Role(role) => {
                    op.security = Some(vec![
                        SecurityRequirement::new("api_key", Vec::<String>::new()),
                        SecurityRequirement::new("bearer", Vec::<String>::new()),
                        SecurityRequirement::new("session", Vec::<String>::new()),
                    ]);
                    let responses = &mut op.responses.responses;
                    responses
                        .entry("401".to_owned())
                        .or_insert_with(|| problem(401));
                    responses
                        .entry("403".to_owned())
                        .or_insert_with(|| problem(403));
                    responses
                        .entry("429".to_owned())
                        .or_insert_with(|| problem(429));
                    let who = match role {
                        Role::Read => "Role: `read` or above.",
                        Role::Write => "Role: `write` or above.",
                        Role::Admin => "Role: `admin`.",
                    };
                    let d = op.description.get_or_insert_with(String::new);
                    if !d.is_empty() {
                        d.push_str("\n\n");
                    }
                    d.push_str(who);
                }
            }
        }
    }
}
