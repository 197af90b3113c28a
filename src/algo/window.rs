//! Windows in bounded memory: a sliding window that never admits more than
//! its limit in any window_ms, and the classic fixed window.
//!
//! Sliding: time is cut into slots of `precision_ms` aligned on the epoch
//! (slot k is `[k*p, (k+1)*p)`). An admitted call counts as made at the last
//! ms of its slot, `(k+1)*p - 1`, and from there exactly as a sliding log
//! record: at time t it counts while `t - window_ms <` that ms. Only slots
//! that hold admitted cost are stored. Capacity comes back at most one
//! precision later than an exact log would give it; with precision 1 the
//! window decides exactly as the sliding log.
//!
//! Fixed: windows `[k*W, (k+1)*W)` aligned on the epoch, each counting the
//! cost admitted inside it.
//!
//! Rounding: none is needed, every quantity is a whole number of ms or units.

use std::borrow::Cow;

use super::math::{floor_div, saturate};
use super::slot_log::SlotLog;
use super::{Evaluation, Snapshot, NEVER};

/// The `precision_ms` of a fixed window.
pub const FIXED: i64 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowParams {
    /// Most units admitted per window, >= 1.
    pub limit: i64,
    /// Window length in ms, >= 1.
    pub window_ms: i64,
    /// Slot length in ms, 1 to `window_ms`; [`FIXED`] for a fixed window.
    pub precision_ms: i64,
}

impl WindowParams {
    pub fn is_fixed(&self) -> bool {
        self.precision_ms == FIXED
    }

    /// The most slots a key of these parameters holds:
    /// `min(limit, window_ms / precision_ms + 1)`, 1 for a fixed window.
    pub fn most_slots(&self) -> i64 {
        if self.is_fixed() {
            return 1;
        }
        self.limit
            .min((self.window_ms / self.precision_ms.max(1)).saturating_add(1))
    }

    /// The length of a stored slot: the precision, or the whole window.
    fn slot_ms(&self) -> i64 {
        if self.is_fixed() {
            self.window_ms
        } else {
            self.precision_ms
        }
    }

    /// The slot that holds `ms` (not negative).
    fn slot_of(&self, ms: i64) -> i64 {
        ms.div_euclid(self.slot_ms().max(1))
    }

    /// The ms a call admitted in `slot` counts as made at: its last ms.
    fn counted_ms(&self, slot: i64) -> i128 {
        (i128::from(slot) + 1) * i128::from(self.slot_ms()) - 1
    }
}

/// The default precision of a window: a 60th of it (at least 1 ms).
pub fn default_precision(window_ms: i64) -> i64 {
    (window_ms / 60).max(1)
}

/// What a window key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowState {
    /// The parameters of the last write, whose slots `slots` counts in.
    pub params: WindowParams,
    /// The time of the last write: a later call never runs before it.
    pub last_ms: i64,
    pub slots: SlotLog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowOutcome {
    pub evaluation: Evaluation,
    /// The cost that counts at `at_ms`, before the call's.
    pub used: i64,
    /// Whether the call writes: then [`record`] must be applied at `at_ms`.
    pub writes: bool,
    /// The time the call was evaluated at (`now`, or the last write if later).
    pub at_ms: i64,
}

/// The stored slots in the slots of `params`. A new precision moves each
/// stored count to the new slot that holds its last ms (never earlier);
/// a switch between fixed and sliding, or a new fixed window, counts the
/// stored cost as made at the last write.
fn slots_under<'a>(state: &'a WindowState, params: &WindowParams) -> Cow<'a, SlotLog> {
    let stored = &state.params;
    if stored.slot_ms() == params.slot_ms() && stored.is_fixed() == params.is_fixed() {
        return Cow::Borrowed(&state.slots);
    }
    let mut moved = SlotLog::default();
    for (slot, cost) in state.slots.iter() {
        let made_ms = if stored.is_fixed() || params.is_fixed() {
            state.last_ms
        } else {
            saturate(stored.counted_ms(slot))
        };
        moved.add(params.slot_of(made_ms), cost);
    }
    Cow::Owned(moved)
}

/// The newest slot that no longer counts at `at_ms`.
fn stale_through(params: &WindowParams, at_ms: i64) -> i64 {
    if params.is_fixed() {
        params.slot_of(at_ms) - 1
    } else {
        // A slot counts while at - window < (k+1)p - 1.
        let cutoff = i128::from(at_ms) - i128::from(params.window_ms);
        saturate(floor_div(cutoff + 1, i128::from(params.precision_ms)) - 1)
    }
}

