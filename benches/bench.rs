//! `make bench`: the module against Redis's own commands of the same shape,
//! against its Lua scripts and a careful Lua hash bucket, and against
//! redis-cell, with redis-benchmark (50 clients, 100,000 random keys,
//! pipeline 1 and 16), in two configurations (a lone server, and a server
//! with a replica attached), rounds interleaved so that the machine's noise
//! hits every row alike. Prints markdown tables, writes bench/results.md and
//! bench/ratios.svg. BENCH_ROUNDS sets the rounds (5), BENCH_REQUESTS the
//! requests per run at pipeline 16 (200,000; a quarter at pipeline 1, and a
//! quarter of those for the Lua scripts, which are many times slower).
//!
//! redis-cell 0.2.2 is built from its crates.io source on the first run,
//! in a temporary directory (a throwaway crate that depends on it, `cargo
//! fetch`, then its source directory built as it is: its crate type, dylib,
//! is a loadable .so), kept as target/redis-cell/libredis_cell.so, and
//! loaded in servers of its own, since this module answers CL.THROTTLE too.
//!
//! Issue 19 (`WAIT`): rows of each waitable call with `WAIT` beside the same
//! call without it (calls that never wait, or redis-benchmark would hang),
//! then a driver of our own on a lone server of its own: the pacing of
//! 1,000 clients waiting on one bucket, the server's CPU while they wait
//! with nothing due, and their memory. BENCH_ONLY=wait runs only that
//! driver (BENCH_ROUNDS pacing runs), prints its tables and writes nothing.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::Server;
use redis::Connection;

const KEYS: usize = 100_000;
const CLIENTS: usize = 50;
const PIPELINES: [usize; 2] = [1, 16];
/// Periods, windows and TTLs far longer than a run: keys are updated in
/// place.
const BIG: &str = "1000000000";

/// What a row's throughput is judged against: Redis's own command of the
/// same shape.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A reference row itself.
    Reference,
    /// Writes a value with an expiry: against `SET key <int> PX <ms>`.
    Write,
    /// Reads several words and answers several integers: against `HMGET`
    /// with five fields.
    Read,
    /// Reads a key and answers its fields by name: against `HGETALL` of a
    /// hash with as many fields.
    Fields,
}

impl Shape {
    /// The reference row of the shape.
    fn reference(self) -> Option<&'static str> {
        match self {
            Shape::Reference => None,
            Shape::Write => Some(SET_PX),
            Shape::Read => Some(HMGET),
            Shape::Fields => Some(HGETALL),
        }
    }
}

/// One row: a name, the command redis-benchmark sends (its stat in INFO
/// commandstats is the command's name), and how it is run and compared.
/// Adding a row is one line in [`rows`].
#[derive(Clone)]
struct Row {
    name: String,
    words: Vec<String>,
    shape: Shape,
    /// Runs on the redis-cell servers instead of ours.
    cell: bool,
    /// Its keys are logs (60 s windows, so 60 s TTLs): a round lasts
    /// longer, so an unmeasured run of the row first brings them back and
    /// the measured run updates logs in place, as the rows on buckets do.
    logs: bool,
    /// Many times slower (Lua): a quarter of the requests.
    slow: bool,
    /// Its keys expire within the run (periods of 1 ms): Redis's active
    /// expiry then deletes those left, so the next row waits until it is
    /// done rather than share the server with it.
    expiring: bool,
    /// The rows of ours it is a peer of (a Lua script, redis-cell).
    peer_of: Vec<&'static str>,
    /// The row it is the `WAIT` twin of (issue 19): the same call, keys and
    /// parameters without `WAIT`. A `WAIT` row must never wait: redis-
    /// benchmark would hang on it, so its calls are allowed at once or
    /// denied far beyond the timeout.
    wait_of: Option<&'static str>,
}

impl Row {
    fn new(shape: Shape, name: &str, words: &str) -> Row {
        Row {
            name: name.to_owned(),
            words: words.split_whitespace().map(str::to_owned).collect(),
            shape,
            cell: false,
            logs: false,
            slow: false,
            expiring: false,
            peer_of: Vec::new(),
            wait_of: None,
        }
    }

    fn logs(self) -> Row {
        Row { logs: true, ..self }
    }

    fn expiring(self) -> Row {
        Row {
            expiring: true,
            ..self
        }
    }

    fn on_cell(self) -> Row {
        Row { cell: true, ..self }
    }

