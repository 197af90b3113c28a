//! Typed, binary-safe parsing of command arguments.
//!
//! Numbers are base-10 integers written as Redis writes them: an optional
//! `-`, no `+`, no spaces, no leading zeros. Every error names the argument.

#![forbid(unsafe_code)]

use crate::algo::quota;
use crate::error::{CommandError, CommandResult};

/// One item per key of a call: on the stack for the usual few keys, so a
/// call allocates nothing for them.
pub type PerKey<T> = smallvec::SmallVec<[T; 4]>;

/// An integer argument with its accepted range.
pub struct IntArg {
    pub name: &'static str,
    pub min: i64,
    pub max: i64,
}

impl IntArg {
    pub const fn new(name: &'static str, min: i64, max: i64) -> Self {
        IntArg { name, min, max }
    }

    pub fn parse(&self, raw: &[u8]) -> CommandResult<i64> {
        parse_i64(raw)
            .filter(|value| (self.min..=self.max).contains(value))
            .ok_or_else(|| {
                CommandError::invalid(format!(
                    "{} must be an integer from {} to {}",
                    self.name, self.min, self.max
                ))
            })
    }
}

/// Parses like Redis's `string2ll`: strict base 10, within i64.
pub fn parse_i64(raw: &[u8]) -> Option<i64> {
    let (negative, digits) = match raw {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, raw),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    // 19 digits stay below 10^19 < 2^64: no step can overflow a u64.
    if digits.len() > 19 {
        return None;
    }
    let mut magnitude: u64 = 0;
    for &byte in digits {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        magnitude = magnitude * 10 + u64::from(digit);
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// `value` in base 10, written into `buffer`, two digits a step.
pub fn format_i64(value: i64, buffer: &mut [u8; 20]) -> &[u8] {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut magnitude = value.unsigned_abs();
    let mut start = buffer.len();
    while magnitude >= 10 {
        let pair = (magnitude % 100) as usize * 2;
        start -= 2;
        buffer[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        magnitude /= 100;
    }
    if magnitude > 0 || start == buffer.len() {
        start -= 1;
        buffer[start] = b'0' + magnitude as u8;
    }
    if value < 0 {
        start -= 1;
        buffer[start] = b'-';
    }
    &buffer[start..]
}

/// `bytes` without a leading `prefix`, compared ignoring ASCII case.
pub fn strip_prefix_ignore_case<'a>(bytes: &'a [u8], prefix: &[u8]) -> &'a [u8] {
    match bytes.split_at_checked(prefix.len()) {
        Some((head, rest)) if head.eq_ignore_ascii_case(prefix) => rest,
        _ => bytes,
    }
}

/// Whether `word` is `name` in any case, where `name` is upper-case ASCII
/// letters: as `eq_ignore_ascii_case`, eight bytes at a time. Clearing a
/// byte's 0x20 bit maps only the two cases of a letter to that letter.
#[inline]
pub fn is_word(word: &[u8], name: &[u8]) -> bool {
    const UPPER: u64 = !0x2020_2020_2020_2020;
    if word.len() != name.len() {
        return false;
    }
    let (mut word, mut name) = (word, name);
    while let (Some((w, word_rest)), Some((n, name_rest))) =
        (word.split_first_chunk::<8>(), name.split_first_chunk::<8>())
    {
        if u64::from_ne_bytes(*w) & UPPER != u64::from_ne_bytes(*n) {
            return false;
        }
        (word, name) = (word_rest, name_rest);
    }
    word.iter().zip(name).all(|(&w, &n)| w & !0x20 == n)
}

/// The trailing options a command accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionName {
    Cost,
    /// `COSTS c1 ... cn`, with the number of values it takes.
    Costs(usize),
    At,
    /// A window's slot length.
    Precision,
    /// A fixed window (no value).
    Fixed,
    /// A quota's time zone (a word).
    Tz,
    /// A quota's billing anchor.
    Anchor,
    /// How long a call may wait for its cost (a word: its range is a
    /// setting's).
    Wait,
}

