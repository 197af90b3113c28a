//! Blocked clients and module timers: the raw calls behind a command that
//! answers later (`WAIT`). A call blocks its client ([`Call::block`]) and
//! starts a timer ([`Call::start_timer`]); the timer's callback runs on the
//! main thread, in a [`Background`] context that opens keys by name and
//! propagates writes, and answers the client ([`BlockedClient::answer`]):
//! Redis sends that reply from its main thread right after. A client that
//! disconnects first is reported to [`WaitEvents::disconnected`].
//!
//! The timer, not Redis's blocked-client timeout, drives the answer: Redis
//! checks those timeouts only when its event loop turns, while a module
//! timer wakes the loop at its time (microseconds, rounded up to the ms
//! here, so never early).

use std::ffi::{c_void, CStr};
use std::os::raw::{c_int, c_longlong};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use redis_module::raw;

use super::data_type::Stored;
use super::{replication_status, Call, Ctx, Key, KeyMode, RawString};
use crate::error::{CommandError, CommandResult};
use crate::reply::Reply;

/// What a module's waiting commands do when their timers fire and when a
/// waiting client goes away. Called on the main thread.
pub trait WaitEvents: 'static {
    /// A timer started with `data` fired.
    fn timer(cx: &Background, data: u64);
    /// The client [`BlockedClient::id`] disconnected before it was answered.
    /// The module must still [`BlockedClient::release`] it.
    fn disconnected(cx: &Background, client: usize);

    /// `CLIENT UNBLOCK` interrupted the client [`BlockedClient::id`]
    /// (blocked with `unblockable`): the module releases it and returns
    /// the reply it gets.
    fn unblocked(_cx: &Background, _client: usize) -> Option<CommandResult<Reply>> {
        None
    }
}

/// What a module does when keys go, or something else takes their place
/// (see [`follow_key_removals`]). Called on the main thread.
pub trait KeysWatcher: 'static {
    fn keys_gone(cx: &Background, gone: KeysGone);
}

/// Keys whose value went or was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysGone<'a> {
    /// The key `name` of database `db`: deleted, expired, evicted, renamed
    /// away, moved to another database, or renamed, copied or restored over.
    Key { db: i32, name: &'a [u8] },
    /// Every key of database `db`: FLUSHDB, or SWAPDB (once for each).
    Database(i32),
    /// Every key: FLUSHALL.
    All,
}

impl KeysGone<'_> {
    /// Whether the key `name` of database `db` is among them.
    pub fn includes(&self, db: i32, name: &[u8]) -> bool {
        match *self {
            KeysGone::Key {
                db: gone_db,
                name: gone,
            } => gone_db == db && gone == name,
            KeysGone::Database(gone_db) => gone_db == db,
            KeysGone::All => true,
        }
    }
}

/// A client blocked by [`Call::block`]: answered once with
/// [`BlockedClient::answer`], or released without a reply. One dropped
/// otherwise is answered with an error, so that no client is left blocked.
pub struct BlockedClient(NonNull<raw::RedisModuleBlockedClient>);

impl BlockedClient {
    /// What names this client in [`WaitEvents::disconnected`].
    pub fn id(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// Unblocks the client with `reply`, which Redis sends from its main
    /// thread as soon as the event loop turns.
    pub fn answer(self, reply: Reply) {
        answer(self.into_handle(), Ok(reply));
    }

    /// Unblocks the client with an error reply.
    pub fn fail(self, error: CommandError) {
        answer(self.into_handle(), Err(error));
    }

    /// Frees the handle of a client that will get no reply from the module:
    /// one that disconnected, or one `CLIENT UNBLOCK` answered.
    pub fn release(self) {
        unblock(self.into_handle(), std::ptr::null_mut());
    }

    fn into_handle(self) -> NonNull<raw::RedisModuleBlockedClient> {
        let handle = self.0;
        std::mem::forget(self);
        handle
    }
}

impl Drop for BlockedClient {
    fn drop(&mut self) {
        answer(
            self.0,
            Err(CommandError::Server("the wait ended without an answer")),
        );
    }
}

fn answer(client: NonNull<raw::RedisModuleBlockedClient>, reply: CommandResult<Reply>) {
    let boxed = Box::into_raw(Box::new(reply));
    if !unblock(client, boxed.cast()) {
        // SAFETY: Redis refused the box, so it is still ours.
        drop(unsafe { Box::from_raw(boxed) });
    }
}

fn unblock(client: NonNull<raw::RedisModuleBlockedClient>, privdata: *mut c_void) -> bool {
    match unsafe { raw::RedisModule_UnblockClient } {
        // SAFETY: client is a live handle from RedisModule_BlockClient,
        // unblocked once (the BlockedClient is consumed).
        Some(unblock) => {
            (unsafe { unblock(client.as_ptr(), privdata) }) == raw::Status::Ok as c_int
        }
        None => false,
    }
}

/// A module timer, to stop before it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerId(u64);

/// A key name kept beyond the call that gave it (a retained copy).
pub struct KeyName(NonNull<raw::RedisModuleString>);

impl KeyName {
    fn raw(&self) -> RawString {
        self.0.as_ptr()
    }

