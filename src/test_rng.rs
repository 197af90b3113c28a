//! A small deterministic PRNG (xorshift64) for the unit tests and the
//! fuzz, so that a failure replays from its seed.

pub struct Rng(u64);

impl Rng {
    /// A generator from a seed other than 0.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next number of the sequence.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in 0..n (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A number from `low` to `high`, both included.
    pub fn range(&mut self, low: i64, high: i64) -> i64 {
        let span = high.abs_diff(low).saturating_add(1);
        low.saturating_add_unsigned(self.next() % span.max(1))
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// A number of at least `min`, biased toward edges: `min`, `min + 1`,
    /// small, huge, near i64::MAX.
    pub fn edgy(&mut self, min: i64) -> i64 {
        let value = match self.below(6) {
            0 => min,
            1 => min.saturating_add(1),
            2 => i64::MAX - self.below(3) as i64,
            3 => (self.next() >> 1) as i64,
            _ => self.below(5000) as i64,
        };
        value.max(min)
    }
}
