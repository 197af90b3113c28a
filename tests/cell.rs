//! CL.THROTTLE against real servers: redis-cell's documented replies, its
//! state format (a string TAT in nanoseconds), errors instead of crashes,
//! replication and AOF persistence of the exact state, keyspace events and
//! command metadata.

mod common;

use std::time::{Duration, Instant};

use common::{
    dump, error, info_field, ints, key_events, login, start_pair, wait_for_replica, Server,
};
use redis::{Connection, Value};

/// `CL.THROTTLE key args...` with a binary-safe key.
fn throttle(con: &mut Connection, key: &[u8], args: &[i64]) -> Vec<i64> {
    let mut cmd = redis::cmd("CL.THROTTLE");
    cmd.arg(key);
    for arg in args {
        cmd.arg(*arg);
    }
    cmd.query(con)
        .unwrap_or_else(|e| panic!("CL.THROTTLE {key:?} {args:?} failed: {e}"))
}

fn get(con: &mut Connection, key: &[u8]) -> Option<String> {
    redis::cmd("GET").arg(key).query(con).expect("GET")
}

fn int_reply(con: &mut Connection, command: &str, key: &[u8]) -> i64 {
    redis::cmd(command).arg(key).query(con).expect(command)
}

fn server_time_ns(con: &mut Connection) -> i64 {
    let (seconds, micros): (i64, i64) = redis::cmd("TIME").query(con).expect("TIME");
    seconds * 1_000_000_000 + micros * 1_000
}

#[test]
fn readme_example_of_redis_cell() {
    let server = Server::start();
    let mut con = server.connect();
    // CL.THROTTLE user123 15 30 60 1: 30 per 60 s, bursts of 15.
    assert_eq!(
        throttle(&mut con, b"user123", &[15, 30, 60, 1]),
        [0, 16, 15, -1, 2]
    );
    // The quantity defaults to 1; other keys are other limits.
    assert_eq!(
        throttle(&mut con, b"user123-read-rate", &[15, 30, 60]),
        [0, 16, 15, -1, 2]
    );
    assert_eq!(
        throttle(&mut con, b"user123-write-rate", &[5, 10, 60]),
        [0, 6, 5, -1, 6]
    );
    // The state is redis-cell's: the TAT in unix ns as a decimal string,
    // expiring when the TAT passes.
    let now = server_time_ns(&mut con);
    let tat: i64 = get(&mut con, b"user123").unwrap().parse().unwrap();
    assert!(
        (now + 1_000_000_000..=now + 2_000_000_000).contains(&tat),
        "{tat} vs {now}"
    );
    let expire_at = int_reply(&mut con, "PEXPIRETIME", b"user123");
    assert_eq!(
        expire_at,
        (tat + 999_999) / 1_000_000,
        "the TAT in ms, rounded up"
    );
}

/// redis-cell's end-to-end test: max_burst 0, 1 per 2 s.
#[test]
fn redis_cell_end_to_end_test() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        throttle(&mut con, b"user123", &[0, 1, 2, 1]),
        [0, 1, 0, -1, 2]
    );
    let limited = throttle(&mut con, b"user123", &[0, 1, 2, 1]);
    assert_eq!(limited, [1, 1, 0, 2, 2]);
    std::thread::sleep(Duration::from_secs(limited[3] as u64));
    assert_eq!(
        throttle(&mut con, b"user123", &[0, 1, 2, 1]),
        [0, 1, 0, -1, 2]
    );
}

