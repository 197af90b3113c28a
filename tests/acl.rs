//! ACL: key patterns bind every RL.* command like any other command, and
//! read-only users cannot write. Categories depend on the server: Redis 7.0
//! puts module commands in no category but @all; Redis 7.2+ and Valkey put
//! them in @read or @write and, where modules may add one, @ratelimit.

mod common;

use common::{error, login, Server};

/// Every RL.* command that writes, each on its own key under `prefix`.
fn writers(prefix: &str) -> Vec<Vec<String>> {
    let commands: Vec<&[&str]> = vec![
        &["RL.TOKENBUCKET", "KEY", "5", "1", "1000"],
        &["RL.COST", "KEY", "5", "1", "1000", "1"],
        &["RL.SLIDELOG", "KEY", "5", "1000"],
        &["RL.ALL", "1", "KEY", "SLIDELOG", "5", "1000"],
        &["RL.RESERVE", "KEY", "5", "1", "1000", "1", "1000"],
        &["RL.SETTLE", "KEY", "1", "1"],
        &["RL.CANCEL", "KEY", "1"],
        &["RL.ACQUIRE", "KEY", "5", "1000"],
        &["RL.RELEASE", "KEY", "1"],
        &["RL.EXTEND", "KEY", "1", "1000"],
    ];
    commands
        .iter()
        .enumerate()
        .map(|(i, words)| {
            words
                .iter()
                .map(|w| w.replace("KEY", &format!("{prefix}{i}")))
                .collect()
        })
        .collect()
}

fn refs(words: &[String]) -> Vec<&str> {
    words.iter().map(String::as_str).collect()
}

#[test]
fn key_patterns_bind_every_command() {
    let server = Server::start();
    let mut admin = server.connect();
    let mut tenant = login(&server, &mut admin, "tenant", &["~tenantA:*", "+@all"]);
    for words in writers("tenantB:k") {
        let denied = error(&mut tenant, &refs(&words));
        assert!(denied.starts_with("NOPERM"), "{words:?}: {denied}");
    }
    assert!(error(&mut tenant, &["RL.INSPECT", "tenantB:k"]).starts_with("NOPERM"));
    let created: i64 = redis::cmd("DBSIZE").query(&mut admin).unwrap();
    assert_eq!(created, 0, "nothing was created");
    for words in writers("tenantA:k").into_iter().take(1) {
        let reply: redis::Value = redis::cmd(&words[0])
            .arg(&words[1..])
            .query(&mut tenant)
            .unwrap();
        assert!(matches!(reply, redis::Value::Array(_)));
    }
}

#[test]
fn read_only_users_cannot_write() {
    let server = Server::start();
    let mut admin = server.connect();
    let categories: Vec<String> = redis::cmd("ACL")
        .arg("CAT")
        .arg("read")
        .query(&mut admin)
        .unwrap();
    let has_categories = categories
        .iter()
        .any(|c| c.eq_ignore_ascii_case("rl.inspect"));
    let mut reader = login(&server, &mut admin, "reader", &["~*", "+@read"]);
    for words in writers("k") {
        let denied = error(&mut reader, &refs(&words));
        assert!(denied.starts_with("NOPERM"), "{words:?}: {denied}");
    }
    let inspect: redis::RedisResult<redis::Value> =
        redis::cmd("RL.INSPECT").arg("k").query(&mut reader);
    // Redis 7.2+ and Valkey place RL.INSPECT in @read; 7.0 cannot.
    assert_eq!(inspect.is_ok(), has_categories, "{inspect:?}");
    let with_module_category: Vec<String> = redis::cmd("ACL").arg("CAT").query(&mut admin).unwrap();
    if with_module_category.iter().any(|c| c == "ratelimit") {
        let mut limiter = login(&server, &mut admin, "limiter", &["~*", "+@ratelimit"]);
        for words in writers("k") {
            let reply: redis::RedisResult<redis::Value> =
                redis::cmd(&words[0]).arg(&words[1..]).query(&mut limiter);
            assert!(reply.is_ok(), "{words:?}: {reply:?}");
        }
        assert!(error(&mut limiter, &["GET", "k"]).starts_with("NOPERM"));
    }
}
