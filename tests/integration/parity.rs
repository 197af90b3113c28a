//! Random traffic through each native command and its Lua reference script
//! gives identical replies.

use crate::common::{call, command, ints, query, Rng, Server};

const TOKEN_BUCKET_LUA: &str = include_str!("../../lua/token_bucket.lua");
const SLIDING_LOG_LUA: &str = include_str!("../../lua/sliding_log.lua");

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
    let sha: String = query(&mut con, ["SCRIPT", "LOAD", TOKEN_BUCKET_LUA]);
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
            let spec = format!("{capacity} {amount} {period}");
            native.add_command(command(if rng.chance(50) {
                format!("RL.TOKENBUCKET {native_key} {spec} COST {cost} AT {now}")
            } else {
                format!("RL.COST {native_key} {spec} {cost} AT {now}")
            }));
            lua.add_command(command(format!(
                "EVALSHA {sha} 1 {lua_key} {spec} {cost} {now}"
            )));
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
    let sha: String = query(&mut con, ["SCRIPT", "LOAD", SLIDING_LOG_LUA]);
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
            native.add_command(command(format!(
                "RL.SLIDELOG {native_key} {limit} {window} COST {cost} AT {now}"
            )));
            lua.add_command(command(format!(
                "EVALSHA {sha} 1 {lua_key} {limit} {window} {cost} {now}"
            )));
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
        let (seconds, micros): (i64, i64) = query(&mut server.connect(), "TIME");
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
    let ts: i64 = query(&mut con, "HGET b ts");
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
    let newest: Vec<(String, i64)> = query(&mut con, "ZRANGE l 0 -1 WITHSCORES");
    assert!(newest[0].1 >= before && newest[0].1 <= server_now());
}

const ALL_LUA: &str = include_str!("../../lua/all.lua");

/// Numbers as the words of a command line.
fn spaced(numbers: &[i64]) -> String {
    let words: Vec<String> = numbers.iter().map(i64::to_string).collect();
    words.join(" ")
}

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
        let sha: String = query(&mut con, ["SCRIPT", "LOAD", script]);
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
                let keys = |side: &str| {
                    let keys: Vec<String> = chosen
                        .iter()
                        .map(|k| format!("{side}:{sequence}:{k}"))
                        .collect();
                    keys.join(" ")
                };
                let specs: Vec<String> = chosen
                    .iter()
                    .map(|&k| {
                        let name = if kinds[k] { "TOKENBUCKET" } else { "SLIDELOG" };
                        format!("{name} {}", spaced(&specs[k]))
                    })
                    .collect();
                let (count, specs, costs) = (chosen.len(), specs.join(" "), spaced(&costs));
                native.add_command(command(format!(
                    "RL.ALL {count} {} {specs} COSTS {costs} AT {now}",
                    keys("native")
                )));
                lua.add_command(command(format!(
                    "EVALSHA {} {count} {} {specs} {costs} {now}",
                    shas[0],
                    keys("lua")
                )));
            } else {
                let k = rng.range(0, 3) as usize;
                let cost = cost_for(&mut rng, &specs[k]);
                let (name, sha) = if kinds[k] {
                    ("RL.TOKENBUCKET", &shas[1])
                } else {
                    ("RL.SLIDELOG", &shas[2])
                };
                let spec = spaced(&specs[k]);
                native.add_command(command(format!(
                    "{name} native:{sequence}:{k} {spec} COST {cost} AT {now}"
                )));
                lua.add_command(command(format!(
                    "EVALSHA {sha} 1 lua:{sequence}:{k} {spec} {cost} {now}"
                )));
            }
        }
        let native_replies: Vec<redis::Value> = native.query(&mut con).unwrap();
        let lua_replies: Vec<redis::Value> = lua.query(&mut con).unwrap();
        for (index, (n, l)) in native_replies.iter().zip(&lua_replies).enumerate() {
            assert_eq!(n, l, "sequence {sequence}, call {index}");
        }
    }
}

