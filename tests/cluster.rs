//! Redis Cluster: 3 masters and 3 replicas on loopback, every node with the
//! module loaded. A stock cluster client routes every RL.* command by its key.

mod common;

use common::cluster::Cluster;
use common::{Rng, Server};
use redis::cluster::ClusterClient;
use redis::Value;

const T: i64 = 1_700_000_000_000;

/// A random call of any RL.* command on `key` (an RL.ALL over `key` and a
/// companion in its slot), at a pinned time.
fn random_call(rng: &mut Rng, key: &str, now: i64) -> redis::Cmd {
    let mut cmd;
    match rng.range(0, 4) {
        0 => {
            cmd = redis::cmd("RL.TOKENBUCKET");
            cmd.arg(format!("{{{key}}}:b"))
                .arg(5)
                .arg(1)
                .arg(1000)
                .arg("COST")
                .arg(rng.range(0, 2));
        }
        1 => {
            cmd = redis::cmd("RL.SLIDELOG");
            cmd.arg(format!("{{{key}}}:l"))
                .arg(3)
                .arg(1000)
                .arg("COST")
                .arg(rng.range(0, 2));
        }
        2 => {
            cmd = redis::cmd("RL.ALL");
            cmd.arg(2)
                .arg(format!("{{{key}}}:b"))
                .arg(format!("{{{key}}}:l"))
                .arg("TOKENBUCKET")
                .arg(5)
                .arg(1)
                .arg(1000)
                .arg("SLIDELOG")
                .arg(3)
                .arg(1000);
        }
        3 => {
            cmd = redis::cmd("RL.RESERVE");
            cmd.arg(format!("{{{key}}}:b"))
                .arg(5)
                .arg(1)
                .arg(1000)
                .arg(rng.range(1, 3))
                .arg(60_000);
        }
        _ => {
            cmd = redis::cmd("RL.ACQUIRE");
            cmd.arg(format!("{{{key}}}:s"))
                .arg(2)
                .arg(rng.range(100, 2000));
        }
    }
    cmd.arg("AT").arg(now);
    cmd
}

#[test]
fn a_stock_cluster_client_routes_every_command_like_one_server() {
    let cluster = Cluster::start(3, 1);
    let standalone = Server::start();
    let client = ClusterClient::new(cluster.urls()).expect("cluster client");
    let mut clustered = client.get_connection().expect("cluster connection");
    let mut single = standalone.connect();
    let mut rng = Rng::new(11);
    let keys: Vec<String> = (0..2000).map(|i| format!("user{i}")).collect();
    let mut now = T;
    for round in 0..6000 {
        now += rng.range(0, 30);
        let key = &keys[rng.range(0, keys.len() as i64 - 1) as usize];
        let call = random_call(&mut rng, key, now);
        let on_cluster: Value = call
            .query(&mut clustered)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let on_one: Value = call.query(&mut single).unwrap();
        assert_eq!(on_cluster, on_one, "round {round}");
    }
    // The keys really are spread over every master.
    for master in cluster.masters() {
        let keys: i64 = redis::cmd("DBSIZE").query(&mut master.connect()).unwrap();
        assert!(keys > 500, "master {} holds {keys} keys", master.port);
    }
    // RL.INSPECT reads through the cluster client too.
    let inspected: Value = redis::cmd("RL.INSPECT")
        .arg("{user1}:b")
        .query(&mut clustered)
        .unwrap();
    assert_ne!(inspected, Value::Nil);
}

#[test]
fn all_needs_one_slot_and_moved_points_to_the_owner() {
    let cluster = Cluster::start(3, 1);
    let client = ClusterClient::new(cluster.urls()).expect("cluster client");
    let mut clustered = client.get_connection().expect("cluster connection");
    // Hash-tagged keys work on every master.
    for i in 0..60 {
        let tag = format!("user{i}");
        let reply: Vec<Value> = redis::cmd("RL.ALL")
            .arg(2)
            .arg(format!("{{{tag}}}:second"))
            .arg(format!("{{{tag}}}:day"))
            .arg("TOKENBUCKET")
            .arg(10)
            .arg(10)
            .arg(1000)
            .arg("SLIDELOG")
            .arg(1000)
            .arg(86_400_000)
            .query(&mut clustered)
            .unwrap();
        assert_eq!(reply[0], Value::Int(1));
    }
    for master in cluster.masters() {
        let keys: i64 = redis::cmd("DBSIZE").query(&mut master.connect()).unwrap();
        assert!(
            keys >= 2,
            "every master served RL.ALL calls: {} holds {keys}",
            master.port
        );
    }
    // Keys of different slots: CROSSSLOT, from any node.
    let node = &cluster.nodes[0];
    let mut direct = node.connect();
    let crossslot: redis::RedisResult<Value> = redis::cmd("RL.ALL")
        .arg(2)
        .arg("a")
        .arg("b")
        .arg("SLIDELOG")
        .arg(1)
        .arg(1000)
        .arg("SLIDELOG")
        .arg(1)
        .arg(1000)
        .query(&mut direct);
    let text = common::error_text(&crossslot.expect_err("CROSSSLOT"));
    assert!(text.starts_with("CROSSSLOT"), "{text}");
    // A key another master owns: MOVED, for single-key commands and RL.ALL.
    for master in cluster.masters() {
        let mut con = master.connect();
        let mut moved = 0;
        for i in 0..20 {
            let key = format!("k{i}");
            let single: redis::RedisResult<Value> = redis::cmd("RL.TOKENBUCKET")
                .arg(&key)
                .arg(1)
                .arg(1)
                .arg(1000)
                .query(&mut con);
            let all: redis::RedisResult<Value> = redis::cmd("RL.ALL")
                .arg(1)
                .arg(&key)
                .arg("TOKENBUCKET")
                .arg(1)
                .arg(1)
                .arg(1000)
                .query(&mut con);
            match (single, all) {
                (Ok(_), Ok(_)) => {}
                (Err(a), Err(b)) => {
                    assert!(common::error_text(&a).starts_with("MOVED"), "{a}");
                    assert!(common::error_text(&b).starts_with("MOVED"), "{b}");
                    moved += 1;
                }
                other => panic!("{key}: {other:?}"),
            }
        }
        assert!(moved > 0);
    }
}

#[test]
fn redis_cli_follows_redirects() {
    let cluster = Cluster::start(3, 1);
    for i in 0..20 {
        let output = std::process::Command::new("redis-cli")
            .args([
                "-c",
                "-p",
                &cluster.nodes[0].port.to_string(),
                "RL.SLIDELOG",
                &format!("cli{i}"),
                "5",
                "60000",
            ])
            .output()
            .expect("redis-cli");
        let text = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            ["1", "5", "4", "0", "60000"],
            "cli{i}"
        );
    }
}
