//! RL.ALL: several limiters checked in one atomic, all-or-nothing call.

use crate::algo::{Evaluation, NEVER};
use crate::args::{
    one_of, parse_leading_options, parse_options, printable, IntArg, OptionName, Options, PerKey,
};
use crate::callback;
use crate::error::{CommandError, CommandResult};
use crate::ffi::command::{ArgSpec, CommandSpec, KeyLayout};
use crate::ffi::{Call, Key};
use crate::limiters::{publish_write, Spec, KINDS, MAX_PARAMS};
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
        ArgSpec::at(),
    ],
};

const NUMKEYS: IntArg = IntArg::new("numkeys", 1, MAX_KEYS);

struct Request<'a> {
    specs: PerKey<Box<dyn Spec>>,
    costs: PerKey<i64>,
    options: Options<'a>,
}

/// Argument index of key number `n` (from 0).
fn key_index(n: usize) -> usize {
    2 + n
}

/// `RL.ALL numkeys key [key ...] spec [spec ...] [COST n | COSTS c1 ... cn] [AT unix_ms]`
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
    let mut request = parse(call)?;
    let clock = CallClock::new(call);
    let at = clock.pinned(request.options.at)?;
    // Each key is opened once (the keys are distinct), for writing: only
    // the keys an allowed call writes are signalled as modified. All are
    // opened, their values prefetched, before any is read, so that their
    // cache misses overlap; none after one of the wrong type, where the
    // checks below stop with its position.
    let mut keys: PerKey<Key> = PerKey::new();
    for (n, spec) in request.specs.iter().enumerate() {
        let mut key = call.update_key(key_index(n))?;
        let fetched = spec.prefetch(&mut key);
        keys.push(key);
        if !fetched {
            break;
        }
    }
    let now = at.unwrap_or_else(|| clock.now_ms());
    for (n, ((spec, &cost), key)) in request
        .specs
        .iter_mut()
        .zip(&request.costs)
        .zip(&mut keys)
        .enumerate()
    {
        spec.decide(key, cost, now)
            .map_err(|error| error.at_position(n + 1))?;
    }
    let evaluations: PerKey<&Evaluation> = request
        .specs
        .iter()
        .filter_map(|spec| spec.evaluation())
        .collect();
    let allowed = evaluations.len() == request.specs.len() && evaluations.iter().all(|e| e.allowed);
    if allowed {
        let mut written: PerKey<usize> = PerKey::new();
        for (n, (spec, key)) in request.specs.iter().zip(&mut keys).enumerate() {
            if spec.apply(key, &clock)? {
                written.push(key_index(n));
            }
        }
        if !written.is_empty() {
            publish_write(call, &clock, &ALL, &written)?;
        }
    }
    Ok(Reply::All {
        allowed,
        retry_after_ms: overall_retry_after(&evaluations),
        decisions: request
            .specs
            .iter()
            .zip(&evaluations)
            .map(|(spec, e)| (e.decision(allowed), spec.opened_id(allowed)))
            .collect(),
    })
}

/// 0 when every limiter allows; -1 when a denying one never can; otherwise
/// the longest wait among the denying ones, when all of them allow.
fn overall_retry_after(evaluations: &[&Evaluation]) -> i64 {
    let denying = evaluations.iter().filter(|e| !e.allowed);
    denying.fold(0, |longest, e| {
        if longest == NEVER || e.retry_after_ms == NEVER {
            NEVER
        } else {
            longest.max(e.retry_after_ms)
        }
    })
}

fn parse<'a>(call: &Call<'a>) -> CommandResult<Request<'a>> {
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
    let mut specs = PerKey::new();
    let mut next = key_index(count);
    for n in 1..=count {
        let (spec, words) = parse_spec(call, next).map_err(|error| error.at_position(n))?;
        specs.push(spec);
        next += words;
    }
    let options = parse_options(
        call.args_from(next),
        &[OptionName::Cost, OptionName::Costs(count), OptionName::At],
    )?;
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
        specs,
        costs,
        options,
    })
}

/// Parses the spec at argument `at`; returns it and how many words it took.
fn parse_spec(call: &Call, at: usize) -> CommandResult<(Box<dyn Spec>, usize)> {
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
        (Ok(Options::default()), 0)
    } else {
        let mut rest = call.args_from(after_params).peekable();
        let options = parse_leading_options(&mut rest, &[kind.options]);
        (options, call.arg_count() - after_params - rest.count())
    };
    let spec = (kind.parse)(call, words, options.as_ref().unwrap_or(&Options::default()))?;
    options?;
    Ok((spec, 1 + kind.params.len() + taken))
}