    /// The name's bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the kept string lives as long as self.
        unsafe { super::string_bytes(self.raw()) }
    }
}

impl Drop for KeyName {
    fn drop(&mut self) {
        if let Some(free) = unsafe { raw::RedisModule_FreeString } {
            // SAFETY: created with a null context, freed once with one.
            unsafe { free(std::ptr::null_mut(), self.raw()) };
        }
    }
}

impl Call<'_> {
    /// Whether the call may block its client: not inside MULTI/EXEC, a
    /// script or a function, a module's `RedisModule_Call`, wherever the
    /// server denies blocking, nor for a write from the master or a file.
    pub fn may_block(&self) -> bool {
        let cannot = raw::REDISMODULE_CTX_FLAGS_MULTI
            | raw::REDISMODULE_CTX_FLAGS_LUA
            | raw::REDISMODULE_CTX_FLAGS_DENY_BLOCKING
            | raw::REDISMODULE_CTX_FLAGS_REPLICATED
            | raw::REDISMODULE_CTX_FLAGS_LOADING;
        self.replay.is_none()
            && self.context_flags() & cannot == 0
            && unsafe { raw::RedisModule_BlockClient }.is_some()
            && unsafe { raw::RedisModule_UnblockClient }.is_some()
            && unsafe { raw::RedisModule_CreateTimer }.is_some()
    }

    /// Blocks the calling client, with no timeout of Redis's own: it is
    /// answered by [`BlockedClient::answer`], and a disconnection is
    /// reported to `E`; so is `CLIENT UNBLOCK` when `unblockable` (else it
    /// does not interrupt the client). Check [`Call::may_block`] first.
    pub fn block<E: WaitEvents>(&self, unblockable: bool) -> CommandResult<BlockedClient> {
        let block = unsafe { raw::RedisModule_BlockClient }
            .ok_or(CommandError::Server("blocking API missing"))?;
        // SAFETY: ctx is the live context of a command that may block; the
        // callbacks are 'static functions.
        let on_unblock: raw::RedisModuleCmdFunc = if unblockable {
            Some(unblocked::<E>)
        } else {
            None
        };
        let client = unsafe {
            block(
                self.ctx,
                Some(send_answer),
                on_unblock,
                Some(free_answer),
                0,
            )
        };
        let client =
            NonNull::new(client).ok_or(CommandError::Server("could not block the client"))?;
        if let Some(on_disconnect) = unsafe { raw::RedisModule_SetDisconnectCallback } {
            // SAFETY: client is the live handle just made.
            unsafe { on_disconnect(client.as_ptr(), Some(disconnected::<E>)) };
        }
        Ok(BlockedClient(client))
    }

    /// Starts a timer that calls `E::timer(data)` in `delay_ms` (at least
    /// 0), in this call's database.
    pub fn start_timer<E: WaitEvents>(&self, delay_ms: i64, data: u64) -> CommandResult<TimerId> {
        start_timer::<E>(self.ctx, delay_ms, data)
    }

    /// This call's context, as a timer's: for what both do.
    pub fn background(&self) -> Background {
        Background { ctx: self.ctx }
    }

    /// The name of the key at argument `index`, kept.
    pub fn key_name(&self, index: usize) -> CommandResult<KeyName> {
        keep(self.raw(index)?)
    }

    /// Propagates the `S` now stored in the key at argument `index`, as
    /// `RL.RESTORESTATE key kind payload` and its absolute expiry: a write
    /// that replicas and the AOF apply without deciding again.
    pub fn replicate_state<S: Stored>(&self, index: usize, key: &mut Key) -> CommandResult<()> {
        replicate_state::<S>(self.ctx, self.raw(index)?, key)
    }
}

