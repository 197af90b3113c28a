//! GCRA (generic cell rate algorithm) as redis-cell's `CL.THROTTLE`
//! computes it, so that its users get the same replies and can keep their
//! stored state.
//!
//! The state is one number, the TAT (theoretical arrival time) in unix
//! nanoseconds. With `emission_interval = period / count_per_period` and
//! `tolerance = emission_interval * (max_burst + 1)`, a call of `quantity`
//! at `now` computes `new_tat = max(tat, now) + emission_interval *
//! quantity` and is limited iff `now < new_tat - tolerance`. An allowed call
//! with a quantity above 0 stores `new_tat`.
//!
//! Matched to redis-cell (brandur/redis-cell, `redis-cell-impl/src/lib.rs`,
//! `RateLimiter::rate_limit`, and `redis-cell/src/lib.rs` for the reply):
//!
//! - `emission_interval` is `((period * 10^9) as f64 / count as f64) as i64`
//!   ns (`Rate::per_period`): reproduced exactly with integers by
//!   [`trunc_f64_div`]. It differs from the exact floor only when
//!   `period * 10^9` or `count` exceeds 2^53.
//! - limited iff `now - (new_tat - tolerance) < 0`, in nanoseconds (since
//!   redis-cell 0.2.2, its PR #13; before, it compared whole seconds).
//! - `retry_after = new_tat - tolerance - now` when limited, unless the
//!   quantity's increment exceeds the tolerance (it never fits): then -1.
//! - `reset_after` (`ttl` there) `= new_tat - now` when allowed, `tat - now`
//!   when limited.
//! - `remaining = (next_us as f64 / emission_interval_us as f64) as i64`
//!   with `next = tolerance - reset_after` when `next > -emission_interval`,
//!   else 0; both operands truncated to whole microseconds first. The float
//!   division is reproduced exactly ([`trunc_f64_div`]); the truncation to
//!   microseconds matters (it can move `remaining` by one), so it is kept.
//! - Seconds in the reply: whole seconds, plus 1 when the sub-second part
//!   has at least one whole millisecond (so 2.0009 s replies 2), as since
//!   redis-cell 0.4.0 (its PR #58; 0.3.x and older truncated to whole
//!   seconds, so a client waiting `retry_after` could come back too early).
//!
//! Where redis-cell replies nonsense, this replies sense instead:
//!
//! - `remaining` is clamped to `0..=limit` (redis-cell's microsecond
//!   truncation can give -1, or more than the limit, for emission intervals
//!   that are not whole microseconds; and a limited call on a TAT in the
//!   past gave more than the limit);
//! - a TAT in the past counts as `now` for `reset_after` too, so a limited
//!   call never replies a negative `reset_after`;
//! - an emission interval under 1 µs computes `remaining` in nanoseconds
//!   (redis-cell divides by zero microseconds and replies i64::MAX).
//!
//! All arithmetic is exact in i128. Parameters are bounded (see [`Gcra::new`])
//! so that every stored TAT fits in i64 nanoseconds.

use super::math::{saturate, trunc_f64_div};

pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
const NANOS_PER_MICRO: i128 = 1_000;
const NANOS_PER_MILLI: i128 = 1_000_000;

/// The longest period and the longest tolerance (max_burst + 1 emission
/// intervals): 100 years of 365 days, in seconds.
pub const MAX_SECONDS: i64 = 3_153_600_000;

/// `CL.THROTTLE key max_burst count_per_period period`: the parameters as
/// given, each already within its argument's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcraParams {
    /// >= 0; the limit is max_burst + 1.
    pub max_burst: i64,
    /// >= 1.
    pub count_per_period: i64,
    /// Seconds, 1..=MAX_SECONDS.
    pub period_s: i64,
}

/// A validated rule: the emission interval and tolerance in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    pub limit: i64,
    pub emission_interval_ns: i64,
    pub tolerance_ns: i64,
}

/// Why parameters make no rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcraError {
    /// count_per_period above period * 10^9: under 1 ns per unit (redis-cell:
    /// "Zero rates are not supported").
    RateTooHigh,
    /// (max_burst + 1) * period / count_per_period above MAX_SECONDS.
    ToleranceTooLong,
    /// The new TAT would not fit in i64 nanoseconds (a clock past 2162).
    TatOutOfRange,
}

