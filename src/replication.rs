//! How writes reach replicas and the AOF while staying deterministic.
//!
//! A write travels exactly as the client sent it (`RedisModule_ReplicateVerbatim`:
//! no command lookup, no new strings). A call that pinned its time with `AT`
//! carries that time in its words. A call that read the server clock does
//! not, so the stream carries the master's clock beside the writes:
//! `RL.CLOCK unix_ms` goes out before a write whenever the write's ms
//! differs from the last one the stream announced, which costs one extra
//! command per millisecond, not one per write. Replicas and AOF loading run
//! writes that pinned no time at the last announced ms.
//!
//! A consumer that starts reading a stream part-way must know the clock in
//! effect at that point:
//! - A fork (BGSAVE, a replica's full sync, an AOF rewrite) starts the
//!   stream that follows its snapshot, and a change of role or the end of a
//!   load starts a new stream: after each, the next write announces its ms
//!   again, whatever was announced before.
//! - An RDB carries the clock in effect at its point of the stream (aux
//!   data of the bucket type): the clock this server announced when it is
//!   a master, the one its master announced when it is a replica. A replica
//!   that restarts from its RDB and resumes with a partial sync, and a
//!   replica of a replica that syncs from it, need that.
//!
//! An announcement made where Redis may drop what a call propagates (inside
//! another module's `RedisModule_Call` without `!`) is not remembered: the
//! next write announces its ms again.

use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use redis_module::raw;

use crate::ffi::{Call, Ctx};

/// No clock known.
const UNKNOWN: i64 = i64::MIN;

/// The ms this server's outgoing stream last announced.
static ANNOUNCED: AtomicI64 = AtomicI64::new(UNKNOWN);
/// The ms the master's stream (or the AOF or RDB being loaded) last announced.
static RECEIVED: AtomicI64 = AtomicI64::new(UNKNOWN);
static IS_REPLICA: AtomicBool = AtomicBool::new(false);
static LOADING: AtomicBool = AtomicBool::new(false);
/// Writes from the master or a file that ran on this server's clock, since
/// no clock was known (`INFO rl`).
static UNCLOCKED_WRITES: AtomicI64 = AtomicI64::new(0);

/// The time a call that pins none runs at: the server clock, or for a write
/// from the master or from a file being loaded, the clock the stream
/// announced.
pub fn clock_ms(call: &Call) -> i64 {
    stream_or_server_clock(call, true)
}

/// The time the TTLs of a call pinned with `AT` count from: [`clock_ms`],
/// except that a write from a stream that announced no clock (one from an
/// earlier build) is not counted as unclocked, since its decision pinned
/// its time.
pub fn ttl_clock_ms(call: &Call) -> i64 {
    stream_or_server_clock(call, false)
}

fn stream_or_server_clock(call: &Call, count_unclocked: bool) -> i64 {
    if call.is_replicated_or_loading() {
        match RECEIVED.load(Ordering::Relaxed) {
            UNKNOWN if count_unclocked => {
                if UNCLOCKED_WRITES.fetch_add(1, Ordering::Relaxed) == 0 {
                    call.log_warning(
                        c"rl: a replicated write pinned no time and no RL.CLOCK preceded it; it runs on this server's clock (INFO rl counts them: unclocked_writes)",
                    );
                }
            }
            UNKNOWN => {}
            announced => return announced,
        }
    }
    server_clock_ms()
}

/// Whether this server follows a master.
pub fn is_replica() -> bool {
    IS_REPLICA.load(Ordering::Relaxed)
}

/// Whether a call may come from a master or a file being loaded: never on
/// a master that is not loading, which spares its writes a context lookup.
pub fn may_receive() -> bool {
    is_replica() || LOADING.load(Ordering::Relaxed)
}

/// The server's clock in unix ms. Redis 7.2+ and Valkey cache it as each
/// command starts (the time they check key expiry against), which spares a
/// clock read; Redis 7.0 has no such cache.
pub fn server_clock_ms() -> i64 {
    if let Some(cached_micros) = unsafe { raw::RedisModule_CachedMicroseconds } {
        // SAFETY: no arguments; reads the server's cached time.
        return unsafe { cached_micros() }.div_euclid(1000);
    }
    match unsafe { raw::RedisModule_Milliseconds } {
        // SAFETY: no arguments; reads the clock.
        Some(milliseconds) => unsafe { milliseconds() },
        None => 0,
    }
}

/// Propagates a write, announcing the ms it read with [`clock_ms`] or
/// [`ttl_clock_ms`].
pub fn publish(call: &Call) -> crate::error::CommandResult<()> {
    if let Some(ms) = call.clock_read() {
        if ANNOUNCED.load(Ordering::Relaxed) != ms {
            call.replicate_clock(ms)?;
            // Where what a call propagates may be dropped, the next write
            // announces its ms again.
            let sent = if call.may_lose_propagation() {
                UNKNOWN
            } else {
                ms
            };
            ANNOUNCED.store(sent, Ordering::Relaxed);
        }
    }
    call.replicate_verbatim();
    Ok(())
}