/// The context of a timer or of a disconnection: opens keys by name,
/// propagates writes, sends keyspace events, stops timers.
pub struct Background {
    ctx: Ctx,
}

impl Background {
    /// Opens the key `name` for a call that may write it (see
    /// [`Call::update_key`]).
    pub fn update_key(&self, name: &KeyName) -> CommandResult<Key> {
        Key::open(self.ctx, name.raw(), KeyMode::Update)
    }

    /// Opens the key `name` for reading.
    pub fn read_key(&self, name: &KeyName) -> CommandResult<Key> {
        Key::open(self.ctx, name.raw(), KeyMode::Read)
    }

    /// See [`Call::replicate_state`].
    pub fn replicate_state<S: Stored>(&self, name: &KeyName, key: &mut Key) -> CommandResult<()> {
        replicate_state::<S>(self.ctx, name.raw(), key)
    }

    /// See [`Call::notify_module_event`].
    pub fn notify_module_event(&self, command: &CStr, name: &KeyName) {
        super::notify(self.ctx, command, name.raw());
    }

    /// See [`Call::start_timer`].
    pub fn start_timer<E: WaitEvents>(&self, delay_ms: i64, data: u64) -> CommandResult<TimerId> {
        start_timer::<E>(self.ctx, delay_ms, data)
    }

    /// Whether this server may create the key `name` from a timer: always
    /// outside a cluster; in a cluster, when it serves the key's slot and
    /// is not migrating it away (a key gone from such a slot went to
    /// another node, and must not come back here).
    pub fn may_create(&self, name: &KeyName) -> bool {
        let flags = match unsafe { raw::RedisModule_GetContextFlags } {
            // SAFETY: ctx is live.
            Some(flags) => (unsafe { flags(self.ctx) }) as u32,
            None => 0,
        };
        if flags & raw::REDISMODULE_CTX_FLAGS_CLUSTER == 0 {
            return true;
        }
        let slot = CallReply::call(self.ctx, c"CLUSTER", c"cs", c"KEYSLOT", name.raw())
            .and_then(|reply| reply.integer());
        let nodes = CallReply::call(self.ctx, c"CLUSTER", c"c", c"NODES", std::ptr::null_mut());
        match (slot, nodes.and_then(|reply| reply.text())) {
            (Some(slot), Some(nodes)) => serves_slot(&nodes, slot),
            _ => false,
        }
    }

    /// Works on database `db` from now on. A timer's context starts on the
    /// database it was started from, which for a server event's context
    /// (FLUSHALL, SWAPDB) is 0, not the waiters'.
    pub fn select_db(&self, db: i32) -> CommandResult<()> {
        if self.selected_db() == db {
            return Ok(());
        }
        let select = unsafe { raw::RedisModule_SelectDb }
            .ok_or(CommandError::Server("database API missing"))?;
        // SAFETY: ctx is live; Redis refuses a database out of range.
        match unsafe { select(self.ctx, db) } {
            status if status == raw::Status::Ok as c_int => Ok(()),
            _ => Err(CommandError::Server("could not select the database")),
        }
    }

    /// The database the context works on.
    pub fn selected_db(&self) -> i32 {
        match unsafe { raw::RedisModule_GetSelectedDb } {
            // SAFETY: ctx is live.
            Some(selected) => unsafe { selected(self.ctx) },
            None => 0,
        }
    }

    /// Stops a timer that has not fired.
    pub fn stop_timer(&self, timer: TimerId) {
        if let Some(stop) = unsafe { raw::RedisModule_StopTimer } {
            // SAFETY: ctx is live; Redis ignores an unknown id.
            unsafe { stop(self.ctx, timer.0, std::ptr::null_mut()) };
        }
    }
}

/// A reply of `RedisModule_Call`, freed on drop.
struct CallReply(NonNull<raw::RedisModuleCallReply>);

