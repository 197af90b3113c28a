//! WAIT's edge cases: writes from timers while writes are paused (the
//! server stays up, the grant or refund comes once the pause is over);
//! leases too long for a timer (no spinning, no hang); refunds only to the
//! bucket the cost was taken from (not to a new bucket at the same name,
//! and no key created); a due time never beyond the timeout when the
//! bucket's clock is ahead of the server's; lease waiters woken by
//! FLUSHALL, FLUSHDB, RENAME, MOVE and SWAPDB. Timings are asserted with
//! generous bounds (CI machines are slow), except where the timing is the
//! point, and then still generously.

use std::thread::{sleep, spawn, JoinHandle};
use std::time::{Duration, Instant};

use redis::{Connection, Value};

use crate::common::wait::{inspect_field, tokens, until_waiting_on, waiting_on, waits};
use crate::common::{command, dump, info_field, int, ints, query, server_ms, Server};

/// A generous bound on how late an answer may come on a loaded machine.
const LATE: Duration = Duration::from_millis(1500);

/// How long a condition polled may take to hold.
const PATIENCE: Duration = Duration::from_secs(10);

/// Polls `check` every 5 ms until it holds; fails naming `what` (and the
/// last state `check` saw, through `what`) after [`PATIENCE`].
fn eventually(what: impl Fn() -> String, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "never: {}", what());
        sleep(Duration::from_millis(5));
    }
}

/// The last lines of the server's log, on one line (a crash's assertion).
fn log_tail(server: &Server) -> String {
    let log = server.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    let crash = ["==> ", "ASSERTION FAILED", "crashed by signal"]
        .iter()
        .find_map(|mark| lines.iter().position(|l| l.contains(mark)));
    let from = crash.unwrap_or(lines.len().saturating_sub(4));
    lines[from..lines.len().min(from + 4)].join(" | ")
}

/// Fails unless the server answers PING within a second.
fn assert_alive(server: &Server) {
    let pong = server.try_connect().and_then(|mut con| {
        con.set_read_timeout(Some(Duration::from_secs(1)))?;
        command("PING").query::<String>(&mut con)
    });
    assert!(
        matches!(pong.as_deref(), Ok("PONG")),
        "the server is down ({pong:?}); its log: {}",
        log_tail(server)
    );
}

/// The CPU time the server has used, in seconds.
fn cpu_seconds(con: &mut Connection) -> f64 {
    ["used_cpu_sys", "used_cpu_user"]
        .iter()
        .map(|name| info_field(con, "cpu", name).parse::<f64>().unwrap())
        .sum()
}

/// A reply (or the error in its place) and when it came.
type Answer = (Result<Vec<i64>, String>, Instant);

/// Sends `line` on a connection of its own, from a thread.
fn waiter(server: &Server, line: &str) -> JoinHandle<Answer> {
    let mut con = server.connect();
    let line = line.to_owned();
    spawn(move || {
        let reply = command(&line)
            .query::<Vec<i64>>(&mut con)
            .map_err(|e| e.to_string());
        (reply, Instant::now())
    })
}

/// The reply a waiter got; fails with the server's log when it got none.
fn answered(server: &Server, handle: JoinHandle<Answer>) -> (Vec<i64>, Instant) {
    let (reply, at) = handle.join().unwrap();
    match reply {
        Ok(reply) => (reply, at),
        Err(error) => panic!(
            "the waiter got no reply ({error}); log: {}",
            log_tail(server)
        ),
    }
}

/// A connection that sent `line` and does not read its reply: dropping it
/// disconnects a waiting client.
fn leaving(server: &Server, line: &str) -> Connection {
    let mut con = server.connect();
    con.send_packed_command(&command(line).get_packed_command())
        .unwrap();
    con
}

/// `CLIENT PAUSE ms WRITE`; when it was sent.
fn pause_writes(con: &mut Connection, ms: u64) -> Instant {
    let sent = Instant::now();
    query::<()>(con, format!("CLIENT PAUSE {ms} WRITE"));
    sent
}

/// A grant `after` a pause of `pause` began came once it was over, on time.
fn assert_at_pause_end(after: Duration, pause: Duration) {
    assert!(
        after + Duration::from_millis(5) >= pause,
        "granted during the pause, {after:?} after it began"
    );
    assert!(after <= pause + LATE, "late: {after:?}");
}

// 1. Writes from timers wait while writes are paused.

