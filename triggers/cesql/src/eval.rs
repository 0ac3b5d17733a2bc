//! Evaluation (§3): every operator and function is total; errors are collected beside the
//! value. A sub-expression that reads a missing attribute yields the zero value of its own
//! return type (and a missing-attribute error) without evaluating further.

use crate::ast::{BinaryOp, Expr, UnaryOp};
use crate::functions;
use crate::value::{Type, Value};
use crate::{EvalError, EvalErrorKind, EventContext};

/// Evaluates `expr`, appending errors to `errors`.
pub fn eval(expr: &Expr, ctx: &dyn EventContext, errors: &mut Vec<EvalError>) -> Value {
    match expr {
        Expr::Literal(v) => v.clone(),
        // An attribute whose type cannot be known defaults to Boolean (§3.2).
        Expr::Attribute(_) => operand(expr, ctx, errors).unwrap_or(Value::Boolean(false)),
        Expr::Exists(name) => Value::Boolean(ctx.attribute(name).is_some()),
        Expr::Unary(op, inner) => {
            let Some(v) = operand(inner, ctx, errors) else {
                return if *op == UnaryOp::Not { Type::Boolean.zero() } else { Type::Integer.zero() };
            };
            match op {
                UnaryOp::Not => Value::Boolean(!logical(v, errors)),
                UnaryOp::Negate => {
                    let i = v.into_int(errors);
                    match i.checked_neg() {
                        Some(n) => Value::Integer(n),
                        None => {
                            errors.push(EvalError::new(EvalErrorKind::Math, "integer overflow negating -2147483648"));
                            Value::Integer(i32::MAX)
                        }
                    }
                }
            }
        }
        Expr::Binary(op, left, right) => binary(*op, left, right, ctx, errors),
        Expr::Like { value, pattern, negated } => {
            let Some(v) = operand(value, ctx, errors) else { return Value::Boolean(false) };
            let s = v.into_string(errors);
            Value::Boolean(like(&s, pattern) != *negated)
        }
        Expr::In { value, set, negated } => {
            let Some(v) = operand(value, ctx, errors) else { return Value::Boolean(false) };
            let target = v.type_of();
            let mut found = false;
            let mut missing = false;
            for item in set {
                match operand(item, ctx, errors) {
                    Some(x) => found |= x.cast(target, errors) == v,
                    None => missing = true,
                }
            }
            if missing {
                return Value::Boolean(false);
            }
            Value::Boolean(found != *negated)
        }
        Expr::Call(name, args) => functions::call(name, args, ctx, errors),
    }
}

/// Evaluates an operand; `None` when it is an attribute the event does not have, or when its
/// own evaluation raised errors: the enclosing operator then yields its zero value (so
/// `true AND (1 != 1 / 0)` is `false` with a math error, as the TCK requires).
pub fn operand(expr: &Expr, ctx: &dyn EventContext, errors: &mut Vec<EvalError>) -> Option<Value> {
    match expr {
        Expr::Attribute(name) => match ctx.attribute(name) {
            Some(v) => Some(v),
            None => {
                errors.push(EvalError::new(EvalErrorKind::MissingAttribute, format!("missing attribute {name:?}")));
                None
            }
        },
        other => {
            let before = errors.len();
            let v = eval(other, ctx, errors);
            (errors.len() == before).then_some(v)
        }
    }
}

/// Boolean operand of NOT/AND/OR/XOR: integers are not implicitly booleans here (the TCK's
/// `NOT 10` is a cast error, and the failed cast yields `false`).
fn logical(v: Value, errors: &mut Vec<EvalError>) -> bool {
    match v {
        Value::Integer(i) => {
            errors.push(EvalError::new(EvalErrorKind::Cast, format!("cannot use integer {i} as a boolean")));
            false
        }
        other => other.into_bool(errors),
    }
}

fn binary(op: BinaryOp, left: &Expr, right: &Expr, ctx: &dyn EventContext, errors: &mut Vec<EvalError>) -> Value {
    use BinaryOp::*;
    match op {
        And | Or | Xor => {
            let Some(l) = operand(left, ctx, errors) else { return Value::Boolean(false) };
            let l = logical(l, errors);
            // AND and OR short-circuit (§3.4.2).
            match op {
                And if !l => return Value::Boolean(false),
                Or if l => return Value::Boolean(true),
                _ => {}
            }
            let Some(r) = operand(right, ctx, errors) else { return Value::Boolean(false) };
            let r = logical(r, errors);
            Value::Boolean(match op {
                And => l && r,
                Or => l || r,
                _ => l ^ r,
            })
        }
        Eq | NotEq => {
            let (l, r) = (operand(left, ctx, errors), operand(right, ctx, errors));
            let (Some(l), Some(r)) = (l, r) else { return Value::Boolean(false) };
            // `=` is ambiguous: the right operand's type decides the cast of the left (§3.7).
            let l = l.cast(r.type_of(), errors);
            Value::Boolean((l == r) == (op == Eq))
        }
        Lt | Le | Gt | Ge => {
            let (l, r) = (operand(left, ctx, errors), operand(right, ctx, errors));
            let (Some(l), Some(r)) = (l, r) else { return Value::Boolean(false) };
            let (l, r) = (l.into_int(errors), r.into_int(errors));
            Value::Boolean(match op {
                Lt => l < r,
                Le => l <= r,
                Gt => l > r,
                _ => l >= r,
            })
        }
        Add | Sub | Mul | Div | Rem => {
            let (l, r) = (operand(left, ctx, errors), operand(right, ctx, errors));
            let (Some(l), Some(r)) = (l, r) else { return Value::Integer(0) };
            let (l, r) = (l.into_int(errors), r.into_int(errors));
            if matches!(op, Div | Rem) && r == 0 {
                errors.push(EvalError::new(EvalErrorKind::Math, "division by zero"));
                return Value::Integer(0);
            }
            let result = match op {
                Add => l.checked_add(r),
                Sub => l.checked_sub(r),
                Mul => l.checked_mul(r),
                Div => l.checked_div(r),
                _ => l.checked_rem(r),
            };
            match result {
                Some(v) => Value::Integer(v),
                None => {
                    errors.push(EvalError::new(EvalErrorKind::Math, "integer overflow"));
                    Value::Integer(0)
                }
            }
        }
    }
}

/// One element of a LIKE pattern.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pat {
    /// `%`: any run of characters.
    Many,
    /// `_`: exactly one character.
    One,
    /// A literal character.
    Char(char),
}

fn compile_pattern(pattern: &str) -> Vec<Pat> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('%') | Some('_')) => out.push(Pat::Char(chars.next().expect("peeked"))),
            '%' => out.push(Pat::Many),
            '_' => out.push(Pat::One),
            c => out.push(Pat::Char(c)),
        }
    }
    out
}

/// Whether `value` matches a LIKE `pattern` (case-sensitive).
pub fn like(value: &str, pattern: &str) -> bool {
    let pat = compile_pattern(pattern);
    let text: Vec<char> = value.chars().collect();
    let (mut t, mut p) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(Pat::Many) => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(Pat::One) => {
                t += 1;
                p += 1;
            }
            Some(Pat::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match backtrack {
                Some((bp, bt)) => {
                    p = bp + 1;
                    t = bt + 1;
                    backtrack = Some((bp, bt + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|x| *x == Pat::Many)
}
