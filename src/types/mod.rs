//! The native data types the limiters are stored in, with their persistence:
//! RDB (and so DUMP/RESTORE and replication sync), AOF rewrite, COPY,
//! MEMORY USAGE and DEBUG DIGEST.
//!
//! Each type has one byte encoding, versioned by the type's encoding version,
//! used for RDB, digests and the `RL.RESTORESTATE` command that AOF rewrite
//! emits.

pub mod bucket;
pub mod codec;
pub mod leases;
pub mod log;

use std::ffi::{c_void, CStr};
use std::os::raw::c_int;

use redis_module::native_types::RedisType;
use redis_module::raw;

use crate::error::{CommandError, CommandResult};
use crate::ffi::{Key, RawString};
use crate::stats::LiveKeys;

/// The encoding version every type writes; bump it when an encoding changes.
pub const ENCODING_VERSION: i32 = 1;

/// A Rust value stored in a key of its own Redis data type.
pub trait Stored: Sized + Clone {
    /// The word that names the type in `RL.RESTORESTATE`.
    const KIND: &'static CStr;
    fn data_type() -> &'static RedisType;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &[u8]) -> Option<Self>;
    /// Heap bytes owned by the value, beyond its own size.
    fn heap_size(&self) -> usize;
    /// How many keys hold a value of this type.
    fn live_keys() -> &'static LiveKeys;
}

/// Each type's key count, labelled for `INFO rl`.
pub fn live_keys() -> [(&'static CStr, &'static LiveKeys); 3] {
    [
        (c"keys_tokenbucket", bucket::Bucket::live_keys()),
        (
            c"keys_slidelog",
            crate::algo::sliding_log::LogState::live_keys(),
        ),
        (c"keys_leases", crate::algo::leases::LeaseState::live_keys()),
    ]
}

/// The value in `key`, if it holds a `T`; WRONGTYPE if it holds anything else.
pub fn get<T: Stored>(key: &mut Key) -> CommandResult<Option<&mut T>> {
    // SAFETY: keys of T::data_type() only ever hold a T.
    unsafe { key.value::<T>(T::data_type()) }
}

/// Starts loading the `T` in `key` into the CPU cache, so that the work a
/// call does before reading it overlaps that memory access (the limiter is
/// the last of the pointers from the key: its object, the module's value
/// record, the limiter). Both ends are fetched: the allocator's 48- and
/// 80-byte slots often straddle two cache lines. False when the key holds
/// another type.
pub fn prefetch<T: Stored>(key: &mut Key) -> bool {
    match get::<T>(key) {
        Ok(Some(value)) => {
            prefetch_value(value);
            true
        }
        Ok(None) => true,
        Err(_) => false,
    }
}

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

/// Stores `value` in `key` (open for writing), replacing a `T` it holds.
pub fn put<T: Stored>(key: &mut Key, value: T) -> CommandResult<()> {
    match get::<T>(key)? {
        Some(existing) => {
            *existing = value;
            Ok(())
        }
        None => {
            // SAFETY: the value stored under T::data_type() is a T.
            unsafe { key.set_value(T::data_type(), value) }?;
            T::live_keys().created();
            Ok(())
        }
    }
}

/// The type callbacks of `T`, for `RedisType::new`.
pub const fn type_methods<T: Stored>() -> raw::RedisModuleTypeMethods {
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(rdb_load::<T>),
        rdb_save: Some(rdb_save::<T>),
        aof_rewrite: Some(aof_rewrite::<T>),
        mem_usage: Some(mem_usage::<T>),
        digest: Some(digest::<T>),
        free: Some(free::<T>),
        aux_load: None,
        aux_save: None,
        aux_save_triggers: 0,
        free_effort: None,
        unlink: None,
        copy: Some(copy::<T>),
        defrag: None,
        mem_usage2: None,
        free_effort2: None,
        unlink2: None,
        copy2: None,
        aux_save2: None,
    }
}

fn encoded<T: Stored>(value: *mut c_void) -> Option<Vec<u8>> {
    // SAFETY: Redis hands back the pointer stored under T's type.
    let value = unsafe { value.cast::<T>().as_ref() }?;
    let mut out = Vec::new();
    value.encode(&mut out);
    Some(out)
}

