//! The limiter kinds, each behind one interface ([`Limiter`]): its
//! parameters, the pure decision, how a decision is stored, the TTL, the
//! reply and the RL.INSPECT view. One generic handler ([`run`]) serves every
//! single-key limiter command, and [`KINDS`] and [`with_kind`] are what
//! RL.ALL and RL.INSPECT know of them. docs/development.md shows how to add
//! a kind.

#![forbid(unsafe_code)]

pub mod acquire;
pub mod all_wait;
pub mod bucket_wait;
pub mod lease_wait;
pub mod quota;
pub mod reserve;
pub mod sliding_log;
pub mod token_bucket;
pub mod wait;
pub mod window;

use crate::algo::{Decision, Evaluation, NEVER};
use crate::args::{
    is_word, parse_leading_options, parse_options_among, IntArg, OptionName, Options, PerKey,
};
use crate::error::{CommandError, CommandResult};
use crate::ffi::blocking::{Background, KeyName, KeysGone, KeysWatcher};
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
    type Params: Clone;
    /// What its keys hold.
    type State: Stored;
    /// A decision, with what storing it needs.
    type Outcome: Clone;

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

    /// Whether its commands take `WAIT timeout_ms` (see [`wait`]).
    const WAITS: bool = false;

    /// For a kind that [`Limiter::WAITS`]: a call denied now, taken as a
    /// debt to be answered when due within `timeout_ms`; `None` when it
    /// cannot wait (see [`crate::algo::wait::debit`]).
    fn debit(
        _state: Option<&Self::State>,
        _params: &Self::Params,
        _cost: i64,
        _now_ms: i64,
        _timeout_ms: i64,
    ) -> CommandResult<Option<(Self::Outcome, wait::Waiting)>> {
        Ok(None)
    }

    /// For a kind that [`Limiter::WAITS`]: makes what `outcome` opens (a
    /// lease, a reservation) count from `answer_ms`, the time a waiting
    /// call is answered, so that the wait does not eat into it.
    fn start_at(_params: &Self::Params, _outcome: &mut Self::Outcome, _answer_ms: i64) {}

    /// For a kind that [`Limiter::WAITS`]: gives back at `now_ms` what an
    /// `outcome` stored in `state` took (`cost` tokens, its reservation or
    /// its lease), for a waiting client that went away. `None` when there
    /// is nothing to give back; otherwise the TTL the key needs from
    /// `now_ms` (`Some(None)`: none), never shorter than it has.
    fn give_back(
        _state: &mut Self::State,
        _cost: i64,
        _outcome: &Self::Outcome,
        _now_ms: i64,
    ) -> Option<Option<i64>> {
        None
    }

    /// Whether a denied call waits in the key's line for a slot rather than
    /// taking a debt (leases).
    const QUEUES: bool = false;

    /// Before a call on the key at argument `key_index` decides: serves the
    /// clients waiting on the key, who come first (leases).
    fn serve_waiting(_call: &Call, _key_index: usize) -> CommandResult<()> {
        Ok(())
    }

    /// For a kind that [`Limiter::WAITS`] without a debit: a call denied
    /// at `now_ms`, where the client may block, that waits in line for at
    /// most `timeout_ms` (leases); `None`: it does not wait.
    fn queue(
        _call: &Call,
        _params: &Self::Params,
        _now_ms: i64,
        _timeout_ms: i64,
    ) -> CommandResult<Option<Reply>> {
        Ok(None)
    }
}

