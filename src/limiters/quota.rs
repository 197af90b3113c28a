//! RL.QUOTA: a calendar quota per minute, hour, day, week, month, quarter or
//! year in a time zone, with an optional billing anchor.

use crate::algo::quota::{
    self, Calendar, CalendarError, Period, QuotaOutcome, QuotaParams, QuotaState,
};
use crate::algo::Evaluation;
use crate::args::{one_of, printable, IntArg, OptionName, Options};
use crate::callback;
use crate::error::{CommandError, CommandResult};
use crate::ffi::command::{ArgSpec, CommandSpec, KeyLayout};
use crate::ffi::Call;
use crate::reply::{Reply, Value};
use crate::stats::CommandStats;
use crate::types::quota::Quota as Held;

use super::{run, Cost, Limiter};

pub static QUOTA: CommandSpec = CommandSpec {
    name: c"RL.QUOTA",
    callback: callback!(QUOTA),
    handler: |call| run::<Quota>(call, &QUOTA, Cost::Option),
    stats: CommandStats::new(),
    flags: c"write deny-oom fast",
    arity: -4,
    summary: c"Takes COST units (default 1) from a quota of limit units per calendar period (minute to year) in a time zone (TZ, default UTC), from a billing ANCHOR if given.",
    complexity: c"O(1)",
    since: c"0.1.0",
    keys: KeyLayout::Written,
    args: &[
        ArgSpec::key(c"key"),
        ArgSpec::integer(c"limit"),
        ArgSpec::string(c"period"),
        ArgSpec::word_option(c"TZ", c"zone"),
        ArgSpec::option(c"ANCHOR", c"unix_ms"),
        ArgSpec::option(c"COST", c"n"),
        ArgSpec::at(),
    ],
};

const LIMIT: IntArg = IntArg::new("limit", 1, i64::MAX);

pub struct Quota;

impl Limiter for Quota {
    const NAME: &'static str = "QUOTA";
    const PARAMS: &'static [&'static str] = &["limit", "period"];
    const OPTIONS: &'static [OptionName] = &[OptionName::Tz, OptionName::Anchor];
    type Params = QuotaParams;
    type State = Held;
    type Outcome = QuotaOutcome;

    fn parse(_call: &Call, words: &[&[u8]], options: &Options) -> CommandResult<QuotaParams> {
        let word = |n: usize| words.get(n).copied().unwrap_or_default();
        let limit = LIMIT.parse(word(0))?;
        let period = Period::parse(word(1)).ok_or_else(|| {
            let names: Vec<&str> = Period::ALL.iter().map(|p| p.name()).collect();
            CommandError::invalid(format!("period must be {}", one_of(&names)))
        })?;
        let zone = options.tz.unwrap_or(b"UTC");
        let calendar =
            Calendar::shared(period, zone, options.anchor).map_err(|error| match error {
                CalendarError::UnknownZone => CommandError::invalid(format!(
                    "TZ zone: unknown time zone '{}': use UTC, an IANA name such as \
                 Europe/Berlin, or an offset +hh:mm/-hh:mm up to 18:00",
                    printable(zone)
                )),
                CalendarError::AnchorOutOfRange => CommandError::invalid(format!(
                    "ANCHOR must be an integer from {} to {}",
                    quota::ANCHOR_MIN_MS,
                    quota::ANCHOR_MAX_MS
                )),
            })?;
        Ok(QuotaParams { limit, calendar })
    }

    fn decide(
        held: Option<&Held>,
        params: &QuotaParams,
        cost: i64,
        now_ms: i64,
    ) -> CommandResult<QuotaOutcome> {
        let usage = held
            .map(|held| {
                held.usage()
                    .ok_or(CommandError::Server("the quota's record is unreadable"))
            })
            .transpose()?;
        quota::check(usage, params, now_ms, cost).ok_or_else(|| {
            CommandError::invalid("AT is beyond the years a quota's calendar covers (1 to 9999)")
        })
    }

    fn evaluation(outcome: &QuotaOutcome) -> &Evaluation {
        &outcome.evaluation
    }

    fn writes_at(outcome: &QuotaOutcome) -> Option<i64> {
        outcome.writes.then_some(outcome.at_ms)
    }

    fn new_state(params: &QuotaParams, outcome: &QuotaOutcome) -> Held {
        Held::new(quota::empty(params, outcome.at_ms))
    }

    fn record(
        held: &mut Held,
        params: &QuotaParams,
        _cost: i64,
        outcome: &QuotaOutcome,
    ) -> Option<i64> {
        // record overwrites every part of a state: the held one need not be
        // read again.
        let mut state = quota::empty(params, outcome.at_ms);
        quota::record(&mut state, params, outcome);
        held.set_state(state);
        super::ttl_for(outcome.evaluation.after.reset_after_ms)
    }

    fn inspect(held: &Held, now_ms: i64) -> CommandResult<Reply> {
        let state = state_of(held)?;
        let calendar = &state.params.calendar;
        let view = quota::inspect(&state, now_ms);
        let bound = |value: Option<i64>| value.map_or(Value::Null, Value::Int);
        Ok(Reply::Map(vec![
            (c"type", Value::Text(c"quota")),
            (c"limit", Value::Int(state.params.limit)),
            (c"used", view.map_or(Value::Null, |v| Value::Int(v.used))),
            (
                c"period",
                Value::String(calendar.period().name().to_owned()),
            ),
            (c"zone", Value::String(calendar.zone().name().to_owned())),
            (c"anchor_ms", bound(calendar.anchor_ms())),
            (c"period_start_ms", bound(view.map(|v| v.bounds.start_ms))),
            (c"period_end_ms", bound(view.map(|v| v.bounds.end_ms))),
            (c"reset_after_ms", bound(view.map(|v| v.reset_after_ms))),
        ]))
    }
}

fn state_of(held: &Held) -> CommandResult<QuotaState> {
    held.state()
        .ok_or(CommandError::Server("the quota's calendar is missing"))
}
