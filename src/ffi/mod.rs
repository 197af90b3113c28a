//! The wall: every call of the raw Redis module API is in this folder, and
//! the rest of the module is safe Rust. Command dispatch, arguments, keys
//! and replication here; replies, command registration, data types, server
//! events, INFO and settings in the submodules.
//!
//! Every raw API is an `Option<fn>`: a missing one turns into an error reply
//! or a no-op here, never a panic.

pub mod blocking;
pub mod command;
pub mod config;
pub mod data_type;
pub mod info;
mod reply;
pub mod server;

use std::cell::Cell;
use std::ffi::{c_void, CStr, CString};
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use redis_module::raw;

use crate::error::{CommandError, CommandResult};
use crate::reply::Reply;
use command::CommandSpec;
use data_type::Stored;

pub type Ctx = *mut raw::RedisModuleCtx;
pub type RawString = *mut raw::RedisModuleString;

/// The longest TTL set (about 73 million years): a longer one could
/// overflow the server's expiry time, so it means no TTL.
pub const MAX_TTL_MS: i64 = i64::MAX / 4;

/// A command handler: parses, decides, writes, and returns the reply.
pub type Handler = fn(&Call) -> CommandResult<Reply>;

/// Runs the handler of `spec` for Redis: checks the registered arity,
/// counts the call, and turns errors and (as a last defence) panics into
/// error replies so that Redis never aborts. A panic is logged with its
/// message and place, and counted in `INFO rl`.
pub fn dispatch(ctx: Ctx, argv: *mut RawString, argc: c_int, spec: &CommandSpec) -> c_int {
    let argv: &[RawString] = match usize::try_from(argc) {
        // SAFETY: Redis passes argc valid pointers in argv.
        Ok(len) if !argv.is_null() => unsafe { std::slice::from_raw_parts(argv, len) },
        _ => &[],
    };
    let call = Call {
        ctx,
        argv,
        replay: None,
        context_flags: Cell::new(None),
    };
    let result = if spec.accepts_arg_count(argv.len()) {
        catch_unwind(AssertUnwindSafe(|| (spec.handler)(&call)))
    } else {
        Ok(Err(CommandError::WrongArity))
    };
    match &result {
        Ok(Ok(Reply::KeysReported)) => {}
        Ok(Ok(reply)) => spec.stats.record(Ok(reply)),
        Ok(Err(_)) => spec.stats.record(Err(())),
        Err(_) => {
            spec.stats.record(Err(()));
            crate::stats::PANICS.bump();
            call.log_warning(&panic_report(spec.name));
        }
    }
    match result {
        // Nothing to send now: a blocked client is answered later.
        Ok(Ok(Reply::KeysReported | Reply::Blocked)) => {}
        // A replica's master reads no reply: Redis would format one only to
        // drop it.
        Ok(Ok(_)) if call.comes_from_master() => {}
        Ok(Ok(reply)) => reply::send(ctx, &reply),
        Ok(Err(CommandError::WrongArity)) => {
            if let Some(wrong_arity) = unsafe { raw::RedisModule_WrongArity } {
                // SAFETY: ctx is the live context of this command.
                unsafe { wrong_arity(ctx) };
            }
        }
        Ok(Err(error)) => reply_error(ctx, &error.reply_text()),
        Err(_) => reply_error(ctx, "ERR internal error in the rl module"),
    }
    raw::Status::Ok as c_int
}

/// What the panic hook saw of the last panic: its message and place.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Keeps each panic's message and place for [`dispatch`] to log, then
/// lets the hook before (Rust's, which prints to stderr) run as well.
pub fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(mut last) = LAST_PANIC.lock() {
                *last = Some(info.to_string());
            }
            previous(info);
        }));
    });
}

/// The log line for a panic caught in `command`.
fn panic_report(command: &CStr) -> CString {
    let seen = LAST_PANIC.lock().ok().and_then(|mut last| last.take());
    let text = format!(
        "rl: {} {}; answered with an error. Please report this bug.",
        command.to_string_lossy(),
        seen.as_deref().unwrap_or("panicked (no message)"),
    );
    CString::new(text.replace(['\0', '\n'], " ")).unwrap_or_default()
}