/// How many writes from the master or a file ran on this server's clock.
pub fn unclocked_writes() -> i64 {
    UNCLOCKED_WRITES.load(Ordering::Relaxed)
}

/// Records the clock the master (or the file being loaded) announced.
pub fn received(ms: i64) {
    RECEIVED.store(ms, Ordering::Relaxed);
}

/// The clock in effect at this point of the stream that a snapshot taken
/// now would be followed by. A master that announced none yet will
/// announce before its next write, so any value serves; the received one
/// covers a replica that has not learnt its role yet (a cluster replica
/// learns it after loading).
fn stream_clock() -> i64 {
    match ANNOUNCED.load(Ordering::Relaxed) {
        announced if announced != UNKNOWN && !IS_REPLICA.load(Ordering::Relaxed) => announced,
        _ => RECEIVED.load(Ordering::Relaxed),
    }
}

fn restart_stream() {
    ANNOUNCED.store(UNKNOWN, Ordering::Relaxed);
}

/// Learns the server's role and follows the events that start a stream.
pub fn init(ctx: Ctx) -> Result<(), &'static str> {
    if let Some(flags) = unsafe { raw::RedisModule_GetContextFlags } {
        // SAFETY: ctx is the module's load context.
        let flags = unsafe { flags(ctx) } as u32;
        IS_REPLICA.store(
            flags & raw::REDISMODULE_CTX_FLAGS_SLAVE != 0,
            Ordering::Relaxed,
        );
        LOADING.store(
            flags & raw::REDISMODULE_CTX_FLAGS_LOADING != 0,
            Ordering::Relaxed,
        );
    }
    let subscribe = unsafe { raw::RedisModule_SubscribeToServerEvent }
        .ok_or("this server lacks server events")?;
    for id in [
        raw::REDISMODULE_EVENT_FORK_CHILD,
        raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED,
        raw::REDISMODULE_EVENT_LOADING,
    ] {
        let event = raw::RedisModuleEvent { id, dataver: 1 };
        // SAFETY: ctx is the module's load context; the callback is static.
        if unsafe { subscribe(ctx, event, Some(on_server_event)) } != raw::Status::Ok as c_int {
            return Err("could not subscribe to server events");
        }
    }
    Ok(())
}

extern "C" fn on_server_event(
    _ctx: *mut raw::RedisModuleCtx,
    event: raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut std::ffi::c_void,
) {
    match event.id {
        raw::REDISMODULE_EVENT_FORK_CHILD
            if subevent == raw::REDISMODULE_SUBEVENT_FORK_CHILD_BORN =>
        {
            restart_stream()
        }
        raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED => {
            IS_REPLICA.store(
                subevent == raw::REDISMODULE_EVENT_REPLROLECHANGED_NOW_REPLICA,
                Ordering::Relaxed,
            );
            restart_stream();
        }
        raw::REDISMODULE_EVENT_LOADING => {
            let ended = matches!(
                subevent,
                raw::REDISMODULE_SUBEVENT_LOADING_ENDED | raw::REDISMODULE_SUBEVENT_LOADING_FAILED
            );
            LOADING.store(!ended, Ordering::Relaxed);
            if subevent == raw::REDISMODULE_SUBEVENT_LOADING_ENDED {
                restart_stream()
            }
        }
        _ => {}
    }
}

/// Saves the stream's clock in an RDB (Redis 7.0, which always writes the
/// aux field).
pub extern "C" fn aux_save(rdb: *mut raw::RedisModuleIO, _when: c_int) {
    if let Some(save) = unsafe { raw::RedisModule_SaveSigned } {
        // SAFETY: rdb is the live saving stream.
        unsafe { save(rdb, stream_clock()) };
    }
}

/// Saves the stream's clock in an RDB (Redis 7.2+ and Valkey): nothing
/// when no clock is known, so such an RDB loads without the module.
pub extern "C" fn aux_save_when_known(rdb: *mut raw::RedisModuleIO, when: c_int) {
    if stream_clock() != UNKNOWN {
        aux_save(rdb, when);
    }
}

pub extern "C" fn aux_load(rdb: *mut raw::RedisModuleIO, encver: c_int, _when: c_int) -> c_int {
    // The clock is one signed integer in every encoding version.
    let (true, Some(load)) = (
        (1..=crate::types::ENCODING_VERSION).contains(&encver),
        unsafe { raw::RedisModule_LoadSigned },
    ) else {
        return raw::Status::Err as c_int;
    };
    // SAFETY: rdb is the live loading stream.
    received(unsafe { load(rdb) });
    raw::Status::Ok as c_int
}
