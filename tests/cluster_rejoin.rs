//! A node whose disk is replaced rejoins on its own (design note 0002, "Rejoining after disk
//! loss"): it starts each replica at the newest claimed epoch (the `REJOIN` file), promises
//! nothing until its log holds a record of a newer epoch (its leaders hand their shards on to
//! write one), and from then on holds every acknowledged write: it serves them itself, and
//! with another replica killed it completes the quorum that serves them.

mod cluster;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cluster::{Cluster, Opts};

const SHARDS: u32 = 2;
const LOST: u32 = 3;

async fn put_all(c: &Cluster, keys: &[String]) {
    for k in keys {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((s, _)) = c.put(k, &format!("v-{k}")).await
                && (200..300).contains(&s)
            {
                break;
            }
            assert!(Instant::now() < deadline, "PUT {k} never succeeded");
        }
    }
}

/// Waits until every replica on `node` has rejoined and applied what its leader committed;
/// its shards' states then.
async fn wait_rejoined(c: &Cluster, node: u32) -> BTreeMap<u32, cluster::ShardState> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let leaders = c.leaders().await;
        if let Some(st) = c.status(node).await
            && st.len() == SHARDS as usize
            && st.values().all(|s| !s.rejoining)
        {
            let mut caught_up = true;
            for (shard, (leader, _)) in &leaders {
                let commit = c.status(*leader).await.map(|l| l[shard].commit_seq);
                caught_up &= commit.is_some_and(|x| st[shard].applied_seq >= x);
            }
            if caught_up && leaders.len() == SHARDS as usize {
                return st;
            }
        }
        assert!(
            Instant::now() < deadline,
            "node {node} did not rejoin: {:?}",
            c.status(node).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_with_a_replaced_disk_rejoins_and_then_holds_every_acknowledged_write() {
    let mut c = Cluster::start(Opts {
        shards: SHARDS,
        ..Opts::default()
    })
    .await;
    let keys: Vec<Vec<String>> = (0..SHARDS)
        .map(|s| c.keys_in_shard(s, &format!("s{s}-"), 60))
        .collect();
    for k in &keys {
        put_all(&c, &k[..30]).await;
    }
    let epochs_before: BTreeMap<u32, u64> = c
        .leaders()
        .await
        .into_iter()
        .map(|(s, (_, e))| (s, e))
        .collect();
    assert_eq!(epochs_before.len(), SHARDS as usize);

    // Node 3's disk is lost; it comes back empty under its id.
    c.kill(LOST);
    c.wipe(LOST);
    let restarted = Instant::now();
    c.restart(LOST);
    let floors = std::fs::read_to_string(c.node_dir(LOST).join("REJOIN")).expect("REJOIN file");
    for (shard, epoch) in &epochs_before {
        let floor: u64 = floors
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{shard} "))?.parse().ok())
            .unwrap_or_else(|| panic!("no floor for shard {shard} in {floors:?}"));
        assert!(
            floor >= *epoch,
            "shard {shard}: floor {floor} below epoch {epoch}"
        );
    }
    // Writes go on while it rejoins.
    for k in &keys {
        put_all(&c, &k[30..]).await;
    }

    // It rejoins without help: each of its replicas holds a record of an epoch newer than
    // the floor, so the shard's leadership moved on.
    let st = wait_rejoined(&c, LOST).await;
    eprintln!(
        "node {LOST} rejoined {} ms after its restart began",
        restarted.elapsed().as_millis()
    );
    for (shard, epoch) in &epochs_before {
        assert!(
            st[shard].epoch > *epoch,
            "shard {shard} is still at epoch {} (was {epoch})",
            st[shard].epoch
        );
    }
    assert_eq!(
        c.metric(LOST, "tierkv_node_rejoining_replicas").await,
        Some(0)
    );
    for (s, k) in (0..SHARDS).zip(&keys) {
        c.assert_node_holds(LOST, s, k, |key| format!("v-{key}"))
            .await;
    }

    // With node 1 gone, node 3 is needed for every quorum: all writes read back strongly,
    // and new ones are acknowledged.
    c.kill(1);
    for (s, k) in (0..SHARDS).zip(&keys) {
        c.wait_leader(s, Some(1), Duration::from_secs(20)).await;
        for key in k {
            assert_eq!(
                c.get(key).await,
                Ok((200, format!("v-{key}"))),
                "key {key} after node 1 died"
            );
        }
    }
    put_all(&c, &["after-rejoin".to_owned()]).await;
}
