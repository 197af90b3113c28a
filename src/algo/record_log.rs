//! A compact, append-only log of (time, cost) records.
//!
//! Records are kept oldest first in one byte buffer as pairs of LEB128
//! varints: the delta in ms from the previous record, then the cost. Each
//! call is its own record, also in the same millisecond (delta 0). A record
//! costs two bytes at typical rates.
//! Dropping old records advances a start offset; the buffer is compacted once
//! more than half of it is dead.

/// Why bytes could not be read back as a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordLog {
    /// Records from `start` on; the delta of the record at `start` is unused.
    bytes: Vec<u8>,
    start: usize,
    oldest_ms: i64,
    newest_ms: i64,
    total_cost: i64,
    records: u32,
}

impl RecordLog {
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Number of records stored.
    #[cfg(test)]
    pub fn len(&self) -> u32 {
        self.records
    }

    /// Sum of the costs of every stored record.
    pub fn total_cost(&self) -> i64 {
        self.total_cost
    }

    /// Time of the oldest record, if any.
    pub fn oldest_ms(&self) -> Option<i64> {
        (!self.is_empty()).then_some(self.oldest_ms)
    }

    /// Time of the newest record, if any.
    pub fn newest_ms(&self) -> Option<i64> {
        (!self.is_empty()).then_some(self.newest_ms)
    }

    /// Records oldest first, as (time ms, cost).
    pub fn iter(&self) -> Records<'_> {
        Records {
            bytes: self.bytes.get(self.start..).unwrap_or(&[]),
            time_ms: self.oldest_ms,
            first: true,
        }
    }

    /// Appends a record. `time_ms` must not be older than the newest record
    /// and `cost` must be positive; the caller guarantees both and that the
    /// total stays within i64.
    pub fn push(&mut self, time_ms: i64, cost: i64) {
        if self.is_empty() {
            self.clear();
            self.oldest_ms = time_ms;
            self.bytes.push(0);
        } else {
            encode_varint(&mut self.bytes, time_ms.abs_diff(self.newest_ms));
        }
        encode_varint(&mut self.bytes, cost.unsigned_abs());
        self.newest_ms = time_ms;
        self.total_cost = self.total_cost.saturating_add(cost);
        self.records += 1;
    }

    /// Drops every record whose time is at or before `cutoff_ms`.
    pub fn drop_through(&mut self, cutoff_ms: i64) {
        while !self.is_empty() && self.oldest_ms <= cutoff_ms {
            let mut records = self.iter();
            let Some((_, cost)) = records.next() else {
                break;
            };
            let consumed = self.bytes.len() - self.start - records.bytes.len();
            let next_time = records.next().map(|(time, _)| time);
            self.total_cost -= cost;
            self.records -= 1;
            self.start += consumed;
            if let Some(next_time) = next_time {
                self.oldest_ms = next_time;
            }
        }
        if self.is_empty() {
            self.clear();
        } else if self.start > self.bytes.len() / 2 {
            self.bytes.drain(..self.start);
            self.start = 0;
            self.bytes.shrink_to(self.bytes.len() * 2);
        }
    }

    fn clear(&mut self) {
        *self = RecordLog {
            bytes: std::mem::take(&mut self.bytes),
            ..RecordLog::default()
        };
        self.bytes.clear();
    }

    /// Heap bytes held by the log.
    pub fn heap_size(&self) -> usize {
        self.bytes.capacity()
    }

    /// The live records as bytes (see [`RecordLog::from_bytes`]).
    pub fn to_bytes(&self) -> (i64, &[u8]) {
        (self.oldest_ms, self.bytes.get(self.start..).unwrap_or(&[]))
    }

    /// Rebuilds a log from [`RecordLog::to_bytes`], checking every record.
    pub fn from_bytes(oldest_ms: i64, bytes: &[u8]) -> Result<Self, Malformed> {
        let mut log = RecordLog {
            bytes: bytes.to_vec(),
            oldest_ms,
            newest_ms: oldest_ms,
            ..RecordLog::default()
        };
        let mut rest = bytes;
        let mut time_ms = oldest_ms;
        let mut first = true;
        while !rest.is_empty() {
            let (delta, used) = decode_varint(rest).ok_or(Malformed)?;
            rest = rest.get(used..).ok_or(Malformed)?;
            if first {
                first = false;
            } else {
                let delta = i64::try_from(delta).map_err(|_| Malformed)?;
                time_ms = time_ms.checked_add(delta).ok_or(Malformed)?;
            }
            let (cost, used) = decode_varint(rest).ok_or(Malformed)?;
            rest = rest.get(used..).ok_or(Malformed)?;
            let cost = i64::try_from(cost).map_err(|_| Malformed)?;
            if cost < 1 {
                return Err(Malformed);
            }
            log.total_cost = log.total_cost.checked_add(cost).ok_or(Malformed)?;
            log.records = log.records.checked_add(1).ok_or(Malformed)?;
            log.newest_ms = time_ms;
        }
        Ok(log)
    }
}

