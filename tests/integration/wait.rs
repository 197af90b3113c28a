//! WAIT on the bucket commands: waiters answered in arrival order, each not
//! before its tokens are due; plain calls queueing behind their debt;
//! immediate denials beyond the timeout; refunds on disconnection; no
//! waiting where Redis cannot block; errors; INFO; replicas equal to the
//! master. Timings are asserted as "not before due" and generous upper
//! bounds only (CI machines are slow).

use std::thread::{sleep, spawn, JoinHandle};
use std::time::{Duration, Instant};

use redis::{Connection, Value};

use crate::common::wait::{blocked_client, tokens, until_waiting_on, waiting_on, waits};
use crate::common::{
    call, command, dump, error, expire_time, info_field, int, ints, key_events, query, server_ms,
    server_version, start_pair, wait_for_replica, Server,
};

/// A generous bound on how late an answer may come on a loaded machine.
const LATE: Duration = Duration::from_millis(1500);

/// Waits until `INFO rl`'s `rl_waits`, less its `waited_ms`, reads
/// `expected`: a waiter's client may see its answer, and one that
/// disconnected may be gone, before the counters are updated (a refund runs
/// from a timer right after the disconnection).
fn until_waits(con: &mut Connection, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = waits(con);
        if seen.split(",waited_ms").next() == Some(expected) {
            return;
        }
        assert!(Instant::now() < deadline, "rl_waits {seen}, not {expected}");
        sleep(Duration::from_millis(5));
    }
}

/// Waits until `count` clients wait on buckets.
fn until_waiting(con: &mut Connection, count: i64) {
    until_waiting_on(con, "buckets", count);
}

/// Sends `line` on a connection of its own; the reply and when it came,
/// measured from `start`.
fn waiter(server: &Server, line: String, start: Instant) -> JoinHandle<(Vec<i64>, Duration)> {
    let mut con = server.connect();
    spawn(move || {
        let reply = ints(&mut con, &line);
        (reply, start.elapsed())
    })
}

/// A fresh server where `setup` ran, then `line` from a client of its own,
/// once that client waits on `what` (buckets, leases): the server, a
/// connection, the waiting call, and when `setup` was sent.
fn one_waiting(
    setup: &str,
    line: &str,
    what: &str,
) -> (
    Server,
    Connection,
    JoinHandle<(Vec<i64>, Duration)>,
    Instant,
) {
    let server = Server::start();
    let mut con = server.connect();
    let start = Instant::now();
    ints(&mut con, setup);
    let waiting_call = waiter(&server, line.to_owned(), start);
    until_waiting_on(&mut con, what, 1);
    (server, con, waiting_call, start)
}

/// `count` clients sending `line` one after the other, each once the one
/// before waits on `what` (buckets, leases): they arrive in that order.
fn line_up(
    server: &Server,
    con: &mut Connection,
    line: &str,
    what: &str,
    count: i64,
    start: Instant,
) -> Vec<JoinHandle<(Vec<i64>, Duration)>> {
    (1..=count)
        .map(|i| {
            let handle = waiter(server, line.to_owned(), start);
            until_waiting_on(con, what, i);
            handle
        })
        .collect()
}

#[test]
fn waiters_are_answered_in_arrival_order_each_when_its_tokens_are_due() {
    let server = Server::start();
    let mut con = server.connect();
    let start = Instant::now();
    // One token, refilled every second: taken now, so waiter i is due
    // (i + 1) s after this call. Each waiter must be waiting before it is
    // due: the first has a second to line up.
    const PERIOD: i64 = 1000;
    assert_eq!(
        ints(&mut con, format!("RL.TOKENBUCKET k 1 1 {PERIOD}")),
        [1, 1, 0, 0, PERIOD]
    );
    let line = format!("RL.TOKENBUCKET k 1 1 {PERIOD} WAIT 5000");
    let waiters = line_up(&server, &mut con, &line, "buckets", 4, start);
    // Four tokens of debt, less those refilled since (none unless lining
    // up took a period).
    let debt = tokens(&mut con, "k");
    let refilled = (start.elapsed().as_millis() / PERIOD as u128) as i64;
    assert!((-4..=-4 + refilled).contains(&debt), "debt: {debt}");
    let mut answered = Vec::new();
    for (i, handle) in waiters.into_iter().enumerate() {
        let (reply, at) = handle.join().unwrap();
        let due = Duration::from_millis(PERIOD as u64 * (i as u64 + 1));
        assert_eq!(&reply[..4], [1, 1, 0, 0], "waiter {i}: {reply:?}");
        // At waiter i's answer, 3 - i waiters are still owed a token; the
        // bucket is full that much sooner as the answer came late.
        let reset = PERIOD * (4 - i as i64);
        let late = at.saturating_sub(due).as_millis() as i64;
        assert!(
            reply[4] <= reset && reply[4] + late + PERIOD >= reset,
            "waiter {i}, {late} ms late: {reply:?}"
        );
        // The clock the server read may be up to 1 ms behind `start`.
        assert!(
            at + Duration::from_millis(1) >= due,
            "waiter {i} early: {at:?}"
        );
        assert!(at <= due + LATE, "waiter {i} late: {at:?}");
        eprintln!("waiter {i}: due {due:?}, answered after {at:?}");
        answered.push(at);
    }
    assert!(
        answered.windows(2).all(|pair| pair[0] <= pair[1]),
        "answered in arrival order: {answered:?}"
    );
    until_waiting(&mut con, 0);
    until_waits(&mut con, "total=4,granted=4,timedout=0,refunded=0");
}

