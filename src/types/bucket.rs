//! `rl-bucket`: the token bucket's Redis data type, with the reservations of
//! keys that use them.
//!
//! A bucket is held as a compact record of varints ([`crate::algo::varint`])
//! whose size follows the numbers' magnitudes: a header byte of flags, then
//! capacity, refill_amount, refill_period_ms (in seconds when the header
//! says so), the whole tokens used (capacity minus the tokens, never
//! negative), the fraction of a token in units of 1/refill_period_ms (only
//! when the header says there is one) and updated_ms. A bucket with open
//! reservations, or whose record would not fit in 23 bytes, is held in full
//! behind one box instead.
//!
//! Encoding version 2 is that record, then, for a bucket that has reserved,
//! the reservations as in version 1; a zero byte after the header (flagged
//! in it) keeps its length from being a multiple of 8.
//!
//! Encoding version 1 (little-endian): capacity i64, refill_amount i64,
//! refill_period_ms i64, level i128, updated_ms i64 (48 bytes); then, only
//! for a bucket that has reserved: last_id i64, count i64, and per open
//! reservation id i64, estimate i64, ends_ms i64. Its length is always a
//! multiple of 8, which is how `RL.RESTORESTATE` payloads (which carry no
//! version) of either version are told apart. It is still read, and AOF
//! rewrite still emits it, so that an older build loads that AOF.

use std::ffi::CStr;

use redis_module::native_types::RedisType;

use super::codec::{put_i128, put_i64, Reader};
use super::held::{Held, Record, Varints};
use crate::algo::ids::MAX_ID;
use crate::algo::math::floor_div;
use crate::algo::reservations::{Reservation, Reservations, MAX_OPEN};
use crate::algo::token_bucket::{BucketParams, BucketState};
use crate::ffi::data_type::{type_methods, with_aux, Stored, ENCODING_VERSION};
use crate::replication::StreamClock;
use crate::stats::LiveKeys;

/// The bucket type also carries the replication stream's clock in RDB
/// files (aux data, see [`crate::replication`]).
pub static BUCKET_TYPE: RedisType = RedisType::new(
    "rl-bucket",
    ENCODING_VERSION,
    with_aux::<StreamClock>(type_methods::<Bucket>()),
);

/// What a bucket key holds: 16 bytes, which with Redis's module value
/// record (16 more) cost what a hash of two small fields costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket(Held<Large>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Large {
    state: BucketState,
    reservations: Option<Reservations>,
}

/// The header's flags: the period is in seconds; a fraction of a token
/// follows; (encoding only) reservations follow the record; a zero byte
/// follows the header.
const SECONDS: u8 = 1;
const FRACTION: u8 = 2;
const RESERVED: u8 = 4;
const PADDED: u8 = 8;

/// The record of `state`: the header, then its numbers.
fn record_of(state: &BucketState) -> Record {
    let params = &state.params;
    let period = i128::from(params.refill_period_ms);
    let tokens = floor_div(state.level, period);
    let fraction = state.level - tokens * period;
    // A valid level (from minus i64::MAX tokens to the capacity) keeps
    // the tokens used within u64.
    let used = u64::try_from((i128::from(params.capacity) - tokens).max(0)).unwrap_or(u64::MAX);
    let in_seconds = params.refill_period_ms % 1000 == 0;
    let mut header = 0;
    if in_seconds {
        header |= SECONDS;
    }
    if fraction != 0 {
        header |= FRACTION;
    }
    let mut record = Record::new();
    record.push(header);
    let unsigned = |n: i64| u64::try_from(n).unwrap_or(0);
    record.put(unsigned(params.capacity));
    record.put(unsigned(params.refill_amount));
    record.put(unsigned(if in_seconds {
        params.refill_period_ms / 1000
    } else {
        params.refill_period_ms
    }));
    record.put(used);
    if fraction != 0 {
        record.put(u64::try_from(fraction).unwrap_or(0));
    }
    record.put(unsigned(state.updated_ms));
    record
}