extern "C" fn rdb_load<T: Stored>(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    if encver != ENCODING_VERSION {
        return std::ptr::null_mut();
    }
    let (Some(load), Some(free)) = (unsafe { raw::RedisModule_LoadStringBuffer }, unsafe {
        raw::RedisModule_Free
    }) else {
        return std::ptr::null_mut();
    };
    let mut len = 0usize;
    // SAFETY: rdb is the live loading stream.
    let buffer = unsafe { load(rdb, &mut len) };
    if buffer.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: Redis returned len valid bytes, which we free after decoding.
    let bytes = unsafe { std::slice::from_raw_parts(buffer.cast::<u8>(), len) };
    let decoded = std::panic::catch_unwind(|| T::decode(bytes)).ok().flatten();
    // SAFETY: the buffer was allocated by Redis for us.
    unsafe { free(buffer.cast::<c_void>()) };
    decoded.map_or(std::ptr::null_mut(), |value| {
        T::live_keys().created();
        Box::into_raw(Box::new(value)).cast::<c_void>()
    })
}

extern "C" fn rdb_save<T: Stored>(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    if let (Some(bytes), Some(save)) = (encoded::<T>(value), unsafe {
        raw::RedisModule_SaveStringBuffer
    }) {
        // SAFETY: rdb is the live saving stream; Redis copies the bytes.
        unsafe { save(rdb, bytes.as_ptr().cast(), bytes.len()) };
    }
}

extern "C" fn aof_rewrite<T: Stored>(
    aof: *mut raw::RedisModuleIO,
    key: RawString,
    value: *mut c_void,
) {
    if let (Some(bytes), Some(emit)) = (encoded::<T>(value), unsafe { raw::RedisModule_EmitAOF }) {
        // SAFETY: the format "scb" matches key, C string, buffer and length.
        unsafe {
            emit(
                aof,
                c"RL.RESTORESTATE".as_ptr(),
                c"scb".as_ptr(),
                key,
                T::KIND.as_ptr(),
                bytes.as_ptr(),
                bytes.len(),
            )
        };
    }
}

extern "C" fn mem_usage<T: Stored>(value: *const c_void) -> usize {
    // SAFETY: Redis hands back the pointer stored under T's type.
    let heap = unsafe { value.cast::<T>().as_ref() }.map_or(0, T::heap_size);
    std::mem::size_of::<T>() + heap
}

extern "C" fn digest<T: Stored>(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    let (Some(bytes), Some(add), Some(end)) = (
        encoded::<T>(value),
        unsafe { raw::RedisModule_DigestAddStringBuffer },
        unsafe { raw::RedisModule_DigestEndSequence },
    ) else {
        return;
    };
    // SAFETY: md is the live digest; Redis reads len bytes.
    unsafe {
        add(md, bytes.as_ptr().cast(), bytes.len());
        end(md);
    }
}

extern "C" fn free<T: Stored>(value: *mut c_void) {
    if !value.is_null() {
        // SAFETY: the value was created by Box::into_raw of a T.
        drop(unsafe { Box::from_raw(value.cast::<T>()) });
        T::live_keys().freed();
    }
}

extern "C" fn copy<T: Stored>(
    _from: RawString,
    _to: RawString,
    value: *const c_void,
) -> *mut c_void {
    // SAFETY: Redis hands back the pointer stored under T's type.
    match unsafe { value.cast::<T>().as_ref() } {
        Some(value) => {
            T::live_keys().created();
            Box::into_raw(Box::new(value.clone())).cast::<c_void>()
        }
        None => std::ptr::null_mut(),
    }
}

/// Decodes a `RL.RESTORESTATE` payload of type `T`.
pub fn decode<T: Stored>(payload: &[u8]) -> CommandResult<T> {
    T::decode(payload).ok_or_else(|| {
        CommandError::invalid(format!(
            "payload is not a valid {} state",
            T::KIND.to_string_lossy()
        ))
    })
}
