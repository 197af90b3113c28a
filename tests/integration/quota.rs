//! RL.QUOTA against real servers: worked examples to the ms in UTC, fixed
//! offsets and DST zones, billing anchors, its errors, the TTL, RL.ALL,
//! RL.INSPECT, INFO, memory, persistence and replicas.

use std::collections::HashMap;

use crate::common::{
    assert_states_persist, command, dump, error, expire_time, info_field, ints, query, server_ms,
    start_pair, timed, venv_python, Rng, Server,
};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// Unix ms of a UTC time `year-month-day hour:minute`.
fn utc(year: i64, month: i64, day: i64, hour: i64, minute: i64) -> i64 {
    // Days from 1970-01-01 to the date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * DAY + hour * HOUR + minute * 60_000
}

#[test]
fn days_follow_local_midnight_across_dst() {
    let server = Server::start();
    let mut con = server.connect();
    // (zone, a time, the local day's start and end): 23- and 25-hour days
    // in Europe and America, a fixed offset and UTC.
    let cases = [
        (
            "Europe/Berlin",
            utc(2026, 3, 29, 12, 0),
            utc(2026, 3, 28, 23, 0),
            utc(2026, 3, 29, 22, 0),
        ),
        (
            "Europe/Berlin",
            utc(2026, 10, 25, 12, 0),
            utc(2026, 10, 24, 22, 0),
            utc(2026, 10, 25, 23, 0),
        ),
        (
            "America/New_York",
            utc(2026, 3, 8, 12, 0),
            utc(2026, 3, 8, 5, 0),
            utc(2026, 3, 9, 4, 0),
        ),
        (
            "America/New_York",
            utc(2026, 11, 1, 12, 0),
            utc(2026, 11, 1, 4, 0),
            utc(2026, 11, 2, 5, 0),
        ),
        (
            "america/los_angeles",
            utc(2026, 11, 1, 20, 0),
            utc(2026, 11, 1, 7, 0),
            utc(2026, 11, 2, 8, 0),
        ),
        (
            "+05:30",
            utc(2026, 12, 4, 20, 0),
            utc(2026, 12, 4, 18, 30),
            utc(2026, 12, 5, 18, 30),
        ),
        (
            "UTC",
            utc(2026, 12, 4, 13, 0),
            utc(2026, 12, 4, 0, 0),
            utc(2026, 12, 5, 0, 0),
        ),
    ];
    for (n, (zone, at, start, end)) in cases.into_iter().enumerate() {
        let key = format!("day:{n}");
        let line =
            |cost: i64, at: i64| format!("RL.QUOTA {key} 10 day TZ {zone} COST {cost} AT {at}");
        assert_eq!(
            ints(&mut con, line(4, at)),
            [1, 10, 6, 0, end - at],
            "{zone}"
        );
        assert_eq!(
            ints(&mut con, line(7, at + 1)),
            [0, 10, 6, end - at - 1, end - at - 1]
        );
        assert_eq!(
            ints(&mut con, line(11, at + 1)),
            [0, 10, 6, -1, end - at - 1]
        );
        // Inspected while the key's TTL is still hours: the call at `end - 1`
        // leaves it 1 ms of the server's real clock.
        let inspect: HashMap<String, redis::Value> =
            query(&mut con, format!("RL.INSPECT {key} AT {}", end - 1));
        let int = |field: &str| -> i64 { redis::from_redis_value(&inspect[field]).unwrap() };
        assert_eq!(
            (int("period_start_ms"), int("period_end_ms")),
            (start, end),
            "{zone}"
        );
        assert_eq!(int("used"), 4);
        assert_eq!(ints(&mut con, line(6, end - 1)), [1, 10, 0, 0, 1]);
        // The next local day starts from zero.
        assert_eq!(ints(&mut con, line(0, end)), [1, 10, 10, 0, 0]);
    }
}

