//! Waiting on a token bucket (`WAIT timeout_ms`): a call that would be
//! denied now but whose tokens come due within the timeout takes its cost at
//! once, as a debt (the bucket goes below zero, as an RL.SETTLE can leave
//! it), and is answered when the debt is repaid. Every later call sees the
//! debt, so waiters are answered in arrival order and plain calls queue
//! behind them. A waiter that goes away before its due time gets its cost
//! back ([`credit`]).

use super::leases::{self, AcquireError, AcquireOutcome, LeaseParams, LeaseState};
use super::token_bucket::{self, BucketOutcome, BucketParams, BucketState};
use super::{Decision, Evaluation, NEVER};

/// A call taken as a debt: what to store now, and when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debit {
    /// An allowed outcome whose write leaves the bucket `cost` lower (in
    /// debt, usually).
    pub outcome: BucketOutcome,
    /// The unix ms at which the tokens taken have come in: the answer's time.
    pub due_ms: i64,
}

/// The debit of `cost` at `now_ms` for a call that waits at most
/// `timeout_ms`: `None` when the call is allowed at once (no need to wait),
/// writes nothing (cost 0), can never be allowed, would be due more than
/// the timeout after `now_ms` (a bucket last written at a later time, with
/// `AT`, runs on from that time), or would take the bucket deeper than
/// 2^63-1 tokens of debt.
pub fn debit(
    state: Option<&BucketState>,
    params: &BucketParams,
    now_ms: i64,
    cost: i64,
    timeout_ms: i64,
) -> Option<Debit> {
    let denied = token_bucket::take(state, params, now_ms, cost);
    let wait_ms = denied.evaluation.retry_after_ms;
    if denied.evaluation.allowed || cost == 0 || wait_ms == NEVER {
        return None;
    }
    let at_ms = denied.at_ms;
    let due_ms = at_ms.checked_add(wait_ms)?;
    if due_ms.saturating_sub(now_ms) > timeout_ms {
        return None;
    }
    let period = i128::from(params.refill_period_ms);
    let level = state.map_or(i128::from(params.capacity) * period, |s| {
        s.level_at(params, at_ms)
    });
    let level_after = level.checked_sub(i128::from(cost) * period)?;
    if level_after < deepest(params) {
        return None;
    }
    let write = BucketState {
        params: *params,
        level: level_after,
        updated_ms: at_ms,
    };
    let after = token_bucket::take(Some(&write), params, at_ms, 0)
        .evaluation
        .after;
    Some(Debit {
        outcome: BucketOutcome {
            evaluation: Evaluation {
                allowed: true,
                retry_after_ms: 0,
                after,
                ..denied.evaluation
            },
            write: Some(write),
            at_ms,
        },
        due_ms,
    })
}

/// The answer of a waiter at `now_ms` (its due time, or a little after):
/// allowed, nothing remaining, no retry, and the bucket's reset as a peek
/// with the waiter's parameters reports it then.
pub fn answer(state: Option<&BucketState>, params: &BucketParams, now_ms: i64) -> Decision {
    let peek = token_bucket::take(state, params, now_ms, 0).evaluation;
    Decision {
        allowed: true,
        limit: params.capacity,
        remaining: 0,
        retry_after_ms: 0,
        reset_after_ms: peek.after.reset_after_ms,
    }
}

/// The bucket with `tokens` given back at `now_ms` (not before its last
/// write), under the parameters of its last write: capped at its capacity,
/// and at 2^63-1 tokens of debt when `tokens` is negative.
pub fn credit(state: &BucketState, tokens: i64, now_ms: i64) -> BucketState {
    let params = &state.params;
    let at_ms = now_ms.max(state.updated_ms);
    let period = i128::from(params.refill_period_ms);
    let full = i128::from(params.capacity) * period;
    let level = state
        .level_at(params, at_ms)
        .saturating_add(i128::from(tokens) * period);
    BucketState {
        params: *params,
        level: level.clamp(deepest(params), full),
        updated_ms: at_ms,
    }
}

/// What serving the clients waiting for a lease gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseGrants {
    /// The outcomes of the waiters granted, first in line first.
    pub granted: Vec<AcquireOutcome>,
    /// The leases after the grants (`None`: no key and nothing granted).
    pub state: Option<LeaseState>,
    /// When the earliest live lease ends: the next chance for the others.
    pub next_end_ms: Option<i64>,
}

/// Serves the clients waiting for a lease on one key at `now_ms`, in line:
/// each whose lease fits takes it (from now), up to the first that does
/// not, which keeps its place ahead of the others.
pub fn grant_leases(
    state: Option<&LeaseState>,
    line: &[LeaseParams],
    now_ms: i64,
) -> Result<LeaseGrants, AcquireError> {
    let mut state = state.cloned();
    let mut granted = Vec::new();
    for params in line {
        let outcome = leases::acquire(state.as_ref(), params, now_ms, 1)?;
        if outcome.opened.is_none() {
            break;
        }
        let stored = state.get_or_insert_with(|| LeaseState {
            limit: params.limit,
            updated_ms: outcome.at_ms,
            last_id: 0,
            leases: Vec::new(),
        });
        leases::record(stored, params, &outcome);
        granted.push(outcome);
    }
    let next_end_ms = state
        .as_ref()
        .and_then(|s| leases::inspect(s, now_ms).next_end_ms);
    Ok(LeaseGrants {
        granted,
        state,
        next_end_ms,
    })
}

