//! Replication: a replica reaches exactly its master's state although the
//! master read its own clock, and denied calls and peeks replicate nothing.

use std::time::{Duration, Instant};

use crate::common::{
    call, dump, error, expire_time, info_field, ints, query, start_pair, wait_for_replica, Rng,
};

#[test]
fn replica_state_is_identical_after_thousands_of_calls_on_the_server_clock() {
    let (master, replica) = start_pair();
    let mut con = master.connect();
    // The replica is stalled while the master serves the traffic, so it
    // applies every write later on its own clock: only a deterministic
    // replication stream can make it reach the same state.
    let stalled = {
        let mut replica_con = replica.connect();
        std::thread::spawn(move || query::<()>(&mut replica_con, "DEBUG SLEEP 0.5"))
    };
    std::thread::sleep(Duration::from_millis(50));
    let mut rng = Rng::new(7);
    let keys: Vec<String> = (0..40)
        .map(|i| format!("{}:{i}", if i % 2 == 0 { "bucket" } else { "log" }))
        .collect();
    for round in 0..5000 {
        if round % 500 == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let key = &keys[rng.range(0, 39) as usize];
        let cost = rng.range(0, 3);
        // Periods short enough that every ms refills a fraction of a token.
        let line = if rng.chance(20) {
            let bucket = &keys[2 * rng.range(0, 19) as usize];
            let log = &keys[2 * rng.range(0, 19) as usize + 1];
            format!("RL.ALL 2 {bucket} {log} TOKENBUCKET 20 7 3000 SLIDELOG 30 5000 COST {cost}")
        } else if key.starts_with("bucket") {
            if rng.chance(50) {
                format!("RL.TOKENBUCKET {key} 20 7 3000 COST {cost}")
            } else {
                format!("RL.COST {key} 20 7 3000 {cost}")
            }
        } else {
            format!("RL.SLIDELOG {key} 30 5000 COST {cost}")
        };
        call(&mut con, line).unwrap();
    }
    // Reservations and leases on the server clock: ids must match too.
    for round in 0..200 {
        let estimate = rng.range(1, 9);
        let reply = ints(
            &mut con,
            format!("RL.RESERVE reserved 1000 5 1000 {estimate} 60000"),
        );
        if round % 3 == 0 && reply[5] > 0 {
            let actual = rng.range(0, 9);
            query::<()>(
                &mut con,
                format!("RL.SETTLE reserved {} {actual}", reply[5]),
            );
        }
        let lease = ints(&mut con, "RL.ACQUIRE leases 50 60000");
        if round % 2 == 0 && lease[5] > 0 {
            query::<()>(&mut con, format!("RL.RELEASE leases {}", lease[5]));
        }
    }
    stalled.join().unwrap();
    wait_for_replica(&mut con);
    let mut replica_con = replica.connect();
    let mut compared = 0;
    let keys: Vec<String> = keys
        .iter()
        .cloned()
        .chain(["reserved".to_owned(), "leases".to_owned()])
        .collect();
    for key in &keys {
        let on_master = dump(&mut con, key.as_bytes());
        assert_eq!(dump(&mut replica_con, key.as_bytes()), on_master, "{key}");
        // The TTL counts from the call's time, not from when the replica ran it.
        assert_eq!(
            expire_time(&mut replica_con, key.as_bytes()),
            expire_time(&mut con, key.as_bytes()),
            "{key}: the same expiry"
        );
        compared += usize::from(on_master.is_some());
    }
    assert!(compared >= 30, "most keys exist: {compared}");
    // RL.INSPECT reads on the replica and agrees with the master.
    for key in &keys {
        let inspect = format!("RL.INSPECT {key} AT 1");
        let on_master: redis::Value = query(&mut con, &inspect);
        let on_replica: redis::Value = query(&mut replica_con, &inspect);
        assert_eq!(on_replica, on_master, "{key}");
    }
    let master_digest: String = query(&mut con, "DEBUG DIGEST");
    let replica_digest: String = query(&mut replica_con, "DEBUG DIGEST");
    assert_eq!(master_digest, replica_digest);
}

#[test]
fn denied_calls_and_peeks_replicate_nothing() {
    let (master, replica) = start_pair();
    let mut con = master.connect();
    ints(&mut con, "RL.TOKENBUCKET b 1 1 3600000");
    ints(&mut con, "RL.SLIDELOG l 1 3600000");
    wait_for_replica(&mut con);
    let offset = info_field(&mut con, "replication", "master_repl_offset");
    for _ in 0..100 {
        assert_eq!(ints(&mut con, "RL.TOKENBUCKET b 1 1 3600000")[0], 0);
        assert_eq!(ints(&mut con, "RL.COST b 1 1 3600000 1")[0], 0);
        assert_eq!(ints(&mut con, "RL.SLIDELOG l 1 3600000")[0], 0);
        ints(&mut con, "RL.TOKENBUCKET b 1 1 3600000 COST 0");
        ints(&mut con, "RL.SLIDELOG missing 1 3600000 COST 0");
    }
    assert_eq!(
        info_field(&mut con, "replication", "master_repl_offset"),
        offset
    );
    // An allowed call does replicate, and the replica applies it.
    ints(&mut con, "RL.TOKENBUCKET c 1 1 3600000");
    assert_ne!(
        info_field(&mut con, "replication", "master_repl_offset"),
        offset
    );
    wait_for_replica(&mut con);
    let mut replica_con = replica.connect();
    assert_eq!(dump(&mut replica_con, b"c"), dump(&mut con, b"c"));
    // The replica refuses writes from clients.
    let refused = error(&mut replica_con, "RL.TOKENBUCKET d 1 1 1000");
    assert!(refused.starts_with("READONLY"), "{refused}");
}

#[test]
fn writes_the_master_accepted_run_on_replicas_and_aof_whatever_their_settings() {
    let (master, replica) = start_pair();
    let mut con = master.connect();
    call(&mut con, "CONFIG SET appendonly yes").unwrap();
    call(&mut con, "CONFIG SET rl.max-log-limit 2000000").unwrap();
    let big = "RL.SLIDELOG big 1500000 3600000 COST 2";
    assert_eq!(ints(&mut con, big)[0], 1);
    assert!(call(&mut con, "RL.ALL 1 big2 SLIDELOG 1500000 3600000").is_ok());
    wait_for_replica(&mut con);
    let mut replica_con = replica.connect();
    assert_eq!(info_field(&mut replica_con, "rl", "rl_keys_slidelog"), "2");
    for key in ["big", "big2"] {
        let on_master = dump(&mut con, key.as_bytes());
        assert!(on_master.is_some());
        assert_eq!(dump(&mut replica_con, key.as_bytes()), on_master, "{key}");
    }
    // An AOF written under a larger setting loads under a smaller one.
    let deadline = Instant::now() + Duration::from_secs(20);
    while info_field(&mut con, "persistence", "aof_rewrite_in_progress") != "0"
        || info_field(&mut con, "persistence", "aof_rewrite_scheduled") != "0"
    {
        assert!(Instant::now() < deadline, "AOF rewrite did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ints(&mut con, big)[0], 1);
    let before = dump(&mut con, b"big");
    call(&mut con, "CONFIG SET rl.max-log-limit 1000").unwrap();
    call(&mut con, "DEBUG LOADAOF").unwrap();
    assert_eq!(dump(&mut con, b"big"), before);
    assert!(error(&mut con, big).contains("from 1 to 1000"));
}
