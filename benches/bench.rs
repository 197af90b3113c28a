//! `make bench`: the module against INCR and against its Lua scripts, on a
//! redis-server of its own, with redis-benchmark (50 clients, 100,000 random
//! keys, pipeline 1 and 16), rounds interleaved so that the machine's noise
//! hits every row alike. Prints a markdown table, writes bench/ratios.svg and
//! bench/results.md. BENCH_ROUNDS sets the rounds (5), BENCH_REQUESTS the
//! requests per run at pipeline 16 (400,000; a quarter at pipeline 1, and a
//! quarter again for the Lua scripts, which are many times slower).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use common::Server;
use redis::Connection;

const KEYS: usize = 100_000;
const CLIENTS: usize = 50;

/// One row: a name, the command redis-benchmark sends, the commandstats
/// entry it shows up under, and the Lua row it is compared with.
struct Row {
    name: String,
    words: Vec<String>,
    /// Whether its keys are logs (60 s windows, so 60 s TTLs): a round
    /// lasts longer, so an unmeasured run of the row first brings them back
    /// and the measured run updates logs in place, as the rows on buckets do.
    logs: bool,
    /// Whether each of its keys gets one call before any run: a denied row's
    /// limiters, which that call empties.
    emptied: bool,
    stat: &'static str,
    lua_of: Option<&'static str>,
}

fn row(name: &str, stat: &'static str, words: &str) -> Row {
    Row {
        name: name.to_owned(),
        words: words.split_whitespace().map(str::to_owned).collect(),
        logs: false,
        emptied: false,
        stat,
        lua_of: None,
    }
}

impl Row {
    /// The requests of a run of `requests` that this row sends: a quarter
    /// for the Lua scripts, which are many times slower.
    fn share(&self, requests: usize) -> usize {
        if self.lua_of.is_some() {
            requests / 4
        } else {
            requests
        }
    }
}

fn on_logs(row: Row) -> Row {
    Row { logs: true, ..row }
}

fn emptied(row: Row) -> Row {
    Row {
        emptied: true,
        ..row
    }
}

/// Sends the row's command once for each of the KEYS keys redis-benchmark
/// draws, named as it names them (`__rand_int__` becomes 12 digits).
fn call_once_per_key(con: &mut Connection, words: &[String]) {
    for first in (0..KEYS).step_by(10_000) {
        let mut pipe = redis::pipe();
        for key in first..(first + 10_000).min(KEYS) {
            let number = format!("{key:012}");
            let command = pipe.cmd(&words[0]);
            for word in &words[1..] {
                command.arg(word.replace("__rand_int__", &number));
            }
            command.ignore();
        }
        pipe.query::<()>(con).expect("one call per key");
    }
}

fn lua_row(name: &str, native: &'static str, sha: &str, keys: usize, args: &str) -> Row {
    let mut words = vec!["EVALSHA".to_owned(), sha.to_owned(), keys.to_string()];
    words.extend(args.split_whitespace().map(str::to_owned));
    Row {
        name: name.to_owned(),
        words,
        logs: false,
        emptied: false,
        stat: "evalsha",
        lua_of: Some(native),
    }
}

fn load(con: &mut Connection, name: &str) -> String {
    let source = std::fs::read_to_string(format!("{}/lua/{name}.lua", env!("CARGO_MANIFEST_DIR")))
        .expect("script");
    redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(source)
        .query(con)
        .expect("SCRIPT LOAD")
}

