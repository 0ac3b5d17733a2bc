//! Splits an expression into tokens. Keywords are case-insensitive; string literals keep their
//! case and support both quote styles with backslash escapes.

use crate::ParseError;

/// A token with its byte offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Byte offset in the input.
    pub offset: usize,
}

/// Token kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Digits (range checked by the parser).
    Integer(u64),
    /// A string literal, unescaped.
    String(String),
    /// A name: attribute, function or keyword (as written).
    Name(String),
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `,`.
    Comma,
    /// An operator symbol: `= != <> < <= > >= + - * / %`.
    Symbol(&'static str),
}

/// Tokenizes `input`.
pub fn tokenize(input: &str) -> Result<Vec<Token>, ParseError> {
    let bytes = input.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => {
                i += 1;
                TokenKind::LParen
            }
            b')' => {
                i += 1;
                TokenKind::RParen
            }
            b',' => {
                i += 1;
                TokenKind::Comma
            }
            b'\'' | b'"' => {
                let (s, next) = string_literal(input, i)?;
                i = next;
                TokenKind::String(s)
            }
            b'0'..=b'9' => {
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let n = input[start..i]
                    .parse::<u64>()
                    .map_err(|_| ParseError::at(start, format!("integer literal {} is out of range", &input[start..i])))?;
                TokenKind::Integer(n)
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                TokenKind::Name(input[start..i].to_string())
            }
            _ => {
                let two = input.get(i..i + 2).unwrap_or("");
                let sym: &'static str = match two {
                    "!=" => "!=",
                    "<>" => "<>",
                    "<=" => "<=",
                    ">=" => ">=",
                    _ => match c {
                        b'=' => "=",
                        b'<' => "<",
                        b'>' => ">",
                        b'+' => "+",
                        b'-' => "-",
                        b'*' => "*",
                        b'/' => "/",
                        b'%' => "%",
                        _ => {
                            let ch = input[i..].chars().next().unwrap_or('?');
                            return Err(ParseError::at(i, format!("unexpected character {ch:?}")));
                        }
                    },
                };
                i += sym.len();
                TokenKind::Symbol(sym)
            }
        };
        tokens.push(Token { kind, offset: start });
    }
    Ok(tokens)
}

/// Reads a quoted string starting at `start`; returns it unescaped and the offset after it.
fn string_literal(input: &str, start: usize) -> Result<(String, usize), ParseError> {
    let quote = input.as_bytes()[start] as char;
    let mut out = String::new();
    let mut chars = input[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, n)) if n == quote => out.push(n),
                Some((_, n)) => {
                    out.push('\\');
                    out.push(n);
                }
                None => break,
            },
            c if c == quote => return Ok((out, start + 1 + off + 1)),
            c => out.push(c),
        }
    }
    Err(ParseError::at(start, "unterminated string literal".to_string()))
}
