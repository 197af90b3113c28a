//! RL.ACQUIRE, RL.RELEASE and RL.EXTEND: concurrency leases.

use crate::algo::ids::MAX_ID;
use crate::algo::leases::{
    self, AcquireError, AcquireOutcome, LeaseParams, LeaseState, MAX_LEASE_LIMIT,
};
use crate::algo::Evaluation;
use crate::args::{parse_options, IntArg, OptionName, Options};
use crate::callback;
use crate::error::{CommandError, CommandResult};
use crate::ffi::command::{ArgSpec, CommandSpec, KeyLayout};
use crate::ffi::Call;
use crate::replication::CallClock;
use crate::reply::{Reply, Value};
use crate::stats::CommandStats;

use super::reserve::LEASE;
use super::sliding_log::time;
use super::{lease_wait, publish_write, run, Cost, Limiter};

pub static ACQUIRE: CommandSpec = CommandSpec {
    name: c"RL.ACQUIRE",
    callback: callback!(ACQUIRE),
    handler: |call| run::<Acquire>(call, &ACQUIRE, Cost::One),
    stats: CommandStats::new(),
    flags: c"write deny-oom fast",
    arity: -4,
    summary: c"Opens a lease on one of limit concurrency slots, if one is free.",
    complexity: c"O(L) for L leases on the key",
    since: c"0.1.0",
    keys: KeyLayout::Written,
    args: &[
        ArgSpec::key(c"key"),
        ArgSpec::integer(c"limit"),
        ArgSpec::integer(c"lease_ms"),
        ArgSpec::option(c"WAIT", c"timeout_ms"),
        ArgSpec::at(),
    ],
};

pub static RELEASE: CommandSpec = CommandSpec {
    name: c"RL.RELEASE",
    callback: callback!(RELEASE),
    handler: |call| {
        let id = LEASE_ID.parse(call.arg(2)?)?;
        let options = parse_options(call.args_from(3), &[OptionName::At])?;
        change_live_lease(call, id, options.at, &RELEASE, |state, now| {
            leases::release(state, id, now)
        })
    },
    stats: CommandStats::new(),
    flags: c"write fast",
    arity: -3,
    summary: c"Ends a live lease, freeing its slot.",
    complexity: c"O(L) for L leases on the key",
    since: c"0.1.0",
    keys: KeyLayout::Written,
    args: &[
        ArgSpec::key(c"key"),
        ArgSpec::integer(c"lease_id"),
        ArgSpec::at(),
    ],
};

pub static EXTEND: CommandSpec = CommandSpec {
    name: c"RL.EXTEND",
    callback: callback!(EXTEND),
    handler: |call| {
        let id = LEASE_ID.parse(call.arg(2)?)?;
        let lease_ms = LEASE.parse(call.arg(3)?)?;
        let options = parse_options(call.args_from(4), &[OptionName::At])?;
        change_live_lease(call, id, options.at, &EXTEND, |state, now| {
            leases::extend(state, id, lease_ms, now)
        })
    },
    stats: CommandStats::new(),
    flags: c"write fast",
    arity: -4,
    summary: c"Moves a live lease's end to now + lease_ms (a heartbeat).",
    complexity: c"O(L) for L leases on the key",
    since: c"0.1.0",
    keys: KeyLayout::Written,
    args: &[
        ArgSpec::key(c"key"),
        ArgSpec::integer(c"lease_id"),
        ArgSpec::integer(c"lease_ms"),
        ArgSpec::at(),
    ],
};

const LIMIT: IntArg = IntArg::new("limit", 1, MAX_LEASE_LIMIT);
const LEASE_ID: IntArg = IntArg::new("lease_id", 1, MAX_ID);

/// The TTL leases need after a write at `at_ms`: until the last one ends.
fn leases_ttl(state: &LeaseState, at_ms: i64) -> Option<i64> {
    state
        .last_end_ms(at_ms)
        .map(|end| end.saturating_sub(at_ms))
}

pub struct Acquire;

