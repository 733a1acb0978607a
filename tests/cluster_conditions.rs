//! A condition that fails because of a write the leader has sequenced but not yet committed
//! is answered only once that write commits. Answered earlier, a failed CAS could be followed
//! by a read of the very value it claimed was gone (found by the linearizability test).

mod cluster;

use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::{Cluster, Opts};
use tierkv_engine::types::{Condition, Mutation, ShardId, WriteBatch};
use tierkv_node::wire::proto::{self, RemoteError, Request, Response};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_cas_waits_for_the_uncommitted_write_it_saw() {
    let c = Cluster::start(Opts {
        shards: 1,
        lease: Duration::from_secs(5),
        ..Opts::default()
    })
    .await;
    let key = "cas-key";
    let (status, v1) = c.put(key, "v1").await.expect("put v1");
    assert_eq!(status, 201);
    let v1 = v1.expect("version of v1");
    let leader = c.wait_leader(0, None, Duration::from_secs(20)).await;
    let followers: Vec<u32> = (1..=3).filter(|n| *n != leader).collect();
    let mut ekey = vec![0x01];
    ekey.extend_from_slice(key.as_bytes());
    let ekey = Bytes::from(ekey);

    // With both followers paused, a write to the key is sequenced but cannot commit.
    for f in &followers {
        c.pause(*f);
    }
    let before = c.status(leader).await.expect("leader status")[&0].last_seq;
    let write = Request::Write {
        shard: ShardId(0),
        batch: WriteBatch::new().put(ekey.clone(), Bytes::from_static(b"v2")),
    };
    let (http, url) = (c.http.clone(), c.node_url(leader));
    let pending = tokio::spawn(async move {
        let r = http
            .post(format!("{url}/rpc/v1/kv"))
            .bearer_auth("tierkv-dev-secret")
            .body(proto::encode_request(&write))
            .send()
            .await
            .expect("write sent");
        let body = r.bytes().await.expect("write answered");
        (proto::decode_response(&body), Instant::now())
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.status(leader).await.expect("leader status")[&0].last_seq == before {
        assert!(Instant::now() < deadline, "the write was never sequenced");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // A CAS on the committed version fails against the pending write, but must not be
    // answered while that write is uncommitted.
    let cas = Request::Write {
        shard: ShardId(0),
        batch: WriteBatch::new().op(
            Mutation::Put {
                key: ekey,
                value: Bytes::from_static(b"v3"),
                content_type: None,
                expires_at: None,
            },
            Condition::VersionIs(tierkv_engine::types::SeqNo(v1)),
        ),
    };
    let mut cas = Box::pin(async { (c.rpc(leader, &cas).await, Instant::now()) });
    let early = tokio::time::timeout(Duration::from_millis(500), &mut cas).await;
    let diag = if early.is_ok() {
        format!("{:?}", c.status(leader).await)
    } else {
        String::new()
    };
    assert!(
        early.is_err(),
        "the CAS was answered while the write it saw was uncommitted: {early:?} \
         (leader {leader}, v1 {v1}, last seq before the write {before}) {diag}"
    );
    let resumed = Instant::now();
    for f in &followers {
        c.resume(*f);
    }
    let (cas_answer, cas_at) = cas.await;
    let (write_answer, write_at) = pending.await.expect("pending write task");
    assert!(
        matches!(write_answer, Ok(Response::Written { .. })),
        "{write_answer:?}"
    );
    assert!(
        matches!(
            cas_answer,
            Ok(Response::Error(RemoteError::ConditionFailed { .. }))
        ),
        "{cas_answer:?}"
    );
    assert!(
        cas_at >= resumed,
        "the CAS was answered before the followers came back"
    );
    assert!(
        cas_at + Duration::from_millis(50) >= write_at,
        "the CAS failure came well before the write it saw committed"
    );
}
