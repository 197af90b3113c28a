//! The clock in the replication stream: writes travel as clients sent them,
//! after `RL.CLOCK ms` when their ms changes, and every server that starts
//! reading a stream part-way (a full sync, a replica of a replica, a replica
//! restarting from its RDB, an AOF rewritten under load, a failover) still
//! computes exactly what the master computed.
//!
//! Each test floods the master with writes on its own clock, many per ms,
//! while the stream starts, so that the first write after the start falls
//! in the ms announced before it; logs keep every write's time, so a single
//! write run at another ms shows in the comparison.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{sleep, JoinHandle};
use std::time::{Duration, Instant};

use crate::common::{call, command, dump, error, info_field, query, wait_for_rewrite, Server};
use redis::Connection;

const KEYS: [&str; 8] = ["b0", "b1", "b2", "b3", "l0", "l1", "l2", "l3"];
/// A bucket capacity no flood empties.
const BIG: i64 = 1_000_000_000_000;

/// Clients writing on the master's clock until stopped: several, so that
/// most ms hold many writes from different clients.
struct Flood {
    stop: Arc<AtomicBool>,
    writes: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl Flood {
    fn start(server: &Server) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let threads: Vec<JoinHandle<()>> = (0..3)
            .map(|_| {
                let mut con = server.connect();
                let (stop, writes) = (stop.clone(), writes.clone());
                std::thread::spawn(move || {
                    let mut round = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let mut pipe = redis::pipe();
                        for n in 0..32u64 {
                            let pick = ((round * 32 + n) % 4) as usize;
                            let (bucket, log) = (KEYS[pick], KEYS[4 + pick]);
                            // Never full, never expired: every ms changes the
                            // level, and the logs keep every write's time.
                            let mut lines = vec![
                                format!("RL.TOKENBUCKET {bucket} {BIG} 1 1000 COST 1000"),
                                format!("RL.SLIDELOG {log} 1000000 3600000"),
                            ];
                            if n == 0 {
                                lines.push(format!(
                                    "RL.ALL 2 {bucket} {log} TOKENBUCKET {BIG} 1 1000 \
                                     SLIDELOG 1000000 3600000"
                                ));
                            }
                            for line in lines {
                                pipe.add_command(command(line)).ignore();
                            }
                        }
                        // A master turned replica refuses writes: the flood ends.
                        if pipe.query::<()>(&mut con).is_err() {
                            break;
                        }
                        writes.fetch_add(65, Ordering::Relaxed);
                        round += 1;
                    }
                })
            })
            .collect();
        let flood = Flood {
            stop,
            writes,
            threads,
        };
        flood.wait_for_writes(2_000);
        flood
    }

    fn wait_for_writes(&self, more: u64) {
        let target = self.writes.load(Ordering::Relaxed) + more;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.writes.load(Ordering::Relaxed) < target {
            assert!(Instant::now() < deadline, "the flood stalled");
            sleep(Duration::from_millis(5));
        }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            thread.join().unwrap();
        }
    }
}

fn dumps(con: &mut Connection) -> Vec<Option<Vec<u8>>> {
    KEYS.iter().map(|key| dump(con, key.as_bytes())).collect()
}

fn digest(con: &mut Connection) -> String {
    query(con, "DEBUG DIGEST")
}

/// Asserts that two servers hold exactly the same limiters.
fn assert_same_state(expected: &mut Connection, actual: &mut Connection) {
    let expected_dumps = dumps(expected);
    assert!(
        expected_dumps.iter().all(Option::is_some),
        "every key exists"
    );
    assert!(dumps(actual) == expected_dumps, "the limiters differ");
    assert_eq!(digest(actual), digest(expected));
}

/// Servers that start a full sync without the default 5 s wait.
const QUICK_SYNC: [&str; 2] = ["--repl-diskless-sync-delay", "0"];

fn start_replica_of(master: &Server, extra: &[&str]) -> Server {
    let port = master.port.to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", &port];
    args.extend_from_slice(&QUICK_SYNC);
    args.extend_from_slice(extra);
    let replica = Server::start_with(&args);
    wait_until_synced(&replica);
    replica
}

fn wait_until_synced(replica: &Server) {
    let mut con = replica.connect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_field(&mut con, "replication", "master_link_status") != "up" {
        assert!(Instant::now() < deadline, "the replica did not sync");
        sleep(Duration::from_millis(20));
    }
}