/// `INFO rl`: the clients waiting now, on `buckets`, for `leases`, on
/// RL.ALL (`all`).
pub fn waiting_fields() -> [(&'static str, i64); 3] {
    [
        ("buckets", bucket_wait::waiting()),
        ("leases", lease_wait::waiting()),
        ("all", all_wait::waiting()),
    ]
}

/// Tells the waiters of the keys that go or are replaced: a refund is
/// owed only to the key it was taken from, and a lease waiter may take the
/// slots of a key gone.
struct WaitersOfKeys;

impl KeysWatcher for WaitersOfKeys {
    fn keys_gone(cx: &Background, gone: KeysGone) {
        bucket_wait::keys_gone(gone);
        all_wait::keys_gone(gone);
        lease_wait::keys_gone(cx, gone);
    }
}

/// Follows the keys that go or are replaced, for the waiters.
pub fn follow_keys(ctx: crate::ffi::Ctx) -> Result<(), &'static str> {
    crate::ffi::blocking::follow_key_removals::<WaitersOfKeys>(ctx)
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
    apply_from::<L>(key, params, cost, outcome, |at_ms| clock.ttl_from(at_ms))
}

/// [`apply`], with the time its TTL counts from for a write at a time.
pub fn apply_from<L: Limiter>(
    key: &mut Key,
    params: &L::Params,
    cost: i64,
    outcome: &L::Outcome,
    ttl_from: impl FnOnce(i64) -> i64,
) -> CommandResult<bool> {
    let Some(at_ms) = L::writes_at(outcome) else {
        return Ok(false);
    };
    key.mark_written();
    let state = key.value_or_insert(|| L::new_state(params, outcome))?;
    let ttl = L::record(state, params, cost, outcome);
    key.set_ttl(ttl, ttl_from(at_ms));
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

/// The most parameters a kind takes.
pub const MAX_PARAMS: usize = 4;

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
    const { assert!(L::PARAMS.len() <= MAX_PARAMS) };
    let after_params = FIRST + L::PARAMS.len();
    let mut words: [&[u8]; MAX_PARAMS] = [&[]; MAX_PARAMS];
    for (word, index) in words.iter_mut().zip(FIRST..after_params) {
        *word = call.arg(index)?;
    }
    let words = words.get(..L::PARAMS.len()).unwrap_or_default();
    let (common, options_at): (&[OptionName], usize) = match cost {
        Cost::Option => (&[OptionName::Cost, OptionName::At], after_params),
        Cost::Positional(_) => (&[OptionName::At], after_params + 1),
        Cost::One => (&[OptionName::At], after_params),
    };
    let waits: &[OptionName] = if L::WAITS { &[OptionName::Wait] } else { &[] };
    let options = match call.arg_count().saturating_sub(options_at) {
        0 => Ok(Options::default()),
        // The most common option alone (a cost-aware call, a peek), read
        // without the general parser.
        2 if common.contains(&OptionName::Cost) && is_word(call.arg(options_at)?, b"COST") => {
            Options::of_cost(call.arg(options_at + 1)?)
        }
        _ => parse_options_among(call.args_from(options_at), &[common, waits, L::OPTIONS]),
    };
    let params = match &options {
        Ok(options) => L::parse(call, words, options)?,
        Err(_) => L::parse(call, words, &Options::default())?,
    };
    let positional = match &cost {
        Cost::Positional(arg) => Some(arg.parse(call.arg(after_params)?)?),
        Cost::Option | Cost::One => None,
    };
    let options = options?;
    let cost = positional.or(options.cost).unwrap_or(1);
    L::check_cost(cost)?;
    let wait = wait::timeout(&options)?;
    execute::<L>(call, spec, &params, cost, options.at, wait)
}

