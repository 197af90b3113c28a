//! Exact integer helpers shared by the limiters.

/// `ceil(numerator / denominator)` for a positive denominator.
pub fn ceil_div(numerator: i128, denominator: i128) -> i128 {
    let quotient = floor_div(numerator, denominator);
    if remainder(numerator, denominator) == 0 {
        quotient
    } else {
        quotient + 1
    }
}

/// `floor(numerator / denominator)` for a positive denominator.
pub fn floor_div(numerator: i128, denominator: i128) -> i128 {
    // 64-bit division is several times cheaper than 128-bit, and the
    // operands fit in 64 bits almost always.
    match (i64::try_from(numerator), i64::try_from(denominator)) {
        (Ok(n), Ok(d)) if d > 0 => i128::from(n.div_euclid(d)),
        _ => numerator.div_euclid(denominator),
    }
}

/// The remainder of [`floor_div`], in `0..denominator`.
fn remainder(numerator: i128, denominator: i128) -> i128 {
    match (i64::try_from(numerator), i64::try_from(denominator)) {
        (Ok(n), Ok(d)) if d > 0 => i128::from(n.rem_euclid(d)),
        _ => numerator.rem_euclid(denominator),
    }
}

/// `floor(value * multiplier / divisor)` for positive `multiplier` and
/// `divisor` up to `i64::MAX`, without overflowing when `value` is itself a
/// product of two such numbers.
pub fn rescale_floor(value: i128, multiplier: i128, divisor: i128) -> i128 {
    let whole = floor_div(value, divisor);
    let fraction = remainder(value, divisor);
    whole * multiplier + floor_div(fraction * multiplier, divisor)
}

