//! RL.INSPECT: a read-only look at any limiter, also on replicas.

use crate::args::{parse_options, OptionName, Options};
use crate::callback;
use crate::error::CommandResult;
use crate::ffi::command::{ArgSpec, CommandSpec, KeyLayout};
use crate::ffi::Call;
use crate::limiters::KINDS;
use crate::replication::CallClock;
use crate::reply::Reply;
use crate::stats::CommandStats;

pub static INSPECT: CommandSpec = CommandSpec {
    name: c"RL.INSPECT",
    callback: callback!(INSPECT),
    handler: inspect,
    stats: CommandStats::new(),
    flags: c"readonly fast",
    arity: -2,
    summary: c"Shows a limiter's parameters and state without changing it.",
    complexity: c"O(1) for a bucket, O(N) for a log of N records, N leases or N slots",
    since: c"0.1.0",
    keys: KeyLayout::Read,
    args: &[ArgSpec::key(c"key"), ArgSpec::at()],
};

/// `RL.INSPECT key [AT unix_ms]`: the view of the first kind whose state
/// the key holds; WRONGTYPE for a key of any other type.
fn inspect(call: &Call) -> CommandResult<Reply> {
    let options = if call.arg_count() > 2 {
        parse_options(call.args_from(2), &[OptionName::At])?
    } else {
        Options::default()
    };
    let now = CallClock::new(call).time(options.at)?;
    let mut key = call.read_key(1)?;
    if key.is_empty() {
        return Ok(Reply::Null);
    }
    for kind in &KINDS {
        if let Some(view) = (kind.inspect)(&mut key, now)? {
            return Ok(view);
        }
    }
    Err(crate::error::CommandError::WrongType)
}
