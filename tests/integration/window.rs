//! RL.WINDOW against real servers: the contract's worked examples, its
//! errors, PRECISION 1 against RL.SLIDELOG, the Lua script, RL.ALL,
//! memory, persistence and replicas.

use crate::common::{
    add_kept, assert_states_persist, call, command, dump, error, expire_time, ints, kept,
    kept_ints, query, start_pair, timed, Rng, Server,
};

const WINDOW_LUA: &str = include_str!("../../lua/window.lua");
const T: i64 = 1_700_000_000_000;
const DAY: i64 = 86_400_000;

#[test]
fn sliding_slots_count_from_their_last_ms() {
    let server = Server::start();
    let mut con = server.connect();
    // A minute in 1 s slots, limit 3: a call at 1_200 counts as made at
    // 1_999, so it leaves the window at 61_999.
    let at = |ms: i64| T / 1000 * 1000 + ms;
    let call = |con: &mut redis::Connection, ms: i64, cost: i64| {
        ints(
            con,
            format!(
                "RL.WINDOW w 3 60000 PRECISION 1000 COST {cost} AT {}",
                at(ms)
            ),
        )
    };
    assert_eq!(call(&mut con, 1_200, 1), [1, 3, 2, 0, 60_799]);
    assert_eq!(call(&mut con, 1_500, 2), [1, 3, 0, 0, 60_499]);
    assert_eq!(call(&mut con, 30_000, 1), [0, 3, 0, 31_999, 31_999]);
    assert_eq!(call(&mut con, 61_998, 1), [0, 3, 0, 1, 1]);
    assert_eq!(call(&mut con, 61_999, 1), [1, 3, 2, 0, 60_000]);
    // A call before the last write runs at it.
    assert_eq!(call(&mut con, 50_000, 0), call(&mut con, 61_999, 0));
}

#[test]
fn fixed_windows_count_per_window_and_reset_on_the_clock() {
    let server = Server::start();
    let mut con = server.connect();
    let start = T / 60_000 * 60_000;
    let call = |con: &mut redis::Connection, ms: i64, cost: i64| {
        ints(
            con,
            format!("RL.WINDOW f 2 60000 FIXED COST {cost} AT {}", start + ms),
        )
    };
    assert_eq!(call(&mut con, 1_000, 0), [1, 2, 2, 0, 0]);
    assert_eq!(call(&mut con, 1_000, 1), [1, 2, 1, 0, 59_000]);
    // This write leaves the key 1 ms of the real clock: kept, so that the
    // calls after it decide from its state.
    let last = format!("RL.WINDOW f 2 60000 FIXED COST 1 AT {}", start + 59_999);
    let reply: Vec<i64> = redis::from_redis_value(&kept(&mut con, last, &["f"])).unwrap();
    assert_eq!(reply, [1, 2, 0, 0, 1]);
    assert_eq!(call(&mut con, 59_999, 1), [0, 2, 0, 1, 1]);
    assert_eq!(call(&mut con, 59_999, 3), [0, 2, 0, -1, 1]);
    assert_eq!(call(&mut con, 60_000, 2), [1, 2, 0, 0, 60_000]);
}

#[test]
fn the_default_precision_is_a_sixtieth_of_the_window() {
    let server = Server::start();
    let mut con = server.connect();
    ints(&mut con, format!("RL.WINDOW d 10 {DAY} AT {T}"));
    let view: Vec<String> = query(&mut con, format!("RL.INSPECT d AT {T}"));
    let field = |name: &str| {
        let at = view.iter().position(|f| f == name).unwrap();
        view[at + 1].clone()
    };
    assert_eq!(field("type"), "window");
    assert_eq!(field("precision_ms"), (DAY / 60).to_string());
    assert_eq!(field("used"), "1");
    // A day's window: the key's TTL on the real clock outlives the INSPECT.
    ints(&mut con, format!("RL.WINDOW fx 10 {DAY} FIXED AT {T}"));
    let view: Vec<String> = query(&mut con, format!("RL.INSPECT fx AT {T}"));
    assert!(view.windows(2).any(|w| w == ["precision_ms", "fixed"]));
}

