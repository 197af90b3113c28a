//! WAIT on RL.ALL over TOKENBUCKET, RESERVE and ACQUIRE specs: errors;
//! calls allowed at once or denied at once (writing nothing); bucket debts
//! taken at once and answered when the last is due; calls short of a slot
//! waiting in the line of each ACQUIRE key, in arrival order with lease
//! waiters, until every slot is free; timeouts; disconnections before and
//! after admission; INFO; replicas equal to the master; no waiting where
//! Redis cannot block. Timings are asserted as "not before due" and
//! generous upper bounds only (CI machines are slow).

use std::thread::{sleep, spawn, JoinHandle};
use std::time::{Duration, Instant};

use redis::{Connection, Value};

use crate::common::wait::{
    blocked_client, counted_waits, inspect_field, until_waiting_on, waiting_on,
};
use crate::common::{
    call, command, dump, error, expire_time, int, ints, key_events, query, server_ms, start_pair,
    wait_for_replica, Line, Server,
};

/// A generous bound on how late an answer may come on a loaded machine.
const LATE: Duration = Duration::from_millis(1500);

/// RL.ALL's reply: allowed, retry_after_ms, and each spec's integers.
type AllReply = (i64, i64, Vec<Vec<i64>>);

fn parse_all(reply: &Value) -> AllReply {
    let Value::Array(items) = reply else {
        panic!("not an RL.ALL reply: {reply:?}");
    };
    let int = |v: &Value| -> i64 { redis::from_redis_value(v).unwrap() };
    let specs = items[2..]
        .iter()
        .map(|v| redis::from_redis_value(v).unwrap())
        .collect();
    (int(&items[0]), int(&items[1]), specs)
}

/// Runs an RL.ALL line; its reply.
fn all(con: &mut Connection, line: impl Line) -> AllReply {
    parse_all(&query::<Value>(con, line))
}

/// Sends the RL.ALL `line` on a connection of its own; the reply and when
/// it came, measured from `start`.
fn waiter(server: &Server, line: &str, start: Instant) -> JoinHandle<(AllReply, Duration)> {
    let mut con = server.connect();
    let line = line.to_owned();
    spawn(move || {
        let reply = all(&mut con, &line);
        (reply, start.elapsed())
    })
}

/// Sends the plain `line` (RL.ACQUIRE, RL.TOKENBUCKET) on a connection of
/// its own; its integers.
fn plain_waiter(server: &Server, line: &str) -> JoinHandle<Vec<i64>> {
    let mut con = server.connect();
    let line = line.to_owned();
    spawn(move || ints(&mut con, &line))
}

/// Asserts an answer came not before `due` and not much after it.
fn assert_on_time(at: Duration, due: Duration, what: &str) {
    // The clock the server read may be up to 1 ms behind the test's.
    assert!(
        at + Duration::from_millis(1) >= due,
        "{what} early: {at:?} < {due:?}"
    );
    assert!(at <= due + LATE, "{what} late: {at:?} > {due:?}");
}

/// Asserts `spec` (a spec's part of an RL.ALL reply, or an RL.ACQUIRE
/// reply) allows, with `limit` and `remaining`, and resets in `reset_ms`
/// or a little less (the reply may be built a few ms after the state);
/// with an id when it has six integers.
fn assert_granted(spec: &[i64], limit: i64, remaining: i64, reset_ms: i64) {
    assert_eq!(spec[..4], [1, limit, remaining, 0], "{spec:?}");
    let late = LATE.as_millis() as i64;
    assert!(
        (reset_ms - late..=reset_ms).contains(&spec[4]),
        "reset_after_ms about {reset_ms}: {spec:?}"
    );
    assert!(spec.len() == 5 || spec[5] > 0, "an id: {spec:?}");
}

/// The DUMP and expiry of each of `keys`.
fn states(con: &mut Connection, keys: &[&str]) -> Vec<(Option<Vec<u8>>, i64)> {
    keys.iter()
        .map(|k| (dump(con, k.as_bytes()), expire_time(con, k.as_bytes())))
        .collect()
}

