//! Reservations (RL.RESERVE, RL.SETTLE, RL.CANCEL) and concurrency leases
//! (RL.ACQUIRE, RL.RELEASE, RL.EXTEND) on a live server.

use std::time::Duration;

use crate::common::{command, dump, error, int, ints, kept, query, Server};
use redis::Value;

const T: i64 = 1_700_000_000_000;

#[test]
fn reservation_contract_example() {
    let server = Server::start();
    let mut con = server.connect();
    let first = ints(
        &mut con,
        format!("RL.RESERVE k 1000 100 1000 600 30000 AT {T}"),
    );
    assert_eq!(&first[..5], &[1, 1000, 400, 0, 6000]);
    let id1 = first[5];
    // Kept: with the reservation closed, the key's TTL on the real clock is
    // 2.5 s, which must not run out before the calls below read it.
    let settled = kept(&mut con, format!("RL.SETTLE k {id1} 250 AT {T}"), &["k"]);
    assert_eq!(
        redis::from_redis_value::<Vec<i64>>(&settled).unwrap(),
        [1, 1000, 750, 0, 2500]
    );
    assert_eq!(
        ints(&mut con, format!("RL.SETTLE k {id1} 250 AT {T}")),
        [0, 1000, 750, 0, 2500]
    );
    let second = ints(
        &mut con,
        format!("RL.RESERVE k 1000 100 1000 700 30000 AT {T}"),
    );
    assert!(second[5] > first[5]);
    let id2 = second[5];
    assert_eq!(
        ints(&mut con, format!("RL.SETTLE k {id2} 800 AT {T}")),
        [1, 1000, 0, 510, 10500]
    );
    // In debt: every call is denied, a peek included, until the debt is repaid.
    assert_eq!(
        ints(&mut con, format!("RL.COST k 1000 100 1000 1 AT {T}")),
        [0, 1000, 0, 510, 10500]
    );
    assert_eq!(
        ints(
            &mut con,
            format!("RL.TOKENBUCKET k 1000 100 1000 COST 0 AT {T}")
        )[..4],
        [0, 1000, 0, 500]
    );
    let inspected: Vec<Value> = query(&mut con, format!("RL.INSPECT k AT {T}"));
    assert_eq!(inspected[9], Value::Int(-50), "tokens below zero");
    assert_eq!(
        ints(
            &mut con,
            format!("RL.COST k 1000 100 1000 1 AT {}", T + 509)
        )[0],
        0
    );
    assert_eq!(
        ints(
            &mut con,
            format!("RL.COST k 1000 100 1000 1 AT {}", T + 510)
        )[0],
        1
    );
}

#[test]
fn settling_is_idempotent_and_ended_reservations_keep_their_estimate() {
    let server = Server::start();
    let mut con = server.connect();
    let id = ints(&mut con, format!("RL.RESERVE k 100 1 1000 30 1000 AT {T}"))[5];
    // Open before T + 1000, closed from then: nothing is refunded.
    let before = dump(&mut con, b"k");
    assert_eq!(
        ints(&mut con, format!("RL.CANCEL k {id} AT {}", T + 1000)),
        [0, 100, 71, 0, 29000]
    );
    assert_eq!(dump(&mut con, b"k"), before);
    assert_eq!(ints(&mut con, format!("RL.SETTLE k 12345 0 AT {T}"))[0], 0);
    assert_eq!(
        ints(&mut con, format!("RL.SETTLE missing {id} 0")),
        [0, 0, 0, 0, 0]
    );
    // A cancel within the lease refunds the whole estimate (capped at capacity).
    let id = ints(&mut con, format!("RL.RESERVE j 100 1 1000 30 1000 AT {T}"))[5];
    assert_eq!(
        ints(&mut con, format!("RL.CANCEL j {id} AT {}", T + 999)),
        [1, 100, 100, 0, 0]
    );
    assert_eq!(
        ints(&mut con, format!("RL.CANCEL j {id} AT {}", T + 999))[0],
        0
    );
}