/// Ms from `at_ms` until `slot` stops counting.
fn leaves_after(params: &WindowParams, slot: i64, at_ms: i64) -> i64 {
    let ends = if params.is_fixed() {
        params.counted_ms(slot) + 1
    } else {
        params.counted_ms(slot) + i128::from(params.window_ms)
    };
    saturate(ends - i128::from(at_ms))
}

/// Decides whether `cost` fits in the window at `now_ms`.
pub fn check(
    state: Option<&WindowState>,
    params: &WindowParams,
    now_ms: i64,
    cost: i64,
) -> WindowOutcome {
    let at_ms = state.map_or(now_ms, |s| now_ms.max(s.last_ms));
    let slots = state.map(|s| slots_under(s, params));
    let slots = slots.as_deref();
    let stale = stale_through(params, at_ms);
    // Only the slots that stopped counting are read: none while the oldest
    // still counts, so a call then costs O(1).
    let stale_cost: i128 = slots
        .filter(|log| log.oldest().is_some_and(|oldest| oldest <= stale))
        .into_iter()
        .flat_map(SlotLog::iter)
        .take_while(|&(slot, _)| slot <= stale)
        .map(|(_, cost)| i128::from(cost))
        .sum();
    let used = i128::from(slots.map_or(0, SlotLog::total_cost)) - stale_cost;
    let limit = i128::from(params.limit);
    let allowed = used + i128::from(cost) <= limit;
    let writes = allowed && cost > 0;
    let live = || {
        slots
            .into_iter()
            .flat_map(SlotLog::iter)
            .skip_while(move |&(slot, _)| slot <= stale)
    };

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
            .map_or(NEVER, |(slot, _)| leaves_after(params, slot, at_ms))
    };
    let remaining = |used: i128| saturate((limit - used).max(0));
    let newest_live = slots
        .and_then(SlotLog::newest)
        .filter(|&newest| newest > stale);
    let before = Snapshot {
        remaining: remaining(used),
        reset_after_ms: newest_live.map_or(0, |slot| leaves_after(params, slot, at_ms)),
    };
    // A finer precision may have moved a count to a slot after the call's.
    let last_counted = newest_live.map_or(params.slot_of(at_ms), |newest| {
        newest.max(params.slot_of(at_ms))
    });
    let after = if writes {
        Snapshot {
            remaining: remaining(used + i128::from(cost)),
            reset_after_ms: leaves_after(params, last_counted, at_ms),
        }
    } else {
        before
    };
    WindowOutcome {
        evaluation: Evaluation {
            allowed,
            limit: params.limit,
            retry_after_ms,
            before,
            after,
        },
        used: saturate(used),
        writes,
        at_ms,
    }
}

/// A window that has never admitted anything, for a first write.
pub fn empty(params: &WindowParams, at_ms: i64) -> WindowState {
    WindowState {
        params: *params,
        last_ms: at_ms,
        slots: SlotLog::default(),
    }
}

/// Applies an allowed call: moves the slots to the call's parameters, drops
/// those that no longer count, and adds the cost to the call's slot.
pub fn record(state: &mut WindowState, params: &WindowParams, at_ms: i64, cost: i64) {
    if let Cow::Owned(moved) = slots_under(state, params) {
        state.slots = moved;
    }
    state.params = *params;
    state.slots.drop_through(stale_through(params, at_ms));
    state.slots.add(params.slot_of(at_ms), cost);
    state.last_ms = at_ms;
}

/// What RL.INSPECT shows of a window, under the parameters of its last
/// write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowView {
    pub used: i64,
    /// Ms until nothing counts any more.
    pub reset_after_ms: i64,
}

