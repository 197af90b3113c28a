//! Memory stays bounded under attack: idle limiters expire by themselves, a
//! log never outgrows its bound, and a full server refuses new limiters
//! instead of evicting state.

use std::time::{Duration, Instant};

use crate::common::{add_kept, command, dump, error, int, ints, query, Server};
use redis::Connection;

fn dbsize(con: &mut Connection) -> i64 {
    query(con, "DBSIZE")
}

#[test]
fn a_million_idle_limiters_expire_by_themselves() {
    let server = Server::start();
    let mut con = server.connect();
    let mut peak = 0;
    for chunk in 0..100 {
        let mut pipe = redis::pipe();
        for i in 0..10_000 {
            let n = chunk * 10_000 + i;
            let line = match n % 4 {
                0 => format!("RL.TOKENBUCKET b{n} 5 5 5000"),
                1 => format!("RL.SLIDELOG l{n} 5 5000"),
                2 => format!("RL.ACQUIRE s{n} 5 5000"),
                _ => format!("RL.RESERVE r{n} 5 5 5000 1 5000"),
            };
            pipe.add_command(command(line)).ignore();
        }
        pipe.query::<()>(&mut con).unwrap();
        peak = peak.max(dbsize(&mut con));
    }
    // Quotas that never refill live until deleted.
    for i in 0..100 {
        ints(&mut con, format!("RL.TOKENBUCKET quota{i} 5 0 1000"));
    }
    assert!(
        peak > 150_000,
        "hundreds of thousands of limiters lived at once: {peak}"
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while dbsize(&mut con) > 100 {
        assert!(Instant::now() < deadline, "{} keys left", dbsize(&mut con));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(dbsize(&mut con), 100, "only the quotas remain");
}

/// MEMORY USAGE of a key.
fn usage(con: &mut Connection, key: &str) -> i64 {
    query(con, format!("MEMORY USAGE {key} SAMPLES 0"))
}

#[test]
fn a_log_stays_within_its_bound() {
    let server = Server::start();
    let mut con = server.connect();
    // Worst case for the encoding: records far apart in time, huge costs.
    let mut pipe = redis::pipe();
    for i in 0..10_000i64 {
        let (window, at) = (i64::MAX / 2, i * 1_000_000_000);
        let cost = if i < 9_000 { 1 } else { 100 };
        let line = format!("RL.SLIDELOG sparse 1000000 {window} COST {cost} AT {at}");
        pipe.add_command(command(line)).ignore();
    }
    pipe.query::<()>(&mut con).unwrap();
    let bound = 80 * 10_000 + 1000;
    assert!(
        usage(&mut con, "sparse") <= bound,
        "{} > {bound}",
        usage(&mut con, "sparse")
    );
    // Steady traffic for a long time: the log is compacted, never grows.
    // Each round's last write leaves the log a TTL of about 1 s on the real
    // clock: kept, so that the key outlives the reads after it.
    let mut peak = 0;
    for round in 0..50i64 {
        let mut pipe = redis::pipe();
        for i in 0..2_000i64 {
            let at = 1_700_000_000_000 + round * 2000 + i;
            let call = command(format!("RL.SLIDELOG steady 1000 1000 AT {at}"));
            if i == 1_999 {
                add_kept(&mut pipe, call, &["steady"]);
            } else {
                pipe.add_command(call).ignore();
            }
        }
        pipe.query::<()>(&mut con).unwrap();
        peak = peak.max(usage(&mut con, "steady"));
    }
    assert!(
        peak <= 80 * 1000 + 1000,
        "steady log peaked at {peak} bytes"
    );
    let last = 1_700_000_000_000i64 + 49 * 2000 + 1999;
    let inspect: Vec<redis::Value> = query(&mut con, format!("RL.INSPECT steady AT {last}"));
    assert_eq!(
        inspect[7],
        redis::Value::Int(1000),
        "a full window: {inspect:?}"
    );
}

#[test]
fn a_full_server_refuses_new_limiters_but_lets_clients_give_back() {
    let server = Server::start();
    let mut con = server.connect();
    let reserved = ints(&mut con, "RL.RESERVE held 100 1 3600000 10 3600000");
    let lease = ints(&mut con, "RL.ACQUIRE slots 5 3600000");
    let used: i64 = {
        let info: String = query(&mut con, "INFO memory");
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    query::<()>(&mut con, "CONFIG SET maxmemory-policy noeviction");
    // Well below what the server holds, so that the limit stays exceeded
    // while client buffers come and go.
    query::<()>(&mut con, format!("CONFIG SET maxmemory {}", used / 2));
    let refused = error(&mut con, "RL.TOKENBUCKET new 5 1 3600000");
    assert!(refused.starts_with("OOM"), "{refused}");
    let before = dump(&mut con, b"held");
    for line in [
        "RL.SLIDELOG another 5 1000",
        "RL.RESERVE held 100 1 3600000 1 1000",
        "RL.ACQUIRE slots 5 1000",
        "RL.ALL 1 x SLIDELOG 5 1000",
    ] {
        assert!(error(&mut con, line).starts_with("OOM"), "{line}");
    }
    assert_eq!(
        dump(&mut con, b"held"),
        before,
        "nothing was evicted or changed"
    );
    // Giving back never grows memory, so it works on a full server.
    assert_eq!(
        ints(&mut con, format!("RL.CANCEL held {}", reserved[5]))[0],
        1
    );
    assert_eq!(int(&mut con, format!("RL.RELEASE slots {}", lease[5])), 1);
}
