//! `WAIT timeout_ms` on RL.ALL over TOKENBUCKET, RESERVE and ACQUIRE specs.
//!
//! A call denied now waits, blocked, until every ACQUIRE spec has a free
//! slot: it stands in the line of each of its ACQUIRE keys (see
//! [`lease_wait`]) and is admitted when no lease waiter stands ahead of it
//! in any of them and every slot it needs is free; until then a slot free
//! on one of its keys goes to those behind it, and it keeps its place. It
//! is admitted all or nothing at
//! once if the last debt of its bucket specs is due within what is left of
//! its timeout (else it is answered denied, having written nothing):
//! buckets debited, slots taken, reservations opened, each stored and
//! propagated as the state it leaves (`RL.RESTORESTATE` and the key's
//! absolute expiry), its leases and reservations counting from the time it
//! is answered, when the last debt is due. A call with no ACQUIRE spec short
//! of a slot is admitted so at once. A client that goes away before it is
//! answered gets back what it took; one still in line took nothing.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashMap;

use crate::algo::{Decision, NEVER};
use crate::args::PerKey;
use crate::error::CommandResult;
use crate::ffi::blocking::{Background, BlockedClient, KeyName, KeysGone, TimerId, WaitEvents};
use crate::ffi::command::CommandSpec;
use crate::ffi::{server, Call, Key};
use crate::reply::Reply;

use super::lease_wait::{self, Line};
use super::wait::{GRANTED, PAUSED_RETRY_MS, REFUNDED, STARTED, TIMED_OUT, WAITED_MS};
use super::{AnySpec, Spec, Specs};

/// The reply of RL.ALL from its decided specs: allowed when `allowed`
/// (each decision then shows its cost taken), with the overall retry.
#[inline]
pub fn all_reply<S: Specs>(specs: &S, allowed: bool) -> Reply {
    let mut retry_after_ms = 0;
    let mut decisions = PerKey::new();
    for n in 0..specs.count() {
        if let Some(evaluation) = specs.evaluation(n) {
            if !evaluation.allowed {
                retry_after_ms = longest_retry(retry_after_ms, evaluation.retry_after_ms);
            }
            decisions.push((evaluation.decision(allowed), specs.opened_id(n, allowed)));
        }
    }
    Reply::All {
        allowed,
        retry_after_ms,
        decisions,
    }
}

/// One step of RL.ALL's overall retry, folded from 0 over the denying
/// limiters (so 0 when every limiter allows): -1 once one never allows,
/// otherwise the longest wait (when all of them allow).
fn longest_retry(longest: i64, retry_after_ms: i64) -> i64 {
    if longest == NEVER || retry_after_ms == NEVER {
        NEVER
    } else {
        longest.max(retry_after_ms)
    }
}

/// An RL.ALL call's specs and costs, decided at a time.
pub struct Waiting {
    pub specs: PerKey<AnySpec>,
    pub costs: PerKey<i64>,
}

