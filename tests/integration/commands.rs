//! The command contract on a live server: exact replies, peeks, TTLs, errors,
//! WRONGTYPE, binary keys and command metadata.

use crate::common::{
    call, command, dump, error, expire_time, expire_unreaped, info_field, int, ints, login, query,
    server_version, timed, transaction_runs, Server,
};
use redis::Value;

const T: i64 = 1_700_000_000_000;

#[test]
fn token_bucket_contract_example() {
    let server = Server::start();
    let mut con = server.connect();
    let mut bucket = |t: i64, extra: &str| {
        ints(
            &mut con,
            format!("RL.TOKENBUCKET k 10 1 1000 AT {t} {extra}"),
        )
    };
    assert_eq!(bucket(T, ""), [1, 10, 9, 0, 1000]);
    for _ in 2..10 {
        bucket(T, "");
    }
    assert_eq!(bucket(T, ""), [1, 10, 0, 0, 10000]);
    assert_eq!(bucket(T, ""), [0, 10, 0, 1000, 10000]);
    assert_eq!(bucket(T + 999, ""), [0, 10, 0, 1, 9001]);
    assert_eq!(bucket(T + 1000, ""), [1, 10, 0, 0, 10000]);
    assert_eq!(bucket(T + 1500, "COST 0"), [1, 10, 0, 0, 9500]);
}

#[test]
fn fractional_refill_contract_example() {
    let server = Server::start();
    let mut con = server.connect();
    let mut bucket = |t: i64, cost: i64| {
        ints(
            &mut con,
            format!("RL.TOKENBUCKET k 5 3 1000 COST {cost} AT {t}"),
        )
    };
    assert_eq!(bucket(T, 5), [1, 5, 0, 0, 1667]);
    assert_eq!(bucket(T, 1)[3], 334);
    assert_eq!(bucket(T + 333, 1)[0], 0);
    let allowed = bucket(T + 334, 1);
    assert_eq!(&allowed[..3], &[1, 5, 0]);
    assert_eq!(bucket(T + 334, 1)[3], 333);
}

#[test]
fn cost_contract_example_and_shared_state() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        ints(&mut con, format!("RL.COST k 100 10 1000 60 AT {T}")),
        [1, 100, 40, 0, 6000]
    );
    assert_eq!(
        ints(&mut con, format!("RL.COST k 100 10 1000 50 AT {T}")),
        [0, 100, 40, 1000, 6000]
    );
    // RL.TOKENBUCKET reads and writes the same bucket.
    assert_eq!(
        ints(
            &mut con,
            format!("RL.TOKENBUCKET k 100 10 1000 COST 40 AT {T}")
        ),
        [1, 100, 0, 0, 10000]
    );
    assert_eq!(
        error(&mut con, "RL.COST k 100 10 1000 5 COST 1"),
        "ERR unknown option 'COST'"
    );
}

#[test]
fn sliding_log_contract_example() {
    let server = Server::start();
    let mut con = server.connect();
    let mut log =
        |t: i64, cost: i64| ints(&mut con, format!("RL.SLIDELOG l 3 1000 COST {cost} AT {t}"));
    assert_eq!(log(5000, 1), [1, 3, 2, 0, 1000]);
    assert_eq!(log(5000, 1), [1, 3, 1, 0, 1000]);
    assert_eq!(log(5500, 1), [1, 3, 0, 0, 1000]);
    assert_eq!(log(5600, 1), [0, 3, 0, 400, 900]);
    assert_eq!(log(6000, 1), [1, 3, 1, 0, 1000]);
    assert_eq!(log(6000, 3), [0, 3, 1, 1000, 1000]);
}

#[test]
fn peek_on_missing_key_creates_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        ints(&mut con, "RL.TOKENBUCKET b 10 1 1000 COST 0"),
        [1, 10, 10, 0, 0]
    );
    assert_eq!(ints(&mut con, "RL.COST b 10 1 1000 0"), [1, 10, 10, 0, 0]);
    assert_eq!(
        ints(&mut con, "RL.SLIDELOG l 5 1000 COST 0"),
        [1, 5, 5, 0, 0]
    );
    let exists: i64 = query(&mut con, "EXISTS b l");
    assert_eq!(exists, 0);
}

