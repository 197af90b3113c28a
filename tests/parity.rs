//! Random traffic through each native command and its Lua reference script
//! gives identical replies.

mod common;

use common::{Rng, Server};

const TOKEN_BUCKET_LUA: &str = include_str!("../lua/token_bucket.lua");
const SLIDING_LOG_LUA: &str = include_str!("../lua/sliding_log.lua");

/// A time walk: mostly forward, sometimes standing still, sometimes a little back.
fn step(rng: &mut Rng, now: &mut i64, longest: i64) {
    *now += match rng.range(0, 9) {
        0 => -rng.range(1, 300),
        1 | 2 => 0,
        _ => rng.range(1, longest),
    };
}

#[test]
fn token_bucket_matches_lua() {
    let server = Server::start();
    let mut con = server.connect();
    let _: () = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(TOKEN_BUCKET_LUA)
        .query(&mut con)
        .unwrap();
    let sha = redis::Script::new(TOKEN_BUCKET_LUA).get_hash().to_owned();
    let mut rng = Rng::new(0x5eed_0001);
    for sequence in 0..40 {
        let native_key = format!("native:{sequence}");
        let lua_key = format!("lua:{sequence}");
        let mut now: i64 = 1_700_000_000_000 + rng.range(0, 1_000_000);
        let mut params = (rng.range(1, 50), rng.range(0, 20), rng.range(1, 5000));
        let mut native = redis::pipe();
        let mut lua = redis::pipe();
        for _ in 0..200 {
            if rng.chance(8) {
                params = (rng.range(1, 50), rng.range(0, 20), rng.range(1, 5000));
            }
            let (capacity, amount, period) = params;
            let cost = match rng.range(0, 19) {
                0 | 1 => 0,
                2 => capacity + rng.range(1, 5),
                _ => rng.range(1, capacity),
            };
            step(&mut rng, &mut now, period.max(10));
            if rng.chance(50) {
                native
                    .cmd("RL.TOKENBUCKET")
                    .arg(&native_key)
                    .arg(capacity)
                    .arg(amount)
                    .arg(period)
                    .arg("COST")
                    .arg(cost)
                    .arg("AT")
                    .arg(now);
            } else {
                native
                    .cmd("RL.COST")
                    .arg(&native_key)
                    .arg(capacity)
                    .arg(amount)
                    .arg(period)
                    .arg(cost)
                    .arg("AT")
                    .arg(now);
            }
            lua.cmd("EVALSHA")
                .arg(&sha)
                .arg(1)
                .arg(&lua_key)
                .arg(capacity)
                .arg(amount)
                .arg(period)
                .arg(cost)
                .arg(now);
        }
        let native_replies: Vec<Vec<i64>> = native.query(&mut con).unwrap();
        let lua_replies: Vec<Vec<i64>> = lua.query(&mut con).unwrap();
        for (index, (n, l)) in native_replies.iter().zip(&lua_replies).enumerate() {
            assert_eq!(n, l, "sequence {sequence}, call {index}");
        }
        assert!(
            native_replies.iter().any(|r| r[0] == 0),
            "traffic must reach denials"
        );
    }
}

#[test]
fn sliding_log_matches_lua() {
    let server = Server::start();
    let mut con = server.connect();
    let _: () = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(SLIDING_LOG_LUA)
        .query(&mut con)
        .unwrap();
    let sha = redis::Script::new(SLIDING_LOG_LUA).get_hash().to_owned();
    let mut rng = Rng::new(0x5eed_0002);
    for sequence in 0..40 {
        let native_key = format!("native:{sequence}");
        let lua_key = format!("lua:{sequence}");
        let mut now: i64 = 1_700_000_000_000 + rng.range(0, 1_000_000);
        let mut params = (rng.range(1, 30), rng.range(1, 3000));
        let mut native = redis::pipe();
        let mut lua = redis::pipe();
        for _ in 0..200 {
            if rng.chance(8) {
                params = (rng.range(1, 30), rng.range(1, 3000));
            }
            let (limit, window) = params;
            let cost = match rng.range(0, 19) {
                0 | 1 => 0,
                2 => limit + rng.range(1, 5),
                _ => rng.range(1, limit.min(4)),
            };
            step(&mut rng, &mut now, window / 4 + 1);
            native
                .cmd("RL.SLIDELOG")
                .arg(&native_key)
                .arg(limit)
                .arg(window)
                .arg("COST")
                .arg(cost)
                .arg("AT")
                .arg(now);
            lua.cmd("EVALSHA")
                .arg(&sha)
                .arg(1)
                .arg(&lua_key)
                .arg(limit)
                .arg(window)
                .arg(cost)
                .arg(now);
        }
        let native_replies: Vec<Vec<i64>> = native.query(&mut con).unwrap();
        let lua_replies: Vec<Vec<i64>> = lua.query(&mut con).unwrap();
        for (index, (n, l)) in native_replies.iter().zip(&lua_replies).enumerate() {
            assert_eq!(n, l, "sequence {sequence}, call {index}");
        }
        assert!(
            native_replies.iter().any(|r| r[0] == 0),
            "traffic must reach denials"
        );
    }
}

#[test]
fn lua_scripts_read_the_server_clock_when_now_is_left_out() {
    let server = Server::start();
    let mut con = server.connect();
    let bucket = redis::Script::new(TOKEN_BUCKET_LUA);
    let log = redis::Script::new(SLIDING_LOG_LUA);
    let server_now = || -> i64 {
        let (seconds, micros): (i64, i64) =
            redis::cmd("TIME").query(&mut server.connect()).unwrap();
        seconds * 1000 + micros / 1000
    };
    let before = server_now();
    let reply: Vec<i64> = bucket
        .key("b")
        .arg(3)
        .arg(1)
        .arg(1000)
        .arg(1)
        .invoke(&mut con)
        .unwrap();
    assert_eq!(reply, [1, 3, 2, 0, 1000]);
    let reply: Vec<i64> = bucket
        .key("b")
        .arg(3)
        .arg(1)
        .arg(1000)
        .arg(1)
        .arg("")
        .invoke(&mut con)
        .unwrap();
    assert_eq!(&reply[..3], &[1, 3, 1]);
    let ts: i64 = redis::cmd("HGET")
        .arg("b")
        .arg("ts")
        .query(&mut con)
        .unwrap();
    assert!(
        ts >= before && ts <= server_now(),
        "ts {ts} not the server time"
    );
    let reply: Vec<i64> = log
        .key("l")
        .arg(2)
        .arg(60000)
        .arg(1)
        .invoke(&mut con)
        .unwrap();
    assert_eq!(reply, [1, 2, 1, 0, 60000]);
    let newest: Vec<(String, i64)> = redis::cmd("ZRANGE")
        .arg("l")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut con)
        .unwrap();
    assert!(newest[0].1 >= before && newest[0].1 <= server_now());
}