#[test]
fn billing_anchors_renew_on_their_day_clamped_to_shorter_months() {
    let server = Server::start();
    let mut con = server.connect();
    let anchor = utc(2026, 1, 31, 10, 0);
    let mut period_at = |at: i64| -> (i64, i64) {
        let reply = ints(
            &mut con,
            format!("RL.QUOTA m 1000 month ANCHOR {anchor} COST 1000 AT {at}"),
        );
        assert_eq!(reply[0], 1, "a new period at {at}");
        (at, at + reply[4])
    };
    // Each call lands in a new period, so each is allowed its whole limit.
    for (at, end) in [
        (utc(2026, 2, 1, 0, 0), utc(2026, 2, 28, 10, 0)),
        (utc(2026, 3, 1, 0, 0), utc(2026, 3, 31, 10, 0)),
        (utc(2026, 4, 1, 0, 0), utc(2026, 4, 30, 10, 0)),
        (utc(2026, 5, 1, 0, 0), utc(2026, 5, 31, 10, 0)),
    ] {
        assert_eq!(period_at(at), (at, end));
    }
    // A leap year's February: the 29th. Weeks, quarters and years too.
    for (line, at, end) in [
        (
            format!("RL.QUOTA l 5 month ANCHOR {anchor}"),
            utc(2028, 2, 10, 0, 0),
            utc(2028, 2, 29, 10, 0),
        ),
        (
            "RL.QUOTA w 5 week TZ Europe/Berlin".to_owned(),
            utc(2026, 12, 4, 12, 0),
            utc(2026, 12, 6, 23, 0),
        ),
        (
            "RL.QUOTA q 5 quarter TZ -08:00".to_owned(),
            utc(2026, 12, 4, 12, 0),
            utc(2027, 1, 1, 8, 0),
        ),
        (
            format!("RL.QUOTA y 5 year ANCHOR {}", utc(2024, 2, 29, 12, 0)),
            utc(2026, 3, 1, 0, 0),
            utc(2027, 2, 28, 12, 0),
        ),
        (
            format!(
                "RL.QUOTA h 5 hour ANCHOR {}",
                utc(2026, 1, 1, 0, 17) + 30_000
            ),
            utc(2026, 12, 4, 13, 0),
            utc(2026, 12, 4, 13, 17) + 30_000,
        ),
        (
            "RL.QUOTA n 5 minute TZ Asia/Kathmandu".to_owned(),
            utc(2026, 12, 4, 13, 0) + 59_999,
            utc(2026, 12, 4, 13, 1),
        ),
    ] {
        assert_eq!(
            ints(&mut con, format!("{line} AT {at}"))[4],
            end - at,
            "{line}"
        );
    }
}

#[test]
fn new_parameters_keep_what_the_period_used() {
    let server = Server::start();
    let mut con = server.connect();
    let at = utc(2026, 12, 4, 12, 0);
    let end = utc(2027, 1, 1, 0, 0);
    ints(&mut con, format!("RL.QUOTA u 100 month COST 80 AT {at}"));
    // An upgrade mid-month keeps the 80 used; a downgrade below them leaves
    // nothing (never a negative remaining).
    assert_eq!(
        ints(&mut con, format!("RL.QUOTA u 1000 month COST 0 AT {at}")),
        [1, 1000, 920, 0, end - at]
    );
    assert_eq!(
        ints(&mut con, format!("RL.QUOTA u 50 month AT {at}")),
        [0, 50, 0, end - at, end - at]
    );
    // A zone whose month still holds the last write keeps the count; an
    // anchor whose period began after it starts afresh.
    assert_eq!(
        ints(
            &mut con,
            format!("RL.QUOTA u 100 month TZ Asia/Tokyo COST 0 AT {at}")
        )[2],
        20
    );
    let later = utc(2026, 12, 4, 12, 0) + 1;
    assert_eq!(
        ints(
            &mut con,
            format!("RL.QUOTA u 100 day ANCHOR {later} COST 0 AT {later}")
        )[2],
        100
    );
}

