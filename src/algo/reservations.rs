//! Reservations on a token bucket: take an estimate now, settle it with the
//! real cost later. A reservation is open at times before its end and closed
//! from then on; one whose end passes unsettled stays charged at its estimate.

use super::ids::next_id;
use super::token_bucket::{self, BucketOutcome, BucketParams, BucketState};
use super::wait::credit;
use super::Decision;

/// The most reservations a key holds open at once.
pub const MAX_OPEN: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub id: i64,
    pub estimate: i64,
    /// Unix ms from which the reservation is closed.
    pub ends_ms: i64,
}

/// What a bucket that has ever reserved keeps besides its tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reservations {
    /// The last id issued: ids never repeat within the key.
    pub last_id: i64,
    /// Open reservations, oldest first (ids increase).
    pub open: Vec<Reservation>,
}

impl Reservations {
    /// Forgets the reservations closed at `at_ms` (their estimate stays spent).
    pub fn prune(&mut self, at_ms: i64) {
        self.open.retain(|r| r.ends_ms > at_ms);
    }

    /// When the last open reservation closes.
    pub fn last_end_ms(&self) -> Option<i64> {
        self.open.iter().map(|r| r.ends_ms).max()
    }

    fn find_open(&self, id: i64, at_ms: i64) -> Option<&Reservation> {
        self.open.iter().find(|r| r.id == id && r.ends_ms > at_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveError {
    /// [`MAX_OPEN`] reservations are open already.
    TooManyOpen,
    /// The time is too far in the future for an id below 2^53.
    IdsExhausted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReserveOutcome {
    /// Decided exactly as RL.COST with cost = estimate.
    pub bucket: BucketOutcome,
    /// The reservation opened when allowed.
    pub opened: Option<Reservation>,
}

/// Takes `estimate` tokens and opens a reservation until `at + lease_ms`.
pub fn reserve(
    state: Option<&BucketState>,
    reservations: Option<&Reservations>,
    params: &BucketParams,
    now_ms: i64,
    estimate: i64,
    lease_ms: i64,
) -> Result<ReserveOutcome, ReserveError> {
    let bucket = token_bucket::take(state, params, now_ms, estimate);
    if bucket.write.is_none() {
        return Ok(ReserveOutcome {
            bucket,
            opened: None,
        });
    }
    let ends_ms = bucket.at_ms.saturating_add(lease_ms);
    let opened = open_reservation(reservations, bucket.at_ms, estimate, ends_ms)?;
    Ok(ReserveOutcome {
        bucket,
        opened: Some(opened),
    })
}

/// A new reservation of `estimate` at `at_ms`, open until `ends_ms`, with
/// the key's next id; refused when [`MAX_OPEN`] are open already.
pub fn open_reservation(
    reservations: Option<&Reservations>,
    at_ms: i64,
    estimate: i64,
    ends_ms: i64,
) -> Result<Reservation, ReserveError> {
    let live = reservations.map_or(0, |r| r.open.iter().filter(|o| o.ends_ms > at_ms).count());
    if live >= MAX_OPEN {
        return Err(ReserveError::TooManyOpen);
    }
    let id =
        next_id(reservations.map_or(0, |r| r.last_id), at_ms).ok_or(ReserveError::IdsExhausted)?;
    Ok(Reservation {
        id,
        estimate,
        ends_ms,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettleOutcome {
    /// Whether an open reservation was closed.
    pub settled: bool,
    /// `[settled, limit, remaining, retry_after_ms, reset_after_ms]`, the
    /// retry for a call of cost 1, under the parameters of the last write.
    pub decision: Decision,
    /// The bucket to store when settled.
    pub write: Option<BucketState>,
    pub at_ms: i64,
}

/// Closes reservation `id` and credits `estimate - actual_cost`: a refund
/// (capped at capacity) or an extra debit, which may leave the bucket in
/// debt (capped at i64::MAX tokens). Unknown, closed or ended reservations
/// change nothing.
pub fn settle(
    state: &BucketState,
    reservations: Option<&Reservations>,
    id: i64,
    actual_cost: i64,
    now_ms: i64,
) -> SettleOutcome {
    let params = &state.params;
    let at_ms = now_ms.max(state.updated_ms);
    let open = reservations.and_then(|r| r.find_open(id, at_ms));
    let write = open.map(|reservation| {
        credit(
            state,
            reservation.estimate.saturating_sub(actual_cost),
            at_ms,
        )
    });
    let after = write.as_ref().unwrap_or(state);
    let view = token_bucket::take(Some(after), params, at_ms, 1).evaluation;
    SettleOutcome {
        settled: write.is_some(),
        decision: Decision {
            allowed: write.is_some(),
            limit: params.capacity,
            remaining: view.before.remaining,
            retry_after_ms: view.retry_after_ms,
            reset_after_ms: view.before.reset_after_ms,
        },
        write,
        at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_000;

    struct Fake {
        state: Option<BucketState>,
        reservations: Reservations,
    }

    impl Fake {
        fn new() -> Self {
            Fake {
                state: None,
                reservations: Reservations::default(),
            }
        }
        fn reserve(
            &mut self,
            p: BucketParams,
            at: i64,
            estimate: i64,
            lease: i64,
        ) -> ([i64; 5], i64) {
            let outcome = reserve(
                self.state.as_ref(),
                Some(&self.reservations),
                &p,
                at,
                estimate,
                lease,
            )
            .expect("reserve");
            if let (Some(written), Some(opened)) = (outcome.bucket.write, outcome.opened) {
                self.state = Some(written);
                self.reservations.prune(outcome.bucket.at_ms);
                self.reservations.last_id = opened.id;
                self.reservations.open.push(opened);
            }
            (
                outcome.bucket.evaluation.own_decision().as_array(),
                outcome.opened.map_or(0, |o| o.id),
            )
        }
        fn settle(&mut self, id: i64, actual: i64, at: i64) -> [i64; 5] {
            let state = self.state.expect("bucket");
            let outcome = settle(&state, Some(&self.reservations), id, actual, at);
            if let Some(written) = outcome.write {
                self.state = Some(written);
                self.reservations.open.retain(|r| r.id != id);
            }
            outcome.decision.as_array()
        }
        fn take(&mut self, p: BucketParams, at: i64, cost: i64) -> [i64; 5] {
            let outcome = token_bucket::take(self.state.as_ref(), &p, at, cost);
            if let Some(written) = outcome.write {
                self.state = Some(written);
            }
            outcome.evaluation.own_decision().as_array()
        }
    }

    fn params() -> BucketParams {
        BucketParams {
            capacity: 1000,
            refill_amount: 100,
            refill_period_ms: 1000,
        }
    }

    #[test]
    fn contract_example() {
        let p = params();
        let mut b = Fake::new();
        let (reply, id1) = b.reserve(p, T, 600, 30_000);
        assert_eq!(reply, [1, 1000, 400, 0, 6000]);
        assert!(id1 > 0);
        assert_eq!(b.settle(id1, 250, T), [1, 1000, 750, 0, 2500]);
        assert_eq!(b.settle(id1, 250, T), [0, 1000, 750, 0, 2500]);
        let (_, id2) = b.reserve(p, T, 700, 30_000);
        assert!(id2 > id1);
        assert_eq!(b.settle(id2, 800, T), [1, 1000, 0, 510, 10500]);
        assert_eq!(b.state.map(|s| s.level), Some(-50 * 1000));
        assert_eq!(b.take(p, T, 1), [0, 1000, 0, 510, 10500]);
        assert_eq!(b.take(p, T, 0)[..4], [0, 1000, 0, 500]);
        assert_eq!(b.take(p, T + 509, 1)[0], 0);
        assert_eq!(b.take(p, T + 510, 1)[0], 1);
    }

    #[test]
    fn refunds_are_capped_at_capacity() {
        let p = params();
        let mut b = Fake::new();
        let (_, id) = b.reserve(p, T, 100, 60_000);
        assert_eq!(b.settle(id, 0, T + 10_000), [1, 1000, 1000, 0, 0]);
    }

    #[test]
    fn ended_and_unknown_reservations_settle_nothing() {
        let p = params();
        let mut b = Fake::new();
        let (_, id) = b.reserve(p, T, 300, 1000);
        assert_eq!(b.settle(id + 1, 0, T)[0], 0);
        // Open before T + 1000, closed from then: the estimate stays spent.
        assert_eq!(b.settle(id, 0, T + 1000), [0, 1000, 800, 0, 2000]);
        assert_eq!(b.state.map(|s| s.updated_ms), Some(T));
    }

    #[test]
    fn denied_reservations_open_nothing() {
        let p = params();
        let mut b = Fake::new();
        assert_eq!(b.reserve(p, T, 1001, 1000), ([0, 1000, 1000, -1, 0], 0));
        assert_eq!(b.state, None);
    }

    #[test]
    fn open_reservations_are_bounded() {
        let p = BucketParams {
            capacity: i64::MAX,
            refill_amount: 0,
            refill_period_ms: 1,
        };
        let mut b = Fake::new();
        for _ in 0..MAX_OPEN {
            b.reserve(p, T, 1, 60_000);
        }
        let error = reserve(b.state.as_ref(), Some(&b.reservations), &p, T, 1, 60_000);
        assert_eq!(error, Err(ReserveError::TooManyOpen));
        // Once they end, new ones open again.
        assert!(reserve(
            b.state.as_ref(),
            Some(&b.reservations),
            &p,
            T + 60_000,
            1,
            1
        )
        .is_ok());
    }

    #[test]
    fn extreme_debits_stay_bounded() {
        let p = BucketParams {
            capacity: i64::MAX,
            refill_amount: 1,
            refill_period_ms: i64::MAX,
        };
        let mut b = Fake::new();
        let (_, id) = b.reserve(p, 0, 1, i64::MAX);
        let reply = b.settle(id, i64::MAX, 0);
        assert_eq!(reply[..3], [1, i64::MAX, 0]);
        assert_eq!(reply[3], i64::MAX);
    }
}
