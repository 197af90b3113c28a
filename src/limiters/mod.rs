//! The limiter kinds, each behind one interface ([`Limiter`]): its
//! parameters, the pure decision, how a decision is stored, the TTL, the
//! reply and the RL.INSPECT view. One generic handler ([`run`]) serves every
//! single-key limiter command, and [`KINDS`] is what RL.ALL and RL.INSPECT
//! know of them. docs/development.md shows how to add a kind.

#![forbid(unsafe_code)]

pub mod acquire;
pub mod quota;
pub mod reserve;
pub mod sliding_log;
pub mod token_bucket;
pub mod window;

use crate::algo::Evaluation;
use crate::args::{parse_options_among, IntArg, OptionName, Options, PerKey};
use crate::error::{CommandError, CommandResult};
use crate::ffi::command::CommandSpec;
use crate::ffi::data_type::Stored;
use crate::ffi::{Call, Key};
use crate::replication::CallClock;
use crate::reply::Reply;

/// A limiter kind.
pub trait Limiter: 'static {
    /// The word that names the kind in RL.ALL.
    const NAME: &'static str;
    /// Its parameters, in order: after its name in RL.ALL, after the key in
    /// its own command.
    const PARAMS: &'static [&'static str];
    /// Its own options, after its parameters in RL.ALL, among the options
    /// of its own command.
    const OPTIONS: &'static [OptionName] = &[];
    type Params;
    /// What its keys hold.
    type State: Stored;
    /// A decision, with what storing it needs.
    type Outcome;

    /// Parses the words of [`Limiter::PARAMS`] (as many, in order) and the
    /// values of [`Limiter::OPTIONS`].
    fn parse(call: &Call, words: &[&[u8]], options: &Options) -> CommandResult<Self::Params>;

    /// Refuses a cost the kind cannot take, before any key is opened.
    fn check_cost(_cost: i64) -> CommandResult<()> {
        Ok(())
    }

    /// Decides on `cost` at `now_ms` (the pure algorithm).
    fn decide(
        state: Option<&Self::State>,
        params: &Self::Params,
        cost: i64,
        now_ms: i64,
    ) -> CommandResult<Self::Outcome>;

    fn evaluation(outcome: &Self::Outcome) -> &Evaluation;

    /// The id of what the call opened (0: nothing), for the kinds that open
    /// something: their replies carry it as a sixth integer.
    fn opened_id(_outcome: &Self::Outcome) -> Option<i64> {
        None
    }

    /// The time the outcome writes at; `None` when it writes nothing.
    fn writes_at(outcome: &Self::Outcome) -> Option<i64>;

    /// What a key that holds nothing starts from, for a write.
    fn new_state(params: &Self::Params, outcome: &Self::Outcome) -> Self::State;

    /// Stores the outcome of an allowed call; returns the TTL the key needs
    /// from the write's time (`None`: no TTL).
    fn record(
        state: &mut Self::State,
        params: &Self::Params,
        cost: i64,
        outcome: &Self::Outcome,
    ) -> Option<i64>;

    /// RL.INSPECT's view of a state.
    fn inspect(state: &Self::State, now_ms: i64) -> CommandResult<Reply>;
}

/// Decides on the limiter in `key`. Opened for writing too, the key is
/// signalled as modified only if [`apply`] writes, so a denied call or a
/// peek leaves it untouched (WATCH included).
pub fn decide<L: Limiter>(
    key: &mut Key,
    params: &L::Params,
    cost: i64,
    now_ms: i64,
) -> CommandResult<L::Outcome> {
    let state = key.value::<L::State>()?;
    L::decide(state.as_deref(), params, cost, now_ms)
}

/// Stores what an allowed call wrote, with its TTL, in `key` (open for
/// writing); false when it writes nothing.
pub fn apply<L: Limiter>(
    key: &mut Key,
    params: &L::Params,
    cost: i64,
    outcome: &L::Outcome,
    clock: &CallClock,
) -> CommandResult<bool> {
    let Some(at_ms) = L::writes_at(outcome) else {
        return Ok(false);
    };
    key.mark_written();
    let state = key.value_or_insert(|| L::new_state(params, outcome))?;
    let ttl = L::record(state, params, cost, outcome);
    key.set_ttl(ttl, clock.ttl_from(at_ms));
    Ok(true)
}

/// What every write does besides storing: propagate the call (see
/// [`crate::replication`]) and send a keyspace event in the module class,
/// named after the command (`rl.tokenbucket`, ...), for each key written
/// (argument indexes in `written`).
pub fn publish_write(
    call: &Call,
    clock: &CallClock,
    spec: &'static CommandSpec,
    written: &[usize],
) -> CommandResult<()> {
    clock.publish()?;
    for &key in written {
        call.notify_module_event(spec.name, key);
    }
    Ok(())
}

/// The TTL a write needs: the ms until the limiter is whole again, none
/// when it never will be (a quota that never refills).
pub fn ttl_for(reset_after_ms: i64) -> Option<i64> {
    (reset_after_ms != crate::algo::NEVER).then_some(reset_after_ms.max(0))
}

/// Where a single-key command takes its cost from.
pub enum Cost {
    /// `[COST n]`, 1 by default.
    Option,
    /// A positional argument right after the parameters.
    Positional(IntArg),
    /// Always 1: the command takes no cost.
    One,
}