fn rows(con: &mut Connection) -> Vec<Row> {
    let bucket = load(con, "token_bucket");
    let log = load(con, "sliding_log");
    let all = load(con, "all");
    let window = load(con, "window");
    // Keys updated in place: periods and windows far longer than the run,
    // capacities far above what the run takes (peek rows on logs follow the
    // allowed row, which brings the logs back). Denied rows run on limiters
    // of one unit an hour, which each key's first call takes before the runs.
    let big = "1000000000";
    vec![
        row("INCR", "incr", "INCR counter:__rand_int__"),
        row("RL.TOKENBUCKET allowed", "rl.tokenbucket", &format!("RL.TOKENBUCKET b:__rand_int__ {big} 1 3600000")),
        row(
            "Module floor: RL.TOKENBUCKET's words, no key",
            "floor.bucket",
            &format!("FLOOR.BUCKET b:__rand_int__ {big} 1 3600000"),
        ),
        emptied(row("RL.TOKENBUCKET denied", "rl.tokenbucket", "RL.TOKENBUCKET d:__rand_int__ 1 1 3600000")),
        row("RL.TOKENBUCKET peek", "rl.tokenbucket", &format!("RL.TOKENBUCKET b:__rand_int__ {big} 1 3600000 COST 0")),
        row("RL.TOKENBUCKET fresh keys", "rl.tokenbucket", "RL.TOKENBUCKET f:__rand_int__ 10 10 1"),
        row("RL.COST allowed", "rl.cost", &format!("RL.COST c:__rand_int__ {big} 1 3600000 7")),
        on_logs(row("RL.SLIDELOG allowed", "rl.slidelog", "RL.SLIDELOG l:__rand_int__ 100 60000")),
        emptied(row("RL.SLIDELOG denied", "rl.slidelog", "RL.SLIDELOG ld:__rand_int__ 1 3600000")),
        row("RL.SLIDELOG peek", "rl.slidelog", "RL.SLIDELOG l:__rand_int__ 100 60000 COST 0"),
        row("RL.SLIDELOG fresh keys", "rl.slidelog", "RL.SLIDELOG g:__rand_int__ 100 1"),
        row("RL.WINDOW allowed", "rl.window", &format!("RL.WINDOW w:__rand_int__ {big} 3600000")),
        emptied(row("RL.WINDOW denied", "rl.window", "RL.WINDOW wd:__rand_int__ 1 3600000")),
        row("RL.WINDOW peek", "rl.window", &format!("RL.WINDOW w:__rand_int__ {big} 3600000 COST 0")),
        on_logs(row(
            "RL.ALL bucket+log",
            "rl.all",
            &format!("RL.ALL 2 ab:__rand_int__ al:__rand_int__ TOKENBUCKET {big} 1 3600000 SLIDELOG 100 60000"),
        )),
        row("RL.INSPECT", "rl.inspect", "RL.INSPECT b:__rand_int__"),
        row("CL.THROTTLE allowed", "cl.throttle", &format!("CL.THROTTLE t:__rand_int__ {big} {big} 3600")),
        lua_row("Lua token_bucket.lua", "RL.TOKENBUCKET allowed", &bucket, 1, &format!("lb:__rand_int__ {big} 1 3600000 1")),
        lua_row("Lua token_bucket.lua (cost)", "RL.COST allowed", &bucket, 1, &format!("lc:__rand_int__ {big} 1 3600000 7")),
        on_logs(lua_row("Lua sliding_log.lua", "RL.SLIDELOG allowed", &log, 1, "ll:__rand_int__ 100 60000 1")),
        lua_row("Lua window.lua", "RL.WINDOW allowed", &window, 1, &format!("lw:__rand_int__ {big} 3600000 60000 1")),
        on_logs(lua_row(
            "Lua all.lua",
            "RL.ALL bucket+log",
            &all,
            2,
            &format!("lab:__rand_int__ lal:__rand_int__ TOKENBUCKET {big} 1 3600000 SLIDELOG 100 60000 1 1"),
        )),
    ]
}

/// Runs redis-benchmark once; returns requests per second.
fn benchmark(port: u16, pipeline: usize, requests: usize, words: &[String]) -> f64 {
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-c",
            &CLIENTS.to_string(),
            "-n",
            &requests.to_string(),
            "-r",
            &KEYS.to_string(),
        ])
        .args(["-P", &pipeline.to_string(), "--csv"])
        .args(words)
        .output()
        .expect("redis-benchmark (apt-get install redis-tools)");
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default();
    line.split(',')
        .nth(1)
        .and_then(|f| f.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("no result from redis-benchmark {words:?}: {text}"))
}

