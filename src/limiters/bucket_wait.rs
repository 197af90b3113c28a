//! `WAIT timeout_ms` on the bucket commands (RL.TOKENBUCKET, RL.COST,
//! RL.RESERVE): the server holds a call until the bucket allows it, first
//! come first served.
//!
//! A call that would be denied, whose tokens come due within the timeout,
//! takes its cost at once as a debt ([`crate::algo::wait::debit`]), stored
//! and propagated at once as the state it leaves
//! (`RL.RESTORESTATE` and the key's absolute expiry: replicas and the AOF
//! apply it without deciding again, since a replica cannot wait). The client
//! is blocked, and a module timer answers it at the due time. Later calls
//! see the debt, so they queue behind it. A client that disconnects before
//! its due time gets its cost back, a write propagated the same way.
//!
//! Waiters live in a registry on Redis's main thread, where every command,
//! timer and disconnection runs.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use crate::algo::wait as algo;
use crate::error::CommandResult;
use crate::ffi::blocking::{Background, BlockedClient, KeyName, KeysGone, TimerId, WaitEvents};
use crate::ffi::command::CommandSpec;
use crate::ffi::{server, Call, Key};
use crate::replication::CallClock;
use crate::reply::Reply;
use crate::types::bucket::Bucket;

use super::token_bucket::give_back_to_bucket;
use super::wait::{Waiting, GRANTED, PAUSED_RETRY_MS, REFUNDED, STARTED, WAITED_MS};
use super::{apply, Limiter};

/// Takes the cost of a call denied at `now_ms` as a debt, if it is due
/// within `timeout_ms`: blocks the client, starts the timer that answers
/// it, and stores and propagates the debt. `None` when the call cannot
/// wait (it is then answered at once, as without WAIT).
#[allow(clippy::too_many_arguments)]
pub fn hold<L: Limiter>(
    call: &Call,
    spec: &'static CommandSpec,
    key: &mut Key,
    params: &L::Params,
    cost: i64,
    now_ms: i64,
    timeout_ms: i64,
    clock: &CallClock,
) -> CommandResult<Option<Reply>> {
    let state = key.value::<L::State>()?;
    let Some((debt, waiting)) = L::debit(state.as_deref(), params, cost, now_ms, timeout_ms)?
    else {
        return Ok(None);
    };
    let name = call.key_name(1)?;
    let cx = call.background();
    let Some(token) = next_token() else {
        return Ok(None);
    };
    let delay = waiting.due_ms.saturating_sub(server::clock_ms());
    let Ok(timer) = call.start_timer::<Waits>(delay, token) else {
        return Ok(None);
    };
    let client = match call.block::<Waits>(false) {
        Ok(client) => client,
        Err(_) => {
            cx.stop_timer(timer);
            return Ok(None);
        }
    };
    // Blocked: from here on the client is answered through its handle.
    let stored = apply::<L>(key, params, cost, &debt, clock)
        .and_then(|_| call.replicate_state::<L::State>(1, key));
    if let Err(error) = stored {
        cx.stop_timer(timer);
        client.fail(error);
        return Ok(Some(Reply::Blocked));
    }
    call.notify_module_event(spec.name, 1);
    STARTED.bump();
    let waiter = Waiter {
        client: Some(client),
        name,
        db: cx.selected_db(),
        refundable: true,
        timer,
        since_ms: now_ms,
        waiting,
        command: spec,
    };
    with_waiters(|waiters| waiters.insert(token, waiter));
    Ok(Some(Reply::Blocked))
}

/// One client waiting for its tokens.
struct Waiter {
    /// `None` once it disconnected: its refund is then due.
    client: Option<BlockedClient>,
    name: KeyName,
    db: i32,
    /// Whether its bucket is still the one it took from: false once the
    /// key went or was replaced, when a refund would credit another.
    refundable: bool,
    timer: TimerId,
    /// When it called (unix ms).
    since_ms: i64,
    waiting: Waiting,
    command: &'static CommandSpec,
}

#[derive(Default)]
struct Waiters {
    last_token: u64,
    by_token: BTreeMap<u64, Waiter>,
    /// Each waiter's token, by its client's [`BlockedClient::id`].
    by_client: HashMap<usize, u64>,
    /// The waiters' tokens by key name.
    by_key: HashMap<Vec<u8>, Vec<u64>>,
}

impl Waiters {
    fn insert(&mut self, token: u64, waiter: Waiter) {
        if let Some(client) = &waiter.client {
            self.by_client.insert(client.id(), token);
        }
        self.by_key
            .entry(waiter.name.bytes().to_vec())
            .or_default()
            .push(token);
        self.by_token.insert(token, waiter);
    }

    fn remove(&mut self, token: u64) -> Option<Waiter> {
        let waiter = self.by_token.remove(&token)?;
        if let Some(client) = &waiter.client {
            self.by_client.remove(&client.id());
        }
        if let Some(tokens) = self.by_key.get_mut(waiter.name.bytes()) {
            tokens.retain(|&t| t != token);
            if tokens.is_empty() {
                self.by_key.remove(waiter.name.bytes());
            }
        }
        Some(waiter)
    }

