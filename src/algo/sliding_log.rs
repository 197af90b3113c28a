//! Sliding log: counts the costs of the records whose time lies in
//! (now - window_ms, now].
//!
//! Rounding: none is needed, every quantity is a whole number of ms or units.

use super::record_log::RecordLog;
use super::{Evaluation, Snapshot, NEVER};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogParams {
    /// Most units admitted per window, >= 1.
    pub limit: i64,
    /// Window length in ms, >= 1.
    pub window_ms: i64,
}

/// What a log key holds: its records and the parameters of its last write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogState {
    pub params: LogParams,
    pub records: RecordLog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOutcome {
    pub evaluation: Evaluation,
    /// Whether the call writes: then [`record`] must be applied at `at_ms`.
    pub writes: bool,
    /// The time the call was evaluated at (`now`, or the last write if later).
    pub at_ms: i64,
}

/// Decides whether `cost` fits in the window ending at `now_ms`.
pub fn check(state: Option<&LogState>, params: &LogParams, now_ms: i64, cost: i64) -> LogOutcome {
    let records = state.map(|s| &s.records);
    let at_ms = records
        .and_then(RecordLog::newest_ms)
        .map_or(now_ms, |newest| now_ms.max(newest));
    let cutoff_ms = at_ms.saturating_sub(params.window_ms);
    let live = || {
        records
            .into_iter()
            .flat_map(RecordLog::iter)
            .skip_while(move |&(time, _)| time <= cutoff_ms)
    };
    // Only the records that left the window are read: amortized O(1) when
    // writes keep dropping them, and none while the oldest is still in the
    // window (the records' bytes are then not even touched).
    let stale: i128 = records
        .filter(|log| log.oldest_ms().is_some_and(|oldest| oldest <= cutoff_ms))
        .into_iter()
        .flat_map(RecordLog::iter)
        .take_while(|&(time, _)| time <= cutoff_ms)
        .map(|(_, cost)| i128::from(cost))
        .sum();
    let used = i128::from(records.map_or(0, RecordLog::total_cost)) - stale;
    let limit = i128::from(params.limit);
    let allowed = used + i128::from(cost) <= limit;
    let writes = allowed && cost > 0;

    let retry_after_ms = if allowed {
        0
    } else if cost > params.limit {
        NEVER
    } else {
        let excess = used + i128::from(cost) - limit;
        let mut freed = 0i128;
        live()
            .find(|&(_, c)| {
                freed += i128::from(c);
                freed >= excess
            })
            .map_or(NEVER, |(time, _)| expires_after(time, params, at_ms))
    };
    let remaining = |used: i128| i64::try_from((limit - used).max(0)).unwrap_or(i64::MAX);
    let newest_live = records
        .and_then(RecordLog::newest_ms)
        .filter(|&newest| newest > cutoff_ms);
    let before = Snapshot {
        remaining: remaining(used),
        reset_after_ms: newest_live.map_or(0, |time| expires_after(time, params, at_ms)),
    };
    let after = if writes {
        Snapshot {
            remaining: remaining(used + i128::from(cost)),
            reset_after_ms: params.window_ms,
        }
    } else {
        before
    };
    LogOutcome {
        evaluation: Evaluation {
            allowed,
            limit: params.limit,
            retry_after_ms,
            before,
            after,
        },
        writes,
        at_ms,
    }
}

/// What RL.INSPECT shows of a log, under the parameters of its last write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogView {
    pub used: i64,
    /// Live records (one per distinct ms).
    pub entries: i64,
    pub oldest_ms: Option<i64>,
    pub newest_ms: Option<i64>,
    pub reset_after_ms: i64,
}

