//! The served contract is the generated one (the checked-in one is compared with it by
//! `gateway/tests/openapi.rs`).

use crate::env::Env;

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
