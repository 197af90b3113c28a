//! A compact log of the cost admitted in each slot of time: one record per
//! slot that holds any, oldest first, in a [`SmallRing`] of bytes (a small
//! log in place; a larger one in a ring on the heap, which dropping the
//! oldest and adding the newest never moves, and which grows only when the
//! live records outgrow it).
//!
//! A record is a varint `x << 2 | tag`, then maybe a second varint:
//! - tag 1: the slot right after the record before (delta 1); `x` is the cost;
//! - tag 2: cost 1; `x` is the delta in slots from the record before;
//! - tag 0: `x` is the delta, and the cost follows;
//! - tag 3: a delta too large to shift (2^62 or more): the delta follows,
//!   then the cost (`x` is 0).
//!
//! So a slot after the one before costs one or two bytes up to a cost of
//! 4,095, and a call of cost 1 one byte up to 31 slots after the one before.
//! The first record's delta is unused (written as 1): its slot is `oldest`.

use super::small_ring::SmallRing;
use super::varint;

/// Why bytes could not be read back as a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotLog {
    bytes: SmallRing,
    oldest: i64,
    newest: i64,
    total_cost: i64,
    /// The bytes of the newest record, at the end of `bytes`.
    newest_len: u8,
}

const TAG_NEXT_SLOT: u64 = 1;
const TAG_COST_ONE: u64 = 2;
const TAG_BOTH: u64 = 0;
const TAG_WIDE: u64 = 3;
/// The deltas and costs that fit beside a tag.
const SHIFTABLE: u64 = 1 << 62;

/// A record's delta and cost, and the bytes it took (it reads no more).
fn decode(mut bytes: impl Iterator<Item = u8>) -> Option<(u64, u64, usize)> {
    let (head, head_len) = varint::decode(bytes.by_ref())?;
    let (x, tag) = (head >> 2, head & 3);
    match tag {
        TAG_NEXT_SLOT => Some((1, x, head_len)),
        TAG_COST_ONE => Some((x, 1, head_len)),
        TAG_BOTH => {
            let (cost, cost_len) = varint::decode(bytes)?;
            Some((x, cost, head_len + cost_len))
        }
        TAG_WIDE if x == 0 => {
            let (delta, delta_len) = varint::decode(bytes.by_ref())?;
            let (cost, cost_len) = varint::decode(bytes)?;
            Some((delta, cost, head_len + delta_len + cost_len))
        }
        _ => None,
    }
}

/// Encodes a record; returns the bytes it took.
fn encode(out: &mut SmallRing, delta: u64, cost: u64) -> usize {
    let before = out.len();
    match (delta, cost) {
        (1, cost) if cost < SHIFTABLE => varint::encode(out, cost << 2 | TAG_NEXT_SLOT),
        (delta, 1) if delta < SHIFTABLE => varint::encode(out, delta << 2 | TAG_COST_ONE),
        (delta, cost) if delta < SHIFTABLE => {
            varint::encode(out, delta << 2 | TAG_BOTH);
            varint::encode(out, cost);
        }
        (delta, cost) => {
            varint::encode(out, TAG_WIDE);
            varint::encode(out, delta);
            varint::encode(out, cost);
        }
    }
    out.len() - before
}

fn cost_as_i64(cost: u64) -> i64 {
    i64::try_from(cost).unwrap_or(i64::MAX)
}

impl SlotLog {
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Sum of the costs of every stored slot.
    pub fn total_cost(&self) -> i64 {
        self.total_cost
    }

    pub fn oldest(&self) -> Option<i64> {
        (!self.is_empty()).then_some(self.oldest)
    }

    pub fn newest(&self) -> Option<i64> {
        (!self.is_empty()).then_some(self.newest)
    }