/// A lease waiter whose key's only lease ends (and so the key expires)
/// while writes are paused: granted once the pause is over, the server up.
#[test]
fn a_lease_ending_during_a_write_pause_is_granted_once_the_pause_is_over() {
    let server = Server::start();
    let mut con = server.connect();
    // The lease ends in 2 s: time enough to line the waiter up and pause.
    ints(&mut con, "RL.ACQUIRE p 1 2000");
    let end_ms = inspect_field(&mut con, "p", "next_end_ms").unwrap();
    let waiting = waiter(&server, "RL.ACQUIRE p 1 60000 WAIT 8000");
    until_waiting_on(&mut con, "leases", 1);
    let paused = pause_writes(&mut con, 3000);
    assert!(
        server_ms(&mut con) < end_ms,
        "setup too slow: the pause began after the lease ended"
    );
    let (reply, at) = answered(&server, waiting);
    let after = at.duration_since(paused);
    assert_alive(&server);
    assert_eq!(&reply[..2], [1, 1], "granted: {reply:?}");
    assert!(reply[5] > 0, "a lease id: {reply:?}");
    assert_at_pause_end(after, Duration::from_millis(3000));
    assert_eq!(
        inspect_field(&mut con, "p", "live"),
        Some(1),
        "the lease granted"
    );
    assert!(
        waits(&mut con).contains("granted=1,"),
        "{}",
        waits(&mut con)
    );
}

/// The same when the key, holding a long lease, expires during the pause.
#[test]
fn a_lease_key_expiring_during_a_write_pause_hands_its_slot_over_after_it() {
    let server = Server::start();
    let mut con = server.connect();
    ints(&mut con, "RL.ACQUIRE x 1 60000");
    // It expires in 2 s: time enough to line the waiter up and pause.
    assert_eq!(int(&mut con, "PEXPIRE x 2000"), 1);
    let waiting = waiter(&server, "RL.ACQUIRE x 1 60000 WAIT 8000");
    until_waiting_on(&mut con, "leases", 1);
    let paused = pause_writes(&mut con, 3000);
    let (reply, at) = answered(&server, waiting);
    let after = at.duration_since(paused);
    assert_alive(&server);
    assert_eq!(&reply[..2], [1, 1], "granted: {reply:?}");
    assert_at_pause_end(after, Duration::from_millis(3000));
    assert_eq!(
        inspect_field(&mut con, "x", "live"),
        Some(1),
        "the lease granted"
    );
}

/// A lease waiter whose timeout comes during the pause, after the key's
/// lease ended: denied at its timeout, given no lease, the server up.
#[test]
fn a_lease_waiter_timing_out_during_a_write_pause_is_denied_and_takes_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    // The lease ends in 1.5 s (time enough to line the waiter up and
    // pause), the waiter times out 1 s later, and the pause lasts 5 s.
    ints(&mut con, "RL.ACQUIRE t 1 1500");
    let end_ms = inspect_field(&mut con, "t", "next_end_ms").unwrap();
    let waiting = waiter(&server, "RL.ACQUIRE t 1 60000 WAIT 2500");
    until_waiting_on(&mut con, "leases", 1);
    let paused = pause_writes(&mut con, 5000);
    assert!(
        server_ms(&mut con) < end_ms,
        "setup too slow: the pause began after the lease ended"
    );
    let (reply, at) = answered(&server, waiting);
    let after = at.duration_since(paused);
    assert_alive(&server);
    assert_eq!((reply[0], reply[5]), (0, 0), "denied: {reply:?}");
    assert!(
        after < Duration::from_millis(4000),
        "not answered at its timeout but {after:?} after the pause began"
    );
    // Once the pause is over, nothing was granted: the slot is free.
    sleep(Duration::from_millis(5000).saturating_sub(paused.elapsed()));
    assert_alive(&server);
    assert_eq!(ints(&mut con, "RL.ACQUIRE t 1 60000")[..3], [1, 1, 0]);
    assert!(
        waits(&mut con).starts_with("total=1,granted=0,timedout=1,"),
        "{}",
        waits(&mut con)
    );
}

