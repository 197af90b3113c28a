//! CL.THROTTLE against real servers: redis-cell's documented replies, its
//! state format (a string TAT in nanoseconds), errors instead of crashes,
//! replication and AOF persistence of the exact state, keyspace events and
//! command metadata.

use std::time::{Duration, Instant};

use crate::common::{
    command, dump, error, info_field, int, ints, key_events, login, query, start_pair,
    transaction_runs, wait_for_replica, Line, Server,
};
use redis::{Connection, Value};

/// `CL.THROTTLE key args`, for a key that may not be text.
fn throttle(con: &mut Connection, key: &[u8], args: &str) -> Vec<i64> {
    ints(con, throttle_words(key, args))
}

fn throttle_words<'a>(key: &'a [u8], args: &'a str) -> Vec<&'a [u8]> {
    let mut words = vec![&b"CL.THROTTLE"[..], key];
    words.extend(args.words());
    words
}

/// The replies of `lines` run in one MULTI/EXEC. CL.THROTTLE replies count
/// whole seconds from the server's clock (no AT pins it), so a sequence
/// whose replies assume no time passes between its calls runs in one
/// transaction: on one cached time (Redis 7.2+, Valkey) or within a ms.
fn in_one_transaction(con: &mut Connection, lines: &[impl Line]) -> Vec<Vec<i64>> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    for line in lines {
        pipe.add_command(command(line));
    }
    pipe.query(con).unwrap()
}

fn get(con: &mut Connection, key: &[u8]) -> Option<String> {
    query(con, [&b"GET"[..], key])
}

fn int_reply(con: &mut Connection, command: &str, key: &[u8]) -> i64 {
    int(con, [command.as_bytes(), key])
}

fn server_time_ns(con: &mut Connection) -> i64 {
    let (seconds, micros): (i64, i64) = query(con, "TIME");
    seconds * 1_000_000_000 + micros * 1_000
}

#[test]
fn readme_example_of_redis_cell() {
    let server = Server::start();
    let mut con = server.connect();
    // The call reads the clock in whole ms, between these two readings.
    let before = server_time_ns(&mut con) / 1_000_000 * 1_000_000;
    // 30 per 60 s, bursts of 15.
    assert_eq!(
        ints(&mut con, "CL.THROTTLE user123 15 30 60 1"),
        [0, 16, 15, -1, 2]
    );
    let after = server_time_ns(&mut con);
    // The quantity defaults to 1; other keys are other limits.
    assert_eq!(
        ints(&mut con, "CL.THROTTLE user123-read-rate 15 30 60"),
        [0, 16, 15, -1, 2]
    );
    assert_eq!(
        ints(&mut con, "CL.THROTTLE user123-write-rate 5 10 60"),
        [0, 6, 5, -1, 6]
    );
    // The state is redis-cell's: the TAT in unix ns as a decimal string,
    // 2 s after the call's time, expiring when the TAT passes.
    let tat: i64 = get(&mut con, b"user123").unwrap().parse().unwrap();
    assert!(
        (before + 2_000_000_000..=after + 2_000_000_000).contains(&tat),
        "{tat} vs {before}..={after}"
    );
    let expire_at = int(&mut con, "PEXPIRETIME user123");
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
    // The first two calls back to back, with no time between them.
    let replies = in_one_transaction(&mut con, &["CL.THROTTLE user123 0 1 2 1"; 2]);
    assert_eq!(replies[0], [0, 1, 0, -1, 2]);
    let limited = replies[1].clone();
    assert_eq!(limited, [1, 1, 0, 2, 2]);
    std::thread::sleep(Duration::from_secs(limited[3] as u64));
    assert_eq!(
        ints(&mut con, "CL.THROTTLE user123 0 1 2 1"),
        [0, 1, 0, -1, 2]
    );
}

#[test]
fn a_burst_until_limited_then_quantities() {
    let server = Server::start();
    let mut con = server.connect();
    // 30 per 60 s (one per 2 s), limit 16: each call adds 2 s to the reset.
    // The calls of each part run back to back, in one transaction.
    let mut burst = vec!["CL.THROTTLE burst 15 30 60"; 17];
    burst.push("CL.THROTTLE burst 15 30 60 17");
    let replies = in_one_transaction(&mut con, &burst);
    for i in 1..=16 {
        assert_eq!(
            replies[i as usize - 1],
            [0, 16, 16 - i, -1, 2 * i],
            "call {i}"
        );
    }
    assert_eq!(replies[16], [1, 16, 0, 2, 32]);
    assert_eq!(
        replies[17],
        [1, 16, 0, -1, 32],
        "a quantity above the limit never fits"
    );

    // Quantities above 1: limit 10, one per second.
    let replies = in_one_transaction(
        &mut con,
        &[4, 7, 6, 1, 11].map(|quantity| format!("CL.THROTTLE q 9 10 10 {quantity}")),
    );
    assert_eq!(replies[0], [0, 10, 6, -1, 4]);
    assert_eq!(replies[1], [1, 10, 6, 1, 4]);
    assert_eq!(replies[2], [0, 10, 0, -1, 10]);
    assert_eq!(replies[3], [1, 10, 0, 1, 10]);
    assert_eq!(replies[4], [1, 10, 0, -1, 10]);
}