/// Narrows to i64, saturating at its bounds.
pub fn saturate(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

/// What `(a as f64 / b as f64) as i64` gives, computed with integers only:
/// both operands rounded to the nearest double (ties to even), their quotient
/// rounded to the nearest double, then truncated toward zero and saturated
/// (Rust's float-to-int cast); a zero divisor gives what the infinities and
/// NaN cast to (i64::MAX, i64::MIN, 0). For compatibility with code that
/// divides in floating point (redis-cell); exact for every input.
pub fn trunc_f64_div(a: i64, b: i64) -> i64 {
    let negative = (a < 0) != (b < 0);
    let (x, y) = (
        round_to_double(a.unsigned_abs()),
        round_to_double(b.unsigned_abs()),
    );
    if y == 0 {
        return match (x, negative) {
            (0, _) => 0,
            (_, false) => i64::MAX,
            (_, true) => i64::MIN,
        };
    }
    let magnitude = rounded_quotient_trunc(x, y);
    let signed = if negative {
        -(magnitude as i128)
    } else {
        magnitude as i128
    };
    saturate(signed)
}

/// The integer nearest to `value` with at most 53 significant bits (ties to
/// even): what `value as f64` holds.
fn round_to_double(value: u64) -> u128 {
    let bits = u64::BITS - value.leading_zeros();
    if bits <= 53 {
        return u128::from(value);
    }
    let shift = bits - 53;
    let kept = value >> shift;
    let dropped = value & ((1u64 << shift) - 1);
    let half = 1u64 << (shift - 1);
    let rounded = if dropped > half || (dropped == half && kept & 1 == 1) {
        kept + 1
    } else {
        kept
    };
    u128::from(rounded) << shift
}

/// `trunc(RN(x / y))` for x, y exact doubles (y > 0), where RN rounds to
/// the nearest double, ties to even. The result is below 2^128. (The
/// quotient of two doubles is never exactly halfway between two doubles, so
/// the tie branches only keep the function total.)
fn rounded_quotient_trunc(x: u128, y: u128) -> u128 {
    let floor = x / y;
    let rest = x % y;
    if floor == 0 {
        // q < 1 rounds to 1 only from [1 - 2^-54, 1): the ulp below 1 is
        // 2^-53, and a tie goes to 1 (even).
        return u128::from(rest > 0 && (y - rest) << 54 <= y);
    }
    // q lies in [2^k, 2^(k+1)), where doubles are spaced 2^(k-52).
    let k = 127 - floor.leading_zeros();
    if k >= 53 {
        // Spacing of 2 or more: RN(q) is an integer multiple of it.
        let spacing = 1u128 << (k - 52);
        let unit = y * spacing;
        let (quotient, remainder) = (x / unit, x % unit);
        let up = match (2 * remainder).cmp(&unit) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => quotient & 1 == 1,
            std::cmp::Ordering::Less => false,
        };
        return (quotient + u128::from(up)) * spacing;
    }
    // Spacing 2^(k-52) <= 1: RN(q) is floor, or floor + 1 when q lies within
    // half a spacing of it: (y - rest) / y < 2^(k-53).
    if rest == 0 {
        return floor;
    }
    let gap = (y - rest) << (53 - k);
    let up = match gap.cmp(&y) {
        std::cmp::Ordering::Less => true,
        // A tie: floor + 1 is even in units of the spacing unless k = 52.
        std::cmp::Ordering::Equal => k < 52 || (floor + 1) & 1 == 0,
        std::cmp::Ordering::Greater => false,
    };
    floor + u128::from(up)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_64_bit_fast_path_agrees_with_128_bit_division() {
        let edges = [
            i128::from(i64::MIN),
            i128::from(i64::MIN) + 1,
            -7,
            -1,
            0,
            1,
            6,
            7,
            i128::from(i64::MAX) - 1,
            i128::from(i64::MAX),
            i128::from(i64::MAX) + 1,
            i128::from(i64::MAX) * 3,
            -i128::from(i64::MAX) * 3,
        ];
        for &n in &edges {
            for d in [1, 2, 7, i128::from(i64::MAX), i128::from(i64::MAX) + 1] {
                assert_eq!(floor_div(n, d), n.div_euclid(d), "{n} / {d}");
                assert_eq!(remainder(n, d), n.rem_euclid(d), "{n} % {d}");
                let ceil = n.div_euclid(d) + i128::from(n.rem_euclid(d) != 0);
                assert_eq!(ceil_div(n, d), ceil, "{n} / {d}");
            }
        }
    }

    #[test]
    fn ceil_and_floor_round_the_right_way() {
        assert_eq!(ceil_div(7, 3), 3);
        assert_eq!(ceil_div(6, 3), 2);
        assert_eq!(ceil_div(0, 3), 0);
        assert_eq!(ceil_div(-7, 3), -2);
        assert_eq!(floor_div(7, 3), 2);
        assert_eq!(floor_div(-7, 3), -3);
        assert_eq!(floor_div(-6, 3), -2);
    }

    #[test]
    fn rescale_matches_plain_math_and_survives_extremes() {
        for (value, mul, div) in [
            (10, 3, 7),
            (-10, 3, 7),
            (999, 1000, 3),
            (0, 5, 9),
            (-1, 1, 1000),
        ] {
            assert_eq!(
                rescale_floor(value, mul, div),
                (value * mul).div_euclid(div)
            );
        }
        let max = i64::MAX as i128;
        assert_eq!(rescale_floor(max * max, max, max), max * max);
        assert_eq!(rescale_floor(max * max - 1, 1, max), max - 1);
    }

    #[test]
    fn saturate_clamps() {
        assert_eq!(saturate(5), 5);
        assert_eq!(saturate(i128::MAX), i64::MAX);
        assert_eq!(saturate(i128::MIN), i64::MIN);
    }

    #[test]
    fn trunc_f64_div_matches_the_float_expression() {
        let float = |a: i64, b: i64| (a as f64 / b as f64) as i64;
        let mut edges = vec![0i64, 1, 2, 3, 7, 10, 999, 1000, 1001, 1_000_000_000];
        for power in [52u32, 53, 54, 55, 60, 62, 63] {
            let p = 1i128 << power;
            for delta in [-3i128, -2, -1, 0, 1, 2, 3] {
                if let Ok(v) = i64::try_from(p + delta) {
                    edges.push(v);
                }
            }
        }
        edges.extend([
            i64::MAX,
            i64::MAX - 1,
            9_007_199_254_740_993,
            86_400_000_000_000,
            60_000_000_000,
            3_153_600_000_000_000_000,
        ]);
        let signed: Vec<i64> = edges
            .iter()
            .flat_map(|&v| [v, v.checked_neg().unwrap_or(i64::MIN)])
            .chain([i64::MIN, i64::MIN + 1])
            .collect();
        for &a in &signed {
            for &b in &signed {
                assert_eq!(trunc_f64_div(a, b), float(a, b), "{a} / {b}");
            }
        }
        // Random operands of every size, and quotients next to an integer.
        let mut rng = crate::test_rng::Rng::new(0x9E37_79B9_7F4A_7C15);
        let mut next = move || rng.next();
        for _ in 0..300_000 {
            let a = (next() >> (next() % 64)) as i64;
            let b = ((next() >> (next() % 64)) as i64).max(1);
            assert_eq!(trunc_f64_div(a, b), float(a, b), "{a} / {b}");
            let near = b
                .checked_mul((next() % 1_000_000) as i64)
                .and_then(|m| m.checked_add((next() % 5) as i64 - 2));
            if let Some(a) = near {
                assert_eq!(trunc_f64_div(a, b), float(a, b), "{a} / {b}");
            }
            // Quotients of any size next to an integer (around 2^53 too).
            let small = (next() % 4096) as i64 + 1;
            let multiple = (next() >> (next() % 64)) as i64 / small;
            for delta in -2..=2 {
                if let Some(a) = (multiple * small).checked_add(delta) {
                    assert_eq!(trunc_f64_div(a, small), float(a, small), "{a} / {small}");
                }
            }
        }
    }
}