#[test]
fn bad_input_names_the_argument_and_changes_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    ints(&mut con, format!("RL.WINDOW w 5 60000 AT {T}"));
    let dumped = dump(&mut con, b"w");
    for (line, expected) in [
        (
            "RL.WINDOW w 0 60000",
            "ERR limit must be an integer from 1 to",
        ),
        (
            "RL.WINDOW w 5 0",
            "ERR window_ms must be an integer from 1 to",
        ),
        (
            "RL.WINDOW w 5 60000 PRECISION 0",
            "ERR PRECISION must be an integer from 1 to",
        ),
        (
            "RL.WINDOW w 5 60000 PRECISION 60001",
            "ERR PRECISION must be an integer from 1 to 60000",
        ),
        (
            "RL.WINDOW w 5 60000 PRECISION 10 FIXED",
            "ERR PRECISION and FIXED cannot be combined",
        ),
        (
            "RL.WINDOW w 5 60000 FIXED FIXED",
            "ERR option FIXED given more than once",
        ),
        (
            "RL.WINDOW w 5 60000 COST -1",
            "ERR COST must be an integer from 0 to",
        ),
        ("RL.WINDOW w 5 60000 SLOTS 3", "ERR unknown option 'SLOTS'"),
        ("RL.WINDOW w 5", "ERR wrong number of arguments"),
    ] {
        let got = error(&mut con, line);
        assert!(got.starts_with(expected), "{line}: {got}");
    }
    assert_eq!(dump(&mut con, b"w"), dumped);
    // A key holds at most min(limit, window_ms / PRECISION + 1) slots, which
    // rl.max-log-limit bounds as it bounds a log.
    query::<()>(&mut con, "CONFIG SET rl.max-log-limit 100");
    let got = error(&mut con, "RL.WINDOW w 1000 60000 PRECISION 1");
    assert!(
        got.starts_with("ERR PRECISION 1 lets a key hold 1000 slots")
            && got.contains("rl.max-log-limit (100)"),
        "{got}"
    );
    assert_eq!(dump(&mut con, b"w"), dumped);
    assert_eq!(
        ints(&mut con, "RL.WINDOW w 50 60000 PRECISION 1 COST 0")[0],
        1
    );
    assert_eq!(
        ints(&mut con, "RL.WINDOW w 1000 60000 PRECISION 1000 COST 0")[0],
        1
    );
    query::<()>(&mut con, "SET s x");
    let got = error(&mut con, "RL.WINDOW s 5 60000");
    assert!(got.starts_with("WRONGTYPE"), "{got}");
    // A peek creates nothing.
    assert_eq!(
        ints(&mut con, "RL.WINDOW nothing 5 60000 COST 0"),
        [1, 5, 5, 0, 0]
    );
    assert_eq!(query::<i64>(&mut con, "EXISTS nothing"), 0);
}

#[test]
fn the_key_expires_when_its_count_is_gone() {
    let server = Server::start();
    let mut con = server.connect();
    let (reply, during) = timed(&mut con, |con| ints(con, format!("RL.WINDOW w 5 {DAY}")));
    let written_at = expire_time(&mut con, b"w") - reply[4];
    assert!(during.contains(&written_at), "{written_at}");
    // A denied call and a peek leave the expiry as it is.
    let now = *during.end();
    let before = expire_time(&mut con, b"w");
    ints(&mut con, format!("RL.WINDOW w 5 {DAY} COST 9 AT {now}"));
    ints(&mut con, format!("RL.WINDOW w 5 {DAY} COST 0 AT {now}"));
    assert_eq!(expire_time(&mut con, b"w"), before);
}

/// Random traffic with changing limits and windows, times that step back,
/// peeks and oversized costs.
fn traffic(rng: &mut Rng, calls: usize, mut each: impl FnMut(&mut Rng, i64, i64, i64, i64)) {
    let mut now = T + rng.range(0, 1_000_000);
    let (mut limit, mut window) = (rng.range(1, 20), rng.range(1, 5_000));
    for _ in 0..calls {
        if rng.chance(5) {
            limit = rng.range(1, 20);
            window = rng.range(1, 5_000);
        }
        now += match rng.range(0, 9) {
            0 => -rng.range(1, 300),
            1 | 2 => 0,
            _ => rng.range(1, window),
        };
        let cost = match rng.range(0, 9) {
            0 => 0,
            1 => limit + 1,
            _ => rng.range(1, 4),
        };
        each(rng, limit, window, cost, now);
    }
}

