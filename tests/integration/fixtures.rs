//! Data written by an earlier release still loads: an RDB file, an AOF
//! rewritten without an RDB preamble (`RL.RESTORESTATE` payloads) and DUMP
//! payloads, all of encoding version 1, written by commit e0f5fc2 and kept
//! in `tests/fixtures/encoding-v1/`. Each is loaded into a server of its own
//! and every limiter answers `RL.INSPECT` and a follow-up write exactly as
//! the release that wrote it answered (`expected.txt`, recorded by that
//! release right after saving).
//!
//! To write the fixtures again (only ever with the build that defines the
//! encoding they hold):
//! `RL_WRITE_FIXTURES=1 RL_MODULE=<that build's .so> cargo test --release
//! --test integration fixtures::`

use std::path::{Path, PathBuf};

use redis::{Connection, Value};

use crate::common::{query, wait_for_rewrite, Server};

/// The pinned time the limiters were written at; the writes among the
/// probes run 10 s later.
const T: i64 = 1_700_000_000_000;
const PROBE_AT: i64 = T + 10_000;

/// An AOF of commands alone (the rewrite emits `RL.RESTORESTATE`).
const AOF_WITHOUT_PREAMBLE: [&str; 6] = [
    "--appendonly",
    "yes",
    "--appendfilename",
    "appendonly.aof",
    "--aof-use-rdb-preamble",
    "no",
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/encoding-v1")
}

/// Every limiter kind and form of state: buckets (with a fraction of a
/// token, a level beyond i64, a quota, open reservations, a debt with none
/// open), a log, leases, sliding and fixed windows.
/// Returns the keys, and probes on ids the calls returned.
fn build(con: &mut Connection) -> (Vec<String>, Vec<String>) {
    let mut lines: Vec<String> = vec![
        format!("RL.TOKENBUCKET fx:bucket 10 1 1000 COST 3 AT {T}"),
        format!("RL.TOKENBUCKET fx:bucket 10 1 1000 COST 4 AT {}", T + 1234),
        format!("RL.COST fx:cost 100000 1000 60000 1234 AT {T}"),
        format!("RL.COST fx:cost 100000 1000 60000 10 AT {}", T + 777),
        format!("RL.TOKENBUCKET fx:big 1000000000 1 3600000 AT {T}"),
        format!("RL.TOKENBUCKET fx:wide {0} 1 {0} AT {T}", i64::MAX),
        format!("RL.TOKENBUCKET fx:quota 5 0 1000 COST 2 AT {T}"),
        format!("RL.WINDOW fx:fixed 1000 3600000 FIXED COST 7 AT {T}"),
        format!("RL.WINDOW fx:fixed 1000 3600000 FIXED AT {}", T + 100),
        format!("RL.WINDOW fx:precise 50 60000 PRECISION 1000 COST 3 AT {T}"),
    ];
    for i in 0..10 {
        lines.push(format!(
            "RL.SLIDELOG fx:log 100 3600000 COST {} AT {}",
            i % 4,
            T + i * 37
        ));
        lines.push(format!(
            "RL.WINDOW fx:window 1000 3600000 COST {} AT {}",
            i + 1,
            T + i * 61_000
        ));
    }
    for line in &lines {
        query::<Value>(con, line.as_str());
    }
    let id = |con: &mut Connection, line: String| query::<Vec<i64>>(con, line)[5];
    let first = id(
        con,
        format!("RL.RESERVE fx:reserved 1000 10 1000 50 3600000 AT {T}"),
    );
    let open = id(
        con,
        format!(
            "RL.RESERVE fx:reserved 1000 10 1000 70 3600000 AT {}",
            T + 10
        ),
    );
    query::<Value>(
        con,
        format!("RL.SETTLE fx:reserved {first} 20 AT {}", T + 20),
    );
    let debt = id(
        con,
        format!("RL.RESERVE fx:debt 10 1 1000 5 3600000 AT {T}"),
    );
    query::<Value>(con, format!("RL.SETTLE fx:debt {debt} 40 AT {}", T + 1));
    let lease = id(con, format!("RL.ACQUIRE fx:leases 5 3600000 AT {T}"));
    id(con, format!("RL.ACQUIRE fx:leases 5 3600000 AT {}", T + 1));
    let keys: Vec<String> = [
        "bucket", "cost", "big", "wide", "quota", "reserved", "debt", "log", "leases", "window",
        "fixed", "precise",
    ]
    .iter()
    .map(|name| format!("fx:{name}"))
    .collect();
    // TTLs run on the real clock: the fixtures must outlive it.
    for key in &keys {
        query::<i64>(con, format!("PERSIST {key}"));
        assert_eq!(query::<i64>(con, format!("PTTL {key}")), -1, "{key}");
    }
    let on_ids = vec![
        format!("RL.SETTLE fx:reserved {open} 30 AT {PROBE_AT}"),
        format!("RL.SETTLE fx:reserved {first} 30 AT {PROBE_AT}"),
        format!("RL.RELEASE fx:leases {lease} AT {PROBE_AT}"),
    ];
    (keys, on_ids)
}