    /// A peer (a Lua script, redis-cell) of the rows named.
    fn peer_of(self, rows: &[&'static str]) -> Row {
        Row {
            peer_of: rows.to_vec(),
            ..self
        }
    }

    /// The same call as `row` with `WAIT`.
    fn wait_of(self, row: &'static str) -> Row {
        Row {
            wait_of: Some(row),
            ..self
        }
    }

    fn lua(self, rows: &[&'static str]) -> Row {
        Row {
            slow: true,
            ..self.peer_of(rows)
        }
    }

    fn stat(&self) -> String {
        self.words[0].to_lowercase()
    }

    fn requests(&self, pipeline: usize, requests: usize) -> usize {
        let n = if pipeline == 1 {
            requests / 4
        } else {
            requests
        };
        if self.slow {
            n / 4
        } else {
            n
        }
    }
}

fn reference(name: &str, words: &str) -> Row {
    Row::new(Shape::Reference, name, words)
}

fn write(name: &str, words: &str) -> Row {
    Row::new(Shape::Write, name, words)
}

fn read(name: &str, words: &str) -> Row {
    Row::new(Shape::Read, name, words)
}

/// `EVALSHA` of `script` with `keys` keys and `args`.
fn evalsha(sha: &str, keys: usize, args: &str) -> String {
    format!("EVALSHA {sha} {keys} {args}")
}

const SET_PX: &str = "SET PX";
const HMGET: &str = "HMGET 5 fields";
const HGETALL: &str = "HGETALL 6 fields";
const BUCKET: &str = "RL.TOKENBUCKET allowed";
const DENIED: &str = "RL.TOKENBUCKET denied";
const COST: &str = "RL.COST allowed";
const RESERVE: &str = "RL.RESERVE allowed (1 s lease)";
const ACQUIRE: &str = "RL.ACQUIRE allowed (1 s lease)";
const ALL_BUCKETS: &str = "RL.ALL 2 buckets";
const SLIDELOG: &str = "RL.SLIDELOG allowed";
const ALL: &str = "RL.ALL bucket+log";
const THROTTLE: &str = "CL.THROTTLE allowed";
const THROTTLE_FRESH: &str = "CL.THROTTLE fresh keys";
const CELL: &str = "redis-cell CL.THROTTLE allowed";
const HASH_BUCKET: &str = "Lua hash bucket (tokens, ts)";

/// Every row, in the order each round runs them; INCR first.
fn rows(scripts: &Scripts) -> Vec<Row> {
    let Scripts {
        bucket,
        log,
        all,
        window,
        hash,
    } = scripts;
    vec![
        reference("INCR", "INCR counter:__rand_int__"),
        reference("GET (key with a TTL)", "GET get:__rand_int__"),
        reference(HMGET, "HMGET hash:__rand_int__ f1 f2 f3 f4 f5"),
        reference(HGETALL, "HGETALL fields:__rand_int__"),
        reference(SET_PX, "SET set:__rand_int__ 12345 PX 3600000"),
        write(BUCKET, &format!("RL.TOKENBUCKET b:__rand_int__ {BIG} 1 3600000")),
        write("RL.TOKENBUCKET allowed, WAIT 1000", &format!("RL.TOKENBUCKET b:__rand_int__ {BIG} 1 3600000 WAIT 1000")).wait_of(BUCKET),
        read(DENIED, "RL.TOKENBUCKET d:__rand_int__ 1 1 3600000"),
        // Denied for up to an hour, far beyond the timeout: answered at once.
        read("RL.TOKENBUCKET denied, WAIT beyond", "RL.TOKENBUCKET d:__rand_int__ 1 1 3600000 WAIT 1000").wait_of(DENIED),
        read("RL.TOKENBUCKET peek", &format!("RL.TOKENBUCKET b:__rand_int__ {BIG} 1 3600000 COST 0")),
        write("RL.TOKENBUCKET fresh keys", "RL.TOKENBUCKET f:__rand_int__ 10 10 1").expiring(),
        write(COST, &format!("RL.COST c:__rand_int__ {BIG} 1 3600000 7")),
        write("RL.COST allowed, WAIT 1000", &format!("RL.COST c:__rand_int__ {BIG} 1 3600000 7 WAIT 1000")).wait_of(COST),
        write(SLIDELOG, "RL.SLIDELOG l:__rand_int__ 100 60000").logs(),
        read("RL.SLIDELOG denied", "RL.SLIDELOG ld:__rand_int__ 1 3600000"),
        read("RL.SLIDELOG peek", "RL.SLIDELOG l:__rand_int__ 100 60000 COST 0"),
        write("RL.SLIDELOG fresh keys", "RL.SLIDELOG g:__rand_int__ 100 1").expiring(),
        write("RL.WINDOW allowed", &format!("RL.WINDOW w:__rand_int__ {BIG} 3600000")),
        write("RL.WINDOW FIXED allowed", &format!("RL.WINDOW wf:__rand_int__ {BIG} 3600000 FIXED")),
        write("RL.WINDOW PRECISION 1 s allowed", &format!("RL.WINDOW wp:__rand_int__ {BIG} 3600000 PRECISION 1000")),
        read("RL.WINDOW denied", "RL.WINDOW wd:__rand_int__ 1 3600000"),
        read("RL.WINDOW peek", &format!("RL.WINDOW w:__rand_int__ {BIG} 3600000 COST 0")),
        write("RL.QUOTA allowed (day, Europe/Berlin)", &format!("RL.QUOTA q:__rand_int__ {BIG} day TZ Europe/Berlin")),
        write("RL.QUOTA allowed (month, UTC)", &format!("RL.QUOTA qu:__rand_int__ {BIG} month")),
        write("RL.QUOTA allowed (month, ANCHOR)", &format!("RL.QUOTA qa:__rand_int__ {BIG} month ANCHOR 1767225600000")),
        read("RL.QUOTA peek", &format!("RL.QUOTA q:__rand_int__ {BIG} day TZ Europe/Berlin COST 0")),
        write(RESERVE, &format!("RL.RESERVE r:__rand_int__ {BIG} 1 3600000 5 1000")),
        write("RL.RESERVE allowed (1 s lease), WAIT 1000", &format!("RL.RESERVE r:__rand_int__ {BIG} 1 3600000 5 1000 WAIT 1000")).wait_of(RESERVE),
        // 100,000 slots of a key, which a run's few calls on it never fill.
        write(ACQUIRE, "RL.ACQUIRE a:__rand_int__ 100000 1000"),
        write("RL.ACQUIRE allowed (1 s lease), WAIT 1000", "RL.ACQUIRE a:__rand_int__ 100000 1000 WAIT 1000").wait_of(ACQUIRE),
        write(ALL, &format!("RL.ALL 2 ab:__rand_int__ al:__rand_int__ TOKENBUCKET {BIG} 1 3600000 SLIDELOG 100 60000")).logs(),
        write(ALL_BUCKETS, &format!("RL.ALL 2 aa:__rand_int__ ac:__rand_int__ TOKENBUCKET {BIG} 1 3600000 TOKENBUCKET {BIG} 1 3600000")),
        write("RL.ALL 2 buckets, COSTS 3 5", &format!("RL.ALL 2 aa:__rand_int__ ac:__rand_int__ TOKENBUCKET {BIG} 1 3600000 TOKENBUCKET {BIG} 1 3600000 COSTS 3 5")),
        write("RL.ALL 2 buckets, WAIT 1000", &format!("RL.ALL 2 aa:__rand_int__ ac:__rand_int__ TOKENBUCKET {BIG} 1 3600000 TOKENBUCKET {BIG} 1 3600000 WAIT 1000")).wait_of(ALL_BUCKETS),
        Row::new(Shape::Fields, "RL.INSPECT", "RL.INSPECT b:__rand_int__"),
        // A burst of 100,000 at one an hour: every call is allowed and
        // moves the key's TAT, and its TTL, an hour on, so that no key
        // expires within the bench.
        write(THROTTLE, "CL.THROTTLE t:__rand_int__ 100000 1 3600"),
        // The TAT runs 3.6 µs ahead at most: each key expires within 1 ms.
        write(THROTTLE_FRESH, &format!("CL.THROTTLE tf:__rand_int__ {BIG} {BIG} 3600")).expiring(),
        write("Module floor: RL.TOKENBUCKET's words, no key", &format!("FLOOR.BUCKET b:__rand_int__ {BIG} 1 3600000")),
        write(CELL, "CL.THROTTLE t:__rand_int__ 100000 1 3600").on_cell().peer_of(&[BUCKET, THROTTLE]),
        write("redis-cell CL.THROTTLE fresh keys", &format!("CL.THROTTLE tf:__rand_int__ {BIG} {BIG} 3600")).on_cell().expiring().peer_of(&[THROTTLE_FRESH]),
        write(HASH_BUCKET, &evalsha(hash, 1, &format!("hb:__rand_int__ {BIG} 1 3600000 1"))).lua(&[BUCKET]),
        write("Lua token_bucket.lua", &evalsha(bucket, 1, &format!("lb:__rand_int__ {BIG} 1 3600000 1"))).lua(&[BUCKET]),
        write("Lua token_bucket.lua (cost)", &evalsha(bucket, 1, &format!("lc:__rand_int__ {BIG} 1 3600000 7"))).lua(&[COST]),
        write("Lua sliding_log.lua", &evalsha(log, 1, "ll:__rand_int__ 100 60000 1")).lua(&[SLIDELOG]).logs(),
        write("Lua window.lua", &evalsha(window, 1, &format!("lw:__rand_int__ {BIG} 3600000 60000 1"))).lua(&["RL.WINDOW allowed"]),
        write("Lua all.lua", &evalsha(all, 2, &format!("lab:__rand_int__ lal:__rand_int__ TOKENBUCKET {BIG} 1 3600000 SLIDELOG 100 60000 1 1"))).lua(&[ALL]).logs(),
    ]
}

/// The SHA1s of the scripts the rows call.
struct Scripts {
    bucket: String,
    log: String,
    all: String,
    window: String,
    hash: String,
}

fn load_script(con: &mut Connection, path: &str) -> String {
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect("script");
    redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(source)
        .query(con)
        .expect("SCRIPT LOAD")
}

fn load_scripts(con: &mut Connection) -> Scripts {
    Scripts {
        bucket: load_script(con, "lua/token_bucket.lua"),
        log: load_script(con, "lua/sliding_log.lua"),
        all: load_script(con, "lua/all.lua"),
        window: load_script(con, "lua/window.lua"),
        hash: load_script(con, "bench/hash_bucket.lua"),
    }
}

/// Sends `words` once for each of the KEYS keys redis-benchmark draws,
/// named as it names them (`__rand_int__` becomes 12 digits).
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

fn split(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

/// One redis-benchmark run: requests per second and latency percentiles
/// (ms).
#[derive(Default, Clone, Copy)]
struct Run {
    rps: f64,
    p50: f64,
    p99: f64,
    p999: f64,
}

/// Runs redis-benchmark once and reads its summary, and for p99.9 the first
/// step of its percentile distribution at or above 99.9% (99.902%).
fn benchmark(port: u16, pipeline: usize, requests: usize, words: &[String]) -> Run {
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-c", &CLIENTS.to_string(), "-n", &requests.to_string()])
        .args(["-r", &KEYS.to_string(), "-P", &pipeline.to_string()])
        .args(["--precision", "3"])
        .args(words)
        .output()
        .expect("redis-benchmark (apt-get install redis-tools)");
    let text = String::from_utf8_lossy(&output.stdout).replace('\r', "\n");
    let lines: Vec<&str> = text.lines().collect();
    let rps = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("throughput summary: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok());
    // "avg min p50 p95 p99 max", then their values.
    let summary: Vec<f64> = lines
        .iter()
        .position(|l| l.contains("latency summary"))
        .and_then(|i| lines.get(i + 2))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let p999 = lines.iter().find_map(|l| {
        let (percent, rest) = l.split_once("% <= ")?;
        let percent: f64 = percent.trim().parse().ok()?;
        let ms = rest.split_whitespace().next()?.parse().ok()?;
        (percent >= 99.9).then_some(ms)
    });
    match (rps, summary.as_slice(), p999) {
        (Some(rps), [_, _, p50, _, p99, _], Some(p999)) => Run {
            rps,
            p50: *p50,
            p99: *p99,
            p999,
        },
        _ => panic!("no result from redis-benchmark {words:?}: {text}"),
    }
}

fn usec_per_call(con: &mut Connection, stat: &str) -> f64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
    info.lines()
        .find(|l| l.to_lowercase().starts_with(&format!("cmdstat_{stat}:")))
        .and_then(|l| l.split(',').find_map(|f| f.strip_prefix("usec_per_call=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn range(values: &[f64]) -> (f64, f64) {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (low, high)
}

/// Builds redis-cell 0.2.2 from crates.io source in a temporary directory
/// (once: the module is kept as target/redis-cell/libredis_cell.so);
/// returns the path of its module.
fn redis_cell() -> PathBuf {
    let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/redis-cell");
    let module = kept.join("libredis_cell.so");
    if module.exists() {
        return module;
    }
    let work = std::env::temp_dir().join(format!("rl-bench-redis-cell-{}", std::process::id()));
    let fetcher = work.join("fetch");
    std::fs::create_dir_all(fetcher.join("src")).expect("a temporary directory");
    std::fs::write(
        fetcher.join("Cargo.toml"),
        "[package]\nname = \"fetch-redis-cell\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nredis-cell = \"=0.2.2\"\n",
    )
    .expect("Cargo.toml");
    std::fs::write(fetcher.join("src/lib.rs"), "").expect("lib.rs");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let run = |command: &mut Command, what: &str| {
        let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            output.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    run(
        Command::new(&cargo).arg("fetch").current_dir(&fetcher),
        "cargo fetch of redis-cell 0.2.2",
    );
    let metadata = run(
        Command::new(&cargo)
            .args(["metadata", "--format-version", "1"])
            .current_dir(&fetcher),
        "cargo metadata",
    );
    let manifest = metadata
        .split("\"manifest_path\":\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|p| p.contains("/redis-cell-0.2.2/"))
        .expect("redis-cell 0.2.2 in Cargo's registry")
        .to_owned();
    let source = Path::new(&manifest).parent().expect("its directory");
    // A copy of its own: Cargo's registry is not to be built in. Its crate
    // type, dylib, makes a library Redis loads as it is.
    run(
        Command::new("cp")
            .arg("-r")
            .arg(source)
            .arg(work.join("source")),
        "copy of redis-cell's source",
    );
    run(
        Command::new(&cargo)
            .args(["build", "--release", "--quiet", "--target-dir"])
            .arg(work.join("target"))
            .current_dir(work.join("source")),
        "cargo build of redis-cell 0.2.2",
    );
    std::fs::create_dir_all(&kept).expect("target/redis-cell");
    std::fs::copy(work.join("target/release/libredis_cell.so"), &module).expect("the module");
    let _ = std::fs::remove_dir_all(&work);
    module
}

/// Waits until `replica` has synced with its master.
fn wait_for_sync(replica: &Server) {
    let con = &mut replica.connect();
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    while common::info_field(con, "replication", "master_link_status") != "up" {
        assert!(Instant::now() < deadline, "the replica did not sync");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// One configuration: our server and redis-cell's, each lone or each with a
/// replica attached.
struct Config {
    name: &'static str,
    ours: Server,
    cell: Server,
    replicas: Vec<Server>,
}

impl Config {
    fn start(name: &'static str, floor: &str, cell: &str, replicated: bool) -> Config {
        let ours = Server::start_with(&["--appendonly", "no", "--loadmodule", floor]);
        let cell_server = Server::start_bare(&["--appendonly", "no", "--loadmodule", cell]);
        let mut replicas = Vec::new();
        if replicated {
            let ours_port = ours.port.to_string();
            let cell_port = cell_server.port.to_string();
            replicas.push(Server::start_with(&[
                "--loadmodule",
                floor,
                "--replicaof",
                "127.0.0.1",
                &ours_port,
            ]));
            replicas.push(Server::start_bare(&[
                "--loadmodule",
                cell,
                "--replicaof",
                "127.0.0.1",
                &cell_port,
            ]));
            replicas.iter().for_each(wait_for_sync);
        }
        Config {
            name,
            ours,
            cell: cell_server,
            replicas,
        }
    }

    /// Runs redis-benchmark on the row's server; with replicas, then waits
    /// until they have caught up, so that the next run does not share the
    /// machine with a replica still applying this one's writes.
    fn run(&self, row: &Row, pipeline: usize, requests: usize) -> Run {
        let server = self.server(row);
        let run = benchmark(
            server.port,
            pipeline,
            row.requests(pipeline, requests),
            &row.words,
        );
        if row.expiring {
            wait_for_active_expiry(server);
        }
        if !self.replicas.is_empty() {
            let acked: i64 = redis::cmd("WAIT")
                .arg(1)
                .arg(60_000)
                .query(&mut server.connect())
                .expect("WAIT");
            assert_eq!(acked, 1, "the replica caught up");
        }
        run
    }

    fn server(&self, row: &Row) -> &Server {
        if row.cell {
            &self.cell
        } else {
            &self.ours
        }
    }

    /// Keys the read references read, each with a TTL; then one call of
    /// every row on each of its keys, so that every run updates keys that
    /// exist (the denied rows' limiters of one unit an hour are empty) and
    /// the key tables have their final size; redis-cell's servers get
    /// filler keys up to as many keys as ours, so that both look keys up in
    /// tables of the same size (an emptier table stays in the CPU's caches);
    /// then waits until they have been rehashed: a table being rehashed is
    /// searched twice, which slowed whichever rows ran meanwhile.
    fn prepare(&self, rows: &[Row]) {
        let con = &mut self.ours.connect();
        call_once_per_key(con, &split("SET get:__rand_int__ 12345 PX 86400000"));
        call_once_per_key(
            con,
            &split("HSET hash:__rand_int__ f1 1 f2 2 f3 3 f4 4 f5 5"),
        );
        call_once_per_key(con, &split("PEXPIRE hash:__rand_int__ 86400000"));
        // The fields RL.INSPECT answers for the bucket rows' keys.
        call_once_per_key(
            con,
            &split(&format!("HSET fields:__rand_int__ type tokenbucket capacity {BIG} refill_amount 1 refill_period_ms 3600000 tokens 999999999 reset_after_ms 3599995")),
        );
        call_once_per_key(con, &split("PEXPIRE fields:__rand_int__ 86400000"));
        for row in rows {
            call_once_per_key(&mut self.server(row).connect(), &row.words);
        }
        let keys = |server: &Server| -> i64 {
            redis::cmd("DBSIZE")
                .query(&mut server.connect())
                .expect("DBSIZE")
        };
        let ours = keys(&self.ours);
        // With replicas, ours is the first and redis-cell's the second.
        for cell in [&self.cell].into_iter().chain(self.replicas.get(1)) {
            let filler = ours - keys(cell);
            if filler > 0 {
                redis::cmd("DEBUG")
                    .arg("POPULATE")
                    .arg(filler)
                    .arg("filler")
                    .query::<()>(&mut cell.connect())
                    .expect("DEBUG POPULATE");
            }
        }
        for server in [&self.ours, &self.cell].into_iter().chain(&self.replicas) {
            wait_for_rehash(server);
        }
    }
}

/// Waits until the server's active expiry has worked through the keys a
/// row left to expire: fewer than 1,000 keys expired over 300 ms, three of
/// its cycles (keys of other rows keep expiring slowly meanwhile).
fn wait_for_active_expiry(server: &Server) {
    let con = &mut server.connect();
    let expired = |con: &mut redis::Connection| -> i64 {
        common::info_field(con, "stats", "expired_keys")
            .parse()
            .expect("expired_keys")
    };
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    let mut last = expired(con);
    while Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let now = expired(con);
        if now - last < 1_000 {
            return;
        }
        last = now;
    }
}

/// Waits until no table of the server's keys is being rehashed.
fn wait_for_rehash(server: &Server) {
    let con = &mut server.connect();
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let stats: String = redis::cmd("DEBUG")
            .arg("HTSTATS")
            .arg(0)
            .query(con)
            .expect("DEBUG HTSTATS");
        if !stats.contains("rehashing") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the key tables are still rehashed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[derive(Default)]
struct Measure {
    runs: Vec<Run>,
    usec: Vec<f64>,
}

/// Measures, by (configuration, pipeline, row).
type Results = BTreeMap<(usize, usize, usize), Measure>;

struct Report<'a> {
    rows: &'a [Row],
    results: &'a Results,
}

impl Report<'_> {
    fn index(&self, name: &str) -> usize {
        self.rows
            .iter()
            .position(|r| r.name == name)
            .unwrap_or_else(|| panic!("no row {name}"))
    }

    fn measure(&self, config: usize, pipeline: usize, row: usize) -> &Measure {
        &self.results[&(config, pipeline, row)]
    }

    /// The row's throughput over the other's, round by round.
    fn ratios(&self, config: usize, pipeline: usize, row: usize, other: usize) -> Vec<f64> {
        let of = |index| {
            self.measure(config, pipeline, index)
                .runs
                .iter()
                .map(|r| r.rps)
        };
        of(row).zip(of(other)).map(|(a, b)| a / b).collect()
    }

    fn ratio(&self, config: usize, pipeline: usize, row: &str, other: &str) -> f64 {
        median(&self.ratios(config, pipeline, self.index(row), self.index(other)))
    }

    fn usec(&self, config: usize, row: &str) -> f64 {
        median(&self.measure(config, 16, self.index(row)).usec)
    }

    fn shape_reference(&self, row: &Row) -> Option<usize> {
        row.shape.reference().map(|name| self.index(name))
    }

    /// The pipeline 16 table of a configuration.
    fn throughput(&self, config: usize, out: &mut String) {
        let _ = writeln!(out, "| row | requests/s | vs INCR | vs its shape | rounds' range | server µs/call | vs peers |\n|---|---|---|---|---|---|---|");
        for (index, row) in self.rows.iter().enumerate() {
            let m = self.measure(config, 16, index);
            let rps = median(&m.runs.iter().map(|r| r.rps).collect::<Vec<_>>());
            let incr = median(&self.ratios(config, 16, index, 0));
            let (shape, spread) = match self.shape_reference(row) {
                Some(reference) => {
                    let ratios = self.ratios(config, 16, index, reference);
                    let (low, high) = range(&ratios);
                    let name = &self.rows[reference].name;
                    (
                        format!("{:.2} of {name}", median(&ratios)),
                        format!("{low:.2} to {high:.2}"),
                    )
                }
                None => ("-".to_owned(), "-".to_owned()),
            };
            let peers: Vec<String> = self
                .rows
                .iter()
                .enumerate()
                .filter(|(_, peer)| peer.peer_of.contains(&row.name.as_str()))
                .map(|(peer_index, peer)| {
                    let ratio = median(&self.ratios(config, 16, index, peer_index));
                    format!("{ratio:.1}x {}", peer.name)
                })
                .collect();
            let peers = if peers.is_empty() {
                "-".to_owned()
            } else {
                peers.join("; ")
            };
            let _ = writeln!(
                out,
                "| {} | {rps:.0} | {incr:.2} | {shape} | {spread} | {:.2} | {peers} |",
                row.name,
                median(&m.usec)
            );
        }
    }

    /// The pipeline 1 table of a configuration: latency beside INCR's.
    fn latency(&self, config: usize, out: &mut String) {
        let _ = writeln!(out, "| row | requests/s | p50 ms | p99 ms | p99.9 ms | p99 vs INCR's |\n|---|---|---|---|---|---|");
        let incr_p99 = median(
            &self
                .measure(config, 1, 0)
                .runs
                .iter()
                .map(|r| r.p99)
                .collect::<Vec<_>>(),
        );
        for (index, row) in self.rows.iter().enumerate() {
            let runs = &self.measure(config, 1, index).runs;
            let of = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
            let p99 = of(|r| r.p99);
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.3} | {p99:.3} | {:.3} | {:.2} |",
                row.name,
                of(|r| r.rps),
                of(|r| r.p50),
                of(|r| r.p999),
                p99 / incr_p99
            );
        }
    }

    /// Each target of the issue, in a configuration: (target, measured,
    /// met).
    fn targets(&self, config: usize) -> Vec<(String, String, bool)> {
        let mut targets = Vec::new();
        let mut at_least = |what: String, value: f64, bar: f64| {
            targets.push((
                format!("{what} ≥ {bar}"),
                format!("{value:.3}"),
                value >= bar,
            ));
        };
        for (row, bar) in [(BUCKET, 1.0), (COST, 1.0), (SLIDELOG, 0.95)] {
            at_least(
                format!("{row} / SET PX"),
                self.ratio(config, 16, row, SET_PX),
                bar,
            );
        }
        for row in self
            .rows
            .iter()
            .filter(|r| matches!(r.shape, Shape::Read | Shape::Fields) && r.wait_of.is_none())
        {
            if let Some(reference) = row.shape.reference() {
                at_least(
                    format!("{} / {reference}", row.name),
                    self.ratio(config, 16, &row.name, reference),
                    1.0,
                );
            }
        }
        for row in [BUCKET, THROTTLE] {
            at_least(
                format!("{row} / redis-cell"),
                self.ratio(config, 16, row, CELL),
                1.6,
            );
        }
        at_least(
            format!("{BUCKET} / {HASH_BUCKET}"),
            self.ratio(config, 16, BUCKET, HASH_BUCKET),
            4.0,
        );
        let all = self.usec(config, ALL);
        let parts = self.usec(config, BUCKET) + self.usec(config, SLIDELOG);
        targets.push((
            "RL.ALL µs/call ≤ RL.TOKENBUCKET's + RL.SLIDELOG's".to_owned(),
            format!(
                "{all:.2} against {parts:.2} ({:.2} of the sum)",
                all / parts
            ),
            all <= parts,
        ));
        targets
    }

    /// Issue 19's target in a configuration, for each `WAIT` row: a `WAIT`
    /// call that need not wait costs within 5% of the same call without
    /// `WAIT`.
    fn wait_targets(&self, config: usize) -> Vec<(String, String, bool)> {
        self.wait_pairs()
            .map(|(row, twin)| {
                let ratio = self.ratio(config, 16, &row.name, twin);
                (
                    format!("{} / {twin} ≥ 0.95", row.name),
                    format!("{ratio:.3}"),
                    ratio >= 0.95,
                )
            })
            .collect()
    }

    /// Each `WAIT` row and the row it is the twin of.
    fn wait_pairs(&self) -> impl Iterator<Item = (&Row, &'static str)> {
        self.rows
            .iter()
            .filter_map(|row| row.wait_of.map(|twin| (row, twin)))
    }

    /// The `WAIT` rows against their twins (pipeline 16), in a
    /// configuration.
    fn wait_table(&self, config: usize, out: &mut String) {
        let _ = writeln!(out, "| call | requests/s without WAIT | with WAIT | with / without | rounds' range | server µs/call without | with |\n|---|---|---|---|---|---|---|");
        for (row, twin) in self.wait_pairs() {
            let (index, other) = (self.index(&row.name), self.index(twin));
            let rps = |index| {
                median(
                    &self
                        .measure(config, 16, index)
                        .runs
                        .iter()
                        .map(|r| r.rps)
                        .collect::<Vec<_>>(),
                )
            };
            let ratios = self.ratios(config, 16, index, other);
            let (low, high) = range(&ratios);
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.0} | {:.3} | {low:.2} to {high:.2} | {:.2} | {:.2} |",
                row.name,
                rps(other),
                rps(index),
                median(&ratios),
                self.usec(config, twin),
                self.usec(config, &row.name)
            );
        }
    }
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

/// Memory, on a server of its own with no replica (whose buffers would be
/// counted), after a first fill that is thrown away (so that the key tables
/// have grown already). Returns the table, and whether each bucket row
/// costs no more than the hash bucket and a log entry at 10,000 entries at
/// most 4 bytes.
fn memory_table() -> (String, Vec<(String, String, bool)>) {
    let server = Server::start_with(&["--appendonly", "no"]);
    let con = &mut server.connect();
    let hash = load_script(con, "bench/hash_bucket.lua");
    let t = 1_760_000_000_000i64;
    let mut targets = Vec::new();
    let mut table = String::from("| key | entries | keys | native B/key | other B/key | native MEMORY USAGE | other MEMORY USAGE | native B/entry | other B/entry |\n|---|---|---|---|---|---|---|---|---|\n");
    // Each bucket: its parameters, and the times of its calls.
    let buckets: [(&str, [i64; 3], &[i64]); 3] = [
        (
            "bucket of 1000 a hour, one call",
            [1000, 1, 3_600_000],
            &[0],
        ),
        (
            "the same, two calls 1,234 ms apart (a fraction of a token)",
            [1000, 1, 3_600_000],
            &[0, 1234],
        ),
        (
            "bucket of 10^9 a hour, two calls",
            [1_000_000_000, 1, 3_600_000],
            &[0, 1234],
        ),
    ];
    for (name, [capacity, amount, period], times) in buckets {
        let native = |pipe: &mut redis::Pipeline, key: usize, entry: usize| {
            pipe.cmd("RL.TOKENBUCKET")
                .arg(format!("m:{key}"))
                .arg(capacity)
                .arg(amount)
                .arg(period)
                .arg("AT")
                .arg(t + times[entry]);
        };
        let lua = |pipe: &mut redis::Pipeline, key: usize, entry: usize| {
            pipe.cmd("EVALSHA")
                .arg(&hash)
                .arg(1)
                .arg(format!("m:{key}"))
                .arg(capacity)
                .arg(amount)
                .arg(period)
                .arg(1)
                .arg(t + times[entry]);
        };
        memory_row(con, 100_000, times.len(), &native);
        let (ours, our_usage) = memory_row(con, 100_000, times.len(), &native);
        let (other, other_usage) = memory_row(con, 100_000, times.len(), &lua);
        let _ = writeln!(table, "| {name} (other: Lua hash bucket) | - | 100000 | {ours:.0} | {other:.0} | {our_usage} | {other_usage} | - | - |");
        targets.push((
            format!("memory: {name}, B/key ≤ the Lua hash bucket's"),
            format!("{ours:.0} against {other:.0}"),
            ours <= other,
        ));
    }
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
        let per_entry = native / entries as f64;
        let _ = writeln!(
            table,
            "| log (other: sliding_log.lua's ZSET) | {entries} | {keys} | {native:.0} | {lua:.0} | {native_usage} | {lua_usage} | {per_entry:.2} | {:.2} |",
            lua / entries as f64
        );
        if entries == 10_000 {
            targets.push((
                "memory: a log entry at 10,000 entries ≤ 4 B".to_owned(),
                format!("{per_entry:.2}"),
                per_entry <= 4.0,
            ));
        }
    }
    redis::cmd("FLUSHALL").query::<()>(con).unwrap();
    (table, targets)
}

/// Clients waiting at once in the pacing and quiet-second drivers.
const WAITERS: usize = 1000;
/// The pacing bucket holds one token and refills one every
/// `PACING_INTERVAL_MS`: its 1,000 waiters are answered over about 2 s.
const PACING_INTERVAL_MS: i64 = 2;
/// Waiters ahead of the measured ones in the pacing driver, on connections
/// of their own: the first measured waiter is due PACING_HEAD + 1 intervals
/// after the bucket was emptied (102 ms), when every call has been written
/// long since, so that no reply is timed while the driver still writes.
const PACING_HEAD: usize = 50;
/// The `WAIT` timeout of the drivers' waiters, well beyond their waits.
const WAIT_TIMEOUT_MS: i64 = 10_000;

fn unix_us() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    i64::try_from(now.as_micros()).expect("µs since 1970")
}

/// The RESP of a command.
fn packed(words: &[String]) -> Vec<u8> {
    let mut command = redis::cmd(&words[0]);
    for word in &words[1..] {
        command.arg(word);
    }
    command.get_packed_command()
}

/// Reads one reply from `stream`: a status or an integer (true), an array
/// of integers (a limiter's reply: whether its first, `allowed`, is 1), or
/// an error. Each connection has one call in flight, so a read never takes
/// part of the next reply.
fn read_reply(stream: &mut TcpStream) -> Result<bool, String> {
    let mut reply = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let text = String::from_utf8_lossy(&reply);
        let lines: Vec<&str> = text.split("\r\n").collect();
        // The last piece is what follows the last CRLF.
        let complete = lines.len() - 1;
        match (text.chars().next(), complete) {
            (Some('-'), 1..) => return Err(lines[0].to_owned()),
            (Some('+' | ':'), 1..) => return Ok(true),
            (Some('*'), 1..) => {
                let items: usize = lines[0][1..].parse().map_err(|_| text.to_string())?;
                if complete > items {
                    return Ok(lines.get(1) == Some(&":1"));
                }
            }
            (Some(_), 1..) => return Err(format!("unexpected reply {text:?}")),
            _ => {}
        }
        let read = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("the server closed the connection".to_owned());
        }
        reply.extend_from_slice(&chunk[..read]);
    }
}

/// `n` connections to the server, each answered a PING (so the server has
/// registered it).
fn connect_waiters(port: u16, n: usize) -> Vec<TcpStream> {
    let ping = packed(&split("PING"));
    (0..n)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            stream.set_nodelay(true).expect("TCP_NODELAY");
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .expect("a read timeout");
            stream.write_all(&ping).expect("PING");
            read_reply(&mut stream).expect("PONG");
            stream
        })
        .collect()
}

