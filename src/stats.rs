//! What `INFO rl` reports: per command, its calls and how they were
//! answered; per data type, how many keys hold one.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::reply::Reply;

/// A counter bumped only by commands, which Redis runs one at a time on its
/// main thread (where INFO reads it too): a plain load and store, no
/// locked instruction on the hot path.
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    pub fn bump(&self) {
        self.add(1);
    }

    /// Adds `amount` (at least 0).
    pub fn add(&self, amount: i64) {
        let value = self.0.load(Ordering::Relaxed);
        let amount = u64::try_from(amount).unwrap_or(0);
        self.0.store(value.wrapping_add(amount), Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        i64::try_from(self.0.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
    }
}

/// Panics caught in command handlers (each logged and answered with an
/// error). There should never be any.
pub static PANICS: Counter = Counter::new();

/// How one command's calls went. `allowed` and `denied` count the calls
/// whose reply says so (peeks included); `errors` those answered with an
/// error.
pub struct CommandStats {
    calls: Counter,
    allowed: Counter,
    denied: Counter,
    errors: Counter,
}

impl CommandStats {
    pub const fn new() -> CommandStats {
        CommandStats {
            calls: Counter::new(),
            allowed: Counter::new(),
            denied: Counter::new(),
            errors: Counter::new(),
        }
    }

    pub fn record(&self, outcome: Result<&Reply, ()>) {
        self.calls.bump();
        match outcome.map(Reply::verdict) {
            Ok(Some(true)) => self.allowed.bump(),
            Ok(Some(false)) => self.denied.bump(),
            Ok(None) => {}
            Err(()) => self.errors.bump(),
        }
    }

    /// `calls`, `allowed`, `denied` and `errors`.
    pub fn fields(&self) -> [(&'static str, i64); 4] {
        [
            ("calls", self.calls.get()),
            ("allowed", self.allowed.get()),
            ("denied", self.denied.get()),
            ("errors", self.errors.get()),
        ]
    }
}

/// Keys holding a value of one data type. Values are freed on the main
/// thread or, with lazy freeing, on a background one: atomic updates.
pub struct LiveKeys(AtomicI64);

impl LiveKeys {
    pub const fn new() -> LiveKeys {
        LiveKeys(AtomicI64::new(0))
    }

    pub fn created(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn freed(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}