/// The state in a record whose header is `header` and numbers `bytes`, and
/// what follows it; `None` for numbers that are no valid bucket.
fn unpack(header: u8, bytes: &[u8]) -> Option<(BucketState, &[u8])> {
    let mut numbers = Varints(bytes);
    let capacity = numbers.next_i64().filter(|&c| c >= 1)?;
    let refill_amount = numbers.next_i64()?;
    let period = numbers.next_i64().filter(|&p| p >= 1)?;
    let refill_period_ms = if header & SECONDS != 0 {
        period.checked_mul(1000)?
    } else {
        period
    };
    let used = numbers.next()?;
    let fraction = if header & FRACTION != 0 {
        numbers
            .next_i64()
            .filter(|&f| f >= 1 && f < refill_period_ms)?
    } else {
        0
    };
    let updated_ms = numbers.next_i64()?;
    let params = BucketParams {
        capacity,
        refill_amount,
        refill_period_ms,
    };
    let period = i128::from(refill_period_ms);
    let level = (i128::from(capacity) - i128::from(used)) * period + i128::from(fraction);
    valid_level(&params, level)?;
    let state = BucketState {
        params,
        level,
        updated_ms,
    };
    Some((state, numbers.0))
}

/// Some when `level` is within what a bucket of `params` can hold: from
/// minus i64::MAX tokens to its capacity.
fn valid_level(params: &BucketParams, level: i128) -> Option<()> {
    let period = i128::from(params.refill_period_ms);
    let full = i128::from(params.capacity) * period;
    let deepest = -i128::from(i64::MAX) * period;
    (deepest..=full).contains(&level).then_some(())
}

impl Bucket {
    pub fn new(state: BucketState) -> Self {
        let record = record_of(&state);
        Bucket(Held::of(record.as_slice()).unwrap_or_else(|| full(state)))
    }

    pub fn state(&self) -> BucketState {
        let Some([header, numbers @ ..]) = self.0.record() else {
            return match &self.0 {
                Held::Large(large) => large.state,
                _ => EMPTY,
            };
        };
        // A held record was written by [`record_of`] from a valid state.
        unpack(header, &numbers).map_or(EMPTY, |(state, _)| state)
    }

    /// Stores new tokens and parameters, keeping the reservations.
    pub fn set_state(&mut self, state: BucketState) {
        match &mut self.0 {
            Held::Large(large) if large.reservations.is_some() => large.state = state,
            held => {
                if !held.hold(record_of(&state).as_slice()) {
                    *held = full(state);
                }
            }
        }
    }

    pub fn reservations(&self) -> Option<&Reservations> {
        match &self.0 {
            Held::Large(large) => large.reservations.as_ref(),
            _ => None,
        }
    }

    /// Changes the reservations, created empty for a bucket that never
    /// reserved (which is then held in full).
    pub fn change_reservations<R>(&mut self, change: impl FnOnce(&mut Reservations) -> R) -> R {
        if !matches!(self.0, Held::Large(_)) {
            self.0 = full(self.state());
        }
        match &mut self.0 {
            Held::Large(large) => {
                change(large.reservations.get_or_insert_with(Reservations::default))
            }
            // Held in full just above.
            _ => change(&mut Reservations::default()),
        }
    }
}

/// A bucket held in full, without reservations.
fn full(state: BucketState) -> Held<Large> {
    Held::Large(Box::new(Large {
        state,
        reservations: None,
    }))
}

/// What [`Bucket::state`] answers for a held record that is not one, which
/// [`record_of`] never writes.
const EMPTY: BucketState = BucketState {
    params: BucketParams {
        capacity: 1,
        refill_amount: 0,
        refill_period_ms: 1,
    },
    level: 0,
    updated_ms: 0,
};

/// `state`, with the reservations that `reader` holds when `reserved`, and
/// nothing more.
fn with_tail(state: BucketState, mut reader: Reader, reserved: bool) -> Option<Bucket> {
    let mut bucket = Bucket::new(state);
    if reserved {
        let last_id = reader.i64().filter(|id| (0..=MAX_ID).contains(id))?;
        let count = reader
            .i64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= MAX_OPEN)?;
        let mut open = Vec::with_capacity(count);
        let mut previous_id = 0;
        for _ in 0..count {
            let reservation = Reservation {
                id: reader
                    .i64()
                    .filter(|&id| id > previous_id && id <= last_id)?,
                estimate: reader.i64().filter(|&e| e >= 1)?,
                ends_ms: reader.i64()?,
            };
            previous_id = reservation.id;
            open.push(reservation);
        }
        bucket.change_reservations(|reservations| *reservations = Reservations { last_id, open });
    }
    reader.is_empty().then_some(bucket)
}