#[test]
fn wait_is_refused_unless_every_spec_waits_and_out_of_range() {
    let server = Server::start();
    let mut con = server.connect();
    let not_taken = "ERR WAIT is taken only by RL.TOKENBUCKET, RL.COST, RL.RESERVE, RL.ACQUIRE \
                     and RL.ALL over TOKENBUCKET, RESERVE and ACQUIRE specs";
    for other in ["SLIDELOG 10 1000", "WINDOW 10 1000", "QUOTA 10 day"] {
        let line = format!("RL.ALL 2 a o TOKENBUCKET 5 1 1000 {other} WAIT 10");
        assert_eq!(error(&mut con, &line), not_taken, "{line}");
        let line = format!("RL.ALL 2 o a {other} ACQUIRE 2 1000 WAIT 10");
        assert_eq!(error(&mut con, &line), not_taken, "{line}");
    }
    let specs = "RL.ALL 3 a b c TOKENBUCKET 5 1 1000 RESERVE 5 1 1000 1000 ACQUIRE 2 1000";
    let range = "ERR WAIT timeout_ms must be an integer from 1 to 60000";
    for value in ["0", "60001", "-1", "ten"] {
        let line = format!("{specs} WAIT {value}");
        assert_eq!(error(&mut con, &line), range, "{line}");
    }
    assert_eq!(all(&mut con, format!("{specs} WAIT 60000")).0, 1);
    query::<()>(&mut con, "CONFIG SET rl.max-wait-ms 100");
    assert_eq!(
        error(&mut con, format!("{specs} WAIT 101")),
        "ERR WAIT timeout_ms must be an integer from 1 to 100"
    );
    assert_eq!(all(&mut con, format!("{specs} WAIT 100")).0, 1);
    assert_eq!(
        counted_waits(&mut con),
        "total=0,granted=0,timedout=0,refunded=0"
    );
}

#[test]
fn a_call_allowed_at_once_is_answered_at_once_as_without_wait() {
    let server = Server::start();
    let mut con = server.connect();
    let specs = "TOKENBUCKET 5 1 1000 RESERVE 5 1 1000 30000 ACQUIRE 2 30000 COSTS 2 3 1";
    let start = Instant::now();
    let waited = all(&mut con, format!("RL.ALL 3 b1 r1 s1 {specs} WAIT 5000"));
    assert!(start.elapsed() < LATE, "answered at once");
    let plain = all(&mut con, format!("RL.ALL 3 b2 r2 s2 {specs}"));
    let without_ids = |(allowed, retry, mut specs): AllReply| {
        for spec in &mut specs[1..] {
            assert!(spec[5] > 0, "an id: {spec:?}");
            spec[5] = 0;
        }
        (allowed, retry, specs)
    };
    let waited = without_ids(waited);
    assert_eq!(
        waited,
        (
            1,
            0,
            vec![
                vec![1, 5, 3, 0, 2000],
                vec![1, 5, 2, 0, 3000, 0],
                vec![1, 2, 1, 0, 30000, 0]
            ]
        )
    );
    assert_eq!(without_ids(plain), waited, "as without WAIT");
    assert_eq!(waiting_on(&mut con, "all"), 0);
    assert_eq!(
        counted_waits(&mut con),
        "total=0,granted=0,timedout=0,refunded=0"
    );
}

#[test]
fn a_bucket_not_due_within_the_timeout_or_never_is_denied_at_once_writing_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    let setup = Instant::now();
    ints(&mut con, "RL.TOKENBUCKET b 1 1 60000");
    ints(&mut con, "RL.RESERVE r 5 1 10000 5 60000");
    ints(&mut con, "RL.ACQUIRE s 1 60000");
    let keys = ["b", "r", "s", "free", "fresh"];
    let before = states(&mut con, &keys);
    let start = Instant::now();
    for (line, retry) in [
        // The bucket's token is due a minute after its setup, `elapsed`
        // ago at most.
        (
            "RL.ALL 2 b free TOKENBUCKET 1 1 60000 ACQUIRE 1 60000 WAIT 5000",
            None,
        ),
        // The reservation's is due in 10 s, and the slot is held besides.
        (
            "RL.ALL 2 r s RESERVE 5 1 10000 60000 ACQUIRE 1 60000 WAIT 5000",
            Some(9000..=60000),
        ),
        // A cost above capacity never comes.
        (
            "RL.ALL 2 fresh free TOKENBUCKET 2 1 100 ACQUIRE 1 60000 COSTS 3 1 WAIT 60000",
            Some(-1..=-1),
        ),
        (
            "RL.ALL 2 fresh s RESERVE 2 1 100 1000 ACQUIRE 1 60000 COSTS 3 1 WAIT 60000",
            Some(-1..=-1),
        ),
    ] {
        let (allowed, retry_after, _) = all(&mut con, line);
        let elapsed = setup.elapsed().as_millis() as i64;
        let retry = retry.unwrap_or(60000 - elapsed - 1..=60000);
        assert_eq!(allowed, 0, "{line}");
        assert!(
            retry.contains(&retry_after),
            "{line}: {retry_after}, {elapsed} ms after the setup"
        );
    }
    assert!(start.elapsed() < LATE, "answered at once");
    assert_eq!(states(&mut con, &keys), before, "nothing written");
    assert_eq!(inspect_field(&mut con, "b", "tokens").unwrap(), 0);
    assert_eq!(inspect_field(&mut con, "s", "live").unwrap(), 1);
    assert_eq!(waiting_on(&mut con, "all"), 0);
    assert_eq!(
        counted_waits(&mut con),
        "total=0,granted=0,timedout=0,refunded=0"
    );
}