/// Waits until the server holds `n` blocked clients.
fn wait_until_blocked(con: &mut Connection, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::info_field(con, "clients", "blocked_clients") != n.to_string() {
        assert!(Instant::now() < deadline, "{n} clients did not block");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The waits started so far (`INFO rl`, `rl_waits` `total`).
fn waits_started(con: &mut Connection) -> usize {
    common::info_field(con, "rl", "rl_waits")
        .split(',')
        .find_map(|pair| pair.strip_prefix("total="))
        .and_then(|total| total.parse().ok())
        .unwrap_or(0)
}

/// The server's CPU time in ms: utime + stime of all its threads
/// (/proc/<pid>/stat, in clock ticks, 10 ms each at the usual 100 Hz), and
/// its main thread's time on CPU (/proc/<pid>/schedstat, in ns).
fn server_cpu(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // The fields after the command's name, from the state (field 3) on:
    // utime and stime are fields 14 and 15.
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .expect("(comm)")
        .1
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let schedstat = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap_or_default();
    let main_ns: f64 = schedstat
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    ((fields[11] + fields[12]) * 1000.0 / ticks, main_ns / 1e6)
}

/// The server's CPU time (as [`server_cpu`]) over the next second.
fn cpu_over_a_second(pid: u32) -> (f64, f64) {
    let before = server_cpu(pid);
    std::thread::sleep(Duration::from_secs(1));
    let after = server_cpu(pid);
    (after.0 - before.0, after.1 - before.1)
}

/// What WAITERS clients waiting on one bucket cost a server: CPU over a
/// second with nothing due, and memory.
struct Quiet {
    /// The server's CPU (ms: all threads, main thread) over a second with
    /// the clients connected and idle.
    idle_cpu: (f64, f64),
    /// The same over a second when they all wait, with nothing due.
    waiting_cpu: (f64, f64),
    /// used_memory per connection (idle, after a PING).
    per_connection: f64,
    /// used_memory added per client by its waiting.
    per_wait: f64,
    /// How many of the waiters were allowed when answered.
    allowed: usize,
}

/// WAITERS clients (`streams`) wait on one bucket, none due for 2 s: a
/// bucket of 2,000 tokens refilling one a ms, emptied, then a call of its
/// whole capacity that waits (due in 2 s) from `head`, then one call of
/// one token from each client (due 2.001 s to 3 s from then). Memory before
/// they connect, once connected, and once waiting; the server's CPU over a
/// second with them connected and idle, then over a second while they wait
/// and nothing is due.
fn quiet_second(server: &Server, pid: u32) -> (Quiet, Vec<TcpStream>) {
    let con = &mut server.connect();
    let before = used_memory(con);
    let mut streams = connect_waiters(server.port, WAITERS);
    let mut head = connect_waiters(server.port, 1).pop().expect("a connection");
    std::thread::sleep(Duration::from_millis(200));
    let connected = used_memory(con);
    let idle_cpu = cpu_over_a_second(pid);
    let emptied: Vec<i64> = redis::cmd("RL.TOKENBUCKET")
        .arg("quiet")
        .arg(2000)
        .arg(1)
        .arg(1)
        .arg("COST")
        .arg(2000)
        .query(con)
        .expect("RL.TOKENBUCKET");
    assert_eq!(emptied[0], 1, "the bucket emptied");
    let started = Instant::now();
    let call = |cost: i64| {
        packed(&split(&format!(
            "RL.TOKENBUCKET quiet 2000 1 1 COST {cost} WAIT {WAIT_TIMEOUT_MS}"
        )))
    };
    head.write_all(&call(2000)).expect("the head's call");
    wait_until_blocked(con, 1);
    let head_waiting = used_memory(con);
    let one = call(1);
    for stream in &streams {
        (&*stream).write_all(&one).expect("a waiter's call");
    }
    wait_until_blocked(con, WAITERS + 1);
    let waiting = used_memory(con);
    std::thread::sleep(Duration::from_millis(100));
    let waiting_cpu = cpu_over_a_second(pid);
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "the quiet second ended after the first waiter was due: {:?}",
        started.elapsed()
    );
    let mut allowed = 0;
    for stream in std::iter::once(&mut head).chain(streams.iter_mut()) {
        allowed += usize::from(read_reply(stream).expect("a waiter's reply"));
    }
    let quiet = Quiet {
        idle_cpu,
        waiting_cpu,
        per_connection: (connected - before) as f64 / (WAITERS + 1) as f64,
        per_wait: (waiting - head_waiting) as f64 / WAITERS as f64,
        allowed: allowed - 1,
    };
    (quiet, streams)
}

/// One pacing run: how late WAITERS waiters on one bucket were answered.
struct Pacing {
    allowed: usize,
    errors: Vec<String>,
    /// From the first answer to the last, ms.
    span: f64,
    /// From emptying the bucket to the first answer's due time (as the
    /// answers place it), ms.
    first: f64,
    /// Lateness, ms.
    p50: f64,
    p99: f64,
    max: f64,
}

/// A bucket of one token refilling one every PACING_INTERVAL_MS, emptied by
/// one call; then one call with `WAIT` from each of the `head` clients, and
/// once they wait, from each client of `streams` in turn (written without
/// waiting for replies), their replies read by a thread each and timed as
/// they arrive. The waiters are answered in the order they
/// arrived, each due PACING_INTERVAL_MS after the one before: sorted, the
/// k-th reply is due at D_0 + k × interval, where D_0 is
/// min_k(r_k - k × interval) (no reply comes early, so the least late sets
/// the origin), and is late by r_k - D_0 - k × interval.
fn pacing(server: &Server, head: &mut [TcpStream], streams: &[TcpStream], key: &str) -> Pacing {
    let con = &mut server.connect();
    let readers: Vec<_> = streams
        .iter()
        .map(|stream| {
            let mut stream = stream.try_clone().expect("a clone of the connection");
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let reply = read_reply(&mut stream);
                    (unix_us(), reply)
                })
                .expect("a reader thread")
        })
        .collect();
    let params = format!("{key} 1 1 {PACING_INTERVAL_MS}");
    let emptied: Vec<i64> = redis::cmd("RL.TOKENBUCKET")
        .arg(split(&params))
        .query(con)
        .expect("RL.TOKENBUCKET");
    assert_eq!(emptied[0], 1, "the bucket emptied");
    let emptied_at = unix_us();
    let call = packed(&split(&format!(
        "RL.TOKENBUCKET {params} WAIT {WAIT_TIMEOUT_MS}"
    )));
    let started = waits_started(con);
    for stream in head.iter() {
        (&*stream).write_all(&call).expect("a waiter's call");
    }
    // The first of them are answered within ms: count the waits started.
    let deadline = Instant::now() + Duration::from_secs(30);
    while waits_started(con) < started + head.len() {
        assert!(Instant::now() < deadline, "the waiters ahead did not wait");
        std::thread::sleep(Duration::from_millis(1));
    }
    for stream in streams {
        (&*stream).write_all(&call).expect("a waiter's call");
    }
    for stream in head.iter_mut() {
        assert_eq!(read_reply(stream), Ok(true), "a waiter ahead allowed");
    }
    let mut received = Vec::new();
    let mut allowed = 0;
    let mut errors = Vec::new();
    for reader in readers {
        let (at, reply) = reader.join().expect("a reader thread");
        match reply {
            Ok(true) => allowed += 1,
            Ok(false) => errors.push("denied".to_owned()),
            Err(error) => errors.push(error),
        }
        received.push(at);
    }
    received.sort_unstable();
    let interval = PACING_INTERVAL_MS * 1000;
    let origin = (0i64..)
        .zip(&received)
        .map(|(k, r)| r - k * interval)
        .min()
        .expect("replies");
    let mut late: Vec<f64> = (0i64..)
        .zip(&received)
        .map(|(k, r)| (r - origin - k * interval) as f64 / 1000.0)
        .collect();
    late.sort_by(f64::total_cmp);
    let at = |q: f64| late[((q * late.len() as f64).ceil() as usize).max(1) - 1];
    Pacing {
        allowed,
        errors,
        span: (received[received.len() - 1] - received[0]) as f64 / 1000.0,
        first: (origin - emptied_at) as f64 / 1000.0,
        p50: at(0.5),
        p99: at(0.99),
        max: at(1.0),
    }
}