#[test]
fn plain_calls_queue_behind_the_debt_of_waiters() {
    // A token every 2 s: the waiter must be waiting, and the debt read,
    // before the first comes.
    let (_server, mut con, waiting_call, start) = one_waiting(
        "RL.COST q 1 1 2000 1",
        "RL.COST q 1 1 2000 1 WAIT 5000",
        "buckets",
    );
    // The waiter's token comes at +2000 ms, this call's at +4000 ms (from
    // the setup call, `elapsed` ago at most).
    let plain = ints(&mut con, "RL.COST q 1 1 2000 1");
    let elapsed = start.elapsed().as_millis() as i64;
    assert_eq!(&plain[..3], [0, 1, 0]);
    assert!(
        plain[3] + elapsed + 1 >= 4000 && plain[3] <= 4000,
        "{plain:?} {elapsed} ms after the setup"
    );
    assert_eq!(tokens(&mut con, "q"), -1);
    let (reply, at) = waiting_call.join().unwrap();
    assert_eq!(&reply[..4], [1, 1, 0, 0]);
    assert!(at + Duration::from_millis(1) >= Duration::from_millis(2000));
    // A second waiter now queues a full period behind the first one: not
    // answered before +4000 ms.
    let reply = ints(&mut con, "RL.TOKENBUCKET q 1 1 2000 WAIT 5000");
    let at = start.elapsed();
    assert_eq!(&reply[..4], [1, 1, 0, 0]);
    assert!(
        at + Duration::from_millis(1) >= Duration::from_millis(4000),
        "{at:?}"
    );
}

#[test]
fn a_call_that_would_wait_beyond_its_timeout_is_denied_at_once_writing_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    ints(&mut con, "RL.TOKENBUCKET d 1 1 10000");
    let before = dump(&mut con, b"d");
    let start = Instant::now();
    let reply = ints(&mut con, "RL.TOKENBUCKET d 1 1 10000 WAIT 5000");
    assert_eq!(&reply[..3], [0, 1, 0]);
    assert!(reply[3] > 5000, "{reply:?}");
    // A cost above capacity never comes due.
    assert_eq!(
        ints(&mut con, "RL.TOKENBUCKET d 1 1 10000 COST 2 WAIT 60000")[3],
        -1
    );
    // A bucket that never refills.
    ints(&mut con, "RL.TOKENBUCKET never 1 0 1000");
    assert_eq!(
        ints(&mut con, "RL.TOKENBUCKET never 1 0 1000 WAIT 100")[3],
        -1
    );
    // An allowed call is answered at once, as without WAIT.
    assert_eq!(
        ints(&mut con, "RL.RESERVE fresh 5 1 1000 2 1000 WAIT 100")[..5],
        [1, 5, 3, 0, 2000]
    );
    assert!(start.elapsed() < LATE, "answered at once");
    assert_eq!(dump(&mut con, b"d"), before, "nothing written");
    assert_eq!(
        waits(&mut con),
        "total=0,granted=0,timedout=0,refunded=0,waited_ms=0"
    );
}