pub fn reply_error(ctx: Ctx, text: &str) {
    let text = CString::new(text.replace('\0', " ")).unwrap_or_default();
    if let Some(reply_with_error) = unsafe { raw::RedisModule_ReplyWithError } {
        // SAFETY: ctx is live; Redis copies the message.
        unsafe { reply_with_error(ctx, text.as_ptr()) };
    }
}

/// One invocation of a command.
pub struct Call<'a> {
    ctx: Ctx,
    argv: &'a [RawString],
    replay: Option<&'a Replay<'a>>,
    /// `RedisModule_GetContextFlags`, once asked.
    context_flags: Cell<Option<u32>>,
}

/// The arguments of a command rebuilt from its replication form
/// (`RL.REPLAY`): its words, with the keys at their places.
pub struct Replay<'a> {
    pub words: Vec<&'a [u8]>,
    /// Each key's argument index in `words`, and its string.
    pub keys: Vec<(usize, RawString)>,
}

impl<'a> Call<'a> {
    /// The same context running the command that `replay` rebuilt.
    pub fn replaying(&self, replay: &'a Replay<'a>) -> Call<'a> {
        Call {
            ctx: self.ctx,
            argv: self.argv,
            replay: Some(replay),
            context_flags: self.context_flags.clone(),
        }
    }

    /// Number of arguments, the command name included.
    pub fn arg_count(&self) -> usize {
        match self.replay {
            Some(replay) => replay.words.len(),
            None => self.argv.len(),
        }
    }

    /// Whether the call comes from the master or an AOF being loaded: what
    /// the master accepted must run here whatever this server's settings.
    pub fn is_replicated_or_loading(&self) -> bool {
        server::may_receive()
            && self.context_flags()
                & (raw::REDISMODULE_CTX_FLAGS_REPLICATED | raw::REDISMODULE_CTX_FLAGS_LOADING)
                != 0
    }

    /// Whether the client that runs the call is connected over loopback TCP
    /// or a Unix socket. False inside a script or a function (Redis runs
    /// them on a client of its own, and on 7.0 a module cannot learn which
    /// client called the script), and wherever the client is unknown.
    pub fn is_local_client(&self) -> bool {
        if self.context_flags() & raw::REDISMODULE_CTX_FLAGS_LUA != 0 {
            return false;
        }
        let (Some(get_id), Some(get_info)) = (unsafe { raw::RedisModule_GetClientId }, unsafe {
            raw::RedisModule_GetClientInfoById
        }) else {
            return false;
        };
        // SAFETY: ctx is the live context of this command.
        let id = unsafe { get_id(self.ctx) };
        if id == 0 {
            return false;
        }
        // SAFETY: an all-zero client info is valid; Redis reads its version.
        let mut info: raw::RedisModuleClientInfo = unsafe { std::mem::zeroed() };
        info.version = 1;
        // SAFETY: info is a version 1 client info that Redis fills.
        let found = unsafe { get_info(std::ptr::from_mut(&mut info).cast(), id) };
        if found != raw::Status::Ok as c_int {
            return false;
        }
        if info.flags & u64::from(raw::REDISMODULE_CLIENTINFO_FLAG_UNIXSOCKET) != 0 {
            return true;
        }
        let addr: Vec<u8> = info
            .addr
            .iter()
            .map(|&c| c as u8)
            .take_while(|&b| b != 0)
            .collect();
        std::str::from_utf8(&addr)
            .ok()
            .and_then(|text| text.parse::<std::net::IpAddr>().ok())
            .is_some_and(|ip| match ip {
                std::net::IpAddr::V4(v4) => v4.is_loopback(),
                std::net::IpAddr::V6(v6) => {
                    v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
                }
            })
    }

    /// Whether the call comes from this replica's master.
    pub fn comes_from_master(&self) -> bool {
        server::is_replica() && self.context_flags() & raw::REDISMODULE_CTX_FLAGS_REPLICATED != 0
    }

    /// The raw RedisModuleString of argument `index` (when replaying, only
    /// keys have one).
    pub fn raw(&self, index: usize) -> CommandResult<RawString> {
        match self.replay {
            Some(replay) => replay
                .keys
                .iter()
                .find(|(at, _)| *at == index)
                .map(|&(_, key)| key)
                .ok_or(CommandError::Server("a replayed argument is not a key")),
            None => self
                .argv
                .get(index)
                .copied()
                .ok_or(CommandError::WrongArity),
        }
    }

    /// The bytes of argument `index`.
    pub fn arg(&self, index: usize) -> CommandResult<&'a [u8]> {
        match self.replay {
            Some(replay) => replay
                .words
                .get(index)
                .copied()
                .ok_or(CommandError::WrongArity),
            // SAFETY: Redis keeps the call's arguments for as long as argv
            // lives.
            None => Ok(unsafe { string_bytes(self.raw(index)?) }),
        }
    }

    /// The bytes of every argument from `index` on.
    pub fn args_from(&self, index: usize) -> impl Iterator<Item = &'a [u8]> + '_ {
        (index..self.arg_count()).filter_map(|i| self.arg(i).ok())
    }

    /// Logs `message` at warning level in the server log.
    pub fn log_warning(&self, message: &CStr) {
        if let Some(log) = unsafe { raw::RedisModule_Log } {
            // SAFETY: ctx is live; "%s" takes the nul-terminated message.
            unsafe {
                log(
                    self.ctx,
                    c"warning".as_ptr(),
                    c"%s".as_ptr(),
                    message.as_ptr(),
                )
            };
        }
    }

    /// Opens the key named by argument `index` for reading.
    pub fn read_key(&self, index: usize) -> CommandResult<Key> {
        Key::open(self.ctx, self.raw(index)?, KeyMode::Read)
    }

    /// Opens the key named by argument `index` for writing; closing it
    /// signals the key as modified (WATCH, client-side caching).
    pub fn write_key(&self, index: usize) -> CommandResult<Key> {
        Key::open(self.ctx, self.raw(index)?, KeyMode::Write)
    }

    /// Opens the key named by argument `index` for a call that may write
    /// it: one lookup serves both the decision and the write, and the key is
    /// signalled as modified only once [`Key::mark_written`] says so, so a
    /// denied call or a peek leaves WATCH untouched.
    pub fn update_key(&self, index: usize) -> CommandResult<Key> {
        Key::open(self.ctx, self.raw(index)?, KeyMode::Update)
    }

    /// Whether the call may run where Redis drops what it propagates:
    /// inside another module's `RedisModule_Call` without `!`. Such a call
    /// may not block, but neither may a script or a transaction, which
    /// cannot be told apart from it; all count, except a write from the
    /// master (its link propagates to this server's AOF).
    pub fn may_lose_propagation(&self) -> bool {
        let flags = self.context_flags();
        flags & raw::REDISMODULE_CTX_FLAGS_REPLICATED == 0
            && flags & (raw::REDISMODULE_CTX_FLAGS_DENY_BLOCKING | raw::REDISMODULE_CTX_FLAGS_LUA)
                != 0
    }

    fn context_flags(&self) -> u32 {
        if let Some(flags) = self.context_flags.get() {
            return flags;
        }
        let flags = match unsafe { raw::RedisModule_GetContextFlags } {
            // SAFETY: ctx is the live context of this command.
            Some(flags) => (unsafe { flags(self.ctx) }) as u32,
            None => 0,
        };
        self.context_flags.set(Some(flags));
        flags
    }

    /// Propagates `command value`: a command of one integer argument.
    pub fn replicate_with_integer(&self, command: &CStr, value: i64) -> CommandResult<()> {
        let replicate = unsafe { raw::RedisModule_Replicate }
            .ok_or(CommandError::Server("replication API missing"))?;
        // SAFETY: the format "l" matches one long long.
        let status = unsafe {
            replicate(
                self.ctx,
                command.as_ptr(),
                c"l".as_ptr(),
                value as std::os::raw::c_longlong,
            )
        };
        replication_status(status)
    }

    /// Propagates the call as it was received.
    pub fn replicate_verbatim(&self) {
        if let Some(verbatim) = unsafe { raw::RedisModule_ReplicateVerbatim } {
            // SAFETY: ctx is the live context of this command.
            unsafe { verbatim(self.ctx) };
        }
    }

    /// Sends a keyspace event in the module class (`d` in
    /// notify-keyspace-events) for the key at argument `index`, named after
    /// `command` in lower case.
    pub fn notify_module_event(&self, command: &CStr, index: usize) {
        if let Ok(key) = self.raw(index) {
            notify(self.ctx, command, key);
        }
    }

    /// Whether Redis asks only for the positions of the keys (getkeys-api).
    pub fn is_keys_position_request(&self) -> bool {
        match unsafe { raw::RedisModule_IsKeysPositionRequest } {
            // SAFETY: ctx is the live context of this command.
            Some(is_request) => (unsafe { is_request(self.ctx) }) != 0,
            None => false,
        }
    }

    /// Reports argument `index` as a key, answering a keys position request.
    pub fn report_key(&self, index: usize) {
        if let (Some(key_at_pos), Ok(pos)) =
            (unsafe { raw::RedisModule_KeyAtPos }, c_int::try_from(index))
        {
            // SAFETY: ctx is the live context of a keys position request.
            unsafe { key_at_pos(self.ctx, pos) };
        }
    }
}

