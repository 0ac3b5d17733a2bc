//! The CESQL type system (spec §3.1) and its casts (spec §3.7).

use std::fmt;

use crate::error::{EvalError, EvalErrorKind};

/// One of the three primitive CESQL types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// `true` or `false`.
    Boolean,
    /// A signed 32-bit integer.
    Integer,
    /// A sequence of Unicode characters.
    String,
}

impl Type {
    /// The zero value of this type: `false`, `0` or `""`.
    pub fn zero(self) -> Value {
        match self {
            Type::Boolean => Value::Boolean(false),
            Type::Integer => Value::Integer(0),
            Type::String => Value::String(String::new()),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Boolean => "boolean",
            Type::Integer => "integer",
            Type::String => "string",
        })
    }
}

/// A CESQL value: the result of an expression, an attribute or a literal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// A boolean.
    Boolean(bool),
    /// A signed 32-bit integer.
    Integer(i32),
    /// A string.
    String(String),
}

impl Value {
    /// The type of this value.
    pub fn value_type(&self) -> Type {
        match self {
            Value::Boolean(_) => Type::Boolean,
            Value::Integer(_) => Type::Integer,
            Value::String(_) => Type::String,
        }
    }

    /// Casts this value to `target` with the semantics of spec §3.7 (the explicit
    /// `INT`, `BOOL` and `STRING` functions). On failure the error is a cast error; the
    /// caller decides which value stands in (the spec uses the zero value of `target`).
    pub fn cast(&self, target: Type) -> Result<Value, EvalError> {
        match (self, target) {
            (Value::Boolean(_), Type::Boolean) | (Value::Integer(_), Type::Integer) | (Value::String(_), Type::String) => Ok(self.clone()),
            (value, Type::String) => Ok(Value::String(value.to_string())),
            (Value::Boolean(b), Type::Integer) => Ok(Value::Integer(i32::from(*b))),
            (Value::Integer(i), Type::Boolean) => Ok(Value::Boolean(*i != 0)),
            (Value::String(s), Type::Integer) => s
                .parse::<i32>()
                .map(Value::Integer)
                .map_err(|_| EvalError::new(EvalErrorKind::Cast, format!("cannot cast string {s:?} to integer"))),
            (Value::String(s), Type::Boolean) => match s.to_lowercase().as_str() {
                "true" => Ok(Value::Boolean(true)),
                "false" => Ok(Value::Boolean(false)),
                _ => Err(EvalError::new(EvalErrorKind::Cast, format!("cannot cast string {s:?} to boolean"))),
            },
        }
    }

    /// The boolean, if this is a boolean value.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is an integer value.
    pub fn as_integer(&self) -> Option<i32> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

/// The string form of the value, which is also its cast to _String_: base-10 integers,
/// `true`/`false` for booleans, strings verbatim.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Integer(i) => write!(f, "{i}"),
            Value::String(s) => f.write_str(s),
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Integer(i)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_follow_the_spec_table() {
        assert_eq!(Value::Integer(-12).cast(Type::String).ok(), Some(Value::from("-12")));
        assert_eq!(Value::Integer(0).cast(Type::Boolean).ok(), Some(Value::Boolean(false)));
        assert_eq!(Value::Integer(7).cast(Type::Boolean).ok(), Some(Value::Boolean(true)));
        assert_eq!(Value::from("+42").cast(Type::Integer).ok(), Some(Value::Integer(42)));
        assert_eq!(Value::from("TrUe").cast(Type::Boolean).ok(), Some(Value::Boolean(true)));
        assert_eq!(Value::Boolean(true).cast(Type::Integer).ok(), Some(Value::Integer(1)));
        assert_eq!(Value::Boolean(false).cast(Type::String).ok(), Some(Value::from("false")));
    }

    #[test]
    fn failed_casts_are_cast_errors() {
        for (value, target) in [
            (Value::from("2147483648"), Type::Integer),
            (Value::from(" 1"), Type::Integer),
            (Value::from(""), Type::Integer),
            (Value::from("yes"), Type::Boolean),
        ] {
            let err = value.cast(target).expect_err("cast must fail");
            assert_eq!(err.kind, EvalErrorKind::Cast);
        }
    }
}