/// Waits until `replica` has applied everything `master` has written (WAIT
/// would wait only for the writes of the connection it is sent on).
fn wait_for_offsets(master: &mut Connection, replica: &mut Connection) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let wanted = info_field(master, "replication", "master_repl_offset");
        if info_field(replica, "replication", "master_repl_offset") == wanted {
            return;
        }
        assert!(Instant::now() < deadline, "the replica did not catch up");
        sleep(Duration::from_millis(20));
    }
}

#[test]
fn writes_reach_the_aof_as_sent_after_the_clock_they_read() {
    let server = Server::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = server.connect();
    let (seconds, micros): (i64, i64) = query(&mut con, "TIME");
    let before = seconds * 1000 + micros / 1000;
    call(&mut con, "RL.TOKENBUCKET bucket 10 1 1000").unwrap();
    // A call pinned with AT counts its TTL from the clock, so it travels
    // after the clock in effect (announced again if the ms moved on).
    call(&mut con, "RL.SLIDELOG log 5 1000 AT 1700000000000").unwrap();
    // Denied calls and peeks replicate nothing, clock included.
    call(&mut con, "RL.TOKENBUCKET bucket 10 1 1000 COST 0").unwrap();
    call(&mut con, "RL.TOKENBUCKET bucket 10 1 1000 COST 11").unwrap();
    let mut aof = Vec::new();
    for entry in std::fs::read_dir(server.dir.join("appendonlydir")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".incr.aof") {
            aof.extend(std::fs::read(path).unwrap());
        }
    }
    let aof = String::from_utf8_lossy(&aof);
    let clock = aof.find("RL.CLOCK\r\n").expect("a clock in the AOF");
    let write = aof
        .find("RL.TOKENBUCKET\r\n$6\r\nbucket\r\n$2\r\n10\r\n$1\r\n1\r\n$4\r\n1000\r\n")
        .expect("the write as sent");
    assert!(clock < write, "{aof}");
    let ms: i64 = aof[clock..]
        .lines()
        .nth(2)
        .and_then(|line| line.parse().ok())
        .expect("the clock's ms");
    assert!((before..before + 60_000).contains(&ms), "{ms} vs {before}");
    let pinned = aof
        .find("RL.SLIDELOG\r\n$3\r\nlog\r\n$1\r\n5\r\n$4\r\n1000\r\n$2\r\nAT\r\n")
        .expect("the pinned write as sent");
    assert!(write < pinned, "{aof}");
    assert!((1..=2).contains(&aof.matches("RL.CLOCK").count()), "{aof}");
    // The denied call and the peek after it propagated nothing.
    assert!(!aof[pinned..].contains("RL.CLOCK"), "{aof}");
}

#[test]
fn clients_cannot_send_the_clock() {
    let server = Server::start();
    let mut con = server.connect();
    for line in ["RL.CLOCK 1700000000000", "RL.CLOCK x"] {
        assert!(
            error(&mut con, line).contains("only from a master or an AOF"),
            "{line}"
        );
    }
    assert!(error(&mut con, "RL.CLOCK").contains("wrong number of arguments"));
}

#[test]
fn a_replica_that_syncs_under_load_computes_what_its_master_did() {
    let master = Server::start_with(&QUICK_SYNC);
    let flood = Flood::start(&master);
    let replica = start_replica_of(&master, &[]);
    flood.wait_for_writes(20_000);
    flood.stop();
    let (mut con, mut replica_con) = (master.connect(), replica.connect());
    wait_for_offsets(&mut con, &mut replica_con);
    assert_same_state(&mut con, &mut replica_con);
}

#[test]
fn a_replica_of_a_replica_that_syncs_under_load_computes_what_the_master_did() {
    let master = Server::start_with(&QUICK_SYNC);
    let replica = start_replica_of(&master, &[]);
    let flood = Flood::start(&master);
    // It syncs from the replica's snapshot, in the middle of the master's
    // stream, which announces nothing new for it.
    let second = start_replica_of(&replica, &[]);
    flood.wait_for_writes(20_000);
    flood.stop();
    let mut con = master.connect();
    let mut second_con = second.connect();
    wait_for_offsets(&mut con, &mut second_con);
    assert_same_state(&mut con, &mut second_con);
}