#[test]
fn precision_one_decides_as_the_sliding_log() {
    let server = Server::start();
    let mut con = server.connect();
    let mut rng = Rng::new(0x1d_0001);
    for sequence in 0..20 {
        let (mut windows, mut logs) = (redis::pipe(), redis::pipe());
        let (window_key, log_key) = (format!("w:{sequence}"), format!("l:{sequence}"));
        traffic(&mut rng, 300, |_, limit, window, cost, now| {
            add_kept(
                &mut windows,
                command(format!(
                    "RL.WINDOW {window_key} {limit} {window} PRECISION 1 COST {cost} AT {now}"
                )),
                &[&window_key],
            );
            add_kept(
                &mut logs,
                command(format!(
                    "RL.SLIDELOG {log_key} {limit} {window} COST {cost} AT {now}"
                )),
                &[&log_key],
            );
        });
        let windows = kept_ints(windows.query(&mut con).unwrap());
        let logs = kept_ints(logs.query(&mut con).unwrap());
        assert_eq!(windows, logs, "sequence {sequence}");
        assert!(windows.iter().any(|r| r[0] == 0) && windows.iter().any(|r| r[0] == 1));
    }
}

#[test]
fn the_lua_script_gives_the_same_replies() {
    let server = Server::start();
    let mut con = server.connect();
    let sha: String = query(&mut con, ["SCRIPT", "LOAD", WINDOW_LUA]);
    let mut rng = Rng::new(0x1d_0002);
    for sequence in 0..30 {
        let (mut native, mut lua) = (redis::pipe(), redis::pipe());
        let mut lines = Vec::new();
        let mut precision = String::new();
        traffic(&mut rng, 200, |rng, limit, window, cost, now| {
            if precision.is_empty() || rng.chance(5) {
                precision = match rng.range(0, 3) {
                    0 => "FIXED".to_owned(),
                    1 => window.min(rng.range(1, 400)).to_string(),
                    _ => (window / 60).max(1).to_string(),
                };
            }
            let precision = match precision.parse::<i64>() {
                Ok(p) => p.min(window).to_string(),
                Err(_) => precision.clone(),
            };
            let slots = if precision == "FIXED" {
                "FIXED".to_owned()
            } else {
                format!("PRECISION {precision}")
            };
            let line =
                format!("RL.WINDOW n:{sequence} {limit} {window} {slots} COST {cost} AT {now}");
            add_kept(&mut native, command(&line), &[format!("n:{sequence}")]);
            lines.push(line);
            add_kept(
                &mut lua,
                command(format!(
                    "EVALSHA {sha} 1 l:{sequence} {limit} {window} {precision} {cost} {now}"
                )),
                &[format!("l:{sequence}")],
            );
        });
        let native = kept_ints(native.query(&mut con).unwrap());
        let lua = kept_ints(lua.query(&mut con).unwrap());
        for (index, (n, l)) in native.iter().zip(&lua).enumerate() {
            assert_eq!(n, l, "sequence {sequence}, call {index}: {}", lines[index]);
        }
    }
    // Left out, the precision is a sixtieth of the window.
    let native = ints(&mut con, format!("RL.WINDOW n 5 60000 AT {T}"));
    let t = T.to_string();
    let lua = ints(
        &mut con,
        ["EVALSHA", &sha, "1", "l", "5", "60000", "", "1", &t],
    );
    assert_eq!(native, lua);
    // Bounds in errors are written out in full, not as 1e+14.
    let got = error(
        &mut con,
        ["EVALSHA", &sha, "1", "l", "5", "100000000000000", "0", "1"],
    );
    assert!(
        got.starts_with("ERR PRECISION must be an integer from 1 to 100000000000000 "),
        "{got}"
    );
}

