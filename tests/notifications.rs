//! Keyspace notifications: every write sends an event in the module class
//! (`d`), named after the command; denied calls and peeks send none.

mod common;

use common::{ints, key_events, Server};

#[test]
fn writes_notify_and_denials_and_peeks_do_not() {
    let server = Server::start();
    let mut con = server.connect();
    let events = key_events(&server, "Ed", || {
        ints(&mut con, &["RL.TOKENBUCKET", "b", "1", "1", "60000"]);
        ints(&mut con, &["RL.TOKENBUCKET", "b", "1", "1", "60000"]); // denied
        ints(
            &mut con,
            &["RL.TOKENBUCKET", "b", "1", "1", "60000", "COST", "0"],
        ); // peek
        ints(&mut con, &["RL.SLIDELOG", "l", "5", "60000"]);
        redis::cmd("RL.ALL")
            .arg(2)
            .arg("x")
            .arg("y")
            .arg("SLIDELOG")
            .arg(5)
            .arg(1000)
            .arg("TOKENBUCKET")
            .arg(5)
            .arg(1)
            .arg(1000)
            .arg("COSTS")
            .arg(1)
            .arg(0)
            .query::<redis::Value>(&mut con)
            .unwrap();
        let reserved = ints(
            &mut con,
            &["RL.RESERVE", "r", "10", "1", "1000", "2", "60000"],
        );
        ints(&mut con, &["RL.SETTLE", "r", &reserved[5].to_string(), "1"]);
        ints(&mut con, &["RL.SETTLE", "r", &reserved[5].to_string(), "1"]); // already settled
    });
    assert_eq!(
        events,
        [
            "rl.tokenbucket b",
            "rl.slidelog l",
            "rl.all x",
            "rl.reserve r",
            "rl.settle r"
        ]
    );
}