/// What a denied RL.ALL call with `WAIT` does (see the module's text).
/// `keys` are its keys, open, in the order of its specs, which are decided
/// at `now_ms`; `key_index(n)` is key `n`'s argument index. `None` when it
/// cannot wait (a bucket whose tokens are not due within the timeout): it
/// is then answered at once, denied, as without WAIT, from its specs as
/// they were decided.
pub fn hold(
    call: &Call,
    spec: &'static CommandSpec,
    waiting: &mut Waiting,
    keys: &mut [Key],
    key_index: fn(usize) -> usize,
    now_ms: i64,
    timeout_ms: i64,
) -> CommandResult<Option<Reply>> {
    let cx = call.background();
    let due_ms = match debit(waiting, keys, now_ms, timeout_ms) {
        Ok(Debits::Due(due_ms)) => due_ms,
        Ok(Debits::Beyond) | Err(_) => {
            redecide(waiting, keys, now_ms)?;
            return Ok(None);
        }
    };
    let count = waiting.specs.len();
    let db = cx.selected_db();
    let mut names = Vec::with_capacity(count);
    let mut lines = Vec::new();
    for (n, spec) in waiting.specs.iter().enumerate() {
        if due_ms.is_none() && spec.queues() {
            let line = (db, call.arg(key_index(n))?.to_vec());
            lines.push((line, call.key_name(key_index(n))?));
        }
        names.push(call.key_name(key_index(n))?);
    }
    let deadline_ms = now_ms.saturating_add(timeout_ms);
    let token = lease_wait::next_token();
    let wake_ms = due_ms.unwrap_or(deadline_ms);
    let blocked = token.and_then(|token| {
        let timer = cx
            .start_timer::<AllWaits>(wake_ms.saturating_sub(server::clock_ms()), token)
            .ok()?;
        match call.block::<AllWaits>(false) {
            Ok(client) => Some((token, timer, client)),
            Err(_) => {
                cx.stop_timer(timer);
                None
            }
        }
    });
    let Some((token, timer, client)) = blocked else {
        redecide(waiting, keys, now_ms)?;
        return Ok(None);
    };
    // Blocked: from here on the client is answered through its handle.
    if let Some(answer_ms) = due_ms {
        if let Err(error) = store(&cx, waiting, keys, &names, answer_ms) {
            cx.stop_timer(timer);
            client.fail(error);
            return Ok(Some(Reply::Blocked));
        }
        for n in 0..count {
            call.notify_module_event(spec.name, key_index(n));
        }
    }
    STARTED.bump();
    let waiter = Waiter {
        client: Some(client),
        specs: std::mem::take(&mut waiting.specs),
        costs: std::mem::take(&mut waiting.costs),
        names,
        db,
        command: spec,
        lines: lines.iter().map(|(line, _)| line.clone()).collect(),
        refundable: true,
        timer: Some(timer),
        since_ms: now_ms,
        deadline_ms,
        admitted_at: due_ms,
    };
    put_back(token, waiter);
    if !lines.is_empty() {
        lease_wait::join_lines(&cx, token, lines, admit);
    }
    Ok(Some(Reply::Blocked))
}

/// What debiting a call's denied specs gives.
enum Debits {
    /// Every bucket's debt is due within the timeout: the last due time,
    /// or `None` when an ACQUIRE spec has no free slot (nothing is then
    /// to be written).
    Due(Option<i64>),
    /// A bucket's tokens are not due within the timeout, or never.
    Beyond,
}

/// Takes the costs of the denied bucket specs as debts due within
/// `timeout_ms` of `now_ms` (their decisions become the debits).
fn debit(
    waiting: &mut Waiting,
    keys: &mut [Key],
    now_ms: i64,
    timeout_ms: i64,
) -> CommandResult<Debits> {
    let mut due_ms = now_ms;
    let mut short_of_slots = false;
    for (spec, key) in waiting.specs.iter_mut().zip(keys.iter_mut()) {
        if spec.evaluation().is_some_and(|e| e.allowed) {
            continue;
        }
        if spec.queues() {
            short_of_slots = true;
            continue;
        }
        match spec.debit(key, now_ms, timeout_ms)? {
            Some(due) => due_ms = due_ms.max(due),
            None => return Ok(Debits::Beyond),
        }
    }
    Ok(Debits::Due((!short_of_slots).then_some(due_ms)))
}

/// Decides every spec again at `now_ms`, undoing debits.
fn redecide(waiting: &mut Waiting, keys: &mut [Key], now_ms: i64) -> CommandResult<()> {
    for (n, ((spec, &cost), key)) in waiting
        .specs
        .iter_mut()
        .zip(&waiting.costs)
        .zip(keys.iter_mut())
        .enumerate()
    {
        spec.decide(key, cost, now_ms)
            .map_err(|error| error.at_position(n + 1))?;
    }
    Ok(())
}