    /// Marks the waiters whose keys are among `gone` as owed nothing.
    fn forget_buckets(&mut self, gone: KeysGone) {
        let tokens: Vec<u64> = match gone {
            KeysGone::Key { name, .. } => match self.by_key.get(name) {
                Some(tokens) => tokens.clone(),
                None => return,
            },
            KeysGone::Database(_) | KeysGone::All => self.by_token.keys().copied().collect(),
        };
        for token in tokens {
            if let Some(waiter) = self.by_token.get_mut(&token) {
                if gone.includes(waiter.db, waiter.name.bytes()) {
                    waiter.refundable = false;
                }
            }
        }
    }
}

thread_local! {
    static WAITERS: RefCell<Waiters> = RefCell::new(Waiters::default());
}

fn with_waiters<T>(f: impl FnOnce(&mut Waiters) -> T) -> Option<T> {
    WAITERS.with(|cell| {
        cell.try_borrow_mut()
            .ok()
            .map(|mut waiters| f(&mut waiters))
    })
}

fn next_token() -> Option<u64> {
    with_waiters(|waiters| {
        waiters.last_token = waiters.last_token.wrapping_add(1);
        waiters.last_token
    })
}

/// How many clients wait for a bucket now (`INFO rl`).
pub fn waiting() -> i64 {
    let count = with_waiters(|waiters| waiters.by_client.len()).unwrap_or(0);
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Marks the waiters whose keys are among `gone` as owed nothing.
pub fn keys_gone(gone: KeysGone) {
    if with_waiters(|waiters| waiters.by_token.is_empty()) == Some(false) {
        with_waiters(|waiters| waiters.forget_buckets(gone));
    }
}

/// The timer and disconnection callbacks of bucket waiters.
struct Waits;

impl WaitEvents for Waits {
    /// A waiter is due: answers it, with the bucket as it stands. Or a
    /// waiter disconnected: gives its cost back.
    fn timer(cx: &Background, token: u64) {
        let Some(mut waiter) = with_waiters(|waiters| waiters.remove(token)).flatten() else {
            return;
        };
        let now = server::clock_ms();
        let retry_in = match &waiter.client {
            Some(_) if now < waiter.waiting.due_ms => Some(waiter.waiting.due_ms - now),
            None if waiter.refundable && server::writes_paused() => Some(PAUSED_RETRY_MS),
            _ => None,
        };
        if let Some(delay) = retry_in {
            if let Ok(timer) = cx.start_timer::<Waits>(delay, token) {
                waiter.timer = timer;
                with_waiters(|waiters| waiters.insert(token, waiter));
                return;
            }
        }
        let Some(client) = waiter.client.take() else {
            // A master turned replica disconnects its waiters: the new
            // master's stream owns the data, so nothing is written here.
            if waiter.refundable
                && !server::is_replica()
                && refund(cx, &waiter, now).unwrap_or(false)
            {
                REFUNDED.bump();
            }
            return;
        };
        let state = cx
            .select_db(waiter.db)
            .and_then(|()| cx.read_key(&waiter.name))
            .ok()
            .and_then(|mut key| Some(key.value::<Bucket>().ok()??.state()));
        let decision = algo::answer(state.as_ref(), &waiter.waiting.params, now);
        GRANTED.bump();
        WAITED_MS.add(now.saturating_sub(waiter.since_ms));
        client.answer(Reply::decision(decision, waiter.waiting.reservation));
    }

    /// A waiter went away before its due time: its refund runs from a
    /// timer right after, once the server is done with what disconnected it
    /// (a master turned replica disconnects its blocked clients before it
    /// knows its new role).
    fn disconnected(cx: &Background, client: usize) {
        let found = with_waiters(|waiters| {
            let token = waiters.by_client.get(&client).copied()?;
            Some((token, waiters.remove(token)?))
        });
        let Some((token, mut waiter)) = found.flatten() else {
            return;
        };
        cx.stop_timer(waiter.timer);
        WAITED_MS.add(server::clock_ms().saturating_sub(waiter.since_ms));
        if let Some(client) = waiter.client.take() {
            client.release();
        }
        if let Ok(timer) = cx.start_timer::<Waits>(0, token) {
            waiter.timer = timer;
            with_waiters(|waiters| waiters.insert(token, waiter));
        }
    }
}

/// Gives a waiter's cost back to its bucket at `now_ms` (for RL.RESERVE,
/// cancels its reservation), stores and propagates it; false when there is
/// nothing to give back (the key is gone, or holds something else).
fn refund(cx: &Background, waiter: &Waiter, now_ms: i64) -> CommandResult<bool> {
    cx.select_db(waiter.db)?;
    let mut key = cx.update_key(&waiter.name)?;
    let Some(bucket) = key.value::<Bucket>()? else {
        return Ok(false);
    };
    let waiting = &waiter.waiting;
    let Some(ttl) = give_back_to_bucket(bucket, waiting.cost, waiting.reservation, now_ms) else {
        return Ok(false);
    };
    key.mark_written();
    key.extend_ttl(ttl, now_ms);
    cx.replicate_state::<Bucket>(&waiter.name, &mut key)?;
    cx.notify_module_event(waiter.command.name, &waiter.name);
    Ok(true)
}
