//! `WAIT timeout_ms`: the server holds a call until its limiters allow it,
//! first come first served. A bucket call takes its cost at once as a debt
//! and is answered when it is due ([`super::bucket_wait`]); an RL.ACQUIRE
//! short of a slot waits in its key's line ([`super::lease_wait`]); an
//! RL.ALL does both ([`super::all_wait`]). What they share: the option's
//! range, the counters of `INFO rl`, and how writes wait out a pause.

#![forbid(unsafe_code)]

use crate::algo::token_bucket::BucketParams;
use crate::args::{IntArg, Options};
use crate::config;
use crate::error::CommandResult;
use crate::stats::Counter;

/// The `WAIT` option's value, checked against `rl.max-wait-ms`.
pub fn timeout(options: &Options) -> CommandResult<Option<i64>> {
    let range = IntArg::new("WAIT timeout_ms", 1, config::MAX_WAIT_MS.get());
    options.wait.map(|raw| range.parse(raw)).transpose()
}

/// What a waiting bucket call needs to be answered, or refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// When its tokens have come in (unix ms).
    pub due_ms: i64,
    /// The call's bucket parameters (its answer peeks with them).
    pub params: BucketParams,
    pub cost: i64,
    /// RL.RESERVE's reservation.
    pub reservation: Option<i64>,
}

/// How soon a write that waits for paused writes to resume tries again.
pub(super) const PAUSED_RETRY_MS: i64 = 10;

pub(super) static STARTED: Counter = Counter::new();
pub(super) static GRANTED: Counter = Counter::new();
pub(super) static TIMED_OUT: Counter = Counter::new();
pub(super) static REFUNDED: Counter = Counter::new();
pub(super) static WAITED_MS: Counter = Counter::new();

/// `INFO rl`: waits started, answered allowed, timed out, refunded on a
/// disconnection, and the ms they lasted in all.
pub fn wait_fields() -> [(&'static str, i64); 5] {
    [
        ("total", STARTED.get()),
        ("granted", GRANTED.get()),
        ("timedout", TIMED_OUT.get()),
        ("refunded", REFUNDED.get()),
        ("waited_ms", WAITED_MS.get()),
    ]
}
