//! One adapter per command family: parse arguments, load state, run the
//! pure algorithm, store, expire, replicate, reply.

pub mod all;
pub mod cell;
pub mod inspect;
pub mod lease;
pub mod replay;
pub mod reservation;
pub mod restore_state;
pub mod sliding_log;
pub mod token_bucket;

use crate::registry::{CommandSpec, KeyLayout};

/// One item per key of a call: on the stack for the usual few keys, so a
/// call allocates nothing for them.
pub type PerKey<T> = smallvec::SmallVec<[T; 4]>;

/// Every command the module registers.
pub fn all() -> [&'static CommandSpec; 14] {
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
    ]
}

/// The TTL a write needs: the ms until the limiter is whole again, none
/// when it never will be (a quota that never refills).
fn ttl_for(reset_after_ms: i64) -> Option<i64> {
    (reset_after_ms != crate::algo::NEVER).then_some(reset_after_ms.max(0))
}

/// What every write does besides storing: propagate the call with its time
/// pinned (see [`crate::ffi::Call::replicate_pinned`]; `first_option` is
/// the index of the call's first option word) and send a keyspace event in
/// the module class, named after the command (`rl.tokenbucket`, ...), for
/// each key written (argument indexes in `written`).
fn publish_write(
    call: &crate::ffi::Call,
    spec: &'static CommandSpec,
    first_option: usize,
    options: &crate::args::Options,
    at_ms: i64,
    written: &[usize],
) -> crate::error::CommandResult<()> {
    let at_index = options.at_offset.map(|offset| first_option + offset);
    let keys = key_positions(call, spec.keys);
    call.replicate_pinned(spec.name, keys, at_index, options.at, at_ms)?;
    for &key in written {
        call.notify_module_event(spec.name, key);
    }
    Ok(())
}

/// Where a call's keys are: the argument indexes of `layout`.
fn key_positions(call: &crate::ffi::Call, layout: KeyLayout) -> std::ops::Range<usize> {
    match layout {
        KeyLayout::Written | KeyLayout::Read => 1..2,
        KeyLayout::NumKeys => {
            let count = call
                .arg(1)
                .ok()
                .and_then(crate::args::parse_i64)
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0);
            2..2 + count
        }
        KeyLayout::AllButLast => 1..call.arg_count().saturating_sub(1),
    }
}
