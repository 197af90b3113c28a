//! RL.SLIDELOG: a sliding log of (time, cost) records.

use crate::algo::record_log::RecordLog;
use crate::algo::sliding_log::{self, LogOutcome, LogParams, LogState};
use crate::algo::Evaluation;
use crate::args::{IntArg, Options};
use crate::callback;
use crate::error::CommandResult;
use crate::ffi::command::{ArgSpec, CommandSpec, KeyLayout};
use crate::ffi::Call;
use crate::reply::{Reply, Value};
use crate::stats::CommandStats;

use super::{run, Cost, Limiter};

pub static SLIDELOG: CommandSpec = CommandSpec {
    name: c"RL.SLIDELOG",
    callback: callback!(SLIDELOG),
    handler: |call| run::<SlideLog>(call, &SLIDELOG, Cost::Option),
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
        ArgSpec::at(),
    ],
};

const WINDOW: IntArg = IntArg::new("window_ms", 1, i64::MAX);

pub struct SlideLog;

impl Limiter for SlideLog {
    const NAME: &'static str = "SLIDELOG";
    const PARAMS: &'static [&'static str] = &["limit", "window_ms"];
    type Params = LogParams;
    type State = LogState;
    type Outcome = LogOutcome;

    fn parse(call: &Call, words: &[&[u8]], _options: &Options) -> CommandResult<LogParams> {
        let word = |n: usize| words.get(n).copied().unwrap_or_default();
        let setting = &crate::config::MAX_LOG_LIMIT;
        let limit = match IntArg::new("limit", 1, crate::config::MAX_LOG_LIMIT_TOP).parse(word(0)) {
            // A write the master accepted runs whatever this server's setting.
            Ok(limit) if limit <= setting.get() || call.is_replicated_or_loading() => limit,
            _ => IntArg::new("limit", 1, setting.get()).parse(word(0))?,
        };
        Ok(LogParams {
            limit,
            window_ms: WINDOW.parse(word(1))?,
        })
    }

    fn decide(
        state: Option<&LogState>,
        params: &LogParams,
        cost: i64,
        now_ms: i64,
    ) -> CommandResult<LogOutcome> {
        Ok(sliding_log::check(state, params, now_ms, cost))
    }

    fn evaluation(outcome: &LogOutcome) -> &Evaluation {
        &outcome.evaluation
    }

    fn writes_at(outcome: &LogOutcome) -> Option<i64> {
        outcome.writes.then_some(outcome.at_ms)
    }

    fn new_state(params: &LogParams, _outcome: &LogOutcome) -> LogState {
        LogState {
            params: *params,
            records: RecordLog::default(),
        }
    }

    fn record(
        state: &mut LogState,
        params: &LogParams,
        cost: i64,
        outcome: &LogOutcome,
    ) -> Option<i64> {
        sliding_log::record(state, params, outcome.at_ms, cost);
        super::ttl_for(outcome.evaluation.after.reset_after_ms)
    }

    fn inspect(log: &LogState, now_ms: i64) -> CommandResult<Reply> {
        let view = sliding_log::inspect(log, now_ms);
        Ok(Reply::Map(vec![
            (c"type", Value::Text(c"slidelog")),
            (c"limit", Value::Int(log.params.limit)),
            (c"window_ms", Value::Int(log.params.window_ms)),
            (c"used", Value::Int(view.used)),
            (c"entries", Value::Int(view.entries)),
            (c"oldest_ms", time(view.oldest_ms)),
            (c"newest_ms", time(view.newest_ms)),
            (c"reset_after_ms", Value::Int(view.reset_after_ms)),
        ]))
    }
}

/// A time that may be absent, for RL.INSPECT.
pub fn time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, Value::Int)
}