#[test]
fn a_burst_until_limited_then_quantities() {
    let server = Server::start();
    let mut con = server.connect();
    // 30 per 60 s (one per 2 s), limit 16: each call adds 2 s to the reset.
    for i in 1..=16 {
        assert_eq!(
            throttle(&mut con, b"burst", &[15, 30, 60]),
            [0, 16, 16 - i, -1, 2 * i],
            "call {i}"
        );
    }
    assert_eq!(
        throttle(&mut con, b"burst", &[15, 30, 60]),
        [1, 16, 0, 2, 32]
    );
    assert_eq!(
        throttle(&mut con, b"burst", &[15, 30, 60, 17]),
        [1, 16, 0, -1, 32],
        "a quantity above the limit never fits"
    );

    // Quantities above 1: limit 10, one per second.
    assert_eq!(throttle(&mut con, b"q", &[9, 10, 10, 4]), [0, 10, 6, -1, 4]);
    assert_eq!(throttle(&mut con, b"q", &[9, 10, 10, 7]), [1, 10, 6, 1, 4]);
    assert_eq!(
        throttle(&mut con, b"q", &[9, 10, 10, 6]),
        [0, 10, 0, -1, 10]
    );
    assert_eq!(throttle(&mut con, b"q", &[9, 10, 10, 1]), [1, 10, 0, 1, 10]);
    assert_eq!(
        throttle(&mut con, b"q", &[9, 10, 10, 11]),
        [1, 10, 0, -1, 10]
    );
}

#[test]
fn quantity_zero_peeks_and_limited_calls_write_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    // A peek on a missing key creates nothing.
    assert_eq!(
        throttle(&mut con, b"peek", &[9, 10, 10, 0]),
        [0, 10, 10, -1, 0]
    );
    assert_eq!(int_reply(&mut con, "EXISTS", b"peek"), 0);

    assert_eq!(
        throttle(&mut con, b"peek", &[9, 10, 3600, 9]),
        [0, 10, 1, -1, 3240]
    );
    let state = get(&mut con, b"peek");
    let expire_at = int_reply(&mut con, "PEXPIRETIME", b"peek");
    // Neither a peek nor a limited call (from another client) touches the
    // key: same value, same expiry, and a WATCH on it lets EXEC run.
    let mut other = server.connect();
    redis::cmd("WATCH")
        .arg("peek")
        .query::<()>(&mut con)
        .unwrap();
    assert_eq!(
        throttle(&mut other, b"peek", &[9, 10, 3600, 0]),
        [0, 10, 1, -1, 3240]
    );
    assert_eq!(
        throttle(&mut other, b"peek", &[9, 10, 3600, 2]),
        [1, 10, 1, 360, 3240]
    );
    let exec: Option<Vec<String>> = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("other")
        .arg(1)
        .query(&mut con)
        .unwrap();
    assert!(exec.is_some(), "the WATCH was not disturbed");
    assert_eq!(get(&mut con, b"peek"), state);
    assert_eq!(int_reply(&mut con, "PEXPIRETIME", b"peek"), expire_at);
    // An allowed call does write, which aborts the transaction.
    redis::cmd("WATCH")
        .arg("peek")
        .query::<()>(&mut con)
        .unwrap();
    assert_eq!(throttle(&mut other, b"peek", &[9, 10, 3600, 1])[0], 0);
    let exec: Option<Vec<String>> = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("other")
        .arg(2)
        .query(&mut con)
        .unwrap();
    assert!(exec.is_none(), "the allowed call touched the key");
    assert_ne!(get(&mut con, b"peek"), state);
}

