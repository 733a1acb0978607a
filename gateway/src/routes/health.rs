//! `GET /health/live`, `GET /health/ready`, `GET /metrics`, `GET /openapi.yaml`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use tierkv_engine::metrics::{TEXT_CONTENT_TYPE, encode_text};

use crate::error::ApiError;
use crate::state::AppState;

/// Health answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` (live) or `ready`.
    pub status: String,
}

/// Liveness: 200 while the process runs.
#[utoipa::path(get, path = "/health/live", tag = "ops",
    responses((status = 200, description = "The process is running.", body = Health)))]
pub(crate) async fn live() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: 200 only when storage is open and object storage reachable.
#[utoipa::path(get, path = "/health/ready", tag = "ops",
    responses((status = 200, description = "Ready to serve.", body = Health)))]
pub(crate) async fn ready(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state
        .backend()
        .ready()
        .await
        .map_err(|why| ApiError::StorageUnavailable {
            cause: why.to_string(),
        })?;
    Ok(Json(Health {
        status: "ready".into(),
    }))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format 0.0.4.", body = String,
        content_type = "text/plain; version=0.0.4")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = encode_text(&state.inner.registry).map_err(|e| ApiError::Internal {
        cause: format!("encoding /metrics: {e}"),
    })?;
    let mut res = text.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(TEXT_CONTENT_TYPE),
    );
    Ok(res)
}

/// The OpenAPI document of this API.
#[utoipa::path(get, path = "/openapi.yaml", tag = "ops",
    responses((status = 200, description = "OpenAPI 3.1 document (a YAML mapping).", body = serde_json::Value,
        content_type = "application/yaml")))]
pub(crate) async fn openapi_yaml() -> Response {
    let mut res = crate::openapi::openapi_yaml().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/yaml"),
    );
    res
}