#[test]
fn debts_due_within_the_timeout_are_taken_at_once_and_answered_when_the_last_is_due() {
    let server = Server::start();
    let mut con = server.connect();
    let start = Instant::now();
    let called = server_ms(&mut con);
    // One token due in 2.4 s, two in 4 s: time enough to read the debts
    // before the first token comes back.
    ints(&mut con, "RL.TOKENBUCKET tb 1 1 2400");
    ints(&mut con, "RL.TOKENBUCKET rs 2 1 2000 COST 2");
    let line = "RL.ALL 3 tb rs sl TOKENBUCKET 1 1 2400 RESERVE 2 1 2000 20000 ACQUIRE 2 10000 \
                COSTS 1 2 1 WAIT 8000";
    let handle = waiter(&server, line, start);
    until_waiting_on(&mut con, "all", 1);
    // Admitted at once: the debts taken, the slot taken.
    assert_eq!(inspect_field(&mut con, "tb", "tokens").unwrap(), -1);
    assert_eq!(inspect_field(&mut con, "rs", "tokens").unwrap(), -2);
    assert_eq!(inspect_field(&mut con, "sl", "live").unwrap(), 1);
    let ((allowed, retry, specs), at) = handle.join().unwrap();
    let answered = server_ms(&mut con);
    assert_on_time(at, Duration::from_millis(4000), "the answer");
    assert_eq!((allowed, retry, specs.len()), (1, 0, 3), "{specs:?}");
    assert_eq!(specs[0][..4], [1, 1, 0, 0], "{specs:?}");
    assert!((0..=2400).contains(&specs[0][4]), "{specs:?}");
    assert_eq!(specs[0].len(), 5, "no id for a TOKENBUCKET spec");
    assert_eq!(specs[1][..4], [1, 2, 0, 0], "{specs:?}");
    assert!((0..=4000).contains(&specs[1][4]), "{specs:?}");
    assert_granted(&specs[2], 2, 1, 10000);
    let (reservation, lease) = (specs[1][5], specs[2][5]);
    assert!(reservation > 0 && lease > 0, "{specs:?}");
    // Its lease and reservation count from its answer, not its call.
    let lease_end = inspect_field(&mut con, "sl", "next_end_ms").unwrap();
    assert!(
        lease_end >= called + 4000 + 10000 && lease_end <= answered + 10000,
        "lease ends {} ms after the call",
        lease_end - called
    );
    let reservation_end = expire_time(&mut con, b"rs");
    assert!(
        reservation_end >= called + 4000 + 20000 && reservation_end <= answered + 20000,
        "reservation ends {} ms after the call",
        reservation_end - called
    );
    assert_eq!(ints(&mut con, format!("RL.CANCEL rs {reservation}"))[0], 1);
    assert_eq!(int(&mut con, format!("RL.RELEASE sl {lease}")), 1);
    assert_eq!(waiting_on(&mut con, "all"), 0);
    assert_eq!(
        counted_waits(&mut con),
        "total=1,granted=1,timedout=0,refunded=0"
    );
}

