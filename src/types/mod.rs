//! The native data types the limiters are stored in, with their persistence:
//! RDB (and so DUMP/RESTORE and replication sync), AOF rewrite, COPY,
//! MEMORY USAGE and DEBUG DIGEST (the callbacks are in
//! [`crate::ffi::data_type`]).
//!
//! Each type has one byte encoding, versioned by the module's encoding
//! version, used for RDB, digests and the `RL.RESTORESTATE` command that AOF
//! rewrite emits. A new type is one entry in [`stored_types`].

pub mod bucket;
pub mod codec;
mod held;
pub mod leases;
pub mod log;
pub mod quota;
pub mod window;

use std::ffi::CStr;

use redis_module::native_types::RedisType;

use crate::algo::leases::LeaseState;
use crate::algo::sliding_log::LogState;
use crate::algo::window::WindowState;
use crate::error::{CommandError, CommandResult};
use crate::ffi::data_type::Stored;
use crate::ffi::Key;
use crate::stats::LiveKeys;
use bucket::Bucket;
use quota::Quota;

/// One data type, as the commands that work on any of them see it.
pub struct StoredType {
    /// Its word in `RL.RESTORESTATE` (and `keys_<kind>` in `INFO rl`).
    pub kind: &'static CStr,
    pub data_type: &'static RedisType,
    pub live_keys: &'static LiveKeys,
    /// Stores a `RL.RESTORESTATE` payload of this type in a key.
    pub restore: fn(&mut Key, &[u8]) -> CommandResult<()>,
}

fn stored_type<T: Stored>() -> StoredType {
    StoredType {
        kind: T::KIND,
        data_type: T::data_type(),
        live_keys: T::live_keys(),
        restore: restore::<T>,
    }
}

/// Every data type of the module.
pub fn stored_types() -> [StoredType; 5] {
    [
        stored_type::<Bucket>(),
        stored_type::<LogState>(),
        stored_type::<LeaseState>(),
        stored_type::<WindowState>(),
        stored_type::<Quota>(),
    ]
}

fn restore<T: Stored>(key: &mut Key, payload: &[u8]) -> CommandResult<()> {
    let state = T::decode(payload).ok_or_else(|| {
        CommandError::invalid(format!(
            "payload is not a valid {} state",
            T::KIND.to_string_lossy()
        ))
    })?;
    key.put(state)
}
