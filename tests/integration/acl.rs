//! ACL: key patterns bind every RL.* command like any other command, and
//! read-only users cannot write. Categories depend on the server: Redis 7.0
//! puts module commands in no category but @all; Redis 7.2+ and Valkey put
//! them in @read or @write and, where modules may add one, @ratelimit.

use crate::common::{call, error, int, login, query, Server};

/// Every RL.* command that writes, each on its own key under `prefix`.
fn writers(prefix: &str) -> Vec<String> {
    [
        "RL.TOKENBUCKET KEY 5 1 1000",
        "RL.COST KEY 5 1 1000 1",
        "RL.SLIDELOG KEY 5 1000",
        "RL.WINDOW KEY 5 1000",
        "RL.QUOTA KEY 5 day TZ Europe/Berlin",
        "RL.ALL 1 KEY SLIDELOG 5 1000",
        "RL.RESERVE KEY 5 1 1000 1 1000",
        "RL.SETTLE KEY 1 1",
        "RL.CANCEL KEY 1",
        "RL.ACQUIRE KEY 5 1000",
        "RL.RELEASE KEY 1",
        "RL.EXTEND KEY 1 1000",
    ]
    .iter()
    .enumerate()
    .map(|(i, line)| line.replace("KEY", &format!("{prefix}{i}")))
    .collect()
}

#[test]
fn key_patterns_bind_every_command() {
    let server = Server::start();
    let mut admin = server.connect();
    let mut tenant = login(&server, &mut admin, "tenant", &["~tenantA:*", "+@all"]);
    for line in writers("tenantB:k") {
        let denied = error(&mut tenant, &line);
        assert!(denied.starts_with("NOPERM"), "{line}: {denied}");
    }
    assert!(error(&mut tenant, "RL.INSPECT tenantB:k").starts_with("NOPERM"));
    assert_eq!(int(&mut admin, "DBSIZE"), 0, "nothing was created");
    for line in writers("tenantA:k").into_iter().take(1) {
        let reply: redis::Value = query(&mut tenant, &line);
        assert!(matches!(reply, redis::Value::Array(_)));
    }
}

#[test]
fn read_only_users_cannot_write() {
    let server = Server::start();
    let mut admin = server.connect();
    let categories: Vec<String> = query(&mut admin, "ACL CAT read");
    let has_categories = categories
        .iter()
        .any(|c| c.eq_ignore_ascii_case("rl.inspect"));
    let mut reader = login(&server, &mut admin, "reader", &["~*", "+@read"]);
    for line in writers("k") {
        let denied = error(&mut reader, &line);
        assert!(denied.starts_with("NOPERM"), "{line}: {denied}");
    }
    let inspect = call(&mut reader, "RL.INSPECT k");
    // Redis 7.2+ and Valkey place RL.INSPECT in @read; 7.0 cannot.
    assert_eq!(inspect.is_ok(), has_categories, "{inspect:?}");
    let with_module_category: Vec<String> = query(&mut admin, "ACL CAT");
    if with_module_category.iter().any(|c| c == "ratelimit") {
        let mut limiter = login(&server, &mut admin, "limiter", &["~*", "+@ratelimit"]);
        for line in writers("k") {
            let reply = call(&mut limiter, &line);
            assert!(reply.is_ok(), "{line}: {reply:?}");
        }
        assert!(error(&mut limiter, "GET k").starts_with("NOPERM"));
    }
}