/// Looks at a log at `now_ms` (not before its last write) without changing it.
pub fn inspect(state: &LogState, now_ms: i64) -> LogView {
    let params = &state.params;
    let at_ms = state
        .records
        .newest_ms()
        .map_or(now_ms, |newest| now_ms.max(newest));
    let cutoff_ms = at_ms.saturating_sub(params.window_ms);
    let mut view = LogView {
        used: 0,
        entries: 0,
        oldest_ms: None,
        newest_ms: None,
        reset_after_ms: 0,
    };
    for (time, cost) in state
        .records
        .iter()
        .skip_while(|&(time, _)| time <= cutoff_ms)
    {
        view.used = view.used.saturating_add(cost);
        view.entries += 1;
        view.oldest_ms.get_or_insert(time);
        view.newest_ms = Some(time);
    }
    view.reset_after_ms = view
        .newest_ms
        .map_or(0, |time| expires_after(time, params, at_ms));
    view
}

/// Applies an allowed call: drops what its window no longer holds and adds
/// the record.
pub fn record(state: &mut LogState, params: &LogParams, at_ms: i64, cost: i64) {
    state.params = *params;
    state
        .records
        .drop_through(at_ms.saturating_sub(params.window_ms));
    state.records.push(at_ms, cost);
}

/// Ms from `at_ms` until a record made at `time_ms` leaves the window.
fn expires_after(time_ms: i64, params: &LogParams, at_ms: i64) -> i64 {
    let end = i128::from(time_ms) + i128::from(params.window_ms) - i128::from(at_ms);
    i64::try_from(end).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        state: Option<LogState>,
    }

    impl Fake {
        fn new() -> Self {
            Fake { state: None }
        }
        fn call(&mut self, p: LogParams, at: i64, cost: i64) -> [i64; 5] {
            let outcome = check(self.state.as_ref(), &p, at, cost);
            if outcome.writes {
                let state = self.state.get_or_insert_with(|| LogState {
                    params: p,
                    records: RecordLog::default(),
                });
                record(state, &p, outcome.at_ms, cost);
            }
            outcome.evaluation.own_decision().as_array()
        }
    }

    fn params(limit: i64, window_ms: i64) -> LogParams {
        LogParams { limit, window_ms }
    }

    /// Against a plain list of every record ever written: what the window
    /// holds is recounted from scratch on each call, with windows changing
    /// between calls and times that go backwards (clamped to the newest).
    #[test]
    fn remaining_matches_a_recount_of_the_window() {
        let mut rng = crate::test_rng::Rng::new(0x2545_f491_4f6c_dd1d);
        for _ in 0..200 {
            let mut log = Fake::new();
            let mut written: Vec<(i64, i64)> = Vec::new();
            let mut now = 1_000_000;
            for _ in 0..60 {
                now += rng.below(400) as i64 - 50;
                let p = params(1 + rng.below(12) as i64, 1 + rng.below(1500) as i64);
                let cost = rng.below(4) as i64;
                let at = written.last().map_or(now, |&(newest, _)| now.max(newest));
                let cutoff = at - p.window_ms;
                let used: i64 = written
                    .iter()
                    .filter(|&&(time, _)| time > cutoff)
                    .map(|&(_, c)| c)
                    .sum();
                let [allowed, _, remaining, ..] = log.call(p, now, cost);
                assert_eq!(allowed == 1, used + cost <= p.limit);
                let used_after = if allowed == 1 { used + cost } else { used };
                assert_eq!(remaining, (p.limit - used_after).max(0));
                if allowed == 1 && cost > 0 {
                    // A write keeps only what is in its own window.
                    written.retain(|&(time, _)| time > cutoff);
                    written.push((at, cost));
                }
            }
        }
    }

    #[test]
    fn contract_example() {
        let p = params(3, 1000);
        let mut log = Fake::new();
        assert_eq!(log.call(p, 5000, 1), [1, 3, 2, 0, 1000]);
        assert_eq!(log.call(p, 5000, 1), [1, 3, 1, 0, 1000]);
        assert_eq!(log.call(p, 5500, 1), [1, 3, 0, 0, 1000]);
        assert_eq!(log.call(p, 5600, 1), [0, 3, 0, 400, 900]);
        assert_eq!(log.call(p, 6000, 1), [1, 3, 1, 0, 1000]);
        assert_eq!(log.call(p, 6000, 3), [0, 3, 1, 1000, 1000]);
    }

    #[test]
    fn inspect_agrees_with_a_peek() {
        let p = params(10, 1000);
        let mut log = Fake::new();
        for t in [100, 100, 400, 900] {
            log.call(p, t, 2);
        }
        let state = log.state.clone().expect("written");
        for t in [0, 900, 1099, 1100, 1400, 1899, 1900] {
            let view = inspect(&state, t);
            let peek = log.call(p, t, 0);
            assert_eq!(
                [10 - view.used, view.reset_after_ms],
                [peek[2], peek[4]],
                "at {t}"
            );
        }
        let view = inspect(&state, 1100);
        assert_eq!(
            (view.entries, view.oldest_ms, view.newest_ms),
            (2, Some(400), Some(900))
        );
        let empty = inspect(&state, 5000);
        assert_eq!(
            (empty.used, empty.entries, empty.oldest_ms, empty.newest_ms),
            (0, 0, None, None)
        );
    }

    #[test]
    fn peek_on_missing_log() {
        let outcome = check(None, &params(5, 1000), 42, 0);
        assert_eq!(
            outcome.evaluation.own_decision().as_array(),
            [1, 5, 5, 0, 0]
        );
        assert!(!outcome.writes);
    }

    #[test]
    fn cost_above_limit_never_fits() {
        assert_eq!(Fake::new().call(params(5, 1000), 0, 6), [0, 5, 5, -1, 0]);
    }

    #[test]
    fn two_calls_in_one_millisecond_count_twice() {
        let p = params(2, 1000);
        let mut log = Fake::new();
        log.call(p, 7, 1);
        log.call(p, 7, 1);
        assert_eq!(log.call(p, 7, 1), [0, 2, 0, 1000, 1000]);
    }

    #[test]
    fn time_never_runs_backwards() {
        let p = params(1, 1000);
        let mut log = Fake::new();
        log.call(p, 10_000, 1);
        let outcome = check(log.state.as_ref(), &p, 9_000, 1);
        assert_eq!(outcome.at_ms, 10_000);
        assert_eq!(
            outcome.evaluation.own_decision().as_array(),
            [0, 1, 0, 1000, 1000]
        );
    }

    #[test]
    fn retry_after_is_exactly_the_first_allowed_ms() {
        let p = params(10, 1000);
        let mut log = Fake::new();
        for t in 0..10 {
            log.call(p, t * 37, 1);
        }
        for cost in 1..=10 {
            let retry = log.call(p, 400, cost)[3];
            assert!(
                !check(log.state.as_ref(), &p, 400 + retry - 1, cost)
                    .evaluation
                    .allowed
            );
            assert!(
                check(log.state.as_ref(), &p, 400 + retry, cost)
                    .evaluation
                    .allowed
            );
        }
    }

    #[test]
    fn lowered_limit_reports_zero_remaining() {
        let mut log = Fake::new();
        for _ in 0..5 {
            log.call(params(5, 1000), 0, 1);
        }
        assert_eq!(log.call(params(2, 1000), 10, 0), [0, 2, 0, 990, 990]);
        assert_eq!(log.call(params(2, 1000), 10, 1), [0, 2, 0, 990, 990]);
    }

    #[test]
    fn a_write_drops_what_its_window_no_longer_holds() {
        let mut log = Fake::new();
        log.call(params(100, 10_000), 0, 5);
        log.call(params(100, 10_000), 5000, 5);
        // A narrower window counts only the newer record, and the write drops the older.
        assert_eq!(log.call(params(100, 1000), 5500, 1), [1, 100, 94, 0, 1000]);
        assert_eq!(log.state.as_ref().map(|s| s.records.len()), Some(2));
        // Widened again, it counts only what is still stored.
        assert_eq!(log.call(params(100, 10_000), 5500, 0)[2], 94);
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let max = i64::MAX;
        let mut log = Fake::new();
        assert_eq!(log.call(params(max, max), max, max), [1, max, 0, 0, max]);
        assert_eq!(log.call(params(max, max), max, 1), [0, max, 0, max, max]);
        assert_eq!(log.call(params(max, 1), max, 1), [0, max, 0, 1, 1]);
    }
}