#[test]
fn a_waiter_that_disconnects_gets_its_cost_back_on_master_and_replica() {
    let (master, replica) = start_pair();
    let mut con = master.connect();
    let setup = Instant::now();
    ints(&mut con, "RL.TOKENBUCKET r 2 1 60000 COST 2");
    // A client that gives up after 300 ms, and disconnects.
    let give_up = |line: &str| {
        let mut leaving = master.connect();
        let timeout = Some(Duration::from_millis(300));
        leaving.set_read_timeout(timeout).unwrap();
        assert!(call(&mut leaving, line).is_err(), "{line} waits");
    };
    give_up("RL.TOKENBUCKET r 2 1 60000 WAIT 60000");
    // A reservation that waits is cancelled on disconnection.
    give_up("RL.RESERVE r 2 1 60000 1 1000 WAIT 60000");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !waits(&mut con).contains("refunded=2") {
        assert!(Instant::now() < deadline, "no refund: {}", waits(&mut con));
        sleep(Duration::from_millis(10));
    }
    until_waiting(&mut con, 0);
    assert_eq!(tokens(&mut con, "r"), 0, "the debt is given back");
    // The next waiter is due as if the others had never come: a period
    // after the setup call, `elapsed` ago at most.
    let reply = ints(&mut con, "RL.TOKENBUCKET r 2 1 60000 WAIT 10");
    let elapsed = setup.elapsed().as_millis() as i64;
    assert_eq!(&reply[..3], [0, 2, 0]);
    assert!(
        reply[3] <= 60000 && reply[3] + elapsed + 1 >= 60000,
        "{reply:?} {elapsed} ms after the setup"
    );
    wait_for_replica(&mut con);
    let mut replica_con = replica.connect();
    assert_eq!(dump(&mut replica_con, b"r"), dump(&mut con, b"r"));
    assert_eq!(
        expire_time(&mut replica_con, b"r"),
        expire_time(&mut con, b"r")
    );
}

#[test]
fn the_replica_holds_the_masters_state_while_and_after_clients_wait() {
    let (master, replica) = start_pair();
    let mut con = master.connect();
    let start = Instant::now();
    // Both emptied, a token a second: the waiters, costing 3, 2 and 1 on
    // b and 2 each on r, are due 2 s to 6 s from now, each well after it
    // lines up.
    ints(&mut con, "RL.TOKENBUCKET {a}b 3 1 1000 COST 3");
    ints(&mut con, "RL.RESERVE {a}r 3 1 1000 3 60000");
    let mut handles = Vec::new();
    for i in 0..3 {
        handles.push(waiter(
            &master,
            format!("RL.TOKENBUCKET {{a}}b 3 1 1000 WAIT 10000 COST {}", 3 - i),
            start,
        ));
        handles.push(waiter(
            &master,
            "RL.RESERVE {a}r 3 1 1000 2 60000 WAIT 10000".to_owned(),
            start,
        ));
        until_waiting(&mut con, 2 * (i + 1));
    }
    let keys: [&[u8]; 2] = [b"{a}b", b"{a}r"];
    let states = |con: &mut Connection| keys.map(|k| (dump(con, k), expire_time(con, k)));
    wait_for_replica(&mut con);
    let mut replica_con = replica.connect();
    assert_eq!(states(&mut replica_con), states(&mut con), "while waiting");
    for handle in handles {
        let (reply, _) = handle.join().unwrap();
        assert_eq!(&reply[..4], [1, 3, 0, 0], "{reply:?}");
    }
    wait_for_replica(&mut con);
    assert_eq!(states(&mut replica_con), states(&mut con), "after");
    let restored: String = info_field(&mut replica_con, "rl", "rl_restorestate");
    assert!(restored.starts_with("calls=6,"), "{restored}");
}

#[test]
fn a_waiting_reservation_gets_its_id_and_its_lease_counts_from_the_answer() {
    let server = Server::start();
    let mut con = server.connect();
    let called = server_ms(&mut con);
    ints(&mut con, "RL.RESERVE l 1 1 300 1 100");
    let reply = ints(&mut con, "RL.RESERVE l 1 1 300 1 10000 WAIT 2000");
    assert_eq!(&reply[..4], [1, 1, 0, 0]);
    let id = reply[5];
    assert!(id > called * 1024, "{reply:?}");
    // The key lives until the reservation's end: 10 s after its answer.
    assert!(expire_time(&mut con, b"l") >= called + 300 + 10000, "TTL");
    assert_eq!(ints(&mut con, format!("RL.CANCEL l {id}"))[0], 1);
}

