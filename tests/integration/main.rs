//! The integration tests, in one test binary (one link of redis and tokio
//! instead of one per file): real redis-server processes with the module
//! loaded, each test with its own on a free port, so the tests run in
//! parallel threads. `cargo test --release --test integration parity::`
//! runs one file's tests.

#[path = "../common/mod.rs"]
mod common;

mod acl;
mod all;
mod barrage;
mod cell;
mod client_time;
mod clock;
mod cluster;
mod commands;
mod examples;
mod fixtures;
mod lua_scripts;
mod memory;
mod notifications;
mod observability;
mod parity;
mod persistence;
mod quota;
mod race;
mod replay;
mod replication;
mod reservations;
mod stream_clock;
mod wait;
mod wait_all;
mod wait_cluster;
mod wait_edges;
mod window;