/// Sends a keyspace event in the module class for `key`, named after
/// `command` in lower case.
fn notify(ctx: Ctx, command: &CStr, key: RawString) {
    let Some(notify) = (unsafe { raw::RedisModule_NotifyKeyspaceEvent }) else {
        return;
    };
    let event = lowercase_name(command.to_bytes());
    // SAFETY: ctx and key are live; Redis copies the event name.
    unsafe {
        notify(
            ctx,
            raw::REDISMODULE_NOTIFY_MODULE,
            event.as_ptr().cast(),
            key,
        )
    };
}

/// What `RedisModule_Replicate` answered, as a result.
fn replication_status(status: c_int) -> CommandResult<()> {
    if status == raw::Status::Ok as c_int {
        Ok(())
    } else {
        Err(CommandError::Server("replication failed"))
    }
}

/// A string object of the module's own, released on drop (Redis keeps it
/// for as long as a key holds it).
struct ModuleString {
    inner: RawString,
}

impl ModuleString {
    /// A copy of `bytes`; its pointer is null where the API is missing.
    fn new(bytes: &[u8]) -> ModuleString {
        let inner = match unsafe { raw::RedisModule_CreateString } {
            // SAFETY: a null context is allowed (no automatic memory);
            // Redis copies the bytes.
            Some(create) => unsafe {
                create(std::ptr::null_mut(), bytes.as_ptr().cast(), bytes.len())
            },
            None => std::ptr::null_mut(),
        };
        ModuleString { inner }
    }
}

