//! RL.INSPECT: a read-only look at any limiter, also on replicas.

use crate::algo::leases::{self, LeaseState};
use crate::algo::sliding_log::{self, LogState};
use crate::algo::token_bucket;
use crate::args::{parse_options, OptionName};
use crate::callback;
use crate::error::{CommandError, CommandResult};
use crate::ffi::{Call, Key};
use crate::registry::{ArgSpec, CommandSpec, KeyLayout};
use crate::reply::{Reply, Value};
use crate::stats::CommandStats;
use crate::types::bucket::Bucket;
use crate::types::{self, Stored};

pub static INSPECT: CommandSpec = CommandSpec {
    name: c"RL.INSPECT",
    callback: callback!(inspect, INSPECT),
    stats: CommandStats::new(),
    flags: c"readonly fast",
    arity: -2,
    summary: c"Shows a limiter's parameters and state without changing it.",
    complexity: c"O(1) for a bucket, O(N) for a log of N records or N leases",
    since: c"0.1.0",
    keys: KeyLayout::Read,
    args: &[ArgSpec::key(c"key"), ArgSpec::option(c"AT", c"unix_ms")],
};

/// `RL.INSPECT key [AT unix_ms]`
fn inspect(call: &Call) -> CommandResult<Reply> {
    call.require(2)?;
    let options = parse_options(call.args_from(2), &[OptionName::At])?;
    let now = options.at.unwrap_or_else(|| call.now_ms());
    let mut key = call.read_key(1)?;
    if let Some(bucket) = held::<Bucket>(&mut key)? {
        return Ok(bucket_reply(bucket, now));
    }
    if let Some(log) = held::<LogState>(&mut key)? {
        return Ok(log_reply(log, now));
    }
    match types::get::<LeaseState>(&mut key)? {
        Some(leases) => Ok(lease_reply(leases, now)),
        None => Ok(Reply::Null),
    }
}

/// The value if the key holds a `T`; `None` if it is empty or holds another
/// type (which the caller tries next).
fn held<T: Stored>(key: &mut Key) -> CommandResult<Option<&T>> {
    match types::get::<T>(key) {
        Ok(value) => Ok(value.map(|v| &*v)),
        Err(CommandError::WrongType) => Ok(None),
        Err(other) => Err(other),
    }
}

fn bucket_reply(bucket: &Bucket, now: i64) -> Reply {
    let state = bucket.state();
    let view = token_bucket::inspect(&state, now);
    Reply::Map(vec![
        (c"type", Value::Text(c"tokenbucket")),
        (c"capacity", Value::Int(state.params.capacity)),
        (c"refill_amount", Value::Int(state.params.refill_amount)),
        (
            c"refill_period_ms",
            Value::Int(state.params.refill_period_ms),
        ),
        (c"tokens", Value::Int(view.tokens)),
        (c"reset_after_ms", Value::Int(view.reset_after_ms)),
    ])
}

fn time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, Value::Int)
}

fn log_reply(log: &LogState, now: i64) -> Reply {
    let view = sliding_log::inspect(log, now);
    Reply::Map(vec![
        (c"type", Value::Text(c"slidelog")),
        (c"limit", Value::Int(log.params.limit)),
        (c"window_ms", Value::Int(log.params.window_ms)),
        (c"used", Value::Int(view.used)),
        (c"entries", Value::Int(view.entries)),
        (c"oldest_ms", time(view.oldest_ms)),
        (c"newest_ms", time(view.newest_ms)),
        (c"reset_after_ms", Value::Int(view.reset_after_ms)),
    ])
}

fn lease_reply(state: &LeaseState, now: i64) -> Reply {
    let view = leases::inspect(state, now);
    Reply::Map(vec![
        (c"type", Value::Text(c"leases")),
        (c"limit", Value::Int(state.limit)),
        (c"live", Value::Int(view.live)),
        (c"next_end_ms", time(view.next_end_ms)),
        (c"last_end_ms", time(view.last_end_ms)),
    ])
}
