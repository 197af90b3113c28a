//! RL.RESTORESTATE: stores a limiter's encoded state as is. AOF rewrite
//! emits it to rebuild each limiter exactly; it is not meant for clients.

use crate::args::one_of;
use crate::callback;
use crate::error::{CommandError, CommandResult};
use crate::ffi::command::{ArgSpec, CommandSpec, KeyLayout};
use crate::ffi::data_type::RESTORE_COMMAND;
use crate::ffi::Call;
use crate::replication::CallClock;
use crate::reply::Reply;
use crate::stats::CommandStats;
use crate::types::stored_types;

pub static RESTORESTATE: CommandSpec = CommandSpec {
    name: RESTORE_COMMAND,
    callback: callback!(RESTORESTATE),
    handler: restore_state,
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
    // A state carries its limiter's clock: storing one chooses its time.
    CallClock::new(call).may_choose_time("RL.RESTORESTATE")?;
    let kind = call.arg(2)?;
    let types = stored_types();
    let Some(stored) = types
        .iter()
        .find(|stored| kind.eq_ignore_ascii_case(stored.kind.to_bytes()))
    else {
        let kinds: Vec<String> = types
            .iter()
            .map(|stored| stored.kind.to_string_lossy().into_owned())
            .collect();
        let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
        return Err(CommandError::invalid(format!(
            "kind must be {}",
            one_of(&kinds)
        )));
    };
    (stored.restore)(&mut call.write_key(1)?, call.arg(3)?)?;
    call.replicate_verbatim();
    call.notify_module_event(RESTORE_COMMAND, 1);
    Ok(Reply::Ok)
}