#[test]
fn a_replica_restarted_from_its_rdb_resumes_the_stream_exactly() {
    let master =
        Server::start_with(&["--repl-backlog-size", "256mb", QUICK_SYNC[0], QUICK_SYNC[1]]);
    let mut replica = start_replica_of(&master, &[]);
    let mut con = master.connect();
    let partial_syncs = |con: &mut Connection| -> i64 {
        info_field(con, "stats", "sync_partial_ok").parse().unwrap()
    };
    let before = partial_syncs(&mut con);
    let flood = Flood::start(&master);
    let mut replica_con = replica.connect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_field(&mut replica_con, "replication", "master_repl_offset")
        .parse::<i64>()
        .unwrap()
        < 100_000
    {
        assert!(Instant::now() < deadline, "the replica applied nothing");
        sleep(Duration::from_millis(1));
    }
    // The replica saves its RDB, with its place in the stream, and stops in
    // the middle of a ms; back up, it asks for the rest of the stream.
    let _ = call(&mut replica.connect(), "SHUTDOWN SAVE");
    replica.restart();
    wait_until_synced(&replica);
    flood.wait_for_writes(20_000);
    flood.stop();
    assert_eq!(partial_syncs(&mut con), before + 1, "a partial resync");
    let mut replica_con = replica.connect();
    wait_for_offsets(&mut con, &mut replica_con);
    assert_same_state(&mut con, &mut replica_con);
}

fn aof_rewritten_under_load_replays_exactly(preamble: &str) {
    // Without fsync after each write, many writes share each ms; a kill
    // still leaves in the file every write that was answered.
    let mut server = Server::start_with(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "no",
        "--aof-use-rdb-preamble",
        preamble,
    ]);
    let flood = Flood::start(&server);
    let mut con = server.connect();
    query::<()>(&mut con, "BGREWRITEAOF");
    wait_for_rewrite(&mut con);
    flood.wait_for_writes(20_000);
    flood.stop();
    let expected = dumps(&mut con);
    let expected_digest = digest(&mut con);
    server.restart();
    let mut con = server.connect();
    assert!(
        dumps(&mut con) == expected,
        "the AOF replays to another state"
    );
    assert_eq!(digest(&mut con), expected_digest);
    // A rewrite between two writes of one ms: the new file must announce
    // the ms again before the second, here the first write of a new key
    // (which no earlier time could hide behind).
    for round in 0..5 {
        let fresh = format!("fresh:{round}");
        let mut pipe = redis::pipe();
        for key in KEYS[..4].iter().copied().chain([fresh.as_str()]) {
            if key == fresh {
                pipe.add_command(command("BGREWRITEAOF")).ignore();
            }
            let line = format!("RL.TOKENBUCKET {key} {BIG} 1 1000");
            pipe.add_command(command(line)).ignore();
        }
        pipe.query::<()>(&mut con).unwrap();
        wait_for_rewrite(&mut con);
        let expected = dump(&mut con, fresh.as_bytes());
        call(&mut con, "DEBUG LOADAOF").unwrap();
        assert_eq!(dump(&mut con, fresh.as_bytes()), expected, "{fresh}");
    }
}

#[test]
fn an_aof_rewritten_under_load_replays_exactly() {
    aof_rewritten_under_load_replays_exactly("yes");
}

#[test]
fn an_aof_rewritten_under_load_without_rdb_preamble_replays_exactly() {
    aof_rewritten_under_load_replays_exactly("no");
}

#[test]
fn a_replica_promoted_under_load_is_followed_exactly_by_its_old_master() {
    let master = Server::start_with(&["--appendonly", "yes", QUICK_SYNC[0], QUICK_SYNC[1]]);
    let replica = start_replica_of(&master, &["--appendonly", "yes"]);
    let flood = Flood::start(&master);
    let mut con = master.connect();
    // The master stops writes, hands over, and becomes a replica: the flood
    // then gets READONLY and ends.
    query::<()>(&mut con, "FAILOVER");
    flood.stop();
    let mut promoted = replica.connect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_field(&mut promoted, "replication", "role") != "master"
        || info_field(&mut con, "replication", "master_link_status") != "up"
    {
        assert!(Instant::now() < deadline, "the failover did not finish");
        sleep(Duration::from_millis(20));
    }
    let flood = Flood::start(&replica);
    flood.wait_for_writes(10_000);
    flood.stop();
    wait_for_offsets(&mut promoted, &mut con);
    assert_same_state(&mut promoted, &mut con);
}