#[test]
fn reservation_errors_name_their_argument() {
    let server = Server::start();
    let mut con = server.connect();
    let max = i64::MAX;
    assert_eq!(
        error(&mut con, "RL.RESERVE k 10 1 1000 0 1000"),
        format!("ERR estimate must be an integer from 1 to {max}")
    );
    assert_eq!(
        error(&mut con, "RL.RESERVE k 10 1 1000 1 0"),
        format!("ERR lease_ms must be an integer from 1 to {max}")
    );
    // Arguments are checked in order: the estimate before the lease.
    assert_eq!(
        error(&mut con, "RL.RESERVE k 10 1 1000 0 0"),
        format!("ERR estimate must be an integer from 1 to {max}")
    );
    for bad in ["0", "-1", "1.5", "x", "9007199254740992"] {
        assert_eq!(
            error(&mut con, format!("RL.SETTLE k {bad} 1")),
            "ERR reservation_id must be an integer from 1 to 9007199254740991"
        );
    }
    assert_eq!(
        error(&mut con, "RL.SETTLE k 1 -1"),
        format!("ERR actual_cost must be an integer from 0 to {max}")
    );
    assert_eq!(
        error(&mut con, "RL.RELEASE k 0"),
        "ERR lease_id must be an integer from 1 to 9007199254740991"
    );
    assert_eq!(
        error(&mut con, "RL.ACQUIRE k 0 1000"),
        "ERR limit must be an integer from 1 to 100000"
    );
    assert_eq!(
        error(&mut con, "RL.EXTEND k 1 0"),
        format!("ERR lease_ms must be an integer from 1 to {max}")
    );
    let exists: i64 = query(&mut con, "EXISTS k");
    assert_eq!(exists, 0);
}

#[test]
fn reservation_and_lease_keys_refuse_other_types() {
    let server = Server::start();
    let mut con = server.connect();
    // An hour's TTL: the keys outlive every call below.
    ints(&mut con, "RL.SLIDELOG log 5 3600000");
    ints(&mut con, "RL.ACQUIRE leases 5 3600000");
    ints(&mut con, "RL.TOKENBUCKET bucket 5 1 3600000");
    query::<()>(&mut con, "SET string v");
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    for key in ["log", "leases", "string"] {
        assert_eq!(
            error(&mut con, format!("RL.RESERVE {key} 10 1 1000 1 1000")),
            wrongtype
        );
        assert_eq!(error(&mut con, format!("RL.SETTLE {key} 1 1")), wrongtype);
        assert_eq!(error(&mut con, format!("RL.CANCEL {key} 1")), wrongtype);
    }
    for key in ["log", "bucket", "string"] {
        assert_eq!(
            error(&mut con, format!("RL.ACQUIRE {key} 10 1000")),
            wrongtype
        );
        assert_eq!(error(&mut con, format!("RL.RELEASE {key} 1")), wrongtype);
        assert_eq!(
            error(&mut con, format!("RL.EXTEND {key} 1 1000")),
            wrongtype
        );
    }
    assert_eq!(error(&mut con, "RL.TOKENBUCKET leases 5 1 1000"), wrongtype);
    let kind: String = query(&mut con, "TYPE leases");
    assert_eq!(kind, "rl-leases");
}

#[test]
fn settle_and_extend_lengthen_the_ttl_and_never_shorten_it() {
    let server = Server::start();
    let mut con = server.connect();
    let pttl = |con: &mut redis::Connection, key: &str| int(con, format!("PTTL {key}"));
    // Server clock. Capacity 1000, one token a second: taking 10 makes the
    // bucket whole again in 10 s. The reservation stays open 9 s (less than
    // that, so that the bucket alone sets the TTL), time enough to settle it.
    let reserved = ints(&mut con, "RL.RESERVE r 1000 1 1000 10 9000");
    assert!(pttl(&mut con, "r") <= 10_000);
    // Settled at 100, the bucket needs 100 s: the TTL grows to match.
    let settled = ints(&mut con, format!("RL.SETTLE r {} 100", reserved[5]));
    assert_eq!(settled[0], 1);
    let ttl = pttl(&mut con, "r");
    assert!((90_000..=100_000).contains(&ttl), "settle lengthens: {ttl}");

    // A lease of 10 s, time enough to extend it.
    let lease = ints(&mut con, "RL.ACQUIRE l 5 10000");
    assert!(pttl(&mut con, "l") <= 10_000);
    let id = lease[5];
    assert_eq!(int(&mut con, format!("RL.EXTEND l {id} 60000")), 1);
    let ttl = pttl(&mut con, "l");
    assert!((50_000..=60_000).contains(&ttl), "extend lengthens: {ttl}");
    int(&mut con, "PEXPIRE l 500000");
    assert_eq!(int(&mut con, format!("RL.EXTEND l {id} 1000")), 1);
    let ttl = pttl(&mut con, "l");
    assert!(ttl > 400_000, "extend never shortens: {ttl}");
}

