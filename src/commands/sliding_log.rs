//! RL.SLIDELOG: a sliding log of (time, cost) records. `check` and `apply`
//! are shared with RL.ALL.

use crate::algo::record_log::RecordLog;
use crate::algo::sliding_log::{self, LogOutcome, LogParams, LogState};
use crate::args::{parse_options, IntArg, OptionName};
use crate::error::CommandResult;
use crate::ffi::{Call, Key};
use crate::registry::{ArgSpec, CommandSpec, KeyLayout};
use crate::reply::Reply;
use crate::stats::CommandStats;
use crate::{callback, types};

pub static SLIDELOG: CommandSpec = CommandSpec {
    name: c"RL.SLIDELOG",
    callback: callback!(slide_log, SLIDELOG),
    stats: CommandStats::new(),
    flags: c"write deny-oom",
    arity: -4,
    summary: c"Admits COST units (default 1) if the sliding window of window_ms holds room for them.",
    complexity: c"O(N) where N is the number of records in the window (at most limit); amortized O(1) for an allowed call",
    since: c"0.1.0",
    keys: KeyLayout::Written,
    args: &[
        ArgSpec::key(c"key"),
        ArgSpec::integer(c"limit"),
        ArgSpec::integer(c"window_ms"),
        ArgSpec::option(c"COST", c"n"),
        ArgSpec::option(c"AT", c"unix_ms"),
    ],
};

const WINDOW: IntArg = IntArg::new("window_ms", 1, i64::MAX);

/// `RL.SLIDELOG key limit window_ms [COST n] [AT unix_ms]`
pub(super) fn slide_log(call: &Call) -> CommandResult<Reply> {
    call.require(4)?;
    let params = parse_params(call, 2)?;
    let options = parse_options(call.args_from(4), &[OptionName::Cost, OptionName::At])?;
    let cost = options.cost.unwrap_or(1);
    let mut key = call.update_key(1)?;
    types::prefetch::<LogState>(&mut key);
    let at_ms = options.at.unwrap_or_else(|| call.now_ms());
    let outcome = check(&mut key, &params, cost, at_ms)?;
    if apply(&mut key, &params, cost, &outcome, call)? {
        super::publish_write(call, &SLIDELOG, &[1])?;
    }
    Ok(Reply::Decision(outcome.evaluation.own_decision()))
}

/// Parses `limit window_ms` from argument `first` on.
pub fn parse_params(call: &Call, first: usize) -> CommandResult<LogParams> {
    let setting = &crate::config::MAX_LOG_LIMIT;
    let raw_limit = call.arg(first)?;
    let limit = match IntArg::new("limit", 1, setting.max).parse(raw_limit) {
        // A write the master accepted runs whatever this server's setting.
        Ok(limit) if limit <= setting.get() || call.is_replicated_or_loading() => limit,
        _ => IntArg::new("limit", 1, setting.get()).parse(raw_limit)?,
    };
    Ok(LogParams {
        limit,
        window_ms: WINDOW.parse(call.arg(first + 1)?)?,
    })
}

/// Decides on the log in `key`; see [`super::token_bucket::check`].
pub fn check(
    key: &mut Key,
    params: &LogParams,
    cost: i64,
    now_ms: i64,
) -> CommandResult<LogOutcome> {
    let state = types::get::<LogState>(key)?;
    Ok(sliding_log::check(state.as_deref(), params, now_ms, cost))
}

/// Records an allowed `call` in `key` (open for writing), with its TTL;
/// false when it writes nothing.
pub fn apply(
    key: &mut Key,
    params: &LogParams,
    cost: i64,
    outcome: &LogOutcome,
    call: &Call,
) -> CommandResult<bool> {
    if !outcome.writes {
        return Ok(false);
    }
    key.mark_written();
    match types::get::<LogState>(key)? {
        Some(state) => sliding_log::record(state, params, outcome.at_ms, cost),
        None => {
            let mut state = LogState {
                params: *params,
                records: RecordLog::default(),
            };
            sliding_log::record(&mut state, params, outcome.at_ms, cost);
            types::put(key, state)?;
        }
    }
    key.set_ttl(
        super::ttl_for(outcome.evaluation.after.reset_after_ms),
        call.ttl_from(outcome.at_ms),
    );
    Ok(true)
}
