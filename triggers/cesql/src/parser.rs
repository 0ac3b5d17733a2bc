//! A precedence-climbing parser for the grammar of spec §2 with the precedence of spec §3.6,
//! tightest first: function invocations; unary `NOT` and `-`; `LIKE`; `EXISTS`; `IN`;
//! `* / %`; `+ -`; comparisons; `AND`/`OR`/`XOR`. Operators of equal precedence group left to
//! right, as §3.6 requires (so `a OR b AND c` is `(a OR b) AND c`).

use crate::ast::{BinaryOp, Expr, UnaryOp};
use crate::error::ParseError;
use crate::lexer::{Keyword, Symbol, Token, TokenKind};
use crate::like::LikePattern;
use crate::value::Value;

/// The deepest syntax tree accepted. Evaluation walks the tree recursively, so the bound
/// keeps hostile expressions from exhausting the stack while leaving room for long generated
/// chains such as 400 `OR`ed comparisons.
pub(crate) const MAX_DEPTH: usize = 500;

/// The deepest nesting of parentheses, unary operators, function arguments and right-hand
/// operands accepted; each level is a recursive call of the parser.
pub(crate) const MAX_NESTING: usize = 100;

/// Binding powers, loosest first; an operator binds an operand only if its power is at least
/// the minimum the operand is being parsed with.
mod power {
    pub const LOGIC: u8 = 1;
    pub const COMPARISON: u8 = 2;
    pub const ADDITIVE: u8 = 3;
    pub const MULTIPLICATIVE: u8 = 4;
    pub const IN: u8 = 5;
    pub const LIKE: u8 = 6;
    pub const PREFIX: u8 = 7;
}

/// Parses a whole token stream; `input_chars` is the input length, for end-of-input errors.
pub(crate) fn parse_tokens(tokens: Vec<Token>, input_chars: usize) -> Result<Expr, ParseError> {
    let mut parser = Parser {
        tokens,
        pos: 0,
        end: input_chars + 1,
        nesting: 0,
    };
    if parser.tokens.is_empty() {
        return Err(ParseError::new(1, "empty expression"));
    }
    let root = parser.expression(0)?;
    match parser.peek() {
        Some(token) => Err(ParseError::new(token.position, format!("unexpected {}", token.kind.describe()))),
        None => Ok(root.expr),
    }
}

/// A parsed sub-tree and its depth.
struct Parsed {
    expr: Expr,
    depth: usize,
}

/// An operator found after a complete operand.
enum Infix {
    Binary(BinaryOp),
    Like { negated: bool },
    In { negated: bool },
}

impl Infix {
    fn power(&self) -> u8 {
        match self {
            Infix::Binary(op) => match op {
                BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => power::LOGIC,
                BinaryOp::Equal
                | BinaryOp::NotEqual
                | BinaryOp::Less
                | BinaryOp::LessOrEqual
                | BinaryOp::Greater
                | BinaryOp::GreaterOrEqual => power::COMPARISON,
                BinaryOp::Add | BinaryOp::Subtract => power::ADDITIVE,
                BinaryOp::Multiply | BinaryOp::Divide | BinaryOp::Remainder => power::MULTIPLICATIVE,
            },
            Infix::Like { .. } => power::LIKE,
            Infix::In { .. } => power::IN,
        }
    }

    /// How many tokens the operator takes (`NOT LIKE` and `NOT IN` take two).
    fn width(&self) -> usize {
        match self {
            Infix::Like { negated: true } | Infix::In { negated: true } => 2,
            _ => 1,
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// The position just after the input, reported for errors at the end.
    end: usize,
    /// Current recursion depth of `expression`.
    nesting: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_kind(&self) -> Option<&TokenKind> {
        self.peek().map(|t| &t.kind)
    }

    fn kind_at(&self, offset: usize) -> Option<&TokenKind> {
        self.tokens.get(self.pos + offset).map(|t| &t.kind)
    }

    fn position(&self) -> usize {
        self.peek().map_or(self.end, |t| t.position)
    }

    fn advance(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        if token.is_some() {
            self.pos += 1;
        }
        token
    }

    fn error_here(&self, expected: &str) -> ParseError {
        match self.peek() {
            Some(token) => ParseError::new(token.position, format!("expected {expected}, found {}", token.kind.describe())),
            None => ParseError::new(self.end, format!("expected {expected}, found the end of the expression")),
        }
    }

    fn expect_symbol(&mut self, symbol: Symbol) -> Result<(), ParseError> {
        if self.peek_kind() == Some(&TokenKind::Symbol(symbol)) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error_here(&format!("'{}'", symbol.text())))
        }
    }

