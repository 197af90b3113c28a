//! `rl-quotas`: the calendar quota's Redis data type.
//!
//! Encoding (version 1, little-endian): limit i64, used i64, last_ms i64,
//! period i64 (its place in minute, hour, day, week, month, quarter, year),
//! has_anchor i64 (0 or 1), anchor_ms i64 (0 without one), then the zone's
//! name (`UTC`, `+hh:mm`, or its IANA name). Keys of the same period, zone
//! and anchor share one calendar in memory.

use std::ffi::CStr;

use redis_module::native_types::RedisType;

use super::codec::{put_i64, Reader};
use crate::algo::quota::{Calendar, Period, QuotaParams, QuotaState};
use crate::ffi::data_type::{type_methods, Stored, ENCODING_VERSION};
use crate::stats::LiveKeys;

pub static QUOTA_TYPE: RedisType =
    RedisType::new("rl-quotas", ENCODING_VERSION, type_methods::<QuotaState>());

// SAFETY: the data type is made with type_methods of this type alone.
unsafe impl Stored for QuotaState {
    const KIND: &'static CStr = c"quota";

    fn data_type() -> &'static RedisType {
        &QUOTA_TYPE
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let calendar = &self.params.calendar;
        let zone = calendar.zone().name().as_bytes();
        out.reserve(48 + zone.len());
        put_i64(out, self.params.limit);
        put_i64(out, self.used);
        put_i64(out, self.last_ms);
        let period = Period::ALL
            .iter()
            .position(|&p| p == calendar.period())
            .unwrap_or_default();
        put_i64(out, i64::try_from(period).unwrap_or_default());
        put_i64(out, i64::from(calendar.anchor_ms().is_some()));
        put_i64(out, calendar.anchor_ms().unwrap_or_default());
        out.extend_from_slice(zone);
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader::new(bytes);
        let limit = reader.i64().filter(|&l| l >= 1)?;
        let used = reader.i64().filter(|&u| u >= 0)?;
        let last_ms = reader.i64().filter(|&t| t >= 0)?;
        let period = *Period::ALL.get(usize::try_from(reader.i64()?).ok()?)?;
        let anchor_ms = match reader.i64()? {
            0 => reader.i64().filter(|&a| a == 0).map(|_| None)?,
            1 => Some(reader.i64()?),
            _ => return None,
        };
        let calendar = Calendar::shared(period, reader.rest(), anchor_ms).ok()?;
        Some(QuotaState {
            params: QuotaParams { limit, calendar },
            used,
            last_ms,
        })
    }

    fn heap_size(&self) -> usize {
        // The calendar is shared by every key of the same period, zone and
        // anchor.
        0
    }

    fn live_keys() -> &'static LiveKeys {
        static QUOTA_KEYS: LiveKeys = LiveKeys::new();
        &QUOTA_KEYS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(state: &QuotaState) -> Vec<u8> {
        let mut bytes = Vec::new();
        state.encode(&mut bytes);
        bytes
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        for (period, zone, anchor) in [
            (
                Period::Month,
                &b"Europe/Berlin"[..],
                Some(1_769_853_600_000),
            ),
            (Period::Minute, b"-09:30", None),
            (Period::Year, b"UTC", Some(-1)),
        ] {
            let state = QuotaState {
                params: QuotaParams {
                    limit: 1_000_000,
                    calendar: Calendar::shared(period, zone, anchor).unwrap(),
                },
                used: 7_500,
                last_ms: 1_764_806_400_000,
            };
            let bytes = encoded(&state);
            assert_eq!(QuotaState::decode(&bytes), Some(state.clone()));
            assert_eq!(QuotaState::decode(&bytes[..47]), None);
        }
        let state = QuotaState::decode(&encoded(&QuotaState {
            params: QuotaParams {
                limit: 5,
                calendar: Calendar::shared(Period::Day, b"UTC", None).unwrap(),
            },
            used: 1,
            last_ms: 0,
        }))
        .unwrap();
        let bytes = encoded(&state);
        let mut unknown_zone = bytes[..48].to_vec();
        unknown_zone.extend_from_slice(b"Mars/Olympus");
        assert_eq!(QuotaState::decode(&unknown_zone), None);
        let mut unknown_period = bytes.clone();
        unknown_period[24..32].copy_from_slice(&7i64.to_le_bytes());
        assert_eq!(QuotaState::decode(&unknown_period), None);
        let mut stray_anchor = bytes.clone();
        stray_anchor[40..48].copy_from_slice(&5i64.to_le_bytes());
        assert_eq!(QuotaState::decode(&stray_anchor), None);
        let mut negative_use = bytes;
        negative_use[8..16].copy_from_slice(&(-1i64).to_le_bytes());
        assert_eq!(QuotaState::decode(&negative_use), None);
    }
}