/// Stores an admitted call (every spec allowed or debited), its leases
/// and reservations counting from `answer_ms`, when the last debt is due,
/// and propagates each key written.
fn store(
    cx: &Background,
    waiting: &mut Waiting,
    keys: &mut [Key],
    names: &[KeyName],
    answer_ms: i64,
) -> CommandResult<()> {
    for ((spec, key), name) in waiting.specs.iter_mut().zip(keys.iter_mut()).zip(names) {
        spec.start_at(answer_ms);
        if spec.apply(key, &|at_ms| at_ms)? {
            spec.replicate(cx, name, key)?;
        }
    }
    Ok(())
}

/// One RL.ALL call waiting.
struct Waiter {
    /// `None` once it disconnected: what it took is then to be given back.
    client: Option<BlockedClient>,
    specs: PerKey<AnySpec>,
    costs: PerKey<i64>,
    names: Vec<KeyName>,
    db: i32,
    /// RL.ALL, whose keyspace event its writes send.
    command: &'static CommandSpec,
    /// The lines it stands in, until admitted.
    lines: Vec<Line>,
    /// False once one of its keys went or was replaced: what it took is
    /// then given back to none.
    refundable: bool,
    /// Its timeout while in line; once admitted, its answer. `None` once
    /// fired: a timer that has fired must not be stopped (Redis freed it,
    /// and may give its id to another).
    timer: Option<TimerId>,
    since_ms: i64,
    deadline_ms: i64,
    /// When admitted: the time it is answered.
    admitted_at: Option<i64>,
}

impl Waiter {
    fn client_id(&self) -> usize {
        self.client.as_ref().map_or(0, BlockedClient::id)
    }
}

