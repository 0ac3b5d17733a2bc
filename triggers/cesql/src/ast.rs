//! The syntax tree of a parsed expression.

use crate::value::Value;

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `NOT`.
    Not,
    /// `-`.
    Negate,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Rem,
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `=`.
    Eq,
    /// `!=` or `<>`.
    NotEq,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `AND`.
    And,
    /// `OR`.
    Or,
    /// `XOR`.
    Xor,
}

/// An expression node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// A literal value.
    Literal(Value),
    /// An attribute or extension, by lower-case name.
    Attribute(String),
    /// `EXISTS name`.
    Exists(String),
    /// A unary operation.
    Unary(UnaryOp, Box<Expr>),
    /// A binary operation.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `x [NOT] LIKE 'pattern'`.
    Like {
        /// The value matched.
        value: Box<Expr>,
        /// The pattern (a string literal).
        pattern: String,
        /// `NOT LIKE`.
        negated: bool,
    },
    /// `x [NOT] IN (a, b, ...)`.
    In {
        /// The value looked up.
        value: Box<Expr>,
        /// The set.
        set: Vec<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// A function call; the name is upper-case.
    Call(String, Vec<Expr>),
}
