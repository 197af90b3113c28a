//! INFO rl, module settings and COMMAND DOCS, read from a live server.

use std::collections::HashMap;

use crate::common::{call, command, error, ints, module_path, query, Server};
use redis::{Connection, Value};

/// The `field:value` lines of `INFO section`.
fn info(con: &mut Connection, section: &str) -> HashMap<String, String> {
    let text: String = query(con, format!("INFO {section}"));
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(field, value)| (field.to_owned(), value.to_owned()))
        .collect()
}

fn command_stats(con: &mut Connection, command: &str) -> [i64; 4] {
    let fields = info(con, "rl");
    let line = &fields[&format!("rl_{command}")];
    let counts: HashMap<&str, i64> = line
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name, value.parse().unwrap()))
        .collect();
    ["calls", "allowed", "denied", "errors"].map(|name| counts[name])
}

fn live_keys(con: &mut Connection) -> [i64; 3] {
    let fields = info(con, "rl");
    ["tokenbucket", "slidelog", "leases"]
        .map(|kind| fields[&format!("rl_keys_{kind}")].parse().unwrap())
}

/// Asserts the live key counts once they reach `expected`, or after 10 s:
/// a server may free a reloaded or flushed keyspace in a background thread
/// (Valkey does, under load), whose frees are counted a moment after the
/// command has returned.
fn assert_live_keys_settle(con: &mut Connection, expected: [i64; 3]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut counts = live_keys(con);
    while counts != expected && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
        counts = live_keys(con);
    }
    assert_eq!(counts, expected);
}

fn config_get(con: &mut Connection, name: &str) -> String {
    let pair: Vec<String> = query(con, format!("CONFIG GET {name}"));
    pair.get(1).cloned().unwrap_or_default()
}

#[test]
fn info_counts_calls_verdicts_errors_and_live_keys() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(command_stats(&mut con, "tokenbucket"), [0, 0, 0, 0]);
    for _ in 0..3 {
        ints(&mut con, "RL.TOKENBUCKET b 2 0 1000");
    }
    error(&mut con, "RL.TOKENBUCKET b x 0 1000");
    call(&mut con, "HSET h f v").unwrap();
    error(&mut con, "RL.TOKENBUCKET h 1 1 1000");
    // Two allowed, one denied, two errors (an argument, a WRONGTYPE).
    assert_eq!(command_stats(&mut con, "tokenbucket"), [5, 2, 1, 2]);
    ints(&mut con, "RL.SLIDELOG l1 5 60000");
    ints(&mut con, "RL.SLIDELOG l2 5 60000");
    ints(&mut con, "RL.ACQUIRE s 2 60000");
    call(
        &mut con,
        "RL.ALL 2 a l3 TOKENBUCKET 1 1 3600000 SLIDELOG 1 3600000",
    )
    .unwrap();
    call(&mut con, "CL.THROTTLE c 1 1 60").unwrap();
    assert_eq!(command_stats(&mut con, "all"), [1, 1, 0, 0]);
    assert_eq!(command_stats(&mut con, "cl.throttle"), [1, 1, 0, 0]);
    assert_eq!(live_keys(&mut con), [2, 3, 1]);
    call(&mut con, "DEL l1 b").unwrap();
    call(&mut con, "COPY s s2").unwrap();
    assert_eq!(live_keys(&mut con), [1, 2, 2]);
    // A reload frees and loads every value: the counts stay true.
    call(&mut con, "DEBUG RELOAD").unwrap();
    assert_live_keys_settle(&mut con, [1, 2, 2]);
    // Expiry frees too. The count is read in the same transaction as the
    // write, before the key's 300 ms can run out.
    let (_, counts): (Vec<i64>, String) = redis::pipe()
        .atomic()
        .add_command(command("RL.TOKENBUCKET short 1 1 300"))
        .add_command(command("INFO rl"))
        .query(&mut con)
        .unwrap();
    assert!(
        counts.lines().any(|line| line == "rl_keys_tokenbucket:2"),
        "{counts}"
    );
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(call(&mut con, "EXISTS short").unwrap(), Value::Int(0));
    assert_eq!(live_keys(&mut con)[0], 1);
    call(&mut con, "FLUSHALL SYNC").unwrap();
    assert_eq!(live_keys(&mut con), [0, 0, 0]);

    // The sections are part of INFO modules and INFO everything, not of
    // plain INFO; errors are grouped in errorstats by their prefix.
    for section in ["modules", "everything"] {
        assert!(
            info(&mut con, section).contains_key("rl_tokenbucket"),
            "{section}"
        );
    }
    assert!(!info(&mut con, "default").contains_key("rl_tokenbucket"));
    let errors = info(&mut con, "errorstats");
    assert!(errors.contains_key("errorstat_ERR"), "{errors:?}");
    assert!(errors.contains_key("errorstat_WRONGTYPE"), "{errors:?}");
}

