//! How writes reach replicas and the AOF while staying deterministic.
//!
//! A write travels exactly as the client sent it (`RedisModule_ReplicateVerbatim`:
//! no command lookup, no new strings). A call that pinned its time with `AT`
//! carries that time in its words. A call that read the server clock does
//! not, so the stream carries the master's clock beside the writes:
//! `RL.CLOCK unix_ms` goes out before a write whenever the write's ms
//! differs from the last one the stream announced, which costs one extra
//! command per millisecond, not one per write. Replicas and AOF loading run
//! writes that pinned no time at the last announced ms.
//!
//! A consumer that starts reading a stream part-way must know the clock in
//! effect at that point:
//! - A fork (BGSAVE, a replica's full sync, an AOF rewrite) starts the
//!   stream that follows its snapshot, and a change of role or the end of a
//!   load starts a new stream: after each, the next write announces its ms
//!   again, whatever was announced before.
//! - An RDB carries the clock in effect at its point of the stream (aux
//!   data of the bucket type): the clock this server announced when it is
//!   a master, the one its master announced when it is a replica. A replica
//!   that restarts from its RDB and resumes with a partial sync, and a
//!   replica of a replica that syncs from it, need that.
//!
//! An announcement made where Redis may drop what a call propagates (inside
//! another module's `RedisModule_Call` without `!`) is not remembered: the
//! next write announces its ms again.

#![forbid(unsafe_code)]

use std::cell::Cell;
use std::ffi::CStr;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::config::{self, ClientTime};
use crate::error::{CommandError, CommandResult};
use crate::ffi::data_type::AuxValue;
use crate::ffi::{server, Call, Ctx};

/// The command that announces the clock.
pub const CLOCK_COMMAND: &CStr = c"RL.CLOCK";

/// No clock known.
const UNKNOWN: i64 = i64::MIN;

/// The ms this server's outgoing stream last announced.
static ANNOUNCED: AtomicI64 = AtomicI64::new(UNKNOWN);
/// The ms the master's stream (or the AOF or RDB being loaded) last announced.
static RECEIVED: AtomicI64 = AtomicI64::new(UNKNOWN);
/// Writes from the master or a file that ran on this server's clock, since
/// no clock was known (`INFO rl`).
static UNCLOCKED_WRITES: AtomicI64 = AtomicI64::new(0);

/// The clock of one call: the time it read, if it read one, which its
/// write then announces.
pub struct CallClock<'a> {
    call: &'a Call<'a>,
    /// The time the call read from the clock (for its decision, or for its
    /// TTLs when pinned with `AT`), if it read one.
    read: Cell<Option<i64>>,
    /// Whether the call runs at the clock's time (pins none with `AT`).
    on_clock: Cell<bool>,
}

impl<'a> CallClock<'a> {
    pub fn new(call: &'a Call<'a>) -> Self {
        CallClock {
            call,
            read: Cell::new(None),
            on_clock: Cell::new(false),
        }
    }

    /// The time a call pins with `AT`, if the client may pin one
    /// (`rl.client-time`); writes from a master or a file being loaded
    /// always may.
    pub fn pinned(&self, at: Option<i64>) -> CommandResult<Option<i64>> {
        let Some(at) = at else {
            return Ok(None);
        };
        self.may_choose_time("AT")?;
        Ok(Some(at))
    }

    /// Whether the client may choose a limiter's time (`rl.client-time`):
    /// `what` (AT, or a stored state, which holds its own clock) is refused
    /// otherwise. Writes from a master or a file being loaded always may.
    pub fn may_choose_time(&self, what: &str) -> CommandResult<()> {
        let setting = config::client_time();
        let allowed = match setting {
            ClientTime::Yes => true,
            ClientTime::Local => {
                self.call.is_replicated_or_loading() || self.call.is_local_client()
            }
            ClientTime::No => self.call.is_replicated_or_loading(),
        };
        if !allowed {
            return Err(CommandError::invalid(format!(
                "{what} is not allowed for this client (rl.client-time is '{}')",
                setting.word()
            )));
        }
        Ok(())
    }

