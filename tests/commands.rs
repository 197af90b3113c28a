//! The command contract on a live server: exact replies, peeks, TTLs, errors,
//! WRONGTYPE, binary keys and command metadata.

mod common;

use common::{call, dump, error, expire_unreaped, info_field, ints, login, Server};
use redis::Value;

const T: i64 = 1_700_000_000_000;

fn at(t: i64) -> String {
    t.to_string()
}

#[test]
fn token_bucket_contract_example() {
    let server = Server::start();
    let mut con = server.connect();
    let mut bucket = |t: i64, extra: &[&str]| {
        let t = at(t);
        let mut words = vec!["RL.TOKENBUCKET", "k", "10", "1", "1000", "AT", &t];
        words.extend_from_slice(extra);
        ints(&mut con, &words)
    };
    assert_eq!(bucket(T, &[]), [1, 10, 9, 0, 1000]);
    for _ in 2..10 {
        bucket(T, &[]);
    }
    assert_eq!(bucket(T, &[]), [1, 10, 0, 0, 10000]);
    assert_eq!(bucket(T, &[]), [0, 10, 0, 1000, 10000]);
    assert_eq!(bucket(T + 999, &[]), [0, 10, 0, 1, 9001]);
    assert_eq!(bucket(T + 1000, &[]), [1, 10, 0, 0, 10000]);
    assert_eq!(bucket(T + 1500, &["COST", "0"]), [1, 10, 0, 0, 9500]);
}

#[test]
fn fractional_refill_contract_example() {
    let server = Server::start();
    let mut con = server.connect();
    let mut bucket = |t: i64, cost: &str| {
        ints(
            &mut con,
            &[
                "RL.TOKENBUCKET",
                "k",
                "5",
                "3",
                "1000",
                "COST",
                cost,
                "AT",
                &at(t),
            ],
        )
    };
    assert_eq!(bucket(T, "5"), [1, 5, 0, 0, 1667]);
    assert_eq!(bucket(T, "1")[3], 334);
    assert_eq!(bucket(T + 333, "1")[0], 0);
    let allowed = bucket(T + 334, "1");
    assert_eq!(&allowed[..3], &[1, 5, 0]);
    assert_eq!(bucket(T + 334, "1")[3], 333);
}

#[test]
fn cost_contract_example_and_shared_state() {
    let server = Server::start();
    let mut con = server.connect();
    let t = at(T);
    assert_eq!(
        ints(
            &mut con,
            &["RL.COST", "k", "100", "10", "1000", "60", "AT", &t]
        ),
        [1, 100, 40, 0, 6000]
    );
    assert_eq!(
        ints(
            &mut con,
            &["RL.COST", "k", "100", "10", "1000", "50", "AT", &t]
        ),
        [0, 100, 40, 1000, 6000]
    );
    // RL.TOKENBUCKET reads and writes the same bucket.
    assert_eq!(
        ints(
            &mut con,
            &[
                "RL.TOKENBUCKET",
                "k",
                "100",
                "10",
                "1000",
                "COST",
                "40",
                "AT",
                &t
            ]
        ),
        [1, 100, 0, 0, 10000]
    );
    assert_eq!(
        error(
            &mut con,
            &["RL.COST", "k", "100", "10", "1000", "5", "COST", "1"]
        ),
        "ERR unknown option 'COST'"
    );
}

#[test]
fn sliding_log_contract_example() {
    let server = Server::start();
    let mut con = server.connect();
    let mut log = |t: i64, cost: &str| {
        ints(
            &mut con,
            &["RL.SLIDELOG", "l", "3", "1000", "COST", cost, "AT", &at(t)],
        )
    };
    assert_eq!(log(5000, "1"), [1, 3, 2, 0, 1000]);
    assert_eq!(log(5000, "1"), [1, 3, 1, 0, 1000]);
    assert_eq!(log(5500, "1"), [1, 3, 0, 0, 1000]);
    assert_eq!(log(5600, "1"), [0, 3, 0, 400, 900]);
    assert_eq!(log(6000, "1"), [1, 3, 1, 0, 1000]);
    assert_eq!(log(6000, "3"), [0, 3, 1, 1000, 1000]);
}