#[test]
fn state_written_by_redis_cell_is_read() {
    let server = Server::start();
    let mut con = server.connect();
    // redis-cell stores the TAT as a decimal string with a TTL; SET gives
    // the same (integer-encoded) value. The module reads the clock in whole
    // ms, so the TAT is put 10 s after the current ms.
    let now = server_time_ns(&mut con) / 1_000_000 * 1_000_000;
    let tat = now + 10_000_000_000;
    redis::cmd("SET")
        .arg("legacy")
        .arg(tat)
        .arg("PX")
        .arg(10_000)
        .query::<()>(&mut con)
        .unwrap();
    // Limit 15, one per second: 10 s of TAT ahead leaves 5.
    assert_eq!(
        throttle(&mut con, b"legacy", &[14, 1, 1, 0]),
        [0, 15, 5, -1, 10]
    );
    assert_eq!(
        throttle(&mut con, b"legacy", &[14, 1, 1, 5]),
        [0, 15, 0, -1, 15]
    );
    let stored: i64 = get(&mut con, b"legacy").unwrap().parse().unwrap();
    assert_eq!(stored, tat + 5_000_000_000);
    assert_eq!(throttle(&mut con, b"legacy", &[14, 1, 1])[..3], [1, 15, 0]);
    // A TAT in the past is a whole limiter.
    redis::cmd("SET")
        .arg("old")
        .arg(now - 3_600_000_000_000)
        .query::<()>(&mut con)
        .unwrap();
    assert_eq!(
        throttle(&mut con, b"old", &[14, 1, 1, 0]),
        [0, 15, 15, -1, 0]
    );
    assert_eq!(
        throttle(&mut con, b"old", &[14, 1, 1, 1]),
        [0, 15, 14, -1, 1]
    );
    assert!(
        int_reply(&mut con, "PTTL", b"old") > 0,
        "the write set a TTL"
    );
}

#[test]
fn errors_name_the_argument_and_change_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    let max = i64::MAX.to_string();
    for (args, message) in [
        (
            vec!["k", "x", "1", "1"],
            "ERR max_burst must be an integer from 0 to 9223372036854775806",
        ),
        (
            vec!["k", "-1", "1", "1"],
            "ERR max_burst must be an integer from 0 to 9223372036854775806",
        ),
        (
            vec!["k", &max, "1", "1"],
            "ERR max_burst must be an integer from 0 to 9223372036854775806",
        ),
        (
            vec!["k", "1", "0", "1"],
            "ERR count_per_period must be an integer from 1 to 9223372036854775807",
        ),
        (
            vec!["k", "1", "1.5", "1"],
            "ERR count_per_period must be an integer from 1 to 9223372036854775807",
        ),
        (
            vec!["k", "1", "1", "0"],
            "ERR period must be an integer from 1 to 3153600000",
        ),
        (
            vec!["k", "1", "1", "3153600001"],
            "ERR period must be an integer from 1 to 3153600000",
        ),
        (
            vec!["k", "1", "1", ""],
            "ERR period must be an integer from 1 to 3153600000",
        ),
        (
            vec!["k", "1", "1", "1", "-1"],
            "ERR quantity must be an integer from 0 to 9223372036854775807",
        ),
        (
            vec!["k", "1", "1", "1", "+1"],
            "ERR quantity must be an integer from 0 to 9223372036854775807",
        ),
        (
            vec!["k", "1", "1", "1", "9223372036854775808"],
            "ERR quantity must be an integer from 0 to 9223372036854775807",
        ),
        (
            vec!["k", "1", "1000000001", "1"],
            "ERR count_per_period must be at most period * 1000000000 (an emission interval of at least 1 ns)",
        ),
        (
            vec!["k", "1", "1", "3153600000"],
            "ERR (max_burst + 1) * period / count_per_period must be at most 3153600000 seconds",
        ),
        (
            vec!["k", "1", "1"],
            "ERR wrong number of arguments for 'CL.THROTTLE' command",
        ),
        (
            vec!["k", "1", "1", "1", "1", "1"],
            "ERR wrong number of arguments for 'CL.THROTTLE' command",
        ),
    ] {
        let mut words = vec!["CL.THROTTLE"];
        words.extend(args.iter().copied());
        assert_eq!(error(&mut con, &words), message, "{args:?}");
    }
    // Non-UTF-8 bytes in a number (redis-cell crashed on those).
    let mut cmd = redis::cmd("CL.THROTTLE");
    cmd.arg("k").arg(&b"\xff\xfe"[..]).arg(1).arg(1);
    let binary = cmd.query::<Value>(&mut con).unwrap_err();
    assert_eq!(
        common::error_text(&binary),
        "ERR max_burst must be an integer from 0 to 9223372036854775806"
    );
    assert_eq!(int_reply(&mut con, "EXISTS", b"k"), 0);

    // Keys of other types: WRONGTYPE, after the arguments are checked.
    redis::cmd("HSET")
        .arg("hash")
        .arg("f")
        .arg(1)
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("RPUSH")
        .arg("list")
        .arg(1)
        .query::<()>(&mut con)
        .unwrap();
    ints(&mut con, &["RL.TOKENBUCKET", "bucket", "10", "1", "1000"]);
    ints(&mut con, &["RL.SLIDELOG", "log", "10", "1000"]);
    for key in ["hash", "list", "bucket", "log"] {
        let before = dump(&mut con, key.as_bytes());
        assert_eq!(
            error(&mut con, &["CL.THROTTLE", key, "1", "1", "1"]),
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            "{key}"
        );
        assert!(
            error(&mut con, &["CL.THROTTLE", key, "x", "1", "1"]).starts_with("ERR max_burst"),
            "{key}"
        );
        assert_eq!(dump(&mut con, key.as_bytes()), before, "{key}");
    }
    // A string that is not a TAT: a clear error, and it stays as it was.
    for value in ["abc", "", "1.5", " 12", "99999999999999999999"] {
        redis::cmd("SET")
            .arg("text")
            .arg(value)
            .query::<()>(&mut con)
            .unwrap();
        assert_eq!(
            error(&mut con, &["CL.THROTTLE", "text", "1", "1", "1"]),
            "ERR the value at the key is not a CL.THROTTLE state (an integer TAT in nanoseconds)",
            "{value:?}"
        );
        assert_eq!(get(&mut con, b"text").as_deref(), Some(value));
    }
    // The server is still up.
    assert_eq!(throttle(&mut con, b"k", &[0, 1, 1]), [0, 1, 0, -1, 1]);
}