impl Drop for ModuleString {
    fn drop(&mut self) {
        if let (false, Some(free)) = (self.inner.is_null(), unsafe { raw::RedisModule_FreeString })
        {
            // SAFETY: inner was created with a null context and is freed once.
            unsafe { free(std::ptr::null_mut(), self.inner) };
        }
    }
}

/// `name` in lower case as a nul-terminated C string, cut at 31 bytes:
/// keyspace event and INFO field names.
fn lowercase_name(name: &[u8]) -> [u8; 32] {
    let mut lower = [0u8; 32];
    for (slot, byte) in lower.iter_mut().zip(name.iter().take(31)) {
        *slot = byte.to_ascii_lowercase();
    }
    lower
}

/// The bytes of a RedisModuleString.
///
/// # Safety
/// `string` must be a live RedisModuleString that outlives `'a`.
unsafe fn string_bytes<'a>(string: RawString) -> &'a [u8] {
    let Some(ptr_len) = (unsafe { raw::RedisModule_StringPtrLen }) else {
        return &[];
    };
    let mut len = 0usize;
    // SAFETY: string is live (the caller's contract).
    let ptr = unsafe { ptr_len(string, &mut len) };
    if ptr.is_null() {
        return &[];
    }
    // SAFETY: Redis returns a pointer to len valid bytes.
    unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }
}