#[test]
fn peek_on_missing_key_creates_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        ints(
            &mut con,
            &["RL.TOKENBUCKET", "b", "10", "1", "1000", "COST", "0"]
        ),
        [1, 10, 10, 0, 0]
    );
    assert_eq!(
        ints(&mut con, &["RL.COST", "b", "10", "1", "1000", "0"]),
        [1, 10, 10, 0, 0]
    );
    assert_eq!(
        ints(&mut con, &["RL.SLIDELOG", "l", "5", "1000", "COST", "0"]),
        [1, 5, 5, 0, 0]
    );
    let exists: i64 = redis::cmd("EXISTS")
        .arg("b")
        .arg("l")
        .query(&mut con)
        .unwrap();
    assert_eq!(exists, 0);
}

#[test]
fn writes_set_the_ttl_and_denials_leave_it() {
    let server = Server::start();
    let mut con = server.connect();
    let pttl = |con: &mut redis::Connection, key: &str| -> i64 {
        redis::cmd("PTTL").arg(key).query(con).unwrap()
    };
    // The TTL follows the server clock, so these calls use it too.
    ints(
        &mut con,
        &["RL.TOKENBUCKET", "b", "2", "1", "60000", "COST", "2"],
    );
    let ttl = pttl(&mut con, "b");
    assert!((119_000..=120_000).contains(&ttl), "bucket ttl {ttl}");
    redis::cmd("PEXPIRE")
        .arg("b")
        .arg(500_000)
        .query::<i64>(&mut con)
        .unwrap();
    assert_eq!(
        ints(&mut con, &["RL.TOKENBUCKET", "b", "2", "1", "60000"])[0],
        0
    );
    assert_eq!(
        ints(
            &mut con,
            &["RL.TOKENBUCKET", "b", "2", "1", "60000", "COST", "0"]
        )[0],
        1
    );
    assert!(
        pttl(&mut con, "b") > 400_000,
        "denied calls and peeks keep the TTL"
    );

    ints(&mut con, &["RL.SLIDELOG", "l", "5", "30000"]);
    let ttl = pttl(&mut con, "l");
    assert!((29_000..=30_000).contains(&ttl), "log ttl {ttl}");

    // A quota that never refills keeps no TTL.
    ints(&mut con, &["RL.TOKENBUCKET", "q", "5", "0", "1000"]);
    assert_eq!(pttl(&mut con, "q"), -1);
}

#[test]
fn calls_in_a_transaction_run_at_its_start_where_the_server_caches_the_time() {
    // Redis 7.2+ and Valkey cache the time as a command starts and keep it
    // through a transaction (it is what they check key expiry against); the
    // module reads that cache. Redis 7.0 has none: each call reads the clock.
    let server = Server::start();
    let mut con = server.connect();
    let version = info_field(&mut con, "server", "redis_version");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap());
    let cached = (parts.next().unwrap(), parts.next().unwrap()) >= (7, 2);
    let (taken, (), peek): (Vec<i64>, (), Vec<i64>) = redis::pipe()
        .atomic()
        .cmd("RL.TOKENBUCKET")
        .arg("b")
        .arg(10)
        .arg(1)
        .arg(1000)
        .cmd("DEBUG")
        .arg("SLEEP")
        .arg("0.05")
        .cmd("RL.TOKENBUCKET")
        .arg("b")
        .arg(10)
        .arg(1)
        .arg(1000)
        .arg("COST")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert_eq!(taken[4], 1000, "reset_after_ms after taking one token");
    if cached {
        assert_eq!(
            peek[4], 1000,
            "{version}: no time passed in the transaction"
        );
    } else {
        assert!(peek[4] <= 950, "{version}: the clock moved on: {peek:?}");
    }
}