impl Limiter for Acquire {
    const NAME: &'static str = "ACQUIRE";
    const PARAMS: &'static [&'static str] = &["limit", "lease_ms"];
    type Params = LeaseParams;
    type State = LeaseState;
    type Outcome = AcquireOutcome;

    fn parse(_call: &Call, words: &[&[u8]], _options: &Options) -> CommandResult<LeaseParams> {
        let word = |n: usize| words.get(n).copied().unwrap_or_default();
        Ok(LeaseParams {
            limit: LIMIT.parse(word(0))?,
            lease_ms: LEASE.parse(word(1))?,
        })
    }

    fn check_cost(cost: i64) -> CommandResult<()> {
        if cost > 1 {
            return Err(CommandError::invalid("ACQUIRE takes a cost of 0 or 1"));
        }
        Ok(())
    }

    fn decide(
        state: Option<&LeaseState>,
        params: &LeaseParams,
        cost: i64,
        now_ms: i64,
    ) -> CommandResult<AcquireOutcome> {
        leases::acquire(state, params, now_ms, cost).map_err(|AcquireError::IdsExhausted| {
            CommandError::invalid("AT is too far in the future to issue an id")
        })
    }

    fn evaluation(outcome: &AcquireOutcome) -> &Evaluation {
        &outcome.evaluation
    }

    fn opened_id(outcome: &AcquireOutcome) -> Option<i64> {
        Some(outcome.opened.map_or(0, |l| l.id))
    }

    fn writes_at(outcome: &AcquireOutcome) -> Option<i64> {
        outcome.opened.map(|_| outcome.at_ms)
    }

    fn new_state(params: &LeaseParams, outcome: &AcquireOutcome) -> LeaseState {
        LeaseState {
            limit: params.limit,
            updated_ms: outcome.at_ms,
            last_id: 0,
            leases: Vec::new(),
        }
    }

    fn record(
        state: &mut LeaseState,
        params: &LeaseParams,
        _cost: i64,
        outcome: &AcquireOutcome,
    ) -> Option<i64> {
        leases::record(state, params, outcome);
        leases_ttl(state, outcome.at_ms)
    }

    const WAITS: bool = true;

    const QUEUES: bool = true;

    fn start_at(params: &LeaseParams, outcome: &mut AcquireOutcome, answer_ms: i64) {
        if let Some(opened) = &mut outcome.opened {
            opened.ends_ms = answer_ms.saturating_add(params.lease_ms);
        }
    }

    fn give_back(
        state: &mut LeaseState,
        _cost: i64,
        outcome: &AcquireOutcome,
        now_ms: i64,
    ) -> Option<Option<i64>> {
        let id = outcome.opened?.id;
        leases::release(state, id, now_ms).then(|| leases_ttl(state, now_ms))
    }

    fn serve_waiting(call: &Call, key_index: usize) -> CommandResult<()> {
        lease_wait::serve_for(call, key_index)
    }

    fn queue(
        call: &Call,
        params: &LeaseParams,
        now_ms: i64,
        timeout_ms: i64,
    ) -> CommandResult<Option<Reply>> {
        lease_wait::enqueue(call, params, now_ms, timeout_ms).map(Some)
    }

    fn inspect(state: &LeaseState, now_ms: i64) -> CommandResult<Reply> {
        let view = leases::inspect(state, now_ms);
        Ok(Reply::Map(vec![
            (c"type", Value::Text(c"leases")),
            (c"limit", Value::Int(state.limit)),
            (c"live", Value::Int(view.live)),
            (c"next_end_ms", time(view.next_end_ms)),
            (c"last_end_ms", time(view.last_end_ms)),
        ]))
    }
}

/// Applies `change` to lease `id` if it is live, signalling the key as
/// modified only then; the TTL may grow to the last lease's end, never
/// shrink. Replies whether it changed the lease.
fn change_live_lease(
    call: &Call,
    id: i64,
    at: Option<i64>,
    command: &'static CommandSpec,
    change: impl FnOnce(&mut LeaseState, i64) -> bool,
) -> CommandResult<Reply> {
    let clock = CallClock::new(call);
    let now = clock.time(at)?;
    let mut key = call.update_key(1)?;
    let Some(state) = key.value::<LeaseState>()? else {
        return Ok(Reply::Integer(0));
    };
    if !leases::is_live(state, id, now) || !change(state, now) {
        return Ok(Reply::Integer(0));
    }
    let at_ms = state.updated_ms;
    let ttl = leases_ttl(state, at_ms);
    key.mark_written();
    // With no live lease left the key needs no longer TTL, and keeps the
    // one it has: it still expires.
    if ttl.is_some() {
        key.extend_ttl(ttl, clock.ttl_from(at_ms));
    }
    drop(key);
    publish_write(call, &clock, command, &[1])?;
    // A slot may have freed for the clients waiting on the key.
    lease_wait::serve_for(call, 1)?;
    Ok(Reply::Integer(1))
}
