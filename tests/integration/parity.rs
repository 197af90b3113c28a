//! Random traffic through each native command and its Lua reference script
//! gives identical replies.

use crate::common::{
    add_kept, call, command, error_text, ints, kept, kept_ints, kept_reply, query, Rng, Server,
};

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
            let line = if rng.chance(50) {
                format!("RL.TOKENBUCKET {native_key} {spec} COST {cost} AT {now}")
            } else {
                format!("RL.COST {native_key} {spec} {cost} AT {now}")
            };
            add_kept(&mut native, command(line), &[&native_key]);
            add_kept(
                &mut lua,
                command(format!("EVALSHA {sha} 1 {lua_key} {spec} {cost} {now}")),
                &[&lua_key],
            );
        }
        let native_replies = kept_ints(native.query(&mut con).unwrap());
        let lua_replies = kept_ints(lua.query(&mut con).unwrap());
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
            add_kept(
                &mut native,
                command(format!(
                    "RL.SLIDELOG {native_key} {limit} {window} COST {cost} AT {now}"
                )),
                &[&native_key],
            );
            add_kept(
                &mut lua,
                command(format!(
                    "EVALSHA {sha} 1 {lua_key} {limit} {window} {cost} {now}"
                )),
                &[&lua_key],
            );
        }
        let native_replies = kept_ints(native.query(&mut con).unwrap());
        let lua_replies = kept_ints(lua.query(&mut con).unwrap());
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
    // Refilled over an hour: no token comes back, and the key does not
    // expire, between the calls.
    let reply: Vec<i64> = bucket
        .key("b")
        .arg(3)
        .arg(1)
        .arg(3_600_000)
        .arg(1)
        .invoke(&mut con)
        .unwrap();
    assert_eq!(reply, [1, 3, 2, 0, 3_600_000]);
    let reply: Vec<i64> = bucket
        .key("b")
        .arg(3)
        .arg(1)
        .arg(3_600_000)
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
                let keys = |side: &str| -> Vec<String> {
                    chosen
                        .iter()
                        .map(|k| format!("{side}:{sequence}:{k}"))
                        .collect()
                };
                let specs: Vec<String> = chosen
                    .iter()
                    .map(|&k| {
                        let name = if kinds[k] { "TOKENBUCKET" } else { "SLIDELOG" };
                        format!("{name} {}", spaced(&specs[k]))
                    })
                    .collect();
                let (count, specs, costs) = (chosen.len(), specs.join(" "), spaced(&costs));
                let (native_keys, lua_keys) = (keys("native"), keys("lua"));
                add_kept(
                    &mut native,
                    command(format!(
                        "RL.ALL {count} {} {specs} COSTS {costs} AT {now}",
                        native_keys.join(" ")
                    )),
                    &native_keys,
                );
                add_kept(
                    &mut lua,
                    command(format!(
                        "EVALSHA {} {count} {} {specs} {costs} {now}",
                        shas[0],
                        lua_keys.join(" ")
                    )),
                    &lua_keys,
                );
            } else {
                let k = rng.range(0, 3) as usize;
                let cost = cost_for(&mut rng, &specs[k]);
                let (name, sha) = if kinds[k] {
                    ("RL.TOKENBUCKET", &shas[1])
                } else {
                    ("RL.SLIDELOG", &shas[2])
                };
                let spec = spaced(&specs[k]);
                let (native_key, lua_key) = (
                    format!("native:{sequence}:{k}"),
                    format!("lua:{sequence}:{k}"),
                );
                add_kept(
                    &mut native,
                    command(format!("{name} {native_key} {spec} COST {cost} AT {now}")),
                    &[native_key],
                );
                add_kept(
                    &mut lua,
                    command(format!("EVALSHA {sha} 1 {lua_key} {spec} {cost} {now}")),
                    &[lua_key],
                );
            }
        }
        let native_replies: Vec<redis::Value> = native.query(&mut con).unwrap();
        let lua_replies: Vec<redis::Value> = lua.query(&mut con).unwrap();
        assert_eq!(native_replies.len(), 150);
        for (index, (n, l)) in native_replies
            .into_iter()
            .map(kept_reply)
            .zip(lua_replies.into_iter().map(kept_reply))
            .enumerate()
        {
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
/// must be equal, and the reply is returned. Each call is followed, in the
/// same MULTI/EXEC, by a PERSIST of its key: a write at a pinned time sets
/// a TTL on the real clock, of a ms or two for a lease about to end, which
/// may run out before one side's next call and not the other's; kept, both
/// keys decide from their state alone.
fn both(
    con: &mut redis::Connection,
    sha: &str,
    name: &str,
    key: &str,
    args: &[i64],
    now: i64,
) -> redis::Value {
    let args = spaced(args);
    let native = kept(
        con,
        format!("{name} native:{key} {args} AT {now}"),
        &[format!("native:{key}")],
    );
    let lua = kept(
        con,
        format!("EVALSHA {sha} 1 lua:{key} {args} {now}"),
        &[format!("lua:{key}")],
    );
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
                    let native = kept(
                        &mut con,
                        format!("RL.TOKENBUCKET native:{key} {spec} COST {cost} AT {now}"),
                        &[format!("native:{key}")],
                    );
                    let lua = kept(
                        &mut con,
                        format!("EVALSHA {bucket} 1 lua:{key} {spec} {cost} {now}"),
                        &[format!("lua:{key}")],
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
            let keys = |side: &str| -> Vec<String> {
                chosen
                    .iter()
                    .map(|k| format!("{side}:a{sequence}:{k}"))
                    .collect()
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
            let (native_keys, lua_keys) = (keys("native"), keys("lua"));
            let n = kept(
                &mut con,
                format!(
                    "RL.ALL {count} {} {specs} COSTS {costs} AT {now}",
                    native_keys.join(" ")
                ),
                &native_keys,
            );
            let l = kept(
                &mut con,
                format!(
                    "EVALSHA {all_sha} {count} {} {specs} {costs} {now}",
                    lua_keys.join(" ")
                ),
                &lua_keys,
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

const QUOTA_LUA: &str = include_str!("../../lua/quota.lua");

const PERIODS: [&str; 7] = ["minute", "hour", "day", "week", "month", "quarter", "year"];

/// Each period's length in ms (a month and longer: the shortest).
const PERIOD_MS: [i64; 7] = [
    60_000,
    3_600_000,
    86_400_000,
    604_800_000,
    2_419_200_000,
    7_776_000_000,
    31_536_000_000,
];

/// A quota's parameters: limit, period (an index into PERIODS), zone and
/// anchor.
#[derive(Clone)]
struct QuotaSpec {
    limit: i64,
    period: usize,
    zone: String,
    anchor: Option<i64>,
}

/// Anchors on the last days of months, at various times of day: billing
/// days that shorter months clamp (2024-01-31 10:00, 2024-02-29 00:00,
/// 2023-03-31 23:30, 2020-02-29 12:00, 2021-08-31 05:15:30.250, 1999-12-31
/// 18:00, 2031-10-31 00:00, 2036-02-29 23:59:59.999).
const MONTH_END_ANCHORS: [i64; 8] = [
    1_706_695_200_000,
    1_709_164_800_000,
    1_680_305_400_000,
    1_582_977_600_000,
    1_630_386_930_250,
    946_663_200_000,
    1_951_171_200_000,
    2_087_942_399_999,
];

/// 1990-01-01 and 2040-01-01 UTC.
const YEAR_1990_MS: i64 = 631_152_000_000;
const YEAR_2040_MS: i64 = 2_208_988_800_000;

fn random_zone(rng: &mut Rng) -> String {
    const ZONES: [&str; 10] = [
        "UTC", "utc", "+00:00", "-00:00", "+05:30", "+05:45", "-09:30", "+14:00", "-12:00",
        "+18:00",
    ];
    if rng.chance(70) {
        return ZONES[rng.range(0, ZONES.len() as i64 - 1) as usize].to_owned();
    }
    let minutes = rng.range(-18 * 60, 18 * 60);
    let sign = if minutes < 0 { '-' } else { '+' };
    let (hours, minutes) = (minutes.abs() / 60, minutes.abs() % 60);
    format!("{sign}{hours:02}:{minutes:02}")
}

fn random_quota(rng: &mut Rng) -> QuotaSpec {
    let period = rng.range(0, 6) as usize;
    let anchor = match rng.range(0, 9) {
        0..=3 => None,
        4 | 5 => Some(MONTH_END_ANCHORS[rng.range(0, 7) as usize]),
        _ => Some(rng.range(YEAR_1990_MS, YEAR_2040_MS)),
    };
    QuotaSpec {
        limit: rng.range(1, 12),
        period,
        zone: random_zone(rng),
        anchor,
    }
}

impl QuotaSpec {
    /// The words after the key in RL.QUOTA and RL.ALL: the parameters,
    /// then TZ and ANCHOR in either order, each in a random case, TZ left
    /// out at times when the zone is UTC.
    fn native_words(&self, rng: &mut Rng) -> String {
        let case = |rng: &mut Rng, word: &str| {
            if rng.chance(25) {
                word.to_lowercase()
            } else {
                word.to_owned()
            }
        };
        let period = PERIODS[self.period];
        let period = if rng.chance(20) {
            period.to_uppercase()
        } else {
            period.to_owned()
        };
        let mut options = Vec::new();
        if self.zone != "UTC" || rng.chance(50) {
            options.push(format!("{} {}", case(rng, "TZ"), self.zone));
        }
        if let Some(anchor) = self.anchor {
            options.push(format!("{} {anchor}", case(rng, "ANCHOR")));
        }
        if rng.chance(50) {
            options.reverse();
        }
        let mut words = format!("{} {period}", self.limit);
        for option in options {
            words.push(' ');
            words.push_str(&option);
        }
        words
    }

    /// The ARGV of lua/quota.lua before the cost: limit, period, zone,
    /// anchor (empty for none).
    fn lua_args(&self, cmd: &mut redis::Cmd) {
        let anchor = self.anchor.map_or(String::new(), |a| a.to_string());
        cmd.arg(self.limit)
            .arg(PERIODS[self.period])
            .arg(&self.zone)
            .arg(anchor);
    }

    /// A cost: 0 at times, above the limit at times, else a few units.
    fn cost(&self, rng: &mut Rng) -> i64 {
        match rng.range(0, 19) {
            0 | 1 => 0,
            2 => self.limit + rng.range(1, 5),
            _ => rng.range(1, self.limit.min(4)),
        }
    }

    /// The zone's offset in ms.
    fn offset_ms(&self) -> i64 {
        if self.zone.eq_ignore_ascii_case("UTC") {
            return 0;
        }
        let minutes = |at: usize| self.zone[at..at + 2].parse::<i64>().unwrap();
        let offset = (minutes(1) * 60 + minutes(4)) * 60_000;
        if self.zone.starts_with('-') {
            -offset
        } else {
            offset
        }
    }

    /// The end of the period that holds `now`, for the periods of a fixed
    /// length (a day and a week are too, in a fixed offset).
    fn fixed_period_end(&self, now: i64) -> Option<i64> {
        let length = PERIOD_MS[self.period];
        let local_origin = if PERIODS[self.period] == "week" {
            946_857_600_000
        } else {
            946_684_800_000
        };
        let base = self.anchor.unwrap_or(local_origin - self.offset_ms());
        (self.period <= 3).then(|| base + ((now - base).div_euclid(length) + 1) * length)
    }

    /// A time walk over the quota's periods: mostly a fraction of a
    /// period, sometimes several (months for a minute), to the ms around
    /// a period's end, standing still or a little back.
    fn step(&self, rng: &mut Rng, now: &mut i64) {
        let period_ms = PERIOD_MS[self.period];
        *now += match rng.range(0, 19) {
            0 => -rng.range(1, 300),
            1 | 2 => 0,
            3 => rng.range(1, 1000),
            4 => rng.range(period_ms / 2, period_ms * 3),
            5 => rng.range(1, 100 * 86_400_000),
            6 | 7 => match self.fixed_period_end(*now) {
                Some(end) => end - *now + rng.range(-1, 1),
                None => 0,
            },
            _ => rng.range(1, period_ms / 6),
        };
    }
}

/// Tallies what random traffic reached: denials, costs that never fit,
/// and new periods (remaining back up with the same limit).
#[derive(Default)]
struct Reached {
    denied: usize,
    never: usize,
    renewed: usize,
}

impl Reached {
    fn add(&mut self, previous: Option<&Vec<i64>>, reply: &[i64]) {
        match reply[3] {
            -1 => self.never += 1,
            0 => {}
            _ => self.denied += 1,
        }
        if let Some(previous) = previous {
            if previous[1] == reply[1] && reply[0] == 1 && reply[2] > previous[2] {
                self.renewed += 1;
            }
        }
    }

    fn assert_reached(&self, calls: usize) {
        assert!(
            self.denied > calls / 50 && self.never > 0 && self.renewed > calls / 50,
            "traffic must reach denials, costs that never fit and new periods: {} denied, {} never, {} renewed of {calls}",
            self.denied,
            self.never,
            self.renewed
        );
    }
}

// The pipelines below run in MULTI/EXEC: the server's clock stands still
// in a transaction, so no key expires between a sequence's calls on one
// side and not on the other (a quota's TTL runs on the server's clock,
// its periods on AT's).

#[test]
fn quota_matches_lua() {
    let server = Server::start();
    let mut con = server.connect();
    let sha: String = query(&mut con, ["SCRIPT", "LOAD", QUOTA_LUA]);
    let mut rng = Rng::new(0x5eed_0008);
    let mut reached = Reached::default();
    let mut calls = 0;
    for sequence in 0..60 {
        let native_key = format!("native:{sequence}");
        let lua_key = format!("lua:{sequence}");
        let mut now = rng.range(YEAR_1990_MS, YEAR_2040_MS);
        let mut spec = random_quota(&mut rng);
        let mut native = redis::pipe();
        let mut lua = redis::pipe();
        native.atomic();
        lua.atomic();
        for _ in 0..200 {
            if rng.chance(8) {
                // A new limit, period, zone or anchor, or all of them.
                let fresh = random_quota(&mut rng);
                match rng.range(0, 4) {
                    0 => spec.limit = fresh.limit,
                    1 => spec.period = fresh.period,
                    2 => spec.zone = fresh.zone,
                    3 => spec.anchor = fresh.anchor,
                    _ => spec = fresh,
                }
            }
            spec.step(&mut rng, &mut now);
            let cost = spec.cost(&mut rng);
            native.add_command(command(format!(
                "RL.QUOTA {native_key} {} COST {cost} AT {now}",
                spec.native_words(&mut rng)
            )));
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(&sha).arg(1).arg(&lua_key);
            spec.lua_args(&mut cmd);
            lua.add_command(cmd.arg(cost).arg(now).clone());
            // A write at a pinned time near a period's end sets a TTL of a
            // ms or two on the real clock, which may run out between two
            // calls in one pipeline and not in the other: the keys are kept,
            // so that both decide from their state alone.
            native
                .add_command(command(format!("PERSIST {native_key}")))
                .ignore();
            lua.add_command(command(format!("PERSIST {lua_key}")))
                .ignore();
        }
        let native_replies: Vec<Vec<i64>> = native.query(&mut con).unwrap();
        let lua_replies: Vec<Vec<i64>> = lua.query(&mut con).unwrap();
        for (index, (n, l)) in native_replies.iter().zip(&lua_replies).enumerate() {
            assert_eq!(n, l, "sequence {sequence}, call {index}");
            reached.add(index.checked_sub(1).map(|i| &native_replies[i]), n);
        }
        calls += native_replies.len();
    }
    reached.assert_reached(calls);
}

/// RL.QUOTA and lua/quota.lua on their own keys, in one MULTI/EXEC; both
/// replies must be equal, and the reply is returned.
fn quota_both(
    con: &mut redis::Connection,
    sha: &str,
    key: &str,
    words: &str,
    spec: &QuotaSpec,
    cost: i64,
    now: i64,
) -> Vec<i64> {
    let mut lua = redis::cmd("EVALSHA");
    lua.arg(sha).arg(1).arg(format!("lua:{key}"));
    spec.lua_args(&mut lua);
    let (native, lua): (Vec<i64>, Vec<i64>) = redis::pipe()
        .atomic()
        .add_command(command(format!(
            "RL.QUOTA native:{key} {words} COST {cost} AT {now}"
        )))
        .add_command(lua.arg(cost).arg(now).clone())
        .query(con)
        .unwrap();
    assert_eq!(native, lua, "RL.QUOTA {key} {words} COST {cost} AT {now}");
    native
}

#[test]
fn quota_matches_lua_to_the_ms_around_period_ends() {
    let server = Server::start();
    let mut con = server.connect();
    let sha: String = query(&mut con, ["SCRIPT", "LOAD", QUOTA_LUA]);
    let mut rng = Rng::new(0x5eed_0009);
    let mut reached = Reached::default();
    let mut calls = 0;
    for sequence in 0..40 {
        let key = format!("ends:{sequence}");
        let mut now = rng.range(YEAR_1990_MS, YEAR_2040_MS);
        let mut spec = random_quota(&mut rng);
        let mut previous: Option<Vec<i64>> = None;
        // The end of the period of the last reply that had one, and the
        // end of the last write's period while its key may expire (on the
        // server's clock) before the next call: until a new write, calls
        // stay at or after that end, with the same parameters, where the
        // key no longer counts either way.
        let (mut end, mut fragile): (Option<i64>, Option<i64>) = (None, None);
        let mut last_write: Option<i64> = None;
        for _ in 0..150 {
            if fragile.is_none() && rng.chance(8) {
                spec = random_quota(&mut rng);
                end = None;
            }
            match end {
                Some(end) if rng.chance(50) => now = end + rng.range(-1, 1),
                _ => spec.step(&mut rng, &mut now),
            }
            if let Some(fragile) = fragile {
                now = now.max(fragile + rng.range(0, 1));
            }
            let cost = spec.cost(&mut rng);
            let words = spec.native_words(&mut rng);
            let reply = quota_both(&mut con, &sha, &key, &words, &spec, cost, now);
            reached.add(previous.as_ref(), &reply);
            // The call ran at the last write when that is later.
            let at = now.max(last_write.unwrap_or(now));
            let until_end = reply[4].max(reply[3]);
            if until_end > 0 {
                end = Some(at + until_end);
            }
            if reply[0] == 1 && cost > 0 {
                last_write = Some(at);
                fragile = (reply[4] < 5000).then(|| at + reply[4]);
            }
            previous = Some(reply);
            calls += 1;
        }
    }
    reached.assert_reached(calls);
}

#[test]
fn all_with_quota_and_bucket_matches_lua() {
    let server = Server::start();
    let mut con = server.connect();
    let [all, quota, bucket] = ["all", "quota", "token_bucket"].map(|name| load(&mut con, name));
    let mut rng = Rng::new(0x5eed_000a);
    let mut reached = Reached::default();
    let mut calls = 0;
    for sequence in 0..40 {
        // A bucket and a quota per sequence, in RL.ALL (in either order)
        // and on their own.
        let (b, q) = (format!("{{s{sequence}}}:b"), format!("{{s{sequence}}}:q"));
        let mut now = rng.range(YEAR_1990_MS, YEAR_2040_MS);
        let mut quota_spec = random_quota(&mut rng);
        let mut bucket_spec = random_spec(&mut rng, true);
        let mut native = redis::pipe();
        let mut lua = redis::pipe();
        native.atomic();
        lua.atomic();
        let mut quota_calls = Vec::new();
        for call in 0..150 {
            if rng.chance(6) {
                quota_spec = random_quota(&mut rng);
            }
            if rng.chance(6) {
                bucket_spec = random_spec(&mut rng, true);
            }
            quota_spec.step(&mut rng, &mut now);
            let (quota_cost, bucket_cost) = (
                quota_spec.cost(&mut rng),
                rng.range(0, bucket_spec[0].min(3)),
            );
            let words = quota_spec.native_words(&mut rng);
            let bucket_words = spaced(&bucket_spec);
            match rng.range(0, 5) {
                0 => {
                    native.add_command(command(format!(
                        "RL.QUOTA native:{q} {words} COST {quota_cost} AT {now}"
                    )));
                    let mut cmd = redis::cmd("EVALSHA");
                    cmd.arg(&quota).arg(1).arg(format!("lua:{q}"));
                    quota_spec.lua_args(&mut cmd);
                    lua.add_command(cmd.arg(quota_cost).arg(now).clone());
                    quota_calls.push((call, None));
                }
                1 => {
                    native.add_command(command(format!(
                        "RL.TOKENBUCKET native:{b} {bucket_words} COST {bucket_cost} AT {now}"
                    )));
                    lua.add_command(command(format!(
                        "EVALSHA {bucket} 1 lua:{b} {bucket_words} {bucket_cost} {now}"
                    )));
                }
                _ => {
                    // The same words for both: the script takes the zone
                    // words RL.ALL takes.
                    let mut specs = [
                        (
                            b.as_str(),
                            format!("TOKENBUCKET {bucket_words}"),
                            bucket_cost,
                        ),
                        (q.as_str(), format!("QUOTA {words}"), quota_cost),
                    ];
                    if rng.chance(50) {
                        specs.reverse();
                    }
                    let keys = |side: &str| format!("{side}:{} {side}:{}", specs[0].0, specs[1].0);
                    let spec_words = format!("{} {}", specs[0].1, specs[1].1);
                    let costs = format!("{} {}", specs[0].2, specs[1].2);
                    native.add_command(command(format!(
                        "RL.ALL 2 {} {spec_words} COSTS {costs} AT {now}",
                        keys("native")
                    )));
                    lua.add_command(command(format!(
                        "EVALSHA {all} 2 {} {spec_words} {costs} {now}",
                        keys("lua")
                    )));
                    quota_calls.push((call, Some(if specs[0].0 == q { 2 } else { 3 })));
                }
            }
            // A write at a pinned time can set a TTL of a ms or two on the
            // real clock, and inside MULTI/EXEC a script checks expiry on
            // the real clock while a module command checks it at the
            // transaction's start: on a busy machine the script's key ran
            // out and the module's did not. The keys are kept, so that both
            // sides decide from their state alone.
            for key in [&b, &q] {
                native
                    .add_command(command(format!("PERSIST native:{key}")))
                    .ignore();
                lua.add_command(command(format!("PERSIST lua:{key}")))
                    .ignore();
            }
        }
        let native_replies: Vec<redis::Value> = native.query(&mut con).unwrap();
        let lua_replies: Vec<redis::Value> = lua.query(&mut con).unwrap();
        for (index, (n, l)) in native_replies.iter().zip(&lua_replies).enumerate() {
            assert_eq!(n, l, "sequence {sequence}, call {index}");
        }
        // The quota's own replies, alone or within RL.ALL.
        let mut previous: Option<Vec<i64>> = None;
        for (call, position) in quota_calls {
            let reply: Vec<i64> = match position {
                None => redis::from_redis_value(&native_replies[call]).unwrap(),
                Some(at) => {
                    let all: Vec<redis::Value> =
                        redis::from_redis_value(&native_replies[call]).unwrap();
                    redis::from_redis_value(&all[at]).unwrap()
                }
            };
            reached.add(previous.as_ref(), &reply);
            previous = Some(reply);
            calls += 1;
        }
    }
    reached.assert_reached(calls);
}

/// An error's text without what the scripting engine appends (the
/// script's sha and line).
fn script_error(error: redis::RedisError) -> String {
    let text = error_text(&error);
    match text.find(" script: ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[test]
fn quota_script_refuses_iana_names_and_errs_as_the_command_does() {
    let server = Server::start();
    let mut con = server.connect();
    let [quota, all] = ["quota", "all"].map(|name| load(&mut con, name));
    const IANA: &str =
        "ERR zone: IANA time zone names need the RL.QUOTA command; this script takes UTC or +hh:mm/-hh:mm";
    let lua = |con: &mut redis::Connection, key: &str, args: [&str; 6]| {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&quota).arg(1).arg(key).arg(&args[..]);
        cmd.query::<Vec<i64>>(con).map_err(script_error)
    };
    // An IANA name: refused, nothing written, a key's state unchanged.
    let at = "1764849600000";
    for zone in ["Europe/Berlin", "America/New_York", "Z"] {
        let refused = lua(&mut con, "fresh", ["5", "day", zone, "", "1", at]);
        assert_eq!(refused, Err(IANA.to_owned()), "{zone}");
    }
    assert_eq!(query::<i64>(&mut con, "EXISTS fresh"), 0);
    assert_eq!(
        lua(&mut con, "used", ["5", "day", "UTC", "", "2", at]),
        Ok(vec![1, 5, 3, 0, 43_200_000])
    );
    let before: Vec<String> = query(&mut con, "HGETALL used");
    let refused = lua(&mut con, "used", ["5", "day", "Europe/Berlin", "", "1", at]);
    assert_eq!(refused, Err(IANA.to_owned()));
    assert_eq!(query::<Vec<String>>(&mut con, "HGETALL used"), before);
    // The module takes the name.
    assert_eq!(
        ints(
            &mut con,
            format!("RL.QUOTA native 5 day TZ Europe/Berlin COST 2 AT {at}")
        ),
        [1, 5, 3, 0, 39_600_000]
    );
    // In RL.ALL, the spec is named and no key is written.
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&all).arg(2).arg("{a}b").arg("{a}q");
    cmd.arg(
        "TOKENBUCKET 5 1 1000 QUOTA 5 month TZ Europe/Berlin 1 1"
            .split(' ')
            .collect::<Vec<_>>(),
    )
    .arg(at);
    let refused = cmd.query::<redis::Value>(&mut con).map_err(script_error);
    assert_eq!(refused, Err(IANA.replacen("ERR ", "ERR spec 2: ", 1)));
    assert_eq!(query::<i64>(&mut con, "EXISTS {a}b {a}q"), 0);
    // Every other bad argument: the command's error word for word (the
    // command takes TZ, ANCHOR, COST and AT from the script's ARGV).
    for args in [
        ["5", "fortnight", "UTC", "", "1", at],
        ["5", "day", "+25:00", "", "1", at],
        ["5", "day", "+5:30", "", "1", at],
        ["5", "day", "+18:01", "", "1", at],
        ["5", "day", "-05:60", "", "1", at],
        ["5", "day", "+a'b\"\\\t\u{1}", "", "1", at],
        ["5", "day", "UTC", "253402128000000", "1", at],
        ["5", "day", "UTC", "-62135510400001", "1", at],
        ["5", "day", "UTC", "1e3", "1", at],
        ["5", "day", "+25:00", "x", "1", at],
        ["5", "day", "UTC", "", "1", "253402207201000"],
        ["5", "year", "UTC", "", "1", "253402127000000"],
    ] {
        let [limit, period, zone, anchor, cost, now] = args;
        let mut words = vec!["RL.QUOTA", "native:bad", limit, period, "TZ", zone];
        if !anchor.is_empty() {
            words.extend(["ANCHOR", anchor]);
        }
        words.extend(["COST", cost, "AT", now]);
        let expected = error_text(&call(&mut con, &words).expect_err(period));
        assert_eq!(lua(&mut con, "bad", args), Err(expected), "{args:?}");
    }
    assert_eq!(query::<i64>(&mut con, "EXISTS bad native:bad"), 0);
}

/// key, limit, period, zone, anchor, cost, AT, the reply.
type Example<'a> = (
    &'a str,
    i64,
    &'a str,
    &'a str,
    Option<i64>,
    i64,
    i64,
    [i64; 5],
);

#[test]
fn quota_worked_examples_match_lua() {
    const MIN: i64 = 60_000;
    const H: i64 = 60 * MIN;
    const D: i64 = 24 * H;
    let utc = |text: &str| text.parse::<jiff::Timestamp>().unwrap().as_millisecond();
    let server = Server::start();
    let mut con = server.connect();
    let sha: String = query(&mut con, ["SCRIPT", "LOAD", QUOTA_LUA]);
    let mut rng = Rng::new(0x5eed_000b);
    // A Sunday afternoon; the next Monday; a billing anchor on January
    // 31st at 10:00; one on February 29th; one at :17:30 past the hour.
    let t = utc("2024-03-10T15:30:00Z");
    let t2 = utc("2024-03-11T02:00:00Z");
    let a = utc("2024-01-31T10:00:00Z");
    let f = utc("2024-02-29T00:00:00Z");
    let an = utc("2024-03-10T12:17:30Z");
    #[rustfmt::skip]
    let examples: &[Example] = &[
        // days and weeks in UTC, +05:30 and -08:00
        ("d1", 5, "day", "UTC", None, 1, t, [1, 5, 4, 0, 8 * H + 30 * MIN]),
        ("d2", 5, "DAY", "+05:30", None, 1, t, [1, 5, 4, 0, 3 * H]),
        ("d3", 5, "Day", "-08:00", None, 1, t, [1, 5, 4, 0, 16 * H + 30 * MIN]),
        ("w1", 5, "week", "utc", None, 1, t, [1, 5, 4, 0, 8 * H + 30 * MIN]),
        ("w2", 5, "week", "+05:30", None, 1, t, [1, 5, 4, 0, 3 * H]),
        ("w3", 5, "week", "UTC", None, 1, t2, [1, 5, 4, 0, 7 * D - 2 * H]),
        ("w4", 5, "week", "-08:00", None, 1, t2, [1, 5, 4, 0, 6 * H]),
        // months from January 31st 10:00: February 29th (28th in 2025), March 31st, April 30th
        ("m1", 5, "month", "UTC", Some(a), 1, utc("2024-02-15T00:00:00Z"), [1, 5, 4, 0, 14 * D + 10 * H]),
        ("m2", 5, "month", "UTC", Some(a), 1, utc("2024-03-01T00:00:00Z"), [1, 5, 4, 0, 30 * D + 10 * H]),
        ("m3", 5, "month", "UTC", Some(a), 1, utc("2025-02-28T09:59:59.999Z"), [1, 5, 4, 0, 1]),
        ("m4", 5, "month", "UTC", Some(a), 1, utc("2025-02-28T10:00:00Z"), [1, 5, 4, 0, 31 * D]),
        ("m5", 5, "month", "UTC", Some(a), 1, utc("2023-12-15T00:00:00Z"), [1, 5, 4, 0, 16 * D + 10 * H]),
        ("m6", 5, "month", "UTC", Some(a), 1, utc("2024-04-30T09:00:00Z"), [1, 5, 4, 0, H]),
        ("m7", 5, "month", "UTC", Some(a), 1, utc("2024-04-30T10:00:00Z"), [1, 5, 4, 0, 31 * D]),
        // at +05:30 the anchor is January 31st 15:30 local: February 29th 15:30 local
        ("m8", 5, "month", "+05:30", Some(a), 1, utc("2024-02-29T09:59:00Z"), [1, 5, 4, 0, MIN]),
        // quarters from January 1st, and from January 31st 10:00 (April 30th, July 31st)
        ("q1", 5, "quarter", "UTC", None, 1, utc("2024-05-20T00:00:00Z"), [1, 5, 4, 0, 42 * D]),
        ("q2", 5, "quarter", "UTC", Some(a), 1, utc("2024-05-20T00:00:00Z"), [1, 5, 4, 0, 72 * D + 10 * H]),
        ("q3", 5, "quarter", "-08:00", None, 1, utc("2024-07-01T07:00:00Z"), [1, 5, 4, 0, H]),
        // years from February 29th: February 28th in other years
        ("y1", 5, "year", "UTC", Some(f), 1, utc("2025-06-01T00:00:00Z"), [1, 5, 4, 0, 272 * D]),
        ("y2", 5, "year", "UTC", Some(f), 1, utc("2028-03-01T00:00:00Z"), [1, 5, 4, 0, 364 * D]),
        ("y3", 5, "year", "UTC", Some(f), 1, utc("2028-02-28T12:00:00Z"), [1, 5, 4, 0, 12 * H]),
        // years from January 1st
        ("y4", 5, "year", "UTC", None, 1, utc("2024-12-31T23:00:00Z"), [1, 5, 4, 0, H]),
        // minutes and hours from :17:30, or from local :00 at +05:45 (UTC :15)
        ("mi1", 5, "minute", "UTC", Some(an), 1, utc("2024-03-10T15:00:00Z"), [1, 5, 4, 0, 30 * 1000]),
        ("h1", 5, "hour", "UTC", Some(an), 1, utc("2024-03-10T15:00:00Z"), [1, 5, 4, 0, 17 * MIN + 30 * 1000]),
        ("h2", 5, "hour", "+05:45", None, 1, utc("2024-03-10T15:00:00Z"), [1, 5, 4, 0, 15 * MIN]),
        ("h3", 5, "hour", "+05:45", Some(an), 1, utc("2024-03-10T15:00:00Z"), [1, 5, 4, 0, 17 * MIN + 30 * 1000]),
        ("mi2", 5, "minute", "-09:30", Some(an), 1, utc("2024-03-10T15:00:00Z"), [1, 5, 4, 0, 30 * 1000]),
        // a denial, a peek, a cost that never fits, a call before the last write
        ("x", 3, "day", "UTC", None, 2, t, [1, 3, 1, 0, 8 * H + 30 * MIN]),
        ("x", 3, "day", "UTC", None, 2, t + 1000, [0, 3, 1, 8 * H + 30 * MIN - 1000, 8 * H + 30 * MIN - 1000]),
        ("x", 3, "day", "UTC", None, 0, t + 2000, [1, 3, 1, 0, 8 * H + 30 * MIN - 2000]),
        ("x", 3, "day", "UTC", None, 4, t + 3000, [0, 3, 1, -1, 8 * H + 30 * MIN - 3000]),
        ("x", 3, "day", "UTC", None, 1, t - 5000, [1, 3, 0, 0, 8 * H + 30 * MIN]),
        // other parameters keep what their period used (the last write: 15:30Z),
        // an hour does not; the count is what the last write left
        ("x", 3, "day", "-08:00", None, 0, utc("2024-03-10T16:00:00Z"), [1, 3, 0, 0, 16 * H]),
        ("x", 3, "day", "+09:00", None, 0, utc("2024-03-10T16:00:00Z"), [1, 3, 0, 0, 23 * H]),
        ("x", 3, "hour", "UTC", None, 0, utc("2024-03-10T16:00:00Z"), [1, 3, 3, 0, 0]),
        ("x", 3, "hour", "UTC", None, 1, utc("2024-03-10T16:00:00Z"), [1, 3, 2, 0, H]),
        ("x", 3, "day", "UTC", None, 0, utc("2024-03-10T16:10:00Z"), [1, 3, 2, 0, 8 * H - 10 * MIN]),
        ("x", 3, "day", "UTC", None, 0, utc("2024-03-11T00:00:00Z"), [1, 3, 3, 0, 0]),
        ("x", 1, "year", "UTC", None, 1, utc("2024-03-11T00:00:00Z"), [0, 1, 0, 296 * D, 296 * D]),
    ];
    for &(key, limit, period, zone, anchor, cost, now, expected) in examples {
        let spec = QuotaSpec {
            limit,
            period: PERIODS
                .iter()
                .position(|p| p.eq_ignore_ascii_case(period))
                .unwrap(),
            zone: zone.to_owned(),
            anchor,
        };
        let words = spec.native_words(&mut rng);
        let reply = quota_both(&mut con, &sha, key, &words, &spec, cost, now);
        assert_eq!(reply, expected, "{key} {words} COST {cost} AT {now}");
    }
}

/// A write whose TTL is 1 ms keeps its key: Redis's PEXPIRE deletes a key
/// at once when its TTL passes between its two reads of the clock, so the
/// scripts set at least 10 ms (at 1 ms, about one such write in 20,000 lost
/// its key; at 2 ms, one in 400,000 on a loaded machine). Each call runs
/// in a MULTI/EXEC with an EXISTS, which checks expiry at the transaction's
/// start: only that deletion fails it.
#[test]
fn a_script_write_with_a_ttl_of_1_ms_keeps_its_key() {
    let server = Server::start();
    let mut con = server.connect();
    let sha: String = query(&mut con, ["SCRIPT", "LOAD", TOKEN_BUCKET_LUA]);
    for batch in 0..20 {
        let mut pipeline = redis::pipe();
        for call in 0..2_000i64 {
            // A bucket of one token refilling every ms, emptied: full again
            // (and its TTL over) 1 ms later.
            let now = 1_700_000_000_000 + (batch * 2_000 + call) * 2;
            pipeline
                .cmd("MULTI")
                .ignore()
                .add_command(command(format!("EVALSHA {sha} 1 b 1 1 1 1 {now}")))
                .ignore()
                .add_command(command("EXISTS b"))
                .ignore()
                .cmd("EXEC");
        }
        let results: Vec<(Vec<i64>, i64)> = pipeline.query(&mut con).unwrap();
        for (index, (reply, exists)) in results.iter().enumerate() {
            assert_eq!(reply[0], 1, "batch {batch}, call {index}: allowed");
            assert_eq!(*exists, 1, "batch {batch}, call {index}: the key was kept");
        }
    }
}
