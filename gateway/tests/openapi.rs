//! The checked-in contract matches the generated one, and it names every error code and
//! route. (That the served one matches too is checked with the API's other in-process tests,
//! `tests/api/openapi.rs` at the repository root.)

use std::path::PathBuf;

#[test]
fn openapi_yaml_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
    let generated = tierkv_gateway::openapi_yaml();
    if std::env::var_os("TIERKV_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write openapi.yaml");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "openapi.yaml is out of date; regenerate it with\n    TIERKV_BLESS=1 cargo test -p tierkv-gateway openapi"
    );
}

#[test]
fn every_error_code_is_in_the_contract() {
    let yaml = tierkv_gateway::openapi_yaml();
    for code in tierkv_gateway::ErrorCode::ALL {
        assert!(yaml.contains(code.as_str()), "{} missing", code.as_str());
    }
    for p in [
        "/v1/kv/{key}",
        "/v1/kv:",
        "/v1/batch",
        "/health/ready",
        "/metrics",
    ] {
        assert!(yaml.contains(p), "{p} missing");
    }
    assert!(yaml.contains("format: binary"), "raw values must be binary");
}
