//! RL.REPLAY: the form in which writes travel to replicas and the AOF
//! (see [`crate::ffi::Call::replicate_pinned`]). It carries the keys as
//! arguments and everything else, time pinned, in one text, so replication
//! costs a few arguments instead of every parameter.

use crate::callback;
use crate::error::{CommandError, CommandResult};
use crate::ffi::{Call, Handler, Replay};
use crate::registry::{ArgSpec, CommandSpec, KeyLayout};
use crate::reply::Reply;
use crate::stats::CommandStats;

use super::{all, lease, reservation, sliding_log, token_bucket};

pub static REPLAY: CommandSpec = CommandSpec {
    name: c"RL.REPLAY",
    callback: callback!(replay, REPLAY),
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

/// The commands that replicate in this form, with their handlers.
fn replayable() -> [(&'static CommandSpec, Handler); 10] {
    [
        (&token_bucket::TOKENBUCKET, token_bucket::token_bucket),
        (&token_bucket::COST, token_bucket::cost),
        (&sliding_log::SLIDELOG, sliding_log::slide_log),
        (&all::ALL, all::all),
        (&reservation::RESERVE, reservation::reserve_command),
        (&reservation::SETTLE, reservation::settle_command),
        (&reservation::CANCEL, reservation::cancel_command),
        (&lease::ACQUIRE, lease::acquire_command),
        (&lease::RELEASE, lease::release_command),
        (&lease::EXTEND, lease::extend_command),
    ]
}

/// `RL.REPLAY key [key ...] "COMMAND word ..."`
fn replay(call: &Call) -> CommandResult<Reply> {
    call.require(3)?;
    let last = call.arg_count() - 1;
    let text = call.arg(last)?;
    let mut words = text.split(|&byte| byte == b' ');
    let name = words.next().unwrap_or_default();
    let Some((spec, handler)) = replayable()
        .into_iter()
        .find(|(spec, _)| name.eq_ignore_ascii_case(spec.name.to_bytes()))
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
    for key in keys {
        rebuilt.keys.push((rebuilt.words.len(), key));
        rebuilt.words.push(crate::ffi::string_bytes(key));
    }
    rebuilt.words.extend(words);
    handler(&call.replaying(&rebuilt))
}
