//! RL.RESERVE, RL.SETTLE and RL.CANCEL: costs known only afterwards, on the
//! bucket of RL.TOKENBUCKET.

use crate::algo::ids::MAX_ID;
use crate::algo::reservations::{self, ReserveError, ReserveOutcome};
use crate::algo::token_bucket::BucketParams;
use crate::algo::{wait, Decision, Evaluation};
use crate::args::{parse_options, IntArg, OptionName, Options};
use crate::callback;
use crate::error::{CommandError, CommandResult};
use crate::ffi::command::{ArgSpec, CommandSpec, KeyLayout};
use crate::ffi::Call;
use crate::replication::CallClock;
use crate::reply::Reply;
use crate::stats::CommandStats;
use crate::types::bucket::Bucket;

use super::token_bucket::{bucket_ttl, give_back_to_bucket, inspect_bucket, parse_bucket, store};
use super::wait::Waiting;
use super::{execute, publish_write, Limiter};

pub static RESERVE: CommandSpec = CommandSpec {
    name: c"RL.RESERVE",
    callback: callback!(RESERVE),
    handler: |call| {
        // The estimate stands between the bucket and the lease, as the
        // arguments are checked.
        let bucket = parse_bucket(&[call.arg(2)?, call.arg(3)?, call.arg(4)?])?;
        let estimate = IntArg::new("estimate", 1, i64::MAX).parse(call.arg(5)?)?;
        let lease_ms = LEASE.parse(call.arg(6)?)?;
        let options = parse_options(call.args_from(7), &[OptionName::At, OptionName::Wait])?;
        let wait = super::wait::timeout(&options)?;
        execute::<Reserve>(
            call,
            &RESERVE,
            &(bucket, lease_ms),
            estimate,
            options.at,
            wait,
        )
    },
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
        ArgSpec::option(c"WAIT", c"timeout_ms"),
        ArgSpec::at(),
    ],
};

pub static SETTLE: CommandSpec = CommandSpec {
    name: c"RL.SETTLE",
    callback: callback!(SETTLE),
    handler: |call| {
        let id = RESERVATION_ID.parse(call.arg(2)?)?;
        let actual = IntArg::new("actual_cost", 0, i64::MAX).parse(call.arg(3)?)?;
        settle(call, id, actual, 4, &SETTLE)
    },
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
        ArgSpec::at(),
    ],
};

pub static CANCEL: CommandSpec = CommandSpec {
    name: c"RL.CANCEL",
    callback: callback!(CANCEL),
    handler: |call| settle(call, RESERVATION_ID.parse(call.arg(2)?)?, 0, 3, &CANCEL),
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
        ArgSpec::at(),
    ],
};

pub const LEASE: IntArg = IntArg::new("lease_ms", 1, i64::MAX);
const RESERVATION_ID: IntArg = IntArg::new("reservation_id", 1, MAX_ID);

pub struct Reserve;

