//! Redis Cluster: 3 masters and 3 replicas on loopback, every node with the
//! module loaded. A stock cluster client routes every RL.* command by its key.

use crate::common;

use crate::common::cluster::Cluster;
use crate::common::{command, error_text, int, query, Rng, Server};
use redis::cluster::ClusterClient;
use redis::Value;

const T: i64 = 1_700_000_000_000;

/// A random call of any RL.* command on `key` (an RL.ALL over `key` and a
/// companion in its slot), at a pinned time, with periods, windows and
/// leases of `period` ms.
fn random_call(rng: &mut Rng, key: &str, now: i64, period: i64) -> redis::Cmd {
    let (bucket, log, slots, quota) = (
        format!("{{{key}}}:b"),
        format!("{{{key}}}:l"),
        format!("{{{key}}}:s"),
        format!("{{{key}}}:q"),
    );
    let line = match rng.range(0, 6) {
        0 => format!(
            "RL.TOKENBUCKET {bucket} 5 1 {period} COST {}",
            rng.range(0, 2)
        ),
        1 => format!("RL.SLIDELOG {log} 3 {period} COST {}", rng.range(0, 2)),
        2 => format!("RL.ALL 2 {bucket} {log} TOKENBUCKET 5 1 {period} SLIDELOG 3 {period}"),
        3 => format!(
            "RL.RESERVE {bucket} 5 1 {period} {} {period}",
            rng.range(1, 3)
        ),
        4 => format!(
            "RL.QUOTA {quota} 3 hour TZ America/New_York COST {}",
            rng.range(0, 2)
        ),
        _ => format!("RL.ACQUIRE {slots} 2 {}", rng.range(period / 10, period)),
    };
    command(format!("{line} AT {now}"))
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
        let call = random_call(&mut rng, key, now, 1000);
        let on_cluster: Value = call
            .query(&mut clustered)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let on_one: Value = call.query(&mut single).unwrap();
        assert_eq!(on_cluster, on_one, "round {round}");
    }
    // The keys really are spread over every master.
    for master in cluster.masters() {
        let keys: i64 = query(&mut master.connect(), "DBSIZE");
        assert!(keys > 500, "master {} holds {keys} keys", master.port);
    }
    // RL.INSPECT reads through the cluster client too.
    let inspected: Value = query(&mut clustered, "RL.INSPECT {user1}:b");
    assert_ne!(inspected, Value::Nil);
}