/// The reservations' part of either encoding (nothing for a bucket that
/// never reserved).
fn put_reservations(out: &mut Vec<u8>, reservations: Option<&Reservations>) {
    if let Some(reservations) = reservations {
        put_i64(out, reservations.last_id);
        put_i64(out, i64::try_from(reservations.open.len()).unwrap_or(0));
        for reservation in &reservations.open {
            put_i64(out, reservation.id);
            put_i64(out, reservation.estimate);
            put_i64(out, reservation.ends_ms);
        }
    }
}

/// A payload of encoding version 1.
fn decode_v1(bytes: &[u8]) -> Option<Bucket> {
    let mut reader = Reader::new(bytes);
    let params = BucketParams {
        capacity: reader.i64().filter(|&c| c >= 1)?,
        refill_amount: reader.i64().filter(|&a| a >= 0)?,
        refill_period_ms: reader.i64().filter(|&p| p >= 1)?,
    };
    let level = reader.i128()?;
    valid_level(&params, level)?;
    let updated_ms = reader.i64().filter(|&t| t >= 0)?;
    let state = BucketState {
        params,
        level,
        updated_ms,
    };
    let reserved = !reader.is_empty();
    with_tail(state, reader, reserved)
}

// SAFETY: the data type is made with type_methods of this type alone.
unsafe impl Stored for Bucket {
    const KIND: &'static CStr = c"tokenbucket";

