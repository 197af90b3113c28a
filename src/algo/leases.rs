//! Concurrency leases: at most `limit` requests in flight. A lease ends at
//! its expiry unless released or extended, so a crashed holder's slot comes
//! back by itself, with no background sweep.

use super::ids::next_id;
use super::{Evaluation, Snapshot, NEVER};

/// The largest accepted lease limit.
pub const MAX_LEASE_LIMIT: i64 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    /// Unix ms at which the lease ends.
    pub ends_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseParams {
    pub limit: i64,
    pub lease_ms: i64,
}

/// What a lease key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseState {
    /// The limit of the last acquire.
    pub limit: i64,
    /// Unix ms of the last write.
    pub updated_ms: i64,
    pub last_id: i64,
    /// Leases, by increasing id; some may have ended (pruned on writes).
    pub leases: Vec<Lease>,
}

impl LeaseState {
    fn live(&self, at_ms: i64) -> impl Iterator<Item = &Lease> {
        self.leases.iter().filter(move |l| l.ends_ms > at_ms)
    }

    /// When the last live lease ends.
    pub fn last_end_ms(&self, at_ms: i64) -> Option<i64> {
        self.live(at_ms).map(|l| l.ends_ms).max()
    }

    fn at(&self, now_ms: i64) -> i64 {
        now_ms.max(self.updated_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquireOutcome {
    pub evaluation: Evaluation,
    /// The lease opened when allowed with cost 1.
    pub opened: Option<Lease>,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquireError {
    /// The time is too far in the future for an id below 2^53.
    IdsExhausted,
}

/// Takes `cost` (0: a peek, or 1) slots if fewer than `limit` leases are live.
pub fn acquire(
    state: Option<&LeaseState>,
    params: &LeaseParams,
    now_ms: i64,
    cost: i64,
) -> Result<AcquireOutcome, AcquireError> {
    let at_ms = state.map_or(now_ms, |s| s.at(now_ms));
    let mut ends: Vec<i64> =
        state.map_or_else(Vec::new, |s| s.live(at_ms).map(|l| l.ends_ms).collect());
    ends.sort_unstable();
    let live = i64::try_from(ends.len()).unwrap_or(i64::MAX);
    let allowed = live.saturating_add(cost) <= params.limit;
    let until = |end: i64| end.saturating_sub(at_ms);
    let retry_after_ms = if allowed {
        0
    } else if cost > params.limit {
        NEVER
    } else {
        // Enough leases must end for this one to fit: the k-th earliest end.
        let must_end = usize::try_from(live + cost - params.limit).unwrap_or(usize::MAX);
        ends.get(must_end.saturating_sub(1))
            .map_or(NEVER, |&end| until(end))
    };
    let before = Snapshot {
        remaining: (params.limit - live).max(0),
        reset_after_ms: ends.last().map_or(0, |&end| until(end)),
    };
    let opened = if allowed && cost > 0 {
        let id =
            next_id(state.map_or(0, |s| s.last_id), at_ms).ok_or(AcquireError::IdsExhausted)?;
        Some(Lease {
            id,
            ends_ms: at_ms.saturating_add(params.lease_ms),
        })
    } else {
        None
    };
    let after = match opened {
        Some(lease) => Snapshot {
            remaining: (params.limit - live - 1).max(0),
            reset_after_ms: before.reset_after_ms.max(until(lease.ends_ms)),
        },
        None => before,
    };
    Ok(AcquireOutcome {
        evaluation: Evaluation {
            allowed,
            limit: params.limit,
            retry_after_ms,
            before,
            after,
        },
        opened,
        at_ms,
    })
}

/// Stores an opened lease: drops the ended ones, adds it.
pub fn record(state: &mut LeaseState, params: &LeaseParams, outcome: &AcquireOutcome) {
    let Some(lease) = outcome.opened else {
        return;
    };
    state.leases.retain(|l| l.ends_ms > outcome.at_ms);
    state.leases.push(lease);
    state.limit = params.limit;
    state.last_id = lease.id;
    state.updated_ms = outcome.at_ms;
}

/// Ends lease `id` if it is live; returns whether it was.
pub fn release(state: &mut LeaseState, id: i64, now_ms: i64) -> bool {
    let at_ms = state.at(now_ms);
    let live = state.leases.iter().any(|l| l.id == id && l.ends_ms > at_ms);
    if live {
        state.leases.retain(|l| l.id != id && l.ends_ms > at_ms);
        state.updated_ms = at_ms;
    }
    live
}

/// Whether `release` would end a live lease, without changing anything.
pub fn is_live(state: &LeaseState, id: i64, now_ms: i64) -> bool {
    let at_ms = state.at(now_ms);
    state.leases.iter().any(|l| l.id == id && l.ends_ms > at_ms)
}

/// Moves live lease `id` to end at `now + lease_ms` (later or earlier);
/// returns whether it was live.
pub fn extend(state: &mut LeaseState, id: i64, lease_ms: i64, now_ms: i64) -> bool {
    let at_ms = state.at(now_ms);
    let live = is_live(state, id, now_ms);
    if live {
        state.leases.retain(|l| l.ends_ms > at_ms);
        for lease in state.leases.iter_mut().filter(|l| l.id == id) {
            lease.ends_ms = at_ms.saturating_add(lease_ms);
        }
        state.updated_ms = at_ms;
    }
    live
}

/// What RL.INSPECT shows of a lease key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseView {
    pub live: i64,
    pub next_end_ms: Option<i64>,
    pub last_end_ms: Option<i64>,
}

pub fn inspect(state: &LeaseState, now_ms: i64) -> LeaseView {
    let at_ms = state.at(now_ms);
    LeaseView {
        live: i64::try_from(state.live(at_ms).count()).unwrap_or(i64::MAX),
        next_end_ms: state.live(at_ms).map(|l| l.ends_ms).min(),
        last_end_ms: state.last_end_ms(at_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_000;

    struct Fake {
        state: Option<LeaseState>,
    }

    impl Fake {
        fn acquire(&mut self, limit: i64, lease_ms: i64, at: i64) -> ([i64; 5], i64) {
            let params = LeaseParams { limit, lease_ms };
            let outcome = acquire(self.state.as_ref(), &params, at, 1).expect("id");
            if outcome.opened.is_some() {
                let state = self.state.get_or_insert_with(|| LeaseState {
                    limit,
                    updated_ms: at,
                    last_id: 0,
                    leases: Vec::new(),
                });
                record(state, &params, &outcome);
            }
            (
                outcome.evaluation.own_decision().as_array(),
                outcome.opened.map_or(0, |l| l.id),
            )
        }
    }

    #[test]
    fn admits_the_limit_and_frees_slots_as_leases_end() {
        let mut f = Fake { state: None };
        let (first, id1) = f.acquire(2, 1000, T);
        assert_eq!(first, [1, 2, 1, 0, 1000]);
        let (second, id2) = f.acquire(2, 5000, T + 100);
        assert_eq!(second, [1, 2, 0, 0, 5000]);
        assert!(id2 > id1);
        assert_eq!(f.acquire(2, 1000, T + 200), ([0, 2, 0, 800, 4900], 0));
        // The first lease ends at T + 1000: a crashed holder's slot comes back.
        assert_eq!(f.acquire(2, 1000, T + 1000).0, [1, 2, 0, 0, 4100]);
    }

    #[test]
    fn a_lowered_limit_waits_for_enough_leases_to_end() {
        let mut f = Fake { state: None };
        for end in [1000, 2000, 3000] {
            f.acquire(3, end, T);
        }
        assert_eq!(f.acquire(1, 1000, T), ([0, 1, 0, 3000, 3000], 0));
        assert_eq!(f.acquire(2, 1000, T), ([0, 2, 0, 2000, 3000], 0));
        let peek = acquire(
            f.state.as_ref(),
            &LeaseParams {
                limit: 1,
                lease_ms: 1,
            },
            T,
            0,
        )
        .expect("id");
        assert_eq!(
            peek.evaluation.own_decision().as_array(),
            [0, 1, 0, 2000, 3000]
        );
    }

    #[test]
    fn release_and_extend_are_idempotent() {
        let mut f = Fake { state: None };
        let (_, id) = f.acquire(1, 1000, T);
        let state = f.state.as_mut().expect("state");
        assert!(extend(state, id, 5000, T + 500));
        assert_eq!(inspect(state, T + 500).last_end_ms, Some(T + 5500));
        assert!(!extend(state, id + 1, 5000, T + 500));
        assert!(extend(state, id, 10, T + 600), "extend may shorten");
        assert!(!release(state, id, T + 610), "ended at T + 610");
        let (_, id2) = f.acquire(1, 1000, T + 700);
        let state = f.state.as_mut().expect("state");
        assert!(release(state, id2, T + 800));
        assert!(!release(state, id2, T + 800));
        assert_eq!(
            inspect(state, T + 800),
            LeaseView {
                live: 0,
                next_end_ms: None,
                last_end_ms: None
            }
        );
    }
}
