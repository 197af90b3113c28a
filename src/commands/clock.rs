//! RL.CLOCK: the master's clock, sent to replicas and the AOF before writes
//! that read it (see [`crate::replication`]). Clients cannot call it.

use crate::args::IntArg;
use crate::callback;
use crate::error::{CommandError, CommandResult};
use crate::ffi::command::{ArgSpec, CommandSpec, KeyLayout};
use crate::ffi::Call;
use crate::replication::CLOCK_COMMAND;
use crate::reply::Reply;
use crate::stats::CommandStats;

pub static CLOCK: CommandSpec = CommandSpec {
    name: CLOCK_COMMAND,
    callback: callback!(CLOCK),
    handler: clock,
    stats: CommandStats::new(),
    flags: c"write fast",
    arity: 2,
    summary: c"Internal: the master's clock for the writes that follow it in the replication stream and the AOF.",
    complexity: c"O(1)",
    since: c"0.1.0",
    keys: KeyLayout::Keyless,
    args: &[ArgSpec::integer(c"unix_ms")],
};

const UNIX_MS: IntArg = IntArg::new("unix_ms", 0, i64::MAX);

/// `RL.CLOCK unix_ms`
fn clock(call: &Call) -> CommandResult<Reply> {
    if !call.is_replicated_or_loading() {
        return Err(CommandError::invalid(
            "RL.CLOCK comes only from a master or an AOF file being loaded",
        ));
    }
    crate::replication::received(UNIX_MS.parse(call.arg(1)?)?);
    Ok(Reply::Ok)
}
