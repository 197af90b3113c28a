//! `WAIT timeout_ms` on RL.ACQUIRE: a call that finds no free slot blocks
//! until one frees, first come first served per key.
//!
//! The waiters of a key stand in line. The line is served
//! ([`crate::algo::wait::grant_leases`]) whenever a slot may have freed: after
//! an RL.RELEASE or RL.EXTEND on the key, before any RL.ACQUIRE on it (so
//! that no later call takes a slot ahead of the line), when its earliest
//! live lease ends (a timer), and after the key is deleted, expires or is
//! evicted (a timer started from the keyspace event). A lease granted
//! starts then, and is stored and propagated then, as the state it leaves
//! (`RL.RESTORESTATE` and the key's absolute expiry), with an `rl.acquire`
//! keyspace event. A waiter still in line at its timeout (its own timer),
//! or interrupted by `CLIENT UNBLOCK`, gets the reply of a denied
//! RL.ACQUIRE at that moment; one that disconnects leaves the line, having
//! taken nothing.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use crate::algo::leases::{self, LeaseParams, LeaseState};
use crate::algo::wait::grant_leases;
use crate::error::{CommandError, CommandResult};
use crate::ffi::blocking::{Background, BlockedClient, KeyName, KeysGone, TimerId, WaitEvents};
use crate::ffi::{server, Call};
use crate::reply::Reply;

use crate::stats::Counter;

use super::wait::{GRANTED, PAUSED_RETRY_MS, REFUNDED, STARTED, TIMED_OUT, WAITED_MS};

/// The event a granted lease sends, as RL.ACQUIRE's own writes do.
const GRANT_EVENT: &std::ffi::CStr = c"RL.ACQUIRE";

/// A key's line: its database and name.
pub type Line = (i32, Vec<u8>);

struct Waiter {
    client: BlockedClient,
    name: Rc<KeyName>,
    params: LeaseParams,
    line: Line,
    /// Its timeout (taken once it fires: a timer that has fired must not
    /// be stopped, Redis frees it itself).
    timer: Option<TimerId>,
    since_ms: i64,
}

struct Queue {
    name: Rc<KeyName>,
    tokens: VecDeque<u64>,
    /// The timer that serves the line when its earliest lease ends, and
    /// its token.
    wake: Option<(TimerId, u64)>,
}

#[derive(Default)]
struct Registry {
    last_token: u64,
    waiters: HashMap<u64, Waiter>,
    by_client: HashMap<usize, u64>,
    lines: HashMap<Line, Queue>,
    /// Wake timers' tokens, and the line each serves.
    wakes: HashMap<u64, Line>,
    /// The members of lines that are not lease waiters (RL.ALL calls), and
    /// how each is admitted.
    others: HashMap<u64, Admit>,
}

/// Admits the line member `token` that is not a lease waiter, when serving
/// a line reaches it: true when it left its lines.
pub type Admit = fn(&Background, u64) -> bool;

impl Registry {
    fn token(&mut self) -> u64 {
        self.last_token = self.last_token.wrapping_add(1);
        self.last_token
    }

    /// Takes waiter `token` out of the registry and its line, and drops
    /// the line if no one is left in it. The timers to stop: the waiter's
    /// timeout, and the wake timer of a line dropped.
    fn remove(&mut self, token: u64) -> Option<(Waiter, Option<TimerId>)> {
        let waiter = self.waiters.remove(&token)?;
        self.by_client.remove(&waiter.client.id());
        let mut wake = None;
        if let Some(queue) = self.lines.get_mut(&waiter.line) {
            queue.tokens.retain(|&t| t != token);
            if queue.tokens.is_empty() {
                wake = self.take_wake(&waiter.line);
                self.lines.remove(&waiter.line);
            }
        }
        Some((waiter, wake))
    }