/// Loads a script from lua/ by name and returns its sha.
fn load(con: &mut redis::Connection, name: &str) -> String {
    let path = format!("{}/lua/{name}.lua", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(path).expect("script");
    query(con, ["SCRIPT", "LOAD", &source])
}

/// Runs the native command and its script on their own keys; both replies
/// must be equal, and the reply is returned.
fn both(
    con: &mut redis::Connection,
    sha: &str,
    name: &str,
    key: &str,
    args: &[i64],
    now: i64,
) -> redis::Value {
    let args = spaced(args);
    let native: redis::Value = query(con, format!("{name} native:{key} {args} AT {now}"));
    let lua: redis::Value = query(con, format!("EVALSHA {sha} 1 lua:{key} {args} {now}"));
    assert_eq!(native, lua, "{name} {key} {args} at {now}");
    native
}

fn id_of(reply: &redis::Value) -> i64 {
    let values: Vec<i64> = redis::from_redis_value(reply).unwrap();
    values[5]
}

#[test]
fn reservations_match_lua_mixed_with_bucket_calls() {
    let server = Server::start();
    let mut con = server.connect();
    let [bucket, cost, reserve, settle, cancel] = [
        "token_bucket",
        "token_bucket",
        "reserve",
        "settle",
        "cancel",
    ]
    .map(|name| load(&mut con, name));
    let mut rng = Rng::new(0x5eed_0004);
    for sequence in 0..20 {
        let key = format!("r{sequence}");
        let mut now: i64 = 1_700_000_000_000 + rng.range(0, 1_000_000);
        let mut params = vec![rng.range(1, 100), rng.range(0, 20), rng.range(1, 2000)];
        let mut ids: Vec<i64> = Vec::new();
        for _ in 0..150 {
            if rng.chance(5) {
                params = vec![rng.range(1, 100), rng.range(0, 20), rng.range(1, 2000)];
            }
            step(&mut rng, &mut now, 300);
            match rng.range(0, 5) {
                0 | 1 => {
                    let mut args = params.clone();
                    args.extend([rng.range(1, params[0] + 2), rng.range(1, 3000)]);
                    let reply = both(&mut con, &reserve, "RL.RESERVE", &key, &args, now);
                    if id_of(&reply) > 0 {
                        ids.push(id_of(&reply));
                    }
                }
                2 | 3 if !ids.is_empty() => {
                    let id = ids[rng.range(0, ids.len() as i64 - 1) as usize];
                    if rng.chance(50) {
                        both(
                            &mut con,
                            &settle,
                            "RL.SETTLE",
                            &key,
                            &[id, rng.range(0, params[0] * 2)],
                            now,
                        );
                    } else {
                        both(&mut con, &cancel, "RL.CANCEL", &key, &[id], now);
                    }
                }
                4 => {
                    let mut args = params.clone();
                    args.push(rng.range(0, 5));
                    both(&mut con, &cost, "RL.COST", &key, &args, now);
                }
                _ => {
                    let (spec, cost) = (spaced(&params), rng.range(0, 3));
                    let native = ints(
                        &mut con,
                        format!("RL.TOKENBUCKET native:{key} {spec} COST {cost} AT {now}"),
                    );
                    let lua = ints(
                        &mut con,
                        format!("EVALSHA {bucket} 1 lua:{key} {spec} {cost} {now}"),
                    );
                    assert_eq!(native, lua);
                }
            }
        }
        assert!(!ids.is_empty());
    }
}

#[test]
fn leases_match_lua() {
    let server = Server::start();
    let mut con = server.connect();
    let [acquire, release, extend] =
        ["acquire", "release", "extend"].map(|name| load(&mut con, name));
    let mut rng = Rng::new(0x5eed_0005);
    for sequence in 0..20 {
        let key = format!("l{sequence}");
        let mut now: i64 = 1_700_000_000_000 + rng.range(0, 1_000_000);
        let mut limit = rng.range(1, 6);
        let mut ids: Vec<i64> = Vec::new();
        for _ in 0..150 {
            if rng.chance(5) {
                limit = rng.range(1, 6);
            }
            step(&mut rng, &mut now, 300);
            match rng.range(0, 3) {
                0 | 1 => {
                    let reply = both(
                        &mut con,
                        &acquire,
                        "RL.ACQUIRE",
                        &key,
                        &[limit, rng.range(1, 3000)],
                        now,
                    );
                    if id_of(&reply) > 0 {
                        ids.push(id_of(&reply));
                    }
                }
                _ if !ids.is_empty() => {
                    let id = ids[rng.range(0, ids.len() as i64 - 1) as usize];
                    if rng.chance(50) {
                        both(&mut con, &release, "RL.RELEASE", &key, &[id], now);
                    } else {
                        both(
                            &mut con,
                            &extend,
                            "RL.EXTEND",
                            &key,
                            &[id, rng.range(1, 3000)],
                            now,
                        );
                    }
                }
                _ => {}
            }
        }
        assert!(ids.len() > 5);
    }
}

#[test]
fn all_with_every_kind_matches_lua() {
    let server = Server::start();
    let mut con = server.connect();
    let all_sha = load(&mut con, "all");
    let [settle, release] = ["settle", "release"].map(|name| load(&mut con, name));
    let mut rng = Rng::new(0x5eed_0006);
    let kinds = [
        "TOKENBUCKET",
        "SLIDELOG",
        "RESERVE",
        "ACQUIRE",
        "WINDOW",
        "WINDOW",
    ];
    for sequence in 0..20 {
        let mut now: i64 = 1_700_000_000_000 + rng.range(0, 1_000_000);
        let mut opened: Vec<(usize, i64)> = Vec::new();
        for _ in 0..100 {
            step(&mut rng, &mut now, 300);
            if rng.chance(25) && !opened.is_empty() {
                let (k, id) = opened[rng.range(0, opened.len() as i64 - 1) as usize];
                let key = format!("a{sequence}:{k}");
                if kinds[k] == "RESERVE" {
                    both(
                        &mut con,
                        &settle,
                        "RL.SETTLE",
                        &key,
                        &[id, rng.range(0, 8)],
                        now,
                    );
                } else {
                    both(&mut con, &release, "RL.RELEASE", &key, &[id], now);
                }
                continue;
            }
            let chosen: Vec<usize> = (0..kinds.len()).filter(|_| rng.chance(60)).collect();
            if chosen.is_empty() {
                continue;
            }
            let keys = |side: &str| {
                let keys: Vec<String> = chosen
                    .iter()
                    .map(|k| format!("{side}:a{sequence}:{k}"))
                    .collect();
                keys.join(" ")
            };
            let mut specs = Vec::new();
            let mut costs = Vec::new();
            for &k in &chosen {
                let spec = match k {
                    0 => "8 2 1000".to_owned(),
                    1 => "6 2000".to_owned(),
                    2 => format!("12 3 1000 {}", rng.range(100, 2000)),
                    3 => format!("3 {}", rng.range(100, 2000)),
                    4 => format!("6 2000 PRECISION {}", rng.range(1, 400)),
                    _ => "5 1000 FIXED".to_owned(),
                };
                specs.push(format!("{} {spec}", kinds[k]));
                costs.push(if kinds[k] == "ACQUIRE" {
                    rng.range(0, 1)
                } else {
                    rng.range(0, 4)
                });
            }
            let (count, specs, costs) = (chosen.len(), specs.join(" "), spaced(&costs));
            let n: redis::Value = query(
                &mut con,
                format!(
                    "RL.ALL {count} {} {specs} COSTS {costs} AT {now}",
                    keys("native")
                ),
            );
            let l: redis::Value = query(
                &mut con,
                format!(
                    "EVALSHA {all_sha} {count} {} {specs} {costs} {now}",
                    keys("lua")
                ),
            );
            assert_eq!(n, l, "sequence {sequence}");
            let replies: Vec<redis::Value> = redis::from_redis_value(&n).unwrap();
            for (position, &k) in chosen.iter().enumerate() {
                let reply: Vec<i64> = redis::from_redis_value(&replies[position + 2]).unwrap();
                if reply.len() == 6 && reply[5] > 0 {
                    opened.push((k, reply[5]));
                }
            }
        }
        assert!(!opened.is_empty());
    }
}

#[test]
fn large_values_match_lua_within_the_exact_range() {
    let server = Server::start();
    let mut con = server.connect();
    let [bucket, log] = ["token_bucket", "sliding_log"].map(|name| load(&mut con, name));
    let mut rng = Rng::new(0x5eed_0007);
    for sequence in 0..10 {
        let key = format!("big{sequence}");
        // Times past 1e14 and capacities near 2^52 (period 1: no conversion).
        let mut now: i64 = 100_000_000_000_000 + rng.range(0, 1 << 40);
        let capacity = (1 << 52) - rng.range(0, 1 << 20);
        let amount = rng.range(1, 1 << 30);
        for _ in 0..100 {
            step(&mut rng, &mut now, 1_000_000);
            let cost = match rng.range(0, 4) {
                0 => 0,
                1 => capacity,
                _ => rng.range(1, capacity / 4),
            };
            both(
                &mut con,
                &bucket,
                "RL.COST",
                &key,
                &[capacity, amount, 1, cost],
                now,
            );
            let (limit, window, log_cost) = (
                rng.range(1, 1_000_000),
                rng.range(1, 1 << 40),
                rng.range(0, 3),
            );
            let native = ints(
                &mut con,
                format!("RL.SLIDELOG native:{key}:log {limit} {window} COST {log_cost} AT {now}"),
            );
            let lua = ints(
                &mut con,
                format!("EVALSHA {log} 1 lua:{key}:log {limit} {window} {log_cost} {now}"),
            );
            assert_eq!(native, lua, "log {key} at {now}");
        }
    }
}

#[test]
fn scripts_refuse_the_numbers_the_commands_refuse() {
    let server = Server::start();
    let mut con = server.connect();
    let sha = load(&mut con, "token_bucket");
    for bad in [
        "1e3", "+1", "01", "0x10", "1.0", " 1", "1 ", "-0", "", "inf", "nan",
    ] {
        // As words: some hold spaces, one is empty.
        let native = call(&mut con, ["RL.COST", "native", "10", "1", "1000", bad]);
        let lua = call(
            &mut con,
            ["EVALSHA", &sha, "1", "lua", "10", "1", "1000", bad],
        );
        let native = native.expect_err(bad).to_string();
        let lua = lua.expect_err(bad).to_string();
        assert!(
            native.contains("cost must be an integer"),
            "{bad:?}: {native}"
        );
        assert!(lua.contains("cost must be an integer"), "{bad:?}: {lua}");
    }
    // Past 2^53 the scripts refuse what the module still takes exactly.
    let lua = call(
        &mut con,
        format!("EVALSHA {sha} 1 lua 10 1 1000 9007199254740992"),
    );
    assert!(lua
        .expect_err("2^53")
        .to_string()
        .contains("above 2^53 - 1"));
}
