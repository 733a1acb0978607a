//! In-process tests of the public API: `app(state)` over a `LocalBackend` on an in-memory
//! object store, driven with `tower::ServiceExt::oneshot` (plus one real listener).

mod batch;
mod edge;
mod env;
mod idempotency;
mod kv;
mod list;
mod openapi;
