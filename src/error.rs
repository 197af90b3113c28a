//! Errors a command replies with, following Redis conventions.

#![forbid(unsafe_code)]

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// Bad input: the message names the argument (sent as `ERR <message>`).
    Invalid(Cow<'static, str>),
    /// Too few arguments: Redis's standard arity error.
    WrongArity,
    /// The key holds a value of another type.
    WrongType,
    /// Key number n (from 1) of a multi-key command holds another type.
    WrongTypeKey(usize),
    /// The server refused an operation the command needed.
    Server(&'static str),
}

impl CommandError {
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        CommandError::Invalid(message.into())
    }

    /// The error as it applies to key (or spec) number `position` of a
    /// multi-key command.
    pub fn at_position(self, position: usize) -> Self {
        match self {
            CommandError::Invalid(message) => {
                CommandError::Invalid(format!("spec {position}: {message}").into())
            }
            CommandError::WrongType => CommandError::WrongTypeKey(position),
            other => other,
        }
    }

    /// The full error line, with its Redis error code.
    pub fn reply_text(&self) -> String {
        match self {
            CommandError::Invalid(message) => format!("ERR {message}"),
            CommandError::WrongType => {
                "WRONGTYPE Operation against a key holding the wrong kind of value".to_owned()
            }
            CommandError::WrongTypeKey(position) => format!(
                "WRONGTYPE Operation against a key holding the wrong kind of value (key {position})"
            ),
            CommandError::Server(message) => format!("ERR {message}"),
            CommandError::WrongArity => "ERR wrong number of arguments".to_owned(),
        }
    }
}

pub type CommandResult<T> = Result<T, CommandError>;