/// Issue 19's section of the results, on a lone server of its own: the
/// pacing of WAITERS waiters on one bucket (`runs` runs), and what they
/// cost while they wait. Returns the section and its targets.
fn wait_section(runs: usize) -> (String, Vec<(String, String, bool)>) {
    let server = Server::start_with(&["--appendonly", "no"]);
    let con = &mut server.connect();
    let pid: u32 = common::info_field(con, "server", "process_id")
        .parse()
        .expect("process_id");
    let (quiet, streams) = quiet_second(&server, pid);
    let mut head = connect_waiters(server.port, PACING_HEAD);
    let mut out = String::new();
    let ideal = (WAITERS as i64 - 1) * PACING_INTERVAL_MS;
    let first = (PACING_HEAD as i64 + 1) * PACING_INTERVAL_MS;
    let _ = writeln!(out, "### Pacing: {WAITERS} clients waiting on one bucket\n\nA lone server of its own. A bucket of one token refilling one every {PACING_INTERVAL_MS} ms, emptied by one call; then `RL.TOKENBUCKET key 1 1 {PACING_INTERVAL_MS} WAIT {WAIT_TIMEOUT_MS}` from {PACING_HEAD} connections (not measured: they put the first measured waiter's due time {first} ms away, long after the driver has written every call), then, once they wait, from each of {WAITERS} connections in turn, written without waiting for replies, each reply read by a thread of its own and timed (unix µs) as it arrives. The waiters are answered in arrival order, each {PACING_INTERVAL_MS} ms after the one before: sorted, reply k is due at D0 + k × {PACING_INTERVAL_MS} ms, D0 = min over k of (r_k - k × {PACING_INTERVAL_MS} ms) (no reply comes early, so the least late sets the origin), and is late by r_k - D0 - k × {PACING_INTERVAL_MS} ms; the client's own thread wake-ups count in it. First due is D0 after the call that emptied the bucket was answered (ideally {first} ms, less the time that answer took to come back).\n");
    let _ = writeln!(out, "| run | allowed | span ms (ideal {ideal}) | first due ms | lateness p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|");
    let mut worst = (0.0f64, 0.0f64);
    let mut allowed = WAITERS;
    for run in 0..runs {
        let result = pacing(&server, &mut head, &streams, &format!("pace:{run}"));
        let errors = if result.errors.is_empty() {
            String::new()
        } else {
            format!(" ({} not: {})", result.errors.len(), result.errors[0])
        };
        let _ = writeln!(
            out,
            "| {} | {}{errors} | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} |",
            run + 1,
            result.allowed,
            result.span,
            result.first,
            result.p50,
            result.p99,
            result.max
        );
        worst = (worst.0.max(result.p99), worst.1.max(result.max));
        allowed = allowed.min(result.allowed);
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = writeln!(out, "\n### What waiting clients cost\n\nThe same server: {WAITERS} clients wait on one bucket, none due for 2 s (a bucket of 2,000 tokens refilling one a ms, emptied; a call of 2,000 tokens that waits, due in 2 s; then a call of one token from each client, due 2.001 s to 3 s from then). CPU is the server's over one second (utime + stime of all its threads from /proc/<pid>/stat, in 10 ms ticks; the main thread's time on CPU from /proc/<pid>/schedstat), with the clients connected and idle, then while they all wait and nothing is due. Memory is used_memory: Redis's own client structures and buffers count in a connection (a reply buffer of 16 KB for each); the wait's cost is the difference between the same clients connected and waiting, most of it Redis's own: each client a module blocks holds two fake clients of Redis's (its reply client and its thread-safe context's client), each with a 16 KB reply buffer. All {} waiters were answered allowed: {}.\n", WAITERS, quiet.allowed == WAITERS);
    let _ = writeln!(out, "| measure | value |\n|---|---|");
    let _ = writeln!(
        out,
        "| server CPU over a quiet second, {WAITERS} clients waiting | {:.0} ms (all threads); {:.2} ms (main thread) |",
        quiet.waiting_cpu.0, quiet.waiting_cpu.1
    );
    let _ = writeln!(
        out,
        "| server CPU over a second, the same clients connected, not waiting | {:.0} ms (all threads); {:.2} ms (main thread) |",
        quiet.idle_cpu.0, quiet.idle_cpu.1
    );
    let _ = writeln!(
        out,
        "| used_memory per waiting client (connection and wait) | {:.0} B |",
        quiet.per_connection + quiet.per_wait
    );
    let _ = writeln!(
        out,
        "| of which the wait (waiting against connected) | {:.0} B |",
        quiet.per_wait
    );
    let _ = writeln!(
        out,
        "| of which the connection (connected, idle) | {:.0} B |",
        quiet.per_connection
    );
    let targets = vec![
        (
            format!("pacing: every one of {WAITERS} waiters allowed"),
            format!("{allowed} (fewest in a run)"),
            allowed == WAITERS && quiet.allowed == WAITERS,
        ),
        (
            "pacing p99 lateness ≤ 2 ms".to_owned(),
            format!("{:.3} ms (worst of {runs} runs)", worst.0),
            worst.0 <= 2.0,
        ),
        (
            "pacing max lateness ≤ 10 ms".to_owned(),
            format!("{:.3} ms (worst of {runs} runs)", worst.1),
            worst.1 <= 10.0,
        ),
    ];
    (out, targets)
}

/// Each limiter row's throughput over its shape's reference (pipeline 16),
/// in both configurations.
fn svg(bars: &[(String, f64, f64)]) -> String {
    let height = 30 * bars.len() + 60;
    let mut out = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"780\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
    let _ = writeln!(out, "<text x=\"10\" y=\"20\" font-size=\"14\">Throughput over Redis's command of the same shape (SET PX, HMGET, HGETALL; pipeline 16): lone (blue), with a replica (orange)</text>");
    let scale = 400.0 / bars.iter().map(|b| b.1.max(b.2)).fold(1.0, f64::max);
    let x0 = 300.0;
    let _ = writeln!(
        out,
        "<line x1=\"{}\" y1=\"30\" x2=\"{}\" y2=\"{}\" stroke=\"#888\" stroke-dasharray=\"4\"/>",
        x0 + scale,
        x0 + scale,
        height - 20
    );
    for (i, (name, lone, replicated)) in bars.iter().enumerate() {
        let y = 40 + i * 30;
        let _ = writeln!(out, "<text x=\"10\" y=\"{}\">{name}</text>", y + 12);
        for (offset, value, colour) in [(0, lone, "#3b6fb6"), (12, replicated, "#e08a2c")] {
            let _ = writeln!(
                out,
                "<rect x=\"{x0}\" y=\"{}\" width=\"{:.1}\" height=\"11\" fill=\"{colour}\"/>",
                y + offset,
                value * scale
            );
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{}\">{value:.2}</text>",
                x0 + value * scale + 4.0,
                y + offset + 10
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rounds = env_number("BENCH_ROUNDS", 5);
    let requests = env_number("BENCH_REQUESTS", 200_000);
    let started = Instant::now();
    if std::env::var("BENCH_ONLY").as_deref() == Ok("wait") {
        let (section, targets) = wait_section(rounds);
        println!("{section}");
        for (what, value, met) in &targets {
            println!("| {what} | {value} | {} |", if *met { "yes" } else { "no" });
        }
        eprintln!("BENCH_ONLY=wait: bench/results.md and bench/ratios.svg left as they were");
        return;
    }
    // The least a module command of RL.TOKENBUCKET's request and reply costs.
    let floor = common::fixture_module("floor");
    let floor = floor.to_str().expect("UTF-8 path");
    let cell = redis_cell();
    let cell = cell.to_str().expect("UTF-8 path");
    eprintln!("redis-cell 0.2.2: {cell}");
    let configs = [
        Config::start("lone server", floor, cell, false),
        Config::start("a replica attached", floor, cell, true),
    ];
    let scripts = load_scripts(&mut configs[0].ours.connect());
    for config in &configs[1..] {
        load_scripts(&mut config.ours.connect());
    }
    let rows = rows(&scripts);
    for config in &configs {
        config.prepare(&rows);
    }
    eprintln!("prepared in {:.0} s", started.elapsed().as_secs_f64());
    let mut results = Results::new();
    for round in 0..rounds {
        for (config_index, config) in configs.iter().enumerate() {
            for pipeline in PIPELINES {
                for (index, row) in rows.iter().enumerate() {
                    if row.logs {
                        config.run(row, 16, requests);
                    }
                    let con = &mut config.server(row).connect();
                    redis::cmd("CONFIG")
                        .arg("RESETSTAT")
                        .query::<()>(con)
                        .unwrap();
                    let run = config.run(row, pipeline, requests);
                    let measure = results.entry((config_index, pipeline, index)).or_default();
                    measure.runs.push(run);
                    measure.usec.push(usec_per_call(con, &row.stat()));
                }
            }
            eprintln!(
                "round {} of {rounds}, {}: done at {:.0} s",
                round + 1,
                config.name,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let report = Report {
        rows: &rows,
        results: &results,
    };
    let mut out = String::new();
    let version = {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query(&mut configs[0].ours.connect())
            .unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("?")
            .trim()
            .to_owned()
    };
    let _ = writeln!(out, "Machine: {} cores; redis-server {version}; redis-cell 0.2.2; {rounds} rounds interleaved (configurations, pipelines and rows in turn), medians; 50 clients, 100,000 random keys; {requests} requests per run at pipeline 16, a quarter at pipeline 1, a quarter of those for Lua rows.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()));
    let mut all_targets = Vec::new();
    for (index, config) in configs.iter().enumerate() {
        let _ = writeln!(out, "## {}: pipeline 16\n", config.name);
        report.throughput(index, &mut out);
        let _ = writeln!(out, "\n## {}: pipeline 1, latency\n", config.name);
        report.latency(index, &mut out);
        let [incr, reserve, acquire] = paired_rows(&config.ours, 2.0);
        let _ = writeln!(out, "\n## {}: pairs driven by our own client (pipeline 1, 50 connections), against INCR through the same client\n", config.name);
        let _ = writeln!(out, "| row | requests/s | vs INCR |\n|---|---|---|");
        let _ = writeln!(out, "| INCR (own client) | {incr:.0} | 1.00 |");
        let _ = writeln!(
            out,
            "| RL.RESERVE then RL.SETTLE | {reserve:.0} | {:.2} |",
            reserve / incr
        );
        let _ = writeln!(
            out,
            "| RL.ACQUIRE then RL.RELEASE | {acquire:.0} | {:.2} |\n",
            acquire / incr
        );
        all_targets.extend(
            report
                .targets(index)
                .into_iter()
                .map(|(what, value, met)| (20, format!("{}: {what}", config.name), value, met)),
        );
    }
    let (memory, memory_targets) = memory_table();
    all_targets.extend(memory_targets.into_iter().map(|(w, v, m)| (20, w, v, m)));
    let _ = writeln!(out, "## Memory\n\nused_memory delta per key over many keys, and MEMORY USAGE of one key; a server of its own, no replica. The Lua hash bucket is bench/hash_bucket.lua (fields tokens and ts, and a TTL), called with the same parameters and times.\n");
    out.push_str(&memory);
    let _ = writeln!(out, "\n## WAIT (issue 19)\n\nA call with `WAIT` that need not wait (allowed at once, or denied for an hour, far beyond its timeout of 1 s) against the same call, keys and parameters without `WAIT`, in the same rounds (pipeline 16, medians); redis-benchmark's calls never wait.\n");
    for (index, config) in configs.iter().enumerate() {
        let _ = writeln!(out, "### {}\n", config.name);
        report.wait_table(index, &mut out);
        out.push('\n');
        all_targets.extend(
            report
                .wait_targets(index)
                .into_iter()
                .map(|(what, value, met)| (19, format!("{}: {what}", config.name), value, met)),
        );
    }
    let (wait, wait_targets) = wait_section(rounds);
    out.push_str(&wait);
    all_targets.extend(wait_targets.into_iter().map(|(w, v, m)| (19, w, v, m)));
    let _ = writeln!(
        out,
        "\n## Targets\n\n| issue | target | measured | met |\n|---|---|---|---|"
    );
    for (issue, what, value, met) in &all_targets {
        let _ = writeln!(
            out,
            "| {issue} | {what} | {value} | {} |",
            if *met { "yes" } else { "no" }
        );
    }
    println!("{out}");
    let bars: Vec<(String, f64, f64)> = rows
        .iter()
        .filter(|row| !row.cell && row.peer_of.is_empty())
        .filter_map(|row| {
            let reference = row.shape.reference()?;
            Some((
                row.name.clone(),
                report.ratio(0, 16, &row.name, reference),
                report.ratio(1, 16, &row.name, reference),
            ))
        })
        .collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench");
    std::fs::write(dir.join("results.md"), &out).expect("bench/results.md");
    std::fs::write(dir.join("ratios.svg"), svg(&bars)).expect("bench/ratios.svg");
    eprintln!(
        "wrote bench/results.md and bench/ratios.svg in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}