impl Gcra {
    pub fn new(params: &GcraParams) -> Result<Gcra, GcraError> {
        let period_ns = params
            .period_s
            .checked_mul(NANOS_PER_SECOND)
            .ok_or(GcraError::ToleranceTooLong)?;
        let emission_interval_ns = trunc_f64_div(period_ns, params.count_per_period);
        if emission_interval_ns < 1 {
            return Err(GcraError::RateTooHigh);
        }
        let limit = params
            .max_burst
            .checked_add(1)
            .ok_or(GcraError::ToleranceTooLong)?;
        let tolerance = i128::from(emission_interval_ns) * i128::from(limit);
        if tolerance > i128::from(MAX_SECONDS) * i128::from(NANOS_PER_SECOND) {
            return Err(GcraError::ToleranceTooLong);
        }
        Ok(Gcra {
            limit,
            emission_interval_ns,
            tolerance_ns: saturate(tolerance),
        })
    }
}

/// The result of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcraOutcome {
    pub limited: bool,
    pub limit: i64,
    pub remaining: i64,
    /// Nanoseconds until the same call would be allowed; `None` when allowed
    /// or when it never can be (the reply's -1).
    pub retry_after_ns: Option<i128>,
    /// Nanoseconds until the limiter is whole again (>= 0).
    pub reset_after_ns: i128,
    /// The TAT to store: `Some` only when allowed with a quantity above 0.
    pub write: Option<i64>,
}

impl GcraOutcome {
    /// `[limited, limit, remaining, retry_after_s, reset_after_s]`.
    pub fn reply(&self) -> [i64; 5] {
        [
            i64::from(self.limited),
            self.limit,
            self.remaining,
            self.retry_after_ns.map_or(-1, reply_seconds),
            reply_seconds(self.reset_after_ns),
        ]
    }

    /// The unix ms at which the stored TAT stops mattering, rounded up: the
    /// key's absolute expiry. (redis-cell sets a TTL of the duration
    /// truncated to whole ms, so its keys can vanish up to 1 ms early.)
    pub fn expire_at_ms(&self) -> Option<i64> {
        self.write
            .map(|tat| saturate(super::math::ceil_div(i128::from(tat), NANOS_PER_MILLI)))
    }
}

/// redis-cell's rounding of a duration to the reply's seconds: whole seconds
/// (toward zero), plus one when the rest holds a whole millisecond or more.
pub fn reply_seconds(ns: i128) -> i64 {
    let seconds = ns / i128::from(NANOS_PER_SECOND);
    let sub_ms = (ns % i128::from(NANOS_PER_SECOND)) / NANOS_PER_MILLI;
    saturate(seconds + i128::from(sub_ms > 0))
}

/// One `CL.THROTTLE` call at `now_ns` on the stored TAT (None: no key).
/// `quantity` >= 0; 0 peeks.
pub fn throttle(
    stored_tat: Option<i64>,
    rule: &Gcra,
    now_ns: i64,
    quantity: i64,
) -> Result<GcraOutcome, GcraError> {
    let now = i128::from(now_ns);
    let interval = i128::from(rule.emission_interval_ns);
    let tolerance = i128::from(rule.tolerance_ns);
    let increment = interval * i128::from(quantity);
    let tat = stored_tat.map_or(now, |tat| i128::from(tat).max(now));
    let new_tat = tat + increment;
    let allow_at = new_tat - tolerance;
    let limited = now < allow_at;
    let (reset_after, retry_after) = if limited {
        (
            tat - now,
            (increment <= tolerance).then_some(allow_at - now),
        )
    } else {
        (new_tat - now, None)
    };
    let write = if !limited && quantity > 0 {
        Some(i64::try_from(new_tat).map_err(|_| GcraError::TatOutOfRange)?)
    } else {
        None
    };
    Ok(GcraOutcome {
        limited,
        limit: rule.limit,
        remaining: remaining(tolerance - reset_after, interval).clamp(0, rule.limit),
        retry_after_ns: retry_after,
        reset_after_ns: reset_after,
        write,
    })
}

