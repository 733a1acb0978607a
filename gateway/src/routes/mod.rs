//! The route table; one file per endpoint group.

pub(crate) mod batch;
pub(crate) mod health;
pub(crate) mod kv;
pub(crate) mod list;

use axum::Router;
use axum::routing::{get, post};

use crate::error::ApiError;
use crate::state::AppState;

/// Every route, without the edge layers.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/v1/kv/{*key}",
            get(kv::get_kv).put(kv::put_kv).delete(kv::delete_kv),
        )
        .route(
            "/v1/kv/",
            get(kv::empty_key).put(kv::empty_key).delete(kv::empty_key),
        )
        .route("/v1/kv", get(list::list))
        .route("/v1/batch", post(batch::batch))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/openapi.yaml", get(health::openapi_yaml))
        .merge(crate::admin::router())
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}