/// A bucket waiter that disconnects while writes are paused gets its cost
/// back once the pause is over, not during it.
#[test]
fn a_bucket_waiter_leaving_during_a_write_pause_is_refunded_after_it() {
    let server = Server::start();
    let mut con = server.connect();
    // A token every 30 s: none comes back before the refund is checked.
    ints(&mut con, "RL.TOKENBUCKET b 1 1 30000");
    let leaver = leaving(&server, "RL.TOKENBUCKET b 1 1 30000 WAIT 60000");
    until_waiting_on(&mut con, "buckets", 1);
    assert_eq!(tokens(&mut con, "b"), -1, "the debt");
    let paused = pause_writes(&mut con, 3000);
    drop(leaver);
    until_waiting_on(&mut con, "buckets", 0);
    sleep(Duration::from_millis(200));
    assert!(
        paused.elapsed() < Duration::from_millis(2800),
        "setup too slow"
    );
    assert_alive(&server);
    assert_eq!(tokens(&mut con, "b"), -1, "refunded during the pause");
    eventually(
        || {
            format!(
                "refunded: b holds {} tokens",
                tokens(&mut server.connect(), "b")
            )
        },
        || tokens(&mut con, "b") == 0,
    );
    let after = paused.elapsed();
    assert!(
        after + Duration::from_millis(5) >= Duration::from_millis(3000),
        "refunded during the pause, {after:?} after it began"
    );
    assert!(
        after <= Duration::from_millis(3000) + LATE,
        "late: {after:?}"
    );
    assert_alive(&server);
}

// 2. A lease too long for a timer.

/// A waiter behind a lease of a huge length times out on time, and the
/// server stays responsive and idle (no timer re-armed in a loop) while it
/// waits. Redis counts a module timer's time in µs: a lease ending at
/// `end_ms` with `end_ms * 1000` past 2^64 wrapped to a time already gone
/// (18446744073000000: about 709 s ago), and the timer serving the line
/// fired and was started again for ever, the server answering nothing.
#[test]
fn a_waiter_behind_a_huge_lease_times_out_while_the_server_stays_idle() {
    let server = Server::start();
    let mut con = server.connect();
    con.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    for (key, lease_ms) in [
        ("h1", "9000000000000000"),
        ("h2", "18446744073000000"),
        ("h3", "9223372036854775807"),
    ] {
        assert_eq!(
            ints(&mut con, format!("RL.ACQUIRE {key} 1 {lease_ms}"))[0],
            1
        );
        let cpu_before = cpu_seconds(&mut con);
        let started = Instant::now();
        let waiting = waiter(&server, &format!("RL.ACQUIRE {key} 1 {lease_ms} WAIT 500"));
        let mut slowest = Duration::ZERO;
        while !waiting.is_finished() {
            let ping = Instant::now();
            let pong = command("PING").query::<String>(&mut con);
            assert!(
                matches!(pong.as_deref(), Ok("PONG")),
                "{key}: the server stopped answering ({pong:?})"
            );
            slowest = slowest.max(ping.elapsed());
            assert!(started.elapsed() < PATIENCE, "{key}: never answered");
            sleep(Duration::from_millis(20));
        }
        let (reply, at) = answered(&server, waiting);
        let cpu = cpu_seconds(&mut con) - cpu_before;
        let wall = at.duration_since(started);
        assert_eq!((reply[0], reply[5]), (0, 0), "{key}: denied: {reply:?}");
        assert!(
            wall + Duration::from_millis(1) >= Duration::from_millis(500),
            "{key}: early: {wall:?}"
        );
        assert!(
            wall <= Duration::from_millis(500) + LATE,
            "{key}: late: {wall:?}"
        );
        assert!(
            slowest < Duration::from_secs(1),
            "{key}: a PING took {slowest:?}"
        );
        assert!(
            cpu < 0.25 * wall.as_secs_f64(),
            "{key}: the server used {cpu:.3} s of CPU in {wall:?} of waiting"
        );
    }
}

// 3. A refund goes only to the bucket the cost was taken from.

