//! The module's data types as Redis sees them: the callbacks that save,
//! load, rewrite, measure, digest, copy and free a value, generic over the
//! Rust type a data type stores.

use std::ffi::{c_void, CStr};
use std::os::raw::c_int;

use redis_module::native_types::RedisType;
use redis_module::raw;

use super::RawString;
use crate::stats::LiveKeys;

/// The encoding version every type writes; bump it when an encoding changes
/// (each type's `decode` still reads every earlier version). Version 2: the
/// compact bucket ([`crate::types::bucket`]); the other types' encodings
/// are those of version 1.
pub const ENCODING_VERSION: i32 = 2;

/// A Rust value stored in keys of its own Redis data type.
///
/// # Safety
/// [`Stored::data_type`] must return a data type made with
/// [`type_methods`] of `Self` and used by no other Rust type: the value
/// behind a key of that type is then known to be a `Self`.
pub unsafe trait Stored: Sized + Clone {
    /// The word that names the type in `RL.RESTORESTATE`.
    const KIND: &'static CStr;
    fn data_type() -> &'static RedisType;
    fn encode(&self, out: &mut Vec<u8>);
    /// The payload AOF rewrite emits in `RL.RESTORESTATE`: in the oldest
    /// encoding that holds the value, so that an older build can load the
    /// file (the way back after an upgrade).
    fn restore_payload(&self, out: &mut Vec<u8>) {
        self.encode(out);
    }
    fn decode(bytes: &[u8]) -> Option<Self>;
    /// Heap bytes owned by the value, beyond its own size.
    fn heap_size(&self) -> usize;
    /// How many keys hold a value of this type.
    fn live_keys() -> &'static LiveKeys;
}

/// A value saved once per RDB file, beside the keys of one data type (its
/// aux data): one signed integer.
pub trait AuxValue {
    /// The value when none is known: Redis 7.2+ and Valkey then save
    /// nothing, so such an RDB loads without the module.
    const UNKNOWN: i64;
    fn save() -> i64;
    fn load(value: i64);
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

/// `methods` that also save and load `A` before the keys of each RDB.
pub const fn with_aux<A: AuxValue>(
    methods: raw::RedisModuleTypeMethods,
) -> raw::RedisModuleTypeMethods {
    raw::RedisModuleTypeMethods {
        aux_load: Some(aux_load::<A>),
        aux_save: Some(aux_save::<A>),
        aux_save2: Some(aux_save_when_known::<A>),
        aux_save_triggers: raw::REDISMODULE_AUX_BEFORE_RDB as i32,
        ..methods
    }
}

/// Creates `data_type` (from the module's OnLoad).
pub fn create(ctx: super::Ctx, data_type: &RedisType) -> Result<(), String> {
    data_type
        .create_data_type(ctx)
        .map_err(|message| format!("could not create a data type: {message}"))
}

fn encoded<T: Stored>(value: *mut c_void) -> Option<Vec<u8>> {
    encoded_with(value, T::encode)
}

fn encoded_with<T: Stored>(value: *mut c_void, encode: fn(&T, &mut Vec<u8>)) -> Option<Vec<u8>> {
    // SAFETY: Redis hands back the pointer stored under T's type.
    let value = unsafe { value.cast::<T>().as_ref() }?;
    let mut out = Vec::new();
    encode(value, &mut out);
    Some(out)
}

extern "C" fn rdb_load<T: Stored>(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    if !(1..=ENCODING_VERSION).contains(&encver) {
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

/// The command AOF rewrite emits to rebuild a value exactly.
pub const RESTORE_COMMAND: &CStr = c"RL.RESTORESTATE";

extern "C" fn aof_rewrite<T: Stored>(
    aof: *mut raw::RedisModuleIO,
    key: RawString,
    value: *mut c_void,
) {
    if let (Some(bytes), Some(emit)) = (encoded_with(value, T::restore_payload), unsafe {
        raw::RedisModule_EmitAOF
    }) {
        // SAFETY: the format "scb" matches key, C string, buffer and length.
        unsafe {
            emit(
                aof,
                RESTORE_COMMAND.as_ptr(),
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

/// Saves `A` (Redis 7.0, which always writes the aux field).
extern "C" fn aux_save<A: AuxValue>(rdb: *mut raw::RedisModuleIO, _when: c_int) {
    if let Some(save) = unsafe { raw::RedisModule_SaveSigned } {
        // SAFETY: rdb is the live saving stream.
        unsafe { save(rdb, A::save()) };
    }
}

/// Saves `A` (Redis 7.2+ and Valkey): nothing when it is unknown.
extern "C" fn aux_save_when_known<A: AuxValue>(rdb: *mut raw::RedisModuleIO, when: c_int) {
    if A::save() != A::UNKNOWN {
        aux_save::<A>(rdb, when);
    }
}

extern "C" fn aux_load<A: AuxValue>(
    rdb: *mut raw::RedisModuleIO,
    encver: c_int,
    _when: c_int,
) -> c_int {
    // The value is one signed integer in every encoding version.
    let (true, Some(load)) = ((1..=ENCODING_VERSION).contains(&encver), unsafe {
        raw::RedisModule_LoadSigned
    }) else {
        return raw::Status::Err as c_int;
    };
    // SAFETY: rdb is the live loading stream.
    A::load(unsafe { load(rdb) });
    raw::Status::Ok as c_int
}
