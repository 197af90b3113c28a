//! RL.ALL (several limiters, all or nothing) and RL.INSPECT on a live server.

use crate::common::{
    call, dump, error, expire_time, expire_unreaped, info_field, int, ints, kept, login, query,
    timed, Line, Server,
};
use redis::{Connection, Value};

const T: i64 = 1_700_000_000_000;

/// Runs RL.ALL (or any command) and flattens its nested integer reply.
fn all(con: &mut Connection, line: impl Line) -> (i64, i64, Vec<Vec<i64>>) {
    flatten(query(con, line))
}

/// [`all`], with `keys` PERSISTed in the same MULTI/EXEC (see
/// [`kept`]): a write at a pinned time gives its keys a TTL on the real
/// clock, which a slow machine may let run out before the next call.
fn all_kept(con: &mut Connection, line: impl Line, keys: &[&str]) -> (i64, i64, Vec<Vec<i64>>) {
    flatten(redis::from_redis_value(&kept(con, line, keys)).unwrap())
}

fn flatten(reply: Vec<Value>) -> (i64, i64, Vec<Vec<i64>>) {
    let allowed: i64 = redis::from_redis_value(&reply[0]).unwrap();
    let retry: i64 = redis::from_redis_value(&reply[1]).unwrap();
    let items = reply[2..]
        .iter()
        .map(|v| redis::from_redis_value(v).unwrap())
        .collect();
    (allowed, retry, items)
}

fn inspect(con: &mut Connection, key: &str, at: i64) -> Option<Vec<(String, Value)>> {
    match query(con, format!("RL.INSPECT {key} AT {at}")) {
        Value::Nil => None,
        Value::Array(items) => Some(
            items
                .chunks(2)
                .map(|pair| (redis::from_redis_value(&pair[0]).unwrap(), pair[1].clone()))
                .collect(),
        ),
        other => panic!("unexpected {other:?}"),
    }
}