/// Runs a single-key limiter call whose arguments are checked: decides,
/// stores, propagates and replies; or, denied with `wait` (a timeout) where
/// the client may block, takes its cost as a debt and answers when it is
/// due (see [`wait`]).
pub fn execute<L: Limiter>(
    call: &Call,
    spec: &'static CommandSpec,
    params: &L::Params,
    cost: i64,
    at: Option<i64>,
    wait: Option<i64>,
) -> CommandResult<Reply> {
    let clock = CallClock::new(call);
    let at = clock.pinned(at)?;
    L::serve_waiting(call, 1)?;
    let mut key = call.update_key(1)?;
    key.prefetch::<L::State>();
    let now = at.unwrap_or_else(|| clock.now_ms());
    let outcome = decide::<L>(&mut key, params, cost, now)?;
    let evaluation = L::evaluation(&outcome);
    // A debt due beyond the timeout (or never) is answered at once; a
    // lease may free before its end.
    let may_wait = !evaluation.allowed && evaluation.retry_after_ms != NEVER && at.is_none();
    let within = |timeout: i64| L::QUEUES || evaluation.retry_after_ms <= timeout;
    if let Some(timeout) = wait.filter(|&timeout| may_wait && within(timeout)) {
        if call.may_block() {
            let held = match bucket_wait::hold::<L>(
                call, spec, &mut key, params, cost, now, timeout, &clock,
            )? {
                Some(reply) => Some(reply),
                None => L::queue(call, params, now, timeout)?,
            };
            if let Some(reply) = held {
                return Ok(reply);
            }
        }
    }
    if apply::<L>(&mut key, params, cost, &outcome, &clock)? {
        publish_write(call, &clock, spec, &[1])?;
    }
    Ok(Reply::decision(
        L::evaluation(&outcome).own_decision(),
        L::opened_id(&outcome),
    ))
}

/// Parses the RL.ALL spec whose name is at argument `at` (its parameters
/// and options after it) and adds it to the call's; returns how many words
/// it took.
pub type ParseSpec = fn(&Call, usize, &mut PerKey<AnySpec>) -> CommandResult<usize>;

/// A kind as RL.ALL and RL.INSPECT see it.
pub struct Kind {
    pub name: &'static str,
    pub parse: ParseSpec,
    /// The view of the key if it holds this kind's state.
    pub inspect: fn(&mut Key, i64) -> CommandResult<Option<Reply>>,
}

const fn kind<L: Limiter>() -> Kind
where
    SpecOf<L>: Into<AnySpec>,
{
    const { assert!(L::PARAMS.len() <= MAX_PARAMS) };
    Kind {
        name: L::NAME,
        parse: parse_spec::<L>,
        inspect: inspect::<L>,
    }
}