    /// The call's time: the one it pins with `AT` (see [`CallClock::pinned`]),
    /// or [`CallClock::now_ms`].
    pub fn time(&self, at: Option<i64>) -> CommandResult<i64> {
        Ok(self.pinned(at)?.unwrap_or_else(|| self.now_ms()))
    }

    /// The time, in unix ms, of a call that pins none with `AT`: the server
    /// clock, or for a write from the master or from a file being loaded,
    /// the clock the stream announced.
    pub fn now_ms(&self) -> i64 {
        self.on_clock.set(true);
        let now = stream_or_server_clock(self.call, true);
        self.read.set(Some(now));
        now
    }

    /// The unix ms the TTLs this call sets count from, for a limiter it ran
    /// at `at_ms`: that time when the call runs on the clock. A call pinned
    /// with `AT` (a time that may be far from the server's) counts them from
    /// the clock as it writes, read once and announced to replicas and the
    /// AOF like a decision's time, so that they set the same expiry. A write
    /// from a stream that announced no clock (one from an earlier build) is
    /// then not counted as unclocked, since its decision pinned its time.
    pub fn ttl_from(&self, at_ms: i64) -> i64 {
        if self.on_clock.get() {
            return at_ms;
        }
        self.read.get().unwrap_or_else(|| {
            let now = stream_or_server_clock(self.call, false);
            self.read.set(Some(now));
            now
        })
    }

    /// Propagates the call's write, announcing the ms it read (see the
    /// module's docs above).
    pub fn publish(&self) -> CommandResult<()> {
        if let Some(ms) = self.read.get() {
            if ANNOUNCED.load(Ordering::Relaxed) != ms {
                self.call.replicate_with_integer(CLOCK_COMMAND, ms)?;
                // Where what a call propagates may be dropped, the next write
                // announces its ms again.
                let sent = if self.call.may_lose_propagation() {
                    UNKNOWN
                } else {
                    ms
                };
                ANNOUNCED.store(sent, Ordering::Relaxed);
            }
        }
        self.call.replicate_verbatim();
        Ok(())
    }
}

fn stream_or_server_clock(call: &Call, count_unclocked: bool) -> i64 {
    if call.is_replicated_or_loading() {
        match RECEIVED.load(Ordering::Relaxed) {
            UNKNOWN if count_unclocked => {
                if UNCLOCKED_WRITES.fetch_add(1, Ordering::Relaxed) == 0 {
                    call.log_warning(
                        c"rl: a replicated write pinned no time and no RL.CLOCK preceded it; it runs on this server's clock (INFO rl counts them: unclocked_writes)",
                    );
                }
            }
            UNKNOWN => {}
            announced => return announced,
        }
    }
    server::clock_ms()
}

/// How many writes from the master or a file ran on this server's clock.
pub fn unclocked_writes() -> i64 {
    UNCLOCKED_WRITES.load(Ordering::Relaxed)
}

/// Records the clock the master (or the file being loaded) announced.
pub fn received(ms: i64) {
    RECEIVED.store(ms, Ordering::Relaxed);
}

/// The stream's clock in RDB files: the clock in effect at this point of
/// the stream that a snapshot taken now would be followed by. A master that
/// announced none yet will announce before its next write, so any value
/// serves; the received one covers a replica that has not learnt its role
/// yet (a cluster replica learns it after loading).
pub struct StreamClock;

impl AuxValue for StreamClock {
    const UNKNOWN: i64 = UNKNOWN;

    fn save() -> i64 {
        match ANNOUNCED.load(Ordering::Relaxed) {
            announced if announced != UNKNOWN && !server::is_replica() => announced,
            _ => RECEIVED.load(Ordering::Relaxed),
        }
    }

    fn load(value: i64) {
        received(value);
    }
}

/// After a fork, a change of role or the end of a load, the next write
/// announces its ms again.
fn restart_stream() {
    ANNOUNCED.store(UNKNOWN, Ordering::Relaxed);
}

/// Learns the server's role and follows the events that start a stream.
pub fn init(ctx: Ctx) -> Result<(), &'static str> {
    server::follow_events(ctx, restart_stream)
}
