//! RL.TOKENBUCKET and RL.COST: one token bucket, the cost given as an option
//! or positionally. `check` and `apply` are shared with RL.ALL.

use crate::algo::token_bucket::BucketState;
use crate::algo::token_bucket::{self, BucketOutcome, BucketParams};
use crate::args::{parse_options, IntArg, OptionName};
use crate::error::{CommandError, CommandResult};
use crate::ffi::{Call, Key};
use crate::registry::{ArgSpec, CommandSpec, KeyLayout};
use crate::reply::Reply;
use crate::stats::CommandStats;
use crate::types::bucket::Bucket;
use crate::{callback, types};

pub static TOKENBUCKET: CommandSpec = CommandSpec {
    name: c"RL.TOKENBUCKET",
    callback: callback!(token_bucket, TOKENBUCKET),
    stats: CommandStats::new(),
    flags: c"write deny-oom fast",
    arity: -5,
    summary: c"Takes COST tokens (default 1) from a token bucket if it holds them.",
    complexity: c"O(1)",
    since: c"0.1.0",
    keys: KeyLayout::Written,
    args: &[
        ArgSpec::key(c"key"),
        ArgSpec::integer(c"capacity"),
        ArgSpec::integer(c"refill_amount"),
        ArgSpec::integer(c"refill_period_ms"),
        ArgSpec::option(c"COST", c"n"),
        ArgSpec::option(c"AT", c"unix_ms"),
    ],
};

pub static COST: CommandSpec = CommandSpec {
    name: c"RL.COST",
    callback: callback!(cost, COST),
    stats: CommandStats::new(),
    flags: c"write deny-oom fast",
    arity: -6,
    summary:
        c"Takes cost tokens from a token bucket if it holds them (the bucket of RL.TOKENBUCKET).",
    complexity: c"O(1)",
    since: c"0.1.0",
    keys: KeyLayout::Written,
    args: &[
        ArgSpec::key(c"key"),
        ArgSpec::integer(c"capacity"),
        ArgSpec::integer(c"refill_amount"),
        ArgSpec::integer(c"refill_period_ms"),
        ArgSpec::integer(c"cost"),
        ArgSpec::option(c"AT", c"unix_ms"),
    ],
};

const CAPACITY: IntArg = IntArg::new("capacity", 1, i64::MAX);
const REFILL_AMOUNT: IntArg = IntArg::new("refill_amount", 0, i64::MAX);
const REFILL_PERIOD: IntArg = IntArg::new("refill_period_ms", 1, i64::MAX);
const POSITIONAL_COST: IntArg = IntArg::new("cost", 0, i64::MAX);

/// `RL.TOKENBUCKET key capacity refill_amount refill_period_ms [COST n] [AT unix_ms]`
pub(super) fn token_bucket(call: &Call) -> CommandResult<Reply> {
    call.require(5)?;
    let params = parse_params(call, 2)?;
    let options = parse_options(call.args_from(5), &[OptionName::Cost, OptionName::At])?;
    let cost = options.cost.unwrap_or(1);
    let mut key = call.update_key(1)?;
    types::prefetch::<Bucket>(&mut key);
    let at_ms = options.at.unwrap_or_else(|| call.now_ms());
    let outcome = check(&mut key, &params, cost, at_ms)?;
    if apply(&mut key, &outcome, call)? {
        super::publish_write(call, &TOKENBUCKET, &[1])?;
    }
    Ok(Reply::Decision(outcome.evaluation.own_decision()))
}

/// `RL.COST key capacity refill_amount refill_period_ms cost [AT unix_ms]`
pub(super) fn cost(call: &Call) -> CommandResult<Reply> {
    call.require(6)?;
    let params = parse_params(call, 2)?;
    let cost = POSITIONAL_COST.parse(call.arg(5)?)?;
    let options = parse_options(call.args_from(6), &[OptionName::At])?;
    let mut key = call.update_key(1)?;
    types::prefetch::<Bucket>(&mut key);
    let at_ms = options.at.unwrap_or_else(|| call.now_ms());
    let outcome = check(&mut key, &params, cost, at_ms)?;
    if apply(&mut key, &outcome, call)? {
        super::publish_write(call, &COST, &[1])?;
    }
    Ok(Reply::Decision(outcome.evaluation.own_decision()))
}

/// Parses `capacity refill_amount refill_period_ms` from argument `first` on.
pub fn parse_params(call: &Call, first: usize) -> CommandResult<BucketParams> {
    Ok(BucketParams {
        capacity: CAPACITY.parse(call.arg(first)?)?,
        refill_amount: REFILL_AMOUNT.parse(call.arg(first + 1)?)?,
        refill_period_ms: REFILL_PERIOD.parse(call.arg(first + 2)?)?,
    })
}

/// Decides on the bucket in `key`. Opened for writing too, the key is
/// signalled as modified only if [`apply`] writes, so a denied call or a
/// peek leaves it untouched (WATCH included).
pub fn check(
    key: &mut Key,
    params: &BucketParams,
    cost: i64,
    now_ms: i64,
) -> CommandResult<BucketOutcome> {
    let bucket = types::get::<Bucket>(key)?;
    Ok(token_bucket::take(
        bucket.map(|b| b.state()).as_ref(),
        params,
        now_ms,
        cost,
    ))
}

/// Stores what an allowed `call` wrote, with its TTL, in `key` (open for
/// writing); false when it wrote nothing.
pub fn apply(key: &mut Key, outcome: &BucketOutcome, call: &Call) -> CommandResult<bool> {
    let Some(written) = outcome.write else {
        return Ok(false);
    };
    key.mark_written();
    let ttl = bucket_ttl(
        store(key, written)?,
        outcome.evaluation.after.reset_after_ms,
        outcome.at_ms,
    );
    key.set_ttl(ttl, call.ttl_from(outcome.at_ms));
    Ok(true)
}

/// Stores a bucket's new tokens, keeping its reservations (less those that
/// have ended); returns the stored bucket.
pub fn store(key: &mut Key, written: BucketState) -> CommandResult<&mut Bucket> {
    if types::get::<Bucket>(key)?.is_none() {
        types::put(key, Bucket::new(written))?;
    }
    let bucket = types::get::<Bucket>(key)?.ok_or(CommandError::Server("the bucket vanished"))?;
    bucket.set_state(written);
    if bucket.reservations().is_some() {
        bucket.reservations_mut().prune(written.updated_ms);
    }
    Ok(bucket)
}

/// The TTL a bucket needs after a write at `at_ms`: until it is full again
/// and its last open reservation has ended; none for a quota that never
/// refills.
pub fn bucket_ttl(bucket: &Bucket, reset_after_ms: i64, at_ms: i64) -> Option<i64> {
    let last_end = bucket.reservations().and_then(|r| r.last_end_ms());
    let until_last_end = last_end.map_or(0, |end| end.saturating_sub(at_ms));
    super::ttl_for(reset_after_ms).map(|ttl| ttl.max(until_last_end))
}