/// What is asked of each key after loading: its whole state, then a write
/// that depends on what RL.INSPECT does not show (reservation and lease ids).
fn probes(keys: &[String], on_ids: Vec<String>) -> Vec<String> {
    // Soon after the writes (not refilled yet), and later.
    let mut probes: Vec<String> = [T + 1300, PROBE_AT]
        .iter()
        .flat_map(|at| {
            keys.iter()
                .map(move |key| format!("RL.INSPECT {key} AT {at}"))
        })
        .collect();
    probes.extend(on_ids);
    probes.extend([
        format!("RL.TOKENBUCKET fx:bucket 10 1 1000 AT {PROBE_AT}"),
        format!("RL.COST fx:cost 100000 1000 60000 5 AT {PROBE_AT}"),
        format!("RL.TOKENBUCKET fx:big 1000000000 1 3600000 AT {PROBE_AT}"),
        format!(
            "RL.TOKENBUCKET fx:wide {0} 1 {0} COST 2 AT {PROBE_AT}",
            i64::MAX
        ),
        format!("RL.TOKENBUCKET fx:quota 5 0 1000 AT {PROBE_AT}"),
        format!("RL.RESERVE fx:reserved 1000 10 1000 1 3600000 AT {PROBE_AT}"),
        format!("RL.RESERVE fx:debt 10 1 1000 1 3600000 AT {PROBE_AT}"),
        format!("RL.SLIDELOG fx:log 100 3600000 AT {PROBE_AT}"),
        format!("RL.ACQUIRE fx:leases 5 3600000 AT {PROBE_AT}"),
        format!("RL.WINDOW fx:window 1000 3600000 AT {PROBE_AT}"),
        format!("RL.WINDOW fx:fixed 1000 3600000 FIXED AT {PROBE_AT}"),
        format!("RL.WINDOW fx:precise 50 60000 PRECISION 1000 AT {PROBE_AT}"),
    ]);
    probes
}

/// A reply as one line of text.
fn render(value: &Value) -> String {
    match value {
        Value::Int(n) => n.to_string(),
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(text) => text.clone(),
        Value::Okay => "OK".to_owned(),
        Value::Nil => "nil".to_owned(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(render).collect();
            format!("[{}]", items.join(" "))
        }
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The probes and their replies, as written to `expected.txt`.
fn expected() -> Vec<(String, String)> {
    std::fs::read_to_string(dir().join("expected.txt"))
        .expect("tests/fixtures/encoding-v1/expected.txt")
        .lines()
        .filter_map(|line| line.split_once(" => "))
        .map(|(probe, reply)| (probe.to_owned(), reply.to_owned()))
        .collect()
}

fn check(con: &mut Connection, source: &str) {
    let expected = expected();
    assert!(expected.len() > 20, "expected.txt lists the probes");
    for (probe, reply) in expected {
        let got: Value = query(con, probe.as_str());
        assert_eq!(render(&got), reply, "{source}: {probe}");
    }
}

fn copy_into(server: &Server, fixture: &str, name: &str) {
    std::fs::copy(dir().join(fixture), server.dir.join(name)).expect("copy a fixture");
}

#[test]
fn an_rdb_of_encoding_1_loads_unchanged() {
    let mut server = Server::start();
    server.kill();
    copy_into(&server, "dump.rdb", "dump.rdb");
    server.restart();
    check(&mut server.connect(), "RDB");
}

#[test]
fn an_aof_of_restorestate_payloads_of_encoding_1_loads_unchanged() {
    let mut server = Server::start();
    server.kill();
    // A single AOF file is what Redis before 7.0 wrote; 7.0 takes it as
    // the base of its multi-part AOF.
    copy_into(&server, "appendonly.aof", "appendonly.aof");
    server.restart_with(&AOF_WITHOUT_PREAMBLE);
    check(&mut server.connect(), "AOF");
}

#[test]
fn dump_payloads_of_encoding_1_restore_unchanged() {
    let server = Server::start();
    let con = &mut server.connect();
    let dumps = std::fs::read_to_string(dir().join("dumps.txt")).expect("dumps.txt");
    for line in dumps.lines() {
        let (key, payload) = line.split_once(' ').expect("key and payload");
        let restored: Value = query(
            con,
            [&b"RESTORE"[..], key.as_bytes(), b"0", &unhex(payload)],
        );
        assert_eq!(restored, Value::Okay, "{key}");
    }
    check(con, "DUMP");
}

/// Writes the fixtures with the module `RL_MODULE` names (see the top of
/// this file); does nothing unless `RL_WRITE_FIXTURES=1`.
#[test]
fn write_fixtures() {
    if std::env::var("RL_WRITE_FIXTURES").as_deref() != Ok("1") {
        return;
    }
    let server = Server::start_with(&AOF_WITHOUT_PREAMBLE);
    let con = &mut server.connect();
    let (keys, on_ids) = build(con);
    std::fs::create_dir_all(dir()).expect("the fixtures' directory");
    query::<Value>(con, "BGREWRITEAOF");
    wait_for_rewrite(con);
    let base = std::fs::read_dir(server.dir.join("appendonlydir"))
        .expect("appendonlydir")
        .map(|entry| entry.expect("entry").path())
        .find(|path| path.to_string_lossy().ends_with(".base.aof"))
        .expect("the rewritten base file");
    std::fs::copy(base, dir().join("appendonly.aof")).expect("appendonly.aof");
    query::<Value>(con, "SAVE");
    std::fs::copy(server.dir.join("dump.rdb"), dir().join("dump.rdb")).expect("dump.rdb");
    let mut dumps = String::new();
    for key in &keys {
        let payload: Vec<u8> = query(con, format!("DUMP {key}"));
        dumps.push_str(&format!("{key} {}\n", hex(&payload)));
    }
    std::fs::write(dir().join("dumps.txt"), dumps).expect("dumps.txt");
    let mut expected = String::new();
    for probe in probes(&keys, on_ids) {
        let reply: Value = query(con, probe.as_str());
        expected.push_str(&format!("{probe} => {}\n", render(&reply)));
    }
    std::fs::write(dir().join("expected.txt"), expected).expect("expected.txt");
}
