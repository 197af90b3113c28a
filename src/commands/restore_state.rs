//! RL.RESTORESTATE: stores a limiter's encoded state as is. AOF rewrite
//! emits it to rebuild each limiter exactly; it is not meant for clients.

use crate::algo::leases::LeaseState;
use crate::algo::sliding_log::LogState;
use crate::callback;
use crate::error::{CommandError, CommandResult};
use crate::ffi::Call;
use crate::registry::{ArgSpec, CommandSpec, KeyLayout};
use crate::reply::Reply;
use crate::stats::CommandStats;
use crate::types::bucket::Bucket;
use crate::types::{self, Stored};

pub static RESTORESTATE: CommandSpec = CommandSpec {
    name: c"RL.RESTORESTATE",
    callback: callback!(restore_state, RESTORESTATE),
    stats: CommandStats::new(),
    flags: c"write deny-oom",
    arity: 4,
    summary: c"Internal: stores a limiter state encoded by the module (emitted by AOF rewrite).",
    complexity: c"O(N) where N is the size of the payload",
    since: c"0.1.0",
    keys: KeyLayout::Written,
    args: &[
        ArgSpec::key(c"key"),
        ArgSpec::string(c"kind"),
        ArgSpec::string(c"payload"),
    ],
};

/// `RL.RESTORESTATE key tokenbucket|slidelog|leases payload`
fn restore_state(call: &Call) -> CommandResult<Reply> {
    call.require(4)?;
    let kind = call.arg(2)?;
    let is = |stored_kind: &std::ffi::CStr| kind.eq_ignore_ascii_case(stored_kind.to_bytes());
    if is(Bucket::KIND) {
        restore::<Bucket>(call)?;
    } else if is(LogState::KIND) {
        restore::<LogState>(call)?;
    } else if is(LeaseState::KIND) {
        restore::<LeaseState>(call)?;
    } else {
        return Err(CommandError::invalid(
            "kind must be tokenbucket, slidelog or leases",
        ));
    }
    call.replicate_verbatim();
    call.notify_module_event(c"RL.RESTORESTATE", 1);
    Ok(Reply::Ok)
}

fn restore<T: Stored>(call: &Call) -> CommandResult<()> {
    let state = types::decode::<T>(call.arg(3)?)?;
    types::put(&mut call.write_key(1)?, state)
}
