//! `rl-leases`: concurrency leases.
//!
//! Encoding (version 1, little-endian): limit i64, updated_ms i64,
//! last_id i64, count i64, then per lease id i64 and ends_ms i64.

use std::ffi::CStr;

use redis_module::native_types::RedisType;

use super::codec::{put_i64, Reader};
use crate::algo::ids::MAX_ID;
use crate::algo::leases::{Lease, LeaseState, MAX_LEASE_LIMIT};
use crate::ffi::data_type::{type_methods, Stored, ENCODING_VERSION};
use crate::stats::LiveKeys;

pub static LEASES_TYPE: RedisType =
    RedisType::new("rl-leases", ENCODING_VERSION, type_methods::<LeaseState>());

// SAFETY: the data type is made with type_methods of this type alone.
unsafe impl Stored for LeaseState {
    const KIND: &'static CStr = c"leases";

    fn data_type() -> &'static RedisType {
        &LEASES_TYPE
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_i64(out, self.limit);
        put_i64(out, self.updated_ms);
        put_i64(out, self.last_id);
        put_i64(out, i64::try_from(self.leases.len()).unwrap_or(0));
        for lease in &self.leases {
            put_i64(out, lease.id);
            put_i64(out, lease.ends_ms);
        }
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader::new(bytes);
        let limit = reader.i64().filter(|l| (1..=MAX_LEASE_LIMIT).contains(l))?;
        let updated_ms = reader.i64().filter(|&t| t >= 0)?;
        let last_id = reader.i64().filter(|id| (0..=MAX_ID).contains(id))?;
        let count = reader
            .i64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n as i64 <= MAX_LEASE_LIMIT)?;
        let mut leases = Vec::with_capacity(count);
        let mut previous_id = 0;
        for _ in 0..count {
            let lease = Lease {
                id: reader
                    .i64()
                    .filter(|&id| id > previous_id && id <= last_id)?,
                ends_ms: reader.i64()?,
            };
            previous_id = lease.id;
            leases.push(lease);
        }
        reader.is_empty().then_some(LeaseState {
            limit,
            updated_ms,
            last_id,
            leases,
        })
    }

    fn heap_size(&self) -> usize {
        self.leases.capacity() * std::mem::size_of::<Lease>()
    }

    fn live_keys() -> &'static LiveKeys {
        static LEASES_KEYS: LiveKeys = LiveKeys::new();
        &LEASES_KEYS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let state = LeaseState {
            limit: 5,
            updated_ms: 100,
            last_id: 12,
            leases: vec![
                Lease {
                    id: 3,
                    ends_ms: 900,
                },
                Lease {
                    id: 12,
                    ends_ms: 400,
                },
            ],
        };
        let mut bytes = Vec::new();
        state.encode(&mut bytes);
        assert_eq!(LeaseState::decode(&bytes), Some(state));
        assert_eq!(LeaseState::decode(&bytes[..bytes.len() - 1]), None);
        let mut too_many = bytes.clone();
        too_many[24..32].copy_from_slice(&3i64.to_le_bytes());
        assert_eq!(LeaseState::decode(&too_many), None);
    }
}