#[test]
fn a_call_short_of_a_slot_waits_in_line_writing_nothing_until_one_is_released() {
    let server = Server::start();
    let mut con = server.connect();
    let held = ints(&mut con, "RL.ACQUIRE s 1 60000")[5];
    let before = states(&mut con, &["b", "s"]);
    let start = Instant::now();
    let line = "RL.ALL 2 b s TOKENBUCKET 5 1 60000 ACQUIRE 1 60000 WAIT 5000";
    let handle = waiter(&server, line, start);
    until_waiting_on(&mut con, "all", 1);
    assert_eq!(states(&mut con, &["b", "s"]), before, "nothing written");
    sleep(Duration::from_millis(200));
    assert_eq!(waiting_on(&mut con, "all"), 1, "still waiting");
    let released = server_ms(&mut con);
    let released_at = start.elapsed();
    assert_eq!(int(&mut con, format!("RL.RELEASE s {held}")), 1);
    let ((allowed, retry, specs), at) = handle.join().unwrap();
    let answered = server_ms(&mut con);
    assert!(at >= released_at && at <= released_at + LATE, "{at:?}");
    assert_eq!((allowed, retry), (1, 0), "{specs:?}");
    assert_granted(&specs[0], 5, 4, 60000);
    assert_granted(&specs[1], 1, 0, 60000);
    assert!(specs[1][5] > held, "a new lease id: {specs:?}");
    let lease_end = inspect_field(&mut con, "s", "next_end_ms").unwrap();
    assert!(
        lease_end >= released + 60000 && lease_end <= answered + 60000,
        "the lease counts from the answer"
    );
    assert_eq!(inspect_field(&mut con, "b", "tokens").unwrap(), 4);
    assert_eq!(ints(&mut con, "RL.ACQUIRE s 1 60000")[0], 0, "held");
    assert_eq!(waiting_on(&mut con, "all"), 0);
    assert_eq!(
        counted_waits(&mut con),
        "total=1,granted=1,timedout=0,refunded=0"
    );
}

#[test]
fn lease_waiters_and_rl_all_waiters_on_a_key_are_served_in_arrival_order() {
    let server = Server::start();
    let mut con = server.connect();
    let held = ints(&mut con, "RL.ACQUIRE q 1 60000")[5];
    let acquire = "RL.ACQUIRE q 1 60000 WAIT 4000";
    let first = plain_waiter(&server, acquire);
    until_waiting_on(&mut con, "leases", 1);
    let second = waiter(
        &server,
        "RL.ALL 2 b q TOKENBUCKET 10 1 60000 ACQUIRE 1 60000 WAIT 4000",
        Instant::now(),
    );
    until_waiting_on(&mut con, "all", 1);
    let third = plain_waiter(&server, acquire);
    until_waiting_on(&mut con, "leases", 2);
    assert_eq!(int(&mut con, format!("RL.RELEASE q {held}")), 1);
    let reply = first.join().unwrap();
    assert_granted(&reply, 1, 0, 60000);
    assert_eq!(waiting_on(&mut con, "all"), 1, "the second waits");
    assert_eq!(waiting_on(&mut con, "leases"), 1, "the third waits");
    assert_eq!(int(&mut con, format!("RL.RELEASE q {}", reply[5])), 1);
    let ((allowed, _, specs), _) = second.join().unwrap();
    assert_eq!(allowed, 1, "the second: {specs:?}");
    assert_granted(&specs[1], 1, 0, 60000);
    assert_eq!(waiting_on(&mut con, "leases"), 1, "the third waits");
    assert_eq!(int(&mut con, format!("RL.RELEASE q {}", specs[1][5])), 1);
    let reply = third.join().unwrap();
    assert_granted(&reply, 1, 0, 60000);
    assert_eq!(inspect_field(&mut con, "b", "tokens").unwrap(), 9);
    assert_eq!(
        counted_waits(&mut con),
        "total=3,granted=3,timedout=0,refunded=0"
    );
}

#[test]
fn a_call_is_admitted_only_with_no_lease_waiter_ahead_and_every_slot_free() {
    let server = Server::start();
    let mut con = server.connect();
    let held_x = ints(&mut con, "RL.ACQUIRE x 1 60000")[5];
    let held_y = ints(&mut con, "RL.ACQUIRE y 1 60000")[5];
    // A lease waiter stands first in y's line.
    let lease_waiter = plain_waiter(&server, "RL.ACQUIRE y 1 60000 WAIT 10000");
    until_waiting_on(&mut con, "leases", 1);
    let line = "RL.ALL 2 x y ACQUIRE 1 60000 ACQUIRE 1 60000 WAIT 10000";
    let handle = waiter(&server, line, Instant::now());
    until_waiting_on(&mut con, "all", 1);
    // x frees, y is held: the call waits.
    assert_eq!(int(&mut con, format!("RL.RELEASE x {held_x}")), 1);
    sleep(Duration::from_millis(200));
    assert_eq!(waiting_on(&mut con, "all"), 1, "y is held");
    assert_eq!(
        waiting_on(&mut con, "leases"),
        1,
        "the lease waiter waits for y"
    );
    assert_eq!(
        inspect_field(&mut con, "x", "live").unwrap(),
        0,
        "x is free"
    );
    // y frees: the lease waiter before it in y's line takes the slot.
    assert_eq!(int(&mut con, format!("RL.RELEASE y {held_y}")), 1);
    let reply = lease_waiter.join().unwrap();
    assert_granted(&reply, 1, 0, 60000);
    sleep(Duration::from_millis(200));
    assert_eq!(waiting_on(&mut con, "all"), 1, "y is held again");
    assert_eq!(waiting_on(&mut con, "leases"), 0);
    assert_eq!(int(&mut con, format!("RL.RELEASE y {}", reply[5])), 1);
    let ((allowed, retry, specs), _) = handle.join().unwrap();
    assert_eq!((allowed, retry), (1, 0), "{specs:?}");
    assert_granted(&specs[0], 1, 0, 60000);
    assert_granted(&specs[1], 1, 0, 60000);
    assert_eq!(inspect_field(&mut con, "x", "live").unwrap(), 1);
    assert_eq!(inspect_field(&mut con, "y", "live").unwrap(), 1);
    for (key, spec) in ["x", "y"].iter().zip(&specs) {
        assert_eq!(int(&mut con, format!("RL.RELEASE {key} {}", spec[5])), 1);
    }
}