#[test]
fn denied_calls_and_peeks_do_not_touch_watched_keys() {
    let server = Server::start();
    let mut con = server.connect();
    let mut other = server.connect();
    ints(
        &mut con,
        &["RL.TOKENBUCKET", "b", "1", "1", "60000", "AT", &at(T)],
    );
    ints(&mut con, &["RL.SLIDELOG", "l", "1", "60000", "AT", &at(T)]);
    redis::cmd("WATCH")
        .arg("b")
        .arg("l")
        .query::<()>(&mut con)
        .unwrap();
    assert_eq!(
        ints(
            &mut other,
            &["RL.TOKENBUCKET", "b", "1", "1", "60000", "AT", &at(T)]
        )[0],
        0
    );
    assert_eq!(
        ints(
            &mut other,
            &["RL.SLIDELOG", "l", "1", "60000", "AT", &at(T)]
        )[0],
        0
    );
    let all = [
        "RL.ALL",
        "2",
        "b",
        "l",
        "TOKENBUCKET",
        "1",
        "1",
        "60000",
        "SLIDELOG",
        "1",
        "60000",
        "AT",
    ];
    let denied_all: Vec<redis::Value> = redis::cmd(all[0])
        .arg(&all[1..])
        .arg(at(T))
        .query(&mut other)
        .unwrap();
    assert_eq!(denied_all[0], redis::Value::Int(0));
    ints(
        &mut other,
        &[
            "RL.TOKENBUCKET",
            "b",
            "1",
            "1",
            "60000",
            "COST",
            "0",
            "AT",
            &at(T),
        ],
    );
    let result: Option<Vec<String>> = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("x")
        .arg("1")
        .query(&mut con)
        .unwrap();
    assert!(
        result.is_some(),
        "the transaction must run: nothing was written"
    );
    // While an allowed call does abort it.
    redis::cmd("WATCH").arg("b").query::<()>(&mut con).unwrap();
    ints(
        &mut other,
        &[
            "RL.TOKENBUCKET",
            "b",
            "1",
            "1",
            "60000",
            "AT",
            &at(T + 60_000),
        ],
    );
    let result: Option<Vec<String>> = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("x")
        .arg("2")
        .query(&mut con)
        .unwrap();
    assert!(
        result.is_none(),
        "a write must abort the watching transaction"
    );
    // A call refused with WRONGTYPE does not either.
    redis::cmd("WATCH").arg("x").query::<()>(&mut con).unwrap();
    let empty_log = [1000i64, 5000, 0].map(i64::to_le_bytes).concat();
    let refused: redis::RedisResult<()> = redis::cmd("RL.RESTORESTATE")
        .arg("x")
        .arg("slidelog")
        .arg(&empty_log)
        .query(&mut other);
    assert!(refused.unwrap_err().to_string().contains("WRONGTYPE"));
    let result: Option<Vec<String>> = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("y")
        .arg("1")
        .query(&mut con)
        .unwrap();
    assert!(result.is_some(), "WRONGTYPE must not abort the transaction");
    // So do an allowed log call and a call that creates its key.
    for (watched, call) in [
        (
            "l",
            ["RL.SLIDELOG", "l", "1", "60000", "AT", &at(T + 60_000)],
        ),
        ("new", ["RL.COST", "new", "1", "1", "60000", "1"]),
    ] {
        redis::cmd("WATCH")
            .arg(watched)
            .query::<()>(&mut con)
            .unwrap();
        assert_eq!(ints(&mut other, &call)[0], 1);
        let result: Option<Vec<String>> = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg("x")
            .arg("3")
            .query(&mut con)
            .unwrap();
        assert!(result.is_none(), "{call:?} must abort the transaction");
    }
}

