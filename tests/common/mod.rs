//! Test harness: real redis-server processes with the module loaded, each on
//! a free loopback port in its own directory, reaped on drop.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use redis::{Connection, ConnectionLike, FromRedisValue, RedisResult, Value};

pub mod cluster;
pub mod wait;

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Builds the C module tests/fixtures/`name`.c against the redismodule.h
/// that the redis-module crate ships (in Cargo's registry); returns the
/// path of the built library.
pub fn fixture_module(name: &str) -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let include = std::fs::read_dir(cargo_home.join("registry/src"))
        .unwrap()
        .flat_map(|index| std::fs::read_dir(index.unwrap().path()).unwrap())
        .map(|entry| entry.unwrap().path().join("src/include"))
        .find(|dir| {
            dir.join("redismodule.h").exists() && dir.to_string_lossy().contains("/redis-module-")
        })
        .expect("redismodule.h of the redis-module crate in Cargo's registry");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{name}.c"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.so"));
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-I"])
        .arg(&include)
        .arg("-o")
        .arg(&out)
        .arg(&source)
        .status()
        .expect("a C compiler (cc)");
    assert!(status.success(), "{} did not build", source.display());
    out
}

/// The module under test: `RL_MODULE`, or the library built next to this
/// test binary (`target/<profile>/libredis_ratelimit.so`).
pub fn module_path() -> PathBuf {
    if let Some(path) = std::env::var_os("RL_MODULE") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = profile_dir.join("libredis_ratelimit.so");
    assert!(path.exists(), "module not built at {}", path.display());
    path
}

/// The server binary: `REDIS_SERVER`, or `redis-server` on the PATH.
pub fn server_binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

/// A free loopback port below 55535, whose cluster bus port (+10000) is
/// free too.
fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local addr").port();
        if port < 55_535 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn fresh_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rl-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the server directory");
    dir
}

pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    extra: Vec<String>,
    module: bool,
    child: Option<Child>,
}

impl Server {
    /// A server with the module loaded and no persistence.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// A server with extra `--name value` configuration.
    pub fn start_with(extra: &[&str]) -> Server {
        Server::launch(extra, true)
    }

    /// A server without the module, like a managed Redis that forbids modules.
    pub fn start_without_module() -> Server {
        Server::launch(&[], false)
    }

    /// A server with only the given `--name value` configuration (which may
    /// load the module its own way).
    pub fn start_bare(extra: &[&str]) -> Server {
        Server::launch(extra, false)
    }

    fn launch(extra: &[&str], module: bool) -> Server {
        let dir = fresh_dir();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for attempt in 0.. {
            let mut server = Server {
                port: free_port(),
                dir: dir.clone(),
                extra: extra.clone(),
                module,
                child: None,
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(error) if attempt < 3 => eprintln!("retrying server start: {error}"),
                Err(error) => panic!("redis-server did not start: {error}"),
            }
        }
        unreachable!()
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut args: Vec<String> = vec![
            "--port".into(),
            self.port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            self.dir.display().to_string(),
            "--logfile".into(),
            "server.log".into(),
            "--save".into(),
            "".into(),
            "--enable-debug-command".into(),
            "local".into(),
            "--enable-module-command".into(),
            "local".into(),
        ];
        if self.module {
            args.extend(["--loadmodule".into(), module_path().display().to_string()]);
        }
        args.extend(self.extra.iter().cloned());
        let child = Command::new(server_binary())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", server_binary()))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("exited with {status}; log:\n{}", self.log()));
            }
            // The port may belong to another test's server (taken between
            // free_port and this server's bind, which then fails): the
            // server that answers must be this child.
            if let Ok(mut con) = self.try_connect() {
                let loaded: RedisResult<String> = command("PING").query(&mut con);
                let info: RedisResult<String> = command("INFO server").query(&mut con);
                let pid = self.child.as_ref().map(std::process::Child::id);
                if let (Ok(_), Ok(info), Some(pid)) = (loaded, info, pid) {
                    if info.contains(&format!("process_id:{pid}\r\n")) {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "no answer within {START_TIMEOUT:?}; log:\n{}",
                    self.log()
                ));
            }
            sleep(Duration::from_millis(20));
        }
    }

    pub fn try_connect(&self) -> RedisResult<Connection> {
        let client = redis::Client::open(self.url())?;
        client.get_connection_with_timeout(Duration::from_secs(5))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("client")
    }

    pub fn connect(&self) -> Connection {
        self.try_connect().expect("connect to the test server")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the server at once (SIGKILL), like a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again in the same directory, on a new port.
    /// Restarts on the same directory with `extra` configuration instead of
    /// the server's own.
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.extra = extra.iter().map(|s| s.to_string()).collect();
        self.restart();
    }

    pub fn restart(&mut self) {
        self.kill();
        for attempt in 0.. {
            self.port = free_port();
            match self.spawn() {
                Ok(()) => return,
                Err(error) if attempt < 3 => eprintln!("retrying server restart: {error}"),
                Err(error) => panic!("redis-server did not restart: {error}"),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("server log kept in {}", self.dir.display());
        }
    }
}