#[test]
fn a_slot_the_call_cannot_use_yet_goes_to_the_waiters_behind_it() {
    let server = Server::start();
    let mut con = server.connect();
    let held_x = ints(&mut con, "RL.ACQUIRE x 1 60000")[5];
    let held_y = ints(&mut con, "RL.ACQUIRE y 1 60000")[5];
    let line = "RL.ALL 2 x y ACQUIRE 1 60000 ACQUIRE 1 60000 WAIT 10000";
    let handle = waiter(&server, line, Instant::now());
    until_waiting_on(&mut con, "all", 1);
    let behind = plain_waiter(&server, "RL.ACQUIRE x 1 60000 WAIT 10000");
    until_waiting_on(&mut con, "leases", 1);
    // x frees while y is held: the RL.ALL call cannot use it, the lease
    // waiter behind it in x's line gets it.
    assert_eq!(int(&mut con, format!("RL.RELEASE x {held_x}")), 1);
    let reply = behind.join().unwrap();
    assert_granted(&reply, 1, 0, 60000);
    assert_eq!(waiting_on(&mut con, "all"), 1, "it keeps waiting");
    // A later lease waiter on x stands behind it again; once y frees and
    // then x, the RL.ALL call, ahead in x's line, is admitted first.
    let later = plain_waiter(&server, "RL.ACQUIRE x 1 60000 WAIT 10000");
    until_waiting_on(&mut con, "leases", 1);
    assert_eq!(int(&mut con, format!("RL.RELEASE y {held_y}")), 1);
    sleep(Duration::from_millis(100));
    assert_eq!(waiting_on(&mut con, "all"), 1, "x is held");
    assert_eq!(int(&mut con, format!("RL.RELEASE x {}", reply[5])), 1);
    let ((allowed, retry, specs), _) = handle.join().unwrap();
    assert_eq!((allowed, retry), (1, 0), "{specs:?}");
    assert_eq!(waiting_on(&mut con, "leases"), 1, "the later one waits");
    assert_eq!(int(&mut con, format!("RL.RELEASE x {}", specs[0][5])), 1);
    assert_granted(&later.join().unwrap(), 1, 0, 60000);
}

#[test]
fn a_lease_reaching_its_end_or_its_key_deleted_or_expired_admits_a_waiter() {
    let server = Server::start();
    let mut con = server.connect();
    let start = Instant::now();
    ints(&mut con, "RL.ACQUIRE e 1 400");
    let line = "RL.ALL 2 b e TOKENBUCKET 5 1 60000 ACQUIRE 1 60000 WAIT 5000";
    let handle = waiter(&server, line, start);
    let ((allowed, _, specs), at) = handle.join().unwrap();
    assert_eq!(allowed, 1, "{specs:?}");
    assert_on_time(at, Duration::from_millis(400), "at the lease's end");
    for (i, end) in ["DEL e", "PEXPIRE e 50"].into_iter().enumerate() {
        let handle = waiter(&server, line, Instant::now());
        until_waiting_on(&mut con, "all", 1);
        query::<()>(&mut con, end);
        let ((allowed, _, specs), _) = handle.join().unwrap();
        assert_eq!(allowed, 1, "after {end}: {specs:?}");
        assert_granted(&specs[1], 1, 0, 60000);
        assert_eq!(
            specs[0][..3],
            [1, 5, 3 - i as i64],
            "after {end}: {specs:?}"
        );
    }
    assert_eq!(inspect_field(&mut con, "e", "live").unwrap(), 1);
    assert_eq!(
        counted_waits(&mut con),
        "total=3,granted=3,timedout=0,refunded=0"
    );
}