/// Turns off Redis's implicit "key modified" signal on closing a key opened
/// for writing: [`Key`] signals by itself, only for keys actually written.
pub fn take_over_modified_signals(ctx: Ctx) {
    if let Some(set_options) = unsafe { raw::RedisModule_SetModuleOptions } {
        // SAFETY: ctx is the context of the module's OnLoad.
        unsafe {
            set_options(
                ctx,
                raw::REDISMODULE_OPTION_NO_IMPLICIT_SIGNAL_MODIFIED as c_int,
            )
        };
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyMode {
    Read,
    Write,
    Update,
}

/// An open key, closed on drop; a key written is signalled as modified.
pub struct Key {
    inner: *mut raw::RedisModuleKey,
    ctx: Ctx,
    name: RawString,
    written: bool,
}

impl Key {
    fn open(ctx: Ctx, name: RawString, mode: KeyMode) -> CommandResult<Key> {
        let open =
            unsafe { raw::RedisModule_OpenKey }.ok_or(CommandError::Server("key API missing"))?;
        let flags = match mode {
            KeyMode::Read => raw::REDISMODULE_READ,
            KeyMode::Write | KeyMode::Update => raw::REDISMODULE_READ | raw::REDISMODULE_WRITE,
        };
        // SAFETY: ctx and name are live for the call.
        let inner = unsafe { open(ctx, name, flags as c_int) };
        Ok(Key {
            inner,
            ctx,
            name,
            written: mode == KeyMode::Write,
        })
    }

    /// Records that the call wrote this key (opened with
    /// [`Call::update_key`]), so that closing it signals the change.
    pub fn mark_written(&mut self) {
        self.written = true;
    }

    pub fn is_empty(&self) -> bool {
        if self.inner.is_null() {
            return true;
        }
        match unsafe { raw::RedisModule_KeyType } {
            // SAFETY: inner is an open key.
            Some(key_type) => {
                (unsafe { key_type(self.inner) }) == raw::REDISMODULE_KEYTYPE_EMPTY as c_int
            }
            None => true,
        }
    }

    /// The `T` in the key, if it holds one; WRONGTYPE if it holds anything
    /// else.
    pub fn value<T: Stored>(&mut self) -> CommandResult<Option<&mut T>> {
        if self.is_empty() {
            return Ok(None);
        }
        let (Some(get_type), Some(get_value)) =
            (unsafe { raw::RedisModule_ModuleTypeGetType }, unsafe {
                raw::RedisModule_ModuleTypeGetValue
            })
        else {
            return Err(CommandError::Server("module type API missing"));
        };
        // SAFETY: inner is an open, non-empty key.
        if unsafe { get_type(self.inner) } != *T::data_type().raw_type.borrow() {
            // Never written, so never signalled as modified.
            self.written = false;
            return Err(CommandError::WrongType);
        }
        // SAFETY: a key of T's data type holds a T (the contract of
        // `Stored`), owned by Redis and borrowed here while the key is open.
        Ok(unsafe { get_value(self.inner).cast::<T>().as_mut() })
    }

    /// The `T` in the key (open for writing), stored first from `make` if
    /// the key is empty; WRONGTYPE if it holds anything else.
    pub fn value_or_insert<T: Stored>(
        &mut self,
        make: impl FnOnce() -> T,
    ) -> CommandResult<&mut T> {
        if self.inner.is_null() {
            return Err(CommandError::Server("the key is not open for writing"));
        }
        if !self.is_empty() {
            return self
                .value::<T>()?
                .ok_or(CommandError::Server("module type API missing"));
        }
        let set_value = unsafe { raw::RedisModule_ModuleTypeSetValue }
            .ok_or(CommandError::Server("module type API missing"))?;
        let boxed = Box::into_raw(Box::new(make()));
        // SAFETY: inner is an empty key open for writing; Redis takes the
        // box, and frees it through the type's free callback.
        let status = unsafe {
            set_value(
                self.inner,
                *T::data_type().raw_type.borrow(),
                boxed.cast::<c_void>(),
            )
        };
        if status != raw::Status::Ok as c_int {
            // SAFETY: Redis refused the box, so it is still ours.
            drop(unsafe { Box::from_raw(boxed) });
            return Err(CommandError::Server("could not store the value"));
        }
        T::live_keys().created();
        // SAFETY: the box now belongs to the key, which outlives this borrow.
        unsafe { boxed.as_mut() }.ok_or(CommandError::Server("could not store the value"))
    }

    /// Stores `value` in the key (open for writing), replacing a `T` it holds.
    pub fn put<T: Stored>(&mut self, value: T) -> CommandResult<()> {
        if let Some(existing) = self.value::<T>()? {
            *existing = value;
            return Ok(());
        }
        self.value_or_insert(|| value).map(|_| ())
    }

    /// Starts loading the `T` in the key into the CPU cache, so that the
    /// work a call does before reading it overlaps that memory access (the
    /// limiter is the last of the pointers from the key: its object, the
    /// module's value record, the limiter). Both ends are fetched: the
    /// allocator's 48- and 80-byte slots often straddle two cache lines.
    /// False when the key holds another type.
    pub fn prefetch<T: Stored>(&mut self) -> bool {
        match self.value::<T>() {
            Ok(Some(value)) => {
                prefetch_value(value);
                true
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Sets the TTL, at least 1 ms, counted from `from_ms` (unix ms); `None`
    /// (or a TTL past [`MAX_TTL_MS`]) removes it. The expiry is absolute, so
    /// replicas and AOF loading, given the same times, set the same one.
    pub fn set_ttl(&self, ttl_ms: Option<i64>, from_ms: i64) {
        self.set_deadline(deadline(ttl_ms, from_ms));
    }

    /// Sets the expiry to `at` (unix ms), or removes it. Called after the
    /// value is stored, when the write must go on to be propagated; Redis
    /// refuses an expiry only for a key that holds no value or one before
    /// 1970, so the status is not checked.
    fn set_deadline(&self, at: Option<i64>) {
        let _ = self.set_expire_at(at.unwrap_or(NO_EXPIRE));
    }
}

const NO_EXPIRE: i64 = raw::REDISMODULE_NO_EXPIRE as i64;

#[cfg(target_arch = "x86_64")]
fn prefetch_value<T>(value: &T) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    let first = std::ptr::from_ref(value).cast::<i8>();
    // SAFETY: a prefetch never faults, whatever the address.
    unsafe {
        _mm_prefetch::<_MM_HINT_T0>(first);
        _mm_prefetch::<_MM_HINT_T0>(first.wrapping_add(std::mem::size_of::<T>().saturating_sub(1)));
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn prefetch_value<T>(_value: &T) {}

/// When a TTL of `ttl_ms`, at least 1 ms, counted from `from_ms` ends, in
/// unix ms; `None` for no TTL.
fn deadline(ttl_ms: Option<i64>, from_ms: i64) -> Option<i64> {
    ttl_ms
        .filter(|&ms| ms <= MAX_TTL_MS)
        .and_then(|ms| from_ms.checked_add(ms.max(1)))
}

/// Plain string values, for commands that keep their state as a string.
impl Key {
    /// The bytes of the string the key holds; `None` when the key is
    /// missing; WRONGTYPE when it holds anything but a string.
    ///
    /// Redis converts an integer-encoded or embedded string to a plain one
    /// for this read (its DMA access): the value and its DUMP stay the same
    /// and nothing is signalled, so reading stays invisible to WATCH.
    pub fn string(&mut self) -> CommandResult<Option<&[u8]>> {
        if self.is_empty() {
            return Ok(None);
        }
        let (Some(key_type), Some(dma)) = (unsafe { raw::RedisModule_KeyType }, unsafe {
            raw::RedisModule_StringDMA
        }) else {
            return Err(CommandError::Server("string API missing"));
        };
        // SAFETY: inner is an open, non-empty key.
        if (unsafe { key_type(self.inner) }) != raw::REDISMODULE_KEYTYPE_STRING as c_int {
            return Err(CommandError::WrongType);
        }
        let mut len = 0usize;
        // SAFETY: inner is an open string key; the bytes stay valid until
        // the key is written or closed, which the borrow of self prevents.
        let ptr = unsafe { dma(self.inner, &mut len, raw::REDISMODULE_READ as c_int) };
        if ptr.is_null() {
            return Err(CommandError::WrongType);
        }
        // SAFETY: Redis returned len valid bytes.
        Ok(Some(unsafe {
            std::slice::from_raw_parts(ptr.cast::<u8>(), len)
        }))
    }

    /// Stores `bytes` as the string value of the key (open for writing).
    /// An empty key takes the string itself; an existing string is resized
    /// and overwritten in place, so a key rewritten with a value of the same
    /// length allocates nothing. An existing TTL is kept (set the new one
    /// after).
    pub fn set_string(&mut self, bytes: &[u8]) -> CommandResult<()> {
        if self.inner.is_null() {
            return Err(CommandError::Server("the key is not open for writing"));
        }
        if self.is_empty() {
            let set = unsafe { raw::RedisModule_StringSet }
                .ok_or(CommandError::Server("string API missing"))?;
            let value = ModuleString::new(bytes);
            if value.inner.is_null() {
                return Err(CommandError::Server("could not create a string"));
            }
            // SAFETY: inner is an empty key open for writing; Redis retains
            // the string.
            if unsafe { set(self.inner, value.inner) } != raw::Status::Ok as c_int {
                return Err(CommandError::Server("could not store the string"));
            }
            return Ok(());
        }
        let (Some(truncate), Some(dma)) = (unsafe { raw::RedisModule_StringTruncate }, unsafe {
            raw::RedisModule_StringDMA
        }) else {
            return Err(CommandError::Server("string API missing"));
        };
        // SAFETY: inner is a key open for writing.
        if unsafe { truncate(self.inner, bytes.len()) } != raw::Status::Ok as c_int {
            return Err(CommandError::Server("could not store the string"));
        }
        let mut len = 0usize;
        let mode = (raw::REDISMODULE_READ | raw::REDISMODULE_WRITE) as c_int;
        // SAFETY: inner now holds a string of bytes.len() bytes.
        let ptr = unsafe { dma(self.inner, &mut len, mode) };
        if ptr.is_null() || len != bytes.len() {
            return Err(CommandError::Server("could not store the string"));
        }
        // SAFETY: ptr points to len writable bytes that bytes cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.cast::<u8>(), len) };
        Ok(())
    }

    /// Sets the key's expiry to the absolute unix time `unix_ms`
    /// (`NO_EXPIRE` removes it).
    pub fn set_expire_at(&self, unix_ms: i64) -> CommandResult<()> {
        if self.inner.is_null() {
            return Err(CommandError::Server("the key is not open for writing"));
        }
        let set_abs_expire = unsafe { raw::RedisModule_SetAbsExpire }
            .ok_or(CommandError::Server("expire API missing"))?;
        // SAFETY: inner is a non-empty key open for writing.
        if unsafe { set_abs_expire(self.inner, unix_ms) } != raw::Status::Ok as c_int {
            return Err(CommandError::Server("could not set the expiry"));
        }
        Ok(())
    }
}

impl Key {
    /// Lengthens the TTL to `ttl_ms` counted from `from_ms` if it ends
    /// sooner; never shortens it, and a key without a TTL keeps none. For
    /// writes that must not make a key expire earlier than its last write
    /// promised.
    pub fn extend_ttl(&self, ttl_ms: Option<i64>, from_ms: i64) {
        let (false, Some(get_abs_expire)) = (self.inner.is_null(), unsafe {
            raw::RedisModule_GetAbsExpire
        }) else {
            return;
        };
        // SAFETY: inner is an open key.
        let current = unsafe { get_abs_expire(self.inner) };
        if current == NO_EXPIRE {
            return;
        }
        match deadline(ttl_ms, from_ms) {
            Some(at) if at <= current => {}
            wanted => self.set_deadline(wanted),
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if self.written {
            if let Some(signal) = unsafe { raw::RedisModule_SignalModifiedKey } {
                // SAFETY: ctx and the key's name are live for the call.
                unsafe { signal(self.ctx, self.name) };
            }
        }
        if let (false, Some(close)) = (self.inner.is_null(), unsafe { raw::RedisModule_CloseKey }) {
            // SAFETY: inner was opened by RedisModule_OpenKey and is closed once.
            unsafe { close(self.inner) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_reported_with_its_message_and_place() {
        install_panic_hook();
        let line = line!() + 1;
        let caught = catch_unwind(|| panic!("boom {}", 42));
        assert!(caught.is_err());
        let report = panic_report(c"RL.TEST").into_string().unwrap();
        let place = format!("RL.TEST panicked at src/ffi/mod.rs:{line}:");
        assert!(report.starts_with(&format!("rl: {place}")), "{report}");
        assert!(report.contains("boom 42"), "{report}");
        assert!(!report.contains('\n'), "{report}");
        assert_eq!(
            panic_report(c"RL.TEST").into_string().unwrap(),
            "rl: RL.TEST panicked (no message); answered with an error. Please report this bug.",
            "a report takes the panic it tells of"
        );
    }
}