#[test]
fn no_call_waits_inside_a_transaction_a_script_or_with_at() {
    let server = Server::start();
    let mut con = server.connect();
    // The token is due in 10 s, within each call's WAIT, and not back
    // before the last check.
    ints(&mut con, "RL.TOKENBUCKET m 1 1 10000");
    let start = Instant::now();
    let exec: Vec<Vec<i64>> = redis::pipe()
        .atomic()
        .add_command(command("RL.TOKENBUCKET m 1 1 10000 WAIT 20000"))
        .query(&mut con)
        .unwrap();
    assert_eq!(&exec[0][..3], [0, 1, 0], "denied at once in MULTI");
    let script = "return redis.call('RL.TOKENBUCKET', 'm', 1, 1, 10000, 'WAIT', 20000)";
    let reply = ints(&mut con, ["EVAL", script, "0"]);
    assert_eq!(&reply[..3], [0, 1, 0], "denied at once in a script");
    let now = server_ms(&mut con);
    let reply = ints(
        &mut con,
        format!("RL.TOKENBUCKET m 1 1 10000 WAIT 20000 AT {now}"),
    );
    assert_eq!(&reply[..3], [0, 1, 0], "denied at once with AT");
    assert!(start.elapsed() < LATE, "none waited");
    assert_eq!(tokens(&mut con, "m"), 0, "none took a debt");
    assert!(waits(&mut con).starts_with("total=0,"));
}

#[test]
fn wait_is_refused_where_it_does_not_apply_and_out_of_range() {
    let server = Server::start();
    let mut con = server.connect();
    let not_taken = "ERR WAIT is taken only by RL.TOKENBUCKET, RL.COST, RL.RESERVE, RL.ACQUIRE and RL.ALL over TOKENBUCKET, RESERVE and ACQUIRE specs";
    for line in [
        "RL.SLIDELOG k 10 1000 WAIT 10",
        "RL.WINDOW k 10 1000 WAIT 10",
        "RL.QUOTA k 10 day WAIT 10",
        "RL.RELEASE k 1 WAIT 10",
        "RL.SETTLE k 1 1 WAIT 10",
        "RL.INSPECT k WAIT 10",
        "RL.ALL 1 k SLIDELOG 1 1000 WAIT 10",
        "RL.ALL 2 k j TOKENBUCKET 1 1 1000 WINDOW 1 1000 COST 1 wait 10",
        "RL.ALL 1 k QUOTA 10 day WAIT 10",
    ] {
        assert_eq!(error(&mut con, line), not_taken, "{line}");
    }
    let range = "ERR WAIT timeout_ms must be an integer from 1 to 60000";
    for value in ["0", "60001", "-1", "ten", "1.5"] {
        let line = format!("RL.TOKENBUCKET k 1 1 1000 WAIT {value}");
        assert_eq!(error(&mut con, &line), range, "{line}");
    }
    for (line, expected) in [
        ("RL.COST k 1 1 1000 1 WAIT", "ERR option WAIT needs a value"),
        (
            "RL.RESERVE k 1 1 1000 1 10 WAIT 5 WAIT 5",
            "ERR option WAIT given more than once",
        ),
        ("CONFIG SET rl.max-wait-ms 100", ""),
        (
            "RL.TOKENBUCKET k 1 1 1000 WAIT 101",
            "ERR WAIT timeout_ms must be an integer from 1 to 100",
        ),
    ] {
        match expected {
            "" => query::<()>(&mut con, line),
            _ => assert_eq!(error(&mut con, line), expected, "{line}"),
        }
    }
    assert_eq!(
        ints(&mut con, "RL.TOKENBUCKET k 1 1 1000 WAIT 100"),
        [1, 1, 0, 0, 1000]
    );
    assert!(error(&mut con, "CONFIG SET rl.max-wait-ms 0").contains("rl.max-wait-ms"));
}

#[test]
fn client_unblock_does_not_interrupt_a_waiter() {
    // The waiter is due in 2 s: time enough to find it and unblock it.
    let (_server, mut con, waiting_call, _) = one_waiting(
        "RL.TOKENBUCKET u 1 1 2000",
        "RL.TOKENBUCKET u 1 1 2000 WAIT 5000",
        "buckets",
    );
    let id = blocked_client(&mut con);
    assert_eq!(
        query::<i64>(&mut con, format!("CLIENT UNBLOCK {id} TIMEOUT")),
        0
    );
    let (reply, at) = waiting_call.join().unwrap();
    assert_eq!(&reply[..4], [1, 1, 0, 0]);
    assert!(at + Duration::from_millis(1) >= Duration::from_millis(2000));
}

