//! Module settings, through Redis's module configuration API: `CONFIG GET` /
//! `CONFIG SET rl.<name>`, `rl.<name> <value>` lines in redis.conf, `MODULE
//! LOADEX ... CONFIG`, and `loadmodule <path> <name> <value>` arguments.

#![forbid(unsafe_code)]

use std::ffi::CStr;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::ffi::{self, Ctx};

/// One setting: its name without the `rl.` prefix, its default, the values
/// it takes, and where its value lives.
pub struct Setting {
    pub name: &'static CStr,
    pub default: i64,
    pub values: Values,
    value: &'static AtomicI64,
}

/// What a setting takes.
pub enum Values {
    /// An integer from `min` to `max`.
    Range { min: i64, max: i64 },
    /// One of these words, each standing for its number.
    Words(&'static [(&'static CStr, i64)]),
}

impl Setting {
    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }

    /// `value` (a module argument) as this setting's number.
    fn parse(&self, value: &[u8]) -> Result<i64, String> {
        let name = self.name.to_string_lossy();
        let got = String::from_utf8_lossy(value);
        match self.values {
            Values::Range { min, max } => crate::args::parse_i64(value)
                .filter(|v| (min..=max).contains(v))
                .ok_or_else(|| {
                    format!("{name} must be an integer from {min} to {max}, got '{got}'")
                }),
            Values::Words(words) => words
                .iter()
                .find(|(word, _)| value.eq_ignore_ascii_case(word.to_bytes()))
                .map(|&(_, number)| number)
                .ok_or_else(|| {
                    let words: Vec<String> = words
                        .iter()
                        .map(|(word, _)| word.to_string_lossy().into_owned())
                        .collect();
                    format!("{name} must be one of {}, got '{got}'", words.join(", "))
                }),
        }
    }
}

static MAX_LOG_LIMIT_VALUE: AtomicI64 = AtomicI64::new(1_000_000);

/// The largest value `rl.max-log-limit` takes, so the largest `limit` a
/// write from a master or a file may carry.
pub const MAX_LOG_LIMIT_TOP: i64 = 1_000_000_000;

/// The largest `limit` RL.SLIDELOG (and RL.ALL's SLIDELOG) accepts. A log
/// keeps at most `limit` records, about 2 to 3 bytes each.
pub static MAX_LOG_LIMIT: Setting = Setting {
    name: c"max-log-limit",
    default: 1_000_000,
    values: Values::Range {
        min: 1,
        max: MAX_LOG_LIMIT_TOP,
    },
    value: &MAX_LOG_LIMIT_VALUE,
};

static MAX_WAIT_MS_VALUE: AtomicI64 = AtomicI64::new(60_000);

/// The longest `WAIT timeout_ms` a call may give (ms).
pub static MAX_WAIT_MS: Setting = Setting {
    name: c"max-wait-ms",
    default: 60_000,
    values: Values::Range {
        min: 1,
        max: 86_400_000,
    },
    value: &MAX_WAIT_MS_VALUE,
};

/// Which clients may pin a call's time with `AT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientTime {
    /// Any client.
    Yes = 0,
    /// Clients connected over loopback TCP or a Unix socket.
    Local = 1,
    /// No client (writes from a master or a file being loaded always run).
    No = 2,
}

impl ClientTime {
    /// Its word in `rl.client-time`.
    pub fn word(self) -> &'static str {
        match self {
            ClientTime::Yes => "yes",
            ClientTime::Local => "local",
            ClientTime::No => "no",
        }
    }
}

static CLIENT_TIME_VALUE: AtomicI64 = AtomicI64::new(ClientTime::Local as i64);

/// `rl.client-time`: `yes`, `local` (the default) or `no`.
pub static CLIENT_TIME: Setting = Setting {
    name: c"client-time",
    default: ClientTime::Local as i64,
    values: Values::Words(&[
        (c"yes", ClientTime::Yes as i64),
        (c"local", ClientTime::Local as i64),
        (c"no", ClientTime::No as i64),
    ]),
    value: &CLIENT_TIME_VALUE,
};

/// The value of `rl.client-time`.
pub fn client_time() -> ClientTime {
    match CLIENT_TIME.get() {
        0 => ClientTime::Yes,
        1 => ClientTime::Local,
        _ => ClientTime::No,
    }
}

/// Every setting.
pub const SETTINGS: [&Setting; 3] = [&MAX_LOG_LIMIT, &CLIENT_TIME, &MAX_WAIT_MS];

/// Registers every setting, with the `name value` pairs of the loadmodule
/// arguments as defaults, then loads what redis.conf or MODULE LOADEX gave:
/// a config line wins over an argument, so that CONFIG SET followed by
/// CONFIG REWRITE survives a restart.
pub fn load(ctx: Ctx, args: &[&[u8]]) -> Result<(), String> {
    let defaults = defaults_from_arguments(args)?;
    for (setting, default) in SETTINGS.into_iter().zip(defaults) {
        setting.value.store(default, Ordering::Relaxed);
        match setting.values {
            Values::Range { min, max } => ffi::config::register_numeric(
                ctx,
                setting.name,
                default,
                (min, max),
                setting.value,
            )?,
            Values::Words(words) => {
                ffi::config::register_enum(ctx, setting.name, default, words, setting.value)?
            }
        }
    }
    ffi::config::load(ctx)
}

/// Each setting's default: its own, or the value the `name value` pairs of
/// the module arguments give it (the name with or without `rl.`).
fn defaults_from_arguments(args: &[&[u8]]) -> Result<[i64; SETTINGS.len()], String> {
    let mut defaults = SETTINGS.map(|setting| setting.default);
    let mut pairs = args.chunks(2);
    for pair in &mut pairs {
        let [name, value] = pair else {
            return Err(format!(
                "module argument '{}' needs a value (arguments are name value pairs)",
                String::from_utf8_lossy(pair.first().copied().unwrap_or_default())
            ));
        };
        let bare = crate::args::strip_prefix_ignore_case(name, b"rl.");
        let Some(index) = SETTINGS
            .iter()
            .position(|s| bare.eq_ignore_ascii_case(s.name.to_bytes()))
        else {
            return Err(format!(
                "unknown module argument '{}' (settings: {})",
                String::from_utf8_lossy(name),
                SETTINGS.map(|s| s.name.to_string_lossy()).join(", ")
            ));
        };
        defaults[index] = SETTINGS[index].parse(value)?;
    }
    Ok(defaults)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_arguments_set_defaults_and_name_what_they_take() {
        let defaults = defaults_from_arguments(&[b"client-time", b"NO", b"rl.max-log-limit", b"7"]);
        assert_eq!(defaults, Ok([7, ClientTime::No as i64, 60_000]));
        assert_eq!(
            defaults_from_arguments(&[b"client-time", b"maybe"]),
            Err("client-time must be one of yes, local, no, got 'maybe'".to_owned())
        );
        assert_eq!(
            defaults_from_arguments(&[b"max-log-limit", b"0"]),
            Err("max-log-limit must be an integer from 1 to 1000000000, got '0'".to_owned())
        );
        assert!(defaults_from_arguments(&[b"client-time"]).is_err());
        assert!(defaults_from_arguments(&[b"speed", b"1"]).is_err());
    }
}