    /// Wraps `expr` whose children are `depth - 1` deep, refusing trees deeper than the limit.
    fn node(&self, expr: Expr, depth: usize, position: usize) -> Result<Parsed, ParseError> {
        if depth > MAX_DEPTH {
            return Err(ParseError::new(position, format!("expression is deeper than {MAX_DEPTH} levels")));
        }
        Ok(Parsed { expr, depth })
    }

    /// Parses an expression whose operators all bind at least as tightly as `min_power`.
    fn expression(&mut self, min_power: u8) -> Result<Parsed, ParseError> {
        if self.nesting >= MAX_NESTING {
            return Err(ParseError::new(
                self.position(),
                format!("expression nests deeper than {MAX_NESTING} levels"),
            ));
        }
        self.nesting += 1;
        let parsed = self.operand_and_operators(min_power);
        self.nesting -= 1;
        parsed
    }

    fn operand_and_operators(&mut self, min_power: u8) -> Result<Parsed, ParseError> {
        let mut left = self.prefix()?;
        while let Some(infix) = self.infix() {
            let power = infix.power();
            if power < min_power {
                break;
            }
            let position = self.position();
            self.pos += infix.width();
            left = match infix {
                Infix::Binary(op) => {
                    let right = self.expression(power + 1)?;
                    let depth = left.depth.max(right.depth) + 1;
                    let expr = Expr::Binary {
                        op,
                        left: Box::new(left.expr),
                        right: Box::new(right.expr),
                    };
                    self.node(expr, depth, position)?
                }
                Infix::Like { negated } => {
                    let Some(TokenKind::String(pattern)) = self.peek_kind() else {
                        return Err(self.error_here("a string literal pattern after LIKE"));
                    };
                    let pattern = LikePattern::new(pattern);
                    self.pos += 1;
                    let expr = Expr::Like {
                        value: Box::new(left.expr),
                        pattern,
                        negated,
                    };
                    self.node(expr, left.depth + 1, position)?
                }
                Infix::In { negated } => {
                    let (set, depth) = self.parenthesised_list(false)?;
                    let expr = Expr::In {
                        value: Box::new(left.expr),
                        set,
                        negated,
                    };
                    self.node(expr, left.depth.max(depth) + 1, position)?
                }
            };
        }
        Ok(left)
    }

    /// The operator at the current token, if there is one.
    fn infix(&self) -> Option<Infix> {
        let binary = |op| Some(Infix::Binary(op));
        match self.peek_kind()? {
            TokenKind::Symbol(symbol) => match symbol {
                Symbol::Star => binary(BinaryOp::Multiply),
                Symbol::Slash => binary(BinaryOp::Divide),
                Symbol::Percent => binary(BinaryOp::Remainder),
                Symbol::Plus => binary(BinaryOp::Add),
                Symbol::Minus => binary(BinaryOp::Subtract),
                Symbol::Equal => binary(BinaryOp::Equal),
                Symbol::NotEqual | Symbol::LessGreater => binary(BinaryOp::NotEqual),
                Symbol::Less => binary(BinaryOp::Less),
                Symbol::LessOrEqual => binary(BinaryOp::LessOrEqual),
                Symbol::Greater => binary(BinaryOp::Greater),
                Symbol::GreaterOrEqual => binary(BinaryOp::GreaterOrEqual),
                Symbol::LeftParen | Symbol::RightParen | Symbol::Comma => None,
            },
            TokenKind::Keyword(Keyword::And) => binary(BinaryOp::And),
            TokenKind::Keyword(Keyword::Or) => binary(BinaryOp::Or),
            TokenKind::Keyword(Keyword::Xor) => binary(BinaryOp::Xor),
            TokenKind::Keyword(Keyword::Like) => Some(Infix::Like { negated: false }),
            TokenKind::Keyword(Keyword::In) => Some(Infix::In { negated: false }),
            TokenKind::Keyword(Keyword::Not) => match self.kind_at(1)? {
                TokenKind::Keyword(Keyword::Like) => Some(Infix::Like { negated: true }),
                TokenKind::Keyword(Keyword::In) => Some(Infix::In { negated: true }),
                _ => None,
            },
            _ => None,
        }
    }

