//! Replies the commands send (sent to the client by [`crate::ffi`]).

#![forbid(unsafe_code)]

use std::ffi::CStr;

use crate::algo::Decision;
use crate::args::PerKey;

pub enum Reply {
    /// `[allowed, limit, remaining, retry_after_ms, reset_after_ms]`.
    Decision(Decision),
    /// The five integers, then the id of what the call opened (0: nothing).
    DecisionWithId(Decision, i64),
    /// `[allowed, retry_after_ms, reply_1, ..., reply_n]`, each reply five
    /// integers, and a sixth (an id) for the kinds that open something.
    All {
        allowed: bool,
        retry_after_ms: i64,
        decisions: PerKey<(Decision, Option<i64>)>,
    },
    Integer(i64),
    /// CL.THROTTLE's five integers, `limited` first.
    Throttle([i64; 5]),
    /// Field-value pairs: a map under RESP3, a flat array under RESP2.
    Map(Vec<(&'static CStr, Value)>),
    Null,
    /// `+OK`.
    Ok,
    /// Nothing: the call answered a keys position request.
    KeysReported,
    /// Nothing yet: the call took its cost and blocked its client, which is
    /// answered when its cost is due (`WAIT`).
    Blocked,
}

pub enum Value {
    Int(i64),
    Text(&'static CStr),
    String(String),
    Null,
}

impl Reply {
    /// Whether the reply allows (true) or denies (false) the call, for the
    /// replies that decide.
    pub fn verdict(&self) -> Option<bool> {
        match self {
            Reply::Decision(decision) | Reply::DecisionWithId(decision, _) => {
                Some(decision.allowed)
            }
            Reply::All { allowed, .. } => Some(*allowed),
            Reply::Blocked => Some(true),
            Reply::Throttle([limited, ..]) => Some(*limited == 0),
            Reply::Integer(_) | Reply::Map(_) | Reply::Null | Reply::Ok | Reply::KeysReported => {
                None
            }
        }
    }

    /// The reply of a limiter: its decision, and the id of what it opened
    /// for the kinds that open something.
    pub fn decision(decision: Decision, opened_id: Option<i64>) -> Reply {
        match opened_id {
            Some(id) => Reply::DecisionWithId(decision, id),
            None => Reply::Decision(decision),
        }
    }
}