#[test]
fn all_needs_one_slot_and_moved_points_to_the_owner() {
    let cluster = Cluster::start(3, 1);
    let client = ClusterClient::new(cluster.urls()).expect("cluster client");
    let mut clustered = client.get_connection().expect("cluster connection");
    // Hash-tagged keys work on every master.
    for i in 0..60 {
        let tag = format!("{{user{i}}}");
        let reply: Vec<Value> = query(
            &mut clustered,
            format!(
                "RL.ALL 2 {tag}:second {tag}:day TOKENBUCKET 10 10 1000 SLIDELOG 1000 86400000"
            ),
        );
        assert_eq!(reply[0], Value::Int(1));
    }
    for master in cluster.masters() {
        let keys: i64 = query(&mut master.connect(), "DBSIZE");
        assert!(
            keys >= 2,
            "every master served RL.ALL calls: {} holds {keys}",
            master.port
        );
    }
    // Keys of different slots: CROSSSLOT, from any node.
    let node = &cluster.nodes[0];
    let mut direct = node.connect();
    let crossslot = common::call(&mut direct, "RL.ALL 2 a b SLIDELOG 1 1000 SLIDELOG 1 1000");
    let text = error_text(&crossslot.expect_err("CROSSSLOT"));
    assert!(text.starts_with("CROSSSLOT"), "{text}");
    // A key another master owns: MOVED, for single-key commands and RL.ALL.
    for master in cluster.masters() {
        let mut con = master.connect();
        let mut moved = 0;
        for i in 0..20 {
            let key = format!("k{i}");
            let single = common::call(&mut con, format!("RL.TOKENBUCKET {key} 1 1 1000"));
            let all = common::call(&mut con, format!("RL.ALL 1 {key} TOKENBUCKET 1 1 1000"));
            match (single, all) {
                (Ok(_), Ok(_)) => {}
                (Err(a), Err(b)) => {
                    assert!(error_text(&a).starts_with("MOVED"), "{a}");
                    assert!(error_text(&b).starts_with("MOVED"), "{b}");
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

/// Writes a mix of limiters, reservations and leases at pinned times, with
/// periods long enough that nothing expires during the test; returns the keys.
fn populate(con: &mut impl redis::ConnectionLike, prefix: &str, count: usize) -> Vec<String> {
    let mut rng = Rng::new(21);
    let mut keys = Vec::new();
    for i in 0..count {
        let key = format!("{prefix}{i}");
        let now = T + rng.range(0, 1000);
        let line = match i % 5 {
            0 => format!(
                "RL.TOKENBUCKET {key} 100 1 3600000 COST {} AT {now}",
                rng.range(1, 50)
            ),
            1 => format!(
                "RL.SLIDELOG {key} 100 3600000 COST {} AT {now}",
                rng.range(1, 5)
            ),
            2 => format!(
                "RL.RESERVE {key} 100 1 3600000 {} 3600000 AT {now}",
                rng.range(1, 50)
            ),
            3 => format!(
                "RL.QUOTA {key} 100 month TZ Europe/Berlin COST {} AT {now}",
                rng.range(1, 50)
            ),
            _ => format!("RL.ACQUIRE {key} 5 3600000 AT {now}"),
        };
        query::<Value>(con, line);
        keys.push(key);
    }
    keys
}

fn dumps(con: &mut impl redis::ConnectionLike, keys: &[String]) -> Vec<Option<Vec<u8>>> {
    keys.iter()
        .map(|k| common::dump(con, k.as_bytes()))
        .collect()
}

#[test]
fn resharding_under_traffic_keeps_every_limiter_exact() {
    let cluster = Cluster::start(3, 1);
    let client = ClusterClient::new(cluster.urls()).expect("cluster client");
    let mut con = client.get_connection().expect("cluster connection");
    let keys = populate(&mut con, "state", 4000);
    let before = dumps(&mut con, &keys);
    assert!(before.iter().all(Option::is_some));

    // Traffic on other keys at pinned times while slots move; replayed on a
    // standalone server afterwards, it must end in the same states.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let client = client.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut con = client.get_connection().expect("traffic connection");
            let mut rng = Rng::new(5);
            let mut sent = Vec::new();
            let mut now = T;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || sent.len() < 2000 {
                now += rng.range(0, 20);
                let key = format!("traffic{}", rng.range(0, 500));
                let call = random_call(&mut rng, &key, now, 3_600_000);
                let reply: Value = call
                    .query(&mut con)
                    .expect("traffic call during resharding");
                sent.push((call, reply));
            }
            sent
        })
    };
    let masters = cluster.masters();
    let (from, to) = (Cluster::id_of(masters[0]), Cluster::id_of(masters[1]));
    let output = std::process::Command::new("redis-cli")
        .args([
            "--cluster",
            "reshard",
            &format!("127.0.0.1:{}", masters[0].port),
        ])
        .args([
            "--cluster-from",
            &from,
            "--cluster-to",
            &to,
            "--cluster-slots",
            "3000",
            "--cluster-yes",
        ])
        .output()
        .expect("redis-cli --cluster reshard");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = traffic.join().expect("traffic thread");
    cluster.wait_until_ok();

    assert_eq!(
        dumps(&mut con, &keys),
        before,
        "every limiter kept its exact state"
    );
    let moved_keys: i64 = query(&mut masters[1].connect(), "DBSIZE");
    assert!(
        moved_keys > 2000,
        "the destination took over many keys: {moved_keys}"
    );

    let standalone = Server::start();
    let mut single = standalone.connect();
    for (call, reply) in &sent {
        let replayed: Value = call.query(&mut single).unwrap();
        assert_eq!(&replayed, reply, "the same reply as on one server");
    }
    for i in 0..500 {
        for suffix in ["b", "l", "s"] {
            let key = format!("{{traffic{i}}}:{suffix}");
            assert_eq!(
                common::dump(&mut con, key.as_bytes()),
                common::dump(&mut single, key.as_bytes()),
                "{key}"
            );
        }
    }
}

#[test]
fn failover_keeps_what_was_acknowledged() {
    let cluster = Cluster::start(3, 1);
    let victim = cluster.masters()[0].port;
    let mut direct = cluster
        .nodes
        .iter()
        .find(|n| n.port == victim)
        .unwrap()
        .connect();
    // Keys the victim owns (others answer MOVED), written and acknowledged.
    let mut keys = Vec::new();
    for i in 0..3000 {
        let key = format!("acked{i}");
        let at = T + i;
        let reply = common::call(
            &mut direct,
            format!("RL.RESERVE {key} 100 1 3600000 7 3600000 AT {at}"),
        );
        if reply.is_ok() {
            keys.push(key);
        }
    }
    assert!(keys.len() > 500);
    let acked = int(&mut direct, "WAIT 1 10000");
    assert_eq!(acked, 1, "the replica acknowledged every write");
    let before = dumps(&mut direct, &keys);

    let mut cluster = cluster;
    let victim_node = cluster.nodes.iter_mut().find(|n| n.port == victim).unwrap();
    victim_node.kill();
    cluster.wait_until_ok();
    cluster.wait_until_no_slot_is_served_by(victim);
    assert_eq!(cluster.masters().len(), 3, "a replica took over");
    let seeds: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|n| n.is_running())
        .map(Server::url)
        .collect();
    let client = ClusterClient::new(seeds).expect("cluster client");
    let mut con = client.get_connection().expect("cluster connection");
    assert_eq!(
        dumps(&mut con, &keys),
        before,
        "the new master holds every acknowledged state"
    );
    // And it keeps serving them: ids continue above the old ones.
    let reply: Vec<i64> = query(
        &mut con,
        format!(
            "RL.RESERVE {} 100 1 3600000 1 3600000 AT {}",
            keys[0],
            T + 5000
        ),
    );
    assert!(reply[5] > (T + 5000) * 1024);
}
