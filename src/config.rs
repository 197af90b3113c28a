//! Module settings, through Redis's module configuration API: `CONFIG GET` /
//! `CONFIG SET rl.<name>`, `rl.<name> <value>` lines in redis.conf, `MODULE
//! LOADEX ... CONFIG`, and `loadmodule <path> <name> <value>` arguments.

#![forbid(unsafe_code)]

use std::ffi::CStr;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::ffi::{self, Ctx};

/// One numeric setting: its name without the `rl.` prefix, its default and
/// accepted range, and where its value lives.
pub struct Setting {
    pub name: &'static CStr,
    pub default: i64,
    pub min: i64,
    pub max: i64,
    value: &'static AtomicI64,
}

impl Setting {
    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }
}

static MAX_LOG_LIMIT_VALUE: AtomicI64 = AtomicI64::new(1_000_000);

/// The largest `limit` RL.SLIDELOG (and RL.ALL's SLIDELOG) accepts. A log
/// keeps at most `limit` records, about 2 to 3 bytes each.
pub static MAX_LOG_LIMIT: Setting = Setting {
    name: c"max-log-limit",
    default: 1_000_000,
    min: 1,
    max: 1_000_000_000,
    value: &MAX_LOG_LIMIT_VALUE,
};

/// Every setting.
pub const SETTINGS: [&Setting; 1] = [&MAX_LOG_LIMIT];

/// Registers every setting, with the `name value` pairs of the loadmodule
/// arguments as defaults, then loads what redis.conf or MODULE LOADEX gave:
/// a config line wins over an argument, so that CONFIG SET followed by
/// CONFIG REWRITE survives a restart.
pub fn load(ctx: Ctx, args: &[&[u8]]) -> Result<(), String> {
    let defaults = defaults_from_arguments(args)?;
    for (setting, default) in SETTINGS.into_iter().zip(defaults) {
        setting.value.store(default, Ordering::Relaxed);
        ffi::config::register_numeric(
            ctx,
            setting.name,
            default,
            (setting.min, setting.max),
            setting.value,
        )?;
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
        let setting = SETTINGS[index];
        let parsed = crate::args::parse_i64(value)
            .filter(|v| (setting.min..=setting.max).contains(v))
            .ok_or_else(|| {
                format!(
                    "{} must be an integer from {} to {}, got '{}'",
                    setting.name.to_string_lossy(),
                    setting.min,
                    setting.max,
                    String::from_utf8_lossy(value)
                )
            })?;
        defaults[index] = parsed;
    }
    Ok(defaults)
}
