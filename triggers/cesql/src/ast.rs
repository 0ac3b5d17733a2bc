//! The syntax tree the parser builds and the evaluator walks.

use std::fmt;

use crate::like::LikePattern;
use crate::value::Value;

/// A unary operator (spec §3.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `NOT x`: boolean negation.
    Not,
    /// `-x`: integer negation.
    Negate,
}

/// A binary operator (spec §3.4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `*`.
    Multiply,
    /// `/`, truncating towards zero.
    Divide,
    /// `%`, with the sign of the dividend.
    Remainder,
    /// `+`.
    Add,
    /// `-`.
    Subtract,
    /// `=`.
    Equal,
    /// `!=` or `<>`.
    NotEqual,
    /// `<`.
    Less,
    /// `<=`.
    LessOrEqual,
    /// `>`.
    Greater,
    /// `>=`.
    GreaterOrEqual,
    /// `AND`, short-circuiting.
    And,
    /// `OR`, short-circuiting.
    Or,
    /// `XOR`.
    Xor,
}

impl fmt::Display for BinaryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BinaryOp::Multiply => "*",
            BinaryOp::Divide => "/",
            BinaryOp::Remainder => "%",
            BinaryOp::Add => "+",
            BinaryOp::Subtract => "-",
            BinaryOp::Equal => "=",
            BinaryOp::NotEqual => "!=",
            BinaryOp::Less => "<",
            BinaryOp::LessOrEqual => "<=",
            BinaryOp::Greater => ">",
            BinaryOp::GreaterOrEqual => ">=",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
            BinaryOp::Xor => "XOR",
        })
    }
}

/// An expression node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// A literal value.
    Literal(Value),
    /// A context attribute or extension, by lower-case name.
    Attribute(String),
    /// `EXISTS name`, by lower-case name.
    Exists(String),
    /// A unary operation.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// Its operand.
        operand: Box<Expr>,
    },
    /// A binary operation.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// The left operand.
        left: Box<Expr>,
        /// The right operand.
        right: Box<Expr>,
    },
    /// `value [NOT] LIKE 'pattern'`.
    Like {
        /// The value matched (cast to a string).
        value: Box<Expr>,
        /// The compiled pattern.
        pattern: LikePattern,
        /// `NOT LIKE`.
        negated: bool,
    },
    /// `value [NOT] IN (a, b, ...)`.
    In {
        /// The value looked up; its type is the type the set elements are cast to.
        value: Box<Expr>,
        /// The set elements (at least one).
        set: Vec<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// A function invocation.
    Call {
        /// The function name, upper-case.
        name: String,
        /// The arguments.
        args: Vec<Expr>,
    },
}