    /// An operand: a literal, attribute, `EXISTS`, function call, parenthesised expression,
    /// or a unary operator applied to an operand.
    fn prefix(&mut self) -> Result<Parsed, ParseError> {
        let Some(token) = self.advance() else {
            return Err(self.error_here("an operand"));
        };
        let position = token.position;
        let leaf = |expr| Ok(Parsed { expr, depth: 1 });
        match token.kind {
            TokenKind::Integer(digits) => leaf(Expr::Literal(integer(&digits, "", position)?)),
            TokenKind::String(text) => leaf(Expr::Literal(Value::String(text))),
            TokenKind::Keyword(Keyword::True) => leaf(Expr::Literal(Value::Boolean(true))),
            TokenKind::Keyword(Keyword::False) => leaf(Expr::Literal(Value::Boolean(false))),
            TokenKind::Symbol(sign @ (Symbol::Minus | Symbol::Plus)) => self.signed(sign, position),
            TokenKind::Keyword(Keyword::Not) => self.unary(UnaryOp::Not, position),
            TokenKind::Keyword(Keyword::Exists) => match self.peek() {
                Some(Token {
                    kind: TokenKind::Word(name),
                    position,
                }) => {
                    let name = attribute_name(name, *position)?;
                    self.pos += 1;
                    leaf(Expr::Exists(name))
                }
                _ => Err(self.error_here("an attribute name after EXISTS")),
            },
            TokenKind::Symbol(Symbol::LeftParen) => {
                let inner = self.expression(0)?;
                self.expect_symbol(Symbol::RightParen)?;
                Ok(inner)
            }
            TokenKind::Word(word) if self.peek_kind() == Some(&TokenKind::Symbol(Symbol::LeftParen)) => {
                let name = function_name(&word, position)?;
                let (args, depth) = self.parenthesised_list(true)?;
                self.node(Expr::Call { name, args }, depth + 1, position)
            }
            TokenKind::Word(word) => leaf(Expr::Attribute(attribute_name(&word, position)?)),
            other => Err(ParseError::new(
                position,
                format!("expected an operand, found {}", other.describe()),
            )),
        }
    }

    /// After a `-` or `+` in operand position: a signed integer literal (spec §2.2), or for
    /// `-` the negation of an operand.
    fn signed(&mut self, sign: Symbol, position: usize) -> Result<Parsed, ParseError> {
        if let Some(TokenKind::Integer(digits)) = self.peek_kind() {
            let literal = integer(digits, sign.text(), position)?;
            self.pos += 1;
            return Ok(Parsed {
                expr: Expr::Literal(literal),
                depth: 1,
            });
        }
        if sign == Symbol::Plus {
            return Err(self.error_here("an integer literal after '+'"));
        }
        self.unary(UnaryOp::Negate, position)
    }

    fn unary(&mut self, op: UnaryOp, position: usize) -> Result<Parsed, ParseError> {
        let operand = self.expression(power::PREFIX)?;
        let expr = Expr::Unary {
            op,
            operand: Box::new(operand.expr),
        };
        self.node(expr, operand.depth + 1, position)
    }

    /// `( expr, ... )`, the arguments of a call (may be empty) or an `IN` set (may not).
    /// Returns the elements and the depth of the deepest.
    fn parenthesised_list(&mut self, allow_empty: bool) -> Result<(Vec<Expr>, usize), ParseError> {
        self.expect_symbol(Symbol::LeftParen)?;
        let mut items = Vec::new();
        let mut depth = 0;
        if allow_empty && self.peek_kind() == Some(&TokenKind::Symbol(Symbol::RightParen)) {
            self.pos += 1;
            return Ok((items, depth));
        }
        loop {
            let item = self.expression(0)?;
            depth = depth.max(item.depth);
            items.push(item.expr);
            match self.peek_kind() {
                Some(TokenKind::Symbol(Symbol::Comma)) => self.pos += 1,
                Some(TokenKind::Symbol(Symbol::RightParen)) => {
                    self.pos += 1;
                    return Ok((items, depth));
                }
                _ => return Err(self.error_here("',' or ')'")),
            }
        }
    }
}

/// An integer literal with an optional sign; it must fit in 32 bits (spec §2.2).
fn integer(digits: &str, sign: &str, position: usize) -> Result<Value, ParseError> {
    format!("{sign}{digits}")
        .parse::<i32>()
        .map(Value::Integer)
        .map_err(|_| ParseError::new(position, format!("integer literal {sign}{digits} does not fit in 32 bits")))
}

/// A value identifier (spec §2.2): letters and digits. Names are matched case-insensitively
/// (`EXISTS SOURCE` reads `source`), so they are lower-cased here.
fn attribute_name(word: &str, position: usize) -> Result<String, ParseError> {
    if word.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(word.to_ascii_lowercase())
    } else {
        Err(ParseError::new(
            position,
            format!("invalid attribute name {word:?}: only letters and digits are allowed"),
        ))
    }
}