#[test]
fn rl_all_takes_window_specs_all_or_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    let line = |cost: i64| {
        format!(
            "RL.ALL 3 w f b WINDOW 3 60000 PRECISION 1000 WINDOW 10 60000 FIXED \
             TOKENBUCKET 100 1 60000 COST {cost} AT {T}"
        )
    };
    let head = |con: &mut redis::Connection, line: String| {
        let reply: Vec<redis::Value> = query(con, line);
        let int = |v: &redis::Value| -> i64 { redis::from_redis_value(v).unwrap() };
        (int(&reply[0]), int(&reply[1]))
    };
    assert_eq!(head(&mut con, line(2)), (1, 0));
    // The first window has room for 1 more: a cost of 2 takes nothing, and
    // may come back once its slot (counted at T + 999) leaves the window.
    assert_eq!(head(&mut con, line(2)), (0, 60_999));
    let alone =
        |con: &mut redis::Connection, line: &str| ints(con, format!("{line} COST 0 AT {T}"));
    assert_eq!(alone(&mut con, "RL.WINDOW w 3 60000 PRECISION 1000")[2], 1);
    assert_eq!(alone(&mut con, "RL.WINDOW f 10 60000 FIXED")[2], 8);
    assert_eq!(alone(&mut con, "RL.TOKENBUCKET b 100 1 60000")[2], 98);
    let got = error(&mut con, "RL.ALL 1 w WINDOW 3 60000 PRECISION 5 FIXED");
    assert_eq!(got, "ERR spec 1: PRECISION and FIXED cannot be combined");
    // A spec's parameters are checked before its options.
    let got = error(&mut con, "RL.ALL 1 w WINDOW x 60000 PRECISION");
    assert!(got.starts_with("ERR spec 1: limit must be"), "{got}");
}

#[test]
fn a_days_window_holding_100000_calls_costs_at_most_320_bytes() {
    let server = Server::start();
    let mut con = server.connect();
    let mut pipe = redis::pipe();
    for n in 0..100_000 {
        let at = T + n * DAY / 100_000;
        pipe.add_command(command(format!(
            "RL.WINDOW quota:user:42 1000000 {DAY} AT {at}"
        )))
        .ignore();
        pipe.add_command(command(format!(
            "RL.SLIDELOG exact:user:42 1000000 {DAY} AT {at}"
        )))
        .ignore();
        pipe.add_command(command(format!(
            "RL.WINDOW exactw:user:42 1000000 {DAY} PRECISION 1 AT {at}"
        )))
        .ignore();
    }
    pipe.query::<()>(&mut con).unwrap();
    let usage = |con: &mut redis::Connection, key: &str| -> i64 {
        query(con, format!("MEMORY USAGE {key}"))
    };
    let window = usage(&mut con, "quota:user:42");
    assert!(window <= 320, "{window} bytes");
    let (log, exact) = (
        usage(&mut con, "exact:user:42"),
        usage(&mut con, "exactw:user:42"),
    );
    assert!(
        exact <= log,
        "PRECISION 1: {exact} bytes, RL.SLIDELOG {log}"
    );
    // The first slot (24 minutes, the 741 calls up to T + 639_999) counts
    // until its last ms leaves the day.
    let peek = |con: &mut redis::Connection, at: i64| {
        ints(
            con,
            format!("RL.WINDOW quota:user:42 1000000 {DAY} COST 0 AT {at}"),
        )[2]
    };
    assert_eq!(peek(&mut con, T + DAY + 639_998), 900_000);
    assert_eq!(peek(&mut con, T + DAY + 639_999), 900_741);
}

#[test]
fn persistence_and_replicas_keep_the_exact_state() {
    let (master, replica) = start_pair();
    let mut con = master.connect();
    let mut rng = Rng::new(0x1d_0003);
    let mut keys = Vec::new();
    for index in 0..40 {
        let key = format!("w:{index}");
        let slots = ["FIXED", "PRECISION 1", "PRECISION 250", ""][index % 4];
        let mut pipe = redis::pipe();
        traffic(&mut rng, 50, |rng, limit, window, cost, now| {
            // Long windows keep every key alive on the real clock; every
            // fourth call reads the server clock.
            let window = window * 1_000_000;
            let at = if rng.chance(25) {
                String::new()
            } else {
                format!("AT {now}")
            };
            let line = format!("RL.WINDOW {key} {limit} {window} {slots} COST {cost} {at}");
            pipe.add_command(command(line)).ignore();
        });
        pipe.query::<()>(&mut con).unwrap();
        if dump(&mut con, key.as_bytes()).is_some() {
            keys.push(key);
        }
    }
    assert!(keys.len() > 20);
    assert_states_persist(&master, &replica, &keys);
    assert!(call(&mut con, "RL.RESTORESTATE x window 1").is_err());
}
