//! The built-in functions: string manipulation (spec §3.5.1), `ABS` (§3.5.2) and the casting
//! functions `INT`, `BOOL`, `STRING`, `IS_INT` and `IS_BOOL`.
//!
//! A function is found by name and arity; the evaluator casts the arguments to the parameter
//! types before calling it. Every function is total: when it rejects its arguments it still
//! returns a value of its return type, together with an error.

use crate::error::{EvalError, EvalErrorKind};
use crate::value::{Type, Value};

/// What a parameter accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Param {
    /// A value of this type; other types are cast implicitly.
    Typed(Type),
    /// Any value, passed as it is (the casting functions cast explicitly).
    Any,
}

/// The value a function returns and the error it reports, if any.
pub(crate) struct Outcome {
    pub(crate) value: Value,
    pub(crate) error: Option<EvalError>,
}

impl Outcome {
    fn ok(value: impl Into<Value>) -> Self {
        Self {
            value: value.into(),
            error: None,
        }
    }

    fn failed(value: impl Into<Value>, kind: EvalErrorKind, message: String) -> Self {
        Self {
            value: value.into(),
            error: Some(EvalError::new(kind, message)),
        }
    }
}

/// A built-in function signature and body.
pub(crate) struct Function {
    /// Upper-case name.
    pub(crate) name: &'static str,
    /// The fixed parameters.
    fixed: &'static [Param],
    /// The type of any further arguments, for variadic functions.
    variadic: Option<Param>,
    /// The return type (its zero value stands in when an argument could not be evaluated).
    pub(crate) returns: Type,
    /// The body, called with arguments already cast to the parameter types.
    body: fn(&Args) -> Outcome,
}

impl Function {
    /// What argument `index` must be.
    pub(crate) fn param(&self, index: usize) -> Param {
        self.fixed.get(index).copied().or(self.variadic).unwrap_or(Param::Any)
    }

    fn accepts(&self, arity: usize) -> bool {
        match self.variadic {
            Some(_) => arity >= self.fixed.len(),
            None => arity == self.fixed.len(),
        }
    }

    /// Calls the function.
    pub(crate) fn call(&self, args: Vec<Value>) -> Outcome {
        (self.body)(&Args(args))
    }
}

/// Arguments, already cast to their parameter types.
struct Args(Vec<Value>);

impl Args {
    fn value(&self, index: usize) -> Option<&Value> {
        self.0.get(index)
    }

    fn string(&self, index: usize) -> &str {
        self.value(index).and_then(Value::as_str).unwrap_or_default()
    }

    fn integer(&self, index: usize) -> i32 {
        self.value(index).and_then(Value::as_integer).unwrap_or_default()
    }

    fn strings(&self, from: usize) -> impl Iterator<Item = &str> {
        self.0.iter().skip(from).map(|v| v.as_str().unwrap_or_default())
    }
}

const STRING: Param = Param::Typed(Type::String);
const INTEGER: Param = Param::Typed(Type::Integer);

/// Every built-in function.
static FUNCTIONS: &[Function] = &[
    Function {
        name: "LENGTH",
        fixed: &[STRING],
        variadic: None,
        returns: Type::Integer,
        body: length,
    },
    Function {
        name: "CONCAT",
        fixed: &[],
        variadic: Some(STRING),
        returns: Type::String,
        body: concat,
    },
    Function {
        name: "CONCAT_WS",
        fixed: &[STRING],
        variadic: Some(STRING),
        returns: Type::String,
        body: concat_ws,
    },
    Function {
        name: "LOWER",
        fixed: &[STRING],
        variadic: None,
        returns: Type::String,
        body: lower,
    },
    Function {
        name: "UPPER",
        fixed: &[STRING],
        variadic: None,
        returns: Type::String,
        body: upper,
    },
    Function {
        name: "TRIM",
        fixed: &[STRING],
        variadic: None,
        returns: Type::String,
        body: trim,
    },
    Function {
        name: "LEFT",
        fixed: &[STRING, INTEGER],
        variadic: None,
        returns: Type::String,
        body: left,
    },
    Function {
        name: "RIGHT",
        fixed: &[STRING, INTEGER],
        variadic: None,
        returns: Type::String,
        body: right,
    },
    Function {
        name: "SUBSTRING",
        fixed: &[STRING, INTEGER],
        variadic: None,
        returns: Type::String,
        body: substring,
    },
    Function {
        name: "SUBSTRING",
        fixed: &[STRING, INTEGER, INTEGER],
        variadic: None,
        returns: Type::String,
        body: substring,
    },
    Function {
        name: "ABS",
        fixed: &[INTEGER],
        variadic: None,
        returns: Type::Integer,
        body: abs,
    },
    Function {
        name: "INT",
        fixed: &[Param::Any],
        variadic: None,
        returns: Type::Integer,
        body: cast_int,
    },
    Function {
        name: "BOOL",
        fixed: &[Param::Any],
        variadic: None,
        returns: Type::Boolean,
        body: cast_bool,
    },
    Function {
        name: "STRING",
        fixed: &[Param::Any],
        variadic: None,
        returns: Type::String,
        body: cast_string,
    },
    Function {
        name: "IS_INT",
        fixed: &[STRING],
        variadic: None,
        returns: Type::Boolean,
        body: is_int,
    },
    Function {
        name: "IS_BOOL",
        fixed: &[STRING],
        variadic: None,
        returns: Type::Boolean,
        body: is_bool,
    },
];

