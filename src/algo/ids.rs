//! Ids for reservations and leases: positive, below 2^53 (so Lua and JSON
//! carry them exactly), increasing within a key, and derived from the time
//! so that a key recreated after it expired does not hand out an old id.
//!
//! An id is at least `at_ms * 1024 + 1`, and above the key's last id. While
//! a key issues at most 1024 ids per ms, its ids stay within the ms they were
//! issued in, so a later key of the same name starts above them. The one
//! exception: a server clock set back across the key's expiry.

/// Ids a key can issue per ms before borrowing from the next ms.
const IDS_PER_MS: i64 = 1024;

/// The largest id: 2^53 - 1.
pub const MAX_ID: i64 = (1 << 53) - 1;

/// The next id after `last_id` at `at_ms`; `None` past [`MAX_ID`] (times
/// after the year 2248).
pub fn next_id(last_id: i64, at_ms: i64) -> Option<i64> {
    let from_time = at_ms.checked_mul(IDS_PER_MS)?.checked_add(1)?;
    let id = from_time.max(last_id.checked_add(1)?);
    (id <= MAX_ID).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_follow_the_clock() {
        let t = 1_700_000_000_000;
        let first = next_id(0, t).expect("id");
        assert_eq!(first, t * 1024 + 1);
        let second = next_id(first, t).expect("id");
        assert_eq!(second, first + 1);
        // A key recreated later starts above every id of the old key.
        assert!(next_id(0, t + 1).expect("id") > first + 1023);
        // Time pinned in the past never makes ids go down.
        assert_eq!(next_id(second, t - 5000), Some(second + 1));
        assert_eq!(next_id(0, 0), Some(1));
    }

    #[test]
    fn ids_stay_below_two_to_the_53() {
        assert_eq!(next_id(0, MAX_ID / 1024 + 1), None);
        assert_eq!(next_id(MAX_ID, 0), None);
        assert_eq!(next_id(0, i64::MAX), None);
        assert!(next_id(0, MAX_ID / 1024 - 1).is_some());
    }
}