fn usec_per_call(con: &mut Connection, stat: &str) -> f64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
    info.lines()
        .find(|l| l.to_lowercase().starts_with(&format!("cmdstat_{stat}:")))
        .and_then(|l| l.split(',').find_map(|f| f.strip_prefix("usec_per_call=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

#[derive(Default)]
struct Measure {
    rps: Vec<f64>,
    ratio: Vec<f64>,
    usec: Vec<f64>,
}

/// Reservation/settle and acquire/release pairs need the id the first call
/// returned: driven by our own client, with INCR through the same client as
/// their reference. Returns requests per second for each of the three.
fn paired_rows(server: &Server, seconds: f64) -> [f64; 3] {
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        let client = server.client();
        let mut results = [0.0; 3];
        for (index, result) in results.iter_mut().enumerate() {
            let start = Instant::now();
            let mut tasks = Vec::new();
            for task in 0..CLIENTS {
                let client = client.clone();
                tasks.push(tokio::spawn(async move {
                    let mut con = client
                        .get_multiplexed_async_connection()
                        .await
                        .expect("connect");
                    let mut calls = 0u64;
                    let mut n = task * 7919;
                    while start.elapsed().as_secs_f64() < seconds {
                        n = (n + 1) % KEYS;
                        match index {
                            0 => {
                                let _: i64 = redis::cmd("INCR")
                                    .arg(format!("pc:{n}"))
                                    .query_async(&mut con)
                                    .await
                                    .expect("incr");
                                calls += 1;
                            }
                            1 => {
                                let reply: Vec<i64> = redis::cmd("RL.RESERVE")
                                    .arg(format!("pr:{n}"))
                                    .arg(1_000_000_000i64)
                                    .arg(1)
                                    .arg(3_600_000)
                                    .arg(5)
                                    .arg(60_000)
                                    .query_async(&mut con)
                                    .await
                                    .expect("reserve");
                                let _: Vec<i64> = redis::cmd("RL.SETTLE")
                                    .arg(format!("pr:{n}"))
                                    .arg(reply[5])
                                    .arg(3)
                                    .query_async(&mut con)
                                    .await
                                    .expect("settle");
                                calls += 2;
                            }
                            _ => {
                                let reply: Vec<i64> = redis::cmd("RL.ACQUIRE")
                                    .arg(format!("pa:{n}"))
                                    .arg(1000)
                                    .arg(60_000)
                                    .query_async(&mut con)
                                    .await
                                    .expect("acquire");
                                let _: i64 = redis::cmd("RL.RELEASE")
                                    .arg(format!("pa:{n}"))
                                    .arg(reply[5])
                                    .query_async(&mut con)
                                    .await
                                    .expect("release");
                                calls += 2;
                            }
                        }
                    }
                    calls
                }));
            }
            let mut calls = 0;
            for task in tasks {
                calls += task.await.expect("task");
            }
            *result = calls as f64 / start.elapsed().as_secs_f64();
        }
        results
    })
}

fn used_memory(con: &mut Connection) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Bytes per key (used_memory delta over `keys` keys, each filled by
/// `entries` calls of `call`), and MEMORY USAGE of one of them.
fn memory_row(
    con: &mut Connection,
    keys: usize,
    entries: usize,
    call: &dyn Fn(&mut redis::Pipeline, usize, usize),
) -> (f64, i64) {
    redis::cmd("FLUSHALL").query::<()>(con).unwrap();
    let before = used_memory(con);
    let mut pipe = redis::pipe();
    let mut queued = 0;
    for key in 0..keys {
        for entry in 0..entries {
            call(&mut pipe, key, entry);
            pipe.ignore();
            queued += 1;
            if queued == 10_000 {
                pipe.query::<()>(con).unwrap();
                pipe = redis::pipe();
                queued = 0;
            }
        }
    }
    pipe.query::<()>(con).unwrap();
    let per_key = (used_memory(con) - before) as f64 / keys as f64;
    let usage: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("m:0")
        .arg("SAMPLES")
        .arg(0)
        .query(con)
        .unwrap_or(0);
    (per_key, usage)
}

/// Memory is measured on a server of its own, with no replica (whose
/// buffers would be counted), after a first fill that is thrown away (so the
/// replication backlog and the key tables have grown already).
fn memory_table() -> String {
    let server = Server::start_with(&["--appendonly", "no"]);
    let con = &mut server.connect();
    let bucket_sha = load(con, "token_bucket");
    let t = 1_700_000_000_000i64;
    let mut table = String::from("| key | entries | keys | native B/key | Lua B/key | native MEMORY USAGE | Lua MEMORY USAGE | native B/entry | Lua B/entry |\n|---|---|---|---|---|---|---|---|---|\n");
    let bucket = |pipe: &mut redis::Pipeline, key: usize, _: usize| {
        pipe.cmd("RL.TOKENBUCKET")
            .arg(format!("m:{key}"))
            .arg(1000)
            .arg(1)
            .arg(3_600_000);
    };
    let lua_bucket = |pipe: &mut redis::Pipeline, key: usize, _: usize| {
        pipe.cmd("EVALSHA")
            .arg(&bucket_sha)
            .arg(1)
            .arg(format!("m:{key}"))
            .arg(1000)
            .arg(1)
            .arg(3_600_000)
            .arg(1);
    };
    memory_row(con, 100_000, 1, &bucket);
    let (native, native_usage) = memory_row(con, 100_000, 1, &bucket);
    let (lua, lua_usage) = memory_row(con, 100_000, 1, &lua_bucket);
    let _ = writeln!(table, "| bucket with TTL | - | 100000 | {native:.0} | {lua:.0} | {native_usage} | {lua_usage} | - | - |");
    for (entries, keys) in [
        (10usize, 10_000usize),
        (100, 2_000),
        (10_000, 20),
        (100_000, 2),
    ] {
        let log = move |pipe: &mut redis::Pipeline, key: usize, entry: usize| {
            pipe.cmd("RL.SLIDELOG")
                .arg(format!("m:{key}"))
                .arg(1_000_000)
                .arg(3_600_000_000i64)
                .arg("AT")
                .arg(t + (entry as i64) * 7);
        };
        // The script's layout, built with ZADD: the script itself reads the
        // whole window per call, too slow to fill 100,000 entries.
        let lua_log = |pipe: &mut redis::Pipeline, key: usize, entry: usize| {
            let time = t + (entry as i64) * 7;
            pipe.cmd("ZADD")
                .arg(format!("m:{key}"))
                .arg(time)
                .arg(format!("{time}:0:1"));
            if entry == 0 {
                pipe.ignore()
                    .cmd("PEXPIRE")
                    .arg(format!("m:{key}"))
                    .arg(3_600_000_000i64);
            }
        };
        let (native, native_usage) = memory_row(con, keys, entries, &log);
        let (lua, lua_usage) = memory_row(con, keys, entries, &lua_log);
        let _ = writeln!(
            table,
            "| log | {entries} | {keys} | {native:.0} | {lua:.0} | {native_usage} | {lua_usage} | {:.2} | {:.2} |",
            native / entries as f64,
            lua / entries as f64
        );
    }
    redis::cmd("FLUSHALL").query::<()>(con).unwrap();
    table
}

fn svg(ratios: &[(String, f64, Option<f64>)]) -> String {
    let height = 30 * ratios.len() + 60;
    let mut out = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"760\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
    let _ = writeln!(out, "<text x=\"10\" y=\"20\" font-size=\"14\">Throughput relative to INCR (pipeline 16): native (blue) and its Lua script (orange)</text>");
    let scale = 400.0
        / ratios
            .iter()
            .map(|r| r.1.max(r.2.unwrap_or(0.0)))
            .fold(1.0, f64::max);
    let x0 = 250.0;
    let _ = writeln!(
        out,
        "<line x1=\"{}\" y1=\"30\" x2=\"{}\" y2=\"{}\" stroke=\"#888\" stroke-dasharray=\"4\"/>",
        x0 + scale,
        x0 + scale,
        height - 20
    );
    for (i, (name, native, lua)) in ratios.iter().enumerate() {
        let y = 40 + i * 30;
        let _ = writeln!(out, "<text x=\"10\" y=\"{}\">{name}</text>", y + 12);
        let _ = writeln!(
            out,
            "<rect x=\"{x0}\" y=\"{y}\" width=\"{:.1}\" height=\"11\" fill=\"#3b6fb6\"/>",
            native * scale
        );
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{}\">{native:.2}</text>",
            x0 + native * scale + 4.0,
            y + 10
        );
        if let Some(lua) = lua {
            let _ = writeln!(
                out,
                "<rect x=\"{x0}\" y=\"{}\" width=\"{:.1}\" height=\"11\" fill=\"#e08a2c\"/>",
                y + 12,
                lua * scale
            );
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{}\">{lua:.2}</text>",
                x0 + lua * scale + 4.0,
                y + 22
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let requests: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400_000);
    // The least a module command of RL.TOKENBUCKET's request and reply costs.
    let floor = common::fixture_module("floor");
    let floor = floor.to_str().expect("UTF-8 path");
    let server = Server::start_with(&["--appendonly", "no", "--loadmodule", floor]);
    let mut con = server.connect();
    // A replica, so that writes really pay for replication as in production.
    let replica = Server::start_with(&[
        "--loadmodule",
        floor,
        "--replicaof",
        "127.0.0.1",
        &server.port.to_string(),
    ]);
    let rows = rows(&mut con);
    for row in rows.iter().filter(|row| row.emptied) {
        call_once_per_key(&mut con, &row.words);
    }
    // One unmeasured run of every row first, so that rows on long periods
    // update keys that exist (rows on short periods create keys afresh
    // whatever), however few requests a measured run has.
    for row in &rows {
        benchmark(server.port, 16, requests, &row.words);
    }
    eprintln!("warm-up: done");
    let mut results: BTreeMap<(usize, usize), Measure> = BTreeMap::new();
    for round in 0..rounds {
        for pipeline in [1usize, 16] {
            let n = if pipeline == 1 {
                requests / 4
            } else {
                requests
            };
            let mut incr = f64::NAN;
            for (index, row) in rows.iter().enumerate() {
                if row.logs {
                    benchmark(server.port, 16, row.share(requests), &row.words);
                }
                redis::cmd("CONFIG")
                    .arg("RESETSTAT")
                    .query::<()>(&mut con)
                    .unwrap();
                let rps = benchmark(server.port, pipeline, row.share(n), &row.words);
                if index == 0 {
                    incr = rps;
                }
                let measure = results.entry((pipeline, index)).or_default();
                measure.rps.push(rps);
                measure.ratio.push(rps / incr);
                measure.usec.push(usec_per_call(&mut con, row.stat));
            }
            eprintln!("round {} of {rounds}, pipeline {pipeline}: done", round + 1);
        }
    }
    let mut report = String::new();
    let _ = writeln!(report, "Machine: {} cores; redis-server {}; {rounds} rounds, medians; 50 clients, 100,000 random keys; a replica attached.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()), server_version(&mut con));
    let _ = writeln!(report, "| row | pipeline | requests/s | ratio to INCR | rounds' range | usec/call | ratio to Lua |\n|---|---|---|---|---|---|---|");
    let mut chart = Vec::new();
    for pipeline in [1usize, 16] {
        for (index, row) in rows.iter().enumerate() {
            let m = results.get_mut(&(pipeline, index)).expect("measured");
            let (rps, ratio, usec) = (
                median(&mut m.rps),
                median(&mut m.ratio),
                median(&mut m.usec),
            );
            let lowest = m.ratio.iter().copied().fold(f64::INFINITY, f64::min);
            let highest = m.ratio.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lua = rows
                .iter()
                .position(|r| r.lua_of == Some(row.name.as_str()) && r.lua_of.is_some());
            let lua_ratio = lua.map(|l| {
                let lm = results.get_mut(&(pipeline, l)).expect("measured");
                ratio / median(&mut lm.ratio)
            });
            let vs_lua = lua_ratio.map_or("-".to_owned(), |r| format!("{r:.1}x"));
            let _ = writeln!(
                report,
                "| {} | {pipeline} | {rps:.0} | {ratio:.2} | {lowest:.2} to {highest:.2} | {usec:.2} | {vs_lua} |",
                row.name
            );
            if pipeline == 16 && row.lua_of.is_none() && index > 0 {
                let lua_plain =
                    lua.map(|l| median(&mut results.get_mut(&(16, l)).expect("measured").ratio));
                chart.push((row.name.clone(), ratio, lua_plain));
            }
        }
    }
    let [incr, reserve, acquire] = paired_rows(&server, 3.0);
    let _ = writeln!(report, "\nPairs driven by our own client (pipeline 1, 50 connections), against INCR through the same client:\n");
    let _ = writeln!(
        report,
        "| row | requests/s | ratio to INCR |\n|---|---|---|"
    );
    let _ = writeln!(report, "| INCR (own client) | {incr:.0} | 1.00 |");
    let _ = writeln!(
        report,
        "| RL.RESERVE then RL.SETTLE | {reserve:.0} | {:.2} |",
        reserve / incr
    );
    let _ = writeln!(
        report,
        "| RL.ACQUIRE then RL.RELEASE | {acquire:.0} | {:.2} |",
        acquire / incr
    );
    let _ = writeln!(
        report,
        "\nMemory (used_memory delta per key, and MEMORY USAGE of one key; a server of its own, no replica):\n"
    );
    report.push_str(&memory_table());
    drop(replica);
    println!("{report}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench");
    std::fs::create_dir_all(&dir).expect("bench/");
    std::fs::write(dir.join("results.md"), &report).expect("bench/results.md");
    std::fs::write(dir.join("ratios.svg"), svg(&chart)).expect("bench/ratios.svg");
    eprintln!("wrote bench/results.md and bench/ratios.svg");
}

fn server_version(con: &mut Connection) -> String {
    let info: String = redis::cmd("INFO").arg("server").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim()
        .to_owned()
}
