//! RL.ALL: several limiters checked in one atomic, all-or-nothing call.

use crate::args::{
    one_of, parse_leading_options, parse_options, printable, IntArg, OptionName, Options, PerKey,
    WAIT_NOT_TAKEN,
};
use crate::callback;
use crate::error::{CommandError, CommandResult};
use crate::ffi::command::{ArgSpec, CommandSpec, KeyLayout};
use crate::ffi::{Call, Key};
use crate::limiters::{all_wait, publish_write, wait, AnySpec, Spec, KINDS, MAX_PARAMS};
use crate::replication::CallClock;
use crate::reply::Reply;
use crate::stats::CommandStats;

/// The most keys one RL.ALL call takes.
pub const MAX_KEYS: i64 = 16;

pub static ALL: CommandSpec = CommandSpec {
    name: c"RL.ALL",
    callback: callback!(ALL),
    handler: all,
    stats: CommandStats::new(),
    flags: c"write deny-oom getkeys-api",
    arity: -5,
    summary: c"Checks several limiters at once and takes the cost from all of them only if every one allows it.",
    complexity: c"O(K) for K keys, plus each limiter's own cost",
    since: c"0.1.0",
    keys: KeyLayout::NumKeys,
    args: &[
        ArgSpec::integer(c"numkeys"),
        ArgSpec::key(c"key").repeated(),
        ArgSpec::string(c"spec").repeated(),
        ArgSpec::one_of(
            c"cost",
            &[
                ArgSpec::tagged(c"COST", c"n"),
                ArgSpec::tagged(c"COSTS", c"cost").repeated(),
            ],
        )
        .optional(),
        ArgSpec::option(c"WAIT", c"timeout_ms"),
        ArgSpec::at(),
    ],
};

const NUMKEYS: IntArg = IntArg::new("numkeys", 1, MAX_KEYS);

/// A call's arguments besides its specs.
struct Request<'a> {
    costs: PerKey<i64>,
    options: Options<'a>,
    /// `WAIT`'s timeout.
    wait: Option<i64>,
}

/// Argument index of key number `n` (from 0).
fn key_index(n: usize) -> usize {
    2 + n
}

/// `RL.ALL numkeys key [key ...] spec [spec ...] [COST n | COSTS c1 ... cn] [WAIT timeout_ms] [AT unix_ms]`
fn all(call: &Call) -> CommandResult<Reply> {
    if call.is_keys_position_request() {
        let count = call
            .arg(1)
            .ok()
            .and_then(|raw| NUMKEYS.parse(raw).ok())
            .unwrap_or(0);
        let count = usize::try_from(count).unwrap_or(0);
        for n in 0..count {
            if key_index(n) < call.arg_count() {
                call.report_key(key_index(n));
            }
        }
        return Ok(Reply::KeysReported);
    }
    let mut specs = PerKey::new();
    let mut request = parse(call, &mut specs)?;
    let clock = CallClock::new(call);
    let at = clock.pinned(request.options.at)?;
    // Each key is opened once (the keys are distinct), for writing: only
    // the keys an allowed call writes are signalled as modified. All are
    // opened, their values prefetched, before any is read, so that their
    // cache misses overlap; none after one of the wrong type, where the
    // checks below stop with its position.
    // Clients waiting for a lease on a key come before this call.
    for (n, spec) in specs.iter().enumerate() {
        spec.serve_waiting(call, key_index(n))?;
    }
    let mut keys: PerKey<Key> = PerKey::new();
    for (n, spec) in specs.iter().enumerate() {
        let mut key = call.update_key(key_index(n))?;
        let fetched = spec.prefetch(&mut key);
        keys.push(key);
        if !fetched {
            break;
        }
    }
    let now = at.unwrap_or_else(|| clock.now_ms());
    let mut allowed = true;
    for (n, ((spec, &cost), key)) in specs
        .iter_mut()
        .zip(&request.costs)
        .zip(&mut keys)
        .enumerate()
    {
        allowed &= spec
            .decide(key, cost, now)
            .map_err(|error| error.at_position(n + 1))?;
    }
    if let Some(timeout) = request
        .wait
        .filter(|_| !allowed && at.is_none() && call.may_block())
    {
        let mut waiting = all_wait::Waiting {
            specs: std::mem::take(&mut specs),
            costs: std::mem::take(&mut request.costs),
        };
        let held = all_wait::hold(call, &ALL, &mut waiting, &mut keys, key_index, now, timeout)?;
        if let Some(reply) = held {
            return Ok(reply);
        }
        return Ok(all_wait::all_reply(&waiting.specs, false));
    }
    if allowed {
        let mut written = [0; MAX_KEYS as usize];
        let mut count = 0;
        for (n, (spec, key)) in specs.iter().zip(&mut keys).enumerate() {
            if spec.apply(key, &|at_ms| clock.ttl_from(at_ms))? {
                if let Some(slot) = written.get_mut(count) {
                    *slot = key_index(n);
                    count += 1;
                }
            }
        }
        if count > 0 {
            publish_write(call, &clock, &ALL, written.get(..count).unwrap_or_default())?;
        }
    }
    Ok(all_wait::all_reply(&specs, allowed))
}