/// Arguments are checked before the key is looked up: a call with bad
/// arguments does not even reap a key that has expired but is still stored
/// (which would count it as expired and propagate a DEL).
#[test]
fn bad_arguments_do_not_look_the_key_up() {
    let server = Server::start();
    let mut con = server.connect();
    ints(&mut con, &["RL.TOKENBUCKET", "b", "10", "1", "1000"]);
    ints(&mut con, &["RL.SLIDELOG", "l", "10", "1000"]);
    let expired_before = expire_unreaped(&mut con, &["b", "l"]);
    for words in [
        &["RL.TOKENBUCKET", "b", "x", "1", "1000"][..],
        &["RL.TOKENBUCKET", "b", "10", "1", "1000", "COST", "-1"],
        &["RL.COST", "b", "10", "1", "1000", "+5"],
        &["RL.SLIDELOG", "l", "0", "1000"],
        &["RL.SLIDELOG", "l", "10", "1000", "AT", "x"],
        &[
            "RL.ALL",
            "2",
            "b",
            "l",
            "TOKENBUCKET",
            "10",
            "1",
            "1000",
            "SLIDELOG",
            "0",
            "1000",
        ],
    ] {
        assert!(error(&mut con, words).starts_with("ERR"), "{words:?}");
    }
    assert_eq!(
        info_field(&mut con, "stats", "expired_keys"),
        expired_before
    );
    assert_eq!(call(&mut con, &["DBSIZE"]).unwrap(), Value::Int(2));
}

#[test]
fn bad_arguments_get_errors_that_name_them_and_change_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    let t = at(T);
    ints(
        &mut con,
        &["RL.TOKENBUCKET", "b", "10", "1", "1000", "AT", &t],
    );
    ints(&mut con, &["RL.SLIDELOG", "l", "10", "1000", "AT", &t]);
    let bucket_before = dump(&mut con, b"b");
    let log_before = dump(&mut con, b"l");
    let max = "9223372036854775807";
    let too_big = "9223372036854775808";
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["RL.TOKENBUCKET", "b", "0", "1", "1000"],
            format!("ERR capacity must be an integer from 1 to {max}"),
        ),
        (
            vec!["RL.TOKENBUCKET", "b", "x", "1", "1000"],
            format!("ERR capacity must be an integer from 1 to {max}"),
        ),
        (
            vec!["RL.TOKENBUCKET", "b", too_big, "1", "1000"],
            format!("ERR capacity must be an integer from 1 to {max}"),
        ),
        (
            vec!["RL.TOKENBUCKET", "b", "10", "-1", "1000"],
            format!("ERR refill_amount must be an integer from 0 to {max}"),
        ),
        (
            vec!["RL.TOKENBUCKET", "b", "10", "1.5", "1000"],
            format!("ERR refill_amount must be an integer from 0 to {max}"),
        ),
        (
            vec!["RL.TOKENBUCKET", "b", "10", "1", "0"],
            format!("ERR refill_period_ms must be an integer from 1 to {max}"),
        ),
        (
            vec!["RL.TOKENBUCKET", "b", "10", "1", "1000", "COST", "-1"],
            format!("ERR COST must be an integer from 0 to {max}"),
        ),
        (
            vec!["RL.TOKENBUCKET", "b", "10", "1", "1000", "COST"],
            "ERR option COST needs a value".to_owned(),
        ),
        (
            vec![
                "RL.TOKENBUCKET",
                "b",
                "10",
                "1",
                "1000",
                "COST",
                "1",
                "cost",
                "2",
            ],
            "ERR option COST given more than once".to_owned(),
        ),
        (
            vec!["RL.TOKENBUCKET", "b", "10", "1", "1000", "AT", ""],
            format!("ERR AT must be an integer from 0 to {max}"),
        ),
        (
            vec!["RL.TOKENBUCKET", "b", "10", "1", "1000", "BURST", "1"],
            "ERR unknown option 'BURST'".to_owned(),
        ),
        (
            vec!["RL.COST", "b", "10", "1", "1000", "+5"],
            format!("ERR cost must be an integer from 0 to {max}"),
        ),
        (
            vec!["RL.COST", "b", "10", "1", "1000", "5", "AT", "-5"],
            format!("ERR AT must be an integer from 0 to {max}"),
        ),
        (
            vec!["RL.SLIDELOG", "l", "0", "1000"],
            "ERR limit must be an integer from 1 to 1000000".to_owned(),
        ),
        (
            vec!["RL.SLIDELOG", "l", "1000001", "1000"],
            "ERR limit must be an integer from 1 to 1000000".to_owned(),
        ),
        (
            vec!["RL.SLIDELOG", "l", "10", "0"],
            format!("ERR window_ms must be an integer from 1 to {max}"),
        ),
        (
            vec!["RL.SLIDELOG", "l", "10", "1000", "at", "1", "AT", "2"],
            "ERR option AT given more than once".to_owned(),
        ),
        (
            vec!["RL.TOKENBUCKET", "b", "10", "1"],
            "ERR wrong number of arguments for 'rl.tokenbucket' command".to_owned(),
        ),
        (
            vec!["RL.COST", "b", "10", "1", "1000"],
            "ERR wrong number of arguments for 'rl.cost' command".to_owned(),
        ),
        (
            vec!["RL.SLIDELOG", "l", "10"],
            "ERR wrong number of arguments for 'rl.slidelog' command".to_owned(),
        ),
    ];
    for (words, expected) in cases {
        assert_eq!(
            error(&mut con, &words).to_lowercase(),
            expected.to_lowercase(),
            "{words:?}"
        );
    }
    // Arguments are checked before the key's type.
    assert!(error(&mut con, &["RL.TOKENBUCKET", "l", "0", "1", "1000"]).starts_with("ERR capacity"));
    assert_eq!(dump(&mut con, b"b"), bucket_before);
    assert_eq!(dump(&mut con, b"l"), log_before);
}

