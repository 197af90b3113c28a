//! Exact persistence: DEBUG RELOAD, DUMP/RESTORE, COPY, restart from RDB,
//! AOF replay after kill -9, AOF rewrite, MEMORY USAGE.

mod common;

use common::{dump, expire_time, ints, Rng, Server};
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
            pipe.cmd("RL.TOKENBUCKET")
                .arg(&bucket)
                .arg(1000)
                .arg(rng.range(0, 7))
                .arg(3_600_000)
                .arg("COST")
                .arg(rng.range(0, 40))
                .arg("AT")
                .arg(now)
                .ignore();
            pipe.cmd("RL.SLIDELOG")
                .arg(&log)
                .arg(1000)
                .arg(3_600_000)
                .arg("COST")
                .arg(rng.range(0, 9))
                .arg("AT")
                .arg(now)
                .ignore();
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
            let reply: Vec<i64> = redis::cmd("RL.RESERVE")
                .arg(&reserved)
                .arg(1000)
                .arg(1)
                .arg(3_600_000)
                .arg(rng.range(1, 50))
                .arg(3_600_000)
                .arg("AT")
                .arg(now)
                .query(con)
                .expect("reserve");
            if round % 2 == 0 {
                redis::cmd("RL.SETTLE")
                    .arg(&reserved)
                    .arg(reply[5])
                    .arg(rng.range(0, 80))
                    .arg("AT")
                    .arg(now)
                    .query::<()>(con)
                    .expect("settle");
            }
            let lease: Vec<i64> = redis::cmd("RL.ACQUIRE")
                .arg(&leases)
                .arg(10)
                .arg(3_600_000)
                .arg("AT")
                .arg(now)
                .query(con)
                .expect("acquire");
            if round == 1 {
                redis::cmd("RL.RELEASE")
                    .arg(&leases)
                    .arg(lease[5])
                    .arg("AT")
                    .arg(now)
                    .query::<()>(con)
                    .expect("release");
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
    redis::cmd("DEBUG")
        .arg("DIGEST")
        .query(con)
        .expect("DEBUG DIGEST")
}

#[test]
fn debug_reload_keeps_exact_state() {
    let server = Server::start();
    let mut con = server.connect();
    let keys = fill(&mut con, 50, 1);
    let before = dumps(&mut con, &keys);
    assert!(before.iter().all(Option::is_some));
    let digest_before = digest(&mut con);
    redis::cmd("DEBUG")
        .arg("RELOAD")
        .query::<()>(&mut con)
        .unwrap();
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
        redis::cmd("RESTORE")
            .arg(&restored)
            .arg(0)
            .arg(&payload)
            .query::<()>(&mut con)
            .unwrap();
        let copied_count: i64 = redis::cmd("COPY")
            .arg(key)
            .arg(&copied)
            .query(&mut con)
            .unwrap();
        assert_eq!(copied_count, 1);
        assert_eq!(dump(&mut con, restored.as_bytes()).as_ref(), Some(&payload));
        assert_eq!(dump(&mut con, copied.as_bytes()).as_ref(), Some(&payload));
        // The copies behave like the original.
        let command = if key.starts_with("bucket") {
            vec![
                "RL.TOKENBUCKET",
                "",
                "1000",
                "3",
                "3600000",
                "COST",
                "0",
                "AT",
            ]
        } else {
            vec!["RL.SLIDELOG", "", "1000", "3600000", "COST", "0", "AT"]
        };
        let at = (T + 10_000).to_string();
        let peek = |con: &mut Connection, name: &str| {
            let mut words = command.clone();
            words[1] = name;
            words.push(&at);
            ints(con, &words)
        };
        let original = peek(&mut con, key);
        assert_eq!(peek(&mut con, &restored), original);
        assert_eq!(peek(&mut con, &copied), original);
        let usage: i64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .query(&mut con)
            .unwrap();
        assert!(usage > 0 && usage < 4096, "{key}: {usage} bytes");
    }
    let corrupt = {
        let mut payload = dump(&mut con, b"log:0").unwrap();
        let middle = payload.len() / 2;
        payload[middle] ^= 0xff;
        payload
    };
    let result: redis::RedisResult<()> = redis::cmd("RESTORE")
        .arg("bad")
        .arg(0)
        .arg(corrupt)
        .query(&mut con);
    assert!(result.is_err(), "a corrupt payload is refused");
}

#[test]
fn restart_from_rdb_keeps_exact_state() {
    let mut server = Server::start();
    let mut con = server.connect();
    let keys = fill(&mut con, 50, 3);
    let before = dumps(&mut con, &keys);
    redis::cmd("SAVE").query::<()>(&mut con).unwrap();
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
            &["RL.TOKENBUCKET", key, "1000", "1", "3600000", "COST", "3"],
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
    let mut server = Server::start_with(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--aof-use-rdb-preamble",
        "no",
    ]);
    let mut con = server.connect();
    let keys = fill(&mut con, 50, 5);
    redis::cmd("BGREWRITEAOF").query::<()>(&mut con).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("persistence")
            .query(&mut con)
            .unwrap();
        if info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrite_scheduled:0") {
            assert!(info.contains("aof_last_bgrewrite_status:ok"), "{info}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rewrite did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
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
    let bad = common::error(
        &mut con,
        &["RL.RESTORESTATE", "k", "tokenbucket", "garbage"],
    );
    assert_eq!(bad, "ERR payload is not a valid tokenbucket state");
    let kind = common::error(&mut con, &["RL.RESTORESTATE", "k", "hash", ""]);
    assert_eq!(kind, "ERR kind must be tokenbucket, slidelog or leases");
    redis::cmd("SET")
        .arg("s")
        .arg("v")
        .query::<()>(&mut con)
        .unwrap();
    let empty_log = [
        1000i64.to_le_bytes(),
        5000i64.to_le_bytes(),
        0i64.to_le_bytes(),
    ]
    .concat();
    let result: redis::RedisResult<()> = redis::cmd("RL.RESTORESTATE")
        .arg("s")
        .arg("slidelog")
        .arg(&empty_log)
        .query(&mut con);
    assert!(common::error_text(&result.expect_err("wrong type")).starts_with("WRONGTYPE"));
    let exists: i64 = redis::cmd("EXISTS").arg("k").query(&mut con).unwrap();
    assert_eq!(exists, 0);
}