/// The function called `name` (upper-case) that takes `arity` arguments.
pub(crate) fn lookup(name: &str, arity: usize) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name && f.accepts(arity))
}

fn char_count(s: &str) -> i32 {
    i32::try_from(s.chars().count()).unwrap_or(i32::MAX)
}

fn length(args: &Args) -> Outcome {
    Outcome::ok(char_count(args.string(0)))
}

fn concat(args: &Args) -> Outcome {
    Outcome::ok(args.strings(0).collect::<String>())
}

fn concat_ws(args: &Args) -> Outcome {
    Outcome::ok(args.strings(1).collect::<Vec<_>>().join(args.string(0)))
}

fn lower(args: &Args) -> Outcome {
    Outcome::ok(args.string(0).to_lowercase())
}

fn upper(args: &Args) -> Outcome {
    Outcome::ok(args.string(0).to_uppercase())
}

fn trim(args: &Args) -> Outcome {
    Outcome::ok(args.string(0).trim())
}

/// `LEFT(x, y)`: the first `y` characters; `x` and an error when `y` is negative.
fn left(args: &Args) -> Outcome {
    let (text, count) = (args.string(0), args.integer(1));
    match usize::try_from(count) {
        Ok(count) => Outcome::ok(text.chars().take(count).collect::<String>()),
        Err(_) => negative_length("LEFT", text, count),
    }
}

/// `RIGHT(x, y)`: the last `y` characters; `x` and an error when `y` is negative.
fn right(args: &Args) -> Outcome {
    let (text, count) = (args.string(0), args.integer(1));
    match usize::try_from(count) {
        Ok(count) => {
            let skip = text.chars().count().saturating_sub(count);
            Outcome::ok(text.chars().skip(skip).collect::<String>())
        }
        Err(_) => negative_length("RIGHT", text, count),
    }
}

fn negative_length(function: &str, text: &str, count: i32) -> Outcome {
    Outcome::failed(
        text,
        EvalErrorKind::FunctionEvaluation,
        format!("{function}: length {count} is negative"),
    )
}

/// `SUBSTRING(x, pos[, len])` with one-based positions; a negative `pos` counts from the end
/// and `pos` 0 gives the empty string.
fn substring(args: &Args) -> Outcome {
    let text = args.string(0);
    let length = i64::from(char_count(text));
    let pos = i64::from(args.integer(1));
    let len = args.value(2).map(|_| args.integer(2));
    if pos > length || pos < -length {
        return Outcome::failed(
            "",
            EvalErrorKind::FunctionEvaluation,
            format!("SUBSTRING: position {pos} is outside a string of {length} characters"),
        );
    }
    if let Some(len) = len.filter(|len| *len < 0) {
        return Outcome::failed(
            "",
            EvalErrorKind::FunctionEvaluation,
            format!("SUBSTRING: length {len} is negative"),
        );
    }
    if pos == 0 {
        return Outcome::ok("");
    }
    let start = if pos > 0 { pos - 1 } else { length + pos };
    let start = usize::try_from(start).unwrap_or_default();
    let take = len.and_then(|len| usize::try_from(len).ok()).unwrap_or(usize::MAX);
    Outcome::ok(text.chars().skip(start).take(take).collect::<String>())
}

