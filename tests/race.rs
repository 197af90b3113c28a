//! The seed's race: many concurrent connections on one key admit exactly the
//! limit, because each command's read-decide-write is atomic.

mod common;

use common::Server;

const CONNECTIONS: usize = 40;
/// 1,000 calls in all: more than any limit below.
const CALLS_PER_CONNECTION: usize = 25;

/// Runs `command` (a full word list) from every connection at once and
/// returns how many calls were allowed.
async fn admitted(server: &Server, command: Vec<String>) -> i64 {
    let client = server.client();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let client = client.clone();
        let command = command.clone();
        tasks.push(tokio::spawn(async move {
            // One connection per task, so the calls really interleave.
            let mut con = client
                .get_multiplexed_async_connection()
                .await
                .expect("connect");
            let mut allowed = 0;
            for _ in 0..CALLS_PER_CONNECTION {
                let mut cmd = redis::cmd(&command[0]);
                for word in &command[1..] {
                    cmd.arg(word);
                }
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

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|w| w.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_admit_exactly_the_limit() {
    let server = Server::start();
    // Long periods and windows: the real clock cannot refill during the test.
    let cases = [
        (
            words(&["RL.TOKENBUCKET", "bucket", "100", "1", "3600000"]),
            100,
        ),
        (
            words(&[
                "RL.TOKENBUCKET",
                "weighted",
                "100",
                "1",
                "3600000",
                "COST",
                "3",
            ]),
            33,
        ),
        (
            words(&["RL.COST", "costly", "500", "1", "3600000", "7"]),
            71,
        ),
        (words(&["RL.SLIDELOG", "log", "100", "3600000"]), 100),
        (
            words(&["RL.SLIDELOG", "weighted-log", "100", "3600000", "COST", "3"]),
            33,
        ),
    ];
    for (command, expected) in cases {
        assert_eq!(
            admitted(&server, command.clone()).await,
            expected,
            "{command:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_all_calls_are_all_or_nothing() {
    let server = Server::start();
    // The log admits 50, the bucket would admit 100: every admitted call must
    // have charged both, and no denied call either.
    let command = words(&[
        "RL.ALL",
        "2",
        "{u}:bucket",
        "{u}:log",
        "TOKENBUCKET",
        "100",
        "0",
        "1000",
        "SLIDELOG",
        "50",
        "3600000",
    ]);
    assert_eq!(admitted(&server, command).await, 50);
    let mut con = server.connect();
    let peek: Vec<i64> = redis::cmd("RL.TOKENBUCKET")
        .arg("{u}:bucket")
        .arg(100)
        .arg(0)
        .arg(1000)
        .arg("COST")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert_eq!(
        peek[2], 50,
        "the bucket was charged exactly for the admitted calls"
    );
}