#[test]
fn writes_set_the_ttl_and_denials_leave_it() {
    let server = Server::start();
    let mut con = server.connect();
    let pttl = |con: &mut redis::Connection, key: &str| -> i64 { query(con, ["PTTL", key]) };
    // The TTL follows the server clock, so these calls use it too: each key
    // expires its reset_after_ms after the call's time, which lies between
    // the server's clock read before and after it.
    let (_, during) = timed(&mut con, |con| {
        ints(con, "RL.TOKENBUCKET b 2 1 60000 COST 2")
    });
    let written_at = expire_time(&mut con, b"b") - 120_000;
    assert!(
        during.contains(&written_at),
        "bucket: {written_at} {during:?}"
    );
    query::<i64>(&mut con, "PEXPIRE b 500000");
    assert_eq!(ints(&mut con, "RL.TOKENBUCKET b 2 1 60000")[0], 0);
    assert_eq!(ints(&mut con, "RL.TOKENBUCKET b 2 1 60000 COST 0")[0], 1);
    assert!(
        pttl(&mut con, "b") > 400_000,
        "denied calls and peeks keep the TTL"
    );

    let (_, during) = timed(&mut con, |con| ints(con, "RL.SLIDELOG l 5 30000"));
    let written_at = expire_time(&mut con, b"l") - 30_000;
    assert!(during.contains(&written_at), "log: {written_at} {during:?}");

    // A quota that never refills keeps no TTL.
    ints(&mut con, "RL.TOKENBUCKET q 5 0 1000");
    assert_eq!(pttl(&mut con, "q"), -1);
}

#[test]
fn calls_in_a_transaction_run_at_its_start_where_the_server_caches_the_time() {
    // Redis 7.2+ and Valkey cache the time as a command starts and keep it
    // through a transaction (it is what they check key expiry against); the
    // module reads that cache. Redis 7.0 has none: each call reads the clock.
    let server = Server::start();
    let mut con = server.connect();
    let version = server_version(&mut con);
    let cached = version >= (7, 2);
    let (taken, (), peek): (Vec<i64>, (), Vec<i64>) = redis::pipe()
        .atomic()
        .add_command(command("RL.TOKENBUCKET b 10 1 1000"))
        .add_command(command("DEBUG SLEEP 0.05"))
        .add_command(command("RL.TOKENBUCKET b 10 1 1000 COST 0"))
        .query(&mut con)
        .unwrap();
    assert_eq!(taken[4], 1000, "reset_after_ms after taking one token");
    if cached {
        assert_eq!(
            peek[4], 1000,
            "{version:?}: no time passed in the transaction"
        );
    } else {
        assert!(peek[4] <= 950, "{version:?}: the clock moved on: {peek:?}");
    }
}

