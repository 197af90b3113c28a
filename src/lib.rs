//! redis-ratelimit: atomic, exact, replicated rate limiting as native Redis
//! commands. This file registers the module. The layers, each using only
//! those before it: `algo/` (the pure limiters), `error`, `args` and
//! `reply`; `ffi/` (every call of the raw module API); `stats`, `config`,
//! `types/` (storage) and `replication`; `limiters/` (each limiter kind and
//! its commands) and `commands/` (the others, and the list of all).

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
mod limiters;
mod replication;
mod reply;
mod stats;
#[cfg(test)]
mod test_rng;
mod types;

use redis_module::{redis_module, Context, RedisString, Status};

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
    match load(ctx, args) {
        Ok(()) => Status::Ok,
        Err(message) => {
            ctx.log_warning(&format!("rl: {message}"));
            Status::Err
        }
    }
}

fn load(ctx: &Context, args: &[RedisString]) -> Result<(), String> {
    ffi::install_panic_hook();
    for stored in types::stored_types() {
        ffi::data_type::create(ctx.ctx, stored.data_type)?;
    }
    ffi::take_over_modified_signals(ctx.ctx);
    let with_category = ffi::command::add_acl_category(ctx.ctx);
    for spec in commands::all() {
        ffi::command::register(ctx.ctx, spec, with_category)?;
    }
    let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_slice()).collect();
    config::load(ctx.ctx, &args)?;
    replication::init(ctx.ctx)?;
    limiters::follow_keys(ctx.ctx)?;
    if !ffi::info::register(ctx.ctx, commands::write_info) {
        return Err("could not register the INFO sections".to_owned());
    }
    Ok(())
}

redis_module! {
    name: "rl",
    version: 1,
    allocator: (Allocator, ALLOCATOR),
    data_types: [],
    init: init,
}