/// `ABS(x)`; `ABS(-2147483648)` is `2147483647` and a math error.
fn abs(args: &Args) -> Outcome {
    let x = args.integer(0);
    match x.checked_abs() {
        Some(abs) => Outcome::ok(abs),
        None => Outcome::failed(i32::MAX, EvalErrorKind::Math, format!("ABS({x}) overflows 32 bits")),
    }
}

/// An explicit cast; a failed one returns the zero value of `target` and the cast error.
fn cast(args: &Args, target: Type) -> Outcome {
    let Some(value) = args.value(0) else {
        return Outcome::ok(target.zero());
    };
    match value.cast(target) {
        Ok(value) => Outcome::ok(value),
        Err(error) => Outcome {
            value: target.zero(),
            error: Some(error),
        },
    }
}

fn cast_int(args: &Args) -> Outcome {
    cast(args, Type::Integer)
}

fn cast_bool(args: &Args) -> Outcome {
    cast(args, Type::Boolean)
}

fn cast_string(args: &Args) -> Outcome {
    cast(args, Type::String)
}

/// `IS_INT(x)`: whether the string `x` can be cast to an integer.
fn is_int(args: &Args) -> Outcome {
    Outcome::ok(Value::from(args.string(0)).cast(Type::Integer).is_ok())
}

/// `IS_BOOL(x)`: whether the string `x` can be cast to a boolean.
fn is_bool(args: &Args) -> Outcome {
    Outcome::ok(Value::from(args.string(0)).cast(Type::Boolean).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: Vec<Value>) -> Outcome {
        lookup(name, args.len()).expect("function exists").call(args)
    }

    #[test]
    fn lookup_is_by_name_and_arity() {
        assert!(lookup("CONCAT", 0).is_some());
        assert!(lookup("CONCAT_WS", 0).is_none());
        assert!(lookup("CONCAT_WS", 5).is_some());
        assert!(lookup("SUBSTRING", 1).is_none());
        assert_eq!(lookup("SUBSTRING", 3).map(|f| f.param(2)), Some(INTEGER));
        assert!(lookup("LENGTH", 2).is_none());
        assert!(lookup("NOPE", 1).is_none());
    }

    #[test]
    fn strings_count_characters() {
        assert_eq!(call("LENGTH", vec!["héllo".into()]).value, Value::Integer(5));
        assert_eq!(call("LEFT", vec!["héllo".into(), 2.into()]).value, Value::from("hé"));
        assert_eq!(call("RIGHT", vec!["héllo".into(), 4.into()]).value, Value::from("éllo"));
        assert_eq!(
            call("SUBSTRING", vec!["héllo".into(), (-4).into(), 2.into()]).value,
            Value::from("él")
        );
        assert_eq!(call("TRIM", vec!["\u{2003} a \t".into()]).value, Value::from("a"));
    }

    #[test]
    fn substring_bounds() {
        let sub = |pos: i32, len: Option<i32>| {
            let mut args = vec![Value::from("abc"), pos.into()];
            args.extend(len.map(Value::from));
            let outcome = call("SUBSTRING", args);
            (outcome.value.to_string(), outcome.error.map(|e| e.kind))
        };
        assert_eq!(sub(3, None), ("c".into(), None));
        assert_eq!(sub(-3, None), ("abc".into(), None));
        assert_eq!(sub(2, Some(100)), ("bc".into(), None));
        assert_eq!(sub(0, Some(-1)), ("".into(), Some(EvalErrorKind::FunctionEvaluation)));
        assert_eq!(sub(4, None), ("".into(), Some(EvalErrorKind::FunctionEvaluation)));
        assert_eq!(sub(i32::MIN, None), ("".into(), Some(EvalErrorKind::FunctionEvaluation)));
    }

    #[test]
    fn casting_functions() {
        assert_eq!(call("INT", vec!["-17".into()]).value, Value::Integer(-17));
        assert_eq!(call("BOOL", vec![0.into()]).value, Value::Boolean(false));
        let failed = call("BOOL", vec!["maybe".into()]);
        assert_eq!(
            (failed.value, failed.error.map(|e| e.kind)),
            (Value::Boolean(false), Some(EvalErrorKind::Cast))
        );
        assert_eq!(call("IS_INT", vec!["+12".into()]).value, Value::Boolean(true));
        assert_eq!(call("IS_INT", vec!["1.5".into()]).value, Value::Boolean(false));
        assert_eq!(call("IS_BOOL", vec!["FALSE".into()]).value, Value::Boolean(true));
        assert!(call("IS_BOOL", vec!["no".into()]).error.is_none(), "IS_BOOL reports no error");
    }
}
