//! What `INFO rl` reports: per command, its calls and how they were
//! answered; per data type, how many keys hold one.

use std::ffi::{c_int, CStr};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use redis_module::raw;

use crate::reply::Reply;

/// A counter bumped only by commands, which Redis runs one at a time on its
/// main thread (where INFO reads it too): a plain load and store, no
/// locked instruction on the hot path.
pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    fn bump(&self) {
        let value = self.0.load(Ordering::Relaxed);
        self.0.store(value.wrapping_add(1), Ordering::Relaxed);
    }

    fn get(&self) -> i64 {
        i64::try_from(self.0.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
    }
}

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

    fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Registers the `rl` INFO sections (`INFO rl`, `INFO modules`, `INFO
/// everything`); false on servers without the API.
pub fn register_info(ctx: *mut raw::RedisModuleCtx) -> bool {
    match unsafe { raw::RedisModule_RegisterInfoFunc } {
        // SAFETY: ctx is the module's load context.
        Some(register) => (unsafe { register(ctx, Some(info)) }) == raw::Status::Ok as c_int,
        None => false,
    }
}

/// `# rl_commands`: `rl_<command>:calls=..,allowed=..,denied=..,errors=..`
/// (the command in lower case, less a leading `rl.`); `# rl_keys`:
/// `rl_keys_<type>:<count>`; `# rl_replication`: `rl_unclocked_writes`.
extern "C" fn info(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    let (Some(section), Some(begin), Some(field), Some(end)) = (
        unsafe { raw::RedisModule_InfoAddSection },
        unsafe { raw::RedisModule_InfoBeginDictField },
        unsafe { raw::RedisModule_InfoAddFieldLongLong },
        unsafe { raw::RedisModule_InfoEndDictField },
    ) else {
        return;
    };
    // SAFETY: ctx is the live INFO context; every name is nul-terminated
    // and Redis copies it.
    unsafe {
        section(ctx, c"commands".as_ptr());
        for spec in crate::commands::all() {
            let name = info_name(spec.name);
            begin(ctx, name.as_ptr().cast());
            for (label, counter) in [
                (c"calls", &spec.stats.calls),
                (c"allowed", &spec.stats.allowed),
                (c"denied", &spec.stats.denied),
                (c"errors", &spec.stats.errors),
            ] {
                field(ctx, label.as_ptr(), counter.get());
            }
            end(ctx);
        }
        section(ctx, c"keys".as_ptr());
        for (label, live) in crate::types::live_keys() {
            field(ctx, label.as_ptr(), live.get());
        }
        section(ctx, c"replication".as_ptr());
        field(
            ctx,
            c"unclocked_writes".as_ptr(),
            crate::replication::unclocked_writes(),
        );
    }
}

/// `RL.TOKENBUCKET` -> `tokenbucket`, `CL.THROTTLE` -> `cl.throttle`,
/// nul-terminated.
fn info_name(command: &CStr) -> [u8; 32] {
    crate::ffi::lowercase_name(crate::args::strip_prefix_ignore_case(
        command.to_bytes(),
        b"rl.",
    ))
}
