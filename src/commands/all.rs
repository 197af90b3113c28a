//! RL.ALL: several limiters checked in one atomic, all-or-nothing call.

use crate::algo::leases::{AcquireOutcome, LeaseParams, LeaseState};
use crate::algo::reservations::ReserveOutcome;
use crate::algo::sliding_log::{LogOutcome, LogParams, LogState};
use crate::algo::token_bucket::{BucketOutcome, BucketParams};
use crate::algo::{Evaluation, NEVER};
use crate::args::{parse_options, printable, IntArg, OptionName, Options};
use crate::commands::PerKey;
use crate::error::{CommandError, CommandResult};
use crate::ffi::{Call, Key};
use crate::registry::{ArgSpec, CommandSpec, KeyLayout};
use crate::reply::Reply;
use crate::stats::CommandStats;
use crate::types::bucket::Bucket;
use crate::{callback, commands, types};

/// The most keys one RL.ALL call takes.
pub const MAX_KEYS: i64 = 16;

pub static ALL: CommandSpec = CommandSpec {
    name: c"RL.ALL",
    callback: callback!(all, ALL),
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
        ArgSpec::option(c"COST", c"n"),
        ArgSpec::option(c"COSTS", c"cost").repeated(),
        ArgSpec::option(c"AT", c"unix_ms"),
    ],
};

const NUMKEYS: IntArg = IntArg::new("numkeys", 1, MAX_KEYS);

/// One limiter of the call, by the algorithm its spec names.
enum Spec {
    Bucket(BucketParams),
    Log(LogParams),
    /// A bucket, with the lease of the reservation the call opens.
    Reserve(BucketParams, i64),
    Acquire(LeaseParams),
}

/// A limiter decided on, with what applying the decision needs.
enum Checked<'a> {
    Bucket(BucketOutcome),
    Log(LogOutcome, &'a LogParams, i64),
    Reserve(ReserveOutcome),
    Acquire(AcquireOutcome, &'a LeaseParams),
}

impl Checked<'_> {
    fn evaluation(&self) -> &Evaluation {
        match self {
            Checked::Bucket(outcome) => &outcome.evaluation,
            Checked::Log(outcome, ..) => &outcome.evaluation,
            Checked::Reserve(outcome) => &outcome.bucket.evaluation,
            Checked::Acquire(outcome, _) => &outcome.evaluation,
        }
    }

    /// The sixth integer of the kinds that open something: the id opened,
    /// 0 when nothing was (`applied` false).
    fn opened_id(&self, applied: bool) -> Option<i64> {
        let id = match self {
            Checked::Reserve(outcome) => commands::reservation::opened_id(outcome),
            Checked::Acquire(outcome, _) => commands::lease::opened_id(outcome),
            Checked::Bucket(_) | Checked::Log(..) => return None,
        };
        Some(if applied { id } else { 0 })
    }

    /// Writes what the limiter consumed; false when it writes nothing.
    fn apply(&self, key: &mut Key, call: &Call) -> CommandResult<bool> {
        match self {
            Checked::Bucket(outcome) => commands::token_bucket::apply(key, outcome, call),
            Checked::Log(outcome, params, cost) => {
                commands::sliding_log::apply(key, params, *cost, outcome, call)
            }
            Checked::Reserve(outcome) => commands::reservation::apply(key, outcome, call),
            Checked::Acquire(outcome, params) => commands::lease::apply(key, params, outcome, call),
        }
    }
}

struct Request {
    specs: PerKey<Spec>,
    costs: PerKey<i64>,
    options: Options,
}

/// Argument index of key number `n` (from 0).
fn key_index(n: usize) -> usize {
    2 + n
}

