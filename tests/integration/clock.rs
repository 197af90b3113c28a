//! Clock faults, simulated with AT: a server clock that steps backwards or
//! forwards never grants more than the contract allows, and never corrupts
//! state.

use crate::common;

use crate::common::{ints, query, Rng, Server};

const T: i64 = 1_700_000_000_000;

/// A time walk with jumps of up to an hour backwards and forwards.
fn jump(rng: &mut Rng, now: &mut i64) {
    *now += match rng.range(0, 9) {
        0 => -rng.range(1, 3_600_000),
        1 => rng.range(1, 3_600_000),
        _ => rng.range(0, 50),
    };
    *now = (*now).max(0);
}

#[test]
fn clock_jumps_never_grant_more_than_the_rate() {
    let server = Server::start();
    let mut con = server.connect();
    let mut rng = Rng::new(99);
    let (capacity, amount, period) = (20i64, 3i64, 1000i64);
    let (limit, window) = (15i64, 10_000i64);
    let mut now = T;
    let mut latest = T;
    let mut bucket_admitted = 0i64;
    let mut log_admitted: Vec<i64> = Vec::new();
    for _ in 0..5000 {
        jump(&mut rng, &mut now);
        let bucket = ints(&mut con, format!("RL.TOKENBUCKET b 20 3 1000 AT {now}"));
        bucket_admitted += bucket[0];
        let log = ints(&mut con, format!("RL.SLIDELOG l 15 10000 AT {now}"));
        latest = latest.max(now);
        if log[0] == 1 {
            // The log counts the call at the time it ran: never before its last write.
            let ran_at = log_admitted.last().map_or(now, |&last: &i64| now.max(last));
            log_admitted.push(ran_at);
        }
        assert!((0..=capacity).contains(&bucket[2]) && (0..=limit).contains(&log[2]));
    }
    // Effective time never runs backwards: the bucket refilled at most over
    // the span from the first call to the latest time seen.
    let most = capacity + amount * (latest - T) / period;
    assert!(bucket_admitted <= most, "{bucket_admitted} > {most}");
    // No window of the log's length ever admitted more than the limit.
    for (i, &start) in log_admitted.iter().enumerate() {
        let in_window = log_admitted[i..]
            .iter()
            .take_while(|&&t| t < start + window)
            .count() as i64;
        assert!(
            in_window <= limit,
            "{in_window} calls in the window from {start}"
        );
    }
    // State stays valid: it survives a reload exactly.
    let before: Vec<_> = ["b", "l"]
        .iter()
        .map(|k| common::dump(&mut con, k.as_bytes()))
        .collect();
    query::<()>(&mut con, "DEBUG RELOAD");
    let after: Vec<_> = ["b", "l"]
        .iter()
        .map(|k| common::dump(&mut con, k.as_bytes()))
        .collect();
    assert_eq!(before, after);
}
