//! RL.REPLAY, the form writes travelled in to replicas and the AOF before
//! RL.CLOCK, still found in AOF files written then: it must compute exactly
//! what the original call with AT computes, and refuse anything else
//! clearly.

mod common;

use common::{call, dump, error, Rng, Server};
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

fn random_call(rng: &mut Rng, at: i64, prefix: &str, ids: &[i64]) -> Vec<String> {
    let key = |name: &str| format!("{prefix}{name}");
    let mut words: Vec<String> = match rng.range(0, 8) {
        0 => vec![
            "RL.TOKENBUCKET".into(),
            key("b"),
            "10".into(),
            "3".into(),
            "1000".into(),
            "COST".into(),
            rng.range(0, 4).to_string(),
        ],
        1 => vec![
            "RL.COST".into(),
            key("b"),
            "10".into(),
            "3".into(),
            "1000".into(),
            rng.range(0, 4).to_string(),
        ],
        2 => vec![
            "RL.SLIDELOG".into(),
            key("l"),
            "7".into(),
            "2000".into(),
            "COST".into(),
            rng.range(0, 3).to_string(),
        ],
        3 => vec![
            "RL.ALL".into(),
            "2".into(),
            key("b"),
            key("l"),
            "TOKENBUCKET".into(),
            "10".into(),
            "3".into(),
            "1000".into(),
            "SLIDELOG".into(),
            "7".into(),
            "2000".into(),
        ],
        4 => vec![
            "RL.RESERVE".into(),
            key("r"),
            "50".into(),
            "5".into(),
            "1000".into(),
            rng.range(1, 9).to_string(),
            "3000".into(),
        ],
        5 => vec![
            "RL.SETTLE".into(),
            key("r"),
            ids.get(rng.range(0, 3) as usize)
                .copied()
                .unwrap_or(1)
                .to_string(),
            rng.range(0, 9).to_string(),
        ],
        6 => vec!["RL.ACQUIRE".into(), key("s"), "3".into(), "2000".into()],
        _ => vec![
            "RL.RELEASE".into(),
            key("s"),
            ids.get(rng.range(0, 3) as usize)
                .copied()
                .unwrap_or(1)
                .to_string(),
        ],
    };
    words.extend(["AT".to_owned(), at.to_string()]);
    words
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
            .iter()
            .map(|w| w.replacen("direct:", "replayed:", 1))
            .collect();
        let (keys, rest) = split(&replayed_words);
        let words: Vec<&str> = direct.iter().map(String::as_str).collect();
        let direct_reply = call(&mut con, &words);
        let mut replay = redis::cmd("RL.REPLAY");
        replay.arg(&keys).arg(rest.join(" "));
        let replay_reply: redis::RedisResult<Value> = replay.query(&mut con);
        match (&direct_reply, &replay_reply) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{words:?}"),
            (Err(a), Err(b)) => assert_eq!(a.detail(), b.detail(), "{words:?}"),
            _ => panic!("{words:?}: {direct_reply:?} vs {replay_reply:?}"),
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
    assert!(error(&mut con, &["RL.REPLAY", "a"]).contains("wrong number of arguments"));
    assert_eq!(call(&mut con, &["DBSIZE"]).unwrap(), Value::Int(0));
}

#[test]
fn replay_declares_its_keys() {
    let server = Server::start();
    let mut con = server.connect();
    let keys = call(
        &mut con,
        &[
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