/// `RL.ALL numkeys key [key ...] spec [spec ...] [COST n | COSTS c1 ... cn] [AT unix_ms]`
pub(super) fn all(call: &Call) -> CommandResult<Reply> {
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
    let request = parse(call)?;
    // Each key is opened once (the keys are distinct), for writing: only
    // the keys an allowed call writes are signalled as modified. All are
    // opened, their values prefetched, before any is read, so that their
    // cache misses overlap; none after one of the wrong type, where the
    // checks below stop with its position.
    let mut keys: PerKey<Key> = PerKey::new();
    for (n, spec) in request.specs.iter().enumerate() {
        let mut key = call.update_key(key_index(n))?;
        let fetched = match spec {
            Spec::Bucket(_) | Spec::Reserve(..) => types::prefetch::<Bucket>(&mut key),
            Spec::Log(_) => types::prefetch::<LogState>(&mut key),
            Spec::Acquire(_) => types::prefetch::<LeaseState>(&mut key),
        };
        keys.push(key);
        if !fetched {
            break;
        }
    }
    let now = request.options.at.unwrap_or_else(|| call.now_ms());
    let mut checked: PerKey<Checked> = PerKey::new();
    for (n, ((spec, &cost), key)) in request
        .specs
        .iter()
        .zip(&request.costs)
        .zip(&mut keys)
        .enumerate()
    {
        let key = &mut *key;
        let outcome = match spec {
            Spec::Bucket(params) => {
                commands::token_bucket::check(key, params, cost, now).map(Checked::Bucket)
            }
            Spec::Log(params) => commands::sliding_log::check(key, params, cost, now)
                .map(|outcome| Checked::Log(outcome, params, cost)),
            Spec::Reserve(params, lease_ms) => {
                commands::reservation::check(key, params, cost, *lease_ms, now)
                    .map(Checked::Reserve)
            }
            Spec::Acquire(params) => commands::lease::check(key, params, cost, now)
                .map(|outcome| Checked::Acquire(outcome, params)),
        };
        checked.push(outcome.map_err(|error| error.at_position(n + 1))?);
    }
    let allowed = checked.iter().all(|c| c.evaluation().allowed);
    if allowed {
        let mut written: PerKey<usize> = PerKey::new();
        for (n, (check, key)) in checked.iter().zip(&mut keys).enumerate() {
            if check.apply(key, call)? {
                written.push(key_index(n));
            }
        }
        if !written.is_empty() {
            super::publish_write(call, &ALL, &written)?;
        }
    }
    let evaluations: PerKey<&Evaluation> = checked.iter().map(Checked::evaluation).collect();
    Ok(Reply::All {
        allowed,
        retry_after_ms: overall_retry_after(&evaluations),
        decisions: checked
            .iter()
            .map(|c| (c.evaluation().decision(allowed), c.opened_id(allowed)))
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

fn parse(call: &Call) -> CommandResult<Request> {
    call.require(5)?;
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
        if matches!(spec, Spec::Acquire(_)) && cost > 1 {
            return Err(CommandError::invalid(format!(
                "spec {}: ACQUIRE takes a cost of 0 or 1",
                n + 1
            )));
        }
    }
    Ok(Request {
        specs,
        costs,
        options,
    })
}

/// Parses the spec at argument `at`; returns it and how many words it took.
fn parse_spec(call: &Call, at: usize) -> CommandResult<(Spec, usize)> {
    let name = call
        .arg(at)
        .map_err(|_| CommandError::invalid("missing (one spec is needed per key)"))?;
    let missing = |usage: &'static str| {
        move |_| CommandError::invalid(format!("missing numbers, expected {usage}"))
    };
    let (spec, words) = if name.eq_ignore_ascii_case(b"TOKENBUCKET") {
        call.arg(at + 3).map_err(missing(
            "TOKENBUCKET capacity refill_amount refill_period_ms",
        ))?;
        (
            Spec::Bucket(commands::token_bucket::parse_params(call, at + 1)?),
            4,
        )
    } else if name.eq_ignore_ascii_case(b"SLIDELOG") {
        call.arg(at + 2)
            .map_err(missing("SLIDELOG limit window_ms"))?;
        (
            Spec::Log(commands::sliding_log::parse_params(call, at + 1)?),
            3,
        )
    } else if name.eq_ignore_ascii_case(b"RESERVE") {
        call.arg(at + 4).map_err(missing(
            "RESERVE capacity refill_amount refill_period_ms lease_ms",
        ))?;
        let params = commands::token_bucket::parse_params(call, at + 1)?;
        let lease_ms = commands::reservation::LEASE.parse(call.arg(at + 4)?)?;
        (Spec::Reserve(params, lease_ms), 5)
    } else if name.eq_ignore_ascii_case(b"ACQUIRE") {
        call.arg(at + 2)
            .map_err(missing("ACQUIRE limit lease_ms"))?;
        (
            Spec::Acquire(commands::lease::parse_params(call, at + 1)?),
            3,
        )
    } else {
        return Err(CommandError::invalid(format!(
            "unknown limiter '{}', expected TOKENBUCKET, SLIDELOG, RESERVE or ACQUIRE",
            printable(name)
        )));
    };
    Ok((spec, words))
}
