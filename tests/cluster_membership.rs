//! Membership changes of a live cluster at process level (design note 0009): separate
//! `tierkv node` processes and a gateway on 127.0.0.1, clients writing unique keys and
//! running a put / strong read / CAS / create history through the gateway the whole time.
//!
//! - Grow 3 → 5 nodes and shrink back to 3 (add, add, drain + remove, drain + remove):
//!   the clients see no error at all (the gateway retries `not_leader` itself within
//!   `leader_wait`).
//! - `kill -9` of a shard's leader, of its joining node and of its leaving node in each
//!   phase of a move (learning, joint, final or releasing, polled on `/status`), the
//!   node restarted at once; node → node links are delayed through the test's proxies so
//!   that each phase lasts long enough to be seen. Clients see no error but the
//!   `outcome_unknown` of writes in flight on a killed leader.
//! - Replacing a node whose data directory was deleted, under a new id; the old id is
//!   refused afterwards.
//! - A move while the shard's leader is cut off from the other nodes, and a move while the
//!   joining node is cut off (its learners wait; the move completes after the heal).
//!
//! Every acknowledged write is then readable and every key's history passes the
//! linearizability checker. Membership changes are published with
//! `tierkv_wire::shardmap::change_members` (`cluster/members.rs`), what the admin CLI
//! and API do for operators. `TIERKV_TEST_SEED=<n>` replays the clients' choices.

mod cluster;

use std::time::Duration;

use cluster::load::{self, Load, Recorder};
use cluster::members::Move;
use cluster::proxy::End;
use cluster::{Cluster, Opts};
use tierkv_engine::routing::shard_for;
use tierkv_engine::types::ShardId;
use tierkv_node::wire::shardmap::ShardMap;

const SHARDS: u32 = 4;
/// Bound on one membership change's moves.
const SETTLE: Duration = Duration::from_secs(30);

fn opts(proxied: bool) -> Opts {
    let fast = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    Opts {
        shards: SHARDS,
        spare_nodes: 2,
        proxied,
        env: vec![
            // Nodes and the gateway notice map changes quickly.
            fast("TIERKV_CLUSTER__MAP_REFRESH", "200ms"),
            fast("TIERKV_GATEWAY__CLUSTER__MAP_REFRESH", "200ms"),
        ],
        ..Opts::default()
    }
}

/// One history key per shard, and a unique-key writer.
fn start_load(c: &Cluster, seed: u64) -> Load {
    let keys: Vec<String> = (0..SHARDS)
        .map(|s| c.keys_in_shard(s, "m-", 1).remove(0))
        .collect();
    let unique: Vec<String> = (0..20_000).map(|i| format!("u-{i}")).collect();
    Load::start(&c.http, &c.url, seed, 3, &keys, vec![unique], 20_000)
}

/// Stops the clients, reads every acknowledged write back and checks the histories.
async fn verify(c: &Cluster, clients: Load, seed: u64) -> std::sync::Arc<Recorder> {
    let rec = clients.stop().await;
    let acked = rec.acked.lock().await.clone();
    assert!(acked.len() > 30, "only {} acknowledged writes", acked.len());
    for (k, v) in &acked {
        assert_eq!(c.get(k).await, Ok((200, v.clone())), "seed {seed}: key {k}");
    }
    let n = rec.check(seed).await;
    println!(
        "{} acknowledged unique writes readable; {n} operations linearizable",
        acked.len()
    );
    rec
}

/// Clients must have seen no error at all.
async fn assert_no_errors(rec: &Recorder, seed: u64) {
    let errors = rec.errors.lock().await;
    assert!(
        errors.is_empty(),
        "seed {seed}: clients saw errors: {:?}",
        &errors[..errors.len().min(5)]
    );
}

/// Clients may have seen `outcome_unknown` for writes in flight on a killed leader, and
/// nothing else (reads and `not_leader` are retried by the gateway).
async fn assert_only_unknown_writes(rec: &Recorder, seed: u64) {
    let errors = rec.errors.lock().await;
    for (what, answer) in errors.iter() {
        assert!(
            !what.starts_with("get") && answer.contains("outcome_unknown"),
            "seed {seed}: {what}: {answer}"
        );
    }
    println!("{} writes with unknown outcome", errors.len());
}