impl OptionName {
    fn keyword(self) -> &'static str {
        match self {
            OptionName::Cost => "COST",
            OptionName::Costs(_) => "COSTS",
            OptionName::At => "AT",
            OptionName::Precision => "PRECISION",
            OptionName::Fixed => "FIXED",
            OptionName::Tz => "TZ",
            OptionName::Anchor => "ANCHOR",
            OptionName::Wait => "WAIT",
        }
    }

    fn value_arg(self) -> IntArg {
        let (min, max) = match self {
            OptionName::Precision => (1, i64::MAX),
            OptionName::Anchor => (quota::ANCHOR_MIN_MS, quota::ANCHOR_MAX_MS),
            _ => (0, i64::MAX),
        };
        IntArg::new(self.keyword(), min, max)
    }
}

/// Values of the trailing options; `None` (or false) when not given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options<'a> {
    pub cost: Option<i64>,
    pub costs: Option<PerKey<i64>>,
    pub at: Option<i64>,
    pub precision: Option<i64>,
    pub fixed: bool,
    pub tz: Option<&'a [u8]>,
    pub anchor: Option<i64>,
    pub wait: Option<&'a [u8]>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options::NONE
    }
}

impl Options<'_> {
    /// No option given.
    pub const NONE: Options<'static> = Options {
        cost: None,
        costs: None,
        at: None,
        precision: None,
        fixed: false,
        tz: None,
        anchor: None,
        wait: None,
    };

    /// The options `COST raw` alone, as [`parse_options`] reads them.
    pub fn of_cost(raw: &[u8]) -> CommandResult<Self> {
        Ok(Options {
            cost: Some(OptionName::Cost.value_arg().parse(raw)?),
            ..Options::default()
        })
    }
}

/// Parses `[NAME value] ...` in any order, case-insensitive, each at most once.
pub fn parse_options<'a>(
    args: impl IntoIterator<Item = &'a [u8]>,
    accepted: &[OptionName],
) -> CommandResult<Options<'a>> {
    parse_options_among(args, &[accepted])
}

/// [`parse_options`] of the options in any of the `accepted` lists.
pub fn parse_options_among<'a>(
    args: impl IntoIterator<Item = &'a [u8]>,
    accepted: &[&[OptionName]],
) -> CommandResult<Options<'a>> {
    let mut args = args.into_iter().peekable();
    let options = parse_leading_options(&mut args, accepted)?;
    match args.next() {
        Some(word) if is_word(word, b"WAIT") => Err(CommandError::invalid(WAIT_NOT_TAKEN)),
        Some(word) => Err(CommandError::invalid(format!(
            "unknown option '{}'",
            printable(word)
        ))),
        None => Ok(options),
    }
}

/// The error of a `WAIT` where it does not apply.
pub const WAIT_NOT_TAKEN: &str =
    "WAIT is taken only by RL.TOKENBUCKET, RL.COST, RL.RESERVE, RL.ACQUIRE and RL.ALL over TOKENBUCKET, RESERVE and ACQUIRE specs";

/// Parses the options at the front of `args`, as [`parse_options`] does,
/// up to the first word that names none of them (left in `args`).
pub fn parse_leading_options<'a, I: Iterator<Item = &'a [u8]>>(
    args: &mut std::iter::Peekable<I>,
    accepted: &[&[OptionName]],
) -> CommandResult<Options<'a>> {
    let mut options = Options::default();
    while let Some(&name) = args.peek().and_then(|word| {
        accepted
            .iter()
            .flat_map(|list| list.iter())
            .find(|name| is_word(word, name.keyword().as_bytes()))
    }) {
        args.next();
        let value_missing = |count: usize| {
            let wanted = if count == 1 {
                "a value".to_owned()
            } else {
                format!("{count} values")
            };
            CommandError::invalid(format!("option {} needs {wanted}", name.keyword()))
        };
        let mut next_value = || -> CommandResult<i64> {
            let raw = args.next().ok_or_else(|| value_missing(1))?;
            name.value_arg().parse(raw)
        };
        let repeated = match name {
            OptionName::Costs(count) => {
                let mut values = PerKey::with_capacity(count);
                for _ in 0..count {
                    let raw = args.next().ok_or_else(|| value_missing(count))?;
                    values.push(name.value_arg().parse(raw)?);
                }
                options.costs.replace(values).is_some()
            }
            OptionName::Cost => options.cost.replace(next_value()?).is_some(),
            OptionName::At => options.at.replace(next_value()?).is_some(),
            OptionName::Precision => options.precision.replace(next_value()?).is_some(),
            OptionName::Fixed => std::mem::replace(&mut options.fixed, true),
            OptionName::Tz => {
                let zone = args.next().ok_or_else(|| value_missing(1))?;
                options.tz.replace(zone).is_some()
            }
            OptionName::Wait => {
                let timeout = args.next().ok_or_else(|| value_missing(1))?;
                options.wait.replace(timeout).is_some()
            }
            OptionName::Anchor => options.anchor.replace(next_value()?).is_some(),
        };
        if repeated {
            return Err(CommandError::invalid(format!(
                "option {} given more than once",
                name.keyword()
            )));
        }
    }
    Ok(options)
}

