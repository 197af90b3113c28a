//! CL.THROTTLE: redis-cell's command, for its users to move over without
//! changing their calls, replies or stored keys.
//!
//! The state is what redis-cell keeps: a plain string holding the TAT in
//! unix nanoseconds, expiring when the TAT passes. A write stores it in
//! place, sets the absolute expiry, and is propagated like every write of
//! this module: the command as called, after the ms it read
//! ([`crate::replication`]), so replicas and the AOF recompute exactly the
//! master's state whatever their clock (redis-cell replicated the command
//! alone, to be recomputed on each replica's clock). The write sends the
//! keyspace event `cl.throttle` in the module class.

use crate::algo::gcra::{self, Gcra, GcraError, GcraParams, MAX_SECONDS};
use crate::args::{format_i64, parse_i64, IntArg};
use crate::callback;
use crate::error::{CommandError, CommandResult};
use crate::ffi::command::{ArgSpec, CommandSpec, KeyLayout};
use crate::ffi::Call;
use crate::limiters::publish_write;
use crate::replication::CallClock;
use crate::reply::Reply;
use crate::stats::CommandStats;

pub static THROTTLE: CommandSpec = CommandSpec {
    name: c"CL.THROTTLE",
    callback: callback!(THROTTLE),
    handler: throttle,
    stats: CommandStats::new(),
    flags: c"write deny-oom",
    arity: -5,
    summary: c"Applies quantity (default 1) to a GCRA limit of count_per_period per period seconds with bursts of max_burst, as redis-cell does.",
    complexity: c"O(1)",
    since: c"0.1.0",
    keys: KeyLayout::Written,
    args: &[
        ArgSpec::key(c"key"),
        ArgSpec::integer(c"max_burst"),
        ArgSpec::integer(c"count_per_period"),
        ArgSpec::integer(c"period"),
        ArgSpec::integer(c"quantity").optional(),
    ],
};

const MAX_BURST: IntArg = IntArg::new("max_burst", 0, i64::MAX - 1);
const COUNT_PER_PERIOD: IntArg = IntArg::new("count_per_period", 1, i64::MAX);
const PERIOD: IntArg = IntArg::new("period", 1, MAX_SECONDS);
const QUANTITY: IntArg = IntArg::new("quantity", 0, i64::MAX);

const NANOS_PER_MS: i64 = 1_000_000;

/// `CL.THROTTLE key max_burst count_per_period period [quantity]`
fn throttle(call: &Call) -> CommandResult<Reply> {
    if call.arg_count() > 6 {
        return Err(CommandError::WrongArity);
    }
    let params = GcraParams {
        max_burst: MAX_BURST.parse(call.arg(2)?)?,
        count_per_period: COUNT_PER_PERIOD.parse(call.arg(3)?)?,
        period_s: PERIOD.parse(call.arg(4)?)?,
    };
    let quantity = match call.arg_count() {
        6 => QUANTITY.parse(call.arg(5)?)?,
        _ => 1,
    };
    let rule = Gcra::new(&params).map_err(rule_error)?;
    let clock = CallClock::new(call);
    let now_ns = clock
        .now_ms()
        .checked_mul(NANOS_PER_MS)
        .ok_or(CommandError::Server("the server clock is out of range"))?;
    // One open for the decision and the write; the key is signalled as
    // modified only when written, so a limited call or a peek leaves it
    // untouched (WATCH included).
    let mut key = call.update_key(1)?;
    let stored = match key.string()? {
        Some(bytes) => Some(parse_i64(bytes).ok_or_else(|| {
            CommandError::invalid(
                "the value at the key is not a CL.THROTTLE state (an integer TAT in nanoseconds)",
            )
        })?),
        None => None,
    };
    let outcome = gcra::throttle(stored, &rule, now_ns, quantity).map_err(rule_error)?;
    if let (Some(tat), Some(expire_at_ms)) = (outcome.write, outcome.expire_at_ms()) {
        key.mark_written();
        key.set_string(format_i64(tat, &mut [0u8; 20]))?;
        key.set_expire_at(expire_at_ms)?;
        drop(key);
        publish_write(call, &clock, &THROTTLE, &[1])?;
    }
    Ok(Reply::Throttle(outcome.reply()))
}

fn rule_error(error: GcraError) -> CommandError {
    match error {
        GcraError::RateTooHigh => CommandError::invalid(
            "count_per_period must be at most period * 1000000000 (an emission interval of at least 1 ns)",
        ),
        GcraError::ToleranceTooLong => CommandError::invalid(format!(
            "(max_burst + 1) * period / count_per_period must be at most {MAX_SECONDS} seconds"
        )),
        GcraError::TatOutOfRange => {
            CommandError::Server("the server clock is too late for a TAT in 64-bit nanoseconds")
        }
    }
}