#[test]
fn bad_input_names_the_argument_and_changes_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    let at = utc(2026, 12, 4, 12, 0);
    ints(&mut con, format!("RL.QUOTA k 5 day AT {at}"));
    let dumped = dump(&mut con, b"k");
    let ttl = expire_time(&mut con, b"k");
    for (line, expected) in [
        ("RL.QUOTA k 0 day", "ERR limit must be an integer from 1 to"),
        (
            "RL.QUOTA k 5 fortnight",
            "ERR period must be minute, hour, day, week, month, quarter or year",
        ),
        (
            "RL.QUOTA k 5 day TZ Mars/Olympus",
            "ERR TZ zone: unknown time zone 'Mars/Olympus'",
        ),
        (
            "RL.QUOTA k 5 day TZ +18:30",
            "ERR TZ zone: unknown time zone '+18:30'",
        ),
        (
            "RL.QUOTA k 5 day TZ +5:30",
            "ERR TZ zone: unknown time zone '+5:30'",
        ),
        ("RL.QUOTA k 5 day TZ", "ERR option TZ needs a value"),
        (
            "RL.QUOTA k 5 day ANCHOR 253402128000000",
            "ERR ANCHOR must be an integer from -62135510400000 to 253402127999999",
        ),
        (
            "RL.QUOTA k 5 day ANCHOR soon",
            "ERR ANCHOR must be an integer from",
        ),
        (
            "RL.QUOTA k 5 day TZ UTC TZ UTC",
            "ERR option TZ given more than once",
        ),
        (
            "RL.QUOTA k 5 day COST -1",
            "ERR COST must be an integer from 0 to",
        ),
        (
            "RL.QUOTA k 5 day AT 900000000000000000",
            "ERR AT is beyond the years a quota's calendar covers",
        ),
        (
            "RL.QUOTA k 5 day PRECISION 3",
            "ERR unknown option 'PRECISION'",
        ),
        ("RL.QUOTA k 5", "ERR wrong number of arguments"),
    ] {
        let got = error(&mut con, line);
        assert!(got.starts_with(expected), "{line}: {got}");
    }
    assert_eq!(dump(&mut con, b"k"), dumped);
    assert_eq!(expire_time(&mut con, b"k"), ttl);
    query::<()>(&mut con, "SET s x");
    let got = error(&mut con, "RL.QUOTA s 5 day");
    assert!(got.starts_with("WRONGTYPE"), "{got}");
    // A peek or a denial creates nothing.
    assert_eq!(
        ints(&mut con, "RL.QUOTA nothing 5 day COST 0"),
        [1, 5, 5, 0, 0]
    );
    assert_eq!(ints(&mut con, "RL.QUOTA nothing 5 day COST 6")[0], 0);
    assert_eq!(query::<i64>(&mut con, "EXISTS nothing"), 0);
}

#[test]
fn the_key_expires_when_its_period_ends() {
    let server = Server::start();
    let mut con = server.connect();
    let (reply, during) = timed(&mut con, |con| {
        ints(con, "RL.QUOTA k 5 day TZ America/New_York")
    });
    let written_at = expire_time(&mut con, b"k") - reply[4];
    assert!(during.contains(&written_at), "{written_at}");
    let latest = *during.end();
    // With AT, the key expires reset_after_ms after the server's clock.
    let pinned = utc(2020, 6, 1, 0, 0);
    let reply = ints(&mut con, format!("RL.QUOTA old 5 hour AT {pinned}"));
    assert_eq!(reply[4], HOUR);
    let expires = expire_time(&mut con, b"old");
    assert!(
        (latest + HOUR..=server_ms(&mut con) + HOUR).contains(&expires),
        "{expires}"
    );
    // Denials and peeks leave the expiry as it is.
    let before = expire_time(&mut con, b"k");
    ints(&mut con, "RL.QUOTA k 5 day TZ America/New_York COST 9");
    ints(&mut con, "RL.QUOTA k 5 day TZ America/New_York COST 0");
    assert_eq!(expire_time(&mut con, b"k"), before);
}

