//! Exact integer helpers shared by the limiters.

/// `ceil(numerator / denominator)` for a positive denominator.
pub fn ceil_div(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator.div_euclid(denominator);
    if numerator.rem_euclid(denominator) == 0 {
        quotient
    } else {
        quotient + 1
    }
}

/// `floor(numerator / denominator)` for a positive denominator.
pub fn floor_div(numerator: i128, denominator: i128) -> i128 {
    numerator.div_euclid(denominator)
}

/// `floor(value * multiplier / divisor)` for positive `multiplier` and
/// `divisor` up to `i64::MAX`, without overflowing when `value` is itself a
/// product of two such numbers.
pub fn rescale_floor(value: i128, multiplier: i128, divisor: i128) -> i128 {
    let whole = value.div_euclid(divisor);
    let fraction = value.rem_euclid(divisor);
    whole * multiplier + fraction * multiplier / divisor
}

/// Narrows to i64, saturating at its bounds.
pub fn saturate(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
