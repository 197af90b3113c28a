//! `rl.client-time`: which clients may pin a call's time with AT.

use crate::common::{
    call, command, dump, error, ints, query, start_pair, wait_for_replica, wait_for_rewrite,
    Server, AOF_WITHOUT_PREAMBLE,
};

const T: i64 = 1_700_000_000_000;

/// Every command that takes AT, pinned at T, on keys of their own kind;
/// hour-long periods, so that no key expires on the real clock before the
/// tests compare it.
fn pinned_calls() -> Vec<String> {
    [
        "RL.TOKENBUCKET b 10 1 3600000",
        "RL.COST b 10 1 3600000 1",
        "RL.SLIDELOG l 10 3600000",
        "RL.WINDOW w 10 3600000",
        "RL.ALL 2 a1 a2 TOKENBUCKET 10 1 3600000 WINDOW 10 3600000",
        "RL.RESERVE r 10 1 3600000 2 60000",
        "RL.SETTLE r 1 1",
        "RL.CANCEL r 1",
        "RL.ACQUIRE q 3 60000",
        "RL.RELEASE q 1",
        "RL.EXTEND q 1 60000",
        "RL.INSPECT b",
    ]
    .iter()
    .map(|line| format!("{line} AT {T}"))
    .collect()
}

fn set(con: &mut redis::Connection, value: &str) {
    query::<()>(con, format!("CONFIG SET rl.client-time {value}"));
}

fn setting(con: &mut redis::Connection) -> String {
    let reply: Vec<String> = query(con, "CONFIG GET rl.client-time");
    reply[1].clone()
}