impl CallReply {
    /// Calls `command word [name]` (`format` "c" or "cs").
    fn call(
        ctx: Ctx,
        command: &CStr,
        format: &CStr,
        word: &CStr,
        name: RawString,
    ) -> Option<CallReply> {
        let call = unsafe { raw::RedisModule_Call }?;
        // SAFETY: ctx is live; the arguments match `format`: a C string,
        // then a RedisModuleString when the format says "s".
        let reply = unsafe { call(ctx, command.as_ptr(), format.as_ptr(), word.as_ptr(), name) };
        NonNull::new(reply).map(CallReply)
    }

    fn integer(&self) -> Option<i64> {
        let integer = unsafe { raw::RedisModule_CallReplyInteger }?;
        // SAFETY: the reply is live.
        Some(unsafe { integer(self.0.as_ptr()) })
    }

    fn text(&self) -> Option<Vec<u8>> {
        let string = unsafe { raw::RedisModule_CallReplyStringPtr }?;
        let mut len = 0usize;
        // SAFETY: the reply is live; Redis writes the length.
        let ptr = unsafe { string(self.0.as_ptr(), &mut len) };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: Redis gives `len` bytes at `ptr`, alive with the reply.
        Some(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }.to_vec())
    }
}

impl Drop for CallReply {
    fn drop(&mut self) {
        if let Some(free) = unsafe { raw::RedisModule_FreeCallReply } {
            // SAFETY: the reply is live and freed once.
            unsafe { free(self.0.as_ptr()) };
        }
    }
}

/// Whether the `myself` node of `CLUSTER NODES` serves `slot` and is not
/// migrating it away (`[slot->-node]`).
fn serves_slot(nodes: &[u8], slot: i64) -> bool {
    let Some(myself) = nodes.split(|&b| b == b'\n').find(|line| {
        line.split(|&b| b == b' ')
            .nth(2)
            .is_some_and(|flags| flags.split(|&b| b == b',').any(|flag| flag == b"myself"))
    }) else {
        return false;
    };
    let mut served = false;
    for field in myself.split(|&b| b == b' ').skip(8) {
        let text = String::from_utf8_lossy(field);
        let text = text.trim();
        if let Some(marker) = text.strip_prefix('[') {
            if let Some((from, _)) = marker.split_once("->-") {
                if from.parse::<i64>() == Ok(slot) {
                    return false;
                }
            }
            continue;
        }
        let (first, last) = text.split_once('-').unwrap_or((text, text));
        if let (Ok(first), Ok(last)) = (first.parse::<i64>(), last.parse::<i64>()) {
            served |= (first..=last).contains(&slot);
        }
    }
    served
}

impl Key {
    /// The key's absolute expiry in unix ms; `None` when it has none.
    pub fn expire_at(&self) -> Option<i64> {
        let (false, Some(get_abs_expire)) = (self.inner.is_null(), unsafe {
            raw::RedisModule_GetAbsExpire
        }) else {
            return None;
        };
        // SAFETY: inner is an open key.
        let at = unsafe { get_abs_expire(self.inner) };
        (at != super::NO_EXPIRE).then_some(at)
    }
}

fn keep(name: RawString) -> CommandResult<KeyName> {
    let copy = unsafe { raw::RedisModule_CreateStringFromString }
        .ok_or(CommandError::Server("string API missing"))?;
    // SAFETY: name is live; a null context makes the copy ours to free.
    let kept = unsafe { copy(std::ptr::null_mut(), name) };
    NonNull::new(kept)
        .map(KeyName)
        .ok_or(CommandError::Server("could not keep the key name"))
}

/// The longest delay a timer is started with: Redis counts a timer's time
/// in µs from now, which a delay of about 292,000 years would overflow
/// (the timer would then fire at once, for ever). A callback woken before
/// its time starts its timer again.
const MAX_TIMER_DELAY_MS: i64 = 86_400_000;

fn start_timer<E: WaitEvents>(ctx: Ctx, delay_ms: i64, data: u64) -> CommandResult<TimerId> {
    let create =
        unsafe { raw::RedisModule_CreateTimer }.ok_or(CommandError::Server("timer API missing"))?;
    let data = usize::try_from(data).map_err(|_| CommandError::Server("timer data too large"))?;
    // SAFETY: ctx is live; the data is an integer carried as a pointer,
    // never dereferenced.
    let id = unsafe {
        create(
            ctx,
            delay_ms.clamp(0, MAX_TIMER_DELAY_MS),
            Some(timer_fired::<E>),
            data as *mut c_void,
        )
    };
    Ok(TimerId(id))
}