/// The deepest debt a bucket holds: 2^63-1 tokens.
fn deepest(params: &BucketParams) -> i128 {
    -i128::from(i64::MAX) * i128::from(params.refill_period_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_000;

    fn params() -> BucketParams {
        BucketParams {
            capacity: 2,
            refill_amount: 1,
            refill_period_ms: 100,
        }
    }

    /// Calls on one bucket as the module makes them: plain calls store what
    /// they take; waiting calls store their debit and are due later.
    fn store(state: &mut Option<BucketState>, outcome: &BucketOutcome) {
        if let Some(written) = outcome.write {
            *state = Some(written);
        }
    }

    #[test]
    fn waiters_are_due_in_arrival_order_each_a_refill_apart() {
        let p = params();
        let mut state = None;
        for _ in 0..2 {
            let taken = token_bucket::take(state.as_ref(), &p, T, 1);
            assert!(taken.evaluation.allowed);
            store(&mut state, &taken);
        }
        let mut dues = Vec::new();
        for _ in 0..3 {
            let debit = debit(state.as_ref(), &p, T, 1, 1000).unwrap();
            assert!(debit.outcome.evaluation.allowed);
            store(&mut state, &debit.outcome);
            dues.push(debit.due_ms);
        }
        assert_eq!(dues, [T + 100, T + 200, T + 300]);
        assert_eq!(state.unwrap().level, -300, "three tokens of debt");
        let plain = token_bucket::take(state.as_ref(), &p, T + 50, 1);
        assert!(!plain.evaluation.allowed);
        assert_eq!(
            plain.evaluation.retry_after_ms, 350,
            "a plain call queues behind the debt"
        );
        assert_eq!(
            answer(state.as_ref(), &p, T + 300),
            Decision {
                allowed: true,
                limit: 2,
                remaining: 0,
                retry_after_ms: 0,
                reset_after_ms: 200,
            }
        );
    }

    #[test]
    fn no_debit_when_allowed_free_never_or_beyond_the_timeout() {
        let p = params();
        assert_eq!(debit(None, &p, T, 1, 1000), None, "allowed at once");
        let empty = BucketState {
            params: p,
            level: 0,
            updated_ms: T,
        };
        assert_eq!(debit(Some(&empty), &p, T, 0, 1000), None, "a peek");
        assert_eq!(debit(Some(&empty), &p, T, 3, 1000), None, "above capacity");
        assert_eq!(
            debit(Some(&empty), &p, T, 2, 199),
            None,
            "beyond the timeout"
        );
        assert_eq!(debit(Some(&empty), &p, T, 2, 200).unwrap().due_ms, T + 200);
        let written_later = BucketState {
            updated_ms: T + 500,
            ..empty
        };
        assert_eq!(
            debit(Some(&written_later), &p, T, 1, 599),
            None,
            "due 600 ms from now, though 100 ms after the bucket's own time"
        );
        assert_eq!(
            debit(Some(&written_later), &p, T, 1, 600).unwrap().due_ms,
            T + 600
        );
        let quota = BucketParams {
            refill_amount: 0,
            ..p
        };
        assert_eq!(
            debit(Some(&empty), &quota, T, 1, 1000),
            None,
            "never refills"
        );
        let deep = BucketState {
            level: deepest(&p) + 50,
            ..empty
        };
        assert_eq!(debit(Some(&deep), &p, T, 1, i64::MAX), None, "too deep");
    }

    #[test]
    fn lease_waiters_are_served_in_line_up_to_the_first_that_does_not_fit() {
        let two = LeaseParams {
            limit: 2,
            lease_ms: 1000,
        };
        let one = LeaseParams { limit: 1, ..two };
        let served = grant_leases(None, &[two, one, two], T).unwrap();
        assert_eq!(served.granted.len(), 1, "the second (limit 1) waits");
        let state = served.state.unwrap();
        assert_eq!(state.leases.len(), 1);
        assert_eq!(served.next_end_ms, Some(T + 1000));
        let again = grant_leases(Some(&state), &[two, two, two], T + 10).unwrap();
        assert_eq!(again.granted.len(), 1, "one slot left");
        assert_eq!(again.granted[0].opened.unwrap().ends_ms, T + 1010);
        let full = again.state.unwrap();
        let none = grant_leases(Some(&full), &[two], T + 20).unwrap();
        assert!(none.granted.is_empty());
        assert_eq!(none.next_end_ms, Some(T + 1000));
        let later = grant_leases(Some(&full), &[two, two], T + 1000).unwrap();
        assert_eq!(later.granted.len(), 1, "the first lease ended");
        assert_eq!(grant_leases(None, &[], T).unwrap().state, None);
    }

    #[test]
    fn a_credit_gives_back_capped_at_capacity() {
        let p = params();
        let owing = BucketState {
            params: p,
            level: -150,
            updated_ms: T,
        };
        let back = credit(&owing, 1, T + 10);
        assert_eq!(back.level, -40);
        assert_eq!(back.updated_ms, T + 10);
        assert_eq!(credit(&owing, 5, T).level, 200, "capped at capacity");
        assert_eq!(
            credit(&owing, 1, T - 5).updated_ms,
            T,
            "time never runs back"
        );
    }
}
