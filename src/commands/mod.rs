//! One adapter per command family: parse arguments, load state, run the
//! pure algorithm, store, expire, replicate, reply.

pub mod all;
pub mod cell;
pub mod clock;
pub mod inspect;
pub mod lease;
pub mod replay;
pub mod reservation;
pub mod restore_state;
pub mod sliding_log;
pub mod token_bucket;

use crate::registry::CommandSpec;

/// One item per key of a call: on the stack for the usual few keys, so a
/// call allocates nothing for them.
pub type PerKey<T> = smallvec::SmallVec<[T; 4]>;

/// Every command the module registers.
pub fn all() -> [&'static CommandSpec; 15] {
    [
        &token_bucket::TOKENBUCKET,
        &token_bucket::COST,
        &sliding_log::SLIDELOG,
        &all::ALL,
        &reservation::RESERVE,
        &reservation::SETTLE,
        &reservation::CANCEL,
        &lease::ACQUIRE,
        &lease::RELEASE,
        &lease::EXTEND,
        &inspect::INSPECT,
        &restore_state::RESTORESTATE,
        &replay::REPLAY,
        &cell::THROTTLE,
        &clock::CLOCK,
    ]
}

/// The TTL a write needs: the ms until the limiter is whole again, none
/// when it never will be (a quota that never refills).
fn ttl_for(reset_after_ms: i64) -> Option<i64> {
    (reset_after_ms != crate::algo::NEVER).then_some(reset_after_ms.max(0))
}

/// What every write does besides storing: propagate the call (see
/// [`crate::replication`]) and send a keyspace event in the module class,
/// named after the command (`rl.tokenbucket`, ...), for each key written
/// (argument indexes in `written`).
fn publish_write(
    call: &crate::ffi::Call,
    spec: &'static CommandSpec,
    written: &[usize],
) -> crate::error::CommandResult<()> {
    crate::replication::publish(call)?;
    for &key in written {
        call.notify_module_event(spec.name, key);
    }
    Ok(())
}
