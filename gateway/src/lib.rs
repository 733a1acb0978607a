//! Gateway (public HTTP API). Filled by the API issue.