/// A command line, as a user types it: text split on whitespace
/// (`"RL.TOKENBUCKET k 10 1 1000 AT 5000"`), or a list of words where a word
/// is empty, holds whitespace or is not UTF-8 (`&["SET", "k", ""]`,
/// `[&b"GET"[..], b"\xff"]`). Every helper below takes either.
pub trait Line {
    /// The words of the command, its name first.
    fn words(&self) -> Vec<&[u8]>;

    /// The words, for messages.
    fn show(&self) -> String {
        let words: Vec<_> = self
            .words()
            .into_iter()
            .map(String::from_utf8_lossy)
            .collect();
        format!("{words:?}")
    }
}

impl Line for str {
    fn words(&self) -> Vec<&[u8]> {
        self.split_whitespace().map(str::as_bytes).collect()
    }
}

impl Line for String {
    fn words(&self) -> Vec<&[u8]> {
        self.as_str().words()
    }
}

impl<W: AsRef<[u8]>> Line for [W] {
    fn words(&self) -> Vec<&[u8]> {
        self.iter().map(AsRef::as_ref).collect()
    }
}

impl<W: AsRef<[u8]>, const N: usize> Line for [W; N] {
    fn words(&self) -> Vec<&[u8]> {
        self[..].words()
    }
}

impl<W: AsRef<[u8]>> Line for Vec<W> {
    fn words(&self) -> Vec<&[u8]> {
        self[..].words()
    }
}

impl<L: Line + ?Sized> Line for &L {
    fn words(&self) -> Vec<&[u8]> {
        (**self).words()
    }
}

/// The command of a line, to send later, in a pipeline or asynchronously.
pub fn command(line: impl Line) -> redis::Cmd {
    let mut cmd = redis::Cmd::new();
    for word in line.words() {
        cmd.arg(word);
    }
    cmd
}

/// Runs a command line; the reply as a redis Value.
pub fn call(con: &mut impl ConnectionLike, line: impl Line) -> RedisResult<Value> {
    command(&line).query(con)
}

/// Runs a command line; its reply as a `T`.
pub fn query<T: FromRedisValue>(con: &mut impl ConnectionLike, line: impl Line) -> T {
    command(&line)
        .query(con)
        .unwrap_or_else(|e| panic!("{} failed: {e}", line.show()))
}

/// Runs a command line that replies with integers.
pub fn ints(con: &mut impl ConnectionLike, line: impl Line) -> Vec<i64> {
    query(con, line)
}

/// Runs a command line that replies with one integer.
pub fn int(con: &mut impl ConnectionLike, line: impl Line) -> i64 {
    match call(con, &line) {
        Ok(Value::Int(value)) => value,
        other => panic!("{} gave {other:?}", line.show()),
    }
}

/// The error message a command line replies with.
pub fn error(con: &mut impl ConnectionLike, line: impl Line) -> String {
    match call(con, &line) {
        Ok(value) => panic!("{} should fail, got {value:?}", line.show()),
        Err(error) => error_text(&error),
    }
}

/// Runs a command line in MULTI/EXEC: whether EXEC ran it, that is whether
/// nothing touched the keys `con` WATCHes.
pub fn transaction_runs(con: &mut impl ConnectionLike, line: impl Line) -> bool {
    let exec: Option<Vec<Value>> = redis::pipe()
        .atomic()
        .add_command(command(line))
        .query(con)
        .unwrap();
    exec.is_some()
}

/// Adds `cmd` to `pipe` in a MULTI/EXEC of its own, followed by a PERSIST
/// of each of `keys`: the pipeline's reply for it is EXEC's, read with
/// [`kept_reply`]. A write at a pinned time gives its key a TTL on the real
/// clock (a ms or two for a limiter about to be whole), which may run out
/// before the next call or not; a kept key decides from its state alone,
/// as an expired one would, so the replies stay those of the state.
pub fn add_kept(pipe: &mut redis::Pipeline, cmd: redis::Cmd, keys: &[impl AsRef<str>]) {
    pipe.cmd("MULTI").ignore();
    pipe.add_command(cmd).ignore();
    for key in keys {
        pipe.cmd("PERSIST").arg(key.as_ref()).ignore();
    }
    pipe.cmd("EXEC");
}

