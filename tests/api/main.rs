//! In-process tests of the public API: `app(state)` over `tierkv serve`'s backend (a node
//! whose shards have one replica each, in this process) on an in-memory object store,
//! driven with `tower::ServiceExt::oneshot` (plus one real listener).

mod auth;
mod batch;
mod edge;
mod env;
mod idempotency;
mod kv;
mod limits;
mod list;
mod membership;
mod openapi;
