//! Token bucket with exact rational refill.
//!
//! Tokens are kept as an integer `level` in units of 1/refill_period_ms of a
//! token, so refilling `refill_amount` tokens per `refill_period_ms` adds
//! exactly `refill_amount` units per elapsed millisecond: no floats, no drift,
//! and fractions of a token carry over from call to call.
//!
//! Rounding: remaining tokens are rounded down; retry and reset times are
//! rounded up, so a client told to come back after them is never early. When
//! the period changes, the stored level is converted to the new unit rounding
//! toward minus infinity.

use super::math::{ceil_div, floor_div, rescale_floor, saturate};
use super::{Evaluation, Snapshot, NEVER};

/// The parameters of a call, also stored with the bucket on every write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketParams {
    /// Most tokens the bucket holds, >= 1.
    pub capacity: i64,
    /// Tokens added per period, >= 0 (0: a quota that never refills).
    pub refill_amount: i64,
    /// Length of the refill period in ms, >= 1.
    pub refill_period_ms: i64,
}

/// What a bucket key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketState {
    /// The parameters of the last write, whose period is the unit of `level`.
    pub params: BucketParams,
    /// Tokens times `params.refill_period_ms`; negative while in debt.
    pub level: i128,
    /// Unix ms of the last write.
    pub updated_ms: i64,
}

/// The result of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketOutcome {
    pub evaluation: Evaluation,
    /// The state to store: `Some` only when the call writes (allowed, cost > 0).
    pub write: Option<BucketState>,
    /// The time the call was evaluated at (`now`, or the last write if later).
    pub at_ms: i64,
}

impl BucketParams {
    fn capacity_units(&self) -> i128 {
        i128::from(self.capacity) * i128::from(self.refill_period_ms)
    }
}

impl BucketState {
    /// The level at `at_ms` (not before the last write) under `params`: the
    /// stored level converted to the new period, refilled at the new rate and
    /// clamped to the new capacity.
    pub fn level_at(&self, params: &BucketParams, at_ms: i64) -> i128 {
        let period = i128::from(params.refill_period_ms);
        let stored_period = i128::from(self.params.refill_period_ms);
        let level = if period == stored_period {
            self.level
        } else {
            rescale_floor(self.level, period, stored_period)
        };
        let full = params.capacity_units();
        if level >= full {
            return full;
        }
        let elapsed = i128::from(at_ms.saturating_sub(self.updated_ms).max(0));
        let refill = i128::from(params.refill_amount) * elapsed;
        (level + refill).min(full)
    }
}

/// What RL.INSPECT shows of a bucket, under the parameters of its last write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketView {
    /// Whole tokens, rounded toward minus infinity (negative while in debt).
    pub tokens: i64,
    pub reset_after_ms: i64,
}

/// Looks at a bucket at `now_ms` (not before its last write) without
/// changing it.
pub fn inspect(state: &BucketState, now_ms: i64) -> BucketView {
    let params = &state.params;
    let level = state.level_at(params, now_ms.max(state.updated_ms));
    BucketView {
        tokens: saturate(floor_div(level, i128::from(params.refill_period_ms))),
        reset_after_ms: reset_after(params, level),
    }
}

/// Takes `cost` tokens at `now_ms` if the bucket holds them.
pub fn take(
    state: Option<&BucketState>,
    params: &BucketParams,
    now_ms: i64,
    cost: i64,
) -> BucketOutcome {
    let at_ms = state.map_or(now_ms, |s| now_ms.max(s.updated_ms));
    let level = state.map_or_else(|| params.capacity_units(), |s| s.level_at(params, at_ms));
    let period = i128::from(params.refill_period_ms);
    let cost_units = i128::from(cost) * period;
    let allowed = cost_units <= level;
    let level_after = if allowed { level - cost_units } else { level };
    let retry_after_ms = if allowed {
        0
    } else if cost > params.capacity || params.refill_amount == 0 {
        NEVER
    } else {
        saturate(ceil_div(
            cost_units - level,
            i128::from(params.refill_amount),
        ))
    };
    let evaluation = Evaluation {
        allowed,
        limit: params.capacity,
        retry_after_ms,
        before: snapshot(params, level),
        after: snapshot(params, level_after),
    };
    let write = (allowed && cost > 0).then_some(BucketState {
        params: *params,
        level: level_after,
        updated_ms: at_ms,
    });
    BucketOutcome {
        evaluation,
        write,
        at_ms,
    }
}