impl Limiter for Reserve {
    const NAME: &'static str = "RESERVE";
    const PARAMS: &'static [&'static str] =
        &["capacity", "refill_amount", "refill_period_ms", "lease_ms"];
    /// The bucket, with the lease of the reservation the call opens.
    type Params = (BucketParams, i64);
    type State = Bucket;
    type Outcome = ReserveOutcome;

    fn parse(
        _call: &Call,
        words: &[&[u8]],
        _options: &Options,
    ) -> CommandResult<(BucketParams, i64)> {
        let params = parse_bucket(words)?;
        let lease_ms = LEASE.parse(words.get(3).copied().unwrap_or_default())?;
        Ok((params, lease_ms))
    }

    fn decide(
        bucket: Option<&Bucket>,
        (params, lease_ms): &(BucketParams, i64),
        estimate: i64,
        now_ms: i64,
    ) -> CommandResult<ReserveOutcome> {
        let (state, open) = match bucket {
            Some(b) => (Some(b.state()), b.reservations()),
            None => (None, None),
        };
        reservations::reserve(state.as_ref(), open, params, now_ms, estimate, *lease_ms)
            .map_err(reserve_error)
    }

    fn evaluation(outcome: &ReserveOutcome) -> &Evaluation {
        &outcome.bucket.evaluation
    }

    fn opened_id(outcome: &ReserveOutcome) -> Option<i64> {
        Some(outcome.opened.map_or(0, |r| r.id))
    }

    fn writes_at(outcome: &ReserveOutcome) -> Option<i64> {
        let writes = outcome.bucket.write.is_some() && outcome.opened.is_some();
        writes.then_some(outcome.bucket.at_ms)
    }

    fn new_state((params, _): &(BucketParams, i64), outcome: &ReserveOutcome) -> Bucket {
        <super::token_bucket::TokenBucket as Limiter>::new_state(params, &outcome.bucket)
    }

    fn record(
        bucket: &mut Bucket,
        _params: &(BucketParams, i64),
        _estimate: i64,
        outcome: &ReserveOutcome,
    ) -> Option<i64> {
        if let (Some(written), Some(opened)) = (outcome.bucket.write, outcome.opened) {
            store(bucket, written);
            bucket.change_reservations(|open| {
                open.last_id = opened.id;
                open.open.push(opened);
            });
        }
        let reset = outcome.bucket.evaluation.after.reset_after_ms;
        bucket_ttl(bucket, reset, outcome.bucket.at_ms)
    }

    fn inspect(bucket: &Bucket, now_ms: i64) -> CommandResult<Reply> {
        Ok(inspect_bucket(bucket, now_ms))
    }

    const WAITS: bool = true;

    fn start_at((_, lease_ms): &(BucketParams, i64), outcome: &mut ReserveOutcome, answer_ms: i64) {
        if let Some(opened) = &mut outcome.opened {
            opened.ends_ms = answer_ms.saturating_add(*lease_ms);
        }
    }

    fn give_back(
        bucket: &mut Bucket,
        cost: i64,
        outcome: &ReserveOutcome,
        now_ms: i64,
    ) -> Option<Option<i64>> {
        let id = outcome.opened?.id;
        give_back_to_bucket(bucket, cost, Some(id), now_ms)
    }

    fn debit(
        bucket: Option<&Bucket>,
        (params, lease_ms): &(BucketParams, i64),
        estimate: i64,
        now_ms: i64,
        timeout_ms: i64,
    ) -> CommandResult<Option<(ReserveOutcome, Waiting)>> {
        let (state, open) = match bucket {
            Some(b) => (Some(b.state()), b.reservations()),
            None => (None, None),
        };
        let Some(debit) = wait::debit(state.as_ref(), params, now_ms, estimate, timeout_ms) else {
            return Ok(None);
        };
        // The lease counts from the due time: the wait does not eat into it.
        let ends_ms = debit.due_ms.saturating_add(*lease_ms);
        let opened = reservations::open_reservation(open, debit.outcome.at_ms, estimate, ends_ms)
            .map_err(reserve_error)?;
        let waiting = Waiting {
            due_ms: debit.due_ms,
            params: *params,
            cost: estimate,
            reservation: Some(opened.id),
        };
        let outcome = ReserveOutcome {
            bucket: debit.outcome,
            opened: Some(opened),
        };
        Ok(Some((outcome, waiting)))
    }
}

fn reserve_error(error: ReserveError) -> CommandError {
    match error {
        ReserveError::TooManyOpen => CommandError::invalid(format!(
            "too many open reservations on this key (at most {})",
            reservations::MAX_OPEN
        )),
        ReserveError::IdsExhausted => {
            CommandError::invalid("AT is too far in the future to issue an id")
        }
    }
}

/// `RL.SETTLE key reservation_id actual_cost [AT unix_ms]`, and
/// `RL.CANCEL key reservation_id [AT unix_ms]` (RL.SETTLE with cost 0):
/// options from argument `options_at`. One open serves the decision and
/// the write, and the key is signalled as modified only when written.
fn settle(
    call: &Call,
    id: i64,
    actual: i64,
    options_at: usize,
    command: &'static CommandSpec,
) -> CommandResult<Reply> {
    let options = parse_options(call.args_from(options_at), &[OptionName::At])?;
    let clock = CallClock::new(call);
    let now = clock.time(options.at)?;
    let mut key = call.update_key(1)?;
    let Some(bucket) = key.value::<Bucket>()? else {
        return Ok(Reply::Decision(Decision::default()));
    };
    let outcome = reservations::settle(&bucket.state(), bucket.reservations(), id, actual, now);
    let Some(written) = outcome.write else {
        return Ok(Reply::Decision(outcome.decision));
    };
    store(bucket, written);
    bucket.change_reservations(|open| open.open.retain(|r| r.id != id));
    let ttl = bucket_ttl(bucket, outcome.decision.reset_after_ms, outcome.at_ms);
    key.mark_written();
    key.extend_ttl(ttl, clock.ttl_from(outcome.at_ms));
    publish_write(call, &clock, command, &[1])?;
    Ok(Reply::Decision(outcome.decision))
}