/// Names every limiter kind once: [`KINDS`]; [`with_kind`], which runs
/// RL.ALL's code compiled for a kind; and [`AnySpec`], which holds an
/// RL.ALL spec of any of them in place, so that a call of up to four keys
/// allocates nothing for its specs.
macro_rules! limiter_kinds {
    ($($variant:ident: $limiter:ty),+ $(,)?) => {
        /// Every limiter kind. RL.INSPECT shows a state as the first kind
        /// that stores it.
        pub static KINDS: [Kind; [$(stringify!($variant)),+].len()] = [$(kind::<$limiter>()),+];

        /// Runs `task` for the kind at `index` in [`KINDS`].
        #[inline]
        pub fn with_kind<T: KindTask>(index: usize, task: T) -> CommandResult<Reply> {
            let mut at = 0;
            $(
                if index == at {
                    return task.run::<$limiter>();
                }
                at += 1;
            )+
            let _ = at;
            Err(NO_SUCH_KIND)
        }

        /// An RL.ALL spec of any kind: a [`Spec`] that hands each call to the
        /// one it holds.
        pub enum AnySpec {
            $($variant(SpecOf<$limiter>)),+
        }

        $(impl From<SpecOf<$limiter>> for AnySpec {
            fn from(spec: SpecOf<$limiter>) -> Self {
                Self::$variant(spec)
            }
        })+

        // Each call goes straight to its kind's code, which the compiler
        // can inline: RL.ALL calls these on its hot path.
        impl Spec for AnySpec {
            fn check_cost(&self, cost: i64) -> CommandResult<()> {
                match self { $(Self::$variant(spec) => spec.check_cost(cost)),+ }
            }

            fn serve_waiting(&self, call: &Call, key_index: usize) -> CommandResult<()> {
                match self { $(Self::$variant(spec) => spec.serve_waiting(call, key_index)),+ }
            }

            fn prefetch(&self, key: &mut Key) -> bool {
                match self { $(Self::$variant(spec) => spec.prefetch(key)),+ }
            }

            fn decide(&mut self, key: &mut Key, cost: i64, now_ms: i64) -> CommandResult<bool> {
                match self { $(Self::$variant(spec) => spec.decide(key, cost, now_ms)),+ }
            }

            fn evaluation(&self) -> Option<&Evaluation> {
                match self { $(Self::$variant(spec) => spec.evaluation()),+ }
            }

            fn opened_id(&self, applied: bool) -> Option<i64> {
                match self { $(Self::$variant(spec) => spec.opened_id(applied)),+ }
            }

            fn apply(&self, key: &mut Key, ttl_from: &dyn Fn(i64) -> i64) -> CommandResult<bool> {
                match self { $(Self::$variant(spec) => spec.apply(key, ttl_from)),+ }
            }

            fn waits(&self) -> bool {
                match self { $(Self::$variant(spec) => spec.waits()),+ }
            }

            fn queues(&self) -> bool {
                match self { $(Self::$variant(spec) => spec.queues()),+ }
            }

            fn debit(&mut self, key: &mut Key, now_ms: i64, timeout_ms: i64) -> CommandResult<Option<i64>> {
                match self { $(Self::$variant(spec) => spec.debit(key, now_ms, timeout_ms)),+ }
            }

            fn start_at(&mut self, answer_ms: i64) {
                match self { $(Self::$variant(spec) => spec.start_at(answer_ms)),+ }
            }

            fn give_back(&self, key: &mut Key, now_ms: i64) -> CommandResult<bool> {
                match self { $(Self::$variant(spec) => spec.give_back(key, now_ms)),+ }
            }

            fn peek(&self, key: &mut Key, now_ms: i64) -> CommandResult<(Decision, Option<i64>)> {
                match self { $(Self::$variant(spec) => spec.peek(key, now_ms)),+ }
            }

            fn replicate(&self, cx: &Background, name: &KeyName, key: &mut Key) -> CommandResult<()> {
                match self { $(Self::$variant(spec) => spec.replicate(cx, name, key)),+ }
            }
        }
    };
}

limiter_kinds! {
    TokenBucket: token_bucket::TokenBucket,
    SlideLog: sliding_log::SlideLog,
    Reserve: reserve::Reserve,
    Acquire: acquire::Acquire,
    Window: window::Window,
    Quota: quota::Quota,
}

/// One limiter of an RL.ALL call: parsed, then decided on, then applied.
pub trait Spec {
    fn check_cost(&self, cost: i64) -> CommandResult<()>;
    /// See [`Limiter::serve_waiting`].
    fn serve_waiting(&self, call: &Call, key_index: usize) -> CommandResult<()>;
    /// See [`Key::prefetch`].
    fn prefetch(&self, key: &mut Key) -> bool;
    /// Whether the limiter allows `cost`.
    fn decide(&mut self, key: &mut Key, cost: i64, now_ms: i64) -> CommandResult<bool>;
    /// Once decided.
    fn evaluation(&self) -> Option<&Evaluation>;
    /// See [`Limiter::opened_id`]; 0 when the call took nothing.
    fn opened_id(&self, applied: bool) -> Option<i64>;
    /// Stores the decision; `ttl_from` gives the time its TTL counts from
    /// for a write at a time (see [`apply_from`]).
    fn apply(&self, key: &mut Key, ttl_from: &dyn Fn(i64) -> i64) -> CommandResult<bool>;
    /// Whether the kind takes `WAIT` (see [`Limiter::WAITS`]).
    fn waits(&self) -> bool;
    /// Whether a denied call waits in line for a slot (see
    /// [`Limiter::QUEUES`]).
    fn queues(&self) -> bool;
    /// `WAIT`, once decided: a denied cost taken as a debt if it is due
    /// within `timeout_ms` of `now_ms` (the decision becomes the debit);
    /// the due time, or `None` (the decision stays).
    fn debit(&mut self, key: &mut Key, now_ms: i64, timeout_ms: i64) -> CommandResult<Option<i64>>;
    /// See [`Limiter::start_at`].
    fn start_at(&mut self, answer_ms: i64);
    /// Gives back what the stored decision took (see
    /// [`Limiter::give_back`]), storing it with its TTL; whether it did.
    fn give_back(&self, key: &mut Key, now_ms: i64) -> CommandResult<bool>;
    /// What the limiter holds at `now_ms` (a peek), with the id of what the
    /// decision opened.
    fn peek(&self, key: &mut Key, now_ms: i64) -> CommandResult<(Decision, Option<i64>)>;
    /// Propagates the state now in `key`, named `name` (see
    /// [`Background::replicate_state`]).
    fn replicate(&self, cx: &Background, name: &KeyName, key: &mut Key) -> CommandResult<()>;
}