#[test]
fn ids_are_not_reused_after_the_key_expired() {
    let server = Server::start();
    let mut con = server.connect();
    // Server clock, short leases: the keys really expire.
    let first = ints(&mut con, "RL.RESERVE r 10 10 10 1 30");
    let lease = ints(&mut con, "RL.ACQUIRE l 1 30");
    let ttl: i64 = query(&mut con, "PTTL r");
    // -2: a slow machine let the key expire already.
    assert!(
        ttl == -2 || (1..=30).contains(&ttl),
        "the bucket lives as long as its reservation: {ttl}"
    );
    std::thread::sleep(Duration::from_millis(80));
    let exists: i64 = query(&mut con, "EXISTS r l");
    assert_eq!(exists, 0, "both keys expired");
    let second = ints(&mut con, "RL.RESERVE r 10 10 10 1 30");
    let lease2 = ints(&mut con, "RL.ACQUIRE l 1 30");
    assert!(second[5] > first[5], "{second:?} after {first:?}");
    assert!(lease2[5] > lease[5]);
    // An old holder's late settle or release does not hit the new one.
    assert_eq!(ints(&mut con, format!("RL.SETTLE r {} 0", first[5]))[0], 0);
    assert_eq!(int(&mut con, format!("RL.RELEASE l {}", lease[5])), 0);
}