#[test]
fn writes_in_transactions_and_scripts_carry_their_clock() {
    let master = Server::start_with(&QUICK_SYNC);
    let replica = start_replica_of(&master, &[]);
    let mut con = master.connect();
    let mut keys = Vec::new();
    for round in 0..5 {
        // A new ms, and first writes of new keys, which keep that ms.
        sleep(Duration::from_millis(3));
        let (a, b) = (format!("multi:{round}:a"), format!("multi:{round}:b"));
        redis::pipe()
            .atomic()
            .add_command(command(format!("RL.TOKENBUCKET {a} 10 1 60000")))
            .add_command(command(format!("RL.SLIDELOG {b} 10 60000")))
            .query::<()>(&mut con)
            .unwrap();
        sleep(Duration::from_millis(3));
        let (c, d) = (format!("eval:{round}:c"), format!("eval:{round}:d"));
        let script = "redis.call('RL.TOKENBUCKET', KEYS[1], 10, 1, 60000) \
                      return redis.call('RL.SLIDELOG', KEYS[2], 10, 60000)";
        query::<()>(&mut con, ["EVAL", script, "2", &c, &d]);
        keys.extend([a, b, c, d]);
    }
    let mut replica_con = replica.connect();
    wait_for_offsets(&mut con, &mut replica_con);
    for key in &keys {
        let on_master = dump(&mut con, key.as_bytes());
        assert!(on_master.is_some(), "{key}");
        assert_eq!(dump(&mut replica_con, key.as_bytes()), on_master, "{key}");
    }
}

#[test]
fn a_write_whose_propagation_another_module_drops_does_not_hide_the_next_clock() {
    let nested = common::fixture_module("nested_call");
    let nested = nested.to_str().unwrap();
    let master = Server::start_with(&["--loadmodule", nested, QUICK_SYNC[0], QUICK_SYNC[1]]);
    let replica = start_replica_of(&master, &["--loadmodule", nested]);
    let mut con = master.connect();
    for round in 0..3 {
        query::<()>(
            &mut con,
            format!("RL.TOKENBUCKET before:{round} 10 1 3600000"),
        );
        sleep(Duration::from_millis(5));
        // Both read one new ms; Redis propagates nothing of the first (the
        // module replicates NESTED.WRAP itself), so the second must
        // announce that ms.
        redis::pipe()
            .atomic()
            .add_command(command(format!(
                "NESTED.WRAP RL.TOKENBUCKET wrapped:{round} 10 1 3600000"
            )))
            .add_command(command(format!(
                "RL.TOKENBUCKET after:{round} 10 1 3600000"
            )))
            .query::<()>(&mut con)
            .unwrap();
    }
    let mut replica_con = replica.connect();
    wait_for_offsets(&mut con, &mut replica_con);
    for round in 0..3 {
        let key = format!("after:{round}");
        let on_master = dump(&mut con, key.as_bytes());
        assert!(on_master.is_some());
        assert_eq!(dump(&mut replica_con, key.as_bytes()), on_master, "{key}");
    }
}

#[test]
fn a_write_that_no_clock_precedes_runs_on_the_local_clock_and_is_counted() {
    let mut server = Server::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut con = server.connect();
    assert_eq!(info_field(&mut con, "rl", "rl_unclocked_writes"), "0");
    server.kill();
    // An AOF that lost its RL.CLOCK: a hand-made file, or a bug.
    let incr = std::fs::read_dir(server.dir.join("appendonlydir"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().ends_with(".incr.aof"))
        .expect("an incremental AOF file");
    let mut file = std::fs::OpenOptions::new().append(true).open(incr).unwrap();
    std::io::Write::write_all(
        &mut file,
        b"*5\r\n$14\r\nRL.TOKENBUCKET\r\n$1\r\nk\r\n$2\r\n10\r\n$1\r\n1\r\n$7\r\n3600000\r\n",
    )
    .unwrap();
    drop(file);
    server.restart();
    let mut con = server.connect();
    assert!(dump(&mut con, b"k").is_some());
    assert_eq!(info_field(&mut con, "rl", "rl_unclocked_writes"), "1");
    assert!(server.log().contains("no RL.CLOCK preceded it"));
}
