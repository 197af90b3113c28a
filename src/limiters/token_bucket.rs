//! RL.TOKENBUCKET and RL.COST: one token bucket, the cost given as an option
//! or positionally.

use crate::algo::token_bucket::{self, BucketOutcome, BucketParams};
use crate::algo::{reservations, wait, Evaluation};
use crate::args::{IntArg, Options};
use crate::callback;
use crate::error::CommandResult;
use crate::ffi::command::{ArgSpec, CommandSpec, KeyLayout};
use crate::ffi::Call;
use crate::reply::{Reply, Value};
use crate::stats::CommandStats;
use crate::types::bucket::Bucket;

use super::wait::Waiting;
use super::{run, Cost, Limiter};

pub static TOKENBUCKET: CommandSpec = CommandSpec {
    name: c"RL.TOKENBUCKET",
    callback: callback!(TOKENBUCKET),
    handler: |call| run::<TokenBucket>(call, &TOKENBUCKET, Cost::Option),
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
        ArgSpec::option(c"WAIT", c"timeout_ms"),
        ArgSpec::at(),
    ],
};

pub static COST: CommandSpec = CommandSpec {
    name: c"RL.COST",
    callback: callback!(COST),
    handler: |call| {
        let cost = Cost::Positional(IntArg::new("cost", 0, i64::MAX));
        run::<TokenBucket>(call, &COST, cost)
    },
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
        ArgSpec::option(c"WAIT", c"timeout_ms"),
        ArgSpec::at(),
    ],
};

const CAPACITY: IntArg = IntArg::new("capacity", 1, i64::MAX);
const REFILL_AMOUNT: IntArg = IntArg::new("refill_amount", 0, i64::MAX);
const REFILL_PERIOD: IntArg = IntArg::new("refill_period_ms", 1, i64::MAX);

/// `capacity refill_amount refill_period_ms`.
pub const BUCKET_PARAMS: [&str; 3] = ["capacity", "refill_amount", "refill_period_ms"];

/// Parses the words of [`BUCKET_PARAMS`].
pub fn parse_bucket(words: &[&[u8]]) -> CommandResult<BucketParams> {
    let word = |n: usize| words.get(n).copied().unwrap_or_default();
    Ok(BucketParams {
        capacity: CAPACITY.parse(word(0))?,
        refill_amount: REFILL_AMOUNT.parse(word(1))?,
        refill_period_ms: REFILL_PERIOD.parse(word(2))?,
    })
}

/// The TTL a bucket needs after a write at `at_ms`: until it is full again
/// and its last open reservation has ended; none for a quota that never
/// refills.
pub fn bucket_ttl(bucket: &Bucket, reset_after_ms: i64, at_ms: i64) -> Option<i64> {
    let last_end = bucket.reservations().and_then(|r| r.last_end_ms());
    let until_last_end = last_end.map_or(0, |end| end.saturating_sub(at_ms));
    super::ttl_for(reset_after_ms).map(|ttl| ttl.max(until_last_end))
}

/// Stores a bucket's new tokens, keeping its reservations (less those that
/// have ended).
pub fn store(bucket: &mut Bucket, written: token_bucket::BucketState) {
    bucket.set_state(written);
    if bucket.reservations().is_some() {
        bucket.change_reservations(|open| open.prune(written.updated_ms));
    }
}

/// Gives `cost` tokens back to a bucket at `now_ms`, or for a reservation
/// (`reservation`), cancels it: what a waiting client that went away took.
/// The TTL the key needs from `now_ms`; `None` when there is nothing to
/// give back (the reservation is no longer open).
pub fn give_back_to_bucket(
    bucket: &mut Bucket,
    cost: i64,
    reservation: Option<i64>,
    now_ms: i64,
) -> Option<Option<i64>> {
    let state = bucket.state();
    let written = match reservation {
        Some(id) => {
            let written =
                reservations::settle(&state, bucket.reservations(), id, 0, now_ms).write?;
            bucket.change_reservations(|open| open.open.retain(|r| r.id != id));
            written
        }
        None => wait::credit(&state, cost, now_ms),
    };
    store(bucket, written);
    let reset = token_bucket::inspect(&written, now_ms).reset_after_ms;
    Some(bucket_ttl(bucket, reset, written.updated_ms))
}

/// RL.INSPECT's view of a bucket.
pub fn inspect_bucket(bucket: &Bucket, now_ms: i64) -> Reply {
    let state = bucket.state();
    let view = token_bucket::inspect(&state, now_ms);
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

pub struct TokenBucket;

impl Limiter for TokenBucket {
    const NAME: &'static str = "TOKENBUCKET";
    const PARAMS: &'static [&'static str] = &BUCKET_PARAMS;
    type Params = BucketParams;
    type State = Bucket;
    type Outcome = BucketOutcome;

    fn parse(_call: &Call, words: &[&[u8]], _options: &Options) -> CommandResult<BucketParams> {
        parse_bucket(words)
    }

    fn decide(
        state: Option<&Bucket>,
        params: &BucketParams,
        cost: i64,
        now_ms: i64,
    ) -> CommandResult<BucketOutcome> {
        Ok(token_bucket::take(
            state.map(Bucket::state).as_ref(),
            params,
            now_ms,
            cost,
        ))
    }

    fn evaluation(outcome: &BucketOutcome) -> &Evaluation {
        &outcome.evaluation
    }

    fn writes_at(outcome: &BucketOutcome) -> Option<i64> {
        outcome.write.map(|_| outcome.at_ms)
    }

    /// An empty bucket: [`Limiter::record`] then stores the tokens.
    fn new_state(params: &BucketParams, outcome: &BucketOutcome) -> Bucket {
        Bucket::new(token_bucket::BucketState {
            params: *params,
            level: 0,
            updated_ms: outcome.at_ms,
        })
    }

    fn record(
        bucket: &mut Bucket,
        _params: &BucketParams,
        _cost: i64,
        outcome: &BucketOutcome,
    ) -> Option<i64> {
        if let Some(written) = outcome.write {
            store(bucket, written);
        }
        bucket_ttl(
            bucket,
            outcome.evaluation.after.reset_after_ms,
            outcome.at_ms,
        )
    }

    fn inspect(bucket: &Bucket, now_ms: i64) -> CommandResult<Reply> {
        Ok(inspect_bucket(bucket, now_ms))
    }

    const WAITS: bool = true;

    fn give_back(
        bucket: &mut Bucket,
        cost: i64,
        _outcome: &BucketOutcome,
        now_ms: i64,
    ) -> Option<Option<i64>> {
        give_back_to_bucket(bucket, cost, None, now_ms)
    }

    fn debit(
        state: Option<&Bucket>,
        params: &BucketParams,
        cost: i64,
        now_ms: i64,
        timeout_ms: i64,
    ) -> CommandResult<Option<(BucketOutcome, Waiting)>> {
        let debit = wait::debit(
            state.map(Bucket::state).as_ref(),
            params,
            now_ms,
            cost,
            timeout_ms,
        );
        Ok(debit.map(|debit| {
            let waiting = Waiting {
                due_ms: debit.due_ms,
                params: *params,
                cost,
                reservation: None,
            };
            (debit.outcome, waiting)
        }))
    }
}