#[test]
fn a_call_still_in_line_at_its_timeout_is_denied_writing_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    ints(&mut con, "RL.ACQUIRE t 1 60000");
    let keys = ["b", "t"];
    let before = states(&mut con, &keys);
    let line = "RL.ALL 2 b t TOKENBUCKET 5 1 1000 ACQUIRE 1 60000";
    let start = Instant::now();
    let (allowed, retry, specs) = all(&mut con, format!("{line} WAIT 300"));
    let at = start.elapsed();
    assert_on_time(at, Duration::from_millis(300), "the timeout");
    // As a denied RL.ALL then.
    let plain = all(&mut con, line);
    assert_eq!(allowed, 0, "{specs:?}");
    assert!(retry > 58000 && retry <= plain.1 + LATE.as_millis() as i64);
    assert_eq!(specs[0], [1, 5, 5, 0, 0], "{specs:?}");
    assert_eq!(specs[1][..3], [0, 1, 0], "{specs:?}");
    assert_eq!(specs[1][5], 0, "no id: {specs:?}");
    assert_eq!(specs[0], plain.2[0]);
    assert_eq!(specs[1][..3], plain.2[1][..3]);
    assert_eq!(states(&mut con, &keys), before, "nothing written");
    assert_eq!(waiting_on(&mut con, "all"), 0);
    assert_eq!(
        counted_waits(&mut con),
        "total=1,granted=0,timedout=1,refunded=0"
    );
}

#[test]
fn a_call_admitted_too_late_for_its_tokens_is_denied_then_writing_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    let held = ints(&mut con, "RL.ACQUIRE s 1 60000")[5];
    // b's token is due in 6 s: within the call's 9 s. (The call must be
    // waiting, and the slot released, within 3 s of this, for b's next
    // token, due in 12 s, to come beyond the call's timeout.)
    ints(&mut con, "RL.TOKENBUCKET b 1 1 6000");
    let start = Instant::now();
    let line = "RL.ALL 2 b s TOKENBUCKET 1 1 6000 ACQUIRE 1 60000 WAIT 9000";
    let handle = waiter(&server, line, start);
    until_waiting_on(&mut con, "all", 1);
    // A bucket waiter takes that token: b's next is due in 12 s.
    let bucket_waiter = plain_waiter(&server, "RL.TOKENBUCKET b 1 1 6000 WAIT 7500");
    until_waiting_on(&mut con, "buckets", 1);
    assert_eq!(inspect_field(&mut con, "b", "tokens").unwrap(), -1);
    let before = states(&mut con, &["b"]);
    assert_eq!(int(&mut con, format!("RL.RELEASE s {held}")), 1);
    let ((allowed, retry, specs), at) = handle.join().unwrap();
    assert_eq!(allowed, 0, "{specs:?}");
    assert!(retry > 9000, "{retry}");
    assert_eq!(specs[0][..3], [0, 1, 0], "{specs:?}");
    assert_eq!(specs[1][..3], [1, 1, 1], "the slot is free: {specs:?}");
    assert!(
        at < Duration::from_millis(7500),
        "answered when the slot freed, not at its timeout: {at:?}"
    );
    assert_eq!(states(&mut con, &["b"])[0], before[0], "b untouched");
    assert!(
        matches!(call(&mut con, "RL.INSPECT s"), Ok(Value::Nil))
            || inspect_field(&mut con, "s", "live").unwrap() == 0,
        "no slot taken"
    );
    assert_eq!(bucket_waiter.join().unwrap()[0], 1);
    assert_eq!(
        counted_waits(&mut con),
        "total=2,granted=1,timedout=1,refunded=0"
    );
}

#[test]
fn a_call_that_disconnects_in_line_takes_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    let held = ints(&mut con, "RL.ACQUIRE d 1 60000")[5];
    let keys = ["b", "d"];
    let before = states(&mut con, &keys);
    let mut leaving = server.connect();
    leaving
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let line = "RL.ALL 2 b d TOKENBUCKET 5 1 1000 ACQUIRE 1 60000 WAIT 20000";
    assert!(call(&mut leaving, line).is_err(), "waits");
    assert_eq!(waiting_on(&mut con, "all"), 1);
    drop(leaving);
    until_waiting_on(&mut con, "all", 0);
    assert_eq!(states(&mut con, &keys), before, "nothing written");
    assert_eq!(int(&mut con, format!("RL.RELEASE d {held}")), 1);
    sleep(Duration::from_millis(100));
    assert_eq!(dump(&mut con, b"b"), None, "no bucket");
    assert_eq!(ints(&mut con, "RL.ACQUIRE d 1 60000")[..3], [1, 1, 0]);
    assert_eq!(
        counted_waits(&mut con),
        "total=1,granted=0,timedout=0,refunded=1"
    );
}

