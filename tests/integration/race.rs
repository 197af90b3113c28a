//! The seed's race: many concurrent connections on one key admit exactly the
//! limit, because each command's read-decide-write is atomic.

use crate::common::{command, ints, Server};

const CONNECTIONS: usize = 40;
/// 1,000 calls in all: more than any limit below.
const CALLS_PER_CONNECTION: usize = 25;

/// Runs the command `line` from every connection at once and returns how
/// many calls were allowed.
async fn admitted(server: &Server, line: &str) -> i64 {
    let client = server.client();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let client = client.clone();
        let cmd = command(line);
        tasks.push(tokio::spawn(async move {
            // One connection per task, so the calls really interleave.
            let mut con = client
                .get_multiplexed_async_connection()
                .await
                .expect("connect");
            let mut allowed = 0;
            for _ in 0..CALLS_PER_CONNECTION {
                // Every RL.* limiter reply starts with `allowed`.
                let reply: Vec<redis::Value> = cmd.query_async(&mut con).await.expect("call");
                allowed += redis::from_redis_value::<i64>(&reply[0]).expect("allowed");
            }
            allowed
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("task");
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_admit_exactly_the_limit() {
    let server = Server::start();
    // Long periods and windows: the real clock cannot refill during the test.
    let cases = [
        ("RL.TOKENBUCKET bucket 100 1 3600000", 100),
        ("RL.TOKENBUCKET weighted 100 1 3600000 COST 3", 33),
        ("RL.COST costly 500 1 3600000 7", 71),
        ("RL.SLIDELOG log 100 3600000", 100),
        ("RL.SLIDELOG weighted-log 100 3600000 COST 3", 33),
    ];
    for (line, expected) in cases {
        assert_eq!(admitted(&server, line).await, expected, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_all_calls_are_all_or_nothing() {
    let server = Server::start();
    // The log admits 50, the bucket would admit 100: every admitted call must
    // have charged both, and no denied call either.
    let line = "RL.ALL 2 {u}:bucket {u}:log TOKENBUCKET 100 0 1000 SLIDELOG 50 3600000";
    assert_eq!(admitted(&server, line).await, 50);
    let mut con = server.connect();
    let peek = ints(&mut con, "RL.TOKENBUCKET {u}:bucket 100 0 1000 COST 0");
    assert_eq!(
        peek[2], 50,
        "the bucket was charged exactly for the admitted calls"
    );
}
