//! Replies the commands send, written straight to the client.

use std::os::raw::c_long;

use redis_module::raw;

use crate::algo::Decision;
use crate::ffi::Ctx;

pub enum Reply {
    /// `[allowed, limit, remaining, retry_after_ms, reset_after_ms]`.
    Decision(Decision),
    /// `+OK`.
    Ok,
}

impl Reply {
    pub fn send(&self, ctx: Ctx) {
        match self {
            Reply::Decision(decision) => send_integers(ctx, &decision.as_array()),
            Reply::Ok => {
                if let Some(simple) = unsafe { raw::RedisModule_ReplyWithSimpleString } {
                    // SAFETY: ctx is live; the string is static.
                    unsafe { simple(ctx, c"OK".as_ptr()) };
                }
            }
        }
    }
}

fn send_integers(ctx: Ctx, values: &[i64]) {
    let (Some(array), Some(integer)) = (unsafe { raw::RedisModule_ReplyWithArray }, unsafe {
        raw::RedisModule_ReplyWithLongLong
    }) else {
        return;
    };
    // SAFETY: ctx is live; the array is followed by exactly its elements.
    unsafe {
        array(ctx, values.len() as c_long);
        for &value in values {
            integer(ctx, value);
        }
    }
}