/// A function identifier (spec §2.4): a letter, then letters and underscores; upper-cased.
fn function_name(word: &str, position: usize) -> Result<String, ParseError> {
    let valid = word.starts_with(|c: char| c.is_ascii_alphabetic()) && word.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_');
    if valid {
        Ok(word.to_ascii_uppercase())
    } else {
        Err(ParseError::new(
            position,
            format!("invalid function name {word:?}: only letters and '_' are allowed"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::ast::{BinaryOp, Expr, UnaryOp};
    use crate::value::Value;
    use crate::{parse, ParseError};

    fn tree(input: &str) -> Expr {
        parse(input).unwrap_or_else(|e| panic!("{input}: {e}")).ast().clone()
    }

    fn error(input: &str) -> ParseError {
        parse(input).expect_err("must not parse")
    }

    fn binary(op: BinaryOp, left: Expr, right: Expr) -> Expr {
        Expr::Binary {
            op,
            left: Box::new(left),
            right: Box::new(right),
        }
    }

    fn int(i: i32) -> Expr {
        Expr::Literal(Value::Integer(i))
    }

    fn attr(name: &str) -> Expr {
        Expr::Attribute(name.into())
    }

    #[test]
    fn arithmetic_precedence() {
        assert_eq!(
            tree("1 + 2 * 3 - 4"),
            binary(
                BinaryOp::Subtract,
                binary(BinaryOp::Add, int(1), binary(BinaryOp::Multiply, int(2), int(3))),
                int(4)
            )
        );
    }

    #[test]
    fn logic_operators_share_one_level_left_to_right() {
        assert_eq!(
            tree("a OR b AND c"),
            binary(BinaryOp::And, binary(BinaryOp::Or, attr("a"), attr("b")), attr("c"))
        );
    }

    #[test]
    fn unary_binds_tighter_than_like_and_comparisons() {
        let not_a = Expr::Unary {
            op: UnaryOp::Not,
            operand: Box::new(attr("a")),
        };
        assert_eq!(tree("NOT a = b"), binary(BinaryOp::Equal, not_a, attr("b")));
        assert!(matches!(tree("NOT EXISTS a"), Expr::Unary { op: UnaryOp::Not, .. }));
    }

    #[test]
    fn like_and_in_bind_tighter_than_arithmetic() {
        let Expr::Binary {
            op: BinaryOp::Add, right, ..
        } = tree("a + b NOT LIKE 'x%'")
        else {
            panic!("not an addition")
        };
        assert!(matches!(*right, Expr::Like { negated: true, .. }));
        let Expr::Binary {
            op: BinaryOp::Equal,
            right,
            ..
        } = tree("a = b IN (1, 2)")
        else {
            panic!("not a comparison")
        };
        assert!(matches!(*right, Expr::In { negated: false, ref set, .. } if set.len() == 2));
    }

    #[test]
    fn signed_integer_literals() {
        assert_eq!(tree("-2147483648"), int(i32::MIN));
        assert_eq!(tree("+7"), int(7));
        assert_eq!(
            tree("--1"),
            Expr::Unary {
                op: UnaryOp::Negate,
                operand: Box::new(int(-1))
            }
        );
        assert_eq!(tree("1 -2"), binary(BinaryOp::Subtract, int(1), int(2)));
        assert!(error("2147483648").message.contains("32 bits"));
        assert!(error("-2147483649").message.contains("32 bits"));
        assert!(error("+a").message.contains("integer literal"));
    }

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(tree("EXISTS SOURCE"), Expr::Exists("source".into()));
        assert_eq!(
            tree("concat_Ws('-')"),
            Expr::Call {
                name: "CONCAT_WS".into(),
                args: vec![Expr::Literal("-".into())]
            }
        );
        assert_eq!(tree("2fa"), attr("2fa"));
    }

    #[test]
    fn syntax_errors_report_positions() {
        assert_eq!(error("ABC(").position, 5);
        assert_eq!(error("a = = 'x'").position, 5);
        assert_eq!(error("x LIKE 123").position, 8);
        assert_eq!(error("a IN ()").position, 7);
        assert_eq!(error("(a").position, 3);
        assert_eq!(error("a b").position, 3);
        assert_eq!(error("a_b = 1").position, 1);
        assert_eq!(error("f1(2)").position, 1);
        assert_eq!(error("EXISTS 'a'").position, 8);
        assert_eq!(error("").position, 1);
        assert_eq!(error("a NOT b").position, 3);
    }

    #[test]
    fn error_messages_are_lower_case_with_position() {
        assert_eq!(
            error("a = ").to_string(),
            "parse error at position 5: expected an operand, found the end of the expression"
        );
    }

    #[test]
    fn depth_is_bounded() {
        let nested = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(error(&nested).message.contains("nests deeper than 100"));
        let negations = format!("{}1", "-".repeat(100_000));
        assert!(error(&negations).message.contains("nests deeper than 100"));
        assert!(parse(&format!("{}1{}", "ABS(".repeat(99), ")".repeat(99))).is_ok());
        let chain = vec!["a = 1"; 100_000].join(" OR ");
        assert!(error(&chain).message.contains("deeper than 500"));
        assert!(parse(&vec!["a = 1"; 400].join(" OR ")).is_ok());
    }
}
