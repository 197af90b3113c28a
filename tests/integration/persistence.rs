//! Exact persistence: DEBUG RELOAD, DUMP/RESTORE, COPY, restart from RDB,
//! AOF replay after kill -9, AOF rewrite, MEMORY USAGE.

use crate::common::{
    call, command, dump, error, error_text, expire_time, int, ints, query, wait_for_rewrite, Rng,
    Server, AOF_WITHOUT_PREAMBLE,
};
use redis::Connection;

const T: i64 = 1_700_000_000_000;

/// Fills `count` buckets and `count` logs with random allowed traffic at
/// pinned times; returns the key names.
fn fill(con: &mut Connection, count: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut keys = Vec::new();
    let mut pipe = redis::pipe();
    for index in 0..count {
        let bucket = format!("bucket:{index}");
        let log = format!("log:{index}");
        let mut now = T;
        for _ in 0..20 {
            now += rng.range(0, 50);
            // Long periods keep every key alive on the real clock.
            let (amount, cost) = (rng.range(0, 7), rng.range(0, 40));
            let line =
                format!("RL.TOKENBUCKET {bucket} 1000 {amount} 3600000 COST {cost} AT {now}");
            pipe.add_command(command(line)).ignore();
            let cost = rng.range(0, 9);
            let line = format!("RL.SLIDELOG {log} 1000 3600000 COST {cost} AT {now}");
            pipe.add_command(command(line)).ignore();
        }
        keys.push(bucket);
        keys.push(log);
    }
    pipe.query::<()>(con).expect("fill");
    // Reservations (some settled) and leases (some released).
    for index in 0..count / 5 {
        let reserved = format!("reserved:{index}");
        let leases = format!("leases:{index}");
        for round in 0..4 {
            let now = T + round * 10;
            let estimate = rng.range(1, 50);
            let reply = ints(
                con,
                format!("RL.RESERVE {reserved} 1000 1 3600000 {estimate} 3600000 AT {now}"),
            );
            if round % 2 == 0 {
                let actual = rng.range(0, 80);
                let settle = format!("RL.SETTLE {reserved} {} {actual} AT {now}", reply[5]);
                query::<()>(con, settle);
            }
            let lease = ints(con, format!("RL.ACQUIRE {leases} 10 3600000 AT {now}"));
            if round == 1 {
                query::<()>(con, format!("RL.RELEASE {leases} {} AT {now}", lease[5]));
            }
        }
        keys.push(reserved);
        keys.push(leases);
    }
    keys
}

fn dumps(con: &mut Connection, keys: &[String]) -> Vec<Option<Vec<u8>>> {
    keys.iter().map(|k| dump(con, k.as_bytes())).collect()
}

fn digest(con: &mut Connection) -> String {
    query(con, "DEBUG DIGEST")
}

#[test]
fn debug_reload_keeps_exact_state() {
    let server = Server::start();
    let mut con = server.connect();
    let keys = fill(&mut con, 50, 1);
    let before = dumps(&mut con, &keys);
    assert!(before.iter().all(Option::is_some));
    let digest_before = digest(&mut con);
    query::<()>(&mut con, "DEBUG RELOAD");
    assert_eq!(dumps(&mut con, &keys), before);
    assert_eq!(digest(&mut con), digest_before);
}

#[test]
fn dump_restore_and_copy_give_identical_limiters() {
    let server = Server::start();
    let mut con = server.connect();
    fill(&mut con, 1, 2);
    for key in ["bucket:0", "log:0"] {
        let payload = dump(&mut con, key.as_bytes()).expect("dumped");
        let restored = format!("{key}:restored");
        let copied = format!("{key}:copied");
        query::<()>(
            &mut con,
            [&b"RESTORE"[..], restored.as_bytes(), b"0", &payload],
        );
        let copied_count: i64 = query(&mut con, format!("COPY {key} {copied}"));
        assert_eq!(copied_count, 1);
        assert_eq!(dump(&mut con, restored.as_bytes()).as_ref(), Some(&payload));
        assert_eq!(dump(&mut con, copied.as_bytes()).as_ref(), Some(&payload));
        // The copies behave like the original.
        let peek = |con: &mut Connection, name: &str| {
            let at = T + 10_000;
            if key.starts_with("bucket") {
                ints(
                    con,
                    format!("RL.TOKENBUCKET {name} 1000 3 3600000 COST 0 AT {at}"),
                )
            } else {
                ints(
                    con,
                    format!("RL.SLIDELOG {name} 1000 3600000 COST 0 AT {at}"),
                )
            }
        };
        let original = peek(&mut con, key);
        assert_eq!(peek(&mut con, &restored), original);
        assert_eq!(peek(&mut con, &copied), original);
        let usage: i64 = query(&mut con, format!("MEMORY USAGE {key}"));
        assert!(usage > 0 && usage < 4096, "{key}: {usage} bytes");
    }
    let corrupt = {
        let mut payload = dump(&mut con, b"log:0").unwrap();
        let middle = payload.len() / 2;
        payload[middle] ^= 0xff;
        payload
    };
    let result = call(&mut con, [&b"RESTORE"[..], b"bad", b"0", &corrupt]);
    assert!(result.is_err(), "a corrupt payload is refused");
}