#[test]
fn quantity_zero_peeks_and_limited_calls_write_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    // A peek on a missing key creates nothing.
    assert_eq!(
        ints(&mut con, "CL.THROTTLE peek 9 10 10 0"),
        [0, 10, 10, -1, 0]
    );
    assert_eq!(int(&mut con, "EXISTS peek"), 0);

    // Neither a peek nor a limited call (from another client) touches the
    // key: same value, same expiry, and a WATCH on it lets EXEC run. Their
    // replies count whole seconds from the write, so they follow it within
    // two round trips: the write, its state and the WATCH in one pipeline,
    // the other client's two calls in another.
    let mut other = server.connect();
    let (written, state, expire_at, ()): (Vec<i64>, Option<String>, i64, ()) = redis::pipe()
        .add_command(command("CL.THROTTLE peek 9 10 3600 9"))
        .add_command(command("GET peek"))
        .add_command(command("PEXPIRETIME peek"))
        .add_command(command("WATCH peek"))
        .query(&mut con)
        .unwrap();
    assert_eq!(written, [0, 10, 1, -1, 3240]);
    let (peeked, limited): (Vec<i64>, Vec<i64>) = redis::pipe()
        .add_command(command("CL.THROTTLE peek 9 10 3600 0"))
        .add_command(command("CL.THROTTLE peek 9 10 3600 2"))
        .query(&mut other)
        .unwrap();
    assert_eq!(peeked, [0, 10, 1, -1, 3240]);
    assert_eq!(limited, [1, 10, 1, 360, 3240]);
    assert!(
        transaction_runs(&mut con, "SET other 1"),
        "the WATCH was not disturbed"
    );
    assert_eq!(get(&mut con, b"peek"), state);
    assert_eq!(int(&mut con, "PEXPIRETIME peek"), expire_at);
    // An allowed call does write, which aborts the transaction.
    query::<()>(&mut con, "WATCH peek");
    assert_eq!(ints(&mut other, "CL.THROTTLE peek 9 10 3600 1")[0], 0);
    assert!(
        !transaction_runs(&mut con, "SET other 2"),
        "the allowed call touched the key"
    );
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
    // The replies count whole seconds from `now`: the SET and the calls run
    // in one transaction, a round trip after it.
    let (peek, take, stored, limited): (Vec<i64>, Vec<i64>, String, Vec<i64>) = redis::pipe()
        .atomic()
        .add_command(command(format!("SET legacy {tat} PX 10000")))
        .ignore()
        .add_command(command("CL.THROTTLE legacy 14 1 1 0"))
        .add_command(command("CL.THROTTLE legacy 14 1 1 5"))
        .add_command(command("GET legacy"))
        .add_command(command("CL.THROTTLE legacy 14 1 1"))
        .query(&mut con)
        .unwrap();
    // Limit 15, one per second: 10 s of TAT ahead leaves 5.
    assert_eq!(peek, [0, 15, 5, -1, 10]);
    assert_eq!(take, [0, 15, 0, -1, 15]);
    assert_eq!(stored.parse::<i64>().unwrap(), tat + 5_000_000_000);
    assert_eq!(limited[..3], [1, 15, 0]);
    // A TAT in the past is a whole limiter.
    query::<()>(&mut con, format!("SET old {}", now - 3_600_000_000_000));
    assert_eq!(
        ints(&mut con, "CL.THROTTLE old 14 1 1 0"),
        [0, 15, 15, -1, 0]
    );
    assert_eq!(
        ints(&mut con, "CL.THROTTLE old 14 1 1 1"),
        [0, 15, 14, -1, 1]
    );
    assert!(int(&mut con, "PTTL old") > 0, "the write set a TTL");
}

