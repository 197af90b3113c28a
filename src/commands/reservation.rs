//! RL.RESERVE, RL.SETTLE and RL.CANCEL: costs known only afterwards, on the
//! bucket of RL.TOKENBUCKET. `check` and `apply` are shared with RL.ALL.

use crate::algo::ids::MAX_ID;
use crate::algo::reservations::{self, ReserveError, ReserveOutcome};
use crate::algo::token_bucket::BucketParams;
use crate::algo::Decision;
use crate::args::{parse_options, IntArg, OptionName, Options};
use crate::error::{CommandError, CommandResult};
use crate::ffi::{Call, Key};
use crate::registry::{ArgSpec, CommandSpec, KeyLayout};
use crate::reply::Reply;
use crate::stats::CommandStats;
use crate::types::bucket::Bucket;
use crate::{callback, commands, types};

pub static RESERVE: CommandSpec = CommandSpec {
    name: c"RL.RESERVE",
    callback: callback!(reserve_command, RESERVE),
    stats: CommandStats::new(),
    flags: c"write deny-oom fast",
    arity: -7,
    summary:
        c"Takes an estimated cost from a token bucket now and opens a reservation to settle later.",
    complexity: c"O(R) for R open reservations on the key",
    since: c"0.1.0",
    keys: KeyLayout::Written,
    args: &[
        ArgSpec::key(c"key"),
        ArgSpec::integer(c"capacity"),
        ArgSpec::integer(c"refill_amount"),
        ArgSpec::integer(c"refill_period_ms"),
        ArgSpec::integer(c"estimate"),
        ArgSpec::integer(c"lease_ms"),
        ArgSpec::option(c"AT", c"unix_ms"),
    ],
};

pub static SETTLE: CommandSpec = CommandSpec {
    name: c"RL.SETTLE",
    callback: callback!(settle_command, SETTLE),
    stats: CommandStats::new(),
    flags: c"write fast",
    arity: -4,
    summary: c"Closes a reservation with the real cost: refunds or debits the difference from the estimate.",
    complexity: c"O(R) for R open reservations on the key",
    since: c"0.1.0",
    keys: KeyLayout::Written,
    args: &[
        ArgSpec::key(c"key"),
        ArgSpec::integer(c"reservation_id"),
        ArgSpec::integer(c"actual_cost"),
        ArgSpec::option(c"AT", c"unix_ms"),
    ],
};

pub static CANCEL: CommandSpec = CommandSpec {
    name: c"RL.CANCEL",
    callback: callback!(cancel_command, CANCEL),
    stats: CommandStats::new(),
    flags: c"write fast",
    arity: -3,
    summary: c"Closes a reservation with nothing spent: refunds its whole estimate.",
    complexity: c"O(R) for R open reservations on the key",
    since: c"0.1.0",
    keys: KeyLayout::Written,
    args: &[
        ArgSpec::key(c"key"),
        ArgSpec::integer(c"reservation_id"),
        ArgSpec::option(c"AT", c"unix_ms"),
    ],
};

const ESTIMATE: IntArg = IntArg::new("estimate", 1, i64::MAX);
pub const LEASE: IntArg = IntArg::new("lease_ms", 1, i64::MAX);
const RESERVATION_ID: IntArg = IntArg::new("reservation_id", 1, MAX_ID);
const ACTUAL_COST: IntArg = IntArg::new("actual_cost", 0, i64::MAX);

/// `RL.RESERVE key capacity refill_amount refill_period_ms estimate lease_ms [AT unix_ms]`
pub(super) fn reserve_command(call: &Call) -> CommandResult<Reply> {
    call.require(7)?;
    let params = commands::token_bucket::parse_params(call, 2)?;
    let estimate = ESTIMATE.parse(call.arg(5)?)?;
    let lease_ms = LEASE.parse(call.arg(6)?)?;
    let options = parse_options(call.args_from(7), &[OptionName::At])?;
    let now = options.at.unwrap_or_else(|| call.now_ms());
    let mut key = call.update_key(1)?;
    let outcome = check(&mut key, &params, estimate, lease_ms, now)?;
    if apply(&mut key, &outcome, call)? {
        super::publish_write(call, &RESERVE, &[1])?;
    }
    Ok(Reply::DecisionWithId(
        outcome.bucket.evaluation.own_decision(),
        opened_id(&outcome),
    ))
}

