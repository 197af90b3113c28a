//! `rl-window`: the window's Redis data type.
//!
//! Encoding (version 1, little-endian): limit i64, window_ms i64,
//! precision_ms i64 (0 for a fixed window), last_ms i64, oldest slot i64,
//! then the slots as [`SlotLog`] stores them.

use std::ffi::CStr;

use redis_module::native_types::RedisType;

use super::codec::{put_i64, Reader};
use crate::algo::slot_log::SlotLog;
use crate::algo::window::{WindowParams, WindowState, FIXED};
use crate::ffi::data_type::{type_methods, Stored, ENCODING_VERSION};
use crate::stats::LiveKeys;

pub static WINDOW_TYPE: RedisType =
    RedisType::new("rl-window", ENCODING_VERSION, type_methods::<WindowState>());

// SAFETY: the data type is made with type_methods of this type alone.
unsafe impl Stored for WindowState {
    const KIND: &'static CStr = c"window";

    fn data_type() -> &'static RedisType {
        &WINDOW_TYPE
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let (oldest, slots) = self.slots.to_bytes();
        out.reserve(40 + slots.len());
        put_i64(out, self.params.limit);
        put_i64(out, self.params.window_ms);
        put_i64(out, self.params.precision_ms);
        put_i64(out, self.last_ms);
        put_i64(out, oldest);
        out.extend_from_slice(&slots);
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader::new(bytes);
        let limit = reader.i64().filter(|&l| l >= 1)?;
        let window_ms = reader.i64().filter(|&w| w >= 1)?;
        let precision_ms = reader
            .i64()
            .filter(|&p| p == FIXED || (1..=window_ms).contains(&p))?;
        let params = WindowParams {
            limit,
            window_ms,
            precision_ms,
        };
        let last_ms = reader.i64().filter(|&t| t >= 0)?;
        let oldest = reader.i64().filter(|&s| s >= 0)?;
        let slots = SlotLog::from_bytes(oldest, reader.rest()).ok()?;
        Some(WindowState {
            params,
            last_ms,
            slots,
        })
    }

    fn heap_size(&self) -> usize {
        self.slots.heap_size()
    }

    fn live_keys() -> &'static LiveKeys {
        static WINDOW_KEYS: LiveKeys = LiveKeys::new();
        &WINDOW_KEYS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(precision_ms: i64) -> WindowState {
        let mut slots = SlotLog::default();
        for (slot, cost) in [(3, 2), (4, 1), (9, 700)] {
            slots.add(slot, cost);
        }
        WindowState {
            params: WindowParams {
                limit: 1000,
                window_ms: 60_000,
                precision_ms,
            },
            last_ms: 9_500,
            slots,
        }
    }

    fn encoded(state: &WindowState) -> Vec<u8> {
        let mut bytes = Vec::new();
        state.encode(&mut bytes);
        bytes
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        let state = sample(1_000);
        let bytes = encoded(&state);
        assert_eq!(WindowState::decode(&bytes), Some(state.clone()));
        assert_eq!(WindowState::decode(&bytes[..39]), None);
        let mut broken = bytes.clone();
        broken.push(0x80);
        assert_eq!(WindowState::decode(&broken), None);
        let mut precision_over_window = bytes.clone();
        precision_over_window[16..24].copy_from_slice(&60_001i64.to_le_bytes());
        assert_eq!(WindowState::decode(&precision_over_window), None);
        let mut negative_time = bytes.clone();
        negative_time[24..32].copy_from_slice(&(-1i64).to_le_bytes());
        assert_eq!(WindowState::decode(&negative_time), None);
        let fixed = WindowState {
            slots: SlotLog::default(),
            ..sample(FIXED)
        };
        assert_eq!(WindowState::decode(&encoded(&fixed)), Some(fixed));
    }
}