#[derive(Default)]
struct Registry {
    waiters: HashMap<u64, Waiter>,
    by_client: HashMap<usize, u64>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

fn with_registry<T>(f: impl FnOnce(&mut Registry) -> T) -> Option<T> {
    REGISTRY.with(|cell| cell.try_borrow_mut().ok().map(|mut r| f(&mut r)))
}

fn take(token: u64) -> Option<Waiter> {
    with_registry(|r| {
        let waiter = r.waiters.remove(&token)?;
        r.by_client.remove(&waiter.client_id());
        Some(waiter)
    })
    .flatten()
}

fn put_back(token: u64, waiter: Waiter) {
    with_registry(|r| {
        if waiter.client.is_some() {
            r.by_client.insert(waiter.client_id(), token);
        }
        r.waiters.insert(token, waiter);
    });
}

/// How many RL.ALL calls wait now (`INFO rl`).
pub fn waiting() -> i64 {
    let count = with_registry(|r| r.waiters.len()).unwrap_or(0);
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Tries to admit the RL.ALL waiter `token`, reached in one of its lines:
/// true when it left its lines (admitted, or answered denied).
pub fn admit(cx: &Background, token: u64) -> bool {
    if server::writes_paused() {
        return false;
    }
    let Some(mut waiter) = take(token) else {
        return false;
    };
    if waiter.admitted_at.is_some()
        || !waiter
            .lines
            .iter()
            .all(|line| lease_wait::is_reached(line, token))
    {
        put_back(token, waiter);
        return false;
    }
    let now = server::clock_ms();
    match try_admit(cx, &mut waiter, now) {
        Ok(Debits::Due(Some(answer_ms))) => {
            let lines = std::mem::take(&mut waiter.lines);
            if let Some(timer) = waiter.timer.take() {
                cx.stop_timer(timer);
            }
            waiter.admitted_at = Some(answer_ms);
            match cx.start_timer::<AllWaits>(answer_ms.saturating_sub(now), token) {
                Ok(timer) => {
                    waiter.timer = Some(timer);
                    put_back(token, waiter);
                }
                Err(_) => answer_admitted(cx, waiter, now),
            }
            lease_wait::leave_lines(cx, token, &lines);
            true
        }
        Ok(Debits::Due(None)) => {
            put_back(token, waiter);
            false
        }
        Ok(Debits::Beyond) | Err(_) => {
            let lines = std::mem::take(&mut waiter.lines);
            if let Some(timer) = waiter.timer.take() {
                cx.stop_timer(timer);
            }
            let reply = denied_reply(cx, &mut waiter, now);
            end(waiter, &TIMED_OUT, now, reply);
            lease_wait::leave_lines(cx, token, &lines);
            true
        }
    }
}

/// Decides a waiter's specs at `now_ms` and, if every slot it needs is free
/// and its debts are due within its timeout, stores them: what debiting
/// gave (the time it is answered, or `None` while a slot is short, or
/// beyond its timeout).
fn try_admit(cx: &Background, waiter: &mut Waiter, now_ms: i64) -> CommandResult<Debits> {
    cx.select_db(waiter.db)?;
    let mut keys = waiter
        .names
        .iter()
        .map(|name| cx.update_key(name))
        .collect::<CommandResult<Vec<Key>>>()?;
    let gone_elsewhere = keys
        .iter()
        .zip(&waiter.names)
        .any(|(key, name)| key.is_empty() && !cx.may_create(name));
    if gone_elsewhere {
        return Ok(Debits::Due(None));
    }
    let mut waiting = Waiting {
        specs: std::mem::take(&mut waiter.specs),
        costs: std::mem::take(&mut waiter.costs),
    };
    let left_ms = waiter.deadline_ms.saturating_sub(now_ms);
    let debits = redecide(&mut waiting, &mut keys, now_ms)
        .and_then(|()| debit(&mut waiting, &mut keys, now_ms, left_ms));
    let stored = match debits {
        Ok(Debits::Due(Some(answer_ms))) => {
            store(cx, &mut waiting, &mut keys, &waiter.names, answer_ms).map(|()| {
                for name in &waiter.names {
                    cx.notify_module_event(waiter.command.name, name);
                }
            })
        }
        _ => Ok(()),
    };
    waiter.specs = waiting.specs;
    waiter.costs = waiting.costs;
    stored.and(debits)
}

/// The reply of a denied RL.ALL at `now_ms`, from the waiter's keys; the
/// error the call would get then (a key of another type).
fn denied_reply(cx: &Background, waiter: &mut Waiter, now_ms: i64) -> CommandResult<Reply> {
    cx.select_db(waiter.db)?;
    let specs = waiter.specs.iter_mut().zip(&waiter.costs);
    for (n, ((spec, &cost), name)) in specs.zip(&waiter.names).enumerate() {
        let mut key = cx.read_key(name)?;
        spec.decide(&mut key, cost, now_ms)
            .map_err(|error| error.at_position(n + 1))?;
    }
    Ok(all_reply(&waiter.specs, false))
}

/// Answers an admitted waiter at `now_ms`: allowed, each limiter as a peek
/// shows it then, with the ids of what it opened.
fn answer_admitted(cx: &Background, waiter: Waiter, now_ms: i64) {
    let decisions = cx.select_db(waiter.db).and_then(|()| {
        waiter
            .specs
            .iter()
            .zip(&waiter.names)
            .enumerate()
            .map(|(n, (spec, name))| {
                let mut key = cx.read_key(name)?;
                let (decision, id) = spec
                    .peek(&mut key, now_ms)
                    .map_err(|error| error.at_position(n + 1))?;
                Ok((
                    Decision {
                        allowed: true,
                        retry_after_ms: 0,
                        ..decision
                    },
                    id,
                ))
            })
            .collect::<CommandResult<PerKey<(Decision, Option<i64>)>>>()
    });
    let reply = decisions.map(|decisions| Reply::All {
        allowed: true,
        retry_after_ms: 0,
        decisions,
    });
    end(waiter, &GRANTED, now_ms, reply);
}

/// Ends a waiter, counted under `ended`, answering its client (if still
/// there) with `reply`.
fn end(
    mut waiter: Waiter,
    ended: &crate::stats::Counter,
    now_ms: i64,
    reply: CommandResult<Reply>,
) {
    ended.bump();
    WAITED_MS.add(now_ms.saturating_sub(waiter.since_ms));
    if let Some(client) = waiter.client.take() {
        match reply {
            Ok(reply) => client.answer(reply),
            Err(error) => client.fail(error),
        }
    }
}

/// Gives back what a waiter that went away took, on each key, and
/// propagates it.
fn give_back(cx: &Background, waiter: &Waiter, now_ms: i64) -> CommandResult<bool> {
    cx.select_db(waiter.db)?;
    let mut gave = false;
    for (spec, name) in waiter.specs.iter().zip(&waiter.names) {
        let mut key = cx.update_key(name)?;
        if spec.give_back(&mut key, now_ms)? {
            spec.replicate(cx, name, &mut key)?;
            gave = true;
        }
    }
    Ok(gave)
}

struct AllWaits;

impl WaitEvents for AllWaits {
    fn timer(cx: &Background, token: u64) {
        let Some(mut waiter) = take(token) else {
            return;
        };
        waiter.timer = None;
        let now = server::clock_ms();
        let retry_in = match (&waiter.client, waiter.admitted_at) {
            (Some(_), Some(answer_ms)) if now < answer_ms => Some(answer_ms - now),
            (Some(_), None) if now < waiter.deadline_ms => Some(waiter.deadline_ms - now),
            (None, _) if waiter.refundable && server::writes_paused() => Some(PAUSED_RETRY_MS),
            _ => None,
        };
        if let Some(delay) = retry_in {
            if let Ok(timer) = cx.start_timer::<AllWaits>(delay, token) {
                waiter.timer = Some(timer);
                put_back(token, waiter);
                return;
            }
        }
        if waiter.client.is_none() {
            if waiter.refundable
                && !server::is_replica()
                && give_back(cx, &waiter, now).unwrap_or(false)
            {
                REFUNDED.bump();
            }
            return;
        }
        if waiter.admitted_at.is_some() {
            answer_admitted(cx, waiter, now);
            return;
        }
        // Its timeout: it may be admitted at this very moment.
        let lines = waiter.lines.clone();
        put_back(token, waiter);
        if admit(cx, token) {
            return;
        }
        if let Some(mut waiter) = take(token) {
            let reply = denied_reply(cx, &mut waiter, now);
            end(waiter, &TIMED_OUT, now, reply);
        }
        lease_wait::leave_lines(cx, token, &lines);
    }

    fn disconnected(cx: &Background, client: usize) {
        let found = with_registry(|r| r.by_client.get(&client).copied()).flatten();
        let Some((token, mut waiter)) = found.and_then(|token| Some((token, take(token)?))) else {
            return;
        };
        if let Some(timer) = waiter.timer.take() {
            cx.stop_timer(timer);
        }
        let now = server::clock_ms();
        WAITED_MS.add(now.saturating_sub(waiter.since_ms));
        if let Some(client) = waiter.client.take() {
            client.release();
        }
        if waiter.admitted_at.is_none() {
            REFUNDED.bump();
            lease_wait::leave_lines(cx, token, &waiter.lines);
            return;
        }
        // What it took is given back from a timer right after (see
        // `bucket_wait::Waits::disconnected`).
        if let Ok(timer) = cx.start_timer::<AllWaits>(0, token) {
            waiter.timer = Some(timer);
            put_back(token, waiter);
        }
    }
}

/// Marks the admitted waiters with a key among `gone` as owed nothing.
pub fn keys_gone(gone: KeysGone) {
    with_registry(|r| {
        for waiter in r.waiters.values_mut() {
            let db = waiter.db;
            if waiter.admitted_at.is_some()
                && waiter
                    .names
                    .iter()
                    .any(|name| gone.includes(db, name.bytes()))
            {
                waiter.refundable = false;
            }
        }
    });
}
