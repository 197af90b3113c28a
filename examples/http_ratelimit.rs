//! A rate-limited HTTP service on std::net and the `redis` crate's sync API:
//! one RL.TOKENBUCKET per request (COST from X-Cost, default 1) on a bucket
//! per client (X-User, else the remote address). 429 with Retry-After when
//! denied; RateLimit-Policy and RateLimit
//! (draft-ietf-httpapi-ratelimit-headers-11) on every reply. Without the
//! module it runs lua/token_bucket.lua (SCRIPT LOAD once, EVALSHA, reloaded on
//! NOSCRIPT by `redis::Script`).
//!
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 PORT=8080 cargo run --release --example http_ratelimit
//! curl -i -H 'X-User: alice' http://127.0.0.1:8080/
//! ```
//! Also RL_CAPACITY, RL_REFILL, RL_PERIOD_MS (the bucket) and
//! RL_CLIENT_CLOCK=1 (send this process's clock instead of using the server's).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use redis::{Connection, RedisResult, Script, Value};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| v.parse().expect(name))
}

/// Milliseconds to whole seconds, rounded up: a client is never early.
fn ceil_s(ms: i64) -> i64 {
    (ms + 999).div_euclid(1000)
}

/// A JSON string literal.
fn json_str(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => out.extend(['\\', c]),
            c if c < ' ' => out += &format!("\\u{:04x}", c as u32),
            c => out.push(c),
        }
    }
    out + "\""
}

struct Limiter {
    /// One connection and the backend in use ("module" or "lua"); a real
    /// service would use a pool.
    con: Mutex<(Connection, &'static str)>,
    script: Script,
    bucket: [u64; 3], // capacity, refill_amount, refill_period_ms
    policy: String,
    client_clock: bool,
}

impl Limiter {
    /// The five integers of RL.TOKENBUCKET, and the backend that gave them.
    fn charge(&self, key: &str, cost: u64) -> RedisResult<(Vec<i64>, &'static str)> {
        let now = self.client_clock.then(|| {
            let since = SystemTime::now().duration_since(UNIX_EPOCH);
            since.unwrap_or_default().as_millis().to_string()
        });
        let mut guard = self.con.lock().unwrap_or_else(|e| e.into_inner());
        let (con, backend) = &mut *guard;
        if *backend == "module" {
            let mut cmd = redis::cmd("RL.TOKENBUCKET");
            cmd.arg(key).arg(&self.bucket[..]).arg("COST").arg(cost);
            if let Some(now) = &now {
                cmd.arg("AT").arg(now);
            }
            match cmd.query(con) {
                Err(e) if e.detail().is_some_and(|d| d.starts_with("unknown command")) => {
                    eprintln!("module gone: switching to lua");
                    *backend = "lua"; // e.g. failed over to a server without it
                }
                reply => return reply.map(|r| (r, "module")),
            }
        }
        let mut call = self.script.key(key);
        call.arg(&self.bucket[..])
            .arg(cost)
            .arg(now.unwrap_or_default());
        Ok((call.invoke(con)?, "lua"))
    }
}

type Response = (&'static str, Vec<(&'static str, String)>, String);

fn error(status: &'static str, message: &str) -> Response {
    (
        status,
        vec![],
        format!(r#"{{"error":{}}}"#, json_str(message)),
    )
}

/// Middleware: charges the client's bucket, then runs `handler` or answers 429.
fn rate_limited(
    limiter: &Limiter,
    client: &str,
    cost: &str,
    handler: fn(&str) -> Response,
) -> Response {
    let Ok(cost) = cost.parse::<u64>() else {
        return error("400 Bad Request", "X-Cost must be a whole number");
    };
    let (reply, backend) = match limiter.charge(&format!("rl:{client}"), cost) {
        Ok(charged) => charged,
        Err(e) => return error("503 Service Unavailable", &e.to_string()),
    };
    let [allowed, _limit, remaining, retry_ms, reset_ms] = reply[..] else {
        return error("503 Service Unavailable", &format!("reply {reply:?}"));
    };
    let mut state = format!("\"default\";r={remaining}");
    if reset_ms >= 0 {
        state += &format!(";t={}", ceil_s(reset_ms));
    }
    let mut headers = vec![
        ("RateLimit-Policy", limiter.policy.clone()),
        ("RateLimit", state),
        ("X-RateLimit-Backend", backend.to_owned()),
    ];
    if allowed == 1 {
        let (status, mut more, body) = handler(client);
        headers.append(&mut more);
        return (status, headers, body);
    }
    if retry_ms < 0 {
        // The cost exceeds the capacity: waiting never helps.
        let body = r#"{"error":"cost above the limit"}"#.to_owned();
        return ("413 Content Too Large", headers, body);
    }
    headers.push(("Retry-After", ceil_s(retry_ms).to_string()));
    let body = format!(r#"{{"error":"too many requests","retry_after_ms":{retry_ms}}}"#);
    ("429 Too Many Requests", headers, body)
}

fn hello(client: &str) -> Response {
    (
        "200 OK",
        vec![],
        format!(r#"{{"hello":{}}}"#, json_str(client)),
    )
}

/// Reads one request (headers only), answers it, closes the connection.
fn serve(mut stream: TcpStream, limiter: &Limiter) -> std::io::Result<()> {
    let peer = stream.peer_addr()?.ip().to_string();
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut headers = HashMap::new();
    let mut line = String::new();
    reader.read_line(&mut line)?; // the request line: any method, any path
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let client = headers.get("x-user").unwrap_or(&peer);
    let cost = headers.get("x-cost").map_or("1", String::as_str);
    let (status, headers, body) = rate_limited(limiter, client, cost, hello);
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        out += &format!("{name}: {value}\r\n");
    }
    out += "Content-Type: application/json\r\nConnection: close\r\n";
    out += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
    stream.write_all(out.as_bytes())
}

fn main() -> RedisResult<()> {
    let client = redis::Client::open(env_or("REDIS_URL", "redis://127.0.0.1:6379"))?;
    let mut con = client.get_connection()?;
    // COMMAND INFO replies [nil] for a command the server does not have.
    let info: Vec<Value> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("rl.tokenbucket")
        .query(&mut con)?;
    let module = matches!(info.first(), Some(Value::Array(_)));
    let script = Script::new(include_str!("../lua/token_bucket.lua"));
    if !module {
        script.prepare_invoke().load(&mut con)?;
    }
    let backend = if module { "module" } else { "lua" };

    let bucket @ [capacity, refill, period_ms] = [
        env_u64("RL_CAPACITY", 10),
        env_u64("RL_REFILL", 10),
        env_u64("RL_PERIOD_MS", 1000),
    ];
    // q: the bucket's capacity; w: seconds for an empty bucket to fill again.
    let mut policy = format!("\"default\";q={capacity}");
    if refill > 0 {
        let fill_ms = (capacity * period_ms).div_ceil(refill);
        policy += &format!(";w={}", ceil_s(fill_ms as i64));
    }
    let limiter = Arc::new(Limiter {
        con: Mutex::new((con, backend)),
        script,
        bucket,
        policy,
        client_clock: env_or("RL_CLIENT_CLOCK", "") == "1",
    });

    let listener = TcpListener::bind(("127.0.0.1", env_u64("PORT", 8080) as u16))?;
    println!(
        "listening on http://{} backend={backend}",
        listener.local_addr()?
    );
    for stream in listener.incoming().flatten() {
        let limiter = Arc::clone(&limiter);
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, &limiter) {
                eprintln!("request failed: {e}");
            }
        });
    }
    Ok(())
}
