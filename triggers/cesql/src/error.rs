//! The error types of spec §3.3: parse errors stop compilation; evaluation errors travel
//! beside the value an evaluation always produces.

use std::fmt;

/// Why an expression could not be parsed (spec _ParseError_).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("parse error at position {position}: {message}")]
pub struct ParseError {
    /// One-based character position in the expression where the problem was found.
    pub position: usize,
    /// What is wrong, in lower case.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
        }
    }
}

/// The kinds of error an evaluation can report (spec §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EvalErrorKind {
    /// An implicit or explicit type cast failed (_CastError_).
    Cast,
    /// A division or remainder by zero, or an integer overflow (_MathError_).
    Math,
    /// The expression reads an attribute the event does not have (_MissingAttributeError_).
    MissingAttribute,
    /// No built-in function has that name and arity (_MissingFunctionError_).
    MissingFunction,
    /// A function rejected its arguments (_FunctionEvaluationError_).
    FunctionEvaluation,
}

impl fmt::Display for EvalErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EvalErrorKind::Cast => "cast error",
            EvalErrorKind::Math => "math error",
            EvalErrorKind::MissingAttribute => "missing attribute",
            EvalErrorKind::MissingFunction => "missing function",
            EvalErrorKind::FunctionEvaluation => "function evaluation error",
        })
    }
}

/// One error met while evaluating an expression.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct EvalError {
    /// Which kind of error.
    pub kind: EvalErrorKind,
    /// What happened, in lower case.
    pub message: String,
}

impl EvalError {
    /// An error of `kind` with a message.
    pub fn new(kind: EvalErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}
