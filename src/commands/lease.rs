//! RL.ACQUIRE, RL.RELEASE and RL.EXTEND: concurrency leases. `check` and
//! `apply` are shared with RL.ALL.

use crate::algo::ids::MAX_ID;
use crate::algo::leases::{
    self, AcquireError, AcquireOutcome, LeaseParams, LeaseState, MAX_LEASE_LIMIT,
};
use crate::args::{parse_options, IntArg, OptionName};
use crate::error::{CommandError, CommandResult};
use crate::ffi::{Call, Key};
use crate::registry::{ArgSpec, CommandSpec, KeyLayout};
use crate::reply::Reply;
use crate::stats::CommandStats;
use crate::{callback, commands, types};

pub static ACQUIRE: CommandSpec = CommandSpec {
    name: c"RL.ACQUIRE",
    callback: callback!(acquire_command, ACQUIRE),
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
        ArgSpec::option(c"AT", c"unix_ms"),
    ],
};

pub static RELEASE: CommandSpec = CommandSpec {
    name: c"RL.RELEASE",
    callback: callback!(release_command, RELEASE),
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
        ArgSpec::option(c"AT", c"unix_ms"),
    ],
};

pub static EXTEND: CommandSpec = CommandSpec {
    name: c"RL.EXTEND",
    callback: callback!(extend_command, EXTEND),
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
        ArgSpec::option(c"AT", c"unix_ms"),
    ],
};

const LIMIT: IntArg = IntArg::new("limit", 1, MAX_LEASE_LIMIT);
const LEASE_ID: IntArg = IntArg::new("lease_id", 1, MAX_ID);

/// Parses `limit lease_ms` from argument `first` on.
pub fn parse_params(call: &Call, first: usize) -> CommandResult<LeaseParams> {
    Ok(LeaseParams {
        limit: LIMIT.parse(call.arg(first)?)?,
        lease_ms: commands::reservation::LEASE.parse(call.arg(first + 1)?)?,
    })
}

/// `RL.ACQUIRE key limit lease_ms [AT unix_ms]`
pub(super) fn acquire_command(call: &Call) -> CommandResult<Reply> {
    call.require(4)?;
    let params = parse_params(call, 2)?;
    let options = parse_options(call.args_from(4), &[OptionName::At])?;
    let mut key = call.update_key(1)?;
    let now = options.at.unwrap_or_else(|| call.now_ms());
    let outcome = check(&mut key, &params, 1, now)?;
    if apply(&mut key, &params, &outcome, call)? {
        super::publish_write(call, &ACQUIRE, &[1])?;
    }
    Ok(Reply::DecisionWithId(
        outcome.evaluation.own_decision(),
        opened_id(&outcome),
    ))
}

/// The id of the lease a call opened, 0 when it opened none.
pub fn opened_id(outcome: &AcquireOutcome) -> i64 {
    outcome.opened.map_or(0, |l| l.id)
}

/// Decides on the leases in `key`; see [`super::token_bucket::check`].
pub fn check(
    key: &mut Key,
    params: &LeaseParams,
    cost: i64,
    now_ms: i64,
) -> CommandResult<AcquireOutcome> {
    let state = types::get::<LeaseState>(key)?;
    leases::acquire(state.as_deref(), params, now_ms, cost).map_err(|AcquireError::IdsExhausted| {
        CommandError::invalid("AT is too far in the future to issue an id")
    })
}

/// Stores the opened lease in `key` (open for writing); false when nothing
/// opened.
pub fn apply(
    key: &mut Key,
    params: &LeaseParams,
    outcome: &AcquireOutcome,
    call: &Call,
) -> CommandResult<bool> {
    if outcome.opened.is_none() {
        return Ok(false);
    }
    key.mark_written();
    if types::get::<LeaseState>(key)?.is_none() {
        let empty = LeaseState {
            limit: params.limit,
            updated_ms: outcome.at_ms,
            last_id: 0,
            leases: Vec::new(),
        };
        types::put(key, empty)?;
    }
    let state =
        types::get::<LeaseState>(key)?.ok_or(CommandError::Server("the leases vanished"))?;
    leases::record(state, params, outcome);
    let ttl = state
        .last_end_ms(outcome.at_ms)
        .map(|end| end.saturating_sub(outcome.at_ms));
    key.set_ttl(ttl, call.ttl_from(outcome.at_ms));
    Ok(true)
}

/// `RL.RELEASE key lease_id [AT unix_ms]`
pub(super) fn release_command(call: &Call) -> CommandResult<Reply> {
    call.require(3)?;
    let id = LEASE_ID.parse(call.arg(2)?)?;
    let options = parse_options(call.args_from(3), &[OptionName::At])?;
    let now = options.at.unwrap_or_else(|| call.now_ms());
    let changed = change_live_lease(call, id, now, |state| leases::release(state, id, now))?;
    if changed {
        super::publish_write(call, &RELEASE, &[1])?;
    }
    Ok(Reply::Integer(i64::from(changed)))
}

/// `RL.EXTEND key lease_id lease_ms [AT unix_ms]`
pub(super) fn extend_command(call: &Call) -> CommandResult<Reply> {
    call.require(4)?;
    let id = LEASE_ID.parse(call.arg(2)?)?;
    let lease_ms = commands::reservation::LEASE.parse(call.arg(3)?)?;
    let options = parse_options(call.args_from(4), &[OptionName::At])?;
    let now = options.at.unwrap_or_else(|| call.now_ms());
    let changed = change_live_lease(call, id, now, |state| {
        leases::extend(state, id, lease_ms, now)
    })?;
    if changed {
        super::publish_write(call, &EXTEND, &[1])?;
    }
    Ok(Reply::Integer(i64::from(changed)))
}

/// Applies `change` to lease `id` if it is live, signalling the key as
/// modified only then; the TTL may grow to the last lease's end, never
/// shrink. Returns whether it changed the lease.
fn change_live_lease(
    call: &Call,
    id: i64,
    now: i64,
    change: impl FnOnce(&mut LeaseState) -> bool,
) -> CommandResult<bool> {
    let mut key = call.update_key(1)?;
    let Some(state) = types::get::<LeaseState>(&mut key)? else {
        return Ok(false);
    };
    if !leases::is_live(state, id, now) || !change(state) {
        return Ok(false);
    }
    let at_ms = state.updated_ms;
    let ttl = state
        .last_end_ms(at_ms)
        .map(|end| end.saturating_sub(at_ms));
    key.mark_written();
    // With no live lease left the key needs no longer TTL, and keeps the
    // one it has: it still expires.
    if ttl.is_some() {
        key.extend_ttl(ttl, call.ttl_from(at_ms));
    }
    Ok(true)
}
