//! `rl-quotas`: the calendar quota's Redis data type.
//!
//! A quota is held as a compact record of varints
//! ([`crate::algo::varint`], held as [`super::held`] holds a bucket's): its
//! calendar's place among the calendars keys hold (see [`Places`]), then
//! limit, used and last_ms. One that does not fit in 23 bytes, or whose
//! calendar has no place, is held in full behind one box instead.
//!
//! Encoding (version 1, little-endian): limit i64, used i64, last_ms i64,
//! period i64 (its place in minute, hour, day, week, month, quarter, year),
//! has_anchor i64 (0 or 1), anchor_ms i64 (0 without one), then the zone's
//! name (`UTC`, `+hh:mm`, or its IANA name). Keys of the same period, zone
//! and anchor share one calendar in memory.

use std::collections::{BTreeSet, HashMap};
use std::ffi::CStr;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use redis_module::native_types::RedisType;

use super::codec::{put_i64, Reader};
use super::held::{Held, Record, Varints};
use crate::algo::quota::{Calendar, Period, QuotaParams, QuotaState, Usage};
use crate::ffi::data_type::{type_methods, Stored, ENCODING_VERSION};
use crate::stats::LiveKeys;

pub static QUOTA_TYPE: RedisType =
    RedisType::new("rl-quotas", ENCODING_VERSION, type_methods::<Quota>());

/// What a quota key holds: 16 bytes, as a bucket key.
#[derive(Debug)]
pub struct Quota(Held<QuotaState>);

/// The calendars that quota keys hold, each at a place of its own while any
/// key holds it, so that a key names its calendar in a varint of a byte or
/// two instead of a pointer of eight.
#[derive(Default)]
struct Places {
    /// Each place's calendar and how many keys hold it; `None` when free.
    held: Vec<Option<(Arc<Calendar>, usize)>>,
    /// The free places before the last held one: the lowest is taken first.
    free: BTreeSet<u32>,
    /// Each held calendar's place, by its address.
    by_address: HashMap<usize, u32>,
}

static PLACES: LazyLock<Mutex<Places>> = LazyLock::new(Default::default);

fn places() -> MutexGuard<'static, Places> {
    PLACES.lock().unwrap_or_else(PoisonError::into_inner)
}

fn address(calendar: &Arc<Calendar>) -> usize {
    Arc::as_ptr(calendar).addr()
}

impl Places {
    /// The place of `calendar`, held by one more key; `None` once every
    /// u32 is a place.
    fn take(&mut self, calendar: &Arc<Calendar>) -> Option<u32> {
        if let Some(&place) = self.by_address.get(&address(calendar)) {
            self.retain(place);
            return Some(place);
        }
        let place = match self.free.pop_first() {
            Some(place) => place,
            None => u32::try_from(self.held.len()).ok()?,
        };
        let entry = Some((Arc::clone(calendar), 1));
        match self.held.get_mut(place as usize) {
            Some(free) => *free = entry,
            None => self.held.push(entry),
        }
        self.by_address.insert(address(calendar), place);
        Some(place)
    }

    /// One more key holds the calendar at `place`.
    fn retain(&mut self, place: u32) {
        if let Some(Some((_, keys))) = self.held.get_mut(place as usize) {
            *keys += 1;
        }
    }

    /// One key fewer holds the calendar at `place`.
    fn release(&mut self, place: u32) {
        let Some(entry) = self.held.get_mut(place as usize) else {
            return;
        };
        if let Some((calendar, keys)) = entry {
            *keys = keys.saturating_sub(1);
            if *keys > 0 {
                return;
            }
            self.by_address.remove(&address(calendar));
            *entry = None;
        }
        self.free.insert(place);
        while let Some(None) = self.held.last() {
            self.held.pop();
            self.free.pop_last();
        }
    }

    fn calendar(&self, place: u32) -> Option<&Arc<Calendar>> {
        self.held.get(place as usize)?.as_ref().map(|(c, _)| c)
    }
}

/// What a record holds, in its order.
struct RecordNumbers {
    place: u32,
    limit: i64,
    usage: Usage,
}

