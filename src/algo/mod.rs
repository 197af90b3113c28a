//! Pure rate-limiting algorithms: no Redis types, no clock of their own.
//!
//! Each limiter is a function of (stored state, parameters, now, cost) that
//! returns a [`Decision`] and, when the call writes, the state to store.

#![forbid(unsafe_code)]

pub mod gcra;
pub mod ids;
pub mod leases;
pub mod math;
pub mod quota;
pub mod record_log;
pub mod reservations;
pub mod sliding_log;
pub mod slot_log;
pub mod small_ring;
pub mod token_bucket;
pub mod varint;
pub mod wait;
pub mod window;

/// What every limiter reports for a call: the five integers of the reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The capacity (bucket) or the limit (log).
    pub limit: i64,
    /// Whole units that could still be taken right now, after this call.
    pub remaining: i64,
    /// 0 when allowed; otherwise the least whole number of ms after which the
    /// same call would be allowed, or [`NEVER`].
    pub retry_after_ms: i64,
    /// Ms until the limiter is whole again, 0 when it is, or [`NEVER`].
    pub reset_after_ms: i64,
}

/// A limiter's view of one call: whether the cost fits, and the limiter
/// before and after taking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    /// Whether this limiter alone admits the cost.
    pub allowed: bool,
    pub limit: i64,
    /// 0 when allowed; otherwise as in [`Decision`].
    pub retry_after_ms: i64,
    /// The limiter as it stands (what a denied call reports).
    pub before: Snapshot,
    /// The limiter once the cost is taken (equal to `before` when denied).
    pub after: Snapshot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub remaining: i64,
    pub reset_after_ms: i64,
}

impl Evaluation {
    /// The reply for this limiter, after the cost was taken (`consumed`) or
    /// with the limiter untouched.
    pub fn decision(&self, consumed: bool) -> Decision {
        let snapshot = if consumed { self.after } else { self.before };
        Decision {
            allowed: self.allowed,
            limit: self.limit,
            remaining: snapshot.remaining,
            retry_after_ms: self.retry_after_ms,
            reset_after_ms: snapshot.reset_after_ms,
        }
    }

    /// The reply of a single-key command: consumed exactly when allowed.
    pub fn own_decision(&self) -> Decision {
        self.decision(self.allowed)
    }
}

/// The value of a duration that will never end.
pub const NEVER: i64 = -1;

impl Decision {
    pub fn as_array(&self) -> [i64; 5] {
        [
            i64::from(self.allowed),
            self.limit,
            self.remaining,
            self.retry_after_ms,
            self.reset_after_ms,
        ]
    }
}