fn replicate_state<S: Stored>(ctx: Ctx, name: RawString, key: &mut Key) -> CommandResult<()> {
    let mut payload = Vec::new();
    if let Some(state) = key.value::<S>()? {
        state.encode(&mut payload);
    }
    let kind = S::KIND;
    let replicate = unsafe { raw::RedisModule_Replicate }
        .ok_or(CommandError::Server("replication API missing"))?;
    // SAFETY: the format "scb" matches a RedisModuleString, a C string and
    // a buffer with its length; Redis copies each.
    let status = unsafe {
        replicate(
            ctx,
            super::data_type::RESTORE_COMMAND.as_ptr(),
            c"scb".as_ptr(),
            name,
            kind.as_ptr(),
            payload.as_ptr(),
            payload.len(),
        )
    };
    replication_status(status)?;
    // SAFETY: "sl" matches a RedisModuleString and a long long; "s" the
    // string alone.
    let status = match key.expire_at() {
        Some(at) => unsafe {
            replicate(
                ctx,
                c"PEXPIREAT".as_ptr(),
                c"sl".as_ptr(),
                name,
                at as c_longlong,
            )
        },
        None => unsafe { replicate(ctx, c"PERSIST".as_ptr(), c"s".as_ptr(), name) },
    };
    replication_status(status)
}

/// Reports to `E` the keys that go or are replaced: deleted, expired,
/// evicted, renamed away, moved, restored over, flushed or swapped away.
pub fn follow_key_removals<E: KeysWatcher>(ctx: Ctx) -> Result<(), &'static str> {
    let subscribe = unsafe { raw::RedisModule_SubscribeToKeyspaceEvents }
        .ok_or("this server lacks keyspace event subscriptions")?;
    let types = raw::REDISMODULE_NOTIFY_GENERIC
        | raw::REDISMODULE_NOTIFY_EXPIRED
        | raw::REDISMODULE_NOTIFY_EVICTED;
    // SAFETY: ctx is the module's load context; the callback is 'static.
    let status = unsafe { subscribe(ctx, types, Some(key_event::<E>)) };
    if status != raw::Status::Ok as c_int {
        return Err("could not subscribe to keyspace events");
    }
    let subscribe = unsafe { raw::RedisModule_SubscribeToServerEvent }
        .ok_or("this server lacks server events")?;
    for id in [
        raw::REDISMODULE_EVENT_FLUSHDB,
        raw::REDISMODULE_EVENT_SWAPDB,
    ] {
        let event = raw::RedisModuleEvent { id, dataver: 1 };
        // SAFETY: ctx is the module's load context; the callback is static.
        if unsafe { subscribe(ctx, event, Some(databases_event::<E>)) } != raw::Status::Ok as c_int
        {
            return Err("could not subscribe to server events");
        }
    }
    Ok(())
}

extern "C" fn key_event<E: KeysWatcher>(
    ctx: Ctx,
    _type: c_int,
    event: *const std::os::raw::c_char,
    key: RawString,
) -> c_int {
    if event.is_null() || key.is_null() {
        return raw::Status::Ok as c_int;
    }
    // SAFETY: Redis passes a nul-terminated event name.
    let event = unsafe { CStr::from_ptr(event) }.to_bytes();
    if matches!(
        event,
        b"del"
            | b"expired"
            | b"evicted"
            | b"rename_from"
            | b"rename_to"
            | b"move_from"
            | b"copy_to"
            | b"restore"
    ) {
        let cx = Background { ctx };
        // SAFETY: the key lives for the callback.
        let name = unsafe { super::string_bytes(key) };
        let gone = KeysGone::Key {
            db: cx.selected_db(),
            name,
        };
        let _ = catch_unwind(AssertUnwindSafe(|| E::keys_gone(&cx, gone)));
    }
    raw::Status::Ok as c_int
}

