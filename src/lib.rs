//! redis-ratelimit: atomic, exact, replicated rate limiting as native Redis
//! commands. This file only registers the module; see `commands/` for each
//! command, `algo/` for the pure limiters and `types/` for their storage.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unreachable
    )
)]

mod algo;
mod args;
mod commands;
mod config;
mod error;
mod ffi;
#[cfg(test)]
mod fuzz;
mod registry;
mod replication;
mod reply;
mod stats;
#[cfg(test)]
mod test_rng;
mod types;

use redis_module::{redis_module, Context, RedisString, Status};

use types::{bucket::BUCKET_TYPE, leases::LEASES_TYPE, log::LOG_TYPE};

// Unit tests run without Redis, hence without its allocator.
#[cfg(not(test))]
type Allocator = redis_module::alloc::RedisAlloc;
#[cfg(not(test))]
const ALLOCATOR: Allocator = redis_module::alloc::RedisAlloc;
#[cfg(test)]
type Allocator = std::alloc::System;
#[cfg(test)]
const ALLOCATOR: Allocator = std::alloc::System;

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    ffi::take_over_modified_signals(ctx.ctx);
    let with_category = registry::add_acl_category(ctx.ctx);
    for spec in commands::all() {
        if let Err(message) = registry::register(ctx.ctx, spec, with_category) {
            ctx.log_warning(&format!("rl: {message}"));
            return Status::Err;
        }
    }
    let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_slice()).collect();
    if let Err(message) = config::load(ctx.ctx, &args) {
        ctx.log_warning(&format!("rl: {message}"));
        return Status::Err;
    }
    if let Err(message) = replication::init(ctx.ctx) {
        ctx.log_warning(&format!("rl: {message}"));
        return Status::Err;
    }
    if !stats::register_info(ctx.ctx) {
        ctx.log_warning("rl: could not register the INFO sections");
        return Status::Err;
    }
    Status::Ok
}

redis_module! {
    name: "rl",
    version: 1,
    allocator: (Allocator, ALLOCATOR),
    data_types: [BUCKET_TYPE, LOG_TYPE, LEASES_TYPE],
    init: init,
}