/// Looks at a window at `now_ms` (not before its last write).
pub fn inspect(state: &WindowState, now_ms: i64) -> WindowView {
    let outcome = check(Some(state), &state.params, now_ms, 0);
    WindowView {
        used: outcome.used,
        reset_after_ms: outcome.evaluation.before.reset_after_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::super::sliding_log::{self, LogParams, LogState};
    use super::*;

    fn sliding(limit: i64, window_ms: i64, precision_ms: i64) -> WindowParams {
        WindowParams {
            limit,
            window_ms,
            precision_ms,
        }
    }

    fn fixed(limit: i64, window_ms: i64) -> WindowParams {
        sliding(limit, window_ms, FIXED)
    }

    #[derive(Default)]
    struct Fake {
        state: Option<WindowState>,
    }

    impl Fake {
        fn call(&mut self, params: WindowParams, at: i64, cost: i64) -> [i64; 5] {
            let outcome = check(self.state.as_ref(), &params, at, cost);
            if outcome.writes {
                let state = self
                    .state
                    .get_or_insert_with(|| empty(&params, outcome.at_ms));
                record(state, &params, outcome.at_ms, cost);
            }
            outcome.evaluation.own_decision().as_array()
        }
    }

    #[test]
    fn sliding_slots_count_from_their_last_ms() {
        // A minute in 1 s slots, limit 3.
        let p = sliding(3, 60_000, 1_000);
        let mut w = Fake::default();
        // Counted as made at 1_999: it stops counting at 61_999 + 1.
        assert_eq!(w.call(p, 1_200, 1), [1, 3, 2, 0, 60_799]);
        assert_eq!(w.call(p, 1_500, 2), [1, 3, 0, 0, 60_499]);
        assert_eq!(w.call(p, 30_000, 1), [0, 3, 0, 31_999, 31_999]);
        // At 61_998 the slot still counts; at 61_999 it does not.
        assert_eq!(w.call(p, 61_998, 1), [0, 3, 0, 1, 1]);
        assert_eq!(w.call(p, 61_999, 1), [1, 3, 2, 0, 60_000]);
    }

    #[test]
    fn fixed_windows_reset_on_the_clock() {
        let p = fixed(2, 1_000);
        let mut w = Fake::default();
        assert_eq!(w.call(p, 0, 0), [1, 2, 2, 0, 0]);
        assert_eq!(w.call(p, 100, 1), [1, 2, 1, 0, 900]);
        assert_eq!(w.call(p, 999, 1), [1, 2, 0, 0, 1]);
        assert_eq!(w.call(p, 999, 1), [0, 2, 0, 1, 1]);
        assert_eq!(w.call(p, 999, 3), [0, 2, 0, NEVER, 1]);
        // Twice the limit around a boundary: the classic fixed window.
        assert_eq!(w.call(p, 1_000, 2), [1, 2, 0, 0, 1_000]);
        assert_eq!(w.call(p, 5_500, 0), [1, 2, 2, 0, 0]);
    }

    #[test]
    fn inspect_shows_all_that_counts_even_above_a_lowered_limit() {
        let mut w = Fake::default();
        w.call(sliding(10, 60_000, 1_000), 5_000, 8);
        let state = w.state.as_ref().unwrap().clone();
        let lowered = WindowState {
            params: sliding(3, 60_000, 1_000),
            ..state
        };
        assert_eq!(inspect(&lowered, 5_000).used, 8);
    }

    #[test]
    fn time_never_runs_backwards() {
        let p = sliding(5, 10_000, 1_000);
        let mut w = Fake::default();
        w.call(p, 50_500, 1);
        assert_eq!(w.call(p, 40_000, 0), w.call(p, 50_500, 0));
    }

    /// With precision 1 every reply equals the sliding log's, on random
    /// traffic with changing parameters and times that go backwards.
    #[test]
    fn precision_one_is_the_sliding_log() {
        let mut rng = crate::test_rng::Rng::new(0x005e_ed0f_b17e);
        for _ in 0..300 {
            let mut window = Fake::default();
            let mut log: Option<LogState> = None;
            let mut now = 1_000_000;
            let (mut limit, mut window_ms) = (rng.range(1, 20), rng.range(1, 5_000));
            for _ in 0..200 {
                if rng.chance(5) {
                    limit = rng.range(1, 20);
                    window_ms = rng.range(1, 5_000);
                }
                now += rng.range(-100, 1_000);
                let cost = rng.range(0, 6);
                let got = window.call(sliding(limit, window_ms, 1), now, cost);
                let log_params = LogParams { limit, window_ms };
                let outcome = sliding_log::check(log.as_ref(), &log_params, now, cost);
                if outcome.writes {
                    let state = log.get_or_insert_with(|| LogState {
                        params: log_params,
                        records: Default::default(),
                    });
                    sliding_log::record(state, &log_params, outcome.at_ms, cost);
                }
                assert_eq!(got, outcome.evaluation.own_decision().as_array());
            }
        }
    }

    /// Against every call ever admitted, recounted on each call: no interval
    /// of window_ms holds more than the limit (each call at its counted ms),
    /// and a denied call would not fit even counting only the calls made in
    /// the last window_ms + precision ms.
    #[test]
    fn never_over_and_denied_only_within_a_precision() {
        let mut rng = crate::test_rng::Rng::new(0x00de_c0de);
        for _ in 0..200 {
            let (limit, window_ms) = (rng.range(1, 30), rng.range(10, 20_000));
            let p = sliding(limit, window_ms, rng.range(1, window_ms));
            let mut w = Fake::default();
            let mut admitted: Vec<(i64, i64)> = Vec::new();
            let mut now = rng.range(0, 1 << 40);
            for _ in 0..300 {
                now += rng.range(0, window_ms / 4 + 1);
                let cost = rng.range(1, 4);
                let reply = w.call(p, now, cost);
                let counted = saturate(p.counted_ms(p.slot_of(now)));
                let in_reach: i64 = admitted
                    .iter()
                    .filter(|&&(made, _)| made > now - window_ms - p.precision_ms)
                    .map(|&(_, c)| c)
                    .sum();
                if reply[0] == 1 {
                    admitted.push((now, cost));
                    let window_total: i64 = admitted
                        .iter()
                        .map(|&(made, c)| (saturate(p.counted_ms(p.slot_of(made))), c))
                        .filter(|&(at, _)| at > counted - window_ms)
                        .map(|(_, c)| c)
                        .sum();
                    assert!(window_total <= limit, "over the limit: {p:?}");
                } else {
                    assert!(in_reach + cost > limit, "denied with room: {p:?}");
                    let wait = reply[3];
                    if wait == NEVER {
                        assert!(cost > limit);
                        continue;
                    }
                    let later = check(w.state.as_ref(), &p, now + wait, cost);
                    assert!(later.evaluation.allowed, "retry too early: {p:?}");
                    if wait > 0 {
                        let sooner = check(w.state.as_ref(), &p, now + wait - 1, cost);
                        assert!(!sooner.evaluation.allowed, "retry too late: {p:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_days_window_holds_at_most_61_slots() {
        let day = 86_400_000;
        let p = sliding(1_000_000, day, default_precision(day));
        assert_eq!(p.precision_ms, 1_440_000);
        let mut w = Fake::default();
        let mut now = 0;
        for _ in 0..100_000 {
            now += 2 * day / 100_000;
            assert_eq!(w.call(p, now, 1)[0], 1);
        }
        let slots = &w.state.as_ref().unwrap().slots;
        assert!(slots.iter().count() <= 61);
        assert!(slots.heap_size() <= 128, "{}", slots.heap_size());
    }

    #[test]
    fn a_new_precision_moves_counts_never_earlier() {
        let coarse = sliding(10, 60_000, 10_000);
        let fine = sliding(10, 60_000, 1_000);
        let mut w = Fake::default();
        w.call(fine, 1_500, 4);
        // Counted at 1_999 under 1 s slots, at 9_999 under 10 s slots.
        assert_eq!(w.call(coarse, 2_000, 0), [1, 10, 6, 0, 67_999]);
        w.call(coarse, 2_000, 1);
        assert_eq!(w.call(fine, 2_000, 0), [1, 10, 5, 0, 67_999]);
        // Fixed and back: the stored cost counts as made at the last write.
        assert_eq!(w.call(fixed(10, 60_000), 2_000, 0), [1, 10, 5, 0, 58_000]);
        // A call in the slot before a moved count: the count still leaves
        // last, and the call's own slot goes in its place.
        assert_eq!(w.call(fine, 2_500, 1), [1, 10, 4, 0, 67_499]);
        let slots: Vec<_> = w.state.as_ref().unwrap().slots.iter().collect();
        assert_eq!(slots, [(2, 1), (9, 5)]);
    }

    #[test]
    fn extremes_stay_exact() {
        let p = sliding(i64::MAX, i64::MAX, i64::MAX);
        let mut w = Fake::default();
        assert_eq!(w.call(p, i64::MAX, i64::MAX)[0], 1);
        assert_eq!(w.call(p, i64::MAX, 1)[..2], [0, i64::MAX]);
        let f = fixed(1, i64::MAX);
        let mut w = Fake::default();
        assert_eq!(w.call(f, i64::MAX - 1, 1), [1, 1, 0, 0, 1]);
    }
}