async fn progress(rec: &Recorder, what: &str) {
    assert!(
        rec.wait_progress(50, Duration::from_secs(20)).await,
        "no progress {what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn growing_to_five_nodes_and_shrinking_back_loses_nothing_and_shows_no_error() {
    let seed = load::seed();
    let mut c = Cluster::start(opts(false)).await;
    let clients = start_load(&c, seed);
    progress(&clients.rec, "before the changes").await;
    for id in [4, 5] {
        let map = c.join(id).await;
        println!("map {}: node {id} added", map.version());
        let map = c.wait_settled(SETTLE).await;
        assert!(
            !map.shards_of(tierkv_engine::replica::NodeId(id)).is_empty(),
            "node {id} got no replica"
        );
        progress(&clients.rec, &format!("after adding node {id}")).await;
    }
    for id in [5, 4] {
        let map = c.drain(id).await;
        println!("map {}: node {id} draining", map.version());
        c.wait_settled(SETTLE).await;
        let map = c.remove(id).await;
        println!("map {}: node {id} removed", map.version());
        let status = c.terminate(id).await;
        assert!(status.success(), "node {id} exited with {status}");
        progress(&clients.rec, &format!("after removing node {id}")).await;
    }
    let map = c.wait_settled(SETTLE).await;
    assert_eq!(map.members().len(), 3);
    let rec = verify(&c, clients, seed).await;
    assert_no_errors(&rec, seed).await;
}

/// Who is killed in each phase of a move.
#[derive(Debug, Clone, Copy)]
enum Victim {
    Leader,
    Joining,
    Leaving,
}

/// The moves of the kill tests: add node 4, add node 5, drain node 4; the phase in which
/// each one's victim is killed.
const STEPS: [&[&str]; 3] = [&["learning"], &["joint"], &["final", "releasing"]];

/// Runs the moves of `steps` (indexes into [`STEPS`]; the earlier ones run too, without a
/// kill); in each, once some shard's leader reports the step's phase, `victim` of that
/// shard (against the map before the change) is killed with `kill -9` and restarted at
/// once. Every move must complete and nothing may be lost.
async fn kill_in_phases(victim: Victim, steps: &[usize]) {
    let seed = load::seed();
    let mut c = Cluster::start(opts(true)).await;
    {
        // Slower commits: each phase lasts a few round trips of 2 × 40 ms.
        let net = c.net.as_ref().expect("proxied");
        for a in 1..=5 {
            for b in (1..=5).filter(|&b| b != a) {
                net.delay(End::Node(a), End::Node(b), Duration::from_millis(40));
            }
        }
    }
    let clients = start_load(&c, seed);
    progress(&clients.rec, "before the changes").await;
    let last = steps.iter().copied().max().unwrap_or(0);
    let mut hit = Vec::new();
    for (step, phase) in STEPS.iter().enumerate().take(last + 1) {
        let before = c.latest_map().await;
        let after = match step {
            0 => c.join(4).await,
            1 => c.join(5).await,
            _ => c.drain(4).await,
        };
        println!("map {}: step {step}", after.version());
        let replicas = |m: &ShardMap, s: u32| -> Vec<u32> {
            m.replicas(ShardId(s)).iter().map(|n| n.0).collect()
        };
        let joining = |s: u32| -> Vec<u32> {
            let old = replicas(&before, s);
            replicas(&after, s)
                .into_iter()
                .filter(|n| !old.contains(n))
                .collect()
        };
        let leaving = |s: u32| -> Vec<u32> {
            let new = replicas(&after, s);
            replicas(&before, s)
                .into_iter()
                .filter(|n| !new.contains(n))
                .collect()
        };
        let who = |m: &Move| -> Option<u32> {
            match victim {
                Victim::Leader => m.leader.as_ref().map(|(l, _)| *l),
                Victim::Joining => joining(m.shard).first().copied(),
                Victim::Leaving => leaving(m.shard).first().copied(),
            }
        };
        if !steps.contains(&step) {
            c.wait_settled(SETTLE).await;
            continue;
        }
        let within = Duration::from_secs(20);
        match c.wait_phase(phase, within, |m| who(m).is_some()).await {
            Some(m) => {
                let who = who(&m).expect("wanted");
                c.kill(who);
                println!(
                    "step {step}: shard {} in phase {:?}: killed n{who} ({victim:?})",
                    m.shard, m.leader
                );
                hit.push(step);
                c.restart(who);
            }
            None => println!("step {step}: no {victim:?} seen in phase {phase:?}"),
        }
        c.wait_settled(SETTLE).await;
        progress(&clients.rec, &format!("after step {step}")).await;
    }
    // A test that never kills anything proves nothing; a phase can be missed when every
    // shard went through it between two polls.
    assert!(
        hit.len() * 3 >= steps.len() * 2,
        "seed {seed}: killed a {victim:?} in {hit:?} of the steps {steps:?}"
    );
    let rec = verify(&c, clients, seed).await;
    assert_only_unknown_writes(&rec, seed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leader_while_learning_or_joint_loses_nothing() {
    kill_in_phases(Victim::Leader, &[0, 1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_joining_node_in_each_phase_of_a_move_loses_nothing() {
    kill_in_phases(Victim::Joining, &[0, 1, 2]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leaving_node_while_learning_or_joint_loses_nothing() {
    kill_in_phases(Victim::Leaving, &[0, 1]).await;
}

// In the final phase a removed replica may miss the leader's last `Append` (the leaving
// node is down when the final configuration commits, or the leader dies right after): it is
// released anyway once the serving leader's committed configuration, read through `Status`
// (wire revision 5, note 0009 §6), leaves it out.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leaving_node_in_the_final_phase_loses_nothing() {
    kill_in_phases(Victim::Leaving, &[2]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leader_in_the_final_phase_loses_nothing() {
    kill_in_phases(Victim::Leader, &[2]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_whose_disk_was_lost_is_replaced_under_a_new_id_and_the_old_id_is_refused() {
    let seed = load::seed();
    let mut c = Cluster::start(opts(false)).await;
    let clients = start_load(&c, seed);
    progress(&clients.rec, "before the loss").await;
    c.kill(3);
    c.wipe(3);
    let map = c.replace(3, 4).await;
    println!("map {}: node 3 replaced by node 4", map.version());
    let map = c.wait_settled(SETTLE).await;
    assert!(map.is_retired(tierkv_engine::replica::NodeId(3)));
    for s in 0..SHARDS {
        let replicas = map.replicas(ShardId(s));
        assert!(!replicas.contains(&tierkv_engine::replica::NodeId(3)));
    }
    progress(&clients.rec, "after the replacement").await;
    let stderr = c.start_refused(3).await;
    assert!(
        stderr.contains("retired"),
        "node 3 was refused for: {stderr}"
    );
    let rec = verify(&c, clients, seed).await;
    assert_only_unknown_writes(&rec, seed).await;
}

/// Which process is cut off from the other nodes during a move.
#[derive(Debug, Clone, Copy)]
enum CutOff {
    /// The leader of the shard whose key the test watches.
    Leader,
    /// The node that joins.
    Joining,
}

async fn move_with_a_partition(cut: CutOff) {
    let seed = load::seed();
    let mut c = Cluster::start(opts(true)).await;
    let clients = start_load(&c, seed);
    progress(&clients.rec, "before the change").await;
    let watched = shard_for(b"m-0", SHARDS).0;
    let victim = match cut {
        CutOff::Leader => c.wait_leader(watched, None, Duration::from_secs(20)).await,
        CutOff::Joining => 4,
    };
    let map = c.join(4).await;
    println!(
        "map {}: node 4 added; cutting n{victim} off ({cut:?})",
        map.version()
    );
    {
        let net = c.net.as_ref().expect("proxied");
        for other in (1..=5).filter(|&o| o != victim) {
            net.block(End::Node(victim), End::Node(other));
            net.block(End::Node(other), End::Node(victim));
        }
    }
    // The shards keep serving (the cut-off leader's are taken over); the moves to the
    // cut-off joining node wait in `learning`.
    match cut {
        CutOff::Leader => {
            let lease = c.opts.lease;
            let new = c
                .wait_leader(watched, Some(victim), lease + Duration::from_secs(3))
                .await;
            println!("shard {watched}: n{new} took over from n{victim}");
        }
        CutOff::Joining => {
            let waiting = c
                .wait_phase(&["learning"], Duration::from_secs(10), |m| {
                    m.joining.contains(&4)
                })
                .await;
            assert!(
                waiting.is_some(),
                "no move to the cut-off node waits in learning"
            );
        }
    }
    progress(&clients.rec, "while cut off").await;
    progress(&clients.rec, "while cut off").await;
    c.net.as_ref().expect("proxied").heal_all();
    c.wait_settled(SETTLE).await;
    progress(&clients.rec, "after the heal").await;
    let rec = verify(&c, clients, seed).await;
    assert_only_unknown_writes(&rec, seed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_completes_after_its_leader_was_cut_off() {
    move_with_a_partition(CutOff::Leader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_completes_after_its_joining_node_was_cut_off() {
    move_with_a_partition(CutOff::Joining).await;
}
