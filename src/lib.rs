//! redis-ratelimit: atomic, exact, replicated rate limiting as native Redis
//! commands. This file only registers the module; see `commands/` for each
//! command, `algo/` for the pure limiters and `types/` for their storage.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unreachable)
)]

pub mod algo;
pub mod args;
pub mod commands;
pub mod error;
pub mod ffi;
pub mod registry;
pub mod reply;
pub mod types;

#[cfg(not(test))]
use redis_module::{redis_module, Context, RedisString, Status};
#[cfg(not(test))]
use types::{bucket::BUCKET_TYPE, log::LOG_TYPE};

#[cfg(not(test))]
fn init(ctx: &Context, _args: &[RedisString]) -> Status {
    for spec in commands::all() {
        if let Err(message) = registry::register(ctx.ctx, spec) {
            ctx.log_warning(&format!("rl: {message}"));
            return Status::Err;
        }
    }
    Status::Ok
}

// Unit tests run without Redis, hence without its allocator.
#[cfg(not(test))]
redis_module! {
    name: "rl",
    version: 1,
    allocator: (redis_module::alloc::RedisAlloc, redis_module::alloc::RedisAlloc),
    data_types: [BUCKET_TYPE, LOG_TYPE],
    init: init,
}