/// A spec of kind `L`.
pub struct SpecOf<L: Limiter> {
    params: L::Params,
    decided: Option<(i64, L::Outcome)>,
}

impl<L: Limiter> Clone for SpecOf<L> {
    fn clone(&self) -> Self {
        SpecOf {
            params: self.params.clone(),
            decided: self.decided.clone(),
        }
    }
}

impl<L: Limiter> SpecOf<L> {
    pub fn new(params: L::Params) -> Self {
        SpecOf {
            params,
            decided: None,
        }
    }
}

/// What [`with_kind`] answers for an index past the kinds.
pub const NO_SUCH_KIND: CommandError = CommandError::Server("no limiter kind at this index");

/// Part of an RL.ALL call, done with a kind known when it is compiled (see
/// [`with_kind`]).
pub trait KindTask {
    fn run<L: Limiter>(self) -> CommandResult<Reply>
    where
        SpecOf<L>: Into<AnySpec>;
}

/// Parses the RL.ALL spec of kind `L` whose name is at argument `at`: its
/// parameters, then its options; returns them and how many words it took.
pub fn parse_spec_of<L: Limiter>(call: &Call, at: usize) -> CommandResult<(L::Params, usize)> {
    let mut words: [&[u8]; MAX_PARAMS] = [&[]; MAX_PARAMS];
    for (word, offset) in words.iter_mut().zip(1..=L::PARAMS.len()) {
        *word = call.arg(at + offset).map_err(|_| {
            CommandError::invalid(format!(
                "missing parameters, expected {} {}",
                L::NAME,
                L::PARAMS.join(" ")
            ))
        })?;
    }
    let words = words.get(..L::PARAMS.len()).unwrap_or_default();
    let after_params = at + 1 + L::PARAMS.len();
    // The parameters are checked before the spec's options.
    let (options, taken) = if L::OPTIONS.is_empty() {
        (Ok(None), 0)
    } else {
        let mut rest = call.args_from(after_params).peekable();
        let options = parse_leading_options(&mut rest, &[L::OPTIONS]).map(Some);
        (options, call.arg_count() - after_params - rest.count())
    };
    let given = match &options {
        Ok(Some(given)) => given,
        Ok(None) | Err(_) => &Options::NONE,
    };
    let params = L::parse(call, words, given)?;
    options?;
    Ok((params, 1 + L::PARAMS.len() + taken))
}

fn parse_spec<L: Limiter>(
    call: &Call,
    at: usize,
    specs: &mut PerKey<AnySpec>,
) -> CommandResult<usize>
where
    SpecOf<L>: Into<AnySpec>,
{
    let (params, taken) = parse_spec_of::<L>(call, at)?;
    specs.push(SpecOf::<L>::new(params).into());
    Ok(taken)
}