#[test]
fn leases_free_their_slots_when_released_or_ended() {
    let server = Server::start();
    let mut con = server.connect();
    // Kept: a lease at a pinned time leaves the key a TTL of a second or so
    // on the real clock, which must not run out before the next call.
    let acquire = |con: &mut redis::Connection, t: i64, lease: i64| -> Vec<i64> {
        let line = format!("RL.ACQUIRE slots 2 {lease} AT {t}");
        redis::from_redis_value(&kept(con, line, &["slots"])).unwrap()
    };
    let a = acquire(&mut con, T, 1000);
    assert_eq!(&a[..5], &[1, 2, 1, 0, 1000]);
    let b = acquire(&mut con, T + 100, 5000);
    assert_eq!(&b[..5], &[1, 2, 0, 0, 5000]);
    assert_eq!(acquire(&mut con, T + 200, 1000), [0, 2, 0, 800, 4900, 0]);
    // A crashed holder's slot comes back when its lease ends.
    assert_eq!(acquire(&mut con, T + 1000, 1000)[..5], [1, 2, 0, 0, 4100]);
    let t = T + 1000;
    assert_eq!(
        int(&mut con, format!("RL.RELEASE slots {} AT {t}", a[5])),
        0
    );
    assert_eq!(
        int(&mut con, format!("RL.RELEASE slots {} AT {t}", b[5])),
        1
    );
    assert_eq!(
        int(&mut con, format!("RL.RELEASE slots {} AT {t}", b[5])),
        0
    );
    let c = acquire(&mut con, T + 1000, 1000);
    assert_eq!(c[0], 1);
    // A heartbeat moves the end; a lease that ended cannot be extended.
    assert_eq!(
        int(
            &mut con,
            format!("RL.EXTEND slots {} 9000 AT {}", c[5], T + 1500)
        ),
        1
    );
    let view: Vec<Value> = query(&mut con, format!("RL.INSPECT slots AT {}", T + 1500));
    assert_eq!(view[0], Value::BulkString(b"type".to_vec()));
    assert_eq!(
        &view[1..],
        &[
            Value::BulkString(b"leases".to_vec()),
            Value::BulkString(b"limit".to_vec()),
            Value::Int(2),
            Value::BulkString(b"live".to_vec()),
            Value::Int(2),
            Value::BulkString(b"next_end_ms".to_vec()),
            Value::Int(T + 2000),
            Value::BulkString(b"last_end_ms".to_vec()),
            Value::Int(T + 10_500),
        ]
    );
    assert_eq!(
        int(
            &mut con,
            format!("RL.EXTEND slots {} 9000 AT {}", c[5], T + 20_000)
        ),
        0
    );
    // A limit lowered below the live count denies until enough leases end.
    assert_eq!(
        ints(&mut con, format!("RL.ACQUIRE slots 1 1000 AT {}", T + 1500)),
        [0, 1, 0, 9000, 9000, 0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_acquires_admit_exactly_the_limit() {
    let server = Server::start();
    let client = server.client();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut con = client
                .get_multiplexed_async_connection()
                .await
                .expect("connect");
            let mut ids = Vec::new();
            for _ in 0..10 {
                let reply: Vec<i64> = command("RL.ACQUIRE pool 7 3600000")
                    .query_async(&mut con)
                    .await
                    .expect("acquire");
                if reply[0] == 1 {
                    ids.push(reply[5]);
                }
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.expect("task"));
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 7, "exactly the limit, each with its own id");
}

#[test]
fn all_admits_a_rate_limit_a_reservation_and_a_lease_together_or_not_at_all() {
    let server = Server::start();
    let mut con = server.connect();
    let admit = |con: &mut redis::Connection, max_tokens: &str, t: i64| -> Vec<Value> {
        query(
            con,
            format!(
                "RL.ALL 3 {{u}}:rate {{u}}:tokens {{u}}:slots \
                 SLIDELOG 10 60000 RESERVE 10000 100 1000 30000 ACQUIRE 2 30000 \
                 COSTS 1 {max_tokens} 1 AT {t}"
            ),
        )
    };
    let first = admit(&mut con, "4000", T);
    let items: Vec<Vec<i64>> = first[2..]
        .iter()
        .map(|v| redis::from_redis_value(v).unwrap())
        .collect();
    assert_eq!(first[0], Value::Int(1));
    assert_eq!(items[0], [1, 10, 9, 0, 60_000]);
    assert_eq!(&items[1][..5], &[1, 10_000, 6000, 0, 40_000]);
    assert!(
        items[1][5] > 0 && items[2][5] > 0,
        "a reservation and a lease opened: {items:?}"
    );
    assert_eq!(items[2].len(), 6);
    // The token budget cannot cover 7000 more: nothing is taken anywhere.
    let before: Vec<_> = ["{u}:rate", "{u}:tokens", "{u}:slots"]
        .iter()
        .map(|k| dump(&mut con, k.as_bytes()))
        .collect();
    let denied = admit(&mut con, "7000", T);
    let items: Vec<Vec<i64>> = denied[2..]
        .iter()
        .map(|v| redis::from_redis_value(v).unwrap())
        .collect();
    assert_eq!(denied[0], Value::Int(0));
    assert_eq!(items[1], [0, 10_000, 6000, 10_000, 40_000, 0]);
    assert_eq!(items[2], [1, 2, 1, 0, 30_000, 0]);
    let after: Vec<_> = ["{u}:rate", "{u}:tokens", "{u}:slots"]
        .iter()
        .map(|k| dump(&mut con, k.as_bytes()))
        .collect();
    assert_eq!(before, after);
    // The second slot goes; then the lease limit denies.
    assert_eq!(admit(&mut con, "1", T)[0], Value::Int(1));
    assert_eq!(admit(&mut con, "1", T)[0], Value::Int(0));
    assert_eq!(
        error(&mut con, "RL.ALL 1 s ACQUIRE 2 1000 COST 2"),
        "ERR spec 1: ACQUIRE takes a cost of 0 or 1"
    );
}

#[test]
fn releasing_the_last_lease_keeps_the_key_expiring() {
    let server = Server::start();
    let mut con = server.connect();
    let sha: String = query(
        &mut con,
        ["SCRIPT", "LOAD", include_str!("../../lua/release.lua")],
    );
    let acquire: String = query(
        &mut con,
        ["SCRIPT", "LOAD", include_str!("../../lua/acquire.lua")],
    );
    let native = ints(&mut con, "RL.ACQUIRE native 2 60000");
    let lua = ints(&mut con, format!("EVALSHA {acquire} 1 lua 2 60000"));
    assert_eq!(int(&mut con, format!("RL.RELEASE native {}", native[5])), 1);
    let released: i64 = query(&mut con, format!("EVALSHA {sha} 1 lua {}", lua[5]));
    assert_eq!(released, 1);
    for key in ["native", "lua"] {
        let ttl = int(&mut con, format!("PTTL {key}"));
        assert!(ttl > 0 && ttl <= 60_000, "{key} keeps its TTL: {ttl}");
    }
}