#[test]
fn the_largest_log_limit_is_a_setting() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(config_get(&mut con, "rl.max-log-limit"), "1000000");
    assert!(error(&mut con, "RL.SLIDELOG l 1000001 1000").contains("from 1 to 1000000"));
    call(&mut con, "CONFIG SET rl.max-log-limit 2000000").unwrap();
    assert_eq!(ints(&mut con, "RL.SLIDELOG l 1000001 1000")[0], 1);
    call(&mut con, "CONFIG SET rl.max-log-limit 10").unwrap();
    let message = error(&mut con, "RL.ALL 1 l SLIDELOG 11 1000");
    assert!(
        message.contains("limit must be an integer from 1 to 10"),
        "{message}"
    );
    for bad in ["0", "-1", "1000000001", "ten"] {
        let message = error(&mut con, format!("CONFIG SET rl.max-log-limit {bad}"));
        assert!(message.contains("rl.max-log-limit"), "{bad}: {message}");
    }
    assert_eq!(config_get(&mut con, "rl.max-log-limit"), "10");
}

#[test]
fn settings_come_from_redis_conf_and_module_arguments() {
    let server = Server::start_with(&["--rl.max-log-limit", "66"]);
    assert_eq!(config_get(&mut server.connect(), "rl.max-log-limit"), "66");
    let path = module_path().display().to_string();
    let with_argument = ["--loadmodule", &path, "RL.max-log-limit", "55"];
    let server = Server::start_bare(&with_argument);
    assert_eq!(config_get(&mut server.connect(), "rl.max-log-limit"), "55");
    // A config line wins over a module argument, so that CONFIG SET and
    // CONFIG REWRITE survive a restart.
    let server = Server::start_bare(&[&with_argument[..], &["--rl.max-log-limit", "44"]].concat());
    assert_eq!(config_get(&mut server.connect(), "rl.max-log-limit"), "44");

    let server = Server::start_without_module();
    let mut con = server.connect();
    // The path keeps its words: it may hold spaces.
    for bad in [
        &["max-log-limit", "0"][..],
        &["max-log-limit"],
        &["no-such-setting", "1"],
    ] {
        let load = [&["MODULE", "LOAD", &path][..], bad].concat();
        assert!(call(&mut con, load).is_err(), "{bad:?}");
    }
    assert!(server
        .log()
        .contains("max-log-limit must be an integer from 1 to 1000000000, got '0'"));
    assert!(server
        .log()
        .contains("unknown module argument 'no-such-setting'"));
    call(
        &mut con,
        ["MODULE", "LOAD", &path, "rl.max-log-limit", "77"],
    )
    .unwrap();
    assert_eq!(config_get(&mut con, "rl.max-log-limit"), "77");
    assert!(error(&mut con, "RL.SLIDELOG l 78 1000").contains("from 1 to 77"));
}

#[test]
fn command_docs_describe_every_command() {
    let server = Server::start();
    let mut con = server.connect();
    let names: Vec<String> = query(&mut con, "COMMAND LIST FILTERBY MODULE rl");
    assert_eq!(names.len(), 17, "{names:?}");
    for name in &names {
        let docs: HashMap<String, Value> = query(&mut con, format!("COMMAND DOCS {name}"));
        let Some(Value::Map(fields)) = docs.get(name) else {
            // RESP2 clients get a flat array.
            let Some(Value::Array(flat)) = docs.get(name) else {
                panic!("{name}: {docs:?}");
            };
            let keys: Vec<String> = flat
                .iter()
                .step_by(2)
                .map(|v| redis::from_redis_value(v).unwrap())
                .collect();
            for wanted in [
                "summary",
                "since",
                "group",
                "complexity",
                "module",
                "arguments",
            ] {
                assert!(
                    keys.iter().any(|k| k == wanted),
                    "{name} lacks {wanted}: {keys:?}"
                );
            }
            continue;
        };
        assert!(!fields.is_empty(), "{name}");
    }
}
