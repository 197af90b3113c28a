//! RL.REPLAY, the form writes travelled in to replicas and the AOF before
//! RL.CLOCK, still found in AOF files written then: it must compute exactly
//! what the original call with AT computes, and refuse anything else
//! clearly.

use crate::common::{call, dump, error, Rng, Server};
use redis::Value;

const T: i64 = 1_700_000_000_000;

/// The keys of a call (`numkeys` first for RL.ALL) and its other words.
fn split(words: &[String]) -> (Vec<String>, Vec<String>) {
    if words[0] == "RL.ALL" {
        let count: usize = words[1].parse().unwrap();
        let keys = words[2..2 + count].to_vec();
        let rest = [&words[..2], &words[2 + count..]].concat();
        (keys, rest)
    } else {
        (vec![words[1].clone()], [&words[..1], &words[2..]].concat())
    }
}

fn random_call(rng: &mut Rng, at: i64, prefix: &str, ids: &[i64]) -> String {
    let id = |rng: &mut Rng| ids.get(rng.range(0, 3) as usize).copied().unwrap_or(1);
    let [b, l, r, s] = ["b", "l", "r", "s"].map(|name| format!("{prefix}{name}"));
    let line = match rng.range(0, 8) {
        0 => format!("RL.TOKENBUCKET {b} 10 3 1000 COST {}", rng.range(0, 4)),
        1 => format!("RL.COST {b} 10 3 1000 {}", rng.range(0, 4)),
        2 => format!("RL.SLIDELOG {l} 7 2000 COST {}", rng.range(0, 3)),
        3 => format!("RL.ALL 2 {b} {l} TOKENBUCKET 10 3 1000 SLIDELOG 7 2000"),
        4 => format!("RL.RESERVE {r} 50 5 1000 {} 3000", rng.range(1, 9)),
        5 => format!("RL.SETTLE {r} {} {}", id(rng), rng.range(0, 9)),
        6 => format!("RL.ACQUIRE {s} 3 2000"),
        _ => format!("RL.RELEASE {s} {}", id(rng)),
    };
    format!("{line} AT {at}")
}

#[test]
fn replaying_a_call_computes_what_the_call_computes() {
    let server = Server::start();
    let mut con = server.connect();
    let mut rng = Rng::new(7);
    let mut ids: Vec<i64> = Vec::new();
    let mut at = T;
    for _ in 0..1500 {
        at += rng.range(0, 300);
        let direct = random_call(&mut rng, at, "direct:", &ids);
        let replayed_words: Vec<String> = direct
            .replace("direct:", "replayed:")
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let (keys, rest) = split(&replayed_words);
        let direct_reply = call(&mut con, &direct);
        // RL.REPLAY key [key ...] "command and its other words", one argument.
        let replay = [&["RL.REPLAY".to_owned()][..], &keys, &[rest.join(" ")]].concat();
        let replay_reply = call(&mut con, &replay);
        match (&direct_reply, &replay_reply) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{direct}"),
            (Err(a), Err(b)) => assert_eq!(a.detail(), b.detail(), "{direct}"),
            _ => panic!("{direct}: {direct_reply:?} vs {replay_reply:?}"),
        }
        if let Ok(Value::Array(items)) = &direct_reply {
            if let Some(Value::Int(id)) = items.get(5) {
                if *id > 0 {
                    ids.insert(0, *id);
                    ids.truncate(3);
                }
            }
        }
    }
    for name in ["b", "l", "r", "s"] {
        let direct = dump(&mut con, format!("direct:{name}").as_bytes());
        assert!(direct.is_some(), "{name} was never written");
        assert_eq!(
            direct,
            dump(&mut con, format!("replayed:{name}").as_bytes()),
            "{name}"
        );
    }
}

#[test]
fn replay_refuses_what_it_cannot_replay_and_writes_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    for (words, wanted) in [
        (
            &["RL.REPLAY", "k", "RL.INSPECT"][..],
            "cannot replay 'RL.INSPECT'",
        ),
        (&["RL.REPLAY", "k", "GET"], "cannot replay 'GET'"),
        (&["RL.REPLAY", "k", ""], "cannot replay ''"),
        (
            &["RL.REPLAY", "a", "RL.TOKENBUCKET 10 1 1000"],
            "needs the time pinned",
        ),
        (
            &["RL.REPLAY", "a", "RL.TOKENBUCKET 10 1 1000 COST 1"],
            "needs the time pinned",
        ),
        (
            &["RL.REPLAY", "a", "b", "RL.TOKENBUCKET 1 1 1 AT 5"],
            "takes one key",
        ),
        (
            &[
                "RL.REPLAY",
                "a",
                "RL.ALL 2 TOKENBUCKET 1 1 1 TOKENBUCKET 1 1 1 AT 5",
            ],
            "different number of keys",
        ),
        (
            &["RL.REPLAY", "a", "RL.TOKENBUCKET 0 1 1 AT 5"],
            "capacity must be an integer",
        ),
        (
            &["RL.REPLAY", "a", "RL.TOKENBUCKET 1 1  1 AT 5"],
            "refill_period_ms must be",
        ),
    ] {
        let message = error(&mut con, words);
        assert!(message.contains(wanted), "{words:?}: {message}");
    }
    assert!(error(&mut con, "RL.REPLAY a").contains("wrong number of arguments"));
    assert_eq!(call(&mut con, "DBSIZE").unwrap(), Value::Int(0));
}

#[test]
fn replay_declares_its_keys() {
    let server = Server::start();
    let mut con = server.connect();
    let keys = call(
        &mut con,
        [
            "COMMAND",
            "GETKEYS",
            "RL.REPLAY",
            "a",
            "b",
            "RL.ALL 2 TOKENBUCKET 1 1 1 SLIDELOG 1 1 AT 5",
        ],
    )
    .unwrap();
    assert_eq!(
        keys,
        Value::Array(vec![
            Value::BulkString(b"a".to_vec()),
            Value::BulkString(b"b".to_vec())
        ])
    );
}
