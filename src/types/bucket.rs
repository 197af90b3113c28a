//! `rl-bucket`: the token bucket's Redis data type, with the reservations of
//! keys that use them.
//!
//! Encoding (version 1, little-endian): capacity i64, refill_amount i64,
//! refill_period_ms i64, level i128, updated_ms i64 (48 bytes); then, only
//! for a bucket that has reserved: last_id i64, count i64, and per open
//! reservation id i64, estimate i64, ends_ms i64.

use std::ffi::CStr;

use redis_module::native_types::RedisType;

use super::codec::{put_i128, put_i64, Reader};
use crate::algo::ids::MAX_ID;
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

/// What a bucket key holds, packed into 48 bytes: the level is kept as an
/// i64, and what few keys need (a level beyond i64, reservations) lives
/// behind one optional box, so that other buckets pay one pointer for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    params: BucketParams,
    /// The level when it fits in an i64 (see [`Extra::wide_level`]).
    level: i64,
    updated_ms: i64,
    extra: Option<Box<Extra>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Extra {
    /// The level, when it does not fit in an i64.
    wide_level: Option<i128>,
    reservations: Option<Reservations>,
}

impl Bucket {
    pub fn new(state: BucketState) -> Self {
        let mut bucket = Bucket {
            params: state.params,
            level: 0,
            updated_ms: state.updated_ms,
            extra: None,
        };
        bucket.set_state(state);
        bucket
    }

    pub fn state(&self) -> BucketState {
        BucketState {
            params: self.params,
            level: self
                .extra
                .as_ref()
                .and_then(|e| e.wide_level)
                .unwrap_or(i128::from(self.level)),
            updated_ms: self.updated_ms,
        }
    }

    /// Stores new tokens and parameters, keeping the reservations.
    pub fn set_state(&mut self, state: BucketState) {
        self.params = state.params;
        self.updated_ms = state.updated_ms;
        match i64::try_from(state.level) {
            Ok(level) => {
                self.level = level;
                if let Some(extra) = self.extra.as_mut() {
                    extra.wide_level = None;
                }
            }
            Err(_) => self.extra_mut().wide_level = Some(state.level),
        }
        if self.extra.as_deref() == Some(&Extra::default()) {
            self.extra = None;
        }
    }

    pub fn reservations(&self) -> Option<&Reservations> {
        self.extra.as_ref().and_then(|e| e.reservations.as_ref())
    }

    /// The reservations, created empty for a bucket that never reserved.
    pub fn reservations_mut(&mut self) -> &mut Reservations {
        self.extra_mut()
            .reservations
            .get_or_insert_with(Reservations::default)
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }
}

// SAFETY: the data type is made with type_methods of this type alone.
unsafe impl Stored for Bucket {
    const KIND: &'static CStr = c"tokenbucket";

    fn data_type() -> &'static RedisType {
        &BUCKET_TYPE
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let state = self.state();
        put_i64(out, state.params.capacity);
        put_i64(out, state.params.refill_amount);
        put_i64(out, state.params.refill_period_ms);
        put_i128(out, state.level);
        put_i64(out, state.updated_ms);
        if let Some(reservations) = self.reservations() {
            put_i64(out, reservations.last_id);
            put_i64(out, i64::try_from(reservations.open.len()).unwrap_or(0));
            for reservation in &reservations.open {
                put_i64(out, reservation.id);
                put_i64(out, reservation.estimate);
                put_i64(out, reservation.ends_ms);
            }
        }
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader::new(bytes);
        let params = BucketParams {
            capacity: reader.i64().filter(|&c| c >= 1)?,
            refill_amount: reader.i64().filter(|&a| a >= 0)?,
            refill_period_ms: reader.i64().filter(|&p| p >= 1)?,
        };
        let period = i128::from(params.refill_period_ms);
        let full = i128::from(params.capacity) * period;
        let deepest = -i128::from(i64::MAX) * period;
        let level = reader.i128().filter(|l| (deepest..=full).contains(l))?;
        let updated_ms = reader.i64().filter(|&t| t >= 0)?;
        let state = BucketState {
            params,
            level,
            updated_ms,
        };
        let mut bucket = Bucket::new(state);
        if reader.is_empty() {
            return Some(bucket);
        }
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
        *bucket.reservations_mut() = Reservations { last_id, open };
        reader.is_empty().then_some(bucket)
    }

    fn heap_size(&self) -> usize {
        self.extra.as_ref().map_or(0, |extra| {
            let open = extra.reservations.as_ref().map_or(0, |r| r.open.capacity());
            std::mem::size_of::<Extra>() + open * std::mem::size_of::<Reservation>()
        })
    }

    fn live_keys() -> &'static LiveKeys {
        static BUCKET_KEYS: LiveKeys = LiveKeys::new();
        &BUCKET_KEYS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_state() -> BucketState {
        BucketState {
            params: BucketParams {
                capacity: 10,
                refill_amount: 3,
                refill_period_ms: 1000,
            },
            level: 7_333,
            updated_ms: 1_700_000_000_000,
        }
    }

    fn sample() -> Bucket {
        Bucket::new(sample_state())
    }

    fn encoded(bucket: &Bucket) -> Vec<u8> {
        let mut bytes = Vec::new();
        bucket.encode(&mut bytes);
        bytes
    }

    fn with_reservations(ids: &[i64]) -> Bucket {
        let mut bucket = sample();
        *bucket.reservations_mut() = Reservations {
            last_id: 9,
            open: ids
                .iter()
                .map(|&id| Reservation {
                    id,
                    estimate: 2,
                    ends_ms: 5,
                })
                .collect(),
        };
        bucket
    }

    #[test]
    fn packs_into_48_bytes() {
        assert_eq!(std::mem::size_of::<Bucket>(), 48);
        let wide = BucketState {
            params: BucketParams {
                capacity: i64::MAX,
                refill_amount: 1,
                refill_period_ms: i64::MAX,
            },
            level: i128::from(i64::MAX) * 3,
            updated_ms: 5,
        };
        let mut bucket = Bucket::new(wide);
        assert_eq!(bucket.state(), wide);
        bucket.set_state(sample_state());
        assert_eq!(bucket, sample(), "a level back within i64 drops the box");
    }

    #[test]
    fn round_trips() {
        let bytes = encoded(&sample());
        assert_eq!(bytes.len(), 48);
        assert_eq!(Bucket::decode(&bytes), Some(sample()));
        let reserved = with_reservations(&[4, 9]);
        assert_eq!(Bucket::decode(&encoded(&reserved)), Some(reserved));
    }

    #[test]
    fn rejects_truncated_trailing_and_invalid() {
        let bytes = encoded(&sample());
        assert_eq!(Bucket::decode(&bytes[..47]), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Bucket::decode(&longer), None);
        let mut zero_capacity = bytes.clone();
        zero_capacity[..8].copy_from_slice(&0i64.to_le_bytes());
        assert_eq!(Bucket::decode(&zero_capacity), None);
        let overfull = Bucket::new(BucketState {
            level: 10_001,
            ..sample_state()
        });
        assert_eq!(Bucket::decode(&encoded(&overfull)), None);
        let unordered = with_reservations(&[9, 4]);
        assert_eq!(Bucket::decode(&encoded(&unordered)), None);
    }
}