/// A bucket waiter on `k` (its cost 2 taken as a debt, due in 4 s) that
/// disconnects after `replace` ran; with `fresh`, a new bucket is then
/// made at `k` (9 tokens of 10). Returns once the waiter's refund, if any,
/// has happened: another waiter, on `ctl`, leaves after it, and its
/// refund's timer comes after this one's.
fn leave_after(replace: impl FnOnce(&mut Connection), fresh: bool) -> (Server, Connection) {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(ints(&mut con, "RL.TOKENBUCKET k 2 1 2000 COST 2")[0], 1);
    let leaver = leaving(&server, "RL.TOKENBUCKET k 2 1 2000 COST 2 WAIT 5000");
    until_waiting_on(&mut con, "buckets", 1);
    assert_eq!(tokens(&mut con, "k"), -2, "the debt");
    replace(&mut con);
    if fresh {
        assert_eq!(
            ints(&mut con, "RL.TOKENBUCKET k 10 1 60000")[..3],
            [1, 10, 9]
        );
    }
    ints(&mut con, "RL.TOKENBUCKET ctl 1 1 4000");
    let control = leaving(&server, "RL.TOKENBUCKET ctl 1 1 4000 WAIT 5000");
    until_waiting_on(&mut con, "buckets", 2);
    drop(leaver);
    until_waiting_on(&mut con, "buckets", 1);
    drop(control);
    eventually(
        || format!("ctl refunded: {}", waits(&mut server.connect())),
        || tokens(&mut con, "ctl") == 0,
    );
    assert_alive(&server);
    (server, con)
}