#[test]
fn errors_name_the_argument_and_change_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    for (args, message) in [
        (
            "k x 1 1",
            "ERR max_burst must be an integer from 0 to 9223372036854775806",
        ),
        (
            "k -1 1 1",
            "ERR max_burst must be an integer from 0 to 9223372036854775806",
        ),
        (
            "k 9223372036854775807 1 1",
            "ERR max_burst must be an integer from 0 to 9223372036854775806",
        ),
        (
            "k 1 0 1",
            "ERR count_per_period must be an integer from 1 to 9223372036854775807",
        ),
        (
            "k 1 1.5 1",
            "ERR count_per_period must be an integer from 1 to 9223372036854775807",
        ),
        (
            "k 1 1 0",
            "ERR period must be an integer from 1 to 3153600000",
        ),
        (
            "k 1 1 3153600001",
            "ERR period must be an integer from 1 to 3153600000",
        ),
        (
            "k 1 1 1 -1",
            "ERR quantity must be an integer from 0 to 9223372036854775807",
        ),
        (
            "k 1 1 1 +1",
            "ERR quantity must be an integer from 0 to 9223372036854775807",
        ),
        (
            "k 1 1 1 9223372036854775808",
            "ERR quantity must be an integer from 0 to 9223372036854775807",
        ),
        (
            "k 1 1000000001 1",
            "ERR count_per_period must be at most period * 1000000000 (an emission interval of at least 1 ns)",
        ),
        (
            "k 1 1 3153600000",
            "ERR (max_burst + 1) * period / count_per_period must be at most 3153600000 seconds",
        ),
        (
            "k 1 1",
            "ERR wrong number of arguments for 'CL.THROTTLE' command",
        ),
        (
            "k 1 1 1 1 1",
            "ERR wrong number of arguments for 'CL.THROTTLE' command",
        ),
    ] {
        assert_eq!(
            error(&mut con, format!("CL.THROTTLE {args}")),
            message,
            "{args}"
        );
    }
    // An empty word, which a line of text cannot hold.
    assert_eq!(
        error(&mut con, ["CL.THROTTLE", "k", "1", "1", ""]),
        "ERR period must be an integer from 1 to 3153600000"
    );
    // Non-UTF-8 bytes in a number (redis-cell crashed on those).
    assert_eq!(
        error(
            &mut con,
            [&b"CL.THROTTLE"[..], b"k", b"\xff\xfe", b"1", b"1"]
        ),
        "ERR max_burst must be an integer from 0 to 9223372036854775806"
    );
    assert_eq!(int(&mut con, "EXISTS k"), 0);

    // Keys of other types: WRONGTYPE, after the arguments are checked.
    query::<()>(&mut con, "HSET hash f 1");
    query::<()>(&mut con, "RPUSH list 1");
    // An hour's TTL: the limiters outlive every call below.
    ints(&mut con, "RL.TOKENBUCKET bucket 10 1 3600000");
    ints(&mut con, "RL.SLIDELOG log 10 3600000");
    for key in ["hash", "list", "bucket", "log"] {
        let before = dump(&mut con, key.as_bytes());
        assert_eq!(
            error(&mut con, format!("CL.THROTTLE {key} 1 1 1")),
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            "{key}"
        );
        assert!(
            error(&mut con, format!("CL.THROTTLE {key} x 1 1")).starts_with("ERR max_burst"),
            "{key}"
        );
        assert_eq!(dump(&mut con, key.as_bytes()), before, "{key}");
    }
    // A string that is not a TAT: a clear error, and it stays as it was.
    for value in ["abc", "", "1.5", " 12", "99999999999999999999"] {
        query::<()>(&mut con, ["SET", "text", value]);
        assert_eq!(
            error(&mut con, "CL.THROTTLE text 1 1 1"),
            "ERR the value at the key is not a CL.THROTTLE state (an integer TAT in nanoseconds)",
            "{value:?}"
        );
        assert_eq!(get(&mut con, b"text").as_deref(), Some(value));
    }
    // The server is still up.
    assert_eq!(ints(&mut con, "CL.THROTTLE k 0 1 1"), [0, 1, 0, -1, 1]);
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
        // Back to back, in one transaction: the replies count whole seconds.
        let replies = in_one_transaction(&mut con, &vec![throttle_words(key, "1 1 60"); 3]);
        assert_eq!(replies[0], [0, 2, 1, -1, 60], "{key:?}");
        assert_eq!(replies[1], [0, 2, 0, -1, 120], "{key:?}");
        assert_eq!(replies[2][..4], [1, 2, 0, 60], "{key:?}");
        assert!(get(&mut con, key).unwrap().parse::<i64>().is_ok());
        assert!(int_reply(&mut con, "PTTL", key) > 100_000);
    }
    // Distinct keys stay distinct (no truncation at a NUL byte).
    assert_eq!(throttle(&mut con, b"\x00x", "1 1 60"), [0, 2, 1, -1, 60]);
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
    // The replica recomputes each call on the master's clock, and announces
    // it as the master does.
    let events = key_events(&replica, "KEA", || {
        // The replica is stalled while the master serves calls on its clock:
        // applying them later must still give the master's state.
        let stalled = {
            let mut stalled_con = replica.connect();
            std::thread::spawn(move || query::<()>(&mut stalled_con, "DEBUG SLEEP 0.5"))
        };
        std::thread::sleep(Duration::from_millis(50));
        for round in 0..300i64 {
            let key = &keys[(round % keys.len() as i64) as usize];
            throttle(&mut con, key, &format!("5 7 3600 {}", round % 4));
        }
        // Scripts replicate the effects, here the call itself.
        ints(
            &mut con,
            [
                "EVAL",
                "return redis.call('CL.THROTTLE', KEYS[1], 1, 1, 3600)",
                "1",
                "scripted",
            ],
        );
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
    let digest = |c: &mut Connection| -> String { query(c, "DEBUG DIGEST") };
    assert_eq!(digest(&mut replica_con), digest(&mut con));
    assert!(
        events.iter().any(|e| e.starts_with("cl.throttle ")),
        "{events:?}"
    );
    assert!(!events.iter().any(|e| e.starts_with("set ")), "{events:?}");

    // Limited calls and peeks replicate nothing.
    assert_eq!(ints(&mut con, "CL.THROTTLE full 0 1 3600")[0], 0);
    wait_for_replica(&mut con);
    let offset = info_field(&mut con, "replication", "master_repl_offset");
    for _ in 0..50 {
        assert_eq!(ints(&mut con, "CL.THROTTLE full 0 1 3600")[0], 1);
        assert_eq!(ints(&mut con, "CL.THROTTLE full 0 1 3600 0")[0], 0);
        assert_eq!(ints(&mut con, "CL.THROTTLE missing 0 1 3600 0")[0], 0);
    }
    assert_eq!(
        info_field(&mut con, "replication", "master_repl_offset"),
        offset
    );
    let refused = error(&mut replica_con, "CL.THROTTLE x 1 1 1");
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
            throttle(&mut con, key, &format!("9 1 3600 {quantity}"));
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
    let peek = ints(&mut con, "CL.THROTTLE aof:1 9 1 3600 0");
    assert_eq!(peek[..3], [0, 10, 7]);
    // And an AOF rewrite keeps it too (plain strings need nothing special).
    query::<()>(&mut con, "BGREWRITEAOF");
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
        ints(&mut con, "CL.THROTTLE n 0 1 60");
        ints(&mut con, "CL.THROTTLE n 0 1 60"); // limited
        ints(&mut con, "CL.THROTTLE n 0 1 60 0"); // peek
        ints(&mut con, "CL.THROTTLE m 0 1 60 0"); // peek on a missing key
        ints(&mut con, "CL.THROTTLE m 3 1 60 2");
    });
    assert_eq!(events, ["cl.throttle n", "cl.throttle m"]);
}

