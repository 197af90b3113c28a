//! `rl-sldlog`: the sliding log's Redis data type.
//!
//! Encoding (version 1, little-endian): limit i64, window_ms i64,
//! oldest_ms i64, then the records as [`RecordLog`] stores them.

use std::ffi::CStr;

use redis_module::native_types::RedisType;

use super::codec::{put_i64, Reader};
use crate::algo::record_log::RecordLog;
use crate::algo::sliding_log::{LogParams, LogState};
use crate::ffi::data_type::{type_methods, Stored, ENCODING_VERSION};
use crate::stats::LiveKeys;

pub static LOG_TYPE: RedisType =
    RedisType::new("rl-sldlog", ENCODING_VERSION, type_methods::<LogState>());

// SAFETY: the data type is made with type_methods of this type alone.
unsafe impl Stored for LogState {
    const KIND: &'static CStr = c"slidelog";

    fn data_type() -> &'static RedisType {
        &LOG_TYPE
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let (oldest_ms, records) = self.records.to_bytes();
        out.reserve(24 + records.len());
        put_i64(out, self.params.limit);
        put_i64(out, self.params.window_ms);
        put_i64(out, oldest_ms);
        out.extend_from_slice(records);
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader::new(bytes);
        let params = LogParams {
            limit: reader.i64().filter(|&l| l >= 1)?,
            window_ms: reader.i64().filter(|&w| w >= 1)?,
        };
        let oldest_ms = reader.i64().filter(|&t| t >= 0)?;
        let records = RecordLog::from_bytes(oldest_ms, reader.rest()).ok()?;
        Some(LogState { params, records })
    }

    fn heap_size(&self) -> usize {
        self.records.heap_size()
    }

    fn live_keys() -> &'static LiveKeys {
        static LOG_KEYS: LiveKeys = LiveKeys::new();
        &LOG_KEYS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let mut records = RecordLog::default();
        for t in [100, 100, 250, 90_000] {
            records.push(t, 2);
        }
        let state = LogState {
            params: LogParams {
                limit: 100,
                window_ms: 60_000,
            },
            records,
        };
        let mut bytes = Vec::new();
        state.encode(&mut bytes);
        assert_eq!(LogState::decode(&bytes), Some(state.clone()));
        assert_eq!(LogState::decode(&bytes[..23]), None);
        let mut broken = bytes.clone();
        broken.push(0x80);
        assert_eq!(LogState::decode(&broken), None);
    }
}
