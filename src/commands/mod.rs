//! The commands that are not a limiter kind's own (those live in
//! [`crate::limiters`]), and [`all()`]: the one list of every command, which
//! registration, RL.REPLAY and `INFO rl` read.

#![forbid(unsafe_code)]

pub mod all;
pub mod cell;
pub mod clock;
pub mod inspect;
pub mod replay;
pub mod restore_state;

use crate::ffi::command::CommandSpec;
use crate::ffi::info::InfoWriter;
use crate::limiters::{acquire, quota, reserve, sliding_log, token_bucket, window};

/// Every command the module registers.
pub fn all() -> [&'static CommandSpec; 17] {
    [
        &token_bucket::TOKENBUCKET,
        &token_bucket::COST,
        &sliding_log::SLIDELOG,
        &window::WINDOW,
        &quota::QUOTA,
        &all::ALL,
        &reserve::RESERVE,
        &reserve::SETTLE,
        &reserve::CANCEL,
        &acquire::ACQUIRE,
        &acquire::RELEASE,
        &acquire::EXTEND,
        &inspect::INSPECT,
        &restore_state::RESTORESTATE,
        &replay::REPLAY,
        &cell::THROTTLE,
        &clock::CLOCK,
    ]
}

/// `INFO rl`. `# rl_commands`: `rl_<command>:calls=..,allowed=..,denied=..,errors=..`
/// (the command in lower case, less a leading `rl.`); `# rl_keys`:
/// `rl_keys_<type>:<count>`; `# rl_waits`: `rl_waiting` (clients waiting
/// now) and `rl_waits` (waits started and how they ended); `# rl_replication`: `rl_unclocked_writes`;
/// `# rl_health`: `rl_panics`, panics caught (there should be none);
/// `# rl_calendar`: `rl_tzdb_version`, the bundled IANA time zone database.
pub fn write_info(info: &mut InfoWriter) {
    info.section("commands");
    for spec in all() {
        let name = spec.name.to_string_lossy().to_ascii_lowercase();
        let name = name.strip_prefix("rl.").unwrap_or(&name);
        info.dict(name, &spec.stats.fields());
    }
    info.section("keys");
    for stored in crate::types::stored_types() {
        let label = format!("keys_{}", stored.kind.to_string_lossy());
        info.field(&label, stored.live_keys.get());
    }
    info.section("waits");
    info.dict("waiting", &crate::limiters::waiting_fields());
    info.dict("waits", &crate::limiters::wait::wait_fields());
    info.section("replication");
    info.field("unclocked_writes", crate::replication::unclocked_writes());
    info.section("health");
    info.field("panics", crate::stats::PANICS.get());
    info.section("calendar");
    info.text_field("tzdb_version", crate::algo::quota::TZDB_VERSION);
}
