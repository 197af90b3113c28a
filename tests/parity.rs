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

const ALL_LUA: &str = include_str!("../lua/all.lua");

/// A random limiter spec as RL.ALL words.
fn random_spec(rng: &mut Rng, bucket: bool) -> Vec<i64> {
    if bucket {
        vec![rng.range(1, 30), rng.range(0, 10), rng.range(1, 3000)]
    } else {
        vec![rng.range(1, 20), rng.range(1, 3000)]
    }
}

#[test]
fn all_matches_lua_with_single_key_commands_on_the_same_keys() {
    let server = Server::start();
    let mut con = server.connect();
    let mut shas = Vec::new();
    for script in [ALL_LUA, TOKEN_BUCKET_LUA, SLIDING_LOG_LUA] {
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(script)
            .query(&mut con)
            .unwrap();
        shas.push(sha);
    }
    let mut rng = Rng::new(0x5eed_0003);
    for sequence in 0..30 {
        // Four keys per sequence, each a bucket or a log for its whole life.
        let kinds: Vec<bool> = (0..4).map(|_| rng.chance(50)).collect();
        let mut specs: Vec<Vec<i64>> = kinds.iter().map(|&b| random_spec(&mut rng, b)).collect();
        let mut now: i64 = 1_700_000_000_000 + rng.range(0, 1_000_000);
        let mut native = redis::pipe();
        let mut lua = redis::pipe();
        for _ in 0..150 {
            for (spec, &bucket) in specs.iter_mut().zip(&kinds) {
                if rng.chance(5) {
                    *spec = random_spec(&mut rng, bucket);
                }
            }
            step(&mut rng, &mut now, 400);
            let cost_for = |rng: &mut Rng, spec: &[i64]| match rng.range(0, 9) {
                0 => 0,
                1 => spec[0] + 1,
                _ => rng.range(1, spec[0].min(3)),
            };
            if rng.chance(60) {
                // RL.ALL over a random subset of the keys, in random order.
                let mut chosen: Vec<usize> = (0..4).filter(|_| rng.chance(60)).collect();
                if chosen.is_empty() {
                    chosen.push(rng.range(0, 3) as usize);
                }
                if rng.chance(50) {
                    chosen.reverse();
                }
                let costs: Vec<i64> = chosen
                    .iter()
                    .map(|&k| cost_for(&mut rng, &specs[k]))
                    .collect();
                let n = native.cmd("RL.ALL").arg(chosen.len());
                let l = lua.cmd("EVALSHA").arg(&shas[0]).arg(chosen.len());
                for &k in &chosen {
                    n.arg(format!("native:{sequence}:{k}"));
                    l.arg(format!("lua:{sequence}:{k}"));
                }
                for &k in &chosen {
                    let name = if kinds[k] { "TOKENBUCKET" } else { "SLIDELOG" };
                    n.arg(name).arg(&specs[k]);
                    l.arg(name).arg(&specs[k]);
                }
                n.arg("COSTS").arg(&costs).arg("AT").arg(now);
                l.arg(&costs).arg(now);
            } else {
                let k = rng.range(0, 3) as usize;
                let cost = cost_for(&mut rng, &specs[k]);
                let (command, sha) = if kinds[k] {
                    ("RL.TOKENBUCKET", &shas[1])
                } else {
                    ("RL.SLIDELOG", &shas[2])
                };
                native
                    .cmd(command)
                    .arg(format!("native:{sequence}:{k}"))
                    .arg(&specs[k])
                    .arg("COST")
                    .arg(cost)
                    .arg("AT")
                    .arg(now);
                lua.cmd("EVALSHA")
                    .arg(sha)
                    .arg(1)
                    .arg(format!("lua:{sequence}:{k}"))
                    .arg(&specs[k])
                    .arg(cost)
                    .arg(now);
            }
        }
        let native_replies: Vec<redis::Value> = native.query(&mut con).unwrap();
        let lua_replies: Vec<redis::Value> = lua.query(&mut con).unwrap();
        for (index, (n, l)) in native_replies.iter().zip(&lua_replies).enumerate() {
            assert_eq!(n, l, "sequence {sequence}, call {index}");
        }
    }
}