    /// (slot, cost) oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        let mut bytes = self.bytes.iter();
        let mut slot = self.oldest;
        let mut first = true;
        std::iter::from_fn(move || {
            let (delta, cost, _) = decode(bytes.by_ref())?;
            if !first {
                slot = slot.saturating_add(i64::try_from(delta).unwrap_or(i64::MAX));
            }
            first = false;
            Some((slot, cost_as_i64(cost)))
        })
    }

    /// Adds `cost` (positive) to `slot`; the caller keeps the total within
    /// i64. O(1) at or after the newest slot; an older slot rewrites the log.
    pub fn add(&mut self, slot: i64, cost: i64) {
        if !self.is_empty() && slot < self.newest {
            let mut records: Vec<(i64, i64)> = self.iter().collect();
            let at = records.partition_point(|&(stored, _)| stored < slot);
            match records.get_mut(at) {
                Some(record) if record.0 == slot => record.1 = record.1.saturating_add(cost),
                _ => records.insert(at, (slot, cost)),
            }
            *self = SlotLog::default();
            for (slot, cost) in records {
                self.append(slot, cost);
            }
            return;
        }
        self.append(slot, cost);
    }

    /// [`SlotLog::add`] at or after the newest slot.
    fn append(&mut self, slot: i64, cost: i64) {
        let added = cost.unsigned_abs();
        let (delta, cost) = if self.is_empty() {
            self.oldest = slot;
            // Unused; 1 takes the short form.
            (1, added)
        } else if slot == self.newest {
            let tail = self
                .bytes
                .len()
                .saturating_sub(usize::from(self.newest_len));
            let (delta, stored, _) = decode(self.bytes.iter().skip(tail)).unwrap_or_default();
            self.bytes.truncate(tail);
            (delta, stored.saturating_add(added))
        } else {
            (slot.abs_diff(self.newest), added)
        };
        let len = encode(&mut self.bytes, delta, cost);
        self.newest_len = u8::try_from(len).unwrap_or(u8::MAX);
        self.newest = slot;
        self.total_cost = self.total_cost.saturating_add(cost_as_i64(added));
    }

    /// Drops every slot at or before `cutoff`.
    pub fn drop_through(&mut self, cutoff: i64) {
        while !self.is_empty() && self.oldest <= cutoff {
            let Some((_, cost, len)) = decode(self.bytes.iter()) else {
                *self = SlotLog::default();
                return;
            };
            self.bytes.drop_front(len);
            self.total_cost = self.total_cost.saturating_sub(cost_as_i64(cost));
            match decode(self.bytes.iter()) {
                Some((delta, _, _)) => {
                    let delta = i64::try_from(delta).unwrap_or(i64::MAX);
                    self.oldest = self.oldest.saturating_add(delta);
                }
                None => *self = SlotLog::default(),
            }
        }
    }

    /// Heap bytes held by the log.
    pub fn heap_size(&self) -> usize {
        self.bytes.heap_size()
    }

    /// The oldest slot and the records as bytes (see [`SlotLog::from_bytes`]).
    pub fn to_bytes(&self) -> (i64, Vec<u8>) {
        (self.oldest, self.bytes.iter().collect())
    }

    /// Rebuilds a log from [`SlotLog::to_bytes`], checking every record:
    /// costs of at least 1, slots that grow, a total within i64.
    pub fn from_bytes(oldest: i64, bytes: &[u8]) -> Result<Self, Malformed> {
        let mut log = SlotLog {
            bytes: SmallRing::from_slice(bytes),
            oldest,
            newest: oldest,
            ..SlotLog::default()
        };
        let mut at = 0;
        while at < bytes.len() {
            let rest = bytes.get(at..).ok_or(Malformed)?;
            let (delta, cost, len) = decode(rest.iter().copied()).ok_or(Malformed)?;
            if at > 0 {
                let delta = i64::try_from(delta).map_err(|_| Malformed)?;
                if delta < 1 {
                    return Err(Malformed);
                }
                log.newest = log.newest.checked_add(delta).ok_or(Malformed)?;
            }
            let cost = i64::try_from(cost).map_err(|_| Malformed)?;
            if cost < 1 {
                return Err(Malformed);
            }
            log.total_cost = log.total_cost.checked_add(cost).ok_or(Malformed)?;
            log.newest_len = u8::try_from(len).map_err(|_| Malformed)?;
            at += len;
        }
        Ok(log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(log: &SlotLog) -> Vec<(i64, i64)> {
        log.iter().collect()
    }

    #[test]
    fn a_slot_holds_the_sum_of_its_calls() {
        let mut log = SlotLog::default();
        log.add(7, 1);
        log.add(7, 2);
        log.add(8, 4095);
        log.add(8, 1);
        log.add(40, 1);
        log.add(1_000_000, 300);
        assert_eq!(
            collect(&log),
            vec![(7, 3), (8, 4096), (40, 1), (1_000_000, 300)]
        );
        assert_eq!(log.total_cost(), 3 + 4096 + 1 + 300);
        assert_eq!((log.oldest(), log.newest()), (Some(7), Some(1_000_000)));
    }

    #[test]
    fn consecutive_slots_cost_two_bytes_up_to_a_cost_of_4095() {
        let mut log = SlotLog::default();
        for slot in 0..61 {
            log.add(slot, 1640);
        }
        assert_eq!(log.to_bytes().1.len(), 61 * 2);
        assert!(log.heap_size() <= 128, "{}", log.heap_size());
    }

    #[test]
    fn calls_of_cost_one_cost_no_more_than_the_sliding_log_records() {
        for gap in [1, 31, 32, 127, 128, 4095, 4096, 16_383, 16_384, 1 << 40] {
            let mut slots = SlotLog::default();
            let mut records = super::super::record_log::RecordLog::default();
            for n in 0..100 {
                slots.add(n * gap, 1);
                records.push(n * gap, 1);
            }
            assert!(
                slots.to_bytes().1.len() <= records.to_bytes().1.len(),
                "gap {gap}"
            );
        }
    }

    #[test]
    fn an_older_slot_goes_in_its_place() {
        let mut log = SlotLog::default();
        for (slot, cost) in [(2, 1), (5, 2), (9, 3)] {
            log.add(slot, cost);
        }
        log.add(7, 4);
        log.add(5, 1);
        log.add(1, 1);
        assert_eq!(collect(&log), vec![(1, 1), (2, 1), (5, 3), (7, 4), (9, 3)]);
        assert_eq!(log.total_cost(), 12);
        log.add(9, 1);
        log.add(10, 1);
        assert_eq!(log.newest(), Some(10));
        assert_eq!(collect(&log)[4..], [(9, 4), (10, 1)]);
    }

    /// Whatever the slots and costs, what is written reads back the same.
    #[test]
    fn any_gap_and_cost_round_trip() {
        let mut rng = crate::test_rng::Rng::new(0x00c0_ffee);
        let edges = [
            0,
            1,
            2,
            3,
            4095,
            4096,
            (1 << 62) - 1,
            1 << 62,
            (1 << 62) + 1,
            i64::MAX,
        ];
        for _ in 0..2_000 {
            let mut log = SlotLog::default();
            let mut slot = 0i64;
            for _ in 0..rng.range(1, 6) {
                let gap = match rng.range(0, 3) {
                    0 => edges[rng.range(0, edges.len() as i64 - 1) as usize],
                    _ => rng.range(0, 1 << 20),
                };
                slot = slot.saturating_add(gap);
                let cost = match rng.range(0, 2) {
                    0 => edges[rng.range(1, edges.len() as i64 - 1) as usize] / 8,
                    _ => rng.range(1, 5000),
                };
                log.add(slot, cost.max(1));
            }
            let (oldest, bytes) = log.to_bytes();
            let back = SlotLog::from_bytes(oldest, &bytes).expect("reads back");
            assert_eq!(collect(&back), collect(&log));
            assert_eq!(
                (back.newest(), back.total_cost()),
                (log.newest(), log.total_cost())
            );
            let mut merged = back.clone();
            merged.add(slot, 1);
            log.add(slot, 1);
            assert_eq!(collect(&merged), collect(&log));
        }
    }

    #[test]
    fn dropping_keeps_the_rest_and_the_total() {
        let mut log = SlotLog::default();
        for (slot, cost) in [(1, 5), (2, 1), (9, 7), (10, 1 << 40)] {
            log.add(slot, cost);
        }
        log.drop_through(1);
        assert_eq!(collect(&log), vec![(2, 1), (9, 7), (10, 1 << 40)]);
        log.drop_through(8);
        assert_eq!(collect(&log), vec![(9, 7), (10, 1 << 40)]);
        assert_eq!(log.total_cost(), 7 + (1 << 40));
        log.add(10, 1);
        log.drop_through(9);
        assert_eq!(collect(&log), vec![(10, (1 << 40) + 1)]);
        log.drop_through(10);
        assert!(log.is_empty());
        assert_eq!(log.total_cost(), 0);
        log.add(3, 2);
        assert_eq!(collect(&log), vec![(3, 2)]);
    }

    #[test]
    fn a_steady_window_never_grows_its_ring() {
        let mut log = SlotLog::default();
        for slot in 0..61 {
            log.add(slot, 1640);
        }
        let capacity = log.heap_size();
        for slot in 61..10_000 {
            log.drop_through(slot - 61);
            log.add(slot, 1640);
        }
        assert_eq!(log.heap_size(), capacity);
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        let mut log = SlotLog::default();
        for (slot, cost) in [(5, 1), (6, 2), (6, 1), (100, 1), (101, i64::MAX / 4)] {
            log.add(slot, cost);
        }
        let (oldest, bytes) = log.to_bytes();
        let back = SlotLog::from_bytes(oldest, &bytes).unwrap();
        assert_eq!(collect(&back), collect(&log));
        assert_eq!(back.total_cost(), log.total_cost());
        assert_eq!(back.newest(), log.newest());
        let mut merged = back.clone();
        merged.add(101, 1);
        log.add(101, 1);
        assert_eq!(collect(&merged), collect(&log));
        assert_eq!(SlotLog::from_bytes(0, &[0x80]), Err(Malformed));
        assert_eq!(
            SlotLog::from_bytes(0, &[3]),
            Err(Malformed),
            "tag 3 cut short"
        );
        assert_eq!(
            SlotLog::from_bytes(0, &[7, 1, 1]),
            Err(Malformed),
            "tag 3 with x"
        );
        assert_eq!(SlotLog::from_bytes(0, &[0, 0]), Err(Malformed), "cost 0");
        assert_eq!(SlotLog::from_bytes(0, &[6, 2]), Err(Malformed), "delta 0");
        assert_eq!(SlotLog::from_bytes(0, &[]), Ok(SlotLog::default()));
    }
}
