//! The HTTP examples in examples/, run for real against a server with the
//! module and one without it (the Lua fallback): status codes and header
//! values are checked against what the limiter itself replies.
//!
//! The client packages are installed locally on first use (a venv in
//! examples/python/.venv, `npm ci` in examples/node) and reused afterwards.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::common::{ints, query, venv_python, Server};
use redis::Connection;

const START_TIMEOUT: Duration = Duration::from_secs(30);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// examples/python/.venv with requirements.txt installed, created once.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| venv_python(&root().join("examples/python"), "redis"))
}

/// examples/node/node_modules from package-lock.json, installed once.
fn node_example() -> &'static Path {
    static NODE: OnceLock<PathBuf> = OnceLock::new();
    NODE.get_or_init(|| {
        let dir = root().join("examples/node");
        if !dir.join("node_modules/ioredis/package.json").exists() {
            run(Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir));
        }
        dir.join("server.js")
    })
}

/// The Rust example, built by the same cargo in the same profile as this
/// test (a no-op after `cargo test`, which builds every example).
fn rust_example() -> &'static Path {
    static RUST: OnceLock<PathBuf> = OnceLock::new();
    RUST.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "--example", "http_ratelimit"])
            .current_dir(root());
        if profile_dir.ends_with("release") {
            cmd.arg("--release");
        }
        run(&mut cmd);
        profile_dir.join("examples/http_ratelimit")
    })
}

/// An example process on a port of its choosing (PORT=0), killed on drop.
struct App {
    child: Child,
    port: u16,
    backend: String,
    lines: Receiver<String>,
    log: Vec<String>,
}

