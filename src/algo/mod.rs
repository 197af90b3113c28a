//! Pure rate-limiting algorithms: no Redis types, no clock of their own.
//!
//! Each limiter is a function of (stored state, parameters, now, cost) that
//! returns a [`Decision`] and, when the call writes, the state to store.

pub mod math;
pub mod record_log;
pub mod sliding_log;
pub mod token_bucket;

/// What every limiter reports for a call: the five integers of the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