fn snapshot(params: &BucketParams, level: i128) -> Snapshot {
    let period = i128::from(params.refill_period_ms);
    Snapshot {
        remaining: saturate(floor_div(level, period).max(0)),
        reset_after_ms: reset_after(params, level),
    }
}

fn reset_after(params: &BucketParams, level: i128) -> i64 {
    let missing = params.capacity_units() - level;
    if missing <= 0 {
        0
    } else if params.refill_amount == 0 {
        NEVER
    } else {
        saturate(ceil_div(missing, i128::from(params.refill_amount)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_000;

    fn params(capacity: i64, refill_amount: i64, refill_period_ms: i64) -> BucketParams {
        BucketParams {
            capacity,
            refill_amount,
            refill_period_ms,
        }
    }

    /// A bucket driven through calls on a fake clock, as the module drives it.
    struct Fake {
        state: Option<BucketState>,
    }

    impl Fake {
        fn new() -> Self {
            Fake { state: None }
        }
        fn call(&mut self, p: BucketParams, at: i64, cost: i64) -> [i64; 5] {
            let outcome = take(self.state.as_ref(), &p, at, cost);
            if let Some(written) = outcome.write {
                self.state = Some(written);
            }
            outcome.evaluation.own_decision().as_array()
        }
    }

    #[test]
    fn contract_example_capacity_10() {
        let p = params(10, 1, 1000);
        let mut b = Fake::new();
        assert_eq!(b.call(p, T, 1), [1, 10, 9, 0, 1000]);
        for _ in 2..10 {
            b.call(p, T, 1);
        }
        assert_eq!(b.call(p, T, 1), [1, 10, 0, 0, 10000]);
        assert_eq!(b.call(p, T, 1), [0, 10, 0, 1000, 10000]);
        assert_eq!(b.call(p, T + 999, 1), [0, 10, 0, 1, 9001]);
        assert_eq!(b.call(p, T + 1000, 1), [1, 10, 0, 0, 10000]);
        assert_eq!(b.call(p, T + 1500, 0), [1, 10, 0, 0, 9500]);
    }

    #[test]
    fn contract_example_fractional_refill() {
        let p = params(5, 3, 1000);
        let mut b = Fake::new();
        assert_eq!(b.call(p, T, 5), [1, 5, 0, 0, 1667]);
        assert_eq!(b.call(p, T, 1)[3], 334);
        assert_eq!(b.call(p, T + 333, 1)[0], 0);
        assert_eq!(b.call(p, T + 334, 1)[..3], [1, 5, 0]);
        assert_eq!(b.call(p, T + 334, 1)[3], 333);
    }

    #[test]
    fn contract_example_cost() {
        let p = params(100, 10, 1000);
        let mut b = Fake::new();
        assert_eq!(b.call(p, T, 60), [1, 100, 40, 0, 6000]);
        assert_eq!(b.call(p, T, 50), [0, 100, 40, 1000, 6000]);
    }

    #[test]
    fn inspect_agrees_with_a_peek() {
        let p = params(7, 3, 1000);
        let mut b = Fake::new();
        b.call(p, T, 6);
        let state = b.state.expect("written");
        for t in [T - 10, T, T + 1, T + 333, T + 1999, T + 5000] {
            let view = inspect(&state, t);
            let peek = b.call(p, t, 0);
            assert_eq!(
                [view.tokens, view.reset_after_ms],
                [peek[2], peek[4]],
                "at {t}"
            );
        }
        let debt = BucketState {
            level: -1500,
            ..state
        };
        assert_eq!(inspect(&debt, T).tokens, -2);
    }

    #[test]
    fn peek_on_missing_bucket_writes_nothing() {
        let outcome = take(None, &params(10, 1, 1000), T, 0);
        assert_eq!(
            outcome.evaluation.own_decision().as_array(),
            [1, 10, 10, 0, 0]
        );
        assert_eq!(outcome.write, None);
    }

    #[test]
    fn denied_calls_write_nothing() {
        let outcome = take(None, &params(10, 1, 1000), T, 11);
        assert_eq!(
            outcome.evaluation.own_decision().as_array(),
            [0, 10, 10, -1, 0]
        );
        assert_eq!(outcome.write, None);
    }

    #[test]
    fn never_refilling_quota() {
        let p = params(2, 0, 1000);
        let mut b = Fake::new();
        assert_eq!(b.call(p, T, 1), [1, 2, 1, 0, -1]);
        assert_eq!(b.call(p, T, 1), [1, 2, 0, 0, -1]);
        assert_eq!(b.call(p, T + 1_000_000, 1), [0, 2, 0, -1, -1]);
    }

    #[test]
    fn time_never_runs_backwards() {
        let p = params(10, 1, 1000);
        let mut b = Fake::new();
        b.call(p, T, 10);
        let earlier = take(b.state.as_ref(), &p, T - 5000, 1);
        assert_eq!(earlier.at_ms, T);
        assert_eq!(
            earlier.evaluation.own_decision().as_array(),
            [0, 10, 0, 1000, 10000]
        );
    }

    #[test]
    fn retry_after_is_exactly_the_first_allowed_ms() {
        for (capacity, amount, period, cost) in [
            (5, 3, 1000, 2),
            (7, 1, 333, 7),
            (100, 7, 61, 13),
            (3, 1000, 7, 1),
        ] {
            let p = params(capacity, amount, period);
            let mut b = Fake::new();
            b.call(p, T, capacity);
            let retry = b.call(p, T, cost)[3];
            assert!(retry > 0);
            assert!(
                !take(b.state.as_ref(), &p, T + retry - 1, cost)
                    .evaluation
                    .allowed
            );
            assert!(
                take(b.state.as_ref(), &p, T + retry, cost)
                    .evaluation
                    .allowed
            );
        }
    }

    #[test]
    fn reset_after_is_exactly_when_the_bucket_is_full() {
        let p = params(7, 3, 1000);
        let mut b = Fake::new();
        let reset = b.call(p, T, 7)[4];
        assert_eq!(reset, 2334);
        let before = b.call(p, T + reset - 1, 0);
        assert_eq!(before[2], 6);
        assert!(before[4] > 0);
        assert_eq!(b.call(p, T + reset, 0), [1, 7, 7, 0, 0]);
    }

    #[test]
    fn no_drift_over_a_long_run() {
        // 3 tokens per 7 ms, one call per ms for a million ms: exactly
        // floor(3 * 1_000_000 / 7) tokens flow in, plus the initial capacity.
        let p = params(10, 3, 7);
        let mut b = Fake::new();
        let mut admitted = 0i64;
        for ms in 0..1_000_000 {
            admitted += b.call(p, T + ms, 1)[0];
        }
        let refilled = 3 * 999_999 / 7;
        assert_eq!(admitted, 10 + refilled);
    }

    #[test]
    fn new_parameters_apply_from_now() {
        let mut b = Fake::new();
        b.call(params(100, 10, 1000), T, 30); // 70 tokens left
                                              // A smaller plan clamps the tokens to its capacity; a peek stores nothing.
        assert_eq!(b.call(params(50, 10, 1000), T, 0), [1, 50, 50, 0, 0]);
        assert_eq!(b.call(params(100, 10, 1000), T, 0)[2], 70);
        assert_eq!(b.call(params(50, 10, 1000), T, 1)[2], 49);
        // A new period converts the level: 49 tokens, then refill at 1 per 3 ms.
        assert_eq!(b.call(params(100, 1, 3), T + 3, 0)[2], 50);
    }

    #[test]
    fn period_change_rounds_fractions_down() {
        let third = BucketState {
            params: params(10, 1, 3),
            level: 1,
            updated_ms: T,
        };
        // 1/3 of a token is 0.666 units of 1/2: rounded down to 0.
        assert_eq!(third.level_at(&params(10, 0, 2), T), 0);
        assert_eq!(third.level_at(&params(10, 0, 3), T), 1);
        // A debt of 1/3 is -0.666 units of 1/2: rounded toward minus infinity.
        let debt = BucketState { level: -1, ..third };
        assert_eq!(debt.level_at(&params(10, 0, 2), T), -1);
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let max = i64::MAX;
        let p = params(max, max, max);
        let mut b = Fake::new();
        assert_eq!(b.call(p, 0, max), [1, max, 0, 0, max]);
        assert_eq!(b.call(p, 0, 1), [0, max, 0, 1, max]);
        assert_eq!(b.call(p, max, 0), [1, max, max, 0, 0]);
        assert_eq!(b.call(params(1, 1, max), max, 1)[0], 1);
        // Emptied under capacity 1, the bucket needs max ms to hold max tokens.
        assert_eq!(b.call(params(max, 1, 1), max, max), [0, max, 0, max, max]);
        assert_eq!(b.call(params(1, 0, 1), max, 2), [0, 1, 0, -1, -1]);
        let mut fresh = Fake::new();
        assert_eq!(fresh.call(params(max, 1, 1), max, max), [1, max, 0, 0, max]);
    }
}