/// The specs of an RL.ALL call, by position: in a list of any kinds, or a
/// pair of kinds known when it is compiled, where each call below goes
/// straight to its kind's code.
pub trait Specs {
    fn count(&self) -> usize;
    fn check_cost(&self, n: usize, cost: i64) -> CommandResult<()>;
    fn serve_waiting(&self, n: usize, call: &Call, key_index: usize) -> CommandResult<()>;
    fn prefetch(&self, n: usize, key: &mut Key) -> bool;
    fn decide(&mut self, n: usize, key: &mut Key, cost: i64, now_ms: i64) -> CommandResult<bool>;
    fn evaluation(&self, n: usize) -> Option<&Evaluation>;
    fn opened_id(&self, n: usize, applied: bool) -> Option<i64>;
    fn apply(&self, n: usize, key: &mut Key, ttl_from: &dyn Fn(i64) -> i64) -> CommandResult<bool>;
    /// Whether every kind takes `WAIT`.
    fn all_wait(&self) -> bool;
    /// The specs as a list of any kinds, for a call that waits; a list
    /// is left empty.
    fn take_list(&mut self) -> PerKey<AnySpec>;
}

impl Specs for PerKey<AnySpec> {
    fn count(&self) -> usize {
        self.len()
    }

    fn check_cost(&self, n: usize, cost: i64) -> CommandResult<()> {
        self.get(n).map_or(Ok(()), |spec| spec.check_cost(cost))
    }

    fn serve_waiting(&self, n: usize, call: &Call, key_index: usize) -> CommandResult<()> {
        self.get(n)
            .map_or(Ok(()), |spec| spec.serve_waiting(call, key_index))
    }

    fn prefetch(&self, n: usize, key: &mut Key) -> bool {
        self.get(n).is_some_and(|spec| spec.prefetch(key))
    }

    fn decide(&mut self, n: usize, key: &mut Key, cost: i64, now_ms: i64) -> CommandResult<bool> {
        self.get_mut(n)
            .map_or(Ok(false), |spec| spec.decide(key, cost, now_ms))
    }

    fn evaluation(&self, n: usize) -> Option<&Evaluation> {
        self.get(n)?.evaluation()
    }

    fn opened_id(&self, n: usize, applied: bool) -> Option<i64> {
        self.get(n)?.opened_id(applied)
    }

    fn apply(&self, n: usize, key: &mut Key, ttl_from: &dyn Fn(i64) -> i64) -> CommandResult<bool> {
        self.get(n)
            .map_or(Ok(false), |spec| spec.apply(key, ttl_from))
    }

    fn all_wait(&self) -> bool {
        self.iter().all(|spec| spec.waits())
    }

    fn take_list(&mut self) -> PerKey<AnySpec> {
        std::mem::take(self)
    }
}

impl<A: Limiter, B: Limiter> Specs for (SpecOf<A>, SpecOf<B>)
where
    SpecOf<A>: Into<AnySpec>,
    SpecOf<B>: Into<AnySpec>,
{
    #[inline]
    fn count(&self) -> usize {
        2
    }

    #[inline]
    fn check_cost(&self, n: usize, cost: i64) -> CommandResult<()> {
        match n {
            0 => self.0.check_cost(cost),
            1 => self.1.check_cost(cost),
            _ => Ok(()),
        }
    }

    #[inline]
    fn serve_waiting(&self, n: usize, call: &Call, key_index: usize) -> CommandResult<()> {
        match n {
            0 => self.0.serve_waiting(call, key_index),
            1 => self.1.serve_waiting(call, key_index),
            _ => Ok(()),
        }
    }

    #[inline]
    fn prefetch(&self, n: usize, key: &mut Key) -> bool {
        match n {
            0 => self.0.prefetch(key),
            1 => self.1.prefetch(key),
            _ => false,
        }
    }

    #[inline]
    fn decide(&mut self, n: usize, key: &mut Key, cost: i64, now_ms: i64) -> CommandResult<bool> {
        match n {
            0 => self.0.decide(key, cost, now_ms),
            1 => self.1.decide(key, cost, now_ms),
            _ => Ok(false),
        }
    }

    #[inline]
    fn evaluation(&self, n: usize) -> Option<&Evaluation> {
        match n {
            0 => self.0.evaluation(),
            1 => self.1.evaluation(),
            _ => None,
        }
    }

    #[inline]
    fn opened_id(&self, n: usize, applied: bool) -> Option<i64> {
        match n {
            0 => self.0.opened_id(applied),
            1 => self.1.opened_id(applied),
            _ => None,
        }
    }

    #[inline]
    fn apply(&self, n: usize, key: &mut Key, ttl_from: &dyn Fn(i64) -> i64) -> CommandResult<bool> {
        match n {
            0 => self.0.apply(key, ttl_from),
            1 => self.1.apply(key, ttl_from),
            _ => Ok(false),
        }
    }

    #[inline]
    fn all_wait(&self) -> bool {
        A::WAITS && B::WAITS
    }

    #[inline]
    fn take_list(&mut self) -> PerKey<AnySpec> {
        smallvec::smallvec![self.0.clone().into(), self.1.clone().into()]
    }
}

