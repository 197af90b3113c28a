//! WAIT in Redis Cluster: a lease key migrated to another node while
//! clients wait for a slot on it does not come back on the node it left.

use std::thread;
use std::time::{Duration, Instant};

use crate::common::cluster::Cluster;
use crate::common::{int, query};
use redis::Value;

#[test]
fn a_lease_key_migrated_away_is_not_recreated_for_its_waiters() {
    let cluster = Cluster::start(3, 0);
    let key = "{w}lease";
    let slot: i64 = query(
        &mut cluster.nodes[0].connect(),
        format!("CLUSTER KEYSLOT {key}"),
    );
    let owner_of = |node: &crate::common::Server| -> bool {
        let mut con = node.connect();
        let id: String = query(&mut con, "CLUSTER MYID");
        let nodes: String = query(&mut con, "CLUSTER NODES");
        nodes.lines().any(|line| {
            line.starts_with(&id)
                && line.split(' ').skip(8).any(|range| {
                    let (a, b) = range.split_once('-').unwrap_or((range, range));
                    matches!((a.parse::<i64>(), b.parse::<i64>()), (Ok(a), Ok(b)) if (a..=b).contains(&slot))
                })
        })
    };
    let source = cluster
        .nodes
        .iter()
        .find(|node| owner_of(node))
        .expect("the slot's owner");
    let target = cluster
        .nodes
        .iter()
        .find(|node| node.port != source.port)
        .expect("another master");
    let mut con = source.connect();
    let held: Vec<Value> = query(&mut con, format!("RL.ACQUIRE {key} 1 60000"));
    assert_eq!(held[0], Value::Int(1));
    let waiter_url = source.url();
    let waiter_key = key.to_owned();
    let waiter = thread::spawn(move || {
        let mut con = redis::Client::open(waiter_url)
            .and_then(|client| client.get_connection())
            .expect("connect");
        let started = Instant::now();
        let reply: Vec<Value> = query(
            &mut con,
            format!("RL.ACQUIRE {waiter_key} 1 60000 WAIT 1500"),
        );
        (reply, started.elapsed())
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !query::<String>(&mut con, "INFO rl").contains("leases=1") {
        assert!(Instant::now() < deadline, "the waiter never queued");
        thread::sleep(Duration::from_millis(10));
    }
    let source_id: String = query(&mut con, "CLUSTER MYID");
    let target_id: String = query(&mut target.connect(), "CLUSTER MYID");
    let _: () = query(
        &mut target.connect(),
        format!("CLUSTER SETSLOT {slot} IMPORTING {source_id}"),
    );
    let _: () = query(
        &mut con,
        format!("CLUSTER SETSLOT {slot} MIGRATING {target_id}"),
    );
    let _: () = query(
        &mut con,
        format!("MIGRATE 127.0.0.1 {} {key} 0 5000", target.port),
    );
    let (reply, waited) = waiter.join().expect("waiter");
    assert_eq!(reply[0], Value::Int(0), "denied at its timeout: {reply:?}");
    assert_eq!(reply.last(), Some(&Value::Int(0)), "no lease id");
    assert!(waited >= Duration::from_millis(1400), "{waited:?}");
    let left: i64 = query(&mut con, format!("CLUSTER COUNTKEYSINSLOT {slot}"));
    assert_eq!(left, 0, "the key did not come back on the node it left");
    let mut target_con = target.connect();
    let _: () = query(&mut target_con, "ASKING");
    assert_eq!(
        int(&mut target_con, format!("EXISTS {key}")),
        1,
        "the lease key lives on the node it went to"
    );
}
