//! The module's `INFO` sections.

use std::ffi::{c_int, CString};
use std::sync::OnceLock;

use redis_module::raw;

/// Writes fields into the module's INFO sections (`INFO rl`, `INFO
/// modules`, `INFO everything`). Redis prefixes section and field names
/// with the module's name, `rl_`.
pub struct InfoWriter {
    ctx: *mut raw::RedisModuleInfoCtx,
}

/// Names become C strings: a name holding a nul byte is cut there.
fn c_name(name: &str) -> CString {
    let name = name.split('\0').next().unwrap_or_default();
    CString::new(name).unwrap_or_default()
}

impl InfoWriter {
    pub fn section(&mut self, name: &str) {
        if let Some(section) = unsafe { raw::RedisModule_InfoAddSection } {
            // SAFETY: ctx is the live INFO context; Redis copies the name.
            unsafe { section(self.ctx, c_name(name).as_ptr()) };
        }
    }

    pub fn field(&mut self, name: &str, value: i64) {
        if let Some(field) = unsafe { raw::RedisModule_InfoAddFieldLongLong } {
            // SAFETY: as above.
            unsafe { field(self.ctx, c_name(name).as_ptr(), value) };
        }
    }

    pub fn text_field(&mut self, name: &str, value: &str) {
        if let Some(field) = unsafe { raw::RedisModule_InfoAddFieldCString } {
            // SAFETY: as above.
            unsafe { field(self.ctx, c_name(name).as_ptr(), c_name(value).as_ptr()) };
        }
    }

    /// `name:field=value,...` on one line.
    pub fn dict(&mut self, name: &str, fields: &[(&str, i64)]) {
        let (Some(begin), Some(field), Some(end)) = (
            unsafe { raw::RedisModule_InfoBeginDictField },
            unsafe { raw::RedisModule_InfoAddFieldLongLong },
            unsafe { raw::RedisModule_InfoEndDictField },
        ) else {
            return;
        };
        // SAFETY: as above; every field goes between begin and end.
        unsafe {
            begin(self.ctx, c_name(name).as_ptr());
            for (label, value) in fields {
                field(self.ctx, c_name(label).as_ptr(), *value);
            }
            end(self.ctx);
        }
    }
}

static WRITE_INFO: OnceLock<fn(&mut InfoWriter)> = OnceLock::new();

/// Registers `write` as the module's INFO; false on servers without the API.
pub fn register(ctx: super::Ctx, write: fn(&mut InfoWriter)) -> bool {
    let _ = WRITE_INFO.set(write);
    match unsafe { raw::RedisModule_RegisterInfoFunc } {
        // SAFETY: ctx is the module's load context.
        Some(register) => (unsafe { register(ctx, Some(info)) }) == raw::Status::Ok as c_int,
        None => false,
    }
}

extern "C" fn info(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    if let Some(write) = WRITE_INFO.get() {
        write(&mut InfoWriter { ctx });
    }
}
