//! The checked-in contract matches the generated one; the served one too.

use std::path::PathBuf;

use crate::env::Env;

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

#[tokio::test]
async fn openapi_yaml_is_served() {
    let env = Env::new().await;
    let r = env.get("/openapi.yaml").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/yaml"));
    assert_eq!(
        String::from_utf8(r.body.to_vec()).expect("utf8"),
        tierkv_gateway::openapi_yaml()
    );
}