/// Parses the call, its specs into `specs` (filled in place: a spec is
/// large to move).
fn parse<'a>(call: &Call<'a>, specs: &mut PerKey<AnySpec>) -> CommandResult<Request<'a>> {
    let count = usize::try_from(NUMKEYS.parse(call.arg(1)?)?).unwrap_or(0);
    if call.arg_count() < key_index(count) {
        return Err(CommandError::invalid("numkeys is more than the keys given"));
    }
    for second in 1..count {
        for first in 0..second {
            if call.arg(key_index(first))? == call.arg(key_index(second))? {
                return Err(CommandError::invalid(format!(
                    "key {} is the same as key {}",
                    second + 1,
                    first + 1
                )));
            }
        }
    }
    let mut next = key_index(count);
    for n in 1..=count {
        next += parse_spec(call, next, specs).map_err(|error| error.at_position(n))?;
    }
    let options = if next < call.arg_count() {
        parse_options(
            call.args_from(next),
            &[
                OptionName::Cost,
                OptionName::Costs(count),
                OptionName::Wait,
                OptionName::At,
            ],
        )?
    } else {
        Options::NONE
    };
    if options.wait.is_some() && !specs.iter().all(|spec| spec.waits()) {
        return Err(CommandError::invalid(WAIT_NOT_TAKEN));
    }
    let wait = wait::timeout(&options)?;
    let costs = match (options.cost, options.costs.clone()) {
        (Some(_), Some(_)) => {
            return Err(CommandError::invalid("COST and COSTS cannot be combined"))
        }
        (_, Some(costs)) => costs,
        (cost, None) => smallvec::smallvec![cost.unwrap_or(1); count],
    };
    for (n, (spec, &cost)) in specs.iter().zip(&costs).enumerate() {
        spec.check_cost(cost)
            .map_err(|error| error.at_position(n + 1))?;
    }
    Ok(Request {
        costs,
        options,
        wait,
    })
}

/// Parses the spec at argument `at` into `specs`; returns how many words it
/// took.
fn parse_spec(call: &Call, at: usize, specs: &mut PerKey<AnySpec>) -> CommandResult<usize> {
    let name = call
        .arg(at)
        .map_err(|_| CommandError::invalid("missing (one spec is needed per key)"))?;
    let Some(kind) = KINDS
        .iter()
        .find(|kind| name.eq_ignore_ascii_case(kind.name.as_bytes()))
    else {
        let names: Vec<&str> = KINDS.iter().map(|kind| kind.name).collect();
        return Err(CommandError::invalid(format!(
            "unknown limiter '{}', expected {}",
            printable(name),
            one_of(&names)
        )));
    };
    let mut words: [&[u8]; MAX_PARAMS] = [&[]; MAX_PARAMS];
    for (word, offset) in words.iter_mut().zip(1..=kind.params.len()) {
        *word = call.arg(at + offset).map_err(|_| {
            CommandError::invalid(format!(
                "missing parameters, expected {} {}",
                kind.name,
                kind.params.join(" ")
            ))
        })?;
    }
    let words = words.get(..kind.params.len()).unwrap_or_default();
    let after_params = at + 1 + kind.params.len();
    // The parameters are checked before the spec's options.
    let (options, taken) = if kind.options.is_empty() {
        (Ok(None), 0)
    } else {
        let mut rest = call.args_from(after_params).peekable();
        let options = parse_leading_options(&mut rest, &[kind.options]).map(Some);
        (options, call.arg_count() - after_params - rest.count())
    };
    let given = match &options {
        Ok(Some(given)) => given,
        Ok(None) | Err(_) => &Options::NONE,
    };
    (kind.parse)(call, words, given, specs)?;
    options?;
    Ok(1 + kind.params.len() + taken)
}