/// MEMORY USAGE of a key.
fn usage(con: &mut redis::Connection, key: &str) -> i64 {
    query(con, format!("MEMORY USAGE {key} SAMPLES 0"))
}

#[test]
fn a_quota_key_costs_no_more_than_a_bucket_key() {
    let server = Server::start();
    let mut con = server.connect();
    // Each quota beside a bucket of a name as long and numbers as large;
    // long periods, so that no key expires during the test.
    let pairs = [
        (
            "RL.QUOTA q:00000042 1000000 month TZ Europe/Berlin COST 5",
            "RL.TOKENBUCKET b:00000042 10 1 3600000",
        ),
        (
            "RL.QUOTA q:00000043 1000000 month TZ America/New_York ANCHOR 1769853600000",
            "RL.TOKENBUCKET b:00000043 1000000 1000 3600000 COST 1000",
        ),
        (
            "RL.QUOTA q:00000044 1000000000000 day COST 999999999999",
            "RL.TOKENBUCKET b:00000044 1000000000000 1 3600000 COST 999999999999",
        ),
    ];
    for (quota, bucket) in pairs {
        ints(&mut con, quota);
        ints(&mut con, bucket);
    }
    for round in ["written", "reloaded"] {
        for (quota, bucket) in pairs {
            let (quota, bucket) = (&quota[9..19], &bucket[15..25]);
            let (q, b) = (usage(&mut con, quota), usage(&mut con, bucket));
            assert!(q <= b, "{round} {quota}: {q} B against {bucket}: {b} B");
        }
        query::<()>(&mut con, "DEBUG RELOAD");
    }
    // Redis 7.0 counts a key with a short name and 16 bytes held as 48.
    assert!(usage(&mut con, "q:00000042") <= 64);
}

#[test]
fn rl_all_combines_a_bucket_with_a_monthly_quota() {
    let server = Server::start();
    let mut con = server.connect();
    let at = utc(2026, 12, 4, 12, 0);
    let end = utc(2027, 1, 1, 5, 0);
    // A bucket refilled over an hour: the TTL its write leaves on the real
    // clock (a tenth of its period) outlives the calls that read it.
    let line = |tokens: i64| {
        format!(
            "RL.ALL 2 {{c}}:rps {{c}}:month TOKENBUCKET 10 10 3600000 \
             QUOTA 1000 month TZ America/New_York COSTS 1 {tokens} AT {at}"
        )
    };
    let reply: Vec<redis::Value> = query(&mut con, line(900));
    let int = |v: &redis::Value| -> i64 { redis::from_redis_value(v).unwrap() };
    let quota: Vec<i64> = redis::from_redis_value(&reply[3]).unwrap();
    assert_eq!((int(&reply[0]), int(&reply[1])), (1, 0));
    assert_eq!(quota, [1, 1000, 100, 0, end - at]);
    // 200 tokens do not fit: nothing is charged, not even the bucket.
    let reply: Vec<redis::Value> = query(&mut con, line(200));
    assert_eq!((int(&reply[0]), int(&reply[1])), (0, end - at));
    assert_eq!(
        ints(
            &mut con,
            format!("RL.TOKENBUCKET {{c}}:rps 10 10 3600000 COST 0 AT {at}")
        )[2],
        9
    );
    let got = error(&mut con, "RL.ALL 1 q QUOTA 10 day TZ Nowhere");
    assert!(
        got.starts_with("ERR spec 1: TZ zone: unknown time zone 'Nowhere'"),
        "{got}"
    );
    let got = error(&mut con, "RL.ALL 1 q QUOTA 10 eon");
    assert!(got.starts_with("ERR spec 1: period must be"), "{got}");
    let got = error(&mut con, "RL.ALL 1 q QUOTA 10");
    assert!(
        got.starts_with("ERR spec 1: missing parameters, expected QUOTA limit period"),
        "{got}"
    );
}