#[test]
fn keys_of_another_type_get_wrongtype_and_stay_as_they_were() {
    let server = Server::start();
    let mut con = server.connect();
    ints(&mut con, &["RL.TOKENBUCKET", "bucket", "10", "1", "1000"]);
    ints(&mut con, &["RL.SLIDELOG", "log", "10", "1000"]);
    redis::cmd("SET")
        .arg("string")
        .arg("v")
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("RPUSH")
        .arg("list")
        .arg("a")
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("HSET")
        .arg("hash")
        .arg("f")
        .arg("v")
        .query::<()>(&mut con)
        .unwrap();
    let keys = ["bucket", "log", "string", "list", "hash"];
    let before: Vec<_> = keys.iter().map(|k| dump(&mut con, k.as_bytes())).collect();
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    for key in ["log", "string", "list", "hash"] {
        assert_eq!(
            error(&mut con, &["RL.TOKENBUCKET", key, "10", "1", "1000"]),
            wrongtype
        );
        assert_eq!(
            error(&mut con, &["RL.COST", key, "10", "1", "1000", "0"]),
            wrongtype
        );
    }
    for key in ["bucket", "string", "list", "hash"] {
        assert_eq!(
            error(&mut con, &["RL.SLIDELOG", key, "10", "1000", "COST", "0"]),
            wrongtype
        );
    }
    let after: Vec<_> = keys.iter().map(|k| dump(&mut con, k.as_bytes())).collect();
    assert_eq!(before, after);
    let kinds: Vec<String> = keys
        .iter()
        .map(|k| redis::cmd("TYPE").arg(*k).query(&mut con).unwrap())
        .collect();
    assert_eq!(kinds, ["rl-bucket", "rl-sldlog", "string", "list", "hash"]);
}

