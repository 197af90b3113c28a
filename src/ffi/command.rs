//! Command registration with full metadata: flags, arity, key spec and the
//! argument docs that COMMAND INFO, COMMAND DOCS and redis-cli hints show.
//!
//! On Redis 7.0 the ACL-category API is missing, so commands are created
//! with `RedisModule_CreateCommand` and described with
//! `RedisModule_SetCommandInfo`, both present since 7.0.

use std::ffi::CStr;
use std::os::raw::c_int;
use std::ptr;

use redis_module::commands::{BeginSearch, FindKeys, KeySpec, KeySpecFlags};
use redis_module::raw;

/// One command: its handler, and everything Redis is told about it.
pub struct CommandSpec {
    pub name: &'static CStr,
    /// What Redis calls: [`crate::callback!`] of this spec.
    pub callback: raw::RedisModuleCmdFunc,
    pub handler: super::Handler,
    /// Its counters for `INFO rl`.
    pub stats: crate::stats::CommandStats,
    pub flags: &'static CStr,
    /// Redis arity: the exact count, or minus the least count (the command
    /// name included). [`super::dispatch`] checks it too, for calls that
    /// Redis did not check (RL.REPLAY's).
    pub arity: c_int,
    pub summary: &'static CStr,
    pub complexity: &'static CStr,
    pub since: &'static CStr,
    pub keys: KeyLayout,
    /// The arguments after the command name.
    pub args: &'static [ArgSpec],
}

impl CommandSpec {
    /// Whether `count` arguments (the command name included) fit the arity.
    pub fn accepts_arg_count(&self, count: usize) -> bool {
        let needed = usize::try_from(self.arity.unsigned_abs()).unwrap_or(usize::MAX);
        if self.arity < 0 {
            count >= needed
        } else {
            count == needed
        }
    }

    /// Whether the command writes and takes `AT`: whether RL.REPLAY can run
    /// it with its time pinned.
    pub fn is_replayable(&self) -> bool {
        !matches!(self.keys, KeyLayout::Read | KeyLayout::Keyless)
            && self.args.iter().any(|arg| arg.token == Some(AT))
    }
}

/// The option that pins a call's time.
pub const AT: &CStr = c"AT";

/// Where a command's keys are and what it does with them.
#[derive(Clone, Copy)]
pub enum KeyLayout {
    /// One key at position 1, read and written.
    Written,
    /// One key at position 1, only read.
    Read,
    /// `numkeys` at position 1, then that many keys, read and written. The
    /// command answers keys position requests (flag `getkeys-api`), which
    /// Redis 7.0 cluster routing needs besides the key spec.
    NumKeys,
    /// Every argument but the last is a key, read and written.
    AllButLast,
    /// No key: a command about the server, not the data.
    Keyless,
}

impl KeyLayout {
    /// The legacy (first, last, step) key range given to CreateCommand.
    fn legacy_range(self) -> (c_int, c_int, c_int) {
        match self {
            KeyLayout::AllButLast => (1, -2, 1),
            KeyLayout::Keyless => (0, 0, 0),
            KeyLayout::Written | KeyLayout::Read | KeyLayout::NumKeys => (1, 1, 1),
        }
    }
}

pub struct ArgSpec {
    pub name: &'static CStr,
    pub kind: ArgKind,
    /// The keyword that introduces an option.
    pub token: Option<&'static CStr>,
    pub optional: bool,
    /// Repeated (one per key, for RL.ALL).
    pub multiple: bool,
}

