//! A bounded-time fuzz of argument parsing, the algorithms and the type
//! decoders, run by `cargo test` (RL_FUZZ_SECONDS sets its budget, 3 s by
//! default). It starts from the corpus in fuzz/corpus/, mutates it, and
//! checks invariants that must hold for every input. With
//! RL_FUZZ_UPDATE_CORPUS=1 it adds to the corpus each input whose outcome
//! (error message or decision shape) it had not seen before.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::algo::leases::{self, LeaseParams, LeaseState};
use crate::algo::record_log::RecordLog;
use crate::algo::sliding_log::{self, LogParams, LogState};
use crate::algo::token_bucket::{self, BucketParams, BucketState};
use crate::algo::window::{self, WindowParams, WindowState};
use crate::args::{parse_i64, parse_options, OptionName};
use crate::ffi::data_type::Stored;
use crate::test_rng::Rng;
use crate::types::bucket::Bucket;
use crate::types::quota::Quota;

fn corpus_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/args.txt")
}

/// Corpus lines are words separated by spaces, with `\xNN` escapes.
fn decode_line(line: &str) -> Vec<Vec<u8>> {
    line.split(' ')
        .map(|word| {
            let mut bytes = Vec::new();
            let mut rest = word.as_bytes();
            while let Some((&first, tail)) = rest.split_first() {
                match (first, tail) {
                    (b'\\', [b'x', high, low, after @ ..]) => {
                        let hex = std::str::from_utf8(&[*high, *low])
                            .ok()
                            .and_then(|h| u8::from_str_radix(h, 16).ok());
                        bytes.push(hex.unwrap_or(b'?'));
                        rest = after;
                    }
                    _ => {
                        bytes.push(first);
                        rest = tail;
                    }
                }
            }
            bytes
        })
        .collect()
}

