//! RL.TOKENBUCKET and RL.COST: one token bucket, the cost given as an option
//! or positionally.

use crate::algo::token_bucket::{self, BucketParams, BucketState};
use crate::args::{parse_options, IntArg, OptionName};
use crate::error::CommandResult;
use crate::ffi::Call;
use crate::registry::{ArgSpec, CommandSpec};
use crate::reply::Reply;
use crate::{callback, replicate, types};

pub static TOKENBUCKET: CommandSpec = CommandSpec {
    name: c"RL.TOKENBUCKET",
    callback: callback!(token_bucket),
    flags: c"write deny-oom fast",
    arity: -5,
    summary: c"Takes COST tokens (default 1) from a token bucket if it holds them.",
    complexity: c"O(1)",
    since: c"0.1.0",
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
    callback: callback!(cost),
    flags: c"write deny-oom fast",
    arity: -6,
    summary:
        c"Takes cost tokens from a token bucket if it holds them (the bucket of RL.TOKENBUCKET).",
    complexity: c"O(1)",
    since: c"0.1.0",
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
fn token_bucket(call: &Call) -> CommandResult<Reply> {
    call.require(5)?;
    let params = parse_params(call)?;
    let options = parse_options(call.args_from(5), &[OptionName::Cost, OptionName::At])?;
    let cost = options.cost.unwrap_or(1);
    let outcome = take(call, &params, cost, options.at)?;
    if outcome.write.is_some() {
        replicate!(
            call,
            c"RL.TOKENBUCKET",
            c"slllclcl",
            call.raw(1)?,
            params.capacity,
            params.refill_amount,
            params.refill_period_ms,
            c"COST".as_ptr(),
            cost,
            c"AT".as_ptr(),
            outcome.at_ms,
        );
    }
    Ok(Reply::Decision(outcome.decision))
}

/// `RL.COST key capacity refill_amount refill_period_ms cost [AT unix_ms]`
fn cost(call: &Call) -> CommandResult<Reply> {
    call.require(6)?;
    let params = parse_params(call)?;
    let cost = POSITIONAL_COST.parse(call.arg(5)?)?;
    let options = parse_options(call.args_from(6), &[OptionName::At])?;
    let outcome = take(call, &params, cost, options.at)?;
    if outcome.write.is_some() {
        replicate!(
            call,
            c"RL.COST",
            c"sllllcl",
            call.raw(1)?,
            params.capacity,
            params.refill_amount,
            params.refill_period_ms,
            cost,
            c"AT".as_ptr(),
            outcome.at_ms,
        );
    }
    Ok(Reply::Decision(outcome.decision))
}

fn parse_params(call: &Call) -> CommandResult<BucketParams> {
    Ok(BucketParams {
        capacity: CAPACITY.parse(call.arg(2)?)?,
        refill_amount: REFILL_AMOUNT.parse(call.arg(3)?)?,
        refill_period_ms: REFILL_PERIOD.parse(call.arg(4)?)?,
    })
}

/// Decides on a read-only view of the key and writes only when allowed, so a
/// denied call or a peek leaves the key untouched (WATCH included).
fn take(
    call: &Call,
    params: &BucketParams,
    cost: i64,
    at: Option<i64>,
) -> CommandResult<token_bucket::BucketOutcome> {
    let now = at.unwrap_or_else(|| call.now_ms());
    let outcome = {
        let mut key = call.read_key(1)?;
        let state = types::get::<BucketState>(&mut key)?;
        token_bucket::take(state.as_deref(), params, now, cost)
    };
    if let Some(written) = outcome.write {
        let mut key = call.write_key(1)?;
        types::put(&mut key, written)?;
        key.set_ttl(super::ttl_for(outcome.decision.reset_after_ms));
    }
    Ok(outcome)
}
