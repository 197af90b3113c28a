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

/// Everything Redis is told about one command.
pub struct CommandSpec {
    pub name: &'static CStr,
    pub callback: raw::RedisModuleCmdFunc,
    pub flags: &'static CStr,
    /// Redis arity: the exact count, or minus the least count.
    pub arity: c_int,
    pub summary: &'static CStr,
    pub complexity: &'static CStr,
    pub since: &'static CStr,
    /// The arguments after the command name; the key is the first.
    pub args: &'static [ArgSpec],
}

pub struct ArgSpec {
    pub name: &'static CStr,
    pub kind: ArgKind,
    /// The keyword that introduces an option.
    pub token: Option<&'static CStr>,
    pub optional: bool,
}

#[derive(Clone, Copy)]
pub enum ArgKind {
    Key,
    Integer,
    String,
}

impl ArgSpec {
    pub const fn key(name: &'static CStr) -> Self {
        ArgSpec {
            name,
            kind: ArgKind::Key,
            token: None,
            optional: false,
        }
    }
    pub const fn integer(name: &'static CStr) -> Self {
        ArgSpec {
            name,
            kind: ArgKind::Integer,
            token: None,
            optional: false,
        }
    }
    pub const fn string(name: &'static CStr) -> Self {
        ArgSpec {
            name,
            kind: ArgKind::String,
            token: None,
            optional: false,
        }
    }
    /// `[TOKEN name]`.
    pub const fn option(token: &'static CStr, name: &'static CStr) -> Self {
        ArgSpec {
            name,
            kind: ArgKind::Integer,
            token: Some(token),
            optional: true,
        }
    }
}

/// Wraps a [`crate::ffi::Handler`] in the C callback Redis calls.
#[macro_export]
macro_rules! callback {
    ($handler:path) => {{
        extern "C" fn callback(
            ctx: *mut ::redis_module::raw::RedisModuleCtx,
            argv: *mut *mut ::redis_module::raw::RedisModuleString,
            argc: ::std::os::raw::c_int,
        ) -> ::std::os::raw::c_int {
            $crate::ffi::dispatch(ctx, argv, argc, $handler)
        }
        Some(callback as _)
    }};
}

/// Creates the command and sets its metadata.
pub fn register(ctx: *mut raw::RedisModuleCtx, spec: &CommandSpec) -> Result<(), String> {
    let name = spec.name.to_string_lossy();
    let (Some(create), Some(get), Some(set_info)) = (
        unsafe { raw::RedisModule_CreateCommand },
        unsafe { raw::RedisModule_GetCommand },
        unsafe { raw::RedisModule_SetCommandInfo },
    ) else {
        return Err("this server lacks the Redis 7.0 command API".to_owned());
    };
    // SAFETY: ctx is the module's load context; strings are static.
    let created = unsafe {
        create(
            ctx,
            spec.name.as_ptr(),
            spec.callback,
            spec.flags.as_ptr(),
            1,
            1,
            1,
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

    let key_spec = KeySpec::new(
        None,
        KeySpecFlags::READ_WRITE | KeySpecFlags::ACCESS | KeySpecFlags::UPDATE,
        BeginSearch::new_index(1),
        FindKeys::new_range(0, 1, 0),
    );
    let mut key_specs: Vec<raw::RedisModuleCommandKeySpec> = vec![(&key_spec).into()];
    // SAFETY: an all-zero key spec is the terminator Redis expects.
    key_specs.push(unsafe { std::mem::zeroed() });
    let mut args: Vec<raw::RedisModuleCommandArg> = spec.args.iter().map(raw_arg).collect();
    args.push(end_of_args());

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
    Ok(())
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
    };
    raw::RedisModuleCommandArg {
        name: arg.name.as_ptr(),
        type_,
        key_spec_index,
        token: arg.token.map_or(ptr::null(), CStr::as_ptr),
        flags: if arg.optional {
            raw::REDISMODULE_CMD_ARG_OPTIONAL as c_int
        } else {
            0
        },
        ..end_of_args()
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