/// The id a reservation call opened, 0 when it opened none.
pub fn opened_id(outcome: &ReserveOutcome) -> i64 {
    outcome.opened.map_or(0, |r| r.id)
}

/// Decides on the bucket in `key`; see [`super::token_bucket::check`].
pub fn check(
    key: &mut Key,
    params: &BucketParams,
    estimate: i64,
    lease_ms: i64,
    now_ms: i64,
) -> CommandResult<ReserveOutcome> {
    let bucket = types::get::<Bucket>(key)?;
    let (state, open) = match bucket {
        Some(b) => (Some(b.state()), b.reservations()),
        None => (None, None),
    };
    reservations::reserve(state.as_ref(), open, params, now_ms, estimate, lease_ms).map_err(
        |error| match error {
            ReserveError::TooManyOpen => CommandError::invalid(format!(
                "too many open reservations on this key (at most {})",
                reservations::MAX_OPEN
            )),
            ReserveError::IdsExhausted => {
                CommandError::invalid("AT is too far in the future to issue an id")
            }
        },
    )
}

/// Takes the estimate and opens the reservation in `key` (open for
/// writing); false when denied.
pub fn apply(key: &mut Key, outcome: &ReserveOutcome, call: &Call) -> CommandResult<bool> {
    let (Some(written), Some(opened)) = (outcome.bucket.write, outcome.opened) else {
        return Ok(false);
    };
    key.mark_written();
    let bucket = commands::token_bucket::store(key, written)?;
    let open = bucket.reservations_mut();
    open.last_id = opened.id;
    open.open.push(opened);
    let reset = outcome.bucket.evaluation.after.reset_after_ms;
    let ttl = commands::token_bucket::bucket_ttl(bucket, reset, outcome.bucket.at_ms);
    key.set_ttl(ttl, call.ttl_from(outcome.bucket.at_ms));
    Ok(true)
}

/// `RL.SETTLE key reservation_id actual_cost [AT unix_ms]`
pub(super) fn settle_command(call: &Call) -> CommandResult<Reply> {
    call.require(4)?;
    let id = RESERVATION_ID.parse(call.arg(2)?)?;
    let actual = ACTUAL_COST.parse(call.arg(3)?)?;
    let options = parse_options(call.args_from(4), &[OptionName::At])?;
    settle(call, id, actual, &SETTLE, &options)
}

/// `RL.CANCEL key reservation_id [AT unix_ms]`: RL.SETTLE with cost 0.
pub(super) fn cancel_command(call: &Call) -> CommandResult<Reply> {
    call.require(3)?;
    let id = RESERVATION_ID.parse(call.arg(2)?)?;
    let options = parse_options(call.args_from(3), &[OptionName::At])?;
    settle(call, id, 0, &CANCEL, &options)
}

fn settle(
    call: &Call,
    id: i64,
    actual: i64,
    command: &'static CommandSpec,
    options: &Options,
) -> CommandResult<Reply> {
    let now = options.at.unwrap_or_else(|| call.now_ms());
    let outcome = {
        let mut key = call.read_key(1)?;
        match types::get::<Bucket>(&mut key)? {
            Some(bucket) => {
                reservations::settle(&bucket.state(), bucket.reservations(), id, actual, now)
            }
            None => return Ok(Reply::Decision(Decision::default())),
        }
    };
    if let Some(written) = outcome.write {
        let mut key = call.write_key(1)?;
        let bucket = commands::token_bucket::store(&mut key, written)?;
        bucket.reservations_mut().open.retain(|r| r.id != id);
        let ttl = commands::token_bucket::bucket_ttl(
            bucket,
            outcome.decision.reset_after_ms,
            outcome.at_ms,
        );
        key.extend_ttl(ttl, call.ttl_from(outcome.at_ms));
        super::publish_write(call, command, &[1])?;
    }
    Ok(Reply::Decision(outcome.decision))
}