#[derive(Clone, Copy)]
pub enum ArgKind {
    Key,
    Integer,
    String,
    /// Only its token, which is the argument.
    PureToken,
    /// One of these.
    OneOf(&'static [ArgSpec]),
}

impl ArgSpec {
    const fn new(name: &'static CStr, kind: ArgKind) -> Self {
        ArgSpec {
            name,
            kind,
            token: None,
            optional: false,
            multiple: false,
        }
    }
    pub const fn key(name: &'static CStr) -> Self {
        ArgSpec::new(name, ArgKind::Key)
    }
    pub const fn integer(name: &'static CStr) -> Self {
        ArgSpec::new(name, ArgKind::Integer)
    }
    pub const fn string(name: &'static CStr) -> Self {
        ArgSpec::new(name, ArgKind::String)
    }
    /// A keyword alone, such as `FIXED`.
    pub const fn pure_token(token: &'static CStr) -> Self {
        ArgSpec {
            token: Some(token),
            ..ArgSpec::new(token, ArgKind::PureToken)
        }
    }
    /// One of `choices`: `[a | b]` once made optional.
    pub const fn one_of(name: &'static CStr, choices: &'static [ArgSpec]) -> Self {
        ArgSpec::new(name, ArgKind::OneOf(choices))
    }
    /// `[AT unix_ms]`.
    pub const fn at() -> Self {
        ArgSpec::option(AT, c"unix_ms")
    }
    /// `TOKEN name`: an integer after its keyword.
    pub const fn tagged(token: &'static CStr, name: &'static CStr) -> Self {
        ArgSpec {
            token: Some(token),
            ..ArgSpec::new(name, ArgKind::Integer)
        }
    }
    /// `[TOKEN name]` where name is a word.
    pub const fn word_option(token: &'static CStr, name: &'static CStr) -> Self {
        ArgSpec {
            token: Some(token),
            ..ArgSpec::new(name, ArgKind::String)
        }
        .optional()
    }
    /// `[TOKEN name]`.
    pub const fn option(token: &'static CStr, name: &'static CStr) -> Self {
        ArgSpec::tagged(token, name).optional()
    }
    /// The argument may be left out (a trailing positional argument).
    pub const fn optional(self) -> Self {
        ArgSpec {
            optional: true,
            ..self
        }
    }
    /// The argument repeated one or more times.
    pub const fn repeated(self) -> Self {
        ArgSpec {
            multiple: true,
            ..self
        }
    }
}

/// The C callback Redis calls for the command spec named: it runs the
/// spec's handler through `crate::ffi::dispatch`.
#[macro_export]
macro_rules! callback {
    ($spec:path) => {{
        extern "C" fn callback(
            ctx: *mut ::redis_module::raw::RedisModuleCtx,
            argv: *mut *mut ::redis_module::raw::RedisModuleString,
            argc: ::std::os::raw::c_int,
        ) -> ::std::os::raw::c_int {
            $crate::ffi::dispatch(ctx, argv, argc, &$spec)
        }
        Some(callback as _)
    }};
}

/// The module's own ACL category, on servers that let modules add one
/// (Redis 7.4+, Valkey).
pub const ACL_CATEGORY: &CStr = c"ratelimit";

/// Adds [`ACL_CATEGORY`]; false on servers without the API (Redis 7.0, 7.2).
pub fn add_acl_category(ctx: *mut raw::RedisModuleCtx) -> bool {
    match unsafe { raw::RedisModule_AddACLCategory } {
        // SAFETY: ctx is the module's load context; the name is static.
        Some(add) => (unsafe { add(ctx, ACL_CATEGORY.as_ptr()) }) == raw::Status::Ok as c_int,
        None => false,
    }
}

/// Creates the command and sets its metadata. `with_category`: the module's
/// ACL category exists, so the command joins it.
pub fn register(
    ctx: *mut raw::RedisModuleCtx,
    spec: &CommandSpec,
    with_category: bool,
) -> Result<(), String> {
    let name = spec.name.to_string_lossy();
    let (Some(create), Some(get), Some(set_info)) = (
        unsafe { raw::RedisModule_CreateCommand },
        unsafe { raw::RedisModule_GetCommand },
        unsafe { raw::RedisModule_SetCommandInfo },
    ) else {
        return Err("this server lacks the Redis 7.0 command API".to_owned());
    };
    let (first_key, last_key, key_step) = spec.keys.legacy_range();
    // SAFETY: ctx is the module's load context; strings are static.
    let created = unsafe {
        create(
            ctx,
            spec.name.as_ptr(),
            spec.callback,
            spec.flags.as_ptr(),
            first_key,
            last_key,
            key_step,
        )
    };
    if created != raw::Status::Ok as c_int {
        return Err(format!("could not create command {name}"));
    }
    // SAFETY: as above.
    let command = unsafe { get(ctx, spec.name.as_ptr()) };
    if command.is_null() {
        return Err(format!("could not find command {name} after creating it"));
    }

    let written = KeySpecFlags::READ_WRITE | KeySpecFlags::ACCESS | KeySpecFlags::UPDATE;
    let key_spec = match spec.keys {
        KeyLayout::Keyless => None,
        KeyLayout::Written => Some(KeySpec::new(
            None,
            written,
            BeginSearch::new_index(1),
            FindKeys::new_range(0, 1, 0),
        )),
        KeyLayout::Read => Some(KeySpec::new(
            None,
            KeySpecFlags::READ_ONLY | KeySpecFlags::ACCESS,
            BeginSearch::new_index(1),
            FindKeys::new_range(0, 1, 0),
        )),
        KeyLayout::NumKeys => Some(KeySpec::new(
            None,
            written,
            BeginSearch::new_index(1),
            FindKeys::new_keys_num(0, 1, 1),
        )),
        KeyLayout::AllButLast => Some(KeySpec::new(
            None,
            written,
            BeginSearch::new_index(1),
            FindKeys::new_range(-2, 1, 0),
        )),
    };
    let mut key_specs: Vec<raw::RedisModuleCommandKeySpec> =
        key_spec.iter().map(Into::into).collect();
    // SAFETY: an all-zero key spec is the terminator Redis expects.
    key_specs.push(unsafe { std::mem::zeroed() });
    let mut subargs = Vec::new();
    let mut args = raw_args(spec.args, &mut subargs);

    let version = raw::RedisModuleCommandInfoVersion {
        version: 1,
        sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
        sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
        sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
    };
    let info = raw::RedisModuleCommandInfo {
        version: &version,
        summary: spec.summary.as_ptr(),
        complexity: spec.complexity.as_ptr(),
        since: spec.since.as_ptr(),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity: spec.arity,
        key_specs: key_specs.as_mut_ptr(),
        args: args.as_mut_ptr(),
    };
    // SAFETY: every pointer in info lives until the call returns; Redis copies.
    if unsafe { set_info(command, &info) } != raw::Status::Ok as c_int {
        return Err(format!("could not set the metadata of {name}"));
    }
    set_acl_categories(command, spec, with_category)
}

/// Places the command in `read` or `write`, and in the module's category,
/// where the server lets modules set categories (Redis 7.2+, Valkey); on
/// Redis 7.0 module commands belong to no category but `@all`.
fn set_acl_categories(
    command: *mut raw::RedisModuleCommand,
    spec: &CommandSpec,
    with_category: bool,
) -> Result<(), String> {
    let Some(set_categories) = (unsafe { raw::RedisModule_SetCommandACLCategories }) else {
        return Ok(());
    };
    let categories = match (spec.keys, with_category) {
        (KeyLayout::Read, true) => c"ratelimit read",
        (KeyLayout::Read, false) => c"read",
        (_, true) => c"ratelimit write",
        (_, false) => c"write",
    };
    // SAFETY: command was just created; the string is static.
    if unsafe { set_categories(command, categories.as_ptr()) } != raw::Status::Ok as c_int {
        return Err(format!(
            "could not set the ACL categories of {}",
            spec.name.to_string_lossy()
        ));
    }
    Ok(())
}

/// `args` as Redis reads them, terminated; the sub-arguments of a
/// one-of live in `storage`, which must outlive the result's use.
fn raw_args(
    args: &[ArgSpec],
    storage: &mut Vec<Vec<raw::RedisModuleCommandArg>>,
) -> Vec<raw::RedisModuleCommandArg> {
    let mut raw_list: Vec<raw::RedisModuleCommandArg> = args
        .iter()
        .map(|arg| {
            let subargs = match arg.kind {
                ArgKind::OneOf(choices) => {
                    let mut choices = raw_args(choices, storage);
                    let pointer = choices.as_mut_ptr();
                    // Moving the Vec into storage keeps its buffer in place.
                    storage.push(choices);
                    pointer
                }
                _ => ptr::null_mut(),
            };
            raw::RedisModuleCommandArg {
                subargs,
                ..raw_arg(arg)
            }
        })
        .collect();
    raw_list.push(end_of_args());
    raw_list
}

fn raw_arg(arg: &ArgSpec) -> raw::RedisModuleCommandArg {
    let (type_, key_spec_index) = match arg.kind {
        ArgKind::Key => (raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY, 0),
        ArgKind::Integer => (
            raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
            -1,
        ),
        ArgKind::String => (
            raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
            -1,
        ),
        ArgKind::PureToken => (
            raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
            -1,
        ),
        ArgKind::OneOf(_) => (
            raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF,
            -1,
        ),
    };
    raw::RedisModuleCommandArg {
        name: arg.name.as_ptr(),
        type_,
        key_spec_index,
        token: arg.token.map_or(ptr::null(), CStr::as_ptr),
        flags: flag(arg.optional, raw::REDISMODULE_CMD_ARG_OPTIONAL)
            | flag(arg.multiple, raw::REDISMODULE_CMD_ARG_MULTIPLE),
        ..end_of_args()
    }
}

fn flag(set: bool, value: u32) -> c_int {
    if set {
        value as c_int
    } else {
        0
    }
}

fn end_of_args() -> raw::RedisModuleCommandArg {
    raw::RedisModuleCommandArg {
        name: ptr::null(),
        type_: 0,
        key_spec_index: -1,
        token: ptr::null(),
        summary: ptr::null(),
        since: ptr::null(),
        flags: 0,
        deprecated_since: ptr::null(),
        subargs: ptr::null_mut(),
        display_text: ptr::null(),
    }
}