fn field(fields: &[(String, Value)], name: &str) -> Value {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn contract_example() {
    let server = Server::start();
    let mut con = server.connect();
    let line = format!("RL.ALL 2 a b TOKENBUCKET 2 1 1000 SLIDELOG 3 10000 AT {T}");
    // Kept: the bucket's TTL of 1 s on the real clock must not run out
    // between the calls.
    assert_eq!(
        all_kept(&mut con, &line, &["a", "b"]),
        (1, 0, vec![vec![1, 2, 1, 0, 1000], vec![1, 3, 2, 0, 10000]])
    );
    assert_eq!(
        all_kept(&mut con, &line, &["a", "b"]),
        (1, 0, vec![vec![1, 2, 0, 0, 2000], vec![1, 3, 1, 0, 10000]])
    );
    assert_eq!(
        all(&mut con, &line),
        (
            0,
            1000,
            vec![vec![0, 2, 0, 1000, 2000], vec![1, 3, 1, 0, 10000]]
        )
    );
    let log = inspect(&mut con, "b", T).expect("log exists");
    assert_eq!(field(&log, "used"), Value::Int(2));
    assert_eq!(field(&log, "entries"), Value::Int(2));
}

#[test]
fn single_key_commands_share_the_same_limiters() {
    let server = Server::start();
    let mut con = server.connect();
    // Kept: the keys' TTLs of a few seconds on the real clock must not run
    // out before the next call reads them.
    all_kept(
        &mut con,
        format!("RL.ALL 1 k TOKENBUCKET 10 1 1000 COST 4 AT {T}"),
        &["k"],
    );
    assert_eq!(
        ints(&mut con, format!("RL.TOKENBUCKET k 10 1 1000 AT {T}")),
        [1, 10, 5, 0, 5000]
    );
    kept(
        &mut con,
        format!("RL.SLIDELOG l 5 1000 COST 3 AT {T}"),
        &["l"],
    );
    let (allowed, _, items) = all(
        &mut con,
        format!("RL.ALL 1 l SLIDELOG 5 1000 COST 3 AT {T}"),
    );
    assert_eq!((allowed, items), (0, vec![vec![0, 5, 2, 1000, 1000]]));
}

#[test]
fn denied_calls_write_nothing_anywhere() {
    let server = Server::start();
    let mut con = server.connect();
    ints(
        &mut con,
        format!("RL.TOKENBUCKET b 10 1 1000 COST 10 AT {T}"),
    );
    ints(&mut con, format!("RL.SLIDELOG l 10 60000 AT {T}"));
    let before = (dump(&mut con, b"b"), dump(&mut con, b"l"));
    // The log allows, the bucket (second) denies: the log must not be charged.
    let (allowed, retry, items) = all(
        &mut con,
        format!(
            "RL.ALL 3 l b new SLIDELOG 10 60000 TOKENBUCKET 10 1 1000 TOKENBUCKET 5 1 1000 \
             COSTS 2 3 1 AT {T}"
        ),
    );
    assert_eq!(allowed, 0);
    assert_eq!(retry, 3000);
    assert_eq!(
        items,
        vec![
            vec![1, 10, 9, 0, 60000],
            vec![0, 10, 0, 3000, 10000],
            vec![1, 5, 5, 0, 0]
        ]
    );
    assert_eq!((dump(&mut con, b"b"), dump(&mut con, b"l")), before);
    let exists: i64 = query(&mut con, "EXISTS new");
    assert_eq!(exists, 0);
    // A peek over every limit writes nothing either.
    let (allowed, _, _) = all(
        &mut con,
        format!("RL.ALL 2 l fresh SLIDELOG 10 60000 TOKENBUCKET 5 1 1000 COST 0 AT {T}"),
    );
    assert_eq!(allowed, 1);
    assert_eq!(dump(&mut con, b"l"), before.1);
    let exists: i64 = query(&mut con, "EXISTS fresh");
    assert_eq!(exists, 0);
}

#[test]
fn overall_retry_after_is_the_longest_wait_or_never() {
    let server = Server::start();
    let mut con = server.connect();
    // Kept: fast's TTL of 1 s on the real clock must not run out before
    // the calls that read it.
    kept(
        &mut con,
        format!("RL.TOKENBUCKET slow 10 1 1000 COST 10 AT {T}"),
        &["slow"],
    );
    kept(
        &mut con,
        format!("RL.TOKENBUCKET fast 10 1 100 COST 10 AT {T}"),
        &["fast"],
    );
    let both = "RL.ALL 2 fast slow TOKENBUCKET 10 1 100 TOKENBUCKET 10 1 1000";
    let (_, retry, _) = all(&mut con, format!("{both} COST 2 AT {T}"));
    assert_eq!(retry, 2000);
    let later = T + 2000;
    let (allowed, _, _) = all(&mut con, format!("{both} COST 2 AT {later}"));
    assert_eq!(
        allowed, 1,
        "every limit allows after the overall retry_after"
    );
    let (_, retry, _) = all(&mut con, format!("{both} COSTS 2 11 AT {later}"));
    assert_eq!(retry, -1);
}

#[test]
fn writes_set_each_keys_ttl() {
    let server = Server::start();
    let mut con = server.connect();
    // Each key expires its reset_after_ms after the call's time, which lies
    // between the server's clock read before and after it.
    let (_, during) = timed(&mut con, |con| {
        all(
            con,
            "RL.ALL 2 b l TOKENBUCKET 10 1 60000 SLIDELOG 5 30000 COSTS 2 1",
        )
    });
    for (key, ttl) in [("b", 120_000), ("l", 30_000)] {
        let written_at = expire_time(&mut con, key.as_bytes()) - ttl;
        assert!(
            during.contains(&written_at),
            "{key}: {written_at} {during:?}"
        );
    }
}

/// The keys are looked up in order, and none after one of the wrong type:
/// an expired key still stored behind it is not reaped.
#[test]
fn no_key_after_a_wrong_type_is_looked_up() {
    let server = Server::start();
    let mut con = server.connect();
    call(&mut con, "SET s text").unwrap();
    // An hour's TTL, so that only expire_unreaped expires it.
    ints(&mut con, "RL.TOKENBUCKET b 10 1 3600000");
    let expired_before = expire_unreaped(&mut con, &["b"]);
    assert_eq!(
        error(
            &mut con,
            "RL.ALL 2 s b TOKENBUCKET 10 1 1000 TOKENBUCKET 10 1 1000"
        ),
        "WRONGTYPE Operation against a key holding the wrong kind of value (key 1)"
    );
    assert_eq!(
        info_field(&mut con, "stats", "expired_keys"),
        expired_before
    );
    assert_eq!(call(&mut con, "DBSIZE").unwrap(), Value::Int(2));
}

#[test]
fn two_keys_of_any_kinds_decide_as_in_a_longer_call() {
    // A call over two keys runs a handler compiled for its two kinds;
    // over three it runs the general one. Both must decide alike.
    let specs = [
        "TOKENBUCKET 2 1 60000",
        "SLIDELOG 2 60000",
        "RESERVE 2 1 60000 5000",
        "ACQUIRE 2 5000",
        "WINDOW 2 60000",
        "QUOTA 2 day",
    ];
    let server = Server::start();
    let mut con = server.connect();
    for (i, first) in specs.iter().enumerate() {
        for (j, second) in specs.iter().enumerate() {
            let (pa, pb) = (format!("p{i}{j}a"), format!("p{i}{j}b"));
            let (qa, qb, qc) = (
                format!("q{i}{j}a"),
                format!("q{i}{j}b"),
                format!("q{i}{j}c"),
            );
            for n in 0..4 {
                let at = T + n * 1000;
                let pair = all_kept(
                    &mut con,
                    format!("RL.ALL 2 {pa} {pb} {first} {second} AT {at}").as_str(),
                    &[&pa, &pb],
                );
                let (allowed, retry, mut items) = all_kept(
                    &mut con,
                    format!("RL.ALL 3 {qa} {qb} {qc} {first} {second} TOKENBUCKET 100 1 1 AT {at}")
                        .as_str(),
                    &[&qa, &qb, &qc],
                );
                items.truncate(2);
                assert_eq!(
                    pair,
                    (allowed, retry, items),
                    "{first} / {second}, call {n}"
                );
                assert_eq!(pair.0, i64::from(n < 2), "{first} / {second}, call {n}");
            }
        }
    }
}

#[test]
fn bad_input_is_named_and_changes_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    // An hour's TTL: the bucket outlives every call below.
    ints(&mut con, "RL.TOKENBUCKET b 10 1 3600000");
    query::<()>(&mut con, "SET s v");
    let before = dump(&mut con, b"b");
    let max = i64::MAX;
    let cases: Vec<(&str, String)> = vec![
        (
            "RL.ALL 0 b TOKENBUCKET 10 1 1000",
            "ERR numkeys must be an integer from 1 to 16".into(),
        ),
        (
            "RL.ALL 17 b TOKENBUCKET 10 1 1000",
            "ERR numkeys must be an integer from 1 to 16".into(),
        ),
        (
            "RL.ALL x b TOKENBUCKET 10 1 1000",
            "ERR numkeys must be an integer from 1 to 16".into(),
        ),
        (
            "RL.ALL 9 b TOKENBUCKET 10",
            "ERR numkeys is more than the keys given".into(),
        ),
        (
            "RL.ALL 2 b b TOKENBUCKET 10 1 1000 SLIDELOG 1 1",
            "ERR key 2 is the same as key 1".into(),
        ),
        (
            "RL.ALL 1 b LEAKY 10 1 1000",
            "ERR spec 1: unknown limiter 'LEAKY', expected TOKENBUCKET, SLIDELOG, RESERVE, ACQUIRE, WINDOW or QUOTA".into(),
        ),
        (
            "RL.ALL 2 b c TOKENBUCKET 10 1 1000 SLIDELOG 5",
            "ERR spec 2: missing parameters, expected SLIDELOG limit window_ms".into(),
        ),
        (
            "RL.ALL 2 b c TOKENBUCKET 10 1 1000 SLIDELOG 5 0",
            format!("ERR spec 2: window_ms must be an integer from 1 to {max}"),
        ),
        (
            "RL.ALL 1 b TOKENBUCKET 0 1 1000",
            format!("ERR spec 1: capacity must be an integer from 1 to {max}"),
        ),
        (
            "RL.ALL 2 b c TOKENBUCKET 10 1 1000",
            "ERR spec 2: missing (one spec is needed per key)".into(),
        ),
        (
            "RL.ALL 2 b c LEAKY 10 1 1000 SLIDELOG 5 5",
            "ERR spec 1: unknown limiter 'LEAKY', expected TOKENBUCKET, SLIDELOG, RESERVE, ACQUIRE, WINDOW or QUOTA".into(),
        ),
        (
            "RL.ALL 2 b c TOKENBUCKET 10 1 1000 leaky 5 5",
            "ERR spec 2: unknown limiter 'leaky', expected TOKENBUCKET, SLIDELOG, RESERVE, ACQUIRE, WINDOW or QUOTA".into(),
        ),
        (
            "RL.ALL 2 b c TOKENBUCKET 0 1 1000 SLIDELOG 5 0",
            format!("ERR spec 1: capacity must be an integer from 1 to {max}"),
        ),
        (
            "RL.ALL 3 b c d TOKENBUCKET 10 1 1000 SLIDELOG 5 5 QUOTA 5",
            "ERR spec 3: missing parameters, expected QUOTA limit period".into(),
        ),
        (
            "RL.ALL 3 b c d TOKENBUCKET 10 1 1000 SLIDELOG 5 5",
            "ERR spec 3: missing (one spec is needed per key)".into(),
        ),
        (
            "RL.ALL 2 b c WINDOW 5 1000 PRECISION 10 QUOTA 5 day TZ Nowhere/City",
            "ERR spec 2: TZ zone: unknown time zone 'Nowhere/City': use UTC, an IANA name such as Europe/Berlin, or an offset +hh:mm/-hh:mm up to 18:00".into(),
        ),
        (
            "RL.ALL 1 b TOKENBUCKET 10 1 1000 COST 1 COSTS 1",
            "ERR COST and COSTS cannot be combined".into(),
        ),
        (
            "RL.ALL 2 b c TOKENBUCKET 10 1 1000 SLIDELOG 5 5 COSTS 1",
            "ERR option COSTS needs 2 values".into(),
        ),
        (
            "RL.ALL 1 b TOKENBUCKET 10 1 1000 EXTRA",
            "ERR unknown option 'EXTRA'".into(),
        ),
        (
            "RL.ALL 2 b s TOKENBUCKET 10 1 1000 SLIDELOG 5 5",
            "WRONGTYPE Operation against a key holding the wrong kind of value (key 2)".into(),
        ),
        (
            "RL.ALL 1 b SLIDELOG 5 5",
            "WRONGTYPE Operation against a key holding the wrong kind of value (key 1)".into(),
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(error(&mut con, line), expected, "{line}");
    }
    assert_eq!(dump(&mut con, b"b"), before);
    let exists: i64 = query(&mut con, "EXISTS c");
    assert_eq!(exists, 0);
}

#[test]
fn every_key_is_visible_to_getkeys_and_acl() {
    let server = Server::start();
    let mut con = server.connect();
    let keys: Vec<String> = query(
        &mut con,
        "COMMAND GETKEYS RL.ALL 3 x y z SLIDELOG 1 1 SLIDELOG 1 1 SLIDELOG 1 1",
    );
    assert_eq!(keys, ["x", "y", "z"]);
    let mut tenant = login(&server, &mut con, "tenant", &["~tenantA:*", "+@all"]);
    let denied = error(
        &mut tenant,
        "RL.ALL 2 tenantA:1 tenantB:1 SLIDELOG 5 1000 SLIDELOG 5 1000",
    );
    assert!(denied.starts_with("NOPERM"), "{denied}");
    let created: i64 = query(&mut con, "EXISTS tenantA:1 tenantB:1");
    assert_eq!(created, 0);
    let (allowed, _, _) = all(
        &mut tenant,
        "RL.ALL 2 tenantA:1 tenantA:2 SLIDELOG 5 1000 SLIDELOG 5 1000",
    );
    assert_eq!(allowed, 1);
}

#[test]
fn inspect_shows_each_limiter_and_agrees_with_peeks() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(inspect(&mut con, "missing", T), None);
    // Kept: the keys' TTLs of a second or two on the real clock must not
    // run out before the calls below read them.
    kept(
        &mut con,
        format!("RL.TOKENBUCKET b 10 3 1000 COST 8 AT {T}"),
        &["b"],
    );
    for entry_time in [T, T, T + 400] {
        kept(
            &mut con,
            format!("RL.SLIDELOG l 10 1000 COST 2 AT {entry_time}"),
            &["l"],
        );
    }
    let bucket = inspect(&mut con, "b", T + 500).unwrap();
    let names: Vec<&str> = bucket.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "type",
            "capacity",
            "refill_amount",
            "refill_period_ms",
            "tokens",
            "reset_after_ms"
        ]
    );
    assert_eq!(
        field(&bucket, "type"),
        Value::BulkString(b"tokenbucket".to_vec())
    );
    let peek = ints(
        &mut con,
        format!("RL.TOKENBUCKET b 10 3 1000 COST 0 AT {}", T + 500),
    );
    assert_eq!(field(&bucket, "tokens"), Value::Int(peek[2]));
    assert_eq!(field(&bucket, "reset_after_ms"), Value::Int(peek[4]));
    assert_eq!(field(&bucket, "capacity"), Value::Int(10));

    let log = inspect(&mut con, "l", T + 500).unwrap();
    let names: Vec<&str> = log.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "type",
            "limit",
            "window_ms",
            "used",
            "entries",
            "oldest_ms",
            "newest_ms",
            "reset_after_ms"
        ]
    );
    assert_eq!(field(&log, "used"), Value::Int(6));
    assert_eq!(field(&log, "entries"), Value::Int(3));
    assert_eq!(field(&log, "oldest_ms"), Value::Int(T));
    assert_eq!(field(&log, "newest_ms"), Value::Int(T + 400));
    let peek = ints(
        &mut con,
        format!("RL.SLIDELOG l 10 1000 COST 0 AT {}", T + 500),
    );
    assert_eq!(field(&log, "reset_after_ms"), Value::Int(peek[4]));
    let later = inspect(&mut con, "l", T + 1200).unwrap();
    assert_eq!(field(&later, "used"), Value::Int(2));
    let gone = inspect(&mut con, "l", T + 5000).unwrap();
    assert_eq!(
        (field(&gone, "oldest_ms"), field(&gone, "newest_ms")),
        (Value::Nil, Value::Nil)
    );

    query::<()>(&mut con, "SET s v");
    assert!(error(&mut con, "RL.INSPECT s").starts_with("WRONGTYPE"));
    assert_eq!(
        error(&mut con, "RL.INSPECT b COST 1"),
        "ERR unknown option 'COST'"
    );
}

