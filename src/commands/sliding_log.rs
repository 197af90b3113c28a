//! RL.SLIDELOG: a sliding log of (time, cost) records.

use crate::algo::record_log::RecordLog;
use crate::algo::sliding_log::{self, LogParams, LogState};
use crate::args::{parse_options, IntArg, OptionName};
use crate::error::CommandResult;
use crate::ffi::Call;
use crate::registry::{ArgSpec, CommandSpec};
use crate::reply::Reply;
use crate::{callback, replicate, types};

/// The largest accepted limit: a log holds at most `limit` records.
pub const MAX_LOG_LIMIT: i64 = 1_000_000;

pub static SLIDELOG: CommandSpec = CommandSpec {
    name: c"RL.SLIDELOG",
    callback: callback!(slide_log),
    flags: c"write deny-oom",
    arity: -4,
    summary: c"Admits COST units (default 1) if the sliding window of window_ms holds room for them.",
    complexity: c"O(N) where N is the number of records in the window (at most limit); amortized O(1) for an allowed call",
    since: c"0.1.0",
    args: &[
        ArgSpec::key(c"key"),
        ArgSpec::integer(c"limit"),
        ArgSpec::integer(c"window_ms"),
        ArgSpec::option(c"COST", c"n"),
        ArgSpec::option(c"AT", c"unix_ms"),
    ],
};

const LIMIT: IntArg = IntArg::new("limit", 1, MAX_LOG_LIMIT);
const WINDOW: IntArg = IntArg::new("window_ms", 1, i64::MAX);

/// `RL.SLIDELOG key limit window_ms [COST n] [AT unix_ms]`
fn slide_log(call: &Call) -> CommandResult<Reply> {
    call.require(4)?;
    let params = LogParams {
        limit: LIMIT.parse(call.arg(2)?)?,
        window_ms: WINDOW.parse(call.arg(3)?)?,
    };
    let options = parse_options(call.args_from(4), &[OptionName::Cost, OptionName::At])?;
    let cost = options.cost.unwrap_or(1);
    let now = options.at.unwrap_or_else(|| call.now_ms());
    let outcome = {
        let mut key = call.read_key(1)?;
        let state = types::get::<LogState>(&mut key)?;
        sliding_log::check(state.as_deref(), &params, now, cost)
    };
    if outcome.writes {
        let mut key = call.write_key(1)?;
        match types::get::<LogState>(&mut key)? {
            Some(state) => sliding_log::record(state, &params, outcome.at_ms, cost),
            None => {
                let mut state = LogState {
                    params,
                    records: RecordLog::default(),
                };
                sliding_log::record(&mut state, &params, outcome.at_ms, cost);
                types::put(&mut key, state)?;
            }
        }
        key.set_ttl(super::ttl_for(outcome.decision.reset_after_ms));
        replicate!(
            call,
            c"RL.SLIDELOG",
            c"sllclcl",
            call.raw(1)?,
            params.limit,
            params.window_ms,
            c"COST".as_ptr(),
            cost,
            c"AT".as_ptr(),
            outcome.at_ms,
        );
    }
    Ok(Reply::Decision(outcome.decision))
}
