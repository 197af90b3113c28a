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
use super::{type_methods, Stored, ENCODING_VERSION};
use crate::algo::ids::MAX_ID;
use crate::algo::reservations::{Reservation, Reservations, MAX_OPEN};
use crate::algo::token_bucket::{BucketParams, BucketState};

pub static BUCKET_TYPE: RedisType =
    RedisType::new("rl-bucket", ENCODING_VERSION, type_methods::<Bucket>());

/// What a bucket key holds. Reservations are boxed so that buckets which
/// never reserve pay one pointer for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub state: BucketState,
    pub reservations: Option<Box<Reservations>>,
}

impl Stored for Bucket {
    const KIND: &'static CStr = c"tokenbucket";

    fn data_type() -> &'static RedisType {
        &BUCKET_TYPE
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let state = &self.state;
        put_i64(out, state.params.capacity);
        put_i64(out, state.params.refill_amount);
        put_i64(out, state.params.refill_period_ms);
        put_i128(out, state.level);
        put_i64(out, state.updated_ms);
        if let Some(reservations) = &self.reservations {
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
        if reader.is_empty() {
            return Some(Bucket {
                state,
                reservations: None,
            });
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
        reader.is_empty().then_some(Bucket {
            state,
            reservations: Some(Box::new(Reservations { last_id, open })),
        })
    }

    fn heap_size(&self) -> usize {
        self.reservations.as_ref().map_or(0, |r| {
            std::mem::size_of::<Reservations>()
                + r.open.capacity() * std::mem::size_of::<Reservation>()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Bucket {
        Bucket {
            state: BucketState {
                params: BucketParams {
                    capacity: 10,
                    refill_amount: 3,
                    refill_period_ms: 1000,
                },
                level: 7_333,
                updated_ms: 1_700_000_000_000,
            },
            reservations: None,
        }
    }

    fn encoded(bucket: &Bucket) -> Vec<u8> {
        let mut bytes = Vec::new();
        bucket.encode(&mut bytes);
        bytes
    }

    #[test]
    fn round_trips() {
        let bytes = encoded(&sample());
        assert_eq!(bytes.len(), 48);
        assert_eq!(Bucket::decode(&bytes), Some(sample()));
        let reserved = Bucket {
            reservations: Some(Box::new(Reservations {
                last_id: 9,
                open: vec![
                    Reservation {
                        id: 4,
                        estimate: 2,
                        ends_ms: 5,
                    },
                    Reservation {
                        id: 9,
                        estimate: 1,
                        ends_ms: 7,
                    },
                ],
            })),
            ..sample()
        };
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
        let mut overfull = sample();
        overfull.state.level = 10_001;
        assert_eq!(Bucket::decode(&encoded(&overfull)), None);
        let unordered = Bucket {
            reservations: Some(Box::new(Reservations {
                last_id: 9,
                open: vec![
                    Reservation {
                        id: 9,
                        estimate: 2,
                        ends_ms: 5,
                    },
                    Reservation {
                        id: 4,
                        estimate: 1,
                        ends_ms: 7,
                    },
                ],
            })),
            ..sample()
        };
        assert_eq!(Bucket::decode(&encoded(&unordered)), None);
    }
}