#[test]
fn inspect_is_a_map_under_resp3_and_never_touches_the_ttl() {
    let server = Server::start();
    let mut con = server.connect();
    ints(&mut con, "RL.TOKENBUCKET b 10 1 3600000");
    query::<()>(&mut con, "PEXPIRE b 500000");
    let client = redis::Client::open(format!("{}?protocol=resp3", server.url())).unwrap();
    let mut resp3 = client.get_connection().unwrap();
    let reply: Value = query(&mut resp3, "RL.INSPECT b");
    assert!(
        matches!(reply, Value::Map(ref pairs) if pairs.len() == 6),
        "{reply:?}"
    );
    let ttl = int(&mut con, "PTTL b");
    assert!(ttl > 499_000, "{ttl}");
}

#[test]
fn inspect_works_for_a_read_only_user() {
    let server = Server::start();
    let mut con = server.connect();
    // An hour's TTL: the bucket is there when the viewer looks.
    ints(&mut con, "RL.TOKENBUCKET b 10 1 3600000");
    // On Redis 7.0 module commands have no ACL category: grant RL.INSPECT by name.
    let mut viewer = login(
        &server,
        &mut con,
        "viewer",
        &["~*", "+@read", "+rl.inspect"],
    );
    let reply: Value = query(&mut viewer, "RL.INSPECT b");
    assert!(matches!(reply, Value::Array(_)), "{reply:?}");
    assert!(error(&mut viewer, "RL.TOKENBUCKET b 10 1 1000").starts_with("NOPERM"));
}