#[test]
fn denied_calls_and_peeks_do_not_touch_watched_keys() {
    let server = Server::start();
    let mut con = server.connect();
    let mut other = server.connect();
    ints(&mut con, format!("RL.TOKENBUCKET b 1 1 60000 AT {T}"));
    ints(&mut con, format!("RL.SLIDELOG l 1 60000 AT {T}"));
    query::<()>(&mut con, "WATCH b l");
    assert_eq!(
        ints(&mut other, format!("RL.TOKENBUCKET b 1 1 60000 AT {T}"))[0],
        0
    );
    assert_eq!(
        ints(&mut other, format!("RL.SLIDELOG l 1 60000 AT {T}"))[0],
        0
    );
    let denied_all: Vec<Value> = query(
        &mut other,
        format!("RL.ALL 2 b l TOKENBUCKET 1 1 60000 SLIDELOG 1 60000 AT {T}"),
    );
    assert_eq!(denied_all[0], Value::Int(0));
    ints(
        &mut other,
        format!("RL.TOKENBUCKET b 1 1 60000 COST 0 AT {T}"),
    );
    assert!(
        transaction_runs(&mut con, "SET x 1"),
        "the transaction must run: nothing was written"
    );
    // While an allowed call does abort it.
    query::<()>(&mut con, "WATCH b");
    ints(
        &mut other,
        format!("RL.TOKENBUCKET b 1 1 60000 AT {}", T + 60_000),
    );
    assert!(
        !transaction_runs(&mut con, "SET x 2"),
        "a write must abort the watching transaction"
    );
    // A call refused with WRONGTYPE does not either.
    query::<()>(&mut con, "WATCH x");
    let empty_log = [1000i64, 5000, 0].map(i64::to_le_bytes).concat();
    let refused = call(
        &mut other,
        [&b"RL.RESTORESTATE"[..], b"x", b"slidelog", &empty_log],
    );
    assert!(refused.unwrap_err().to_string().contains("WRONGTYPE"));
    assert!(
        transaction_runs(&mut con, "SET y 1"),
        "WRONGTYPE must not abort the transaction"
    );
    // So do an allowed log call and a call that creates its key.
    for (watched, call) in [
        ("l", format!("RL.SLIDELOG l 1 60000 AT {}", T + 60_000)),
        ("new", "RL.COST new 1 1 60000 1".to_owned()),
    ] {
        query::<()>(&mut con, ["WATCH", watched]);
        assert_eq!(ints(&mut other, &call)[0], 1);
        assert!(
            !transaction_runs(&mut con, "SET x 3"),
            "{call:?} must abort the transaction"
        );
    }
}

/// Arguments are checked before the key is looked up: a call with bad
/// arguments does not even reap a key that has expired but is still stored
/// (which would count it as expired and propagate a DEL).
#[test]
fn bad_arguments_do_not_look_the_key_up() {
    let server = Server::start();
    let mut con = server.connect();
    // An hour's TTL, so that only expire_unreaped expires them.
    ints(&mut con, "RL.TOKENBUCKET b 10 1 3600000");
    ints(&mut con, "RL.SLIDELOG l 10 3600000");
    let expired_before = expire_unreaped(&mut con, &["b", "l"]);
    for line in [
        "RL.TOKENBUCKET b x 1 1000",
        "RL.TOKENBUCKET b 10 1 1000 COST -1",
        "RL.COST b 10 1 1000 +5",
        "RL.SLIDELOG l 0 1000",
        "RL.SLIDELOG l 10 1000 AT x",
        "RL.ALL 2 b l TOKENBUCKET 10 1 1000 SLIDELOG 0 1000",
    ] {
        assert!(error(&mut con, line).starts_with("ERR"), "{line}");
    }
    assert_eq!(
        info_field(&mut con, "stats", "expired_keys"),
        expired_before
    );
    assert_eq!(call(&mut con, "DBSIZE").unwrap(), Value::Int(2));
}

