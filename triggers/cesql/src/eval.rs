//! Evaluation (spec §3): every operator and function is total, so an evaluation always yields
//! a value; errors are collected beside it (the spec's "complete evaluation mode", with the
//! short-circuiting of `AND` and `OR`).
//!
//! Errors travel the way spec §3.2 describes for missing attributes and the TCK requires for
//! all errors: an operator or function whose operand reported an error does not compute; it
//! yields the zero value of its own return type. So `1 / missing` is `0` with only a
//! missing-attribute error, and `true AND (1 != 1 / 0)` is `false` with a math error. A failed
//! cast of an operand is reported and the cast's zero value used in its place (`NOT 10` is
//! `true` with a cast error).

use crate::ast::{BinaryOp, Expr, UnaryOp};
use crate::error::{EvalError, EvalErrorKind};
use crate::functions::{self, Param};
use crate::like::LikePattern;
use crate::value::{Type, Value};

/// The event an expression is evaluated against.
pub trait EventContext {
    /// The value of a context attribute or extension by its lower-case name, or `None` when
    /// the event does not have it. Values of types CESQL lacks (URIs, timestamps, …) are
    /// strings (spec §3.2).
    fn attribute(&self, name: &str) -> Option<Value>;

    /// Whether the event has the attribute (`EXISTS`); by default, whether
    /// [`attribute`](Self::attribute) finds it.
    fn exists(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }
}

/// The outcome of an evaluation: always a value, plus the errors met on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// The value of the expression.
    pub value: Value,
    /// The errors, in the order they happened; empty when the evaluation succeeded.
    pub errors: Vec<EvalError>,
}

impl Evaluation {
    /// Whether the value is boolean `true` and no error happened: the condition for an event
    /// to pass a CESQL filter (spec §1.2).
    pub fn is_true_without_errors(&self) -> bool {
        self.errors.is_empty() && self.value == Value::Boolean(true)
    }
}

/// Evaluates `expr` against `event`.
pub(crate) fn evaluate(expr: &Expr, event: &dyn EventContext) -> Evaluation {
    let mut evaluator = Evaluator { event, errors: Vec::new() };
    let value = evaluator.value(expr);
    Evaluation {
        value,
        errors: evaluator.errors,
    }
}

struct Evaluator<'e> {
    event: &'e dyn EventContext,
    errors: Vec<EvalError>,
}

