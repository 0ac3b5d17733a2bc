//! CESQL values, types and the casts between them (spec §3.1, §3.7).

use std::fmt;

use crate::{EvalError, EvalErrorKind};

/// A CESQL value: one of the three primitive types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A boolean.
    Boolean(bool),
    /// A 32-bit signed integer.
    Integer(i32),
    /// A string.
    String(String),
}

/// The primitive types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// Boolean.
    Boolean,
    /// Integer.
    Integer,
    /// String.
    String,
}

impl Type {
    /// The zero value of the type (`false`, `0`, `""`).
    pub fn zero(self) -> Value {
        match self {
            Type::Boolean => Value::Boolean(false),
            Type::Integer => Value::Integer(0),
            Type::String => Value::String(String::new()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Integer(i) => write!(f, "{i}"),
            Value::String(s) => write!(f, "{s}"),
        }
    }
}

impl Value {
    /// The type of the value.
    pub fn type_of(&self) -> Type {
        match self {
            Value::Boolean(_) => Type::Boolean,
            Value::Integer(_) => Type::Integer,
            Value::String(_) => Type::String,
        }
    }

    /// Casts to `target` (§3.7); a failed cast records a cast error and yields the zero value.
    pub fn cast(self, target: Type, errors: &mut Vec<EvalError>) -> Value {
        match (self, target) {
            (v, t) if v.type_of() == t => v,
            (Value::Integer(i), Type::String) => Value::String(i.to_string()),
            (Value::Integer(i), Type::Boolean) => Value::Boolean(i != 0),
            (Value::Boolean(b), Type::Integer) => Value::Integer(i32::from(b)),
            (Value::Boolean(b), Type::String) => Value::String(b.to_string()),
            (Value::String(s), Type::Integer) => match parse_integer(&s) {
                Some(i) => Value::Integer(i),
                None => {
                    errors.push(EvalError::new(EvalErrorKind::Cast, format!("cannot cast {s:?} to integer")));
                    Value::Integer(0)
                }
            },
            (Value::String(s), Type::Boolean) => match s.to_lowercase().as_str() {
                "true" => Value::Boolean(true),
                "false" => Value::Boolean(false),
                _ => {
                    errors.push(EvalError::new(EvalErrorKind::Cast, format!("cannot cast {s:?} to boolean")));
                    Value::Boolean(false)
                }
            },
            (v, _) => v,
        }
    }

    /// Casts to boolean.
    pub fn into_bool(self, errors: &mut Vec<EvalError>) -> bool {
        matches!(self.cast(Type::Boolean, errors), Value::Boolean(true))
    }

    /// Casts to integer.
    pub fn into_int(self, errors: &mut Vec<EvalError>) -> i32 {
        match self.cast(Type::Integer, errors) {
            Value::Integer(i) => i,
            _ => 0,
        }
    }

    /// Casts to string.
    pub fn into_string(self, errors: &mut Vec<EvalError>) -> String {
        match self.cast(Type::String, errors) {
            Value::String(s) => s,
            other => other.to_string(),
        }
    }
}

/// Parses a base-10 32-bit integer with an optional sign.
pub fn parse_integer(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i32>().ok()
}
