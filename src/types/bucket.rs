//! `rl-bucket`: the token bucket's Redis data type.
//!
//! Encoding (version 1, 48 bytes, little-endian): capacity i64,
//! refill_amount i64, refill_period_ms i64, level i128, updated_ms i64.

use std::ffi::CStr;

use redis_module::native_types::RedisType;

use super::codec::{put_i128, put_i64, Reader};
use super::{type_methods, Stored, ENCODING_VERSION};
use crate::algo::token_bucket::{BucketParams, BucketState};

pub static BUCKET_TYPE: RedisType =
    RedisType::new("rl-bucket", ENCODING_VERSION, type_methods::<BucketState>());

impl Stored for BucketState {
    const KIND: &'static CStr = c"tokenbucket";

    fn data_type() -> &'static RedisType {
        &BUCKET_TYPE
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_i64(out, self.params.capacity);
        put_i64(out, self.params.refill_amount);
        put_i64(out, self.params.refill_period_ms);
        put_i128(out, self.level);
        put_i64(out, self.updated_ms);
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
        reader.rest().is_empty().then_some(BucketState {
            params,
            level,
            updated_ms,
        })
    }

    fn heap_size(&self) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BucketState {
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

    #[test]
    fn round_trips() {
        let mut bytes = Vec::new();
        sample().encode(&mut bytes);
        assert_eq!(bytes.len(), 48);
        assert_eq!(BucketState::decode(&bytes), Some(sample()));
    }

    #[test]
    fn rejects_truncated_trailing_and_invalid() {
        let mut bytes = Vec::new();
        sample().encode(&mut bytes);
        assert_eq!(BucketState::decode(&bytes[..47]), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(BucketState::decode(&longer), None);
        let mut zero_capacity = bytes.clone();
        zero_capacity[..8].copy_from_slice(&0i64.to_le_bytes());
        assert_eq!(BucketState::decode(&zero_capacity), None);
        let mut overfull = sample();
        overfull.level = 10_001;
        let mut overfull_bytes = Vec::new();
        overfull.encode(&mut overfull_bytes);
        assert_eq!(BucketState::decode(&overfull_bytes), None);
    }
}