#[test]
fn a_master_turned_replica_drops_its_waiters_and_gives_nothing_back() {
    let master = Server::start();
    let new_master = Server::start();
    let mut con = master.connect();
    ints(&mut con, "RL.TOKENBUCKET f 1 1 30000");
    let mut waiting_con = master.connect();
    let waiting_call =
        spawn(move || call(&mut waiting_con, "RL.TOKENBUCKET f 1 1 30000 WAIT 50000"));
    until_waiting(&mut con, 1);
    query::<()>(&mut con, format!("REPLICAOF 127.0.0.1 {}", new_master.port));
    let answer = waiting_call
        .join()
        .unwrap()
        .expect_err("unblocked with an error");
    assert!(answer.to_string().contains("UNBLOCKED"), "{answer}");
    until_waiting(&mut con, 0);
    // A refund would run from a timer right after the disconnection: give
    // it time to show, were there one.
    sleep(Duration::from_millis(200));
    assert!(
        waits(&mut con).contains("refunded=0"),
        "{}",
        waits(&mut con)
    );
    assert!(
        info_field(&mut con, "rl", "rl_restorestate").starts_with("calls=0,"),
        "nothing written on the demoted master"
    );
}

#[test]
fn a_released_slot_goes_to_the_first_lease_waiter_in_line() {
    let server = Server::start();
    let mut con = server.connect();
    let held = ints(&mut con, "RL.ACQUIRE slots 1 60000")[5];
    let start = Instant::now();
    let line = "RL.ACQUIRE slots 1 60000 WAIT 20000";
    let waiters = line_up(&server, &mut con, line, "leases", 3, start);
    let mut release = held;
    for (i, handle) in waiters.into_iter().enumerate() {
        // No later call takes the slot ahead of the line.
        assert_eq!(ints(&mut con, "RL.ACQUIRE slots 1 60000")[0], 0);
        assert_eq!(
            query::<Vec<Value>>(&mut con, "RL.ALL 1 slots ACQUIRE 1 60000")[0],
            Value::Int(0)
        );
        assert_eq!(int(&mut con, format!("RL.RELEASE slots {release}")), 1);
        let (reply, _) = handle.join().unwrap();
        assert_eq!(&reply[..5], [1, 1, 0, 0, 60000], "waiter {i}: {reply:?}");
        assert!(reply[5] > release, "a new lease id");
        release = reply[5];
        until_waiting_on(&mut con, "leases", 2 - i as i64);
    }
    until_waits(&mut con, "total=3,granted=3,timedout=0,refunded=0");
}

#[test]
fn a_lease_reaching_its_end_or_shortened_or_deleted_hands_its_slot_over() {
    // The held lease ends in 2 s: time enough for the waiter to line up.
    let (server, mut con, first, _) = one_waiting(
        "RL.ACQUIRE e 1 2000",
        "RL.ACQUIRE e 1 60000 WAIT 5000",
        "leases",
    );
    let (reply, at) = first.join().unwrap();
    assert_eq!(&reply[..5], [1, 1, 0, 0, 60000]);
    assert!(
        at + Duration::from_millis(1) >= Duration::from_millis(2000),
        "{at:?}"
    );
    assert!(at <= Duration::from_millis(2000) + LATE, "{at:?}");
    // RL.EXTEND shortening the lease.
    let later = Instant::now();
    let second = waiter(&server, "RL.ACQUIRE e 1 60000 WAIT 5000".to_owned(), later);
    until_waiting_on(&mut con, "leases", 1);
    assert_eq!(int(&mut con, format!("RL.EXTEND e {} 200", reply[5])), 1);
    let (reply, at) = second.join().unwrap();
    assert_eq!(reply[0], 1);
    assert!(
        at + Duration::from_millis(1) >= Duration::from_millis(200),
        "{at:?}"
    );
    // The key deleted.
    let third = waiter(&server, "RL.ACQUIRE e 1 60000 WAIT 5000".to_owned(), later);
    until_waiting_on(&mut con, "leases", 1);
    assert_eq!(int(&mut con, "DEL e"), 1);
    let (reply, _) = third.join().unwrap();
    assert_eq!(&reply[..5], [1, 1, 0, 0, 60000]);
    assert_eq!(ints(&mut con, "RL.ACQUIRE e 1 60000")[0], 0, "held");
}