/// Iterator over (time ms, cost) records, oldest first.
pub struct Records<'a> {
    bytes: &'a [u8],
    time_ms: i64,
    first: bool,
}

impl Iterator for Records<'_> {
    type Item = (i64, i64);

    fn next(&mut self) -> Option<(i64, i64)> {
        let (delta, delta_len) = decode_varint(self.bytes)?;
        let (cost, cost_len) = decode_varint(self.bytes.get(delta_len..)?)?;
        self.bytes = self.bytes.get(delta_len + cost_len..)?;
        if self.first {
            self.first = false;
        } else {
            self.time_ms = self
                .time_ms
                .saturating_add(i64::try_from(delta).unwrap_or(i64::MAX));
        }
        Some((self.time_ms, i64::try_from(cost).unwrap_or(i64::MAX)))
    }
}

fn encode_varint(out: &mut Vec<u8>, value: u64) {
    super::varint::encode(out, value);
}

/// Decodes one LEB128 varint; returns it and the bytes it took.
fn decode_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    super::varint::decode(bytes.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(log: &RecordLog) -> Vec<(i64, i64)> {
        log.iter().collect()
    }

    #[test]
    fn calls_in_one_millisecond_are_separate_records() {
        let mut log = RecordLog::default();
        log.push(5000, 1);
        log.push(5000, 1);
        log.push(5500, 300);
        assert_eq!(collect(&log), vec![(5000, 1), (5000, 1), (5500, 300)]);
        assert_eq!(log.total_cost(), 302);
        assert_eq!(log.len(), 3);
        assert_eq!(log.newest_ms(), Some(5500));
        log.drop_through(5000);
        assert_eq!(collect(&log), vec![(5500, 300)]);
    }

    #[test]
    fn drop_through_keeps_newer_records_and_compacts() {
        let mut log = RecordLog::default();
        for t in 0..1000 {
            log.push(t * 10, 1 + t % 3);
        }
        log.drop_through(4995);
        let rest = collect(&log);
        assert_eq!(rest.first(), Some(&(5000, 1 + 500 % 3)));
        assert_eq!(rest.len(), 500);
        assert_eq!(log.total_cost(), rest.iter().map(|r| r.1).sum::<i64>());
        log.push(10_000, 2);
        log.drop_through(9990);
        assert_eq!(collect(&log), vec![(10_000, 2)]);
        log.drop_through(10_000);
        assert!(log.is_empty());
        assert_eq!(log.newest_ms(), None);
        log.push(20_000, 1);
        assert_eq!(collect(&log), vec![(20_000, 1)]);
    }

    #[test]
    fn bytes_round_trip_and_reject_garbage() {
        let mut log = RecordLog::default();
        for t in [7, 9, 9, 400, 100_000] {
            log.push(t, 2);
        }
        log.drop_through(8);
        let (oldest, bytes) = log.to_bytes();
        let copy = RecordLog::from_bytes(oldest, bytes).expect("valid");
        assert_eq!(collect(&copy), collect(&log));
        assert_eq!(copy.total_cost(), log.total_cost());
        assert_eq!(copy.newest_ms(), log.newest_ms());
        let mut grown = copy.clone();
        grown.push(100_000, 5);
        assert_eq!(grown.iter().last(), Some((100_000, 5)));
        assert_eq!(grown.len(), copy.len() + 1);
        assert_eq!(RecordLog::from_bytes(0, &[0]), Err(Malformed));
        assert_eq!(RecordLog::from_bytes(0, &[0, 0]), Err(Malformed));
        assert_eq!(RecordLog::from_bytes(0, &[0, 1, 0, 0]), Err(Malformed));
        assert_eq!(
            RecordLog::from_bytes(i64::MAX, &[0, 1, 1, 1]),
            Err(Malformed)
        );
    }

    #[test]
    fn typical_traffic_costs_two_bytes_a_record() {
        let mut log = RecordLog::default();
        for t in 0..10_000 {
            log.push(t * 6, 1);
        }
        assert_eq!(log.to_bytes().1.len(), 20_000);
    }
}