impl App {
    fn start(mut cmd: Command, server: &Server, env: &[(&str, &str)]) -> App {
        cmd.env("REDIS_URL", server.url())
            .env("PORT", "0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let (send, lines) = channel();
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("stdout"));
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("stderr"));
        for stream in [stdout, stderr] {
            let send = send.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = send.send(line);
                }
            });
        }
        let mut app = App {
            child,
            port: 0,
            backend: String::new(),
            lines,
            log: Vec::new(),
        };
        // "listening on http://127.0.0.1:PORT backend=module|lua"
        let line = app.wait_for("listening on http://127.0.0.1:", START_TIMEOUT);
        let (address, backend) = line.split_once(" backend=").expect("backend=");
        app.port = address.rsplit(':').next().unwrap().parse().expect("port");
        app.backend = backend.to_owned();
        app
    }

    /// The first output line (stdout or stderr) containing `text`.
    fn wait_for(&mut self, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no {text:?} within {timeout:?}; output:\n{}",
                        self.log.join("\n")
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!(
                        "exited ({status:?}) before {text:?}; output:\n{}",
                        self.log.join("\n")
                    )
                }
            }
        }
    }

    /// Kills the process at once (SIGKILL): no cleanup code runs.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            self.log.extend(self.lines.try_iter());
            eprintln!("example output:\n{}", self.log.join("\n"));
        }
    }
}

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// A JSON integer field of the body, found by text (no JSON crate).
    fn body_int(&self, field: &str) -> i64 {
        let key = format!("\"{field}\":");
        let at = self
            .body
            .find(&key)
            .unwrap_or_else(|| panic!("{field} in {}", self.body));
        let rest = self.body[at + key.len()..].trim_start();
        let end = rest
            .find(|c: char| c != '-' && !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end]
            .parse()
            .unwrap_or_else(|_| panic!("{field} in {}", self.body))
    }

    /// The parameters of one item of a RateLimit or RateLimit-Policy field:
    /// `"name";r=3;t=2, ...` gives {r: "3", t: "2"} for `name`.
    fn item(&self, field: &str, name: &str) -> HashMap<String, String> {
        let value = self
            .header(field)
            .unwrap_or_else(|| panic!("no {field} header"));
        let quoted = format!("\"{name}\"");
        let item = value
            .split(',')
            .map(str::trim)
            .find(|item| item.split(';').next() == Some(&quoted))
            .unwrap_or_else(|| panic!("no {name} in {field}: {value}"));
        item.split(';')
            .skip(1)
            .map(|p| {
                let (k, v) = p.split_once('=').expect("key=value");
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    fn item_int(&self, field: &str, name: &str, param: &str) -> i64 {
        let item = self.item(field, name);
        let value = item
            .get(param)
            .unwrap_or_else(|| panic!("no {param} in {name}"));
        value.parse().expect("an integer")
    }
}

/// Sends one HTTP/1.1 request and reads the whole reply.
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut stream = send(port, method, path, headers, body);
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read the reply");
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP reply: {raw:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn send(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the example");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request += &format!("{name}: {value}\r\n");
    }
    request += "\r\n";
    request += body;
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    stream
}

/// An upper bound, in ms, of how far apart two readings of a millisecond
/// clock taken since `start` can be.
fn ms_since(start: Instant) -> i64 {
    start.elapsed().as_millis() as i64 + 1
}

fn ceil_s(ms: i64) -> i64 {
    (ms + 999).div_euclid(1000)
}

fn lua(name: &str) -> redis::Script {
    let path = root().join("lua").join(name);
    redis::Script::new(&std::fs::read_to_string(&path).expect("a Lua script"))
}

fn key_type(con: &mut Connection, key: &str) -> String {
    query(con, format!("TYPE {key}"))
}

// The middleware examples' bucket: 5 tokens, one more every 3 s (so the
// policy's window, empty to full, is 15 s).
const CAPACITY: i64 = 5;
const PERIOD_MS: i64 = 3000;
const BUCKET_ENV: [(&str, &str); 3] = [
    ("RL_CAPACITY", "5"),
    ("RL_REFILL", "1"),
    ("RL_PERIOD_MS", "3000"),
];

/// The limiter's own reply to a call of cost 1 on `key`, native or through
/// the Lua script; used right after a 429, when it is denied and so writes
/// nothing.
fn limiter_call(con: &mut Connection, module: bool, key: &str) -> Vec<i64> {
    if module {
        ints(con, format!("RL.TOKENBUCKET {key} 5 1 3000"))
    } else {
        lua("token_bucket.lua")
            .key(key)
            .arg(&["5", "1", "3000", "1"])
            .invoke(con)
            .unwrap()
    }
}

/// A server with the module, then one without (like a managed Redis that
/// forbids modules), each with the backend an example must report for it.
fn backends() -> impl Iterator<Item = (Server, &'static str)> {
    [true, false].into_iter().map(|module| {
        if module {
            (Server::start(), "module")
        } else {
            (Server::start_without_module(), "lua")
        }
    })
}

/// Drives one middleware example (Python, Node or Rust) against both
/// backends: counts down, denies with exact headers, keys per client,
/// rejects a cost above capacity, and admits again after Retry-After.
fn check_middleware(start: impl Fn(&Server) -> App) {
    for (server, backend) in backends() {
        let module = backend == "module";
        let mut con = server.connect();
        let app = start(&server);
        assert_eq!(app.backend, backend, "start-up line");
        let get = |user: &str, cost: &str| {
            http(
                app.port,
                "GET",
                "/",
                &[("X-User", user), ("X-Cost", cost)],
                "",
            )
        };
        let policy = format!(
            "\"default\";q={CAPACITY};w={}",
            ceil_s(CAPACITY * PERIOD_MS)
        );

        let begin = Instant::now();
        for k in 1..=CAPACITY {
            if k == 3 && !module {
                // The fallback reloads its script after NOSCRIPT.
                query::<()>(&mut con, "SCRIPT FLUSH");
            }
            let reply = get("alice", "1");
            let elapsed = ms_since(begin);
            assert_eq!(reply.status, 200, "request {k}: {}", reply.body);
            assert_eq!(reply.header("X-RateLimit-Backend"), Some(backend));
            assert_eq!(reply.header("RateLimit-Policy"), Some(policy.as_str()));
            assert_eq!(reply.header("Retry-After"), None);
            assert!(
                elapsed < PERIOD_MS,
                "too slow to count exactly: {elapsed} ms"
            );
            // Exactly one token fewer per request; the bucket is full again
            // k periods after the first call, less the time gone since.
            assert_eq!(reply.item_int("RateLimit", "default", "r"), CAPACITY - k);
            let t = reply.item_int("RateLimit", "default", "t");
            assert!(
                (ceil_s(k * PERIOD_MS - elapsed)..=k * PERIOD_MS / 1000).contains(&t),
                "request {k}: t={t} after {elapsed} ms"
            );
        }

        let asked = Instant::now();
        let denied = get("alice", "1");
        let received = Instant::now();
        let limiter = limiter_call(&mut con, module, "rl:alice");
        let lag = ms_since(asked);
        assert_eq!(denied.status, 429, "{}", denied.body);
        assert_eq!(denied.header("X-RateLimit-Backend"), Some(backend));
        assert_eq!(denied.item_int("RateLimit", "default", "r"), 0);
        let retry_ms = denied.body_int("retry_after_ms");
        let retry_after: i64 = denied
            .header("Retry-After")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert_eq!(retry_after, ceil_s(retry_ms));
        assert!(retry_after >= 1);
        // The limiter, asked a moment later, agrees up to the time between.
        assert_eq!(limiter[0], 0, "still denied: {limiter:?}");
        assert!(
            limiter[3] <= retry_ms && retry_ms <= limiter[3] + lag,
            "limiter {limiter:?}, reply {retry_ms} ms, {lag} ms apart"
        );
        let reset_ms = limiter[4];
        let t = denied.item_int("RateLimit", "default", "t");
        assert!((ceil_s(reset_ms)..=ceil_s(reset_ms + lag)).contains(&t));

        // One bucket per client; a cost is charged whole; a cost above the
        // capacity can never pass (413, no Retry-After) and writes nothing.
        let bob = get("bob", "1");
        assert_eq!(
            (bob.status, bob.item_int("RateLimit", "default", "r")),
            (200, CAPACITY - 1)
        );
        let dave = get("dave", "2");
        assert_eq!(
            (dave.status, dave.item_int("RateLimit", "default", "r")),
            (200, CAPACITY - 2)
        );
        let carol = get("carol", &(CAPACITY + 1).to_string());
        assert_eq!(carol.status, 413, "{}", carol.body);
        assert_eq!(carol.header("Retry-After"), None);
        assert_eq!(carol.item_int("RateLimit", "default", "r"), CAPACITY);
        assert_eq!(key_type(&mut con, "rl:carol"), "none");
        // A cost beyond 64 bits, which the limiter refuses, still gets an
        // answer: a client error, or 503 when the limiter's error comes back.
        let erin = get("erin", "99999999999999999999");
        assert!(
            matches!(erin.status, 400 | 503),
            "{} {}",
            erin.status,
            erin.body
        );
        // Redis failing (here: the client's key holds another type) is a 503.
        query::<()>(&mut con, "SET rl:frank x");
        let frank = get("frank", "1");
        assert_eq!(frank.status, 503, "{}", frank.body);
        // The state lives where the backend says: the module's type or the script's hash.
        let stored = if module { "rl-bucket" } else { "hash" };
        assert_eq!(key_type(&mut con, "rl:alice"), stored);

        // Coming back after Retry-After is never too early.
        let back = received + Duration::from_secs(retry_after as u64);
        sleep(back.saturating_duration_since(Instant::now()));
        let again = get("alice", "1");
        assert_eq!(again.status, 200, "after Retry-After: {}", again.body);
    }
}

#[test]
fn python_middleware() {
    check_middleware(|server| {
        let mut cmd = Command::new(python());
        cmd.arg("-u")
            .arg("app.py")
            .current_dir(root().join("examples/python"));
        App::start(cmd, server, &BUCKET_ENV)
    });
}

#[test]
fn node_middleware() {
    check_middleware(|server| {
        let mut cmd = Command::new("node");
        cmd.arg(node_example());
        App::start(cmd, server, &BUCKET_ENV)
    });
}

#[test]
fn rust_middleware() {
    check_middleware(|server| App::start(Command::new(rust_example()), server, &BUCKET_ENV));
}

/// RL.INSPECT as a map of field to integer (type and nil fields left out);
/// None for a missing key.
fn inspect(con: &mut Connection, key: &str) -> Option<HashMap<String, i64>> {
    let fields: Option<HashMap<String, redis::Value>> = query(con, format!("RL.INSPECT {key}"));
    fields.map(|fields| {
        fields
            .into_iter()
            .filter_map(|(name, value)| match value {
                redis::Value::Int(n) => Some((name, n)),
                _ => None,
            })
            .collect()
    })
}

/// The gateway admits with one RL.ALL, settles the real usage and releases
/// its slot; when it is killed mid-call, the reservation stays charged at
/// max_tokens and the slot stays taken until their lease ends, then the
/// slot is free and a late settle changes nothing.
#[test]
fn llm_gateway() {
    // Long enough for the checks between a gateway's kill and the lease's
    // end (a process killed, an HTTP round trip through the other gateway)
    // on a loaded machine.
    const LEASE_MS: i64 = 5000;
    const BUDGET: i64 = 1000;
    let env = [
        ("RL_RATE_CAPACITY", "100"),
        ("RL_RATE_REFILL", "100"),
        ("RL_RATE_PERIOD_MS", "1000"),
        // A budget that refills by less than a token within the test.
        ("RL_TOKENS_CAPACITY", "1000"),
        ("RL_TOKENS_REFILL", "1"),
        ("RL_TOKENS_PERIOD_MS", "3600000"),
        ("RL_SLOTS", "1"),
        ("RL_LEASE_MS", "5000"),
    ];
    let (tokens_key, slots_key) = ("llm:{alice}:tokens", "llm:{alice}:concurrency");
    for (server, backend) in backends() {
        let module = backend == "module";
        let mut con = server.connect();
        let start = || {
            let mut cmd = Command::new(python());
            cmd.arg("-u")
                .arg("llm_gateway.py")
                .current_dir(root().join("examples/python"));
            App::start(cmd, &server, &env)
        };
        let complete = |app: &App, max_tokens: i64| {
            let body = format!(r#"{{"prompt": "a b c", "max_tokens": {max_tokens}}}"#);
            http(
                app.port,
                "POST",
                "/v1/completions",
                &[("X-User", "alice")],
                &body,
            )
        };
        let mut gateway = start();
        assert_eq!(gateway.backend, backend);
        // A second gateway on the same server, started now so that its
        // start-up does not eat into the lease below.
        let second = start();

        // A whole request: the reservation is settled at the real usage.
        let first = complete(&gateway, 300);
        assert_eq!(first.status, 200, "{}", first.body);
        gateway.wait_for("admitted user=alice", Duration::from_secs(10));
        assert_eq!(first.header("X-RateLimit-Backend"), Some(backend));
        let used = first.body_int("completion_tokens");
        assert!((1..300).contains(&used), "{}", first.body);
        assert_eq!(first.body_int("settled"), 1);
        assert_eq!(first.item_int("RateLimit", "tokens", "r"), BUDGET - used);
        assert_eq!(first.item_int("RateLimit", "concurrency", "r"), 1);
        assert_eq!(first.item_int("RateLimit", "rate", "r"), 99);
        assert_eq!(
            first.item("RateLimit-Policy", "concurrency")["q"],
            "1",
            "policy {:?}",
            first.header("RateLimit-Policy")
        );

        // A request whose model call hangs, and a gateway killed during it.
        let body = r#"{"prompt": "a b c", "max_tokens": 400, "stand_in_delay_ms": 60000}"#;
        let mut hanging = send(
            gateway.port,
            "POST",
            "/v1/completions",
            &[("X-User", "alice")],
            body,
        );
        let admitted = gateway.wait_for("admitted user=alice", Duration::from_secs(10));
        let id = |name: &str| -> i64 {
            let word = admitted
                .split(' ')
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} in {admitted}"));
            word.parse().unwrap()
        };
        let (reservation, lease) = (id("reservation"), id("lease"));
        gateway.kill();
        let mut rest = Vec::new();
        let _ = hanging.read_to_end(&mut rest);
        assert!(rest.is_empty(), "no reply from a killed gateway");

        // Both are still open, ending within one lease from now.
        let now = {
            let (secs, micros): (i64, i64) = query(&mut con, "TIME");
            secs * 1000 + micros / 1000
        };
        if module {
            let slots = inspect(&mut con, slots_key).expect("the lease key");
            assert_eq!(slots["live"], 1);
            assert!((now + 1..=now + LEASE_MS).contains(&slots["next_end_ms"]));
            let tokens = inspect(&mut con, tokens_key).expect("the budget key");
            assert_eq!(tokens["tokens"], BUDGET - used - 400);
        } else {
            let end: i64 = query(&mut con, format!("HGET {slots_key} l:{lease}"));
            assert!((now + 1..=now + LEASE_MS).contains(&end));
            let open: String = query(&mut con, format!("HGET {tokens_key} r:{reservation}"));
            assert!(open.starts_with("400:"), "reservation {open}");
        }
        let stored = if module {
            ["rl-leases", "rl-bucket"]
        } else {
            ["hash", "hash"]
        };
        assert_eq!(
            [
                key_type(&mut con, slots_key),
                key_type(&mut con, tokens_key)
            ],
            stored
        );

        // Another gateway: the slot is taken until the lease ends, and the
        // budget still holds the whole estimate.
        let denied = complete(&second, 100);
        let received = Instant::now();
        assert_eq!(denied.status, 429, "{}", denied.body);
        assert!(
            denied
                .body
                .contains(r#""violated-policies": ["concurrency"]"#),
            "{}",
            denied.body
        );
        let retry_ms = denied.body_int("retry_after_ms");
        assert!((1..=LEASE_MS).contains(&retry_ms), "{retry_ms}");
        let retry_after: i64 = denied
            .header("Retry-After")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert_eq!(retry_after, ceil_s(retry_ms));
        assert_eq!(denied.item_int("RateLimit", "concurrency", "r"), 0);
        assert_eq!(
            denied.item_int("RateLimit", "tokens", "r"),
            BUDGET - used - 400
        );

        // After Retry-After: the lease has ended and the slot is free; the
        // reservation closed at its estimate, so a late settle is refused.
        sleep(
            (received + Duration::from_secs(retry_after as u64))
                .saturating_duration_since(Instant::now()),
        );
        let settle = if module {
            ints(&mut con, format!("RL.SETTLE {tokens_key} {reservation} 0"))
        } else {
            lua("settle.lua")
                .key(tokens_key)
                .arg(reservation)
                .arg(0)
                .invoke(&mut con)
                .unwrap()
        };
        assert_eq!(
            settle[..3],
            [0, BUDGET, BUDGET - used - 400],
            "late settle {settle:?}"
        );
        if module {
            if let Some(slots) = inspect(&mut con, slots_key) {
                assert_eq!(slots["live"], 0, "{slots:?}");
            }
        }
        let last = complete(&second, 100);
        assert_eq!(last.status, 200, "after the lease: {}", last.body);
        let used_last = last.body_int("completion_tokens");
        assert_eq!(
            last.item_int("RateLimit", "tokens", "r"),
            BUDGET - used - 400 - used_last
        );
    }
}
