//! Keyspace notifications: every write sends an event in the module class
//! (`d`), named after the command; denied calls and peeks send none.

use crate::common::{call, ints, key_events, Server};

#[test]
fn writes_notify_and_denials_and_peeks_do_not() {
    let server = Server::start();
    let mut con = server.connect();
    let events = key_events(&server, "Ed", || {
        ints(&mut con, "RL.TOKENBUCKET b 1 1 60000");
        ints(&mut con, "RL.TOKENBUCKET b 1 1 60000"); // denied
        ints(&mut con, "RL.TOKENBUCKET b 1 1 60000 COST 0"); // peek
        ints(&mut con, "RL.SLIDELOG l 5 60000");
        ints(&mut con, "RL.QUOTA q 1 day");
        ints(&mut con, "RL.QUOTA q 1 day"); // denied
        call(
            &mut con,
            "RL.ALL 2 x y SLIDELOG 5 1000 TOKENBUCKET 5 1 1000 COSTS 1 0",
        )
        .unwrap();
        let reserved = ints(&mut con, "RL.RESERVE r 10 1 1000 2 60000");
        let settle = format!("RL.SETTLE r {} 1", reserved[5]);
        ints(&mut con, &settle);
        ints(&mut con, &settle); // already settled
    });
    assert_eq!(
        events,
        [
            "rl.tokenbucket b",
            "rl.slidelog l",
            "rl.quota q",
            "rl.all x",
            "rl.reserve r",
            "rl.settle r"
        ]
    );
}
