//! RL.REPLAY: runs a write from the form that carries its keys as arguments
//! and everything else, time pinned, in one text.

use crate::callback;
use crate::error::{CommandError, CommandResult};
use crate::ffi::command::{ArgSpec, CommandSpec, KeyLayout};
use crate::ffi::{Call, Replay};
use crate::reply::Reply;
use crate::stats::CommandStats;

pub static REPLAY: CommandSpec = CommandSpec {
    name: c"RL.REPLAY",
    callback: callback!(REPLAY),
    handler: replay,
    stats: CommandStats::new(),
    flags: c"write deny-oom",
    arity: -3,
    summary: c"Internal: runs a write in the form the module replicates it (keys, then the command's other words with AT).",
    complexity: c"That of the command replayed",
    since: c"0.1.0",
    keys: KeyLayout::AllButLast,
    args: &[
        ArgSpec::key(c"key").repeated(),
        ArgSpec::string(c"command"),
    ],
};

/// `RL.REPLAY key [key ...] "COMMAND word ..."`: any command that writes
/// and takes `AT` ([`CommandSpec::is_replayable`]).
fn replay(call: &Call) -> CommandResult<Reply> {
    let last = call.arg_count() - 1;
    let text = call.arg(last)?;
    let mut words = text.split(|&byte| byte == b' ');
    let name = words.next().unwrap_or_default();
    let Some(spec) = super::all()
        .into_iter()
        .find(|spec| spec.is_replayable() && name.eq_ignore_ascii_case(spec.name.to_bytes()))
    else {
        return Err(CommandError::invalid(format!(
            "RL.REPLAY cannot replay '{}'",
            crate::args::printable(name)
        )));
    };
    let pinned = words
        .clone()
        .rev()
        .nth(1)
        .is_some_and(|at| at.eq_ignore_ascii_case(b"AT"));
    if !pinned {
        return Err(CommandError::invalid(
            "RL.REPLAY needs the time pinned: the text must end with AT unix_ms",
        ));
    }
    let keys: Vec<_> = (1..last).map(|i| call.raw(i)).collect::<Result<_, _>>()?;
    let mut rebuilt = Replay {
        words: vec![name],
        keys: Vec::with_capacity(keys.len()),
    };
    if let KeyLayout::NumKeys = spec.keys {
        let numkeys = words.next().ok_or(CommandError::WrongArity)?;
        if crate::args::parse_i64(numkeys) != i64::try_from(keys.len()).ok() {
            return Err(CommandError::invalid(
                "RL.REPLAY got a different number of keys than numkeys",
            ));
        }
        rebuilt.words.push(numkeys);
    } else if keys.len() != 1 {
        return Err(CommandError::invalid(format!(
            "RL.REPLAY of {} takes one key",
            spec.name.to_string_lossy()
        )));
    }
    for (index, key) in (1..last).zip(keys) {
        rebuilt.keys.push((rebuilt.words.len(), key));
        rebuilt.words.push(call.arg(index)?);
    }
    rebuilt.words.extend(words);
    if !spec.accepts_arg_count(rebuilt.words.len()) {
        return Err(CommandError::WrongArity);
    }
    (spec.handler)(&call.replaying(&rebuilt))
}