/// `a, b, c or d`, for error messages.
pub fn one_of(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A short, printable rendering of an argument for an error message.
pub fn printable(raw: &[u8]) -> String {
    const MAX: usize = 32;
    let shown: String = raw
        .iter()
        .take(MAX)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    if raw.len() > MAX {
        format!("{shown}...")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_word_is_eq_ignore_ascii_case_for_names_of_letters() {
        let names = [
            "COST",
            "COSTS",
            "AT",
            "TZ",
            "PRECISION",
            "TOKENBUCKET",
            "SLIDELOG",
            "QUOTA",
        ];
        for name in names {
            let name = name.as_bytes();
            let mut words = vec![name.to_vec(), name.to_ascii_lowercase(), Vec::new()];
            words.push(name.get(1..).unwrap().to_vec());
            words.push([name, b"S"].concat());
            for at in 0..name.len() {
                for byte in 0..=255u8 {
                    let mut word = name.to_vec();
                    word[at] = byte;
                    words.push(word);
                }
            }
            for word in &words {
                assert_eq!(
                    is_word(word, name),
                    word.eq_ignore_ascii_case(name),
                    "{word:?} {name:?}"
                );
            }
        }
    }

    #[test]
    fn names_matched_by_is_word_are_upper_case_letters() {
        let options = [
            OptionName::Cost,
            OptionName::Costs(2),
            OptionName::At,
            OptionName::Precision,
            OptionName::Fixed,
            OptionName::Tz,
            OptionName::Anchor,
            OptionName::Wait,
        ];
        for name in options {
            // A new option breaks this match, to be added to the list.
            match name {
                OptionName::Cost
                | OptionName::Costs(_)
                | OptionName::At
                | OptionName::Precision
                | OptionName::Fixed
                | OptionName::Tz
                | OptionName::Anchor
                | OptionName::Wait => {}
            }
        }
        let options = options.iter().map(|name| name.keyword());
        let kinds = crate::limiters::KINDS.iter().map(|kind| kind.name);
        for name in options.chain(kinds) {
            assert!(name.bytes().all(|b| b.is_ascii_uppercase()), "{name}");
        }
    }

    #[test]
    fn lists_read_as_one_of() {
        assert_eq!(one_of(&["a"]), "a");
        assert_eq!(one_of(&["a", "b"]), "a or b");
        assert_eq!(one_of(&["a", "b", "c"]), "a, b or c");
    }

    #[test]
    fn integers_format_like_to_string() {
        for value in [
            0,
            1,
            -1,
            9,
            10,
            99,
            100,
            -100,
            1005,
            1_700_000_000_000,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(
                format_i64(value, &mut [0; 20]),
                value.to_string().as_bytes()
            );
        }
    }

    #[test]
    fn prefixes_strip_ignoring_case() {
        assert_eq!(strip_prefix_ignore_case(b"RL.ALL", b"rl."), b"ALL");
        assert_eq!(strip_prefix_ignore_case(b"rl.x", b"rl."), b"x");
        assert_eq!(
            strip_prefix_ignore_case(b"CL.THROTTLE", b"rl."),
            b"CL.THROTTLE"
        );
        assert_eq!(strip_prefix_ignore_case(b"rl", b"rl."), b"rl");
    }

    #[test]
    fn integers_parse_like_redis() {
        for (raw, expected) in [
            (&b"0"[..], Some(0)),
            (b"42", Some(42)),
            (b"-42", Some(-42)),
            (b"9223372036854775807", Some(i64::MAX)),
            (b"-9223372036854775808", Some(i64::MIN)),
            (b"9223372036854775808", None),
            (b"-9223372036854775809", None),
            (b"9999999999999999999", None),
            (b"-9999999999999999999", None),
            (b"18446744073709551616", None),
            (b"00000000000000000001", None),
            (b"", None),
            (b"-", None),
            (b"-0", None),
            (b"+1", None),
            (b"01", None),
            (b" 1", None),
            (b"1 ", None),
            (b"1.5", None),
            (b"1e3", None),
            (b"1\x00", None),
            (b"\xff", None),
        ] {
            assert_eq!(
                parse_i64(raw),
                expected,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn ranges_are_enforced_and_named() {
        let capacity = IntArg::new("capacity", 1, 10);
        assert_eq!(capacity.parse(b"10"), Ok(10));
        let error = capacity.parse(b"0").expect_err("out of range");
        assert_eq!(
            error.reply_text(),
            "ERR capacity must be an integer from 1 to 10"
        );
        assert!(capacity.parse(b"x").is_err());
    }

    fn words(list: &[&'static str]) -> Vec<&'static [u8]> {
        list.iter().map(|w| w.as_bytes()).collect()
    }

    #[test]
    fn options_in_any_order_and_case() {
        let all = [OptionName::Cost, OptionName::At];
        let parsed = parse_options(words(&["at", "5", "Cost", "3"]), &all);
        assert_eq!(
            parsed,
            Ok(Options {
                cost: Some(3),
                at: Some(5),
                ..Options::default()
            })
        );
        let costs = parse_options(
            words(&["COSTS", "1", "0", "AT", "9"]),
            &[OptionName::Costs(2), OptionName::At],
        );
        assert_eq!(
            costs,
            Ok(Options {
                costs: Some(smallvec::smallvec![1, 0]),
                at: Some(9),
                ..Options::default()
            })
        );
        assert_eq!(parse_options(words(&[]), &all), Ok(Options::default()));
        let window = [OptionName::Fixed, OptionName::Precision, OptionName::Cost];
        let mut rest = words(&["fixed", "COST", "2", "TOKENBUCKET", "1"])
            .into_iter()
            .peekable();
        let leading = parse_leading_options(&mut rest, &[&window]);
        assert_eq!(
            leading,
            Ok(Options {
                fixed: true,
                cost: Some(2),
                ..Options::default()
            })
        );
        assert_eq!(
            rest.next(),
            Some(&b"TOKENBUCKET"[..]),
            "the first other word stays"
        );
    }

    #[test]
    fn option_errors_name_the_option() {
        let all = [OptionName::Cost, OptionName::At];
        let error = |list: &[&'static str], accepted: &[OptionName]| {
            parse_options(words(list), accepted)
                .expect_err("must fail")
                .reply_text()
        };
        assert_eq!(error(&["COST"], &all), "ERR option COST needs a value");
        assert_eq!(
            error(&["COSTS", "1"], &[OptionName::Costs(2)]),
            "ERR option COSTS needs 2 values"
        );
        assert_eq!(
            error(&["COST", "1", "cost", "2"], &all),
            "ERR option COST given more than once"
        );
        assert_eq!(error(&["LIMIT", "1"], &all), "ERR unknown option 'LIMIT'");
        assert_eq!(
            error(&["COST", "1"], &[OptionName::At]),
            "ERR unknown option 'COST'"
        );
        assert_eq!(
            error(&["AT", "-1"], &all),
            "ERR AT must be an integer from 0 to 9223372036854775807"
        );
        assert_eq!(
            error(&["FIXED", "FIXED"], &[OptionName::Fixed]),
            "ERR option FIXED given more than once"
        );
        assert_eq!(
            error(&["PRECISION", "0"], &[OptionName::Precision]),
            "ERR PRECISION must be an integer from 1 to 9223372036854775807"
        );
        let binary = parse_options([&b"\xff\x00"[..]], &all).expect_err("unknown");
        assert_eq!(binary.reply_text(), "ERR unknown option '\\xff\\x00'");
    }
}
