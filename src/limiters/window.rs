//! RL.WINDOW: a sliding window in bounded memory that never admits more
//! than its limit in any window, or the classic fixed window.

use crate::algo::window::{self, WindowOutcome, WindowParams, WindowState, FIXED};
use crate::algo::Evaluation;
use crate::args::{IntArg, OptionName, Options};
use crate::callback;
use crate::error::{CommandError, CommandResult};
use crate::ffi::command::{ArgSpec, CommandSpec, KeyLayout};
use crate::ffi::Call;
use crate::reply::{Reply, Value};
use crate::stats::CommandStats;

use super::{run, Cost, Limiter};

pub static WINDOW: CommandSpec = CommandSpec {
    name: c"RL.WINDOW",
    callback: callback!(WINDOW),
    handler: |call| run::<Window>(call, &WINDOW, Cost::Option),
    stats: CommandStats::new(),
    flags: c"write deny-oom fast",
    arity: -4,
    summary: c"Admits COST units (default 1) if no window of window_ms would hold more than limit: slots of PRECISION ms (default window_ms / 60) in bounded memory, or FIXED windows.",
    complexity: c"O(1) amortized; O(S) for S stored slots (at most window_ms / PRECISION + 1) when the parameters change",
    since: c"0.1.0",
    keys: KeyLayout::Written,
    args: &[
        ArgSpec::key(c"key"),
        ArgSpec::integer(c"limit"),
        ArgSpec::integer(c"window_ms"),
        ArgSpec::one_of(
            c"slots",
            &[
                ArgSpec::tagged(c"PRECISION", c"ms"),
                ArgSpec::pure_token(c"FIXED"),
            ],
        )
        .optional(),
        ArgSpec::option(c"COST", c"n"),
        ArgSpec::at(),
    ],
};

const LIMIT: IntArg = IntArg::new("limit", 1, i64::MAX);
const WINDOW_MS: IntArg = IntArg::new("window_ms", 1, i64::MAX);

pub struct Window;

impl Limiter for Window {
    const NAME: &'static str = "WINDOW";
    const PARAMS: &'static [&'static str] = &["limit", "window_ms"];
    const OPTIONS: &'static [OptionName] = &[OptionName::Precision, OptionName::Fixed];
    type Params = WindowParams;
    type State = WindowState;
    type Outcome = WindowOutcome;

    fn parse(call: &Call, words: &[&[u8]], options: &Options) -> CommandResult<WindowParams> {
        let word = |n: usize| words.get(n).copied().unwrap_or_default();
        let limit = LIMIT.parse(word(0))?;
        let window_ms = WINDOW_MS.parse(word(1))?;
        let precision_ms = match (options.precision, options.fixed) {
            (Some(_), true) => {
                return Err(CommandError::invalid(
                    "PRECISION and FIXED cannot be combined",
                ))
            }
            (None, true) => FIXED,
            (None, false) => window::default_precision(window_ms),
            (Some(precision), false) if precision <= window_ms => precision,
            (Some(_), false) => {
                return Err(CommandError::invalid(format!(
                    "PRECISION must be an integer from 1 to {window_ms}"
                )))
            }
        };
        let params = WindowParams {
            limit,
            window_ms,
            precision_ms,
        };
        // Memory stays bounded as for a log: a key holds at most
        // min(limit, window_ms / PRECISION + 1) slots.
        let setting = &crate::config::MAX_LOG_LIMIT;
        let slots = params.most_slots();
        if slots > setting.get() && !call.is_replicated_or_loading() {
            return Err(CommandError::invalid(format!(
                "PRECISION {precision_ms} lets a key hold {slots} slots \
                 (min(limit, window_ms / PRECISION + 1)), more than rl.max-log-limit ({}): \
                 raise PRECISION or the setting",
                setting.get()
            )));
        }
        Ok(params)
    }

    fn decide(
        state: Option<&WindowState>,
        params: &WindowParams,
        cost: i64,
        now_ms: i64,
    ) -> CommandResult<WindowOutcome> {
        Ok(window::check(state, params, now_ms, cost))
    }

    fn evaluation(outcome: &WindowOutcome) -> &Evaluation {
        &outcome.evaluation
    }

    fn writes_at(outcome: &WindowOutcome) -> Option<i64> {
        outcome.writes.then_some(outcome.at_ms)
    }

    fn new_state(params: &WindowParams, outcome: &WindowOutcome) -> WindowState {
        window::empty(params, outcome.at_ms)
    }

    fn record(
        state: &mut WindowState,
        params: &WindowParams,
        cost: i64,
        outcome: &WindowOutcome,
    ) -> Option<i64> {
        window::record(state, params, outcome.at_ms, cost);
        super::ttl_for(outcome.evaluation.after.reset_after_ms)
    }

    fn inspect(state: &WindowState, now_ms: i64) -> CommandResult<Reply> {
        let view = window::inspect(state, now_ms);
        let params = &state.params;
        let precision = if params.is_fixed() {
            Value::Text(c"fixed")
        } else {
            Value::Int(params.precision_ms)
        };
        Ok(Reply::Map(vec![
            (c"type", Value::Text(c"window")),
            (c"limit", Value::Int(params.limit)),
            (c"window_ms", Value::Int(params.window_ms)),
            (c"precision_ms", precision),
            (c"used", Value::Int(view.used)),
            (c"reset_after_ms", Value::Int(view.reset_after_ms)),
        ]))
    }
}