/// The call's own reply in EXEC's reply of [`add_kept`].
pub fn kept_reply(exec: Value) -> Value {
    match exec {
        Value::Array(mut replies) if !replies.is_empty() => replies.swap_remove(0),
        other => panic!("not the EXEC of a kept call: {other:?}"),
    }
}

/// The integer replies of a pipeline of kept calls (see [`add_kept`]).
pub fn kept_ints(execs: Vec<Value>) -> Vec<Vec<i64>> {
    execs
        .into_iter()
        .enumerate()
        .map(|(index, exec)| {
            redis::from_redis_value(&kept_reply(exec))
                .unwrap_or_else(|error| panic!("call {index}: {error}"))
        })
        .collect()
}

/// Runs a command line and PERSISTs `keys` in one MULTI/EXEC (see
/// [`add_kept`]); the command's reply.
pub fn kept(con: &mut impl ConnectionLike, line: impl Line, keys: &[impl AsRef<str>]) -> Value {
    let mut pipe = redis::pipe();
    add_kept(&mut pipe, command(line), keys);
    let (exec,): (Value,) = pipe.query(con).unwrap();
    kept_reply(exec)
}

/// Code and message of a server error, as the server sent them.
pub fn error_text(error: &redis::RedisError) -> String {
    match (error.code(), error.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_owned(),
        _ => error.to_string(),
    }
}

/// DUMP of a key (its exact serialized state), None when missing.
pub fn dump(con: &mut impl ConnectionLike, key: &[u8]) -> Option<Vec<u8>> {
    query(con, [&b"DUMP"[..], key])
}

/// The key's expiry in unix ms (PEXPIRETIME): -1 without one, -2 missing.
pub fn expire_time(con: &mut impl ConnectionLike, key: &[u8]) -> i64 {
    query(con, [&b"PEXPIRETIME"[..], key])
}

/// The one random generator of the integration tests: a small
/// deterministic PRNG (xorshift64*), seeded by each test, so that a failure
/// replays from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % ((high - low + 1) as u64)) as i64
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Expires `keys` without letting Redis reap them (active expiry off), so
/// that only a lookup removes them; returns INFO's `expired_keys`, which
/// tells later whether a lookup did.
pub fn expire_unreaped(con: &mut Connection, keys: &[&str]) -> String {
    call(con, "DEBUG SET-ACTIVE-EXPIRE 0").unwrap();
    for key in keys {
        call(con, ["PEXPIRE", key, "1"]).unwrap();
    }
    sleep(Duration::from_millis(20));
    info_field(con, "stats", "expired_keys")
}

/// A field of `INFO section`, empty when absent.
/// The server's version as Redis reports it (Valkey reports 7.2.4): major
/// and minor.
pub fn server_version(con: &mut Connection) -> (u32, u32) {
    let version = info_field(con, "server", "redis_version");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}

pub fn info_field(con: &mut Connection, section: &str, field: &str) -> String {
    let info: String = query(con, ["INFO", section]);
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// A new connection logged in as `user` (password `pw`), which `admin`
/// creates or updates with the ACL `rules`.
pub fn login(server: &Server, admin: &mut Connection, user: &str, rules: &[&str]) -> Connection {
    let setuser = [&["ACL", "SETUSER", user, "on", ">pw"][..], rules].concat();
    query::<()>(admin, setuser);
    let mut con = server.connect();
    query::<()>(&mut con, ["AUTH", user, "pw"]);
    con
}

/// A master and its replica, once the replica is in sync. The master starts
/// the full sync at once, not after the default 5 s wait for more replicas.
pub fn start_pair() -> (Server, Server) {
    let master = Server::start_with(&["--repl-diskless-sync-delay", "0"]);
    let replica = Server::start_with(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut con = replica.connect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while info_field(&mut con, "replication", "master_link_status") != "up" {
        assert!(Instant::now() < deadline, "replica did not sync");
        std::thread::sleep(Duration::from_millis(50));
    }
    (master, replica)
}

/// Waits until the AOF rewrite under way (or scheduled) has finished, and
/// checks that it succeeded.
pub fn wait_for_rewrite(con: &mut Connection) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info: String = query(con, "INFO persistence");
        if info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrite_scheduled:0") {
            assert!(info.contains("aof_last_bgrewrite_status:ok"), "{info}");
            return;
        }
        assert!(Instant::now() < deadline, "the rewrite did not finish");
        sleep(Duration::from_millis(20));
    }
}

