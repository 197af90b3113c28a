//! The server's clock, and its role and loading state as its events report
//! them.

use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use redis_module::raw;

use super::Ctx;

static IS_REPLICA: AtomicBool = AtomicBool::new(false);
static LOADING: AtomicBool = AtomicBool::new(false);
/// Called when what this server propagates starts a new stream.
static ON_NEW_STREAM: OnceLock<fn()> = OnceLock::new();

/// Whether this server follows a master.
pub fn is_replica() -> bool {
    IS_REPLICA.load(Ordering::Relaxed)
}

/// Whether a call may come from a master or a file being loaded: never on
/// a master that is not loading, which spares its writes a context lookup.
pub fn may_receive() -> bool {
    is_replica() || LOADING.load(Ordering::Relaxed)
}

/// Whether `CLIENT UNBLOCK` may interrupt a client the module blocks and
/// answers itself: Redis 7.2 and later (and Valkey, which reports 7.2.4).
/// On Redis 7.0, a client answered by the module and unblocked in the same
/// turn of the event loop never gets its reply.
pub fn unblock_is_safe() -> bool {
    match unsafe { raw::RedisModule_GetServerVersion } {
        // SAFETY: no arguments; the version as 0x00MMmmpp.
        Some(version) => (unsafe { version() }) >= 0x00_07_02_00,
        None => false,
    }
}

/// Whether writes are paused (`CLIENT PAUSE ... WRITE`, or a FAILOVER
/// under way): a write from a timer must wait until they resume. Redis
/// does not expire keys meanwhile, so a key past its expiry is still there
/// and one created in its place would abort the server.
pub fn writes_paused() -> bool {
    match unsafe { raw::RedisModule_AvoidReplicaTraffic } {
        // SAFETY: no arguments; reads the server's pause state.
        Some(avoid_replica_traffic) => (unsafe { avoid_replica_traffic() }) != 0,
        None => false,
    }
}

/// The server's clock in unix ms. Redis 7.2+ and Valkey cache it as each
/// command starts (the time they check key expiry against), which spares a
/// clock read; Redis 7.0 has no such cache.
pub fn clock_ms() -> i64 {
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

/// Learns the server's role and follows its events; `on_new_stream` runs
/// whenever what the server propagates starts a new stream: in a fork's
/// child (BGSAVE, a replica's full sync, an AOF rewrite: the stream that
/// follows its snapshot), on a change of role, and when a load ends.
pub fn follow_events(ctx: Ctx, on_new_stream: fn()) -> Result<(), &'static str> {
    let _ = ON_NEW_STREAM.set(on_new_stream);
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

fn new_stream() {
    if let Some(on_new_stream) = ON_NEW_STREAM.get() {
        on_new_stream();
    }
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
            new_stream()
        }
        raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED => {
            IS_REPLICA.store(
                subevent == raw::REDISMODULE_EVENT_REPLROLECHANGED_NOW_REPLICA,
                Ordering::Relaxed,
            );
            new_stream();
        }
        raw::REDISMODULE_EVENT_LOADING => {
            let ended = matches!(
                subevent,
                raw::REDISMODULE_SUBEVENT_LOADING_ENDED | raw::REDISMODULE_SUBEVENT_LOADING_FAILED
            );
            LOADING.store(!ended, Ordering::Relaxed);
            if subevent == raw::REDISMODULE_SUBEVENT_LOADING_ENDED {
                new_stream()
            }
        }
        _ => {}
    }
}