    /// The wake timer of a line, forgotten.
    fn take_wake(&mut self, line: &Line) -> Option<TimerId> {
        let (timer, token) = self.lines.get_mut(line)?.wake.take()?;
        self.wakes.remove(&token);
        Some(timer)
    }
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

fn with_registry<T>(f: impl FnOnce(&mut Registry) -> T) -> Option<T> {
    REGISTRY.with(|cell| cell.try_borrow_mut().ok().map(|mut r| f(&mut r)))
}

/// A number for a new member of a line: lease waiters and the other
/// members share one count, so no two members of a line share a number.
pub fn next_token() -> Option<u64> {
    with_registry(Registry::token)
}

/// How many clients wait for a lease now (`INFO rl`).
pub fn waiting() -> i64 {
    let count = with_registry(|r| r.waiters.len()).unwrap_or(0);
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// The line of the key at argument `index` of `call`.
fn line_of(call: &Call, index: usize) -> CommandResult<Line> {
    Ok((call.background().selected_db(), call.arg(index)?.to_vec()))
}

/// Serves the line of the key at argument `index` of `call`, if it has
/// one: before an RL.ACQUIRE or RL.ALL decides, after an RL.RELEASE or
/// RL.EXTEND wrote.
pub fn serve_for(call: &Call, index: usize) -> CommandResult<()> {
    // A write from the master or a file replays what was decided: the lines
    // are served from their timers once it is done.
    if with_registry(|r| r.lines.is_empty()).unwrap_or(true) || call.is_replicated_or_loading() {
        return Ok(());
    }
    serve(&call.background(), &line_of(call, index)?)
}

/// Puts the caller of a denied RL.ACQUIRE in its key's line for at most
/// `timeout_ms`: blocks it, and starts its timeout.
pub fn enqueue(
    call: &Call,
    params: &LeaseParams,
    now_ms: i64,
    timeout_ms: i64,
) -> CommandResult<Reply> {
    let line = line_of(call, 1)?;
    let name = Rc::new(call.key_name(1)?);
    let Some(token) = with_registry(Registry::token) else {
        return Err(CommandError::Server("waiters busy"));
    };
    let timer = call.start_timer::<LeaseWaits>(timeout_ms, token)?;
    let client = match call.block::<LeaseWaits>(server::unblock_is_safe()) {
        Ok(client) => client,
        Err(error) => {
            call.background().stop_timer(timer);
            return Err(error);
        }
    };
    // Blocked: from here on the client is answered through its handle.
    STARTED.bump();
    with_registry(|r| {
        r.by_client.insert(client.id(), token);
        let waiter = Waiter {
            client,
            name: Rc::clone(&name),
            params: *params,
            line: line.clone(),
            timer: Some(timer),
            since_ms: now_ms,
        };
        r.waiters.insert(token, waiter);
        r.lines
            .entry(line.clone())
            .or_insert_with(|| Queue {
                name,
                tokens: VecDeque::new(),
                wake: None,
            })
            .tokens
            .push_back(token);
    });
    // Sets the line's wake timer at its earliest lease end (or, failing
    // that, the waiter's timeout answers it).
    let _ = serve(&call.background(), &line);
    Ok(Reply::Blocked)
}

/// Serves a line in order: grants the lease waiters that fit, up to the
/// first that does not, storing, propagating and answering them; another
/// member it reaches (an RL.ALL call) is admitted if it can be (see
/// [`Admit`]), or else passed over, keeping its place, so that a slot it
/// cannot use yet goes to those behind it. Sets the wake timer for the
/// earliest lease end.
fn serve(cx: &Background, line: &Line) -> CommandResult<()> {
    if server::writes_paused() {
        return wake_in(cx, line, PAUSED_RETRY_MS);
    }
    let found = with_registry(|r| {
        let queue = r.lines.get(line)?;
        let members: Vec<Member> = queue
            .tokens
            .iter()
            .filter_map(|token| match r.waiters.get(token) {
                Some(waiter) => Some(Member::Lease(*token, waiter.params)),
                None => r
                    .others
                    .get(token)
                    .map(|&admit| Member::Other(*token, admit)),
            })
            .collect();
        Some((Rc::clone(&queue.name), members))
    });
    let Some(Some((name, members))) = found else {
        return Ok(());
    };
    cx.select_db(line.0)?;
    let mut run = Vec::new();
    let mut next_end_ms = None;
    for member in members.into_iter().chain([Member::End]) {
        match member {
            Member::Lease(token, params) => run.push((token, params)),
            Member::Other(..) | Member::End => {
                let (granted, next_end) = grant(cx, &name, &run)?;
                next_end_ms = next_end;
                let all_granted = granted.len() == run.len();
                for (token, reply) in granted {
                    if let Some(Some(waiter)) = with_registry(|r| r.remove(token)) {
                        finish(cx, waiter, &GRANTED).answer(reply);
                    }
                }
                run.clear();
                match member {
                    Member::Other(token, admit) if all_granted => {
                        admit(cx, token);
                    }
                    _ => break,
                }
            }
        }
    }
    let still_waiting = with_registry(|r| r.lines.contains_key(line)).unwrap_or(false);
    match next_end_ms {
        Some(end) if still_waiting => wake_in(cx, line, end.saturating_sub(server::clock_ms())),
        _ => Ok(()),
    }
}

/// A member of a line as [`serve`] meets it.
enum Member {
    Lease(u64, LeaseParams),
    Other(u64, Admit),
    /// The end of the line.
    End,
}

/// Whether no lease waiter stands ahead of the member `token` in `line`:
/// one that does could not take a slot, and comes first.
pub fn is_reached(line: &Line, token: u64) -> bool {
    with_registry(|r| {
        let Some(queue) = r.lines.get(line) else {
            return false;
        };
        for member in &queue.tokens {
            if *member == token {
                return true;
            }
            if r.waiters.contains_key(member) {
                return false;
            }
        }
        false
    })
    .unwrap_or(false)
}

/// Puts `token`, a member that is not a lease waiter and is admitted by
/// `admit`, at the end of each of `lines` (each with its key's name), and
/// serves them.
pub fn join_lines(cx: &Background, token: u64, lines: Vec<(Line, KeyName)>, admit: Admit) {
    let joined: Vec<Line> = lines.iter().map(|(line, _)| line.clone()).collect();
    with_registry(|r| {
        r.others.insert(token, admit);
        for (line, name) in lines {
            r.lines
                .entry(line)
                .or_insert_with(|| Queue {
                    name: Rc::new(name),
                    tokens: VecDeque::new(),
                    wake: None,
                })
                .tokens
                .push_back(token);
        }
    });
    for line in &joined {
        let _ = serve(cx, line);
    }
}

/// Takes the member `token` that [`join_lines`] put in `lines` out of
/// them, and serves them next (it may have held them).
pub fn leave_lines(cx: &Background, token: u64, lines: &[Line]) {
    let mut stopped = Vec::new();
    with_registry(|r| {
        r.others.remove(&token);
        for line in lines {
            let Some(queue) = r.lines.get_mut(line) else {
                continue;
            };
            queue.tokens.retain(|&t| t != token);
            if queue.tokens.is_empty() {
                stopped.extend(r.take_wake(line));
                r.lines.remove(line);
            }
        }
    });
    for timer in stopped {
        cx.stop_timer(timer);
    }
    for line in lines {
        if with_registry(|r| r.lines.contains_key(line)) == Some(true) {
            let _ = wake_in(cx, line, 0);
        }
    }
}

/// Serves `line` in `delay_ms` (its wake timer, replacing any).
fn wake_in(cx: &Background, line: &Line, delay_ms: i64) -> CommandResult<()> {
    let Some(token) = with_registry(Registry::token) else {
        return Ok(());
    };
    let timer = cx.start_timer::<LeaseWaits>(delay_ms, token)?;
    let old = with_registry(|r| {
        let old = r.take_wake(line);
        match r.lines.get_mut(line) {
            Some(queue) => {
                queue.wake = Some((timer, token));
                r.wakes.insert(token, line.clone());
                old
            }
            None => old.or(Some(timer)),
        }
    });
    if let Some(Some(old)) = old {
        cx.stop_timer(old);
    }
    Ok(())
}

/// The replies of the waiters granted (by token), and the earliest lease
/// end.
type Granted = (Vec<(u64, Reply)>, Option<i64>);

/// Grants what fits in the key `name` to the waiters `in_line`, stores and
/// propagates it; the replies of the waiters granted (by token), and the
/// earliest lease end.
fn grant(
    cx: &Background,
    name: &KeyName,
    in_line: &[(u64, LeaseParams)],
) -> CommandResult<Granted> {
    let now = server::clock_ms();
    let mut key = cx.update_key(name)?;
    let state = match key.value::<LeaseState>() {
        Ok(state) => state.map(|s| s.clone()),
        // Another type took the key: no lease until it goes.
        Err(CommandError::WrongType) => return Ok((Vec::new(), None)),
        Err(other) => return Err(other),
    };
    // A key that went to another cluster node: its waiters time out here.
    if state.is_none() && !in_line.is_empty() && !cx.may_create(name) {
        return Ok((Vec::new(), None));
    }
    let params: Vec<LeaseParams> = in_line.iter().map(|(_, p)| *p).collect();
    let served = grant_leases(state.as_ref(), &params, now)
        .map_err(|_| CommandError::Server("lease ids exhausted"))?;
    let (Some(last), Some(stored)) = (served.granted.last(), served.state) else {
        return Ok((Vec::new(), served.next_end_ms));
    };
    let at_ms = last.at_ms;
    let ttl = stored
        .last_end_ms(at_ms)
        .map(|end| end.saturating_sub(at_ms));
    key.mark_written();
    key.put(stored)?;
    key.set_ttl(ttl, at_ms);
    cx.replicate_state::<LeaseState>(name, &mut key)?;
    drop(key);
    let replies = served
        .granted
        .iter()
        .zip(in_line)
        .map(|(outcome, (token, _))| {
            cx.notify_module_event(GRANT_EVENT, name);
            let id = outcome.opened.map_or(0, |l| l.id);
            let decision = outcome.evaluation.own_decision();
            (*token, Reply::decision(decision, Some(id)))
        })
        .collect();
    Ok((replies, served.next_end_ms))
}

/// Ends waiter `token` without a lease: its timeout passed, or `CLIENT
/// UNBLOCK` interrupted it. Its client, and the reply of a denied
/// RL.ACQUIRE at this moment (id 0), or the error it would get (its key now
/// holds another type).
fn time_out(cx: &Background, token: u64) -> Option<(BlockedClient, CommandResult<Reply>)> {
    let removed = with_registry(|r| r.remove(token)).flatten()?;
    let (name, params) = (Rc::clone(&removed.0.name), removed.0.params);
    let selected = cx.select_db(removed.0.line.0);
    let client = finish(cx, removed, &TIMED_OUT);
    let now = server::clock_ms();
    let reply = selected.and_then(|()| {
        let mut key = cx.read_key(&name)?;
        let state = key.value::<LeaseState>()?;
        let outcome = leases::acquire(state.as_deref(), &params, now, 1)
            .map_err(|_| CommandError::Server("lease ids exhausted"))?;
        let mut decision = outcome.evaluation.own_decision();
        decision.allowed = false;
        Ok(Reply::decision(decision, Some(0)))
    });
    Some((client, reply))
}

/// Ends a waiter taken out of the registry (with the wake timer of its
/// line if the line went with it): stops its timers, counts it under
/// `ended`; its client, to answer or release.
fn finish(
    cx: &Background,
    (waiter, wake): (Waiter, Option<TimerId>),
    ended: &Counter,
) -> BlockedClient {
    for timer in [waiter.timer, wake].into_iter().flatten() {
        cx.stop_timer(timer);
    }
    ended.bump();
    WAITED_MS.add(server::clock_ms().saturating_sub(waiter.since_ms));
    waiter.client
}

struct LeaseWaits;

impl WaitEvents for LeaseWaits {
    fn timer(cx: &Background, token: u64) {
        let woken = with_registry(|r| {
            let line = r.wakes.remove(&token)?;
            if let Some(queue) = r.lines.get_mut(&line) {
                queue.wake = None;
            }
            Some(line)
        });
        if let Some(Some(line)) = woken {
            let _ = serve(cx, &line);
            return;
        }
        // A timeout: the line is served first, in case a slot freed just now.
        let line = with_registry(|r| {
            let waiter = r.waiters.get_mut(&token)?;
            waiter.timer = None;
            Some(waiter.line.clone())
        })
        .flatten();
        if let Some(line) = line {
            let _ = serve(cx, &line);
        }
        match time_out(cx, token) {
            Some((client, Ok(reply))) => client.answer(reply),
            Some((client, Err(error))) => client.fail(error),
            None => {}
        }
    }

    fn disconnected(cx: &Background, client: usize) {
        let found = with_registry(|r| {
            let token = r.by_client.get(&client).copied()?;
            r.remove(token)
        });
        if let Some(Some(removed)) = found {
            finish(cx, removed, &REFUNDED).release();
        }
    }

    fn unblocked(cx: &Background, client: usize) -> Option<CommandResult<Reply>> {
        let token = with_registry(|r| r.by_client.get(&client).copied()).flatten()?;
        let (client, reply) = time_out(cx, token)?;
        client.release();
        Some(reply)
    }
}

/// Wakes the lines of keys gone: their slots are free.
pub fn keys_gone(cx: &Background, gone: KeysGone) {
    let lines = with_registry(|r| {
        if r.lines.is_empty() {
            return Vec::new();
        }
        match gone {
            KeysGone::Key { db, name } => {
                let line = (db, name.to_vec());
                if r.lines.contains_key(&line) {
                    vec![line]
                } else {
                    Vec::new()
                }
            }
            KeysGone::Database(_) | KeysGone::All => r
                .lines
                .keys()
                .filter(|(db, name)| gone.includes(*db, name))
                .cloned()
                .collect(),
        }
    });
    for line in lines.unwrap_or_default() {
        let _ = wake_in(cx, &line, 0);
    }
}