#[test]
fn a_lease_waiter_times_out_or_is_unblocked_denied_and_a_leaver_takes_no_slot() {
    let server = Server::start();
    let mut con = server.connect();
    ints(&mut con, "RL.ACQUIRE to 1 60000");
    let start = Instant::now();
    let reply = ints(&mut con, "RL.ACQUIRE to 1 60000 WAIT 300");
    let at = start.elapsed();
    assert_eq!(&reply[..3], [0, 1, 0], "{reply:?}");
    assert_eq!(reply[5], 0, "no id");
    assert!(reply[3] > 58000 && reply[3] == reply[4], "{reply:?}");
    assert!(at >= Duration::from_millis(300) && at < Duration::from_millis(300) + LATE);
    // CLIENT UNBLOCK answers as a timeout; on Redis 7.0, where a client
    // answered and unblocked in one turn would never get its reply, it does
    // not interrupt a lease waiter, answered at its timeout. An answer
    // within 3 s, a second before that timeout, came from the unblocking.
    let unblockable = server_version(&mut con) >= (7, 2);
    let unblocked = waiter(
        &server,
        "RL.ACQUIRE to 1 60000 WAIT 4000".to_owned(),
        Instant::now(),
    );
    until_waiting_on(&mut con, "leases", 1);
    let id = blocked_client(&mut con);
    let interrupted: i64 = query(&mut con, format!("CLIENT UNBLOCK {id}"));
    assert_eq!(interrupted, i64::from(unblockable));
    let (reply, at) = unblocked.join().unwrap();
    assert_eq!((reply[0], reply[5]), (0, 0), "{reply:?}");
    if unblockable {
        assert!(at < Duration::from_millis(3000), "{at:?}");
    } else {
        assert!(at >= Duration::from_millis(4000), "{at:?}");
    }
    // A waiter that disconnects leaves the line with nothing: it gives up
    // after 200 ms (the read timeout set once the free slot is taken).
    let mut leaving = server.connect();
    assert!(
        call(&mut leaving, "RL.ACQUIRE to 2 60000 WAIT 20000").is_ok(),
        "a free slot"
    );
    leaving
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(call(&mut leaving, "RL.ACQUIRE to 2 60000 WAIT 20000").is_err());
    drop(leaving);
    let deadline = Instant::now() + Duration::from_secs(10);
    while waiting_on(&mut con, "leases") != 0 {
        assert!(Instant::now() < deadline, "the leaver still waits");
        sleep(Duration::from_millis(10));
    }
    assert_eq!(ints(&mut con, "RL.ACQUIRE to 3 60000")[..3], [1, 3, 0]);
    until_waits(&mut con, "total=3,granted=0,timedout=2,refunded=1");
}

#[test]
fn a_granted_lease_is_replicated_and_notified_when_granted() {
    let (master, replica) = start_pair();
    let mut con = master.connect();
    let held = ints(&mut con, "RL.ACQUIRE g 1 60000")[5];
    let start = Instant::now();
    let waiting_call = waiter(&master, "RL.ACQUIRE g 1 60000 WAIT 10000".to_owned(), start);
    until_waiting_on(&mut con, "leases", 1);
    wait_for_replica(&mut con);
    let events = key_events(&master, "Ed", || {
        assert_eq!(int(&mut con, format!("RL.RELEASE g {held}")), 1);
        assert_eq!(waiting_call.join().unwrap().0[0], 1);
    });
    assert_eq!(events, ["rl.release g", "rl.acquire g"]);
    let mut con = master.connect();
    wait_for_replica(&mut con);
    let mut replica_con = replica.connect();
    assert_eq!(dump(&mut replica_con, b"g"), dump(&mut con, b"g"));
    assert_eq!(
        expire_time(&mut replica_con, b"g"),
        expire_time(&mut con, b"g")
    );
    // Waiting is the master's alone: in MULTI it does not wait.
    let exec: Vec<Vec<i64>> = redis::pipe()
        .atomic()
        .add_command(command("RL.ACQUIRE g 1 60000 WAIT 5000"))
        .query(&mut con)
        .unwrap();
    assert_eq!(exec[0][0], 0);
}

#[test]
fn a_bucket_waiter_sends_its_commands_event_when_it_takes_its_debt() {
    let server = Server::start();
    let events = key_events(&server, "Ed", || {
        let mut con = server.connect();
        ints(&mut con, "RL.TOKENBUCKET n 1 1 100");
        let reply = ints(&mut con, "RL.TOKENBUCKET n 1 1 100 WAIT 1000");
        assert_eq!(&reply[..4], [1, 1, 0, 0]);
    });
    assert_eq!(events, ["rl.tokenbucket n", "rl.tokenbucket n"]);
}