/// The single-key command `spec` of kind `L`: `key`, the kind's
/// parameters, the cost if `cost` says so, then options. Arguments are
/// checked in that order.
pub fn run<L: Limiter>(
    call: &Call,
    spec: &'static CommandSpec,
    cost: Cost,
) -> CommandResult<Reply> {
    const FIRST: usize = 2;
    let after_params = FIRST + L::PARAMS.len();
    let words = (FIRST..after_params)
        .map(|index| call.arg(index))
        .collect::<CommandResult<PerKey<&[u8]>>>()?;
    let (common, options_at): (&[OptionName], usize) = match cost {
        Cost::Option => (&[OptionName::Cost, OptionName::At], after_params),
        Cost::Positional(_) => (&[OptionName::At], after_params + 1),
        Cost::One => (&[OptionName::At], after_params),
    };
    let options = parse_options_among(call.args_from(options_at), &[common, L::OPTIONS]);
    let params = L::parse(
        call,
        &words,
        options.as_ref().unwrap_or(&Options::default()),
    )?;
    let positional = match &cost {
        Cost::Positional(arg) => Some(arg.parse(call.arg(after_params)?)?),
        Cost::Option | Cost::One => None,
    };
    let options = options?;
    let cost = positional.or(options.cost).unwrap_or(1);
    L::check_cost(cost)?;
    execute::<L>(call, spec, &params, cost, options.at)
}

/// Runs a single-key limiter call whose arguments are checked: decides,
/// stores, propagates and replies.
pub fn execute<L: Limiter>(
    call: &Call,
    spec: &'static CommandSpec,
    params: &L::Params,
    cost: i64,
    at: Option<i64>,
) -> CommandResult<Reply> {
    let clock = CallClock::new(call);
    let at = clock.pinned(at)?;
    let mut key = call.update_key(1)?;
    key.prefetch::<L::State>();
    let now = at.unwrap_or_else(|| clock.now_ms());
    let outcome = decide::<L>(&mut key, params, cost, now)?;
    if apply::<L>(&mut key, params, cost, &outcome, &clock)? {
        publish_write(call, &clock, spec, &[1])?;
    }
    Ok(Reply::decision(
        L::evaluation(&outcome).own_decision(),
        L::opened_id(&outcome),
    ))
}

/// Parses the parameters and options of an RL.ALL spec (after its name).
pub type ParseSpec = fn(&Call, &[&[u8]], &Options) -> CommandResult<Box<dyn Spec>>;

/// A kind as RL.ALL and RL.INSPECT see it.
pub struct Kind {
    pub name: &'static str,
    pub params: &'static [&'static str],
    pub options: &'static [OptionName],
    pub parse: ParseSpec,
    /// The view of the key if it holds this kind's state.
    pub inspect: fn(&mut Key, i64) -> CommandResult<Option<Reply>>,
}

const fn kind<L: Limiter>() -> Kind {
    Kind {
        name: L::NAME,
        params: L::PARAMS,
        options: L::OPTIONS,
        parse: parse_spec::<L>,
        inspect: inspect::<L>,
    }
}

/// Every limiter kind. RL.INSPECT shows a state as the first kind that
/// stores it.
pub static KINDS: [Kind; 6] = [
    kind::<token_bucket::TokenBucket>(),
    kind::<sliding_log::SlideLog>(),
    kind::<reserve::Reserve>(),
    kind::<acquire::Acquire>(),
    kind::<window::Window>(),
    kind::<quota::Quota>(),
];

/// One limiter of an RL.ALL call: parsed, then decided on, then applied.
pub trait Spec {
    fn check_cost(&self, cost: i64) -> CommandResult<()>;
    /// See [`Key::prefetch`].
    fn prefetch(&self, key: &mut Key) -> bool;
    fn decide(&mut self, key: &mut Key, cost: i64, now_ms: i64) -> CommandResult<()>;
    /// Once decided.
    fn evaluation(&self) -> Option<&Evaluation>;
    /// See [`Limiter::opened_id`]; 0 when the call took nothing.
    fn opened_id(&self, applied: bool) -> Option<i64>;
    fn apply(&self, key: &mut Key, clock: &CallClock) -> CommandResult<bool>;
}

struct SpecOf<L: Limiter> {
    params: L::Params,
    decided: Option<(i64, L::Outcome)>,
}

fn parse_spec<L: Limiter>(
    call: &Call,
    words: &[&[u8]],
    options: &Options,
) -> CommandResult<Box<dyn Spec>> {
    Ok(Box::new(SpecOf::<L> {
        params: L::parse(call, words, options)?,
        decided: None,
    }))
}

impl<L: Limiter> Spec for SpecOf<L> {
    fn check_cost(&self, cost: i64) -> CommandResult<()> {
        L::check_cost(cost)
    }

    fn prefetch(&self, key: &mut Key) -> bool {
        key.prefetch::<L::State>()
    }

    fn decide(&mut self, key: &mut Key, cost: i64, now_ms: i64) -> CommandResult<()> {
        self.decided = Some((cost, decide::<L>(key, &self.params, cost, now_ms)?));
        Ok(())
    }

    fn evaluation(&self) -> Option<&Evaluation> {
        self.decided
            .as_ref()
            .map(|(_, outcome)| L::evaluation(outcome))
    }

    fn opened_id(&self, applied: bool) -> Option<i64> {
        let (_, outcome) = self.decided.as_ref()?;
        L::opened_id(outcome).map(|id| if applied { id } else { 0 })
    }

    fn apply(&self, key: &mut Key, clock: &CallClock) -> CommandResult<bool> {
        match &self.decided {
            Some((cost, outcome)) => apply::<L>(key, &self.params, *cost, outcome, clock),
            None => Ok(false),
        }
    }
}

fn inspect<L: Limiter>(key: &mut Key, now_ms: i64) -> CommandResult<Option<Reply>> {
    match key.value::<L::State>() {
        Ok(state) => state.map(|state| L::inspect(state, now_ms)).transpose(),
        Err(CommandError::WrongType) => Ok(None),
        Err(other) => Err(other),
    }
}