#[test]
fn binary_keys_work() {
    let server = Server::start();
    let mut con = server.connect();
    for key in [
        &b"\xff\xfe\x00bin"[..],
        b"with space",
        b"\x00",
        "ключ".as_bytes(),
    ] {
        assert_eq!(
            throttle(&mut con, key, &[1, 1, 60]),
            [0, 2, 1, -1, 60],
            "{key:?}"
        );
        assert_eq!(
            throttle(&mut con, key, &[1, 1, 60]),
            [0, 2, 0, -1, 120],
            "{key:?}"
        );
        assert_eq!(
            throttle(&mut con, key, &[1, 1, 60])[..4],
            [1, 2, 0, 60],
            "{key:?}"
        );
        assert!(get(&mut con, key).unwrap().parse::<i64>().is_ok());
        assert!(int_reply(&mut con, "PTTL", key) > 100_000);
    }
    // Distinct keys stay distinct (no truncation at a NUL byte).
    assert_eq!(throttle(&mut con, b"\x00x", &[1, 1, 60]), [0, 2, 1, -1, 60]);
}

#[test]
fn replica_and_aof_hold_the_masters_exact_state() {
    let (master, replica) = start_pair();
    let mut con = master.connect();
    let mut replica_con = replica.connect();
    let keys: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("cell:{i}").into_bytes())
        .chain([b"\xff\x00binary".to_vec()])
        .collect();
    // The replica announces what it applies: redis-cell's string and expiry.
    let events = key_events(&replica, "KEA", || {
        // The replica is stalled while the master serves calls on its clock:
        // applying them later must still give the master's state.
        let stalled = {
            let mut stalled_con = replica.connect();
            std::thread::spawn(move || {
                redis::cmd("DEBUG")
                    .arg("SLEEP")
                    .arg("0.5")
                    .query::<()>(&mut stalled_con)
                    .unwrap();
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        for round in 0..300i64 {
            let key = &keys[(round % keys.len() as i64) as usize];
            let mut pipe = redis::pipe();
            pipe.cmd("CL.THROTTLE")
                .arg(key)
                .arg(5)
                .arg(7)
                .arg(3600)
                .arg(round % 4)
                .ignore();
            pipe.query::<()>(&mut con).unwrap();
        }
        // Scripts replicate the effects, here the SET.
        redis::cmd("EVAL")
            .arg("return redis.call('CL.THROTTLE', KEYS[1], 1, 1, 3600)")
            .arg(1)
            .arg("scripted")
            .query::<Vec<i64>>(&mut con)
            .unwrap();
        stalled.join().unwrap();
        wait_for_replica(&mut con);
    });
    let keys: Vec<Vec<u8>> = keys.into_iter().chain([b"scripted".to_vec()]).collect();
    for key in &keys {
        let on_master = dump(&mut con, key);
        assert!(on_master.is_some(), "{key:?}");
        assert_eq!(dump(&mut replica_con, key), on_master, "{key:?}");
        assert_eq!(get(&mut replica_con, key), get(&mut con, key), "{key:?}");
        assert_eq!(
            int_reply(&mut replica_con, "PEXPIRETIME", key),
            int_reply(&mut con, "PEXPIRETIME", key),
            "{key:?}: the same absolute expiry"
        );
        let ttl = int_reply(&mut con, "PTTL", key);
        let replica_ttl = int_reply(&mut replica_con, "PTTL", key);
        assert!((ttl - replica_ttl).abs() < 1_000, "{ttl} {replica_ttl}");
    }
    let digest =
        |c: &mut Connection| -> String { redis::cmd("DEBUG").arg("DIGEST").query(c).unwrap() };
    assert_eq!(digest(&mut replica_con), digest(&mut con));
    assert!(events.iter().any(|e| e.starts_with("set ")), "{events:?}");
    assert!(
        events.iter().any(|e| e.starts_with("expire ")),
        "{events:?}"
    );

    // Limited calls and peeks replicate nothing.
    assert_eq!(throttle(&mut con, b"full", &[0, 1, 3600])[0], 0);
    wait_for_replica(&mut con);
    let offset = info_field(&mut con, "replication", "master_repl_offset");
    for _ in 0..50 {
        assert_eq!(throttle(&mut con, b"full", &[0, 1, 3600])[0], 1);
        assert_eq!(throttle(&mut con, b"full", &[0, 1, 3600, 0])[0], 0);
        assert_eq!(throttle(&mut con, b"missing", &[0, 1, 3600, 0])[0], 0);
    }
    assert_eq!(
        info_field(&mut con, "replication", "master_repl_offset"),
        offset
    );
    let refused = error(&mut replica_con, &["CL.THROTTLE", "x", "1", "1", "1"]);
    assert!(refused.starts_with("READONLY"), "{refused}");
}

#[test]
fn aof_replay_after_kill_keeps_the_exact_state() {
    let mut server = Server::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = server.connect();
    let keys: Vec<Vec<u8>> = (0..30)
        .map(|i| format!("aof:{i}").into_bytes())
        .chain([b"\xff\x00aof".to_vec()])
        .collect();
    for (i, key) in keys.iter().enumerate() {
        for quantity in 0..=(i % 4) as i64 + 1 {
            throttle(&mut con, key, &[9, 1, 3600, quantity]);
        }
    }
    let state = |con: &mut Connection| -> Vec<(Option<String>, i64)> {
        keys.iter()
            .map(|key| (get(con, key), int_reply(con, "PEXPIRETIME", key)))
            .collect()
    };
    let before = state(&mut con);
    assert!(before.iter().all(|(value, at)| value.is_some() && *at > 0));
    server.kill();
    server.restart();
    let mut con = server.connect();
    assert_eq!(state(&mut con), before);
    // The limiter goes on from the stored state.
    let reply = throttle(&mut con, b"aof:1", &[9, 1, 3600, 0]);
    assert_eq!(reply[..3], [0, 10, 7]);
    // And an AOF rewrite keeps it too (plain strings need nothing special).
    redis::cmd("BGREWRITEAOF").query::<()>(&mut con).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while info_field(&mut con, "persistence", "aof_rewrite_in_progress") != "0"
        || info_field(&mut con, "persistence", "aof_rewrite_scheduled") != "0"
    {
        assert!(Instant::now() < deadline, "rewrite did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill();
    server.restart();
    let mut con = server.connect();
    assert_eq!(state(&mut con), before);
}

#[test]
fn writes_send_cl_throttle_events_and_the_rest_none() {
    let server = Server::start();
    let mut con = server.connect();
    let events = key_events(&server, "KEA", || {
        throttle(&mut con, b"n", &[0, 1, 60]);
        throttle(&mut con, b"n", &[0, 1, 60]); // limited
        throttle(&mut con, b"n", &[0, 1, 60, 0]); // peek
        throttle(&mut con, b"m", &[0, 1, 60, 0]); // peek on a missing key
        throttle(&mut con, b"m", &[3, 1, 60, 2]);
    });
    assert_eq!(events, ["cl.throttle n", "cl.throttle m"]);
}

#[test]
fn command_info_and_docs_describe_cl_throttle() {
    let server = Server::start();
    let mut con = server.connect();
    let info: Vec<Value> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("cl.throttle")
        .query(&mut con)
        .unwrap();
    let Value::Array(fields) = &info[0] else {
        panic!("no info: {info:?}")
    };
    assert_eq!(fields[1], Value::Int(-5), "arity");
    let flags: Vec<String> = redis::from_redis_value(&fields[2]).unwrap();
    assert_eq!(flags, ["write", "denyoom", "module"]);
    assert_eq!(
        &fields[3..6],
        &[Value::Int(1), Value::Int(1), Value::Int(1)]
    );
    let text = format!("{:?}", fields[8]);
    assert!(
        text.contains("RW") && text.contains("update"),
        "key spec: {text}"
    );
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("CL.THROTTLE")
        .arg("user123")
        .arg(15)
        .arg(30)
        .arg(60)
        .query(&mut con)
        .unwrap();
    assert_eq!(keys, ["user123"]);

    let docs: Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg("cl.throttle")
        .query(&mut con)
        .unwrap();
    let text = format!("{docs:?}");
    for expected in [
        "summary",
        "GCRA",
        "since",
        "complexity",
        "O(1)",
        "max_burst",
        "count_per_period",
        "period",
        "quantity",
        "optional",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    // ACL key patterns see the key.
    let mut admin = server.connect();
    let mut con = login(&server, &mut admin, "tenant", &["~tenantA:*", "+@all"]);
    assert_eq!(throttle(&mut con, b"tenantA:1", &[1, 1, 1])[0], 0);
    assert!(error(&mut con, &["CL.THROTTLE", "tenantB:1", "1", "1", "1"]).starts_with("NOPERM"));
    assert_eq!(int_reply(&mut admin, "EXISTS", b"tenantB:1"), 0);

    // A read-only user cannot call it (7.0: no category; 7.2+: @write);
    // where modules may add categories, @ratelimit grants it.
    let user =
        |admin: &mut Connection, name: &str, rule: &str| login(&server, admin, name, &["~*", rule]);
    let mut reader = user(&mut admin, "reader", "+@read");
    assert!(error(&mut reader, &["CL.THROTTLE", "r", "1", "1", "1"]).starts_with("NOPERM"));
    let writers: Vec<String> = redis::cmd("ACL")
        .arg("CAT")
        .arg("write")
        .query(&mut admin)
        .unwrap();
    let categories: Vec<String> = redis::cmd("ACL").arg("CAT").query(&mut admin).unwrap();
    let in_write = writers
        .iter()
        .any(|c| c.eq_ignore_ascii_case("cl.throttle"));
    let with_rl_write = writers
        .iter()
        .any(|c| c.eq_ignore_ascii_case("rl.tokenbucket"));
    assert_eq!(
        in_write, with_rl_write,
        "in @write exactly where RL.* writers are"
    );
    if categories.iter().any(|c| c == "ratelimit") {
        let mut limiter = user(&mut admin, "limiter", "+@ratelimit");
        assert_eq!(throttle(&mut limiter, b"r", &[1, 1, 1])[0], 0);
    }
}
