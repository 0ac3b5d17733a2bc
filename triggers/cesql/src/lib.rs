//! CloudEvents SQL (CESQL) v1: parse an expression once, evaluate it against many events.
//!
//! Placeholder API; the implementation replaces the bodies.

/// A parsed CESQL expression.
#[derive(Clone, Debug)]
pub struct Expression {}

/// Why an expression could not be parsed.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// What is wrong, with the position.
    pub message: String,
}

/// Parses a CESQL expression.
pub fn parse(_input: &str) -> Result<Expression, ParseError> {
    Err(ParseError { message: "cesql parser not implemented yet".into() })
}