#[test]
fn command_info_and_docs_describe_cl_throttle() {
    let server = Server::start();
    let mut con = server.connect();
    let info: Vec<Value> = query(&mut con, "COMMAND INFO cl.throttle");
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
    let keys: Vec<String> = query(&mut con, "COMMAND GETKEYS CL.THROTTLE user123 15 30 60");
    assert_eq!(keys, ["user123"]);

    let docs: Value = query(&mut con, "COMMAND DOCS cl.throttle");
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
    assert_eq!(ints(&mut con, "CL.THROTTLE tenantA:1 1 1 1")[0], 0);
    assert!(error(&mut con, "CL.THROTTLE tenantB:1 1 1 1").starts_with("NOPERM"));
    assert_eq!(int(&mut admin, "EXISTS tenantB:1"), 0);

    // A read-only user cannot call it (7.0: no category; 7.2+: @write);
    // where modules may add categories, @ratelimit grants it.
    let user =
        |admin: &mut Connection, name: &str, rule: &str| login(&server, admin, name, &["~*", rule]);
    let mut reader = user(&mut admin, "reader", "+@read");
    assert!(error(&mut reader, "CL.THROTTLE r 1 1 1").starts_with("NOPERM"));
    let writers: Vec<String> = query(&mut admin, "ACL CAT write");
    let categories: Vec<String> = query(&mut admin, "ACL CAT");
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
        assert_eq!(ints(&mut limiter, "CL.THROTTLE r 1 1 1")[0], 0);
    }
}