impl Evaluator<'_> {
    fn fail(&mut self, kind: EvalErrorKind, message: String) {
        self.errors.push(EvalError::new(kind, message));
    }

    /// The value of `expr`. A missing attribute on its own has no known type, so it is
    /// `false` (spec §3.2).
    fn value(&mut self, expr: &Expr) -> Value {
        match expr {
            Expr::Literal(value) => value.clone(),
            Expr::Attribute(name) => match self.event.attribute(name) {
                Some(value) => value,
                None => {
                    self.fail(EvalErrorKind::MissingAttribute, format!("the event has no attribute {name:?}"));
                    Value::Boolean(false)
                }
            },
            Expr::Exists(name) => Value::Boolean(self.event.exists(name)),
            Expr::Unary { op, operand } => self.unary(*op, operand),
            Expr::Binary { op, left, right } => self.binary(*op, left, right),
            Expr::Like { value, pattern, negated } => self.like(value, pattern, *negated),
            Expr::In { value, set, negated } => self.membership(value, set, *negated),
            Expr::Call { name, args } => self.call(name, args),
        }
    }

    /// The value of an operand, or `None` when evaluating it reported errors: the caller
    /// then yields its zero value.
    fn operand(&mut self, expr: &Expr) -> Option<Value> {
        let before = self.errors.len();
        let value = self.value(expr);
        (self.errors.len() == before).then_some(value)
    }

    /// An implicit cast (spec §3.7). Integers are not implicitly booleans: the TCK makes
    /// `NOT 10` a cast error, while the explicit `BOOL(10)` is `true`.
    fn implicit(&mut self, value: Value, target: Type) -> Value {
        if let (Value::Integer(i), Type::Boolean) = (&value, target) {
            self.fail(EvalErrorKind::Cast, format!("integer {i} is not implicitly a boolean"));
            return target.zero();
        }
        value.cast(target).unwrap_or_else(|error| {
            self.errors.push(error);
            target.zero()
        })
    }

    fn boolean(&mut self, value: Value) -> bool {
        self.implicit(value, Type::Boolean).as_bool().unwrap_or_default()
    }

    fn integer(&mut self, value: Value) -> i32 {
        self.implicit(value, Type::Integer).as_integer().unwrap_or_default()
    }

    fn unary(&mut self, op: UnaryOp, operand: &Expr) -> Value {
        match op {
            UnaryOp::Not => match self.operand(operand) {
                Some(value) => Value::Boolean(!self.boolean(value)),
                None => Type::Boolean.zero(),
            },
            UnaryOp::Negate => {
                let Some(value) = self.operand(operand) else {
                    return Type::Integer.zero();
                };
                let i = self.integer(value);
                i.checked_neg().map(Value::Integer).unwrap_or_else(|| {
                    self.fail(EvalErrorKind::Math, format!("-({i}) overflows 32 bits"));
                    Value::Integer(i32::MAX)
                })
            }
        }
    }

    fn binary(&mut self, op: BinaryOp, left: &Expr, right: &Expr) -> Value {
        match op {
            BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => Value::Boolean(self.logic(op, left, right)),
            BinaryOp::Equal | BinaryOp::NotEqual => Value::Boolean(self.equality(op, left, right)),
            BinaryOp::Less | BinaryOp::LessOrEqual | BinaryOp::Greater | BinaryOp::GreaterOrEqual => {
                Value::Boolean(self.ordering(op, left, right))
            }
            BinaryOp::Add | BinaryOp::Subtract | BinaryOp::Multiply | BinaryOp::Divide | BinaryOp::Remainder => {
                Value::Integer(self.arithmetic(op, left, right))
            }
        }
    }

    /// `AND`, `OR` (both short-circuiting) and `XOR`.
    fn logic(&mut self, op: BinaryOp, left: &Expr, right: &Expr) -> bool {
        let Some(left) = self.operand(left) else { return false };
        let left = self.boolean(left);
        match (op, left) {
            (BinaryOp::And, false) => return false,
            (BinaryOp::Or, true) => return true,
            _ => {}
        }
        let Some(right) = self.operand(right) else { return false };
        let right = self.boolean(right);
        match op {
            BinaryOp::And => left && right,
            BinaryOp::Or => left || right,
            _ => left ^ right,
        }
    }

    /// `=`, `!=` and `<>`: defined for each type, so the right operand's type decides the
    /// type the left one is cast to (spec §3.7).
    fn equality(&mut self, op: BinaryOp, left: &Expr, right: &Expr) -> bool {
        let (left, right) = (self.operand(left), self.operand(right));
        let (Some(left), Some(right)) = (left, right) else { return false };
        let left = self.implicit(left, right.value_type());
        (left == right) == (op == BinaryOp::Equal)
    }

    /// `<`, `<=`, `>` and `>=` on integers.
    fn ordering(&mut self, op: BinaryOp, left: &Expr, right: &Expr) -> bool {
        let (left, right) = (self.operand(left), self.operand(right));
        let (Some(left), Some(right)) = (left, right) else { return false };
        let (left, right) = (self.integer(left), self.integer(right));
        match op {
            BinaryOp::Less => left < right,
            BinaryOp::LessOrEqual => left <= right,
            BinaryOp::Greater => left > right,
            _ => left >= right,
        }
    }

    /// `+ - * / %` on 32-bit integers; division by zero and overflow are math errors with
    /// the value `0`.
    fn arithmetic(&mut self, op: BinaryOp, left: &Expr, right: &Expr) -> i32 {
        let (left, right) = (self.operand(left), self.operand(right));
        let (Some(left), Some(right)) = (left, right) else { return 0 };
        let (left, right) = (self.integer(left), self.integer(right));
        if right == 0 && matches!(op, BinaryOp::Divide | BinaryOp::Remainder) {
            self.fail(EvalErrorKind::Math, format!("{left} {op} 0 divides by zero"));
            return 0;
        }
        let result = match op {
            BinaryOp::Add => left.checked_add(right),
            BinaryOp::Subtract => left.checked_sub(right),
            BinaryOp::Multiply => left.checked_mul(right),
            BinaryOp::Divide => left.checked_div(right),
            _ => Some(left.wrapping_rem(right)),
        };
        result.unwrap_or_else(|| {
            self.fail(EvalErrorKind::Math, format!("{left} {op} {right} overflows 32 bits"));
            0
        })
    }

    /// `[NOT] LIKE`: the value is cast to a string.
    fn like(&mut self, value: &Expr, pattern: &LikePattern, negated: bool) -> Value {
        let Some(value) = self.operand(value) else {
            return Type::Boolean.zero();
        };
        let text = value.to_string();
        Value::Boolean(pattern.matches(&text) != negated)
    }

    /// `[NOT] IN`: the set elements are cast to the type of the value, then compared as `=`.
    fn membership(&mut self, value: &Expr, set: &[Expr], negated: bool) -> Value {
        let Some(value) = self.operand(value) else {
            return Type::Boolean.zero();
        };
        let target = value.value_type();
        let mut found = false;
        let mut failed = false;
        for element in set {
            match self.operand(element) {
                Some(element) => found |= self.implicit(element, target) == value,
                None => failed = true,
            }
        }
        if failed {
            return Type::Boolean.zero();
        }
        Value::Boolean(found != negated)
    }

    /// A function call: a missing function is `false` with an error; otherwise the
    /// arguments are evaluated, cast to the parameter types and passed in.
    fn call(&mut self, name: &str, args: &[Expr]) -> Value {
        let Some(function) = functions::lookup(name, args.len()) else {
            self.fail(
                EvalErrorKind::MissingFunction,
                format!("no function {name} takes {} argument(s)", args.len()),
            );
            return Type::Boolean.zero();
        };
        let mut values = Vec::with_capacity(args.len());
        let mut failed = false;
        for (index, arg) in args.iter().enumerate() {
            match (self.operand(arg), function.param(index)) {
                (Some(value), Param::Typed(target)) => values.push(self.implicit(value, target)),
                (Some(value), Param::Any) => values.push(value),
                (None, _) => failed = true,
            }
        }
        if failed {
            return function.returns.zero();
        }
        let outcome = function.call(values);
        self.errors.extend(outcome.error);
        outcome.value
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::parse;

    struct Attributes(BTreeMap<&'static str, Value>);

    impl EventContext for Attributes {
        fn attribute(&self, name: &str) -> Option<Value> {
            self.0.get(name).cloned()
        }
    }

    fn eval(input: &str) -> (Value, Vec<EvalErrorKind>) {
        let event = Attributes(BTreeMap::from([
            ("id", Value::from("1")),
            ("count", Value::Integer(3)),
            ("flag", Value::Boolean(true)),
        ]));
        let evaluation = parse(input).unwrap_or_else(|e| panic!("{input}: {e}")).evaluate(&event);
        (evaluation.value, evaluation.errors.into_iter().map(|e| e.kind).collect())
    }

    #[test]
    fn missing_attributes_give_the_zero_value_of_the_operator() {
        assert_eq!(eval("missing"), (Value::Boolean(false), vec![EvalErrorKind::MissingAttribute]));
        assert_eq!(eval("missing + 1"), (Value::Integer(0), vec![EvalErrorKind::MissingAttribute]));
        assert_eq!(
            eval("NOT (missing = 1)"),
            (Value::Boolean(false), vec![EvalErrorKind::MissingAttribute])
        );
        assert_eq!(eval("LOWER(missing)"), (Value::from(""), vec![EvalErrorKind::MissingAttribute]));
        assert_eq!(
            eval("1 IN (missing, 1)"),
            (Value::Boolean(false), vec![EvalErrorKind::MissingAttribute])
        );
        assert_eq!(eval("EXISTS missing"), (Value::Boolean(false), vec![]));
    }

    #[test]
    fn short_circuit_skips_the_errors_of_the_right_operand() {
        assert_eq!(eval("flag OR missing"), (Value::Boolean(true), vec![]));
        assert_eq!(eval("NOT flag AND 1 / 0 = 0"), (Value::Boolean(false), vec![]));
        assert_eq!(
            eval("flag XOR missing"),
            (Value::Boolean(false), vec![EvalErrorKind::MissingAttribute])
        );
    }

    #[test]
    fn integer_overflow_is_a_math_error() {
        assert_eq!(eval("2147483647 + 1"), (Value::Integer(0), vec![EvalErrorKind::Math]));
        assert_eq!(eval("-2147483648 / -1"), (Value::Integer(0), vec![EvalErrorKind::Math]));
        assert_eq!(eval("-2147483648 % -1"), (Value::Integer(0), vec![]));
        assert_eq!(eval("-(-2147483648)"), (Value::Integer(i32::MAX), vec![EvalErrorKind::Math]));
        assert_eq!(eval("-7 % 3"), (Value::Integer(-1), vec![]));
        assert_eq!(eval("-7 / 2"), (Value::Integer(-3), vec![]));
    }

    #[test]
    fn casts_follow_the_right_operand_and_the_in_value() {
        assert_eq!(eval("count = '3'"), (Value::Boolean(true), vec![]));
        assert_eq!(eval("count = 'x'"), (Value::Boolean(false), vec![]));
        assert_eq!(eval("'3' = count"), (Value::Boolean(true), vec![]));
        assert_eq!(eval("count IN ('1', '3')"), (Value::Boolean(true), vec![]));
        assert_eq!(eval("count < 'x'"), (Value::Boolean(false), vec![EvalErrorKind::Cast]));
        assert_eq!(eval("flag AND 1"), (Value::Boolean(false), vec![EvalErrorKind::Cast]));
        assert_eq!(eval("count LIKE '3'"), (Value::Boolean(true), vec![]));
    }

    #[test]
    fn functions_cast_arguments_and_report_missing_ones() {
        assert_eq!(eval("CONCAT(count, flag, id)"), (Value::from("3true1"), vec![]));
        assert_eq!(eval("LEFT('abc', 'x')"), (Value::from(""), vec![EvalErrorKind::Cast]));
        assert_eq!(eval("NOPE(1)"), (Value::Boolean(false), vec![EvalErrorKind::MissingFunction]));
        assert_eq!(
            eval("LENGTH(LEFT('abc', -1))"),
            (Value::Integer(0), vec![EvalErrorKind::FunctionEvaluation])
        );
    }

    #[test]
    fn the_deepest_accepted_trees_evaluate() {
        let additions = vec!["count"; 499].join(" + ");
        assert_eq!(eval(&additions), (Value::Integer(3 * 499), vec![]));
        let nested = format!("{}count{}", "ABS(-".repeat(49), ")".repeat(49));
        assert_eq!(eval(&nested), (Value::Integer(3), vec![]));
    }

    #[test]
    fn filter_condition() {
        let event = Attributes(BTreeMap::new());
        assert!(parse("TRUE").expect("parses").evaluate(&event).is_true_without_errors());
        assert!(!parse("'true'").expect("parses").evaluate(&event).is_true_without_errors());
        assert!(parse("TRUE OR x").expect("parses").evaluate(&event).is_true_without_errors());
        assert!(!parse("x OR TRUE").expect("parses").evaluate(&event).is_true_without_errors());
    }
}