impl<L: Limiter> Spec for SpecOf<L> {
    fn check_cost(&self, cost: i64) -> CommandResult<()> {
        L::check_cost(cost)
    }

    fn serve_waiting(&self, call: &Call, key_index: usize) -> CommandResult<()> {
        L::serve_waiting(call, key_index)
    }

    fn prefetch(&self, key: &mut Key) -> bool {
        key.prefetch::<L::State>()
    }

    fn decide(&mut self, key: &mut Key, cost: i64, now_ms: i64) -> CommandResult<bool> {
        let outcome = decide::<L>(key, &self.params, cost, now_ms)?;
        let allowed = L::evaluation(&outcome).allowed;
        self.decided = Some((cost, outcome));
        Ok(allowed)
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

    fn apply(&self, key: &mut Key, ttl_from: &dyn Fn(i64) -> i64) -> CommandResult<bool> {
        match &self.decided {
            Some((cost, outcome)) => apply_from::<L>(key, &self.params, *cost, outcome, ttl_from),
            None => Ok(false),
        }
    }

    fn waits(&self) -> bool {
        L::WAITS
    }

    fn queues(&self) -> bool {
        L::QUEUES
    }

    fn debit(&mut self, key: &mut Key, now_ms: i64, timeout_ms: i64) -> CommandResult<Option<i64>> {
        let Some((cost, _)) = self.decided else {
            return Ok(None);
        };
        let state = key.value::<L::State>()?;
        let debit = L::debit(state.as_deref(), &self.params, cost, now_ms, timeout_ms)?;
        Ok(debit.map(|(outcome, waiting)| {
            self.decided = Some((cost, outcome));
            waiting.due_ms
        }))
    }

    fn start_at(&mut self, answer_ms: i64) {
        if let Some((_, outcome)) = &mut self.decided {
            L::start_at(&self.params, outcome, answer_ms);
        }
    }

    fn give_back(&self, key: &mut Key, now_ms: i64) -> CommandResult<bool> {
        let Some((cost, outcome)) = &self.decided else {
            return Ok(false);
        };
        let Some(state) = key.value::<L::State>()? else {
            return Ok(false);
        };
        let Some(ttl) = L::give_back(state, *cost, outcome, now_ms) else {
            return Ok(false);
        };
        key.mark_written();
        key.extend_ttl(ttl, now_ms);
        Ok(true)
    }

    fn peek(&self, key: &mut Key, now_ms: i64) -> CommandResult<(Decision, Option<i64>)> {
        let peek = decide::<L>(key, &self.params, 0, now_ms)?;
        Ok((L::evaluation(&peek).decision(true), self.opened_id(true)))
    }

    fn replicate(&self, cx: &Background, name: &KeyName, key: &mut Key) -> CommandResult<()> {
        cx.replicate_state::<L::State>(name, key)
    }
}

fn inspect<L: Limiter>(key: &mut Key, now_ms: i64) -> CommandResult<Option<Reply>> {
    match key.value::<L::State>() {
        Ok(state) => state.map(|state| L::inspect(state, now_ms)).transpose(),
        Err(CommandError::WrongType) => Ok(None),
        Err(other) => Err(other),
    }
}
