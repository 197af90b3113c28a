//! RL.INSPECT: a read-only look at any limiter, also on replicas.

use crate::algo::sliding_log::{self, LogState};
use crate::algo::token_bucket::{self, BucketState};
use crate::args::{parse_options, OptionName};
use crate::error::{CommandError, CommandResult};
use crate::ffi::Call;
use crate::registry::{ArgSpec, CommandSpec, KeyLayout};
use crate::reply::{Reply, Value};
use crate::{callback, types};

pub static INSPECT: CommandSpec = CommandSpec {
    name: c"RL.INSPECT",
    callback: callback!(inspect),
    flags: c"readonly fast",
    arity: -2,
    summary: c"Shows a limiter's parameters and state without changing it.",
    complexity: c"O(1) for a bucket, O(N) for a log of N records",
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
    match types::get::<BucketState>(&mut key) {
        Ok(Some(bucket)) => return Ok(bucket_reply(bucket, now)),
        Ok(None) => return Ok(Reply::Null),
        Err(CommandError::WrongType) => {}
        Err(other) => return Err(other),
    }
    match types::get::<LogState>(&mut key)? {
        Some(log) => Ok(log_reply(log, now)),
        None => Ok(Reply::Null),
    }
}

fn bucket_reply(bucket: &BucketState, now: i64) -> Reply {
    let view = token_bucket::inspect(bucket, now);
    Reply::Map(vec![
        (c"type", Value::Text(c"tokenbucket")),
        (c"capacity", Value::Int(bucket.params.capacity)),
        (c"refill_amount", Value::Int(bucket.params.refill_amount)),
        (
            c"refill_period_ms",
            Value::Int(bucket.params.refill_period_ms),
        ),
        (c"tokens", Value::Int(view.tokens)),
        (c"reset_after_ms", Value::Int(view.reset_after_ms)),
    ])
}

fn log_reply(log: &LogState, now: i64) -> Reply {
    let view = sliding_log::inspect(log, now);
    let time = |ms: Option<i64>| ms.map_or(Value::Null, Value::Int);
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