/// Waits until the one replica has acknowledged every write so far.
pub fn wait_for_replica(master: &mut Connection) {
    let acked: i64 = query(master, "WAIT 1 10000");
    assert_eq!(acked, 1, "the replica acknowledged");
}

/// The keyspace events `server` sends while `act` runs, with
/// `notify-keyspace-events` set to `flags`: each as "event key", the event
/// without its `__keyevent@0__:` prefix.
pub fn key_events(server: &Server, flags: &str, act: impl FnOnce()) -> Vec<String> {
    let mut con = server.connect();
    query::<()>(&mut con, ["CONFIG", "SET", "notify-keyspace-events", flags]);
    let mut listener = server.connect();
    listener
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut pubsub = listener.as_pubsub();
    pubsub.psubscribe("__keyevent@0__:*").unwrap();
    act();
    let mut events = Vec::new();
    while let Ok(message) = pubsub.get_message() {
        let key = String::from_utf8_lossy(message.get_payload_bytes()).into_owned();
        let event = message
            .get_channel_name()
            .trim_start_matches("__keyevent@0__:");
        events.push(format!("{event} {key}"));
    }
    events
}

/// The arguments of a server that appends every write to its AOF at once
/// and rewrites it without an RDB preamble (as `RL.RESTORESTATE` calls).
pub const AOF_WITHOUT_PREAMBLE: [&str; 6] = [
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--aof-use-rdb-preamble",
    "no",
];

/// Checks that the limiters in `keys` of `master` reach exactly the same
/// state (their DUMP payloads) on its replica, through DEBUG RELOAD,
/// RESTORE and COPY, and through an AOF rewritten without an RDB preamble
/// and replayed.
pub fn assert_states_persist(master: &Server, replica: &Server, keys: &[String]) {
    let mut con = master.connect();
    let dumps = |con: &mut Connection| -> Vec<Option<Vec<u8>>> {
        keys.iter().map(|k| dump(con, k.as_bytes())).collect()
    };
    let before = dumps(&mut con);
    wait_for_replica(&mut con);
    assert_eq!(dumps(&mut replica.connect()), before, "the replica");
    query::<()>(&mut con, "DEBUG RELOAD");
    assert_eq!(dumps(&mut con), before, "DEBUG RELOAD");
    let payload = dump(&mut con, keys[0].as_bytes()).unwrap();
    query::<()>(&mut con, [&b"RESTORE"[..], b"restored", b"0", &payload]);
    assert_eq!(dump(&mut con, b"restored"), Some(payload.clone()));
    query::<()>(&mut con, format!("COPY {} copied", keys[0]));
    assert_eq!(dump(&mut con, b"copied"), Some(payload));
    let mut aof = Server::start_with(&AOF_WITHOUT_PREAMBLE);
    let mut aof_con = aof.connect();
    for (key, dumped) in keys.iter().zip(&before) {
        let payload = dumped.as_deref().unwrap();
        query::<()>(
            &mut aof_con,
            [&b"RESTORE"[..], key.as_bytes(), b"0", payload],
        );
    }
    query::<()>(&mut aof_con, "BGREWRITEAOF");
    wait_for_rewrite(&mut aof_con);
    aof.kill();
    aof.restart();
    assert_eq!(dumps(&mut aof.connect()), before, "AOF rewrite and replay");
}

/// The server's clock, in unix ms.
pub fn server_ms(con: &mut Connection) -> i64 {
    let time: Vec<i64> = query(con, "TIME");
    time[0] * 1000 + time[1] / 1000
}

/// Runs `call` and gives back its result with the server's clock (ms) read
/// before and after it: the time of a write it makes lies in that range.
pub fn timed<T>(
    con: &mut Connection,
    call: impl FnOnce(&mut Connection) -> T,
) -> (T, std::ops::RangeInclusive<i64>) {
    let earliest = server_ms(con);
    let result = call(con);
    (result, earliest..=server_ms(con))
}

/// The Python of `dir/.venv`, made with `dir/requirements.txt` installed
/// unless it can already import `module`.
pub fn venv_python(dir: &Path, module: &str) -> PathBuf {
    let python = dir.join(".venv/bin/python");
    let ready = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        for (program, args) in [
            (PathBuf::from("python3"), &["-m", "venv", ".venv"][..]),
            (
                dir.join(".venv/bin/pip"),
                &["install", "-q", "-r", "requirements.txt"],
            ),
        ] {
            let status = Command::new(&program).args(args).current_dir(dir).status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "{program:?} {args:?} in {dir:?}"
            );
        }
    }
    python
}