fn encode_line(words: &[Vec<u8>]) -> String {
    words
        .iter()
        .map(|w| {
            w.iter()
                .map(|&b| {
                    if b.is_ascii_graphic() && b != b'\\' {
                        (b as char).to_string()
                    } else {
                        format!("\\x{b:02x}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn mutate(rng: &mut Rng, words: &mut Vec<Vec<u8>>, corpus: &[Vec<Vec<u8>>]) {
    for _ in 0..1 + rng.below(3) {
        match rng.below(6) {
            0 if !words.is_empty() => {
                let i = rng.below(words.len());
                words.remove(i);
            }
            1 => {
                let donor = &corpus[rng.below(corpus.len())];
                if let Some(word) = donor.get(rng.below(donor.len())) {
                    words.insert(rng.below(words.len() + 1), word.clone());
                }
            }
            2 if !words.is_empty() => {
                let i = rng.below(words.len());
                let word = &mut words[i];
                let at = rng.below(word.len() + 1);
                word.insert(at, rng.next() as u8);
            }
            3 => words.push(rng.edgy(0).to_string().into_bytes()),
            4 if !words.is_empty() => {
                let i = rng.below(words.len());
                words[i] = format!("-{}", rng.edgy(0)).into_bytes();
            }
            _ => {}
        }
    }
}

/// Parses a word list as the options of every command; returns the outcome.
fn parse_outcome(words: &[Vec<u8>]) -> String {
    let accepted = [
        OptionName::Cost,
        OptionName::Costs(words.len() % 4 + 1),
        OptionName::At,
    ];
    let outcome = match parse_options(words.iter().map(Vec::as_slice), &accepted) {
        Ok(options) => format!(
            "ok cost={} costs={} at={}",
            options.cost.is_some(),
            options.costs.is_some(),
            options.at.is_some()
        ),
        Err(error) => error
            .reply_text()
            .split(' ')
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    };
    for word in words {
        // The parser agrees with Rust's on every string written as Redis writes numbers.
        let text = std::str::from_utf8(word).unwrap_or("");
        let noncanonical = text.starts_with('+')
            || text.starts_with("-0")
            || (text.starts_with('0') && text.len() > 1);
        let canonical = !noncanonical;
        if canonical {
            assert_eq!(parse_i64(word), text.parse::<i64>().ok(), "{text:?}");
        }
    }
    outcome
}

fn check_bucket(rng: &mut Rng) -> String {
    let params = BucketParams {
        capacity: rng.edgy(1),
        refill_amount: rng.edgy(0),
        refill_period_ms: rng.edgy(1),
    };
    let mut state: Option<BucketState> = None;
    let mut now = rng.edgy(0);
    for _ in 0..20 {
        now = now
            .saturating_add(rng.below(3000) as i64)
            .saturating_sub(rng.below(500) as i64)
            .max(0);
        let cost = rng.edgy(0);
        let outcome = token_bucket::take(state.as_ref(), &params, now, cost);
        let d = outcome.evaluation.own_decision();
        assert!(
            (0..=params.capacity).contains(&d.remaining),
            "{params:?} {d:?}"
        );
        let retry = d.retry_after_ms;
        // A time past i64::MAX (or a saturated wait) cannot be asked for:
        // check the ones that can.
        if !d.allowed && retry > 0 && retry < i64::MAX && outcome.at_ms.checked_add(retry).is_some()
        {
            let at = outcome.at_ms;
            assert!(
                !token_bucket::take(state.as_ref(), &params, at + retry - 1, cost)
                    .evaluation
                    .allowed
            );
            assert!(
                token_bucket::take(state.as_ref(), &params, at + retry, cost)
                    .evaluation
                    .allowed,
                "{params:?} at {at} retry {retry} cost {cost} {state:?}"
            );
        }
        if let Some(written) = outcome.write {
            let bucket = Bucket::new(written);
            assert_eq!(bucket.state(), written);
            let mut bytes = Vec::new();
            bucket.encode(&mut bytes);
            assert_eq!(Bucket::decode(&bytes), Some(bucket));
            state = Some(written);
        }
    }
    String::new()
}

fn check_log(rng: &mut Rng) {
    let params = LogParams {
        limit: 1 + rng.below(50) as i64,
        window_ms: rng.edgy(1),
    };
    let mut state = LogState {
        params,
        records: RecordLog::default(),
    };
    let mut now = rng.edgy(0) / 2;
    for _ in 0..40 {
        now = now
            .saturating_add(rng.below(2000) as i64)
            .saturating_sub(rng.below(300) as i64)
            .max(0);
        let cost = rng.below(params.limit as usize + 2) as i64;
        let outcome = sliding_log::check(Some(&state), &params, now, cost);
        let d = outcome.evaluation.own_decision();
        assert!((0..=params.limit).contains(&d.remaining));
        let retry = d.retry_after_ms;
        // A time past i64::MAX (or a saturated wait) cannot be asked for:
        // check the ones that can.
        if !d.allowed && retry > 0 && retry < i64::MAX && outcome.at_ms.checked_add(retry).is_some()
        {
            let at = outcome.at_ms;
            assert!(
                !sliding_log::check(Some(&state), &params, at + retry - 1, cost)
                    .evaluation
                    .allowed
            );
            assert!(
                sliding_log::check(Some(&state), &params, at.saturating_add(retry), cost)
                    .evaluation
                    .allowed,
                "{params:?} at {at} retry {retry} cost {cost} {:?}",
                state.records.iter().collect::<Vec<_>>()
            );
        }
        if outcome.writes {
            sliding_log::record(&mut state, &params, outcome.at_ms, cost);
            let used: i64 = state.records.iter().map(|(_, c)| c).sum();
            assert!(used <= params.limit, "the log holds at most limit units");
        }
    }
    let mut bytes = Vec::new();
    state.encode(&mut bytes);
    assert_eq!(
        LogState::decode(&bytes).map(|s| s.records.iter().collect::<Vec<_>>()),
        Some(state.records.iter().collect())
    );
}

fn check_leases(rng: &mut Rng) {
    let params = LeaseParams {
        limit: 1 + rng.below(5) as i64,
        lease_ms: 1 + rng.below(3000) as i64,
    };
    let mut state = LeaseState {
        limit: params.limit,
        updated_ms: 0,
        last_id: 0,
        leases: Vec::new(),
    };
    let mut now = rng.below(1 << 40) as i64;
    for _ in 0..40 {
        now += rng.below(500) as i64;
        match rng.below(3) {
            0 => {
                if let Ok(outcome) = leases::acquire(Some(&state), &params, now, 1) {
                    leases::record(&mut state, &params, &outcome);
                }
            }
            1 => {
                let id = state.leases.first().map_or(1, |l| l.id);
                leases::release(&mut state, id, now);
            }
            _ => {
                let id = state.leases.last().map_or(1, |l| l.id);
                leases::extend(&mut state, id, 1 + rng.below(3000) as i64, now);
            }
        }
        assert!(leases::inspect(&state, now).live <= params.limit);
    }
}

fn check_decoders(rng: &mut Rng) {
    let bytes: Vec<u8> = (0..rng.below(120)).map(|_| rng.next() as u8).collect();
    let _ = Bucket::decode(&bytes);
    let _ = LogState::decode(&bytes);
    let _ = LeaseState::decode(&bytes);
    let _ = WindowState::decode(&bytes);
    let _ = Quota::decode(&bytes);
    check_window_payloads(rng);
}

/// A window's payload with some bytes changed: whatever decodes encodes
/// back the same, and calls on it keep their bounds.
fn check_window_payloads(rng: &mut Rng) {
    let params = WindowParams {
        limit: 1 + rng.below(50) as i64,
        window_ms: 1 + rng.below(100_000) as i64,
        precision_ms: 0,
    };
    let params = WindowParams {
        precision_ms: rng.below(params.window_ms as usize + 1) as i64,
        ..params
    };
    let mut state = window::empty(&params, 0);
    let mut now = rng.edgy(0) / 2;
    for _ in 0..rng.below(20) {
        now = now.saturating_add(rng.below(5000) as i64);
        let outcome = window::check(Some(&state), &params, now, 1);
        if outcome.writes {
            window::record(&mut state, &params, outcome.at_ms, 1);
        }
    }
    let mut bytes = Vec::new();
    state.encode(&mut bytes);
    for _ in 0..rng.below(3) {
        let at = rng.below(bytes.len().max(1));
        if let Some(byte) = bytes.get_mut(at) {
            *byte ^= 1 << rng.below(8);
        }
    }
    let Some(decoded) = WindowState::decode(&bytes) else {
        return;
    };
    let mut again = Vec::new();
    decoded.encode(&mut again);
    assert_eq!(WindowState::decode(&again).as_ref(), Some(&decoded));
    let outcome = window::check(Some(&decoded), &decoded.params, now, 1);
    let decision = outcome.evaluation.own_decision();
    assert!(decision.remaining >= 0 && decision.remaining <= decoded.params.limit);
}

#[test]
fn fuzz() {
    let seconds = std::env::var("RL_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let update = std::env::var_os("RL_FUZZ_UPDATE_CORPUS").is_some();
    let text = std::fs::read_to_string(corpus_path()).expect("fuzz/corpus/args.txt");
    let mut corpus: Vec<Vec<Vec<u8>>> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(decode_line)
        .collect();
    let mut seen: HashSet<String> = corpus.iter().map(|words| parse_outcome(words)).collect();
    let mut found = Vec::new();
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut rounds = 0u64;
    while Instant::now() < deadline {
        let mut words = corpus[rng.below(corpus.len())].clone();
        mutate(&mut rng, &mut words, &corpus);
        let outcome = parse_outcome(&words);
        if seen.insert(outcome) {
            found.push(encode_line(&words));
            corpus.push(words);
        }
        check_bucket(&mut rng);
        check_log(&mut rng);
        check_leases(&mut rng);
        check_decoders(&mut rng);
        rounds += 1;
    }
    assert!(rounds > 100, "the fuzz ran only {rounds} rounds");
    if update && !found.is_empty() {
        let mut text = text;
        for line in found {
            text.push_str(&line);
            text.push('\n');
        }
        std::fs::write(corpus_path(), text).expect("write the corpus");
    }
}