#[test]
fn bad_arguments_get_errors_that_name_them_and_change_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    ints(&mut con, format!("RL.TOKENBUCKET b 10 1 1000 AT {T}"));
    ints(&mut con, format!("RL.SLIDELOG l 10 1000 AT {T}"));
    let bucket_before = dump(&mut con, b"b");
    let log_before = dump(&mut con, b"l");
    let max = "9223372036854775807";
    let cases: Vec<(&str, String)> = vec![
        (
            "RL.TOKENBUCKET b 0 1 1000",
            format!("ERR capacity must be an integer from 1 to {max}"),
        ),
        (
            "RL.TOKENBUCKET b x 1 1000",
            format!("ERR capacity must be an integer from 1 to {max}"),
        ),
        (
            "RL.TOKENBUCKET b 9223372036854775808 1 1000",
            format!("ERR capacity must be an integer from 1 to {max}"),
        ),
        (
            "RL.TOKENBUCKET b 10 -1 1000",
            format!("ERR refill_amount must be an integer from 0 to {max}"),
        ),
        (
            "RL.TOKENBUCKET b 10 1.5 1000",
            format!("ERR refill_amount must be an integer from 0 to {max}"),
        ),
        (
            "RL.TOKENBUCKET b 10 1 0",
            format!("ERR refill_period_ms must be an integer from 1 to {max}"),
        ),
        (
            "RL.TOKENBUCKET b 10 1 1000 COST -1",
            format!("ERR COST must be an integer from 0 to {max}"),
        ),
        (
            "RL.TOKENBUCKET b 10 1 1000 COST",
            "ERR option COST needs a value".to_owned(),
        ),
        (
            "RL.TOKENBUCKET b 10 1 1000 COST 1 cost 2",
            "ERR option COST given more than once".to_owned(),
        ),
        (
            "RL.TOKENBUCKET b 10 1 1000 BURST 1",
            "ERR unknown option 'BURST'".to_owned(),
        ),
        (
            "RL.COST b 10 1 1000 +5",
            format!("ERR cost must be an integer from 0 to {max}"),
        ),
        (
            "RL.COST b 10 1 1000 5 AT -5",
            format!("ERR AT must be an integer from 0 to {max}"),
        ),
        (
            "RL.SLIDELOG l 0 1000",
            "ERR limit must be an integer from 1 to 1000000".to_owned(),
        ),
        (
            "RL.SLIDELOG l 1000001 1000",
            "ERR limit must be an integer from 1 to 1000000".to_owned(),
        ),
        (
            "RL.SLIDELOG l 10 0",
            format!("ERR window_ms must be an integer from 1 to {max}"),
        ),
        (
            "RL.SLIDELOG l 10 1000 at 1 AT 2",
            "ERR option AT given more than once".to_owned(),
        ),
        (
            "RL.TOKENBUCKET b 10 1",
            "ERR wrong number of arguments for 'rl.tokenbucket' command".to_owned(),
        ),
        (
            "RL.COST b 10 1 1000",
            "ERR wrong number of arguments for 'rl.cost' command".to_owned(),
        ),
        (
            "RL.SLIDELOG l 10",
            "ERR wrong number of arguments for 'rl.slidelog' command".to_owned(),
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(
            error(&mut con, line).to_lowercase(),
            expected.to_lowercase(),
            "{line}"
        );
    }
    // An empty word, which a line of text cannot hold.
    assert_eq!(
        error(
            &mut con,
            ["RL.TOKENBUCKET", "b", "10", "1", "1000", "AT", ""]
        )
        .to_lowercase(),
        format!("ERR AT must be an integer from 0 to {max}").to_lowercase()
    );
    // Arguments are checked before the key's type.
    assert!(error(&mut con, "RL.TOKENBUCKET l 0 1 1000").starts_with("ERR capacity"));
    assert_eq!(dump(&mut con, b"b"), bucket_before);
    assert_eq!(dump(&mut con, b"l"), log_before);
}

#[test]
fn keys_of_another_type_get_wrongtype_and_stay_as_they_were() {
    let server = Server::start();
    let mut con = server.connect();
    // An hour's TTL: the limiters outlive every call below.
    ints(&mut con, "RL.TOKENBUCKET bucket 10 1 3600000");
    ints(&mut con, "RL.SLIDELOG log 10 3600000");
    query::<()>(&mut con, "SET string v");
    query::<()>(&mut con, "RPUSH list a");
    query::<()>(&mut con, "HSET hash f v");
    let keys = ["bucket", "log", "string", "list", "hash"];
    let before: Vec<_> = keys.iter().map(|k| dump(&mut con, k.as_bytes())).collect();
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    for key in ["log", "string", "list", "hash"] {
        assert_eq!(
            error(&mut con, format!("RL.TOKENBUCKET {key} 10 1 1000")),
            wrongtype
        );
        assert_eq!(
            error(&mut con, format!("RL.COST {key} 10 1 1000 0")),
            wrongtype
        );
    }
    for key in ["bucket", "string", "list", "hash"] {
        assert_eq!(
            error(&mut con, format!("RL.SLIDELOG {key} 10 1000 COST 0")),
            wrongtype
        );
    }
    let after: Vec<_> = keys.iter().map(|k| dump(&mut con, k.as_bytes())).collect();
    assert_eq!(before, after);
    let kinds: Vec<String> = keys.iter().map(|k| query(&mut con, ["TYPE", k])).collect();
    assert_eq!(kinds, ["rl-bucket", "rl-sldlog", "string", "list", "hash"]);
}

