//! Hostile input: tens of thousands of random calls of every command
//! with malformed numbers, unknown options, extreme values and keys of every
//! other type. Every call is answered, the server stays up, and a limiter the
//! barrage does not name is unchanged.

use crate::common::{command, dump, info_field, query, Rng, Server};
use redis::Value;

const COMMANDS: [(&str, usize); 15] = [
    ("RL.TOKENBUCKET", 4),
    ("RL.COST", 5),
    ("RL.SLIDELOG", 3),
    ("RL.ALL", 6),
    ("RL.INSPECT", 1),
    ("RL.RESERVE", 6),
    ("RL.SETTLE", 3),
    ("RL.CANCEL", 2),
    ("RL.ACQUIRE", 3),
    ("RL.RELEASE", 2),
    ("RL.EXTEND", 3),
    ("RL.RESTORESTATE", 3),
    ("RL.REPLAY", 2),
    ("CL.THROTTLE", 4),
    ("RL.CLOCK", 1),
];

/// A random argument: mostly hostile numbers, sometimes words.
fn word(rng: &mut Rng) -> Vec<u8> {
    let pick: &[&[u8]] = &[
        b"0",
        b"1",
        b"-1",
        b"2",
        b"7",
        b"1000",
        b"60000",
        b"9223372036854775807",
        b"-9223372036854775808",
        b"9223372036854775808",
        b"18446744073709551616",
        b"99999999999999999999999",
        b"1.5",
        b"1e3",
        b"+1",
        b"01",
        b" 1",
        b"1 ",
        b"",
        b"\x00",
        b"1\x00",
        b"\xff\xfe",
        b"0x10",
        b"NaN",
        b"inf",
        b"-0",
        b"COST",
        b"COSTS",
        b"AT",
        b"cost",
        b"at",
        b"LIMIT",
        b"TOKENBUCKET",
        b"SLIDELOG",
        b"RESERVE",
        b"ACQUIRE",
        b"tokenbucket",
        b"slidelog",
        b"leases",
        b"9007199254740991",
        b"9007199254740992",
        b"1000000",
        b"100001",
        b"RL.TOKENBUCKET 1 1 1",
        b"RL.TOKENBUCKET 9223372036854775807 1 1 COST 9223372036854775807 AT 9223372036854775807",
        b"RL.ALL 1 SLIDELOG 1 1 AT 0",
        b"RL.ALL 2 TOKENBUCKET 1 1 1 SLIDELOG 1 1",
        b"RL.SETTLE 1 1 AT -1",
        b"RL.REPLAY RL.COST 1 1 1 1",
        b"rl.cost 1  1 1 1",
    ];
    match rng.range(0, 9) {
        0 => (0..rng.range(0, 12)).map(|_| rng.next() as u8).collect(),
        1 => rng.range(-5, 100_000).to_string().into_bytes(),
        _ => pick[rng.range(0, pick.len() as i64 - 1) as usize].to_vec(),
    }
}

/// A key: one of a few limiters, keys of other types, or a binary name.
fn key(rng: &mut Rng) -> Vec<u8> {
    let keys: &[&[u8]] = &[
        b"bucket",
        b"log",
        b"leases",
        b"string",
        b"list",
        b"hash",
        b"set",
        b"zset",
        b"stream",
        b"missing",
        b"\xff\x00binary",
    ];
    keys[rng.range(0, keys.len() as i64 - 1) as usize].to_vec()
}

#[test]
fn every_hostile_call_is_answered_and_the_server_survives() {
    let server = Server::start();
    let mut con = server.connect();
    // Keys of every type, and a limiter of each kind that the barrage never names.
    let mut setup = redis::pipe();
    for line in [
        "SET string v",
        "RPUSH list a",
        "HSET hash level 1",
        "SADD set a",
        "ZADD zset 1 a",
        "XADD stream * f v",
        "RL.TOKENBUCKET bucket 100 1 1000",
        "RL.SLIDELOG log 100 60000",
        "RL.ACQUIRE leases 100 60000",
        "RL.TOKENBUCKET untouched:bucket 10 1 3600000 COST 3",
        "RL.SLIDELOG untouched:log 10 3600000 COST 3",
        "RL.RESERVE untouched:reserved 10 1 3600000 3 3600000",
        "RL.ACQUIRE untouched:leases 10 3600000",
    ] {
        setup.add_command(command(line)).ignore();
    }
    setup.query::<()>(&mut con).unwrap();
    let untouched = [
        "untouched:bucket",
        "untouched:log",
        "untouched:reserved",
        "untouched:leases",
        "string",
        "list",
    ];
    let before: Vec<_> = untouched
        .iter()
        .map(|k| dump(&mut con, k.as_bytes()))
        .collect();

    let mut rng = Rng::new(0xbad);
    let mut answered = 0;
    let mut errors = 0;
    for _ in 0..40 {
        let mut pipe = redis::pipe();
        for _ in 0..1000 {
            let (name, usual) = COMMANDS[rng.range(0, COMMANDS.len() as i64 - 1) as usize];
            let cmd = pipe.cmd(name);
            let count = (usual as i64 + rng.range(-2, 3)).max(0);
            for position in 0..count {
                if position == 0 && name != "RL.ALL" || name == "RL.ALL" && position == 1 {
                    cmd.arg(key(&mut rng));
                } else {
                    cmd.arg(word(&mut rng));
                }
            }
        }
        // Sent raw, so that errors come back as values, one per call.
        let replies: Vec<Value> = redis::ConnectionLike::req_packed_commands(
            &mut con,
            &pipe.get_packed_pipeline(),
            0,
            1000,
        )
        .expect("every call is answered");
        answered += replies.len();
        for reply in &replies {
            if let Value::ServerError(error) = reply {
                errors += 1;
                let text = format!("{error:?}");
                assert!(
                    !text.contains("internal error"),
                    "a panic was caught: {text}"
                );
            }
        }
    }
    assert_eq!(answered, 40_000);
    assert!(errors > 10_000 && errors < answered, "{errors} errors");
    let pong: String = query(&mut con, "PING");
    assert_eq!(pong, "PONG");
    // Every error was a considered answer, not a caught panic.
    assert_eq!(info_field(&mut con, "rl", "rl_panics"), "0");
    let after: Vec<_> = untouched
        .iter()
        .map(|k| dump(&mut con, k.as_bytes()))
        .collect();
    assert_eq!(before, after);
}
