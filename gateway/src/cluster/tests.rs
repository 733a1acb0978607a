//! Unit tests of the cluster client: options, the background task's lifetime, read retry
//! rules (the wire behaviour against fake nodes is in `tests/cluster_client.rs`).

use tokio::time::Instant;

use super::route::read_may_retry;
use super::*;
use tierkv_engine::ErrorKind;
use tierkv_wire::proto::RemoteError;
use tierkv_wire::shardmap;

#[test]
fn options_default_parse_and_validate() {
    let mut o: ClientOptions = serde_json::from_str("{}").expect("parse");
    assert_eq!(o, ClientOptions::default());
    // The secret is `cluster.secret`, never a second setting here.
    assert!(serde_json::from_str::<ClientOptions>(r#"{"secret":"s"}"#).is_err());
    o.secret = "s".to_owned();
    assert_eq!(o.leader_wait, Duration::from_secs(8));
    assert!(o.validate().is_ok());
    let mut o: ClientOptions =
        serde_json::from_str(r#"{"rpc_timeout":"250ms","map_refresh":"2s"}"#).expect("parse");
    o.secret = "s".to_owned();
    assert_eq!(o.rpc_timeout, Duration::from_millis(250));
    assert_eq!(o.map_refresh, Duration::from_secs(2));
    assert!(serde_json::from_str::<ClientOptions>(r#"{"nope":1}"#).is_err());
    assert!(matches!(
        ClientOptions::default().validate(),
        Err(ConnectError::Options {
            field: "secret",
            ..
        })
    ));
    let zero = ClientOptions {
        secret: "s".to_owned(),
        map_refresh: Duration::ZERO,
        ..ClientOptions::default()
    };
    assert!(matches!(
        zero.validate(),
        Err(ConnectError::Options {
            field: "map_refresh",
            ..
        })
    ));
    assert!(!format!("{o:?}").contains("\"s\""), "secret leaked: {o:?}");
}

#[tokio::test]
async fn dropping_the_backend_stops_the_background_task() {
    let store = ObjStore::in_memory();
    let member = tierkv_wire::shardmap::Member::active(NodeId(1), "127.0.0.1:1");
    let map = ShardMap::new(1, 2, 1, 8, vec![member]).expect("valid map");
    shardmap::publish(&store, &map).await.expect("publish");
    let b = ClusterBackend::connect(
        store,
        ClientOptions {
            secret: "s".to_owned(),
            map_refresh: Duration::from_millis(10),
            ..ClientOptions::default()
        },
    )
    .await
    .expect("connect");
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.shared.health.lock().is_none() {
        assert!(Instant::now() < deadline, "no status poll completed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let shared = Arc::downgrade(&b.shared);
    drop(b);
    // The task holds the only other reference; it lets go once it has stopped.
    while shared.upgrade().is_some() {
        assert!(Instant::now() < deadline, "background task still running");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn reads_retry_transient_errors_only() {
    assert!(read_may_retry(&RemoteError::Closed));
    assert!(read_may_retry(&RemoteError::Other {
        kind: ErrorKind::Unavailable,
        message: String::new(),
    }));
    assert!(!read_may_retry(&RemoteError::Invalid {
        reason: tierkv_engine::error::InvalidReason::ZeroLimit,
    }));
    assert!(!read_may_retry(&RemoteError::Other {
        kind: ErrorKind::Internal,
        message: String::new(),
    }));
}

#[test]
fn peer_addresses_are_validated() {
    let with = |items: &[&str]| ClientOptions {
        secret: "s".to_owned(),
        peer_addresses: items.iter().map(|s| (*s).to_owned()).collect(),
        ..ClientOptions::default()
    };
    assert!(with(&["2=10.0.0.2:7001"]).validate().is_ok());
    for bad in [&["2=nowhere"][..], &["2=h:1", "2=h:2"], &["two=h:1"]] {
        assert!(
            matches!(
                with(bad).validate(),
                Err(ConnectError::Options {
                    field: "peer_addresses",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn a_node_is_dialled_at_its_override_instead_of_its_map_address() {
    let store = ObjStore::in_memory();
    // The map's address refuses connections; the override is a listener of this test.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_addr = dead.local_addr().expect("addr").to_string();
    drop(dead);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let via = listener.local_addr().expect("addr").to_string();
    let member = tierkv_wire::shardmap::Member::active(NodeId(1), dead_addr);
    let map = ShardMap::new(1, 2, 1, 8, vec![member]).expect("valid map");
    shardmap::publish(&store, &map).await.expect("publish");
    let b = ClusterBackend::connect(
        store,
        ClientOptions {
            secret: "s".to_owned(),
            map_refresh: Duration::from_millis(10),
            peer_addresses: vec![format!("1={via}")],
            ..ClientOptions::default()
        },
    )
    .await
    .expect("connect");
    // The status poll dials node 1: it must arrive here.
    let accepted = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await;
    assert!(
        matches!(accepted, Ok(Ok(_))),
        "node 1 was not dialled at its override"
    );
    drop(b);
}