#[test]
fn a_call_that_disconnects_once_admitted_gets_everything_back_on_master_and_replica() {
    let (master, replica) = start_pair();
    let mut con = master.connect();
    // b's token is due in 30 s: the checks below run before it comes.
    ints(&mut con, "RL.TOKENBUCKET b 1 1 30000");
    let keys = ["b", "r", "s"];
    let mut leaving = master.connect();
    leaving
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let line = "RL.ALL 3 b r s TOKENBUCKET 1 1 30000 RESERVE 10 1 60000 60000 \
                ACQUIRE 2 60000 COSTS 1 4 1 WAIT 60000";
    assert!(call(&mut leaving, line).is_err(), "waits for b's token");
    // Admitted: the debt, the reservation and the lease taken.
    assert_eq!(waiting_on(&mut con, "all"), 1);
    assert_eq!(inspect_field(&mut con, "b", "tokens").unwrap(), -1);
    assert_eq!(inspect_field(&mut con, "r", "tokens").unwrap(), 6);
    assert_eq!(inspect_field(&mut con, "s", "live").unwrap(), 1);
    drop(leaving);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !counted_waits(&mut con).contains("refunded=1") {
        assert!(
            Instant::now() < deadline,
            "no refund: {}",
            counted_waits(&mut con)
        );
        sleep(Duration::from_millis(10));
    }
    assert_eq!(waiting_on(&mut con, "all"), 0);
    assert_eq!(
        inspect_field(&mut con, "b", "tokens").unwrap(),
        0,
        "the token back"
    );
    assert!(inspect_field(&mut con, "b", "reset_after_ms").unwrap() <= 30000);
    assert_eq!(
        inspect_field(&mut con, "r", "tokens").unwrap(),
        10,
        "the reservation cancelled"
    );
    assert!(
        matches!(call(&mut con, "RL.INSPECT s"), Ok(Value::Nil))
            || inspect_field(&mut con, "s", "live").unwrap() == 0,
        "the lease released"
    );
    assert_eq!(
        counted_waits(&mut con),
        "total=1,granted=0,timedout=0,refunded=1"
    );
    // The next call finds the bucket as if the other had never come.
    let reply = ints(&mut con, "RL.TOKENBUCKET b 1 1 30000 WAIT 10");
    assert_eq!(reply[..3], [0, 1, 0]);
    assert!(reply[3] <= 30000, "{reply:?}");
    wait_for_replica(&mut con);
    assert_eq!(
        states(&mut replica.connect(), &keys),
        states(&mut con, &keys),
        "the replica"
    );
}

#[test]
fn the_replica_holds_the_masters_state_while_and_after_calls_wait() {
    let (master, replica) = start_pair();
    let mut con = master.connect();
    let mut replica_con = replica.connect();
    let keys = ["b", "r", "s"];
    let held = ints(&mut con, "RL.ACQUIRE s 1 60000")[5];
    // A token every 2 s: the debtor below must be waiting before the first.
    ints(&mut con, "RL.TOKENBUCKET b 2 1 2000 COST 2");
    let start = Instant::now();
    // One call in s's line, one taking debts at once.
    let in_line = waiter(
        &master,
        "RL.ALL 3 b r s TOKENBUCKET 2 1 2000 RESERVE 5 1 60000 30000 ACQUIRE 1 60000 WAIT 10000",
        start,
    );
    until_waiting_on(&mut con, "all", 1);
    let debtor = waiter(
        &master,
        "RL.ALL 2 b r TOKENBUCKET 2 1 2000 RESERVE 5 1 60000 30000 COSTS 1 2 WAIT 10000",
        start,
    );
    until_waiting_on(&mut con, "all", 2);
    wait_for_replica(&mut con);
    assert_eq!(
        states(&mut replica_con, &keys),
        states(&mut con, &keys),
        "while waiting"
    );
    assert_eq!(int(&mut con, format!("RL.RELEASE s {held}")), 1);
    for handle in [in_line, debtor] {
        let ((allowed, _, specs), _) = handle.join().unwrap();
        assert_eq!(allowed, 1, "{specs:?}");
    }
    assert_eq!(
        inspect_field(&mut con, "r", "tokens").unwrap(),
        2,
        "3 tokens reserved"
    );
    wait_for_replica(&mut con);
    assert_eq!(
        states(&mut replica_con, &keys),
        states(&mut con, &keys),
        "after"
    );
}

