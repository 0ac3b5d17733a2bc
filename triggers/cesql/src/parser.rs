//! Recursive-descent parser with the spec's precedence (§3.6), loosest first:
//! AND/OR/XOR (right-associative), comparisons, `+ -`, `* / %`, LIKE/IN, unary NOT and `-`,
//! then function calls, EXISTS, literals, attributes and parenthesised sub-expressions.

use crate::ast::{BinaryOp, Expr, UnaryOp};
use crate::lexer::{Token, TokenKind};
use crate::value::Value;
use crate::ParseError;

/// Parses tokens into an expression; all input must be consumed.
pub fn parse_tokens(tokens: Vec<Token>, input_len: usize) -> Result<Expr, ParseError> {
    let mut p = Parser { tokens, pos: 0, end: input_len };
    let expr = p.logic()?;
    if let Some(t) = p.peek() {
        return Err(ParseError::at(t.offset, format!("unexpected {}", describe(&t.kind))));
    }
    Ok(expr)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    end: usize,
}

fn describe(kind: &TokenKind) -> String {
    match kind {
        TokenKind::Integer(n) => format!("integer {n}"),
        TokenKind::String(s) => format!("string {s:?}"),
        TokenKind::Name(n) => format!("{n:?}"),
        TokenKind::LParen => "'('".into(),
        TokenKind::RParen => "')'".into(),
        TokenKind::Comma => "','".into(),
        TokenKind::Symbol(s) => format!("'{s}'"),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_kind(&self) -> Option<&TokenKind> {
        self.peek().map(|t| &t.kind)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn offset(&self) -> usize {
        self.peek().map(|t| t.offset).unwrap_or(self.end)
    }

    fn keyword_at(&self, pos: usize, kw: &str) -> bool {
        matches!(self.tokens.get(pos).map(|t| &t.kind), Some(TokenKind::Name(n)) if n.eq_ignore_ascii_case(kw))
    }

    fn is_keyword(&self, kw: &str) -> bool {
        self.keyword_at(self.pos, kw)
    }

    fn expect(&mut self, kind: TokenKind, what: &str) -> Result<(), ParseError> {
        match self.next() {
            Some(t) if t.kind == kind => Ok(()),
            Some(t) => Err(ParseError::at(t.offset, format!("expected {what}, found {}", describe(&t.kind)))),
            None => Err(ParseError::at(self.end, format!("expected {what}, found end of expression"))),
        }
    }

    fn logic(&mut self) -> Result<Expr, ParseError> {
        let left = self.comparison()?;
        let op = if self.is_keyword("AND") {
            BinaryOp::And
        } else if self.is_keyword("OR") {
            BinaryOp::Or
        } else if self.is_keyword("XOR") {
            BinaryOp::Xor
        } else {
            return Ok(left);
        };
        self.pos += 1;
        let right = self.logic()?;
        Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.additive()?;
        loop {
            let op = match self.peek_kind() {
                Some(TokenKind::Symbol("=")) => BinaryOp::Eq,
                Some(TokenKind::Symbol("!=" | "<>")) => BinaryOp::NotEq,
                Some(TokenKind::Symbol("<")) => BinaryOp::Lt,
                Some(TokenKind::Symbol("<=")) => BinaryOp::Le,
                Some(TokenKind::Symbol(">")) => BinaryOp::Gt,
                Some(TokenKind::Symbol(">=")) => BinaryOp::Ge,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.additive()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn additive(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.peek_kind() {
                Some(TokenKind::Symbol("+")) => BinaryOp::Add,
                Some(TokenKind::Symbol("-")) => BinaryOp::Sub,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.multiplicative()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.postfix()?;
        loop {
            let op = match self.peek_kind() {
                Some(TokenKind::Symbol("*")) => BinaryOp::Mul,
                Some(TokenKind::Symbol("/")) => BinaryOp::Div,
                Some(TokenKind::Symbol("%")) => BinaryOp::Rem,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.postfix()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    /// `x [NOT] LIKE 'p'` and `x [NOT] IN (...)`.
    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut value = self.unary()?;
        loop {
            let negated = self.is_keyword("NOT") && (self.keyword_at(self.pos + 1, "LIKE") || self.keyword_at(self.pos + 1, "IN"));
            let at = self.pos + usize::from(negated);
            if self.keyword_at(at, "LIKE") {
                self.pos = at + 1;
                let pattern = match self.next() {
                    Some(Token { kind: TokenKind::String(s), .. }) => s,
                    Some(t) => return Err(ParseError::at(t.offset, format!("LIKE needs a string literal pattern, found {}", describe(&t.kind)))),
                    None => return Err(ParseError::at(self.end, "LIKE needs a string literal pattern".into())),
                };
                value = Expr::Like { value: Box::new(value), pattern, negated };
            } else if self.keyword_at(at, "IN") {
                self.pos = at + 1;
                self.expect(TokenKind::LParen, "'(' after IN")?;
                let mut set = vec![self.logic()?];
                while self.peek_kind() == Some(&TokenKind::Comma) {
                    self.pos += 1;
                    set.push(self.logic()?);
                }
                self.expect(TokenKind::RParen, "')' closing the IN set")?;
                value = Expr::In { value: Box::new(value), set, negated };
            } else {
                return Ok(value);
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.is_keyword("NOT") {
            self.pos += 1;
            return Ok(Expr::Unary(UnaryOp::Not, Box::new(self.unary()?)));
        }
        if self.peek_kind() == Some(&TokenKind::Symbol("-")) {
            self.pos += 1;
            if let Some(TokenKind::Integer(n)) = self.peek_kind().cloned() {
                let offset = self.offset();
                self.pos += 1;
                let v = i64::try_from(n).ok().map(|n| -n).and_then(|n| i32::try_from(n).ok());
                return v.map(|v| Expr::Literal(Value::Integer(v))).ok_or_else(|| ParseError::at(offset, format!("integer literal -{n} is out of the 32-bit range")));
            }
            return Ok(Expr::Unary(UnaryOp::Negate, Box::new(self.unary()?)));
        }
        if self.peek_kind() == Some(&TokenKind::Symbol("+")) {
            if let Some(TokenKind::Integer(_)) = self.tokens.get(self.pos + 1).map(|t| &t.kind) {
                self.pos += 1;
            }
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let Some(token) = self.next() else {
            return Err(ParseError::at(self.end, "unexpected end of expression".into()));
        };
        match token.kind {
            TokenKind::Integer(n) => i32::try_from(n)
                .map(|v| Expr::Literal(Value::Integer(v)))
                .map_err(|_| ParseError::at(token.offset, format!("integer literal {n} is out of the 32-bit range"))),
            TokenKind::String(s) => Ok(Expr::Literal(Value::String(s))),
            TokenKind::LParen => {
                let e = self.logic()?;
                self.expect(TokenKind::RParen, "')'")?;
                Ok(e)
            }
            TokenKind::Name(name) => self.name(name, token.offset),
            other => Err(ParseError::at(token.offset, format!("unexpected {}", describe(&other)))),
        }
    }

    fn name(&mut self, name: String, offset: usize) -> Result<Expr, ParseError> {
        if name.eq_ignore_ascii_case("true") {
            return Ok(Expr::Literal(Value::Boolean(true)));
        }
        if name.eq_ignore_ascii_case("false") {
            return Ok(Expr::Literal(Value::Boolean(false)));
        }
        if name.eq_ignore_ascii_case("EXISTS") {
            return match self.next() {
                Some(Token { kind: TokenKind::Name(id), offset }) => attribute_name(id, offset).map(Expr::Exists),
                Some(t) => Err(ParseError::at(t.offset, format!("EXISTS needs an attribute name, found {}", describe(&t.kind)))),
                None => Err(ParseError::at(self.end, "EXISTS needs an attribute name".into())),
            };
        }
        if self.peek_kind() == Some(&TokenKind::LParen) {
            if !name.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_') {
                return Err(ParseError::at(offset, format!("invalid function name {name:?}")));
            }
            self.pos += 1;
            let mut args = Vec::new();
            if self.peek_kind() != Some(&TokenKind::RParen) {
                args.push(self.logic()?);
                while self.peek_kind() == Some(&TokenKind::Comma) {
                    self.pos += 1;
                    args.push(self.logic()?);
                }
            }
            self.expect(TokenKind::RParen, "')' closing the argument list")?;
            return Ok(Expr::Call(name.to_ascii_uppercase(), args));
        }
        for kw in ["AND", "OR", "XOR", "NOT", "LIKE", "IN"] {
            if name.eq_ignore_ascii_case(kw) {
                return Err(ParseError::at(offset, format!("unexpected keyword {kw}")));
            }
        }
        attribute_name(name, offset).map(Expr::Attribute)
    }
}

/// Attribute names are letters and digits, matched case-insensitively (CloudEvents attribute
/// names are lower-case, so `SOURCE` reads `source`).
fn attribute_name(name: String, offset: usize) -> Result<String, ParseError> {
    if name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(ParseError::at(offset, format!("invalid attribute name {name:?}: attribute names are letters and digits")))
    }
}