/// The record of `state` with its calendar at `place`; `None` for numbers
/// a record does not hold.
fn record_of(place: u32, state: &QuotaState) -> Option<Record> {
    let mut record = Record::new();
    record.put(u64::from(place));
    record.put(u64::try_from(state.params.limit).ok()?);
    record.put(u64::try_from(state.used).ok()?);
    record.put(u64::try_from(state.last_ms).ok()?);
    Some(record)
}

impl Quota {
    pub fn new(state: QuotaState) -> Quota {
        let mut places = places();
        if let Some(place) = places.take(&state.params.calendar) {
            let record = record_of(place, &state);
            if let Some(held) = record.and_then(|r| Held::of(r.as_slice())) {
                return Quota(held);
            }
            places.release(place);
        }
        Quota(Held::Large(Box::new(state)))
    }

    /// The place of the calendar a held record names (in its first 5
    /// bytes).
    fn place(&self) -> Option<u32> {
        Varints(self.0.head()?)
            .next()
            .and_then(|place| u32::try_from(place).ok())
    }

    /// The state held; `None` only if its calendar has no place, which
    /// [`Quota::set_state`] never leaves.
    pub fn state(&self) -> Option<QuotaState> {
        let Some(held) = self.record_numbers() else {
            return match &self.0 {
                Held::Large(state) => Some(QuotaState::clone(state)),
                _ => None,
            };
        };
        let calendar = Arc::clone(places().calendar(held.place)?);
        Some(QuotaState {
            params: QuotaParams {
                limit: held.limit,
                calendar,
            },
            used: held.usage.used,
            last_ms: held.usage.last_ms,
        })
    }

    /// What a decision reads of the state held: no calendar, so no lock.
    pub fn usage(&self) -> Option<Usage> {
        match (self.record_numbers(), &self.0) {
            (Some(held), _) => Some(held.usage),
            (None, Held::Large(state)) => Some(state.usage()),
            (None, _) => None,
        }
    }

    /// The numbers of a state held as a record; `None` when it is held in
    /// full (or a record does not read back).
    fn record_numbers(&self) -> Option<RecordNumbers> {
        let record = self.0.record()?;
        let mut numbers = Varints(&record);
        Some(RecordNumbers {
            place: u32::try_from(numbers.next()?).ok()?,
            limit: numbers.next_i64()?,
            usage: Usage {
                used: numbers.next_i64()?,
                last_ms: numbers.next_i64()?,
            },
        })
    }

    pub fn set_state(&mut self, state: QuotaState) {
        let mut places = places();
        let held = self.place();
        let calendar = &state.params.calendar;
        let place = match held {
            Some(place)
                if places
                    .calendar(place)
                    .is_some_and(|c| Arc::ptr_eq(c, calendar)) =>
            {
                Some(place)
            }
            _ => {
                if let Some(place) = held {
                    places.release(place);
                }
                places.take(calendar)
            }
        };
        if let Some(place) = place {
            let record = record_of(place, &state);
            if record.is_some_and(|r| self.0.hold(r.as_slice())) {
                return;
            }
            places.release(place);
        }
        self.0 = Held::Large(Box::new(state));
    }
}

impl Clone for Quota {
    fn clone(&self) -> Quota {
        if let Some(place) = self.place() {
            places().retain(place);
        }
        Quota(self.0.clone())
    }
}

impl Drop for Quota {
    fn drop(&mut self) {
        if let Some(place) = self.place() {
            places().release(place);
        }
    }
}

// SAFETY: the data type is made with type_methods of this type alone.
unsafe impl Stored for Quota {
    const KIND: &'static CStr = c"quota";

