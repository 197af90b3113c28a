//! A ring of bytes that keeps up to [`INLINE`] of them in place and only
//! larger rings on the heap: a small log is read with its owner, without
//! the cache miss of a second allocation.

use std::collections::VecDeque;

/// The most bytes kept in place.
pub const INLINE: usize = 22;

#[derive(Debug, Clone)]
pub enum SmallRing {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(VecDeque<u8>),
}

/// Rings are equal when they hold the same bytes, whatever their form.
impl PartialEq for SmallRing {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for SmallRing {}

impl Default for SmallRing {
    fn default() -> Self {
        SmallRing::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }
}

impl SmallRing {
    pub fn from_slice(bytes: &[u8]) -> Self {
        let mut ring = SmallRing::default();
        ring.extend(bytes.iter().copied());
        ring
    }

    /// The bytes, oldest first, in at most two slices.
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        match self {
            SmallRing::Inline { len, bytes } => {
                (bytes.get(..usize::from(*len)).unwrap_or_default(), &[])
            }
            SmallRing::Heap(ring) => ring.as_slices(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        let (front, back) = self.as_slices();
        front.iter().chain(back).copied()
    }

    pub fn len(&self) -> usize {
        match self {
            SmallRing::Inline { len, .. } => usize::from(*len),
            SmallRing::Heap(ring) => ring.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the first `keep` bytes.
    pub fn truncate(&mut self, keep: usize) {
        match self {
            SmallRing::Inline { len, .. } => {
                *len = (*len).min(u8::try_from(keep).unwrap_or(u8::MAX))
            }
            SmallRing::Heap(ring) => ring.truncate(keep),
        }
    }

    /// Drops the first `count` bytes.
    pub fn drop_front(&mut self, count: usize) {
        match self {
            SmallRing::Inline { len, bytes } => {
                let count = count.min(usize::from(*len));
                bytes.copy_within(count..usize::from(*len), 0);
                *len = u8::try_from(usize::from(*len) - count).unwrap_or(0);
            }
            SmallRing::Heap(ring) => {
                ring.drain(..count.min(ring.len()));
            }
        }
    }

    /// Heap bytes held.
    pub fn heap_size(&self) -> usize {
        match self {
            SmallRing::Inline { .. } => 0,
            SmallRing::Heap(ring) => ring.capacity(),
        }
    }
}

impl Extend<u8> for SmallRing {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, more: I) {
        for byte in more {
            match self {
                SmallRing::Inline { len, bytes } if usize::from(*len) < INLINE => {
                    if let Some(slot) = bytes.get_mut(usize::from(*len)) {
                        *slot = byte;
                    }
                    *len += 1;
                }
                SmallRing::Inline { .. } => {
                    let mut ring = VecDeque::with_capacity(2 * INLINE.next_power_of_two());
                    ring.extend(self.iter());
                    ring.push_back(byte);
                    *self = SmallRing::Heap(ring);
                }
                SmallRing::Heap(ring) => ring.push_back(byte),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(ring: &SmallRing) -> Vec<u8> {
        ring.iter().collect()
    }

    #[test]
    fn stays_in_place_up_to_its_inline_size() {
        let mut ring = SmallRing::default();
        ring.extend(0..INLINE as u8);
        assert!(matches!(ring, SmallRing::Inline { .. }));
        assert_eq!(ring.heap_size(), 0);
        ring.extend([99]);
        assert!(matches!(ring, SmallRing::Heap(_)));
        let mut expected: Vec<u8> = (0..INLINE as u8).collect();
        expected.push(99);
        assert_eq!(bytes(&ring), expected);
    }

    #[test]
    fn both_forms_drop_and_truncate_alike() {
        for size in [5, INLINE, INLINE + 7] {
            let mut ring = SmallRing::from_slice(&(0..size as u8).collect::<Vec<_>>());
            let mut model: VecDeque<u8> = (0..size as u8).collect();
            ring.drop_front(2);
            model.drain(..2);
            ring.truncate(size - 4);
            model.truncate(size - 4);
            ring.extend([200, 201]);
            model.extend([200, 201]);
            ring.drop_front(100);
            model.clear();
            ring.extend([7]);
            model.extend([7]);
            assert_eq!(bytes(&ring), model.iter().copied().collect::<Vec<_>>());
            assert_eq!(ring.len(), model.len());
        }
    }

    #[test]
    fn rings_of_the_same_bytes_are_equal_in_either_form() {
        let mut dropped = SmallRing::from_slice(&[9, 1, 2]);
        dropped.drop_front(1);
        let mut truncated = SmallRing::from_slice(&[1, 2, 3]);
        truncated.truncate(2);
        let on_heap = SmallRing::Heap([1, 2].into_iter().collect());
        assert_eq!(dropped, truncated);
        assert_eq!(dropped, on_heap);
        assert_ne!(dropped, SmallRing::from_slice(&[1]));
    }

    #[test]
    fn takes_no_more_room_than_a_deque() {
        assert_eq!(
            std::mem::size_of::<SmallRing>(),
            std::mem::size_of::<VecDeque<u8>>()
        );
    }
}