#[test]
fn inspect_and_info_show_the_calendar() {
    let server = Server::start();
    let mut con = server.connect();
    let anchor = utc(2026, 1, 15, 9, 0);
    let at = utc(2026, 12, 4, 12, 0);
    ints(
        &mut con,
        format!("RL.QUOTA k 100 month TZ europe/berlin ANCHOR {anchor} COST 3 AT {at}"),
    );
    let view: Vec<redis::Value> = query(&mut con, format!("RL.INSPECT k AT {at}"));
    let text: Vec<String> = view
        .iter()
        .map(|v| match v {
            redis::Value::Int(n) => n.to_string(),
            other => redis::from_redis_value(other).unwrap(),
        })
        .collect();
    let start = utc(2026, 11, 15, 9, 0);
    let end = utc(2026, 12, 15, 9, 0);
    let expected = [
        "type",
        "quota",
        "limit",
        "100",
        "used",
        "3",
        "period",
        "month",
        "zone",
        "Europe/Berlin",
        "anchor_ms",
        &anchor.to_string(),
        "period_start_ms",
        &start.to_string(),
        "period_end_ms",
        &end.to_string(),
        "reset_after_ms",
        &(end - at).to_string(),
    ];
    assert_eq!(text, expected);
    let version = info_field(&mut con, "rl", "rl_tzdb_version");
    assert!(version.len() == 5 && version.starts_with("20"), "{version}");
    assert_eq!(info_field(&mut con, "rl", "rl_keys_quota"), "1");
}

#[test]
fn persistence_and_replicas_keep_the_exact_state() {
    let (master, replica) = start_pair();
    let mut con = master.connect();
    let mut rng = Rng::new(0x9_0007);
    let zones = [
        "UTC",
        "+05:45",
        "-09:30",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
    ];
    let periods = ["minute", "hour", "day", "week", "month", "quarter", "year"];
    let mut keys = Vec::new();
    for index in 0..40 {
        let key = format!("q:{index}");
        let mut pipe = redis::pipe();
        let zone = zones[index % zones.len()];
        // Long periods keep every key alive on the real clock.
        let period = periods[4 + index % 3];
        let anchor = if rng.chance(50) {
            format!(
                "ANCHOR {}",
                rng.range(utc(1990, 1, 1, 0, 0), utc(2040, 1, 1, 0, 0))
            )
        } else {
            String::new()
        };
        for _ in 0..30 {
            let limit = rng.range(1, 100);
            let cost = rng.range(0, 30);
            let line = format!("RL.QUOTA {key} {limit} {period} TZ {zone} {anchor} COST {cost}");
            pipe.add_command(command(line)).ignore();
        }
        pipe.query::<()>(&mut con).unwrap();
        if dump(&mut con, key.as_bytes()).is_some() {
            keys.push(key);
        }
    }
    assert!(keys.len() > 20);
    assert_states_persist(&master, &replica, &keys);
}

/// Periods against a model written independently in Python's zoneinfo,
/// over the tzdata package of the same IANA version as the bundled one:
/// random periods, zones (DST, half-hour and 45-minute offsets, a skipped
/// day), anchors (month ends, times in gaps and folds) and times.
#[test]
fn periods_match_an_independent_model() {
    let server = Server::start();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/model");
    let python = venv_python(&dir, "tzdata");
    let output = std::process::Command::new(python)
        .arg(dir.join("quota_periods.py"))
        .args([&server.port.to_string(), "4000", "7"])
        .env("PYTHONTZPATH", "")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("checked 4000 mismatches 0"), "{report}");
}