extern "C" fn databases_event<E: KeysWatcher>(
    ctx: Ctx,
    event: raw::RedisModuleEvent,
    subevent: u64,
    data: *mut c_void,
) {
    if data.is_null() {
        return;
    }
    let cx = Background { ctx };
    let gone: &[KeysGone] = match event.id {
        raw::REDISMODULE_EVENT_FLUSHDB if subevent == raw::REDISMODULE_SUBEVENT_FLUSHDB_END => {
            // SAFETY: Redis passes a RedisModuleFlushInfo with this event.
            let info = unsafe { &*data.cast::<raw::RedisModuleFlushInfo>() };
            match info.dbnum {
                -1 => &[KeysGone::All],
                db => &[KeysGone::Database(db)],
            }
        }
        raw::REDISMODULE_EVENT_SWAPDB => {
            // SAFETY: Redis passes a RedisModuleSwapDbInfo with this event.
            let info = unsafe { &*data.cast::<raw::RedisModuleSwapDbInfo>() };
            &[
                KeysGone::Database(info.dbnum_first),
                KeysGone::Database(info.dbnum_second),
            ]
        }
        _ => &[],
    };
    for &gone in gone {
        let _ = catch_unwind(AssertUnwindSafe(|| E::keys_gone(&cx, gone)));
    }
}

extern "C" fn unblocked<E: WaitEvents>(ctx: Ctx, _argv: *mut RawString, _argc: c_int) -> c_int {
    let Some(handle) = (unsafe { raw::RedisModule_GetBlockedClientHandle }) else {
        return raw::Status::Ok as c_int;
    };
    // SAFETY: ctx is the timeout context of a blocked client.
    let client = unsafe { handle(ctx) } as usize;
    let cx = Background { ctx };
    match catch_unwind(AssertUnwindSafe(|| E::unblocked(&cx, client))) {
        Ok(Some(Ok(reply))) => super::reply::send(ctx, &reply),
        Ok(Some(Err(error))) => super::reply_error(ctx, &error.reply_text()),
        Err(_) => super::reply_error(ctx, "ERR internal error in the rl module"),
        Ok(None) => {}
    }
    raw::Status::Ok as c_int
}

extern "C" fn timer_fired<E: WaitEvents>(ctx: Ctx, data: *mut c_void) {
    let cx = Background { ctx };
    let _ = catch_unwind(AssertUnwindSafe(|| E::timer(&cx, data as usize as u64)));
}

extern "C" fn disconnected<E: WaitEvents>(ctx: Ctx, client: *mut raw::RedisModuleBlockedClient) {
    let cx = Background { ctx };
    let _ = catch_unwind(AssertUnwindSafe(|| E::disconnected(&cx, client as usize)));
}

/// Redis's reply callback: sends the reply [`BlockedClient::answer`] gave.
extern "C" fn send_answer(ctx: Ctx, _argv: *mut RawString, _argc: c_int) -> c_int {
    if let Some(private) = unsafe { raw::RedisModule_GetBlockedClientPrivateData } {
        // SAFETY: ctx is the reply context; its private data is the boxed
        // answer of `answer`, freed later by free_answer.
        let reply = unsafe { private(ctx).cast::<CommandResult<Reply>>().as_ref() };
        match reply {
            Some(Ok(reply)) => super::reply::send(ctx, reply),
            Some(Err(error)) => super::reply_error(ctx, &error.reply_text()),
            None => {}
        }
    }
    raw::Status::Ok as c_int
}

extern "C" fn free_answer(_ctx: Ctx, privdata: *mut c_void) {
    if !privdata.is_null() {
        // SAFETY: the private data is the box `answer` made, freed once.
        drop(unsafe { Box::from_raw(privdata.cast::<CommandResult<Reply>>()) });
    }
}

#[cfg(test)]
mod tests {
    use super::serves_slot;

    const NODES: &[u8] = b"07c3 127.0.0.1:30004@40004 slave e7d1 0 1 4 connected\n\
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 5462 [5463->-292f] [5464-<-292f]\n\
292f 127.0.0.1:30002@40002 master - 0 2 2 connected 5461 5465-10922\n";

    #[test]
    fn reads_the_slots_this_node_serves_less_those_it_migrates_away() {
        assert!(serves_slot(NODES, 0));
        assert!(serves_slot(NODES, 5460));
        assert!(!serves_slot(NODES, 5461), "another node's");
        assert!(serves_slot(NODES, 5462));
        assert!(!serves_slot(NODES, 5463), "migrating away");
        assert!(!serves_slot(NODES, 5464), "importing, not yet served");
        assert!(!serves_slot(NODES, 16383));
        assert!(!serves_slot(b"", 0), "no myself line");
    }
}
