//! What the WAIT tests read from a server: the clients waiting, the waits
//! counted, a blocked client, a limiter's fields.

use std::thread::sleep;
use std::time::{Duration, Instant};

use redis::{Connection, Value};

use super::{info_field, query};

/// `INFO rl`'s `rl_waiting` count of `what` (buckets, leases, all).
pub fn waiting_on(con: &mut Connection, what: &str) -> i64 {
    let line = info_field(con, "rl", "rl_waiting");
    line.split(',')
        .find_map(|field| field.strip_prefix(&format!("{what}=")))
        .unwrap_or_else(|| panic!("rl_waiting: {line}"))
        .parse()
        .unwrap()
}

/// Waits until `count` clients wait on `what` (buckets, leases, all).
pub fn until_waiting_on(con: &mut Connection, what: &str, count: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = waiting_on(con, what);
    while seen != count {
        assert!(
            Instant::now() < deadline,
            "never {count} waiting on {what} ({seen})"
        );
        sleep(Duration::from_millis(2));
        seen = waiting_on(con, what);
    }
}

/// `INFO rl`'s `rl_waits` fields, as `total=..,granted=..,...`.
pub fn waits(con: &mut Connection) -> String {
    info_field(con, "rl", "rl_waits")
}

/// [`waits`] without `waited_ms`: the counts alone.
pub fn counted_waits(con: &mut Connection) -> String {
    let line = waits(con);
    line.split(",waited_ms").next().unwrap().to_owned()
}

/// The id of the one blocked client.
pub fn blocked_client(con: &mut Connection) -> String {
    let clients: String = query(con, "CLIENT LIST");
    clients
        .lines()
        .find(|line| line.contains(" flags=b "))
        .and_then(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .expect("the waiting client")
        .to_owned()
}

/// An integer field of `RL.INSPECT key`: None when the key is missing or
/// the field nil.
pub fn inspect_field(con: &mut Connection, key: &str, name: &str) -> Option<i64> {
    let view: Value = query(con, format!("RL.INSPECT {key}"));
    let Value::Array(view) = view else {
        return None;
    };
    let at = view
        .iter()
        .position(|v| matches!(v, Value::BulkString(b) if b == name.as_bytes()))
        .unwrap_or_else(|| panic!("no {name} in RL.INSPECT {key}: {view:?}"));
    match &view[at + 1] {
        Value::Int(value) => Some(*value),
        Value::Nil => None,
        other => panic!("{name}: {other:?}"),
    }
}

/// `RL.INSPECT key`'s `tokens`, which must be there.
pub fn tokens(con: &mut Connection, key: &str) -> i64 {
    inspect_field(con, key, "tokens").unwrap_or_else(|| panic!("no bucket at {key}"))
}