#[test]
fn the_default_is_local_and_loopback_clients_may_pin_time() {
    let dir = std::env::temp_dir().join(format!("rl-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("redis.sock");
    let socket_path = socket.display().to_string();
    let server = Server::start_with(&["--unixsocket", &socket_path, "--unixsocketperm", "700"]);
    let mut con = server.connect();
    assert_eq!(setting(&mut con), "local");
    for line in pinned_calls() {
        assert!(call(&mut con, &line).is_ok(), "{line}");
    }
    let unix = redis::Client::open(format!("unix://{socket_path}")).unwrap();
    let mut unix = unix.get_connection().unwrap();
    assert_eq!(
        ints(&mut unix, format!("RL.TOKENBUCKET u 10 1 1000 AT {T}")),
        [1, 10, 9, 0, 1000]
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A non-loopback IPv4 address of this machine, if it has one.
fn outside_address() -> Option<String> {
    let output = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()?;
    String::from_utf8(output.stdout)
        .ok()?
        .split_whitespace()
        .filter_map(|word| word.parse::<std::net::Ipv4Addr>().ok())
        .find(|ip| !ip.is_loopback())
        .map(|ip| ip.to_string())
}

#[test]
fn under_local_a_client_from_another_address_may_not_pin_time() {
    // A machine with loopback alone cannot run this check; every other
    // check of this file still runs there.
    let Some(address) = outside_address() else {
        eprintln!("not run: no non-loopback IPv4 address (hostname -I lists none)");
        return;
    };
    let server = Server::start_with(&["--bind", "127.0.0.1", &address, "--protected-mode", "no"]);
    let outside = redis::Client::open(format!("redis://{address}:{}", server.port)).unwrap();
    let mut outside = outside.get_connection().unwrap();
    for line in pinned_calls() {
        assert_eq!(
            error(&mut outside, &line),
            "ERR AT is not allowed for this client (rl.client-time is 'local')",
            "{line}"
        );
    }
    // On the clock, the same client is served.
    assert_eq!(ints(&mut outside, "RL.TOKENBUCKET b 10 1 1000")[0], 1);
    set(&mut outside, "yes");
    assert_eq!(
        ints(&mut outside, format!("RL.TOKENBUCKET x 10 1 1000 AT {T}"))[0],
        1
    );
}

#[test]
fn under_no_every_call_that_pins_time_is_refused_and_writes_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    // Limiters with state, so that a refused call could change them.
    for line in pinned_calls() {
        call(&mut con, &line).unwrap();
    }
    let keys = ["b", "l", "w", "a1", "a2", "r", "q"];
    let before: Vec<_> = keys.iter().map(|k| dump(&mut con, k.as_bytes())).collect();
    set(&mut con, "no");
    assert_eq!(setting(&mut con), "no");
    let refused = "ERR AT is not allowed for this client (rl.client-time is 'no')";
    for line in pinned_calls() {
        assert_eq!(error(&mut con, &line), refused, "{line}");
    }
    // Inside a transaction and a script, the calls follow the client.
    let mut transaction = redis::pipe();
    transaction.atomic();
    transaction.add_command(command(format!("RL.TOKENBUCKET b 10 1 1000 AT {T}")));
    let result: redis::RedisResult<redis::Value> = transaction.query(&mut con);
    assert!(
        format!("{result:?}").contains("AT is not allowed"),
        "{result:?}"
    );
    let script = format!("return redis.call('RL.TOKENBUCKET', KEYS[1], 10, 1, 1000, 'AT', {T})");
    let in_script = error(&mut con, ["EVAL", script.as_str(), "1", "b"]);
    assert!(in_script.contains("AT is not allowed"), "{in_script}");
    let after: Vec<_> = keys.iter().map(|k| dump(&mut con, k.as_bytes())).collect();
    assert_eq!(after, before);
    // A stored state carries its limiter's clock: storing one is refused too.
    let payload = "RL.RESTORESTATE b tokenbucket x";
    assert_eq!(
        error(&mut con, payload),
        "ERR RL.RESTORESTATE is not allowed for this client (rl.client-time is 'no')"
    );
    assert_eq!(query::<i64>(&mut con, "EXISTS fresh"), 0);
    assert!(error(&mut con, format!("RL.WINDOW fresh 1 1000 AT {T}")).contains("not allowed"));
    assert_eq!(query::<i64>(&mut con, "EXISTS fresh"), 0);
    // On the server clock, every command runs.
    assert_eq!(ints(&mut con, "RL.TOKENBUCKET b 10 1 1000")[0], 1);
}

#[test]
fn under_local_scripts_may_not_pin_time_and_under_yes_they_may() {
    let server = Server::start();
    let mut con = server.connect();
    let script = format!("return redis.call('RL.TOKENBUCKET', KEYS[1], 10, 1, 1000, 'AT', {T})");
    let refused = error(&mut con, ["EVAL", script.as_str(), "1", "s"]);
    assert!(refused.contains("(rl.client-time is 'local')"), "{refused}");
    set(&mut con, "yes");
    let reply: Vec<i64> = query(&mut con, ["EVAL", script.as_str(), "1", "s"]);
    assert_eq!(reply, [1, 10, 9, 0, 1000]);
}

#[test]
fn a_replica_set_to_no_applies_what_its_master_accepted() {
    let (master, replica) = start_pair();
    let mut replica_con = replica.connect();
    set(&mut replica_con, "no");
    let mut con = master.connect();
    for line in pinned_calls() {
        call(&mut con, &line).unwrap();
    }
    wait_for_replica(&mut con);
    for key in ["b", "l", "w", "a1", "a2", "r", "q"] {
        let on_master = dump(&mut con, key.as_bytes());
        assert!(on_master.is_some(), "{key}");
        assert_eq!(dump(&mut replica_con, key.as_bytes()), on_master, "{key}");
    }
}

#[test]
fn an_aof_of_pinned_writes_and_restored_states_loads_under_no() {
    let mut server = Server::start_with(&AOF_WITHOUT_PREAMBLE);
    let mut con = server.connect();
    for line in pinned_calls() {
        call(&mut con, &line).unwrap();
    }
    // The rewrite stores each limiter as RL.RESTORESTATE; later writes
    // follow it as sent, AT and all.
    query::<()>(&mut con, "BGREWRITEAOF");
    wait_for_rewrite(&mut con);
    ints(
        &mut con,
        format!("RL.TOKENBUCKET b 10 1 3600000 AT {}", T + 5),
    );
    let keys = ["b", "l", "w", "a1", "a2", "r", "q"];
    let before: Vec<_> = keys.iter().map(|k| dump(&mut con, k.as_bytes())).collect();
    server.kill();
    server.restart_with(&[&AOF_WITHOUT_PREAMBLE[..], &["--rl.client-time", "no"]].concat());
    let mut con = server.connect();
    assert_eq!(setting(&mut con), "no");
    let after: Vec<_> = keys.iter().map(|k| dump(&mut con, k.as_bytes())).collect();
    assert_eq!(after, before);
}

#[test]
fn a_bad_value_is_refused_with_the_values_accepted() {
    let server = Server::start();
    let mut con = server.connect();
    let message = error(&mut con, "CONFIG SET rl.client-time maybe");
    assert!(
        message.contains("yes") && message.contains("local") && message.contains("no"),
        "{message}"
    );
    assert_eq!(setting(&mut con), "local");
    // As a module argument, and then as a config line.
    let path = crate::common::module_path().display().to_string();
    let bare = Server::start_without_module();
    let mut bare_con = bare.connect();
    let refused = error(
        &mut bare_con,
        ["MODULE", "LOAD", path.as_str(), "client-time", "maybe"],
    );
    assert!(refused.contains("ERR"), "{refused}");
    let loaded: redis::RedisResult<redis::Value> = call(
        &mut bare_con,
        ["MODULE", "LOAD", path.as_str(), "client-time", "NO"],
    );
    assert!(loaded.is_ok(), "{loaded:?}");
    assert_eq!(setting(&mut bare_con), "no");
    let loaded_server = Server::start_with(&["--rl.client-time", "yes"]);
    assert_eq!(setting(&mut loaded_server.connect()), "yes");
}