/// What runs `lines`, one after the other.
fn run<'a>(lines: &'a [&'a str]) -> impl FnOnce(&mut Connection) + 'a {
    move |con| {
        for line in lines {
            query::<Value>(con, *line);
        }
    }
}

/// Fails unless `k` holds the fresh bucket's 9 tokens, untouched.
fn assert_fresh_untouched(con: &mut Connection) {
    assert_eq!(
        tokens(con, "k"),
        9,
        "the refund credited the new bucket at k"
    );
}

/// Fails unless `k` does not exist.
fn assert_no_key(con: &mut Connection) {
    assert_eq!(
        int(con, "EXISTS k"),
        0,
        "the refund created k: {:?}",
        query::<Value>(con, "RL.INSPECT k")
    );
}

#[test]
fn a_waiter_that_leaves_gets_its_cost_back_from_its_own_bucket() {
    let (_server, mut con) = leave_after(run(&[]), false);
    assert_eq!(tokens(&mut con, "k"), 0, "the cost of 2 given back");
}

#[test]
fn no_refund_to_a_new_bucket_after_del() {
    let (_server, mut con) = leave_after(run(&["DEL k"]), true);
    assert_fresh_untouched(&mut con);
}

#[test]
fn no_refund_creates_a_key_after_del() {
    let (_server, mut con) = leave_after(run(&["DEL k"]), false);
    assert_no_key(&mut con);
}

#[test]
fn no_refund_to_a_new_bucket_after_flushall() {
    let (_server, mut con) = leave_after(run(&["FLUSHALL"]), true);
    assert_fresh_untouched(&mut con);
}

#[test]
fn no_refund_creates_a_key_after_flushall() {
    let (_server, mut con) = leave_after(run(&["FLUSHALL"]), false);
    assert_no_key(&mut con);
}

#[test]
fn no_refund_to_a_new_bucket_after_flushdb() {
    let (_server, mut con) = leave_after(run(&["FLUSHDB"]), true);
    assert_fresh_untouched(&mut con);
}

#[test]
fn no_refund_creates_a_key_after_flushdb() {
    let (_server, mut con) = leave_after(run(&["FLUSHDB"]), false);
    assert_no_key(&mut con);
}

#[test]
fn no_refund_to_a_new_bucket_after_swapdb() {
    let (_server, mut con) = leave_after(run(&["SWAPDB 0 1"]), true);
    assert_fresh_untouched(&mut con);
}

#[test]
fn no_refund_creates_a_key_after_swapdb() {
    let (_server, mut con) = leave_after(run(&["SWAPDB 0 1"]), false);
    assert_no_key(&mut con);
}

#[test]
fn no_refund_to_a_new_bucket_after_rename_away() {
    let (_server, mut con) = leave_after(run(&["RENAME k other"]), true);
    assert_fresh_untouched(&mut con);
}

#[test]
fn no_refund_creates_a_key_after_rename_away() {
    let (_server, mut con) = leave_after(run(&["RENAME k other"]), false);
    assert_no_key(&mut con);
}

#[test]
fn no_refund_to_a_new_bucket_after_move() {
    let (_server, mut con) = leave_after(run(&["MOVE k 1"]), true);
    assert_fresh_untouched(&mut con);
}

/// Another bucket put in k's place by RENAME (which sends no `del` for
/// k, only `rename_to`).
#[test]
fn no_refund_to_a_bucket_renamed_over_the_key() {
    let replace = run(&["RL.TOKENBUCKET src 10 1 60000", "RENAME src k"]);
    let (_server, mut con) = leave_after(replace, false);
    assert_fresh_untouched(&mut con);
}

/// Another bucket put in k's place by COPY ... REPLACE (which sends no
/// `del` for k, only `copy_to`).
#[test]
fn no_refund_to_a_bucket_copied_over_the_key() {
    let replace = run(&["RL.TOKENBUCKET src 10 1 60000", "COPY src k REPLACE"]);
    let (_server, mut con) = leave_after(replace, false);
    assert_fresh_untouched(&mut con);
}

/// Another bucket put in k's place by RESTORE ... REPLACE.
#[test]
fn no_refund_to_a_bucket_restored_over_the_key() {
    let replace = |con: &mut Connection| {
        ints(con, "RL.TOKENBUCKET src 10 1 60000");
        let payload = dump(con, b"src").unwrap();
        query::<()>(con, [&b"RESTORE"[..], b"k", b"0", &payload, b"REPLACE"]);
    };
    let (_server, mut con) = leave_after(replace, false);
    assert_fresh_untouched(&mut con);
}

// 4. A due time never beyond the timeout.

/// A bucket whose clock is ahead of the server's (written with AT in the
/// future): a call whose tokens come due within its timeout as the
/// bucket's clock counts, but beyond it as the server's clock does, is
/// answered at once, denied, writing nothing.
#[test]
fn a_call_due_beyond_its_timeout_by_the_servers_clock_is_denied_at_once() {
    let server = Server::start();
    let mut con = server.connect();
    let ahead = server_ms(&mut con) + 10_000;
    for (key, first, waiting) in [
        (
            "f",
            "RL.TOKENBUCKET f 1 1 1000",
            "RL.TOKENBUCKET f 1 1 1000 WAIT 3000",
        ),
        (
            "c",
            "RL.COST c 1 1 1000 1",
            "RL.COST c 1 1 1000 1 WAIT 3000",
        ),
        (
            "r",
            "RL.RESERVE r 1 1 1000 1 60000",
            "RL.RESERVE r 1 1 1000 1 60000 WAIT 3000",
        ),
    ] {
        assert_eq!(ints(&mut con, format!("{first} AT {ahead}"))[0], 1, "{key}");
        // Without WAIT: due 1000 ms after the bucket's clock.
        let plain = ints(&mut con, first);
        assert_eq!(&plain[..2], [0, 1], "{key}: {plain:?}");
        assert!(plain[3] <= 3000, "{key}: within the timeout: {plain:?}");
        let before = dump(&mut con, key.as_bytes());
        let mut caller = server.connect();
        caller
            .set_read_timeout(Some(Duration::from_millis(2500)))
            .unwrap();
        let start = Instant::now();
        let reply = command(waiting).query::<Vec<i64>>(&mut caller);
        let took = start.elapsed();
        let reply = reply.unwrap_or_else(|e| panic!("{key}: not answered at once ({e})"));
        assert_eq!(reply[0], 0, "{key}: denied: {reply:?}");
        assert!(took < LATE, "{key}: answered after {took:?}");
        assert_eq!(
            dump(&mut con, key.as_bytes()),
            before,
            "{key}: nothing written"
        );
    }
    assert_eq!(waiting_on(&mut con, "buckets"), 0);
    assert!(
        waits(&mut con).starts_with("total=0,"),
        "{}",
        waits(&mut con)
    );
}

// 5. Lease waiters woken when the key goes.

/// A lease waiter on `w`, whose one slot is held for a minute, then `op`:
/// the slot is free, so the waiter is granted well before its timeout.
fn lease_waiter_woken_by(op: &str) {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(ints(&mut con, "RL.ACQUIRE w 1 60000")[0], 1);
    let waiting = waiter(&server, "RL.ACQUIRE w 1 60000 WAIT 4000");
    until_waiting_on(&mut con, "leases", 1);
    let sent = Instant::now();
    query::<Value>(&mut con, op);
    let (reply, at) = answered(&server, waiting);
    let after = at.duration_since(sent);
    assert_eq!(&reply[..2], [1, 1], "{op}: not granted: {reply:?}");
    assert!(reply[5] > 0, "{op}: a lease id: {reply:?}");
    assert!(
        after < Duration::from_millis(2500),
        "{op}: granted only {after:?} after it"
    );
    assert_eq!(
        inspect_field(&mut con, "w", "live"),
        Some(1),
        "{op}: the lease"
    );
    assert_eq!(waiting_on(&mut con, "leases"), 0);
}

#[test]
fn a_lease_waiter_is_woken_by_flushall() {
    lease_waiter_woken_by("FLUSHALL");
}

#[test]
fn a_lease_waiter_is_woken_by_flushdb() {
    lease_waiter_woken_by("FLUSHDB");
}

#[test]
fn a_lease_waiter_is_woken_by_rename_away() {
    lease_waiter_woken_by("RENAME w elsewhere");
}

#[test]
fn a_lease_waiter_is_woken_by_move() {
    lease_waiter_woken_by("MOVE w 1");
}

#[test]
fn a_lease_waiter_is_woken_by_swapdb() {
    lease_waiter_woken_by("SWAPDB 0 1");
}

/// A connection of `server` on database `db`.
fn connect_db(server: &Server, db: u32) -> Connection {
    let mut con = server.connect();
    query::<()>(&mut con, format!("SELECT {db}"));
    con
}

/// A lease waiter in database 3 woken by a FLUSHALL or a SWAPDB sent from
/// another database (their events run on database 0): its lease goes to its
/// own database, and database 0 is untouched.
#[test]
fn a_lease_waiter_woken_from_another_database_is_granted_in_its_own() {
    for op in ["FLUSHALL", "SWAPDB 3 4"] {
        let server = Server::start();
        let mut db3 = connect_db(&server, 3);
        ints(&mut db3, "RL.ACQUIRE k 1 60000");
        let mut waiting = connect_db(&server, 3);
        let handle = spawn(move || {
            command("RL.ACQUIRE k 1 60000 WAIT 3000")
                .query::<Vec<i64>>(&mut waiting)
                .map_err(|e| e.to_string())
        });
        let mut con = connect_db(&server, 5);
        until_waiting_on(&mut con, "leases", 1);
        query::<()>(&mut con, op);
        let reply = handle.join().unwrap().expect("a reply");
        assert_eq!(&reply[..2], [1, 1], "{op}: granted: {reply:?}");
        assert_eq!(
            inspect_field(&mut db3, "k", "live"),
            Some(1),
            "{op}: the lease in database 3"
        );
        let mut db0 = server.connect();
        assert_eq!(int(&mut db0, "DBSIZE"), 0, "{op}: nothing in database 0");
    }
}

/// An AOF replayed (DEBUG LOADAOF) while a client waits for a slot: the
/// replay restores the lease it holds, and no waiter takes a slot during
/// it; the waiter gets the slot once that lease is released.
#[test]
fn no_waiter_is_served_while_the_aof_is_replayed() {
    let server = Server::start_with(&["--appendonly", "yes"]);
    let mut con = server.connect();
    let held = ints(&mut con, "RL.ACQUIRE a 1 60000")[5];
    let waiting = waiter(&server, "RL.ACQUIRE a 1 60000 WAIT 4000");
    until_waiting_on(&mut con, "leases", 1);
    query::<()>(&mut con, "DEBUG LOADAOF");
    assert_eq!(waiting_on(&mut con, "leases"), 1, "still waiting");
    assert_eq!(
        int(&mut con, format!("RL.RELEASE a {held}")),
        1,
        "the replayed lease is the one held"
    );
    let (reply, _) = answered(&server, waiting);
    assert_eq!(&reply[..2], [1, 1], "granted once released: {reply:?}");
}

/// A lease waiter whose key comes to hold another type: WRONGTYPE at its
/// timeout, as the call would get then.
#[test]
fn a_lease_waiter_whose_key_changes_type_gets_wrongtype_at_its_timeout() {
    let server = Server::start();
    let mut con = server.connect();
    ints(&mut con, "RL.ACQUIRE s 1 60000");
    // The SET must come before the timeout, 2 s away.
    let waiting = waiter(&server, "RL.ACQUIRE s 1 60000 WAIT 2000");
    until_waiting_on(&mut con, "leases", 1);
    query::<()>(&mut con, "SET s taken");
    let (reply, _) = waiting.join().unwrap();
    let error = reply.expect_err("an error");
    assert!(error.contains("WRONGTYPE"), "{error}");
    assert_eq!(waiting_on(&mut con, "leases"), 0);
}