    fn data_type() -> &'static RedisType {
        &BUCKET_TYPE
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let record = record_of(&self.state());
        let Some((&header, numbers)) = record.as_slice().split_first() else {
            return;
        };
        let reservations = self.reservations();
        // Reservations add a multiple of 8 bytes: the record decides.
        let padded = record.len.is_multiple_of(8);
        let mut header = header;
        if reservations.is_some() {
            header |= RESERVED;
        }
        if padded {
            header |= PADDED;
        }
        out.push(header);
        if padded {
            out.push(0);
        }
        out.extend_from_slice(numbers);
        put_reservations(out, reservations);
    }

    /// Encoding version 1, which every earlier build reads.
    fn restore_payload(&self, out: &mut Vec<u8>) {
        let state = self.state();
        put_i64(out, state.params.capacity);
        put_i64(out, state.params.refill_amount);
        put_i64(out, state.params.refill_period_ms);
        put_i128(out, state.level);
        put_i64(out, state.updated_ms);
        put_reservations(out, self.reservations());
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len().is_multiple_of(8) {
            return decode_v1(bytes);
        }
        let (&header, rest) = bytes.split_first()?;
        if header & !(SECONDS | FRACTION | RESERVED | PADDED) != 0 {
            return None;
        }
        let rest = if header & PADDED != 0 {
            rest.strip_prefix(&[0])?
        } else {
            rest
        };
        let (state, rest) = unpack(header, rest)?;
        let bucket = with_tail(state, Reader::new(rest), header & RESERVED != 0)?;
        // Each bucket has one encoding: anything else is not one.
        let mut canonical = Vec::with_capacity(bytes.len());
        bucket.encode(&mut canonical);
        (canonical == bytes).then_some(bucket)
    }

    fn heap_size(&self) -> usize {
        match &self.0 {
            Held::Large(large) => {
                let open = large.reservations.as_ref().map_or(0, |r| r.open.capacity());
                std::mem::size_of::<Large>() + open * std::mem::size_of::<Reservation>()
            }
            held => held.record_heap_size().unwrap_or_default(),
        }
    }

    fn live_keys() -> &'static LiveKeys {
        static BUCKET_KEYS: LiveKeys = LiveKeys::new();
        &BUCKET_KEYS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(capacity: i64, amount: i64, period: i64, level: i128) -> BucketState {
        BucketState {
            params: BucketParams {
                capacity,
                refill_amount: amount,
                refill_period_ms: period,
            },
            level,
            updated_ms: 1_760_000_000_000,
        }
    }

    fn sample_state() -> BucketState {
        state(10, 3, 1000, 7_333)
    }

    fn sample() -> Bucket {
        Bucket::new(sample_state())
    }

    fn encoded(bucket: &Bucket) -> Vec<u8> {
        let mut bytes = Vec::new();
        bucket.encode(&mut bytes);
        bytes
    }

    fn v1(bucket: &Bucket) -> Vec<u8> {
        let mut bytes = Vec::new();
        bucket.restore_payload(&mut bytes);
        bytes
    }

    fn with_reservations(ids: &[i64]) -> Bucket {
        let mut bucket = sample();
        bucket.change_reservations(|reservations| {
            *reservations = Reservations {
                last_id: 9,
                open: ids
                    .iter()
                    .map(|&id| Reservation {
                        id,
                        estimate: 2,
                        ends_ms: 5,
                    })
                    .collect(),
            }
        });
        bucket
    }

    /// Buckets of every size, in the form each is held in.
    fn forms() -> Vec<(BucketState, &'static str)> {
        let max = i64::MAX;
        vec![
            (state(1000, 1, 3_600_000, 999 * 3_600_000), "small"),
            (state(10, 1, 1000, 0), "small"),
            (
                state(1000, 1, 3_600_000, 999 * 3_600_000 + 1_234_567),
                "medium",
            ),
            (
                state(1_000_000_000, 1, 3_600_000, 3_599_999_999_999_999),
                "medium",
            ),
            (state(100_000, 1000, 60_000, 5_999_999_999), "medium"),
            (state(10, 1, 1000, -30_000), "small"),
            (state(10, 1, 7, -i128::from(max) * 7), "medium"),
            (
                state(max, max, max, i128::from(max) * i128::from(max)),
                "large",
            ),
            (state(max, 1, max, i128::from(max) * 3 + 5), "large"),
        ]
    }

    #[test]
    fn held_in_16_bytes_in_the_smallest_form() {
        assert_eq!(std::mem::size_of::<Bucket>(), 16);
        for (state, form) in forms() {
            let bucket = Bucket::new(state);
            assert_eq!(bucket.state(), state, "{form}");
            let held = match bucket.0 {
                Held::Small(_) => "small",
                Held::Medium(..) => "medium",
                Held::Large(_) => "large",
            };
            assert_eq!(held, form, "{state:?}");
        }
    }

    #[test]
    fn set_state_moves_between_forms_and_keeps_reservations() {
        let mut bucket = sample();
        for (state, _) in forms().into_iter().chain(forms().into_iter().rev()) {
            bucket.set_state(state);
            assert_eq!(bucket, Bucket::new(state));
        }
        let mut reserved = with_reservations(&[4]);
        reserved.set_state(sample_state());
        assert_eq!(reserved.state(), sample_state());
        assert_eq!(reserved.reservations().map(|r| r.open.len()), Some(1));
    }

    #[test]
    fn round_trips_in_both_encodings() {
        let mut buckets: Vec<Bucket> = forms().into_iter().map(|(s, _)| Bucket::new(s)).collect();
        buckets.push(with_reservations(&[4, 9]));
        buckets.push(with_reservations(&[]));
        for bucket in buckets {
            let compact = encoded(&bucket);
            assert_ne!(compact.len() % 8, 0, "{bucket:?}");
            assert_eq!(Bucket::decode(&compact).as_ref(), Some(&bucket));
            let old = v1(&bucket);
            assert_eq!(old.len() % 8, 0);
            assert_eq!(Bucket::decode(&old).as_ref(), Some(&bucket));
        }
        assert_eq!(v1(&sample()).len(), 48);
        assert!(encoded(&sample()).len() < 16);
    }

    #[test]
    fn rejects_truncated_trailing_and_invalid() {
        for bytes in [v1(&sample()), encoded(&sample())] {
            for len in 0..bytes.len() {
                assert_eq!(Bucket::decode(&bytes[..len]), None, "{len}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(Bucket::decode(&longer), None);
        }
        let mut zero_capacity = v1(&sample());
        zero_capacity[..8].copy_from_slice(&0i64.to_le_bytes());
        assert_eq!(Bucket::decode(&zero_capacity), None);
        let mut overfull = v1(&sample());
        overfull[24..40].copy_from_slice(&10_001i128.to_le_bytes());
        assert_eq!(Bucket::decode(&overfull), None);
        let unordered = with_reservations(&[9, 4]);
        assert_eq!(Bucket::decode(&v1(&unordered)), None);
        assert_eq!(Bucket::decode(&encoded(&unordered)), None);
        let mut unknown_flag = encoded(&sample());
        unknown_flag[0] |= 16;
        assert_eq!(Bucket::decode(&unknown_flag), None);
        // A fraction of 0 or of a whole period is not one.
        let mut record = record_of(&sample_state());
        let fraction_at = record.len - 7;
        record.bytes[fraction_at] = 0;
        assert_eq!(Bucket::decode(record.as_slice()), None);
    }
}
