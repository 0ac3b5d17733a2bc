//! CloudEvents SQL (CESQL) v1: parse an expression once, evaluate it against many events.
//!
//! [`parse`] runs a lexer and a precedence-climbing parser over the grammar of the CESQL
//! specification and returns an [`Expression`] (its syntax tree is in [`ast`]).
//! [`Expression::evaluate`] reads attributes through an [`EventContext`] and follows the
//! spec's total semantics: every evaluation produces a [`Value`] together with the
//! [`EvalError`]s met on the way (cast, math, missing attribute, missing function, function
//! evaluation). The test compatibility kit of the specification runs as `tests/tck.rs`.
//!
//! ```
//! use sluice_cesql::{parse, EventContext, Value};
//!
//! struct Event;
//! impl EventContext for Event {
//!     fn attribute(&self, name: &str) -> Option<Value> {
//!         match name {
//!             "type" => Some(Value::from("com.example.order.created")),
//!             "sequence" => Some(Value::Integer(7)),
//!             _ => None,
//!         }
//!     }
//! }
//!
//! let expression = parse("type LIKE 'com.example.%' AND sequence < 10").unwrap();
//! assert!(expression.evaluate(&Event).is_true_without_errors());
//!
//! let evaluation = parse("subject = 'x'").unwrap().evaluate(&Event);
//! assert_eq!(evaluation.value, Value::Boolean(false));
//! assert_eq!(evaluation.errors[0].to_string(), "missing attribute: the event has no attribute \"subject\"");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ast;
mod error;
mod eval;
mod functions;
mod lexer;
mod like;
mod parser;
mod value;

use std::fmt;

pub use error::{EvalError, EvalErrorKind, ParseError};
pub use eval::{Evaluation, EventContext};
pub use like::LikePattern;
pub use value::{Type, Value};

/// A parsed CESQL expression, ready to be evaluated against any number of events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expression {
    source: String,
    root: ast::Expr,
}

/// Parses a CESQL expression.
///
/// Fails on syntax errors, on integer literals outside 32 bits, on a `LIKE` pattern that is
/// not a string literal, and on expressions deeper than 500 levels or nested more than 100 levels.
pub fn parse(input: &str) -> Result<Expression, ParseError> {
    let tokens = lexer::tokenize(input)?;
    let root = parser::parse_tokens(tokens, input.chars().count())?;
    Ok(Expression {
        source: input.to_string(),
        root,
    })
}

impl Expression {
    /// Evaluates the expression against an event.
    pub fn evaluate(&self, event: &dyn EventContext) -> Evaluation {
        eval::evaluate(&self.root, event)
    }

    /// The syntax tree.
    pub fn ast(&self) -> &ast::Expr {
        &self.root
    }

    /// The expression as it was written.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Shows the expression as it was written.
impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}