#[test]
fn restart_from_rdb_keeps_exact_state() {
    let mut server = Server::start();
    let mut con = server.connect();
    let keys = fill(&mut con, 50, 3);
    let before = dumps(&mut con, &keys);
    query::<()>(&mut con, "SAVE");
    server.restart();
    let mut con = server.connect();
    assert_eq!(dumps(&mut con, &keys), before);
}

#[test]
fn aof_replay_after_kill_keeps_exact_state() {
    let mut server = Server::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = server.connect();
    let keys = fill(&mut con, 50, 4);
    // Calls on the server clock too: the AOF must pin the time they used.
    for key in keys.iter().filter(|k| k.starts_with("bucket")) {
        ints(
            &mut con,
            format!("RL.TOKENBUCKET {key} 1000 1 3600000 COST 3"),
        );
    }
    let before = dumps(&mut con, &keys);
    let expiries = |con: &mut Connection| -> Vec<i64> {
        keys.iter()
            .map(|k| expire_time(con, k.as_bytes()))
            .collect()
    };
    let expiries_before = expiries(&mut con);
    assert!(expiries_before.iter().all(|&at| at > 0));
    server.kill();
    server.restart();
    let mut con = server.connect();
    assert_eq!(dumps(&mut con, &keys), before);
    // Replayed writes expire when the originals did, on the server clock or
    // pinned with AT (the logs' last writes).
    assert_eq!(expiries(&mut con), expiries_before);
}

#[test]
fn aof_rewrite_without_rdb_preamble_keeps_exact_state() {
    let mut server = Server::start_with(&AOF_WITHOUT_PREAMBLE);
    let mut con = server.connect();
    let keys = fill(&mut con, 50, 5);
    query::<()>(&mut con, "BGREWRITEAOF");
    wait_for_rewrite(&mut con);
    let base = std::fs::read_dir(server.dir.join("appendonlydir"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().ends_with(".base.aof"))
        .expect("a base AOF file");
    let base = std::fs::read(base).unwrap();
    assert!(
        base.windows(15).any(|w| w == b"RL.RESTORESTATE"),
        "the rewrite emits RL.RESTORESTATE"
    );
    // More traffic after the rewrite goes to the new incremental file.
    let more = fill(&mut con, 10, 6);
    let before = dumps(&mut con, &keys);
    let more_before = dumps(&mut con, &more);
    server.kill();
    server.restart();
    let mut con = server.connect();
    assert_eq!(dumps(&mut con, &keys), before);
    assert_eq!(dumps(&mut con, &more), more_before);
}

#[test]
fn restore_state_rejects_bad_payloads_and_wrong_types() {
    let server = Server::start();
    let mut con = server.connect();
    let bad = error(&mut con, "RL.RESTORESTATE k tokenbucket garbage");
    assert_eq!(bad, "ERR payload is not a valid tokenbucket state");
    let kind = error(&mut con, ["RL.RESTORESTATE", "k", "hash", ""]);
    assert_eq!(
        kind,
        "ERR kind must be tokenbucket, slidelog, leases, window or quota"
    );
    query::<()>(&mut con, "SET s v");
    let empty_log = [
        1000i64.to_le_bytes(),
        5000i64.to_le_bytes(),
        0i64.to_le_bytes(),
    ]
    .concat();
    let result = call(
        &mut con,
        [&b"RL.RESTORESTATE"[..], b"s", b"slidelog", &empty_log],
    );
    assert!(error_text(&result.expect_err("wrong type")).starts_with("WRONGTYPE"));
    assert_eq!(int(&mut con, "EXISTS k"), 0);
}