    fn data_type() -> &'static RedisType {
        &QUOTA_TYPE
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let Some(state) = self.state() else {
            return;
        };
        let calendar = &state.params.calendar;
        let zone = calendar.zone().name().as_bytes();
        out.reserve(48 + zone.len());
        put_i64(out, state.params.limit);
        put_i64(out, state.used);
        put_i64(out, state.last_ms);
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
        Some(Quota::new(QuotaState {
            params: QuotaParams { limit, calendar },
            used,
            last_ms,
        }))
    }

    fn heap_size(&self) -> usize {
        // The calendar is shared by every key of the same period, zone and
        // anchor.
        match &self.0 {
            Held::Large(_) => std::mem::size_of::<QuotaState>(),
            held => held.record_heap_size().unwrap_or_default(),
        }
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
        Quota::new(state.clone()).encode(&mut bytes);
        bytes
    }

    fn decoded(bytes: &[u8]) -> Option<QuotaState> {
        Quota::decode(bytes).and_then(|quota| quota.state())
    }

    fn state(calendar: &Arc<Calendar>, limit: i64, used: i64, last_ms: i64) -> QuotaState {
        QuotaState {
            params: QuotaParams {
                limit,
                calendar: Arc::clone(calendar),
            },
            used,
            last_ms,
        }
    }

    /// Whether a key holds `calendar` by its place.
    fn placed(calendar: &Arc<Calendar>) -> bool {
        places().by_address.contains_key(&address(calendar))
    }

    /// States of every size, with the heap bytes each is held with.
    fn forms(calendar: &Arc<Calendar>) -> Vec<(QuotaState, usize)> {
        let now = 1_764_806_400_000;
        let max = i64::MAX;
        vec![
            (state(calendar, 1_000_000, 5, now), 0),
            (state(calendar, 1_000_000, 999_999, now), 0),
            (state(calendar, 1_000_000_000_000, 999_999_999_999, now), 16),
            (state(calendar, max, max - 1, now), 32),
            (state(calendar, max, max, max), 32),
        ]
    }

    #[test]
    fn held_in_16_bytes_and_spilled_for_huge_numbers_and_read_back() {
        assert_eq!(std::mem::size_of::<Quota>(), 16);
        let berlin = Calendar::shared(Period::Month, b"Europe/Berlin", None).unwrap();
        for (state, heap) in forms(&berlin) {
            let quota = Quota::new(state.clone());
            assert_eq!(quota.heap_size(), heap, "{state:?}");
            assert_eq!(quota.state().as_ref(), Some(&state));
            assert_eq!(quota.usage(), Some(state.usage()), "{state:?}");
            assert_eq!(quota.clone().state().as_ref(), Some(&state));
            assert_eq!(decoded(&encoded(&state)), Some(state));
        }
    }

    #[test]
    fn set_state_moves_between_forms_and_calendars_and_gives_places_back() {
        let day = Calendar::shared(Period::Day, b"UTC", Some(123_456_789)).unwrap();
        let week = Calendar::shared(Period::Week, b"UTC", Some(123_456_789)).unwrap();
        let mut quota = Quota::new(forms(&day)[0].0.clone());
        assert!(placed(&day));
        let copy = quota.clone();
        let all = forms(&day).into_iter().chain(forms(&week)).map(|(s, _)| s);
        for state in all.clone().chain(all.rev()) {
            quota.set_state(state.clone());
            assert_eq!(quota.state(), Some(state));
        }
        quota.set_state(forms(&week)[0].0.clone());
        drop(copy);
        assert!(!placed(&day) && placed(&week));
        quota.set_state(forms(&week)[4].0.clone());
        assert!(!placed(&week), "held in full, it names no place");
        quota.set_state(forms(&day)[0].0.clone());
        drop(quota);
        assert!(!placed(&day) && !placed(&week));
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
            assert_eq!(decoded(&bytes), Some(state.clone()));
            assert!(Quota::decode(&bytes[..47]).is_none());
        }
        let state = decoded(&encoded(&QuotaState {
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
        assert!(Quota::decode(&unknown_zone).is_none());
        let mut unknown_period = bytes.clone();
        unknown_period[24..32].copy_from_slice(&7i64.to_le_bytes());
        assert!(Quota::decode(&unknown_period).is_none());
        let mut stray_anchor = bytes.clone();
        stray_anchor[40..48].copy_from_slice(&5i64.to_le_bytes());
        assert!(Quota::decode(&stray_anchor).is_none());
        let mut negative_use = bytes;
        negative_use[8..16].copy_from_slice(&(-1i64).to_le_bytes());
        assert!(Quota::decode(&negative_use).is_none());
    }
}
