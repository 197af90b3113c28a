//! Sends a [`Reply`] to the client.

use std::ffi::CStr;
use std::os::raw::c_long;

use redis_module::raw;

use super::Ctx;
use crate::algo::Decision;
use crate::reply::{Reply, Value};

pub fn send(ctx: Ctx, reply: &Reply) {
    match reply {
        Reply::Decision(decision) => send_integers(ctx, &decision.as_array()),
        Reply::DecisionWithId(decision, id) => send_decision(ctx, decision, Some(*id)),
        Reply::Integer(value) => send_integer(ctx, *value),
        Reply::Throttle(values) => send_integers(ctx, values),
        Reply::All {
            allowed,
            retry_after_ms,
            decisions,
        } => {
            send_array_header(ctx, 2 + decisions.len());
            send_integer(ctx, i64::from(*allowed));
            send_integer(ctx, *retry_after_ms);
            for (decision, id) in decisions {
                send_decision(ctx, decision, *id);
            }
        }
        Reply::Map(pairs) => {
            if let Some(map) = unsafe { raw::RedisModule_ReplyWithMap } {
                // SAFETY: ctx is live; the map is followed by its pairs.
                unsafe { map(ctx, pairs.len() as c_long) };
            }
            for (field, value) in pairs {
                send_text(ctx, field);
                match value {
                    Value::Int(number) => send_integer(ctx, *number),
                    Value::Text(text) => send_text(ctx, text),
                    Value::String(text) => send_bytes(ctx, text.as_bytes()),
                    Value::Null => send_null(ctx),
                }
            }
        }
        Reply::Null => send_null(ctx),
        Reply::KeysReported | Reply::Blocked => {}
        Reply::Ok => {
            if let Some(simple) = unsafe { raw::RedisModule_ReplyWithSimpleString } {
                // SAFETY: ctx is live; the string is static.
                unsafe { simple(ctx, c"OK".as_ptr()) };
            }
        }
    }
}

fn send_decision(ctx: Ctx, decision: &Decision, id: Option<i64>) {
    let values = decision.as_array();
    match id {
        Some(id) => send_integers(
            ctx,
            &[values[0], values[1], values[2], values[3], values[4], id],
        ),
        None => send_integers(ctx, &values),
    }
}

fn send_integers(ctx: Ctx, values: &[i64]) {
    send_array_header(ctx, values.len());
    for &value in values {
        send_integer(ctx, value);
    }
}

fn send_array_header(ctx: Ctx, len: usize) {
    if let Some(array) = unsafe { raw::RedisModule_ReplyWithArray } {
        // SAFETY: ctx is live; the caller sends exactly len elements next.
        unsafe { array(ctx, len as c_long) };
    }
}

fn send_integer(ctx: Ctx, value: i64) {
    if let Some(integer) = unsafe { raw::RedisModule_ReplyWithLongLong } {
        // SAFETY: ctx is live.
        unsafe { integer(ctx, value) };
    }
}

fn send_text(ctx: Ctx, text: &CStr) {
    send_bytes(ctx, text.to_bytes());
}

fn send_bytes(ctx: Ctx, bytes: &[u8]) {
    if let Some(string) = unsafe { raw::RedisModule_ReplyWithStringBuffer } {
        // SAFETY: ctx is live; Redis copies the bytes.
        unsafe { string(ctx, bytes.as_ptr().cast(), bytes.len()) };
    }
}

fn send_null(ctx: Ctx) {
    if let Some(null) = unsafe { raw::RedisModule_ReplyWithNull } {
        // SAFETY: ctx is live.
        unsafe { null(ctx) };
    }
}
