//! Module settings through Redis's module configuration API.

use std::ffi::{c_char, c_int, c_longlong, c_void, CStr};
use std::sync::atomic::{AtomicI64, Ordering};

use redis_module::raw;

/// Registers the numeric setting `rl.<name>` whose value lives in `value`.
pub fn register_numeric(
    ctx: super::Ctx,
    name: &'static CStr,
    default: i64,
    (min, max): (i64, i64),
    value: &'static AtomicI64,
) -> Result<(), String> {
    let register = unsafe { raw::RedisModule_RegisterNumericConfig }
        .ok_or("this server lacks the module configuration API")?;
    // SAFETY: ctx is the module's load context; the name is static and the
    // private data is the value, which lives for good.
    let status = unsafe {
        register(
            ctx,
            name.as_ptr(),
            default,
            raw::REDISMODULE_CONFIG_DEFAULT,
            min,
            max,
            Some(get_numeric),
            Some(set_numeric),
            None,
            std::ptr::from_ref(value).cast_mut().cast::<c_void>(),
        )
    };
    registered(status, name)
}

/// Registers the setting `rl.<name>` that takes one of `words`, each
/// standing for its number, kept in `value`.
pub fn register_enum(
    ctx: super::Ctx,
    name: &'static CStr,
    default: i64,
    words: &[(&'static CStr, i64)],
    value: &'static AtomicI64,
) -> Result<(), String> {
    let register = unsafe { raw::RedisModule_RegisterEnumConfig }
        .ok_or("this server lacks the module configuration API")?;
    let invalid = || format!("the setting {} is invalid", name.to_string_lossy());
    let mut names: Vec<*const c_char> = words.iter().map(|(word, _)| word.as_ptr()).collect();
    let numbers = words
        .iter()
        .map(|&(_, number)| c_int::try_from(number))
        .collect::<Result<Vec<c_int>, _>>()
        .map_err(|_| invalid())?;
    let (Ok(count), Ok(default)) = (c_int::try_from(words.len()), c_int::try_from(default)) else {
        return Err(invalid());
    };
    // SAFETY: ctx is the module's load context; Redis copies the words and
    // numbers; the private data is the value, which lives for good.
    let status = unsafe {
        register(
            ctx,
            name.as_ptr(),
            default,
            raw::REDISMODULE_CONFIG_DEFAULT,
            names.as_mut_ptr(),
            numbers.as_ptr(),
            count,
            Some(get_enum),
            Some(set_enum),
            None,
            std::ptr::from_ref(value).cast_mut().cast::<c_void>(),
        )
    };
    registered(status, name)
}

/// What a registration answered, as a result naming the setting.
fn registered(status: c_int, name: &CStr) -> Result<(), String> {
    if status != raw::Status::Ok as c_int {
        return Err(format!(
            "could not register the setting {}",
            name.to_string_lossy()
        ));
    }
    Ok(())
}

/// Loads what redis.conf or MODULE LOADEX gave the registered settings.
pub fn load(ctx: super::Ctx) -> Result<(), String> {
    let load_configs = unsafe { raw::RedisModule_LoadConfigs }
        .ok_or("this server lacks the module configuration API")?;
    // SAFETY: ctx is the module's load context, after every registration.
    if unsafe { load_configs(ctx) } != raw::Status::Ok as c_int {
        return Err("could not load the module's settings".to_owned());
    }
    Ok(())
}

extern "C" fn get_numeric(_name: *const c_char, privdata: *mut c_void) -> c_longlong {
    // SAFETY: privdata is the &'static AtomicI64 given at registration.
    unsafe { privdata.cast::<AtomicI64>().as_ref() }.map_or(0, |v| v.load(Ordering::Relaxed))
}

extern "C" fn set_numeric(
    _name: *const c_char,
    value: c_longlong,
    privdata: *mut c_void,
    _error: *mut *mut raw::RedisModuleString,
) -> c_int {
    // SAFETY: privdata is the &'static AtomicI64 given at registration;
    // Redis has checked the range.
    match unsafe { privdata.cast::<AtomicI64>().as_ref() } {
        Some(setting) => {
            setting.store(value, Ordering::Relaxed);
            raw::Status::Ok as c_int
        }
        None => raw::Status::Err as c_int,
    }
}

extern "C" fn get_enum(_name: *const c_char, privdata: *mut c_void) -> c_int {
    c_int::try_from(get_numeric(_name, privdata)).unwrap_or(0)
}

extern "C" fn set_enum(
    name: *const c_char,
    value: c_int,
    privdata: *mut c_void,
    error: *mut *mut raw::RedisModuleString,
) -> c_int {
    set_numeric(name, c_longlong::from(value), privdata, error)
}