#[test]
fn no_rl_all_waits_inside_a_transaction_a_script_or_with_at() {
    let server = Server::start();
    let mut con = server.connect();
    ints(&mut con, "RL.ACQUIRE s 1 60000");
    // b's token is due in 1 s, within every WAIT below.
    ints(&mut con, "RL.TOKENBUCKET b 1 1 1000");
    let keys = ["b", "s"];
    let before = states(&mut con, &keys);
    let start = Instant::now();
    for line in [
        "RL.ALL 1 s ACQUIRE 1 60000 WAIT 5000",
        "RL.ALL 1 b TOKENBUCKET 1 1 1000 WAIT 5000",
        "RL.ALL 2 b s TOKENBUCKET 1 1 1000 ACQUIRE 1 60000 WAIT 5000",
    ] {
        let exec: Vec<Value> = redis::pipe()
            .atomic()
            .add_command(command(line))
            .query(&mut con)
            .unwrap();
        assert_eq!(parse_all(&exec[0]).0, 0, "denied at once in MULTI: {line}");
        let script = format!(
            "return redis.call('{}')",
            line.split(' ').collect::<Vec<_>>().join("', '")
        );
        let reply: Value = query(&mut con, ["EVAL", &script, "0"]);
        assert_eq!(parse_all(&reply).0, 0, "denied at once in a script: {line}");
        let now = server_ms(&mut con);
        let reply = all(&mut con, format!("{line} AT {now}"));
        assert_eq!(reply.0, 0, "denied at once with AT: {line}");
    }
    assert!(start.elapsed() < LATE, "none waited");
    assert_eq!(states(&mut con, &keys), before, "nothing written");
    assert_eq!(
        inspect_field(&mut con, "b", "tokens").unwrap(),
        0,
        "no debt"
    );
    assert_eq!(
        counted_waits(&mut con),
        "total=0,granted=0,timedout=0,refunded=0"
    );
}

#[test]
fn client_unblock_does_not_interrupt_a_waiting_call() {
    let server = Server::start();
    let mut con = server.connect();
    let held = ints(&mut con, "RL.ACQUIRE u 1 60000")[5];
    let line = "RL.ALL 1 u ACQUIRE 1 60000 WAIT 5000";
    let handle = waiter(&server, line, Instant::now());
    until_waiting_on(&mut con, "all", 1);
    let id = blocked_client(&mut con);
    assert_eq!(
        query::<i64>(&mut con, format!("CLIENT UNBLOCK {id} TIMEOUT")),
        0
    );
    assert_eq!(waiting_on(&mut con, "all"), 1);
    assert_eq!(int(&mut con, format!("RL.RELEASE u {held}")), 1);
    let ((allowed, _, specs), _) = handle.join().unwrap();
    assert_eq!(allowed, 1, "{specs:?}");
}

#[test]
fn an_admitted_call_sends_rl_all_events_for_its_keys() {
    let server = Server::start();
    let mut con = server.connect();
    let held = ints(&mut con, "RL.ACQUIRE s 1 60000")[5];
    let line = "RL.ALL 2 b s TOKENBUCKET 5 1 1000 ACQUIRE 1 60000 WAIT 5000";
    let handle = waiter(&server, line, Instant::now());
    until_waiting_on(&mut con, "all", 1);
    let events = key_events(&server, "Ed", || {
        assert_eq!(int(&mut con, format!("RL.RELEASE s {held}")), 1);
        assert_eq!(handle.join().unwrap().0 .0, 1);
    });
    assert_eq!(events, ["rl.release s", "rl.all b", "rl.all s"]);
}

#[test]
fn a_call_whose_key_changes_type_while_it_waits_gets_wrongtype_at_its_timeout() {
    let server = Server::start();
    let mut con = server.connect();
    ints(&mut con, "RL.ACQUIRE s 1 60000");
    let mut waiting = server.connect();
    // The SET must come before the timeout, 2 s away.
    let handle = spawn(move || {
        error(
            &mut waiting,
            "RL.ALL 2 b s TOKENBUCKET 5 1 1000 ACQUIRE 1 60000 WAIT 2000",
        )
    });
    until_waiting_on(&mut con, "all", 1);
    query::<()>(&mut con, "SET s taken");
    let text = handle.join().unwrap();
    assert!(
        text.starts_with("WRONGTYPE") && text.contains("key 2"),
        "{text}"
    );
    assert_eq!(dump(&mut con, b"b"), None, "nothing written");
    assert_eq!(waiting_on(&mut con, "all"), 0);
}
