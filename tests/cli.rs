//! The command line as a newcomer meets it: each command takes the flags that apply to it and
//! refuses the others, a node refuses an address that cannot stay stable, and `--help` names
//! every setting a command reads with its environment variable.

mod cluster;

use std::process::Command;

/// `tierkv <args>` run to completion: (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tierkv"))
        .args(args)
        .output()
        .expect("run tierkv");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_command_refuses_the_flags_of_the_others() {
    for (args, flag) in [
        (&["gateway", "--node-id", "1"][..], "--node-id"),
        (
            &["gateway", "--initial-members", "1=127.0.0.1:7001"][..],
            "--initial-members",
        ),
        (&["gateway", "--data-dir", "/tmp/x"][..], "--data-dir"),
        (&["gateway", "--shards", "8"][..], "--shards"),
        (&["dev", "--node-id", "2"][..], "--node-id"),
        (
            &["serve", "--initial-members", "1=127.0.0.1:7001"][..],
            "--initial-members",
        ),
    ] {
        let (ok, _, err) = run(args);
        assert!(!ok, "tierkv {args:?} was accepted");
        assert!(
            err.contains(&format!("unexpected argument '{flag}'")),
            "tierkv {args:?}: {err}"
        );
    }
}

#[tokio::test]
async fn a_node_refuses_port_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path");
    let stderr = cluster::refused_start(&[
        "node".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        data.into(),
    ])
    .await;
    assert!(stderr.contains("a node needs a fixed port"), "{stderr}");
    assert!(
        std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
        "the refused node touched its data directory"
    );
}

#[test]
fn help_names_every_setting_a_command_reads() {
    let (ok, node, _) = run(&["node", "--help"]);
    assert!(ok);
    for needle in [
        "--node-id",
        "--initial-members",
        "--advertise",
        "TIERKV_CLUSTER__SECRET",
        "TIERKV_CLUSTER__LEASE_DURATION [2s]",
        "TIERKV_CLUSTER__HEARTBEAT_INTERVAL [250ms]",
        "TIERKV_ENGINE__WRITE_BUFFER_BYTES [268435456]",
        "TIERKV_ENGINE__MAX_UNFLUSHED_BYTES [536870912]",
        "TIERKV_WAL__MAX_BYTES [1073741824]",
        "TIERKV_WAL__MAX_FILE_AGE [10m]",
        "TIERKV_CACHE__MEMORY_BYTES [268435456]",
        "TIERKV_STORE__BENCH_GET_DELAY [0s]",
        "recorded in the shard map",
    ] {
        assert!(
            node.contains(needle),
            "`tierkv node --help` lacks {needle}:\n{node}"
        );
    }
    assert!(!node.contains("TIERKV_GATEWAY__"), "{node}");

    let (ok, gateway, _) = run(&["gateway", "--help"]);
    assert!(ok);
    for needle in [
        "TIERKV_CLUSTER__SECRET",
        "TIERKV_GATEWAY__CLUSTER__LEADER_WAIT [8s]",
        "TIERKV_GATEWAY__MAX_VALUE_BYTES",
    ] {
        assert!(
            gateway.contains(needle),
            "`tierkv gateway --help` lacks {needle}:\n{gateway}"
        );
    }
    for absent in [
        "--node-id",
        "--initial-members",
        "TIERKV_CLUSTER__LEASE_DURATION",
        "TIERKV_WAL__",
    ] {
        assert!(
            !gateway.contains(absent),
            "`tierkv gateway --help` shows {absent}"
        );
    }
}

/// Every setting listed in `--help`, set through its environment variable to its listed
/// default, is accepted (unknown names inside a section are configuration errors), and the
/// configuration printed afterwards is the default one.
#[test]
fn the_listed_environment_variables_are_accepted() {
    let (_, help, _) = run(&["dev", "--help"]);
    let vars: Vec<(String, String)> = help
        .lines()
        .filter_map(|l| l.trim().split_once(": TIERKV_"))
        .filter_map(|(_, rest)| {
            let (name, default) = rest.split_once(" [")?;
            let default = default.strip_suffix(']')?;
            (default != "none").then(|| (format!("TIERKV_{name}"), default.to_owned()))
        })
        .collect();
    assert!(vars.len() > 30, "{help}");
    let config = |env: &[(String, String)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tierkv"))
            .arg("config")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run tierkv config");
        assert!(
            out.status.success(),
            "{env:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(config(&vars), config(&[]));
    let changed = config(&[(
        "TIERKV_GATEWAY__CLUSTER__LEADER_WAIT".to_owned(),
        "3s".to_owned(),
    )]);
    assert!(changed.contains("\"leader_wait\": \"3s\""), "{changed}");
}
