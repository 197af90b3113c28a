//! RL.ALL: several limiters checked in one atomic, all-or-nothing call.

use crate::args::{
    is_word, one_of, parse_options, printable, IntArg, OptionName, Options, PerKey, WAIT_NOT_TAKEN,
};
use crate::callback;
use crate::error::{CommandError, CommandResult};
use crate::ffi::command::{ArgSpec, CommandSpec, KeyLayout};
use crate::ffi::{Call, Key};
use crate::limiters::{
    all_wait, parse_spec_of, publish_write, wait, with_kind, AnySpec, KindTask, Limiter, SpecOf,
    Specs, KINDS, NO_SUCH_KIND,
};
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
struct Request {
    costs: PerKey<i64>,
    /// `AT`'s time.
    at: Option<i64>,
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
    let count = parse_keys(call)?;
    let at = key_index(count);
    if count == 2 {
        // Two keys, the most common call: its handler is compiled for the
        // kinds of its specs.
        let first = spec_kind(call, at).map_err(|error| error.at_position(1))?;
        return with_kind(first, FirstOfPair { call, at });
    }
    let mut specs = PerKey::new();
    let mut next = at;
    for n in 1..=count {
        next += parse_spec(call, next, &mut specs).map_err(|error| error.at_position(n))?;
    }
    let request = parse_options_after(call, next, &specs)?;
    admit(call, &mut specs, request)
}

/// The first spec of a call over two keys, at argument `at`: parsed as the
/// kind the task runs for.
struct FirstOfPair<'c, 'a> {
    call: &'c Call<'a>,
    at: usize,
}

impl KindTask for FirstOfPair<'_, '_> {
    fn run<L: Limiter>(self) -> CommandResult<Reply>
    where
        SpecOf<L>: Into<AnySpec>,
    {
        let (first, taken) =
            parse_spec_of::<L>(self.call, self.at).map_err(|error| error.at_position(1))?;
        let at = self.at + taken;
        let second = spec_kind(self.call, at).map_err(|error| error.at_position(2))?;
        let pair = SecondOfPair::<L> {
            call: self.call,
            first,
            at,
        };
        with_kind(second, pair)
    }
}

/// The second spec of a call over two keys, at argument `at`, after the
/// first.
struct SecondOfPair<'c, 'a, F: Limiter> {
    call: &'c Call<'a>,
    first: F::Params,
    at: usize,
}

impl<F: Limiter> KindTask for SecondOfPair<'_, '_, F>
where
    SpecOf<F>: Into<AnySpec>,
{
    fn run<L: Limiter>(self) -> CommandResult<Reply>
    where
        SpecOf<L>: Into<AnySpec>,
    {
        let (second, taken) =
            parse_spec_of::<L>(self.call, self.at).map_err(|error| error.at_position(2))?;
        let mut specs = (SpecOf::<F>::new(self.first), SpecOf::<L>::new(second));
        let request = parse_options_after(self.call, self.at + taken, &specs)?;
        admit(self.call, &mut specs, request)
    }
}

/// Decides on the call's parsed `specs`: stores all or nothing, propagates
/// and replies; or waits (see [`all_wait`]).
fn admit<S: Specs>(call: &Call, specs: &mut S, mut request: Request) -> CommandResult<Reply> {
    let clock = CallClock::new(call);
    let at = clock.pinned(request.at)?;
    let count = specs.count();
    // Each key is opened once (the keys are distinct), for writing: only
    // the keys an allowed call writes are signalled as modified. All are
    // opened, their values prefetched, before any is read, so that their
    // cache misses overlap; none after one of the wrong type, where the
    // checks below stop with its position.
    // Clients waiting for a lease on a key come before this call.
    for n in 0..count {
        specs.serve_waiting(n, call, key_index(n))?;
    }
    let mut keys: PerKey<Key> = PerKey::new();
    for n in 0..count {
        let mut key = call.update_key(key_index(n))?;
        let fetched = specs.prefetch(n, &mut key);
        keys.push(key);
        if !fetched {
            break;
        }
    }
    let now = at.unwrap_or_else(|| clock.now_ms());
    let mut allowed = true;
    for (n, (&cost, key)) in request.costs.iter().zip(&mut keys).enumerate() {
        allowed &= specs
            .decide(n, key, cost, now)
            .map_err(|error| error.at_position(n + 1))?;
    }
    if let Some(timeout) = request
        .wait
        .filter(|_| !allowed && at.is_none() && call.may_block())
    {
        let mut waiting = all_wait::Waiting {
            specs: specs.take_list(),
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
        for (n, key) in keys.iter_mut().enumerate() {
            if specs.apply(n, key, &|at_ms| clock.ttl_from(at_ms))? {
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
    Ok(all_wait::all_reply(specs, allowed))
}

/// Reads `numkeys` and checks that its keys are given and distinct;
/// returns how many there are.
fn parse_keys(call: &Call) -> CommandResult<usize> {
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
    Ok(count)
}

/// Parses the options after the specs, from argument `next`, and checks
/// the costs against the specs.
fn parse_options_after<S: Specs>(call: &Call, next: usize, specs: &S) -> CommandResult<Request> {
    let count = specs.count();
    let mut options = if next < call.arg_count() {
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
    if options.wait.is_some() && !specs.all_wait() {
        return Err(CommandError::invalid(WAIT_NOT_TAKEN));
    }
    let wait = wait::timeout(&options)?;
    let costs = match (options.cost, options.costs.take()) {
        (Some(_), Some(_)) => {
            return Err(CommandError::invalid("COST and COSTS cannot be combined"))
        }
        (_, Some(costs)) => costs,
        (cost, None) => smallvec::smallvec![cost.unwrap_or(1); count],
    };
    for (n, &cost) in costs.iter().enumerate() {
        specs
            .check_cost(n, cost)
            .map_err(|error| error.at_position(n + 1))?;
    }
    Ok(Request {
        costs,
        at: options.at,
        wait,
    })
}

/// The kind of the spec whose name is at argument `at`, by its place in
/// [`KINDS`].
fn spec_kind(call: &Call, at: usize) -> CommandResult<usize> {
    let name = call
        .arg(at)
        .map_err(|_| CommandError::invalid("missing (one spec is needed per key)"))?;
    KINDS
        .iter()
        .position(|kind| is_word(name, kind.name.as_bytes()))
        .ok_or_else(|| {
            let names: Vec<&str> = KINDS.iter().map(|kind| kind.name).collect();
            CommandError::invalid(format!(
                "unknown limiter '{}', expected {}",
                printable(name),
                one_of(&names)
            ))
        })
}

/// Parses the spec at argument `at` into `specs`; returns how many words it
/// took.
fn parse_spec(call: &Call, at: usize, specs: &mut PerKey<AnySpec>) -> CommandResult<usize> {
    let kind = spec_kind(call, at)?;
    match KINDS.get(kind) {
        Some(kind) => (kind.parse)(call, at, specs),
        None => Err(NO_SUCH_KIND),
    }
}