#[test]
fn binary_keys_and_arguments_are_safe() {
    let server = Server::start();
    let mut con = server.connect();
    let key: &[u8] = b"\xff\x00user\xfe";
    // An hour's TTL: the key still exists when EXISTS looks.
    assert_eq!(
        ints(
            &mut con,
            [&b"RL.TOKENBUCKET"[..], key, b"2", b"1", b"3600000"]
        ),
        [1, 2, 1, 0, 3_600_000]
    );
    assert_eq!(
        ints(
            &mut con,
            [&b"RL.SLIDELOG"[..], &key.repeat(2), b"2", b"3600000"]
        ),
        [1, 2, 1, 0, 3_600_000]
    );
    assert_eq!(int(&mut con, [&b"EXISTS"[..], key]), 1);
    for bad in [&b"1\x00"[..], b"\xff\xfe", b"", b"1 ", b"0x10", b"1e3"] {
        let message = error(&mut con, [&b"RL.TOKENBUCKET"[..], key, bad, b"1", b"1000"]);
        assert!(message.starts_with("ERR capacity"), "{message}");
    }
    assert_eq!(
        error(
            &mut con,
            [
                &b"RL.TOKENBUCKET"[..],
                key,
                b"2",
                b"1",
                b"1000",
                b"\x00\xffOPT",
                b"1"
            ]
        ),
        "ERR unknown option '\\x00\\xffOPT'"
    );
    let pong: String = query(&mut con, "PING");
    assert_eq!(pong, "PONG");
}

#[test]
fn extreme_legal_values_are_answered() {
    let server = Server::start();
    let mut con = server.connect();
    let max = i64::MAX;
    assert_eq!(
        ints(
            &mut con,
            format!("RL.TOKENBUCKET b {max} {max} {max} COST {max} AT {max}")
        ),
        [1, i64::MAX, 0, 0, i64::MAX]
    );
    assert_eq!(
        ints(
            &mut con,
            format!("RL.TOKENBUCKET b {max} {max} {max} AT {max}")
        ),
        [0, i64::MAX, 0, 1, i64::MAX]
    );
    // A TTL too long for the server clock means no TTL.
    let ttl: i64 = query(&mut con, "PTTL b");
    assert_eq!(ttl, -1);
    assert_eq!(
        ints(
            &mut con,
            format!("RL.SLIDELOG l 1000000 {max} COST {max} AT {max}")
        ),
        [0, 1_000_000, 1_000_000, -1, 0]
    );
    assert_eq!(
        ints(
            &mut con,
            format!("RL.SLIDELOG l 1000000 {max} COST 1000000 AT {max}")
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
        let info: Vec<Value> = query(&mut con, format!("COMMAND INFO {name}"));
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
        let keys: Vec<String> = query(&mut con, format!("COMMAND GETKEYS {name} user:42 1 2 3 4"));
        assert_eq!(keys, ["user:42"]);
        let docs: Value = query(&mut con, format!("COMMAND DOCS {name}"));
        let text = format!("{docs:?}");
        assert!(
            text.contains("summary") && text.contains("complexity") && text.contains("key"),
            "{name}: {text}"
        );
    }
    // ACL key patterns see the key.
    let mut con = login(&server, &mut con, "tenant", &["~tenantA:*", "+@all"]);
    assert_eq!(ints(&mut con, "RL.TOKENBUCKET tenantA:1 5 1 1000")[0], 1);
    assert!(error(&mut con, "RL.TOKENBUCKET tenantB:1 5 1 1000").starts_with("NOPERM"));
}