/// redis-cell's remaining: `next` over the emission interval, both in whole
/// microseconds, divided as doubles and truncated; in nanoseconds when the
/// interval is under 1 µs.
fn remaining(next: i128, interval: i128) -> i64 {
    if next <= -interval {
        return 0;
    }
    let interval_us = interval / NANOS_PER_MICRO;
    if interval_us == 0 {
        return saturate(next / interval);
    }
    trunc_f64_div(saturate(next / NANOS_PER_MICRO), saturate(interval_us))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = NANOS_PER_SECOND;
    const MS: i64 = 1_000_000;
    /// A fixed start on the fake clock (2023-11-14), in ns.
    const START: i64 = 1_700_000_000 * S;

    fn rule(max_burst: i64, count_per_period: i64, period_s: i64) -> Gcra {
        Gcra::new(&GcraParams {
            max_burst,
            count_per_period,
            period_s,
        })
        .expect("valid parameters")
    }

    /// A key driven through calls on a fake clock, as the command drives it:
    /// the stored TAT, and its expiry (a key past it is gone).
    struct Fake {
        tat: Option<i64>,
        expires_ms: Option<i64>,
    }

    impl Fake {
        fn new() -> Self {
            Fake {
                tat: None,
                expires_ms: None,
            }
        }
        fn call(&mut self, rule: &Gcra, now: i64, quantity: i64) -> GcraOutcome {
            if self.expires_ms.is_some_and(|at| at * MS <= now) {
                *self = Fake::new();
            }
            let outcome = throttle(self.tat, rule, now, quantity).expect("in range");
            if let Some(tat) = outcome.write {
                self.tat = Some(tat);
                self.expires_ms = outcome.expire_at_ms();
            }
            outcome
        }
    }

    /// redis-cell's `it_creates_rates_from_*` tests: the emission interval.
    #[test]
    fn emission_intervals_match_redis_cell_rates() {
        for (count, period_s, interval_ns) in [
            (24, 86_400, 3_600 * S), // per_day(24) = 1 hour
            (6, 3_600, 600 * S),     // per_hour(6) = 10 minutes
            (6, 60, 10 * S),         // per_minute(6) = 10 s
            (6, 120, 20 * S),        // per_period(6, 2 min) = 20 s
            (5, 1, 200 * MS),        // per_second(5) = 200 ms
            (3, 1, 333_333_333),     // truncated, as the float cast does
            (30, 60, 2 * S),
        ] {
            assert_eq!(
                rule(0, count, period_s).emission_interval_ns,
                interval_ns,
                "{count} per {period_s} s"
            );
        }
    }

    /// redis-cell's `it_does_not_support_zero_rates`, and the bounds.
    #[test]
    fn rules_out_of_range_are_refused() {
        let params = |max_burst, count_per_period, period_s| GcraParams {
            max_burst,
            count_per_period,
            period_s,
        };
        assert_eq!(
            Gcra::new(&params(10, 1_000_000_001, 1)),
            Err(GcraError::RateTooHigh)
        );
        assert_eq!(
            rule(0, 1_000_000_000, 1).emission_interval_ns,
            1,
            "1 ns is the shortest interval"
        );
        assert_eq!(
            Gcra::new(&params(1, 1, MAX_SECONDS)),
            Err(GcraError::ToleranceTooLong)
        );
        assert_eq!(rule(0, 1, MAX_SECONDS).tolerance_ns, MAX_SECONDS * S);
        assert_eq!(
            Gcra::new(&params(i64::MAX - 1, 1_000_000_000, 1)),
            Err(GcraError::ToleranceTooLong)
        );
        assert_eq!(
            Gcra::new(&params(i64::MAX, 1, 1)),
            Err(GcraError::ToleranceTooLong)
        );
        assert_eq!(
            rule(MAX_SECONDS * S - 1, 1_000_000_000, 1).limit,
            MAX_SECONDS * S
        );
    }

    /// redis-cell's table-driven `it_rate_limits` (limit 5, 1 per second),
    /// on the fake clock: (case, now, quantity, remaining, reset_after,
    /// retry_after, limited), durations in ns, -1 s meaning none.
    #[test]
    fn redis_cell_rate_limit_table() {
        let rule = rule(4, 1, 1);
        let mut key = Fake::new();
        let never = -S;
        #[rustfmt::skip]
        let cases: [(i64, i64, i64, i64, i64, i64, bool); 15] = [
            // You can never make a request larger than the maximum.
            (0, START, 6, 5, 0, never, true),
            // Rate limit normal requests appropriately.
            (1, START, 1, 4, S, never, false),
            (2, START, 1, 3, 2 * S, never, false),
            (3, START, 1, 2, 3 * S, never, false),
            (4, START, 1, 1, 4 * S, never, false),
            (5, START, 1, 0, 5 * S, never, false),
            (6, START, 1, 0, 5 * S, S, true),
            (7, START + 3000 * MS, 1, 2, 3000 * MS, never, false),
            (8, START + 3100 * MS, 1, 1, 3900 * MS, never, false),
            (9, START + 4000 * MS, 1, 1, 4000 * MS, never, false),
            (10, START + 8000 * MS, 1, 4, 1000 * MS, never, false),
            (11, START + 9500 * MS, 1, 4, 1000 * MS, never, false),
            // Zero-volume request just peeks at the state.
            (12, START + 9500 * MS, 0, 4, S, never, false),
            // High-volume request uses up more of the limit.
            (13, START + 9500 * MS, 2, 2, 3 * S, never, false),
            // Large requests cannot exceed limits.
            (14, START + 9500 * MS, 5, 2, 3 * S, 3 * S, true),
        ];
        for (case, now, quantity, remaining, reset_after, retry_after, limited) in cases {
            let outcome = key.call(&rule, now, quantity);
            assert_eq!(outcome.limited, limited, "case {case}");
            assert_eq!(outcome.limit, 5, "case {case}");
            assert_eq!(outcome.remaining, remaining, "case {case}");
            assert_eq!(
                outcome.reset_after_ns,
                i128::from(reset_after),
                "case {case}"
            );
            let retry = outcome.retry_after_ns.unwrap_or(i128::from(never));
            assert_eq!(retry, i128::from(retry_after), "case {case}");
        }
    }

    /// redis-cell's README example and its end-to-end test, as replies.
    #[test]
    fn redis_cell_documented_replies() {
        let mut key = Fake::new();
        assert_eq!(
            key.call(&rule(15, 30, 60), START, 1).reply(),
            [0, 16, 15, -1, 2]
        );
        // e2e: max_burst 0, 1 per 2 s: allowed, limited, allowed 2 s later.
        let mut key = Fake::new();
        let rule = rule(0, 1, 2);
        assert_eq!(key.call(&rule, START, 1).reply(), [0, 1, 0, -1, 2]);
        assert_eq!(key.call(&rule, START + MS, 1).reply(), [1, 1, 0, 2, 2]);
        assert_eq!(key.call(&rule, START + 2 * S, 1).reply(), [0, 1, 0, -1, 2]);
    }

    #[test]
    fn a_burst_until_limited() {
        let rule = rule(15, 30, 60);
        let mut key = Fake::new();
        for i in 1..=16 {
            assert_eq!(
                key.call(&rule, START, 1).reply(),
                [0, 16, 16 - i, -1, 2 * i],
                "call {i}"
            );
        }
        assert_eq!(key.call(&rule, START, 1).reply(), [1, 16, 0, 2, 32]);
        // 1.5 s later: still limited, retry rounds 0.5 s up.
        assert_eq!(
            key.call(&rule, START + 1500 * MS, 1).reply(),
            [1, 16, 0, 1, 31]
        );
        assert_eq!(
            key.call(&rule, START + 2 * S, 1).reply(),
            [0, 16, 0, -1, 32]
        );
        // Quantity above the limit never fits: retry_after -1.
        assert_eq!(
            key.call(&rule, START + 2 * S, 17).reply(),
            [1, 16, 0, -1, 32]
        );
    }

    #[test]
    fn quantities_and_peeks() {
        let rule = rule(9, 10, 10); // limit 10, 1 per s
        let mut key = Fake::new();
        // A peek on a missing key is allowed and writes nothing.
        let peek = key.call(&rule, START, 0);
        assert_eq!(peek.reply(), [0, 10, 10, -1, 0]);
        assert_eq!(peek.write, None);
        assert_eq!(key.call(&rule, START, 4).reply(), [0, 10, 6, -1, 4]);
        let peek = key.call(&rule, START + 500 * MS, 0);
        assert_eq!(peek.reply(), [0, 10, 6, -1, 4]);
        assert_eq!(peek.write, None);
        assert_eq!(
            key.call(&rule, START + 500 * MS, 7).reply(),
            [1, 10, 6, 1, 4]
        );
        assert_eq!(
            key.call(&rule, START + 500 * MS, 6).reply(),
            [0, 10, 0, -1, 10]
        );
        // A whole quantity of 10 fits only once the limiter is whole.
        let at = START + 10 * S;
        assert_eq!(key.call(&rule, at - MS, 10).reply(), [1, 10, 9, 1, 1]);
        assert_eq!(key.call(&rule, at, 10).reply(), [0, 10, 0, -1, 10]);
    }

    #[test]
    fn reply_seconds_round_like_redis_cell() {
        for (ns, seconds) in [
            (0, 0),
            (999_999, 0),
            (MS, 1),
            (S, 1),
            (S + 999_999, 1),
            (S + MS, 2),
            (2 * S - 1, 2),
            (-S, -1),
            (-S / 2, 0),
        ] {
            assert_eq!(reply_seconds(i128::from(ns)), seconds, "{ns} ns");
        }
    }

    #[test]
    fn retry_after_is_exact_in_nanoseconds() {
        for (max_burst, count, period) in [(0, 1, 1), (4, 3, 1), (15, 30, 60), (2, 7, 3)] {
            let rule = rule(max_burst, count, period);
            let mut key = Fake::new();
            let mut now = START;
            while !key.call(&rule, now, 1).limited {
                now += 7 * MS;
            }
            let limited = key.call(&rule, now, 1);
            let retry = i64::try_from(limited.retry_after_ns.expect("fits")).expect("small");
            assert!(
                throttle(key.tat, &rule, now + retry - 1, 1)
                    .expect("ok")
                    .limited
            );
            assert!(
                !throttle(key.tat, &rule, now + retry, 1)
                    .expect("ok")
                    .limited
            );
        }
    }

    #[test]
    fn remaining_keeps_redis_cell_microsecond_truncation() {
        // 3 per second: an interval of 333,333,333 ns, 333,333 µs.
        let rule = rule(3, 3, 1);
        // next = 4 intervals - 1 ns: 1,333,333,331 ns -> 1,333,333 µs, which
        // is 4.000003 intervals of 333,333 µs: redis-cell says 4 (an exact
        // division in ns would say 3).
        let tat = START + 1;
        let outcome = throttle(Some(tat), &rule, START, 0).expect("ok");
        assert_eq!(
            outcome.remaining, 4,
            "a TAT 1 ns ahead leaves 3.99... intervals, 4.000003 in µs"
        );
        assert_eq!(remaining(4 * 333_333_333 - 1, 333_333_333), 4);
        assert_eq!(remaining(4 * 333_333_333 - 1_000, 333_333_333), 4);
        assert_eq!(remaining(4 * 333_333_333 - 2_000, 333_333_333), 3);
        assert_eq!((4 * 333_333_333 - 1) / 333_333_333, 3, "in ns");
    }

    #[test]
    fn remaining_stays_within_zero_and_the_limit() {
        // 1.5 µs intervals: redis-cell's microsecond truncation would reply
        // 7 of a limit of 5 on a fresh key.
        let odd = rule(4, 2_000_000, 3);
        assert_eq!(odd.emission_interval_ns, 1_500);
        assert_eq!(throttle(None, &odd, START, 0).expect("ok").remaining, 5);
        // Sub-microsecond intervals divide in ns (redis-cell: i64::MAX).
        let fast = rule(9, 1_000_000_000, 1);
        assert_eq!(fast.emission_interval_ns, 1);
        assert_eq!(throttle(None, &fast, START, 0).expect("ok").remaining, 10);
        assert_eq!(throttle(None, &fast, START, 3).expect("ok").remaining, 7);
        // A TAT in the past counts as now, limited or not.
        let stale = throttle(Some(START - 60 * S), &rule(4, 1, 1), START, 6).expect("ok");
        assert_eq!(stale.reply(), [1, 5, 5, -1, 0]);
    }

    #[test]
    fn time_standing_still_or_going_back_changes_nothing() {
        let rule = rule(2, 1, 1);
        let mut key = Fake::new();
        key.call(&rule, START, 3);
        let earlier = key.call(&rule, START - 10 * S, 1);
        assert!(earlier.limited);
        assert_eq!(earlier.write, None);
        assert_eq!(key.call(&rule, START + S, 1).reply(), [0, 3, 0, -1, 3]);
    }

    #[test]
    fn extreme_values_stay_exact() {
        let max_rule = rule(0, 1, MAX_SECONDS);
        let outcome = throttle(None, &max_rule, START, 1).expect("fits");
        assert_eq!(outcome.reply(), [0, 1, 0, -1, MAX_SECONDS]);
        // A huge quantity and a stored TAT at the end of i64.
        let huge = throttle(Some(i64::MAX), &max_rule, START, i64::MAX).expect("no overflow");
        assert!(huge.limited);
        assert_eq!(huge.retry_after_ns, None);
        assert_eq!(huge.reply()[4], reply_seconds(i128::from(i64::MAX - START)));
        let near_end = throttle(Some(i64::MAX), &max_rule, START, 0).expect("peek");
        assert!(near_end.limited);
        // A clock so late that the new TAT cannot be stored.
        assert_eq!(
            throttle(None, &max_rule, i64::MAX - 10, 1),
            Err(GcraError::TatOutOfRange)
        );
    }

    #[test]
    fn expiry_is_the_tat_rounded_up_to_a_millisecond() {
        let rule = rule(0, 3, 1);
        let outcome = throttle(None, &rule, START, 1).expect("ok");
        assert_eq!(outcome.write, Some(START + 333_333_333));
        assert_eq!(outcome.expire_at_ms(), Some(START / MS + 334));
        assert_eq!(
            throttle(None, &rule, START, 0).expect("ok").expire_at_ms(),
            None
        );
    }

    /// Random rules and calls: the reply stays within its bounds, retry
    /// times are exact, and over any run no more is admitted than the burst
    /// plus one unit per emission interval.
    #[test]
    fn random_calls_keep_the_invariants() {
        let mut rng = crate::test_rng::Rng::new(0x2545_F491_4F6C_DD1D);
        let mut next = move |below: i64| rng.below(below as usize) as i64;
        for _ in 0..300 {
            let rule = rule(next(20), 1 + next(1000), 1 + next(100));
            let mut key = Fake::new();
            let start = START + next(1_000_000);
            let mut now = start;
            let mut admitted = 0i128;
            for _ in 0..200 {
                now += next(3) * next(rule.emission_interval_ns.min(4 * S));
                let quantity = next(rule.limit + 2);
                let outcome = key.call(&rule, now, quantity);
                assert!((0..=rule.limit).contains(&outcome.remaining), "{outcome:?}");
                assert!(outcome.reset_after_ns >= 0);
                assert_eq!(outcome.write.is_some(), !outcome.limited && quantity > 0);
                if quantity > rule.limit {
                    assert!(outcome.limited);
                }
                if outcome.limited {
                    if let Some(retry) = outcome.retry_after_ns {
                        let retry = i64::try_from(retry).expect("small");
                        assert!(retry > 0);
                        let later = |t| throttle(key.tat, &rule, t, quantity).expect("ok");
                        assert!(later(now + retry - 1).limited);
                        assert!(!later(now + retry).limited);
                    } else {
                        assert!(quantity > rule.limit);
                    }
                } else {
                    admitted += i128::from(quantity);
                }
                let elapsed = i128::from(now - start);
                let allowance =
                    i128::from(rule.limit) + elapsed / i128::from(rule.emission_interval_ns);
                assert!(admitted <= allowance, "{admitted} > {allowance}");
            }
        }
    }
}
