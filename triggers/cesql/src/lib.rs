//! CloudEvents SQL (CESQL) v1: parse an expression once, evaluate it against many events.
//!
//! A real lexer and recursive-descent parser build an AST ([`ast`]); the evaluator follows the
//! spec's total semantics: every evaluation yields a value plus the errors met on the way
//! (parse, math, cast, missing attribute, missing function, function evaluation). Used by
//! Trigger `filters[].cesql` (Knative ≥ 1.15), where any error means the event does not pass.

pub mod ast;
mod eval;
mod functions;
mod lexer;
mod parser;
mod value;

pub use value::{Type, Value};

/// A parsed CESQL expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expression {
    root: ast::Expr,
}

/// Why an expression could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("parse error at offset {offset}: {message}")]
pub struct ParseError {
    /// Byte offset in the expression.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    pub(crate) fn at(offset: usize, message: String) -> Self {
        Self { offset, message }
    }
}

/// Kinds of evaluation errors (§3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalErrorKind {
    /// An implicit or explicit cast failed.
    Cast,
    /// Division by zero or overflow.
    Math,
    /// The event lacks an attribute the expression reads.
    MissingAttribute,
    /// No function with that name and arity.
    MissingFunction,
    /// A function rejected its arguments.
    FunctionEvaluation,
}

/// One evaluation error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?} error: {message}")]
pub struct EvalError {
    /// Its kind.
    pub kind: EvalErrorKind,
    /// Details.
    pub message: String,
}

impl EvalError {
    pub(crate) fn new(kind: EvalErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
}

/// The result of an evaluation: always a value, plus any errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// The value (the zero value of the expression's type where errors prevented better).
    pub value: Value,
    /// Errors met during evaluation, in order.
    pub errors: Vec<EvalError>,
}

impl Evaluation {
    /// What a filter needs: `true` and no error.
    pub fn is_true_without_errors(&self) -> bool {
        self.errors.is_empty() && self.value == Value::Boolean(true)
    }
}

/// Access to the event's attributes by (lower-case) name.
pub trait EventContext {
    /// The attribute or extension value, `None` when the event does not have it.
    fn attribute(&self, name: &str) -> Option<Value>;
}

/// Parses a CESQL expression.
pub fn parse(input: &str) -> Result<Expression, ParseError> {
    let tokens = lexer::tokenize(input)?;
    if tokens.is_empty() {
        return Err(ParseError::at(0, "empty expression".into()));
    }
    let root = parser::parse_tokens(tokens, input.len())?;
    Ok(Expression { root })
}

impl Expression {
    /// Evaluates against an event (complete evaluation mode: all errors are collected).
    pub fn evaluate(&self, event: &dyn EventContext) -> Evaluation {
        let mut errors = Vec::new();
        let value = eval::eval(&self.root, event, &mut errors);
        Evaluation { value, errors }
    }

    /// The syntax tree.
    pub fn ast(&self) -> &ast::Expr {
        &self.root
    }
}
