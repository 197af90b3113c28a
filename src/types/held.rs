//! How a key holds a limiter whose numbers fit a compact record of varints
//! ([`crate::algo::varint`]): a record of at most 15 bytes inline, one of
//! at most 23 with its last 16 bytes behind a box, and anything else as the
//! full value behind a box; 16 bytes in every form.

use crate::algo::varint;

const SMALL: usize = 15;
const HEAD: usize = 7;
const TAIL: usize = 16;
/// The longest record held as bytes.
pub const RECORD: usize = HEAD + TAIL;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held<F> {
    Small([u8; SMALL]),
    Medium([u8; HEAD], Box<[u8; TAIL]>),
    Large(Box<F>),
}

/// The first `N` bytes of `bytes`, zero-filled.
#[inline]
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    let len = bytes.len().min(N);
    out[..len].copy_from_slice(&bytes[..len]);
    out
}

impl<F> Held<F> {
    /// `record`, held as bytes; `None` when it is longer than [`RECORD`].
    #[inline]
    pub fn of(record: &[u8]) -> Option<Held<F>> {
        if record.len() <= SMALL {
            Some(Held::Small(array(record)))
        } else if record.len() <= RECORD {
            let tail = array(record.get(HEAD..).unwrap_or_default());
            Some(Held::Medium(array(record), Box::new(tail)))
        } else {
            None
        }
    }

    /// Holds `record` instead of what is held; false, changing nothing,
    /// when it is longer than [`RECORD`].
    #[inline]
    pub fn hold(&mut self, record: &[u8]) -> bool {
        match self {
            Held::Small(bytes) if record.len() <= SMALL => {
                *bytes = array(record);
                return true;
            }
            Held::Medium(head, tail) if record.len() > SMALL && record.len() <= RECORD => {
                // The box is reused: a write allocates nothing.
                *head = array(record);
                **tail = array(record.get(HEAD..).unwrap_or_default());
                return true;
            }
            _ => {}
        }
        match Held::of(record) {
            Some(held) => {
                *self = held;
                true
            }
            None => false,
        }
    }

    /// The record held, zero-filled; `None` when the value is held in full.
    #[inline]
    pub fn record(&self) -> Option<[u8; RECORD]> {
        match self {
            Held::Small(bytes) => Some(array(bytes)),
            Held::Medium(head, tail) => {
                let mut record = [0; RECORD];
                record[..HEAD].copy_from_slice(head);
                record[HEAD..].copy_from_slice(&tail[..]);
                Some(record)
            }
            Held::Large(_) => None,
        }
    }

    /// The first 7 bytes or more of the record held; `None` when the value
    /// is held in full.
    #[inline]
    pub fn head(&self) -> Option<&[u8]> {
        match self {
            Held::Small(bytes) => Some(bytes),
            Held::Medium(head, _) => Some(head),
            Held::Large(_) => None,
        }
    }

    /// Heap bytes of a record held as bytes; `None` when the value is held
    /// in full.
    #[inline]
    pub fn record_heap_size(&self) -> Option<usize> {
        match self {
            Held::Small(_) => Some(0),
            Held::Medium(..) => Some(TAIL),
            Held::Large(_) => None,
        }
    }
}

/// A record being written: at most a header and a few varints.
pub struct Record {
    pub bytes: [u8; 64],
    pub len: usize,
}

impl Record {
    #[inline]
    pub fn new() -> Record {
        Record {
            bytes: [0; 64],
            len: 0,
        }
    }

    /// Appends a byte; the record has room for a header and six varints.
    #[inline]
    pub fn push(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    /// Appends a varint.
    #[inline]
    pub fn put(&mut self, value: u64) {
        if let Some(free) = self.bytes.get_mut(self.len..) {
            self.len += varint::encode_into(free, value);
        }
    }

    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// Reads varints in order from the front of `bytes`.
pub struct Varints<'a>(pub &'a [u8]);

impl Varints<'_> {
    #[inline]
    pub fn next(&mut self) -> Option<u64> {
        let (value, taken) = varint::decode(self.0.iter().copied())?;
        self.0 = self.0.get(taken..)?;
        Some(value)
    }

    #[inline]
    pub fn next_i64(&mut self) -> Option<i64> {
        self.next().and_then(|n| i64::try_from(n).ok())
    }
}
