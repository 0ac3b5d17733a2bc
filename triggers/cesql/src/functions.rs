//! The built-in functions (§3.5): string manipulation, ABS, and the casting functions.
//! Arguments are cast to the parameter types; a missing-attribute argument makes the call
//! return the zero value of the function's type.

use crate::ast::Expr;
use crate::eval::operand;
use crate::value::{Type, Value};
use crate::{EvalError, EvalErrorKind, EventContext};

/// Parameter types and return type of a built-in, by name and arity.
fn signature(name: &str, arity: usize) -> Option<(Vec<Type>, Type)> {
    use Type::*;
    let sig = match (name, arity) {
        ("LENGTH", 1) => (vec![String], Integer),
        ("CONCAT", n) => (vec![String; n], String),
        ("CONCAT_WS", n) if n >= 1 => (vec![String; n], String),
        ("LOWER" | "UPPER" | "TRIM", 1) => (vec![String], String),
        ("LEFT" | "RIGHT", 2) => (vec![String, Integer], String),
        ("SUBSTRING", 2) => (vec![String, Integer], String),
        ("SUBSTRING", 3) => (vec![String, Integer, Integer], String),
        ("ABS", 1) => (vec![Integer], Integer),
        ("INT", 1) => (vec![Integer], Integer),
        ("BOOL", 1) => (vec![Boolean], Boolean),
        ("STRING", 1) => (vec![String], String),
        ("IS_INT" | "IS_BOOL", 1) => (vec![String], Boolean),
        _ => return None,
    };
    Some(sig)
}

fn fn_error(errors: &mut Vec<EvalError>, message: String) {
    errors.push(EvalError::new(EvalErrorKind::FunctionEvaluation, message));
}

/// Calls a built-in by (upper-case) name.
pub fn call(name: &str, args: &[Expr], ctx: &dyn EventContext, errors: &mut Vec<EvalError>) -> Value {
    let Some((params, ret)) = signature(name, args.len()) else {
        errors.push(EvalError::new(EvalErrorKind::MissingFunction, format!("no function {name} with {} argument(s)", args.len())));
        return Value::Boolean(false);
    };
    let mut values = Vec::with_capacity(args.len());
    let mut missing = false;
    for arg in args {
        match operand(arg, ctx, errors) {
            Some(v) => values.push(v),
            None => missing = true,
        }
    }
    if missing {
        return ret.zero();
    }
    // IS_INT and IS_BOOL test castability without reporting cast errors.
    if name == "IS_INT" || name == "IS_BOOL" {
        let v = values.remove(0);
        let target = if name == "IS_INT" { Type::Integer } else { Type::Boolean };
        let mut scratch = Vec::new();
        let _ = v.cast(target, &mut scratch);
        return Value::Boolean(scratch.is_empty());
    }
    let values: Vec<Value> = values.into_iter().zip(params).map(|(v, t)| v.cast(t, errors)).collect();
    let s = |i: usize| match &values[i] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let n = |i: usize| match &values[i] {
        Value::Integer(n) => *n,
        _ => 0,
    };
    match name {
        "LENGTH" => Value::Integer(s(0).chars().count().min(i32::MAX as usize) as i32),
        "CONCAT" => Value::String((0..values.len()).map(s).collect()),
        "CONCAT_WS" => Value::String((1..values.len()).map(s).collect::<Vec<_>>().join(&s(0))),
        "LOWER" => Value::String(s(0).to_lowercase()),
        "UPPER" => Value::String(s(0).to_uppercase()),
        "TRIM" => Value::String(s(0).trim().to_string()),
        "LEFT" | "RIGHT" => {
            let (text, count) = (s(0), n(1));
            if count < 0 {
                fn_error(errors, format!("{name}: negative length {count}"));
                return Value::String(text);
            }
            let chars: Vec<char> = text.chars().collect();
            let count = (count as usize).min(chars.len());
            let part = if name == "LEFT" { &chars[..count] } else { &chars[chars.len() - count..] };
            Value::String(part.iter().collect())
        }
        "SUBSTRING" => substring(&s(0), n(1), values.get(2).map(|_| n(2)), errors),
        "ABS" => match n(0).checked_abs() {
            Some(v) => Value::Integer(v),
            None => {
                errors.push(EvalError::new(EvalErrorKind::Math, "ABS(-2147483648) overflows"));
                Value::Integer(i32::MAX)
            }
        },
        "INT" | "BOOL" | "STRING" => values.into_iter().next().unwrap_or(ret.zero()),
        _ => ret.zero(),
    }
}

fn substring(text: &str, pos: i32, len: Option<i32>, errors: &mut Vec<EvalError>) -> Value {
    let chars: Vec<char> = text.chars().collect();
    let total = chars.len() as i64;
    let pos = i64::from(pos);
    if pos > total || pos < -total {
        fn_error(errors, format!("SUBSTRING: position {pos} is outside a string of length {total}"));
        return Value::String(String::new());
    }
    if let Some(l) = len {
        if l < 0 {
            fn_error(errors, format!("SUBSTRING: negative length {l}"));
            return Value::String(String::new());
        }
    }
    if pos == 0 {
        return Value::String(String::new());
    }
    let start = if pos > 0 { pos - 1 } else { total + pos } as usize;
    let end = match len {
        Some(l) => (start + l as usize).min(chars.len()),
        None => chars.len(),
    };
    Value::String(chars[start..end].iter().collect())
}