#[test]
fn binary_keys_and_arguments_are_safe() {
    let server = Server::start();
    let mut con = server.connect();
    let key: &[u8] = b"\xff\x00user\xfe";
    let reply: Vec<i64> = redis::cmd("RL.TOKENBUCKET")
        .arg(key)
        .arg(2)
        .arg(1)
        .arg(1000)
        .query(&mut con)
        .unwrap();
    assert_eq!(reply, [1, 2, 1, 0, 1000]);
    let reply: Vec<i64> = redis::cmd("RL.SLIDELOG")
        .arg(key.to_vec().repeat(2))
        .arg(2)
        .arg(1000)
        .query(&mut con)
        .unwrap();
    assert_eq!(reply, [1, 2, 1, 0, 1000]);
    let exists: i64 = redis::cmd("EXISTS").arg(key).query(&mut con).unwrap();
    assert_eq!(exists, 1);
    for bad in [&b"1\x00"[..], b"\xff\xfe", b"", b"1 ", b"0x10", b"1e3"] {
        let result: redis::RedisResult<Value> = redis::cmd("RL.TOKENBUCKET")
            .arg(key)
            .arg(bad)
            .arg(1)
            .arg(1000)
            .query(&mut con);
        let message = common::error_text(&result.expect_err("bad capacity"));
        assert!(message.starts_with("ERR capacity"), "{message}");
    }
    let result: redis::RedisResult<Value> = redis::cmd("RL.TOKENBUCKET")
        .arg(key)
        .arg(2)
        .arg(1)
        .arg(1000)
        .arg(&b"\x00\xffOPT"[..])
        .arg(1)
        .query(&mut con);
    assert_eq!(
        common::error_text(&result.expect_err("unknown option")),
        "ERR unknown option '\\x00\\xffOPT'"
    );
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn extreme_legal_values_are_answered() {
    let server = Server::start();
    let mut con = server.connect();
    let max = "9223372036854775807";
    assert_eq!(
        ints(
            &mut con,
            &["RL.TOKENBUCKET", "b", max, max, max, "COST", max, "AT", max]
        ),
        [1, i64::MAX, 0, 0, i64::MAX]
    );
    assert_eq!(
        ints(&mut con, &["RL.TOKENBUCKET", "b", max, max, max, "AT", max]),
        [0, i64::MAX, 0, 1, i64::MAX]
    );
    // A TTL too long for the server clock means no TTL.
    let ttl: i64 = redis::cmd("PTTL").arg("b").query(&mut con).unwrap();
    assert_eq!(ttl, -1);
    assert_eq!(
        ints(
            &mut con,
            &["RL.SLIDELOG", "l", "1000000", max, "COST", max, "AT", max]
        ),
        [0, 1_000_000, 1_000_000, -1, 0]
    );
    assert_eq!(
        ints(
            &mut con,
            &[
                "RL.SLIDELOG",
                "l",
                "1000000",
                max,
                "COST",
                "1000000",
                "AT",
                max
            ]
        ),
        [1, 1_000_000, 0, 0, i64::MAX]
    );
}

#[test]
fn command_metadata_describes_each_command() {
    let server = Server::start();
    let mut con = server.connect();
    for (name, arity, flags) in [
        (
            "rl.tokenbucket",
            -5,
            vec!["write", "denyoom", "module", "fast"],
        ),
        ("rl.cost", -6, vec!["write", "denyoom", "module", "fast"]),
        ("rl.slidelog", -4, vec!["write", "denyoom", "module"]),
    ] {
        let info: Vec<Value> = redis::cmd("COMMAND")
            .arg("INFO")
            .arg(name)
            .query(&mut con)
            .unwrap();
        let Value::Array(fields) = &info[0] else {
            panic!("no info for {name}: {info:?}")
        };
        assert_eq!(fields[1], Value::Int(arity), "{name} arity");
        let reported: Vec<String> = redis::from_redis_value(&fields[2]).unwrap();
        assert_eq!(reported, flags, "{name} flags");
        assert_eq!(
            &fields[3..6],
            &[Value::Int(1), Value::Int(1), Value::Int(1)],
            "{name} keys"
        );
        let keys: Vec<String> = redis::cmd("COMMAND")
            .arg("GETKEYS")
            .arg(name)
            .arg("user:42")
            .arg("1")
            .arg("2")
            .arg("3")
            .arg("4")
            .query(&mut con)
            .unwrap();
        assert_eq!(keys, ["user:42"]);
        let docs: Value = redis::cmd("COMMAND")
            .arg("DOCS")
            .arg(name)
            .query(&mut con)
            .unwrap();
        let text = format!("{docs:?}");
        assert!(
            text.contains("summary") && text.contains("complexity") && text.contains("key"),
            "{name}: {text}"
        );
    }
    // ACL key patterns see the key.
    let mut con = login(&server, &mut con, "tenant", &["~tenantA:*", "+@all"]);
    assert_eq!(
        ints(&mut con, &["RL.TOKENBUCKET", "tenantA:1", "5", "1", "1000"])[0],
        1
    );
    assert!(
        error(&mut con, &["RL.TOKENBUCKET", "tenantB:1", "5", "1", "1000"]).starts_with("NOPERM")
    );
}
