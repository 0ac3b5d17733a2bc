//! Splits an expression into tokens (spec §2). Keywords are case-insensitive; string literals
//! keep their case and may be quoted with `'` or `"`.

use crate::error::ParseError;

/// A keyword of the language (spec §2.3), recognised in any case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keyword {
    And,
    Or,
    Xor,
    Not,
    Like,
    In,
    Exists,
    True,
    False,
}

/// Every keyword as written in the grammar.
const KEYWORDS: [(&str, Keyword); 9] = [
    ("AND", Keyword::And),
    ("OR", Keyword::Or),
    ("XOR", Keyword::Xor),
    ("NOT", Keyword::Not),
    ("LIKE", Keyword::Like),
    ("IN", Keyword::In),
    ("EXISTS", Keyword::Exists),
    ("TRUE", Keyword::True),
    ("FALSE", Keyword::False),
];

impl Keyword {
    fn from_word(word: &str) -> Option<Self> {
        KEYWORDS
            .iter()
            .find(|(text, _)| text.eq_ignore_ascii_case(word))
            .map(|(_, keyword)| *keyword)
    }

    /// The keyword as written in the grammar (upper case).
    pub(crate) fn text(self) -> &'static str {
        KEYWORDS.iter().find(|(_, keyword)| *keyword == self).map_or("", |(text, _)| text)
    }
}

/// An operator or punctuation symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Symbol {
    LeftParen,
    RightParen,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Equal,
    NotEqual,
    LessGreater,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Symbol {
    /// The symbol as written.
    pub(crate) fn text(self) -> &'static str {
        match self {
            Symbol::LeftParen => "(",
            Symbol::RightParen => ")",
            Symbol::Comma => ",",
            Symbol::Plus => "+",
            Symbol::Minus => "-",
            Symbol::Star => "*",
            Symbol::Slash => "/",
            Symbol::Percent => "%",
            Symbol::Equal => "=",
            Symbol::NotEqual => "!=",
            Symbol::LessGreater => "<>",
            Symbol::Less => "<",
            Symbol::LessOrEqual => "<=",
            Symbol::Greater => ">",
            Symbol::GreaterOrEqual => ">=",
        }
    }
}

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// An unsigned run of digits; the parser applies the sign and checks the range.
    Integer(String),
    /// A string literal, with its quote escapes resolved.
    String(String),
    /// A keyword.
    Keyword(Keyword),
    /// Any other word: an attribute or a function name, as written.
    Word(String),
    /// An operator or punctuation.
    Symbol(Symbol),
}

impl TokenKind {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            TokenKind::Integer(digits) => format!("integer {digits}"),
            TokenKind::String(s) => format!("string {s:?}"),
            TokenKind::Keyword(k) => format!("keyword {}", k.text()),
            TokenKind::Word(w) => format!("name {w:?}"),
            TokenKind::Symbol(s) => format!("'{}'", s.text()),
        }
    }
}

/// A token and the one-based character position where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) position: usize,
}

/// Tokenizes `input`.
pub(crate) fn tokenize(input: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let start = i;
        let kind = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '\'' | '"' => {
                let (text, next) = string_literal(&chars, i, c)?;
                i = next;
                TokenKind::String(text)
            }
            c if is_word_char(c) => {
                while chars.get(i).copied().is_some_and(is_word_char) {
                    i += 1;
                }
                word(chars[start..i].iter().collect())
            }
            _ => {
                let (symbol, len) = symbol(c, chars.get(i + 1).copied())
                    .ok_or_else(|| ParseError::new(start + 1, format!("unexpected character {c:?}")))?;
                i += len;
                TokenKind::Symbol(symbol)
            }
        };
        tokens.push(Token { kind, position: start + 1 });
    }
    Ok(tokens)
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Classifies a word: all digits is an integer, then keywords, else a name.
fn word(text: String) -> TokenKind {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        TokenKind::Integer(text)
    } else if let Some(keyword) = Keyword::from_word(&text) {
        TokenKind::Keyword(keyword)
    } else {
        TokenKind::Word(text)
    }
}

/// The symbol starting with `c` (looking at `next` for two-character ones) and its length.
fn symbol(c: char, next: Option<char>) -> Option<(Symbol, usize)> {
    let two = match (c, next) {
        ('!', Some('=')) => Some(Symbol::NotEqual),
        ('<', Some('>')) => Some(Symbol::LessGreater),
        ('<', Some('=')) => Some(Symbol::LessOrEqual),
        ('>', Some('=')) => Some(Symbol::GreaterOrEqual),
        _ => None,
    };
    if let Some(symbol) = two {
        return Some((symbol, 2));
    }
    let one = match c {
        '(' => Symbol::LeftParen,
        ')' => Symbol::RightParen,
        ',' => Symbol::Comma,
        '+' => Symbol::Plus,
        '-' => Symbol::Minus,
        '*' => Symbol::Star,
        '/' => Symbol::Slash,
        '%' => Symbol::Percent,
        '=' => Symbol::Equal,
        '<' => Symbol::Less,
        '>' => Symbol::Greater,
        _ => return None,
    };
    Some((one, 1))
}

/// Reads the string literal whose opening `quote` is at `start`; returns its text and the index
/// after the closing quote. A backslash before the quote character escapes it; a backslash
/// before anything else is kept, together with that character, as written (so `LIKE`
/// patterns can escape `%` and `_`).
fn string_literal(chars: &[char], start: usize, quote: char) -> Result<(String, usize), ParseError> {
    let mut text = String::new();
    let mut i = start + 1;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => match chars.get(i + 1) {
                Some(&next) if next == quote => {
                    text.push(quote);
                    i += 2;
                }
                Some(&next) => {
                    text.push('\\');
                    text.push(next);
                    i += 2;
                }
                None => break,
            },
            c if c == quote => return Ok((text, i + 1)),
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    Err(ParseError::new(start + 1, "unterminated string literal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<TokenKind> {
        tokenize(input).expect("tokenizes").into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(
            kinds("aNd Or xOr"),
            vec![
                TokenKind::Keyword(Keyword::And),
                TokenKind::Keyword(Keyword::Or),
                TokenKind::Keyword(Keyword::Xor)
            ]
        );
    }

    #[test]
    fn string_escapes() {
        assert_eq!(kinds(r#"'a"b\'c'"#), vec![TokenKind::String("a\"b'c".into())]);
        assert_eq!(kinds(r#""a'b\"c""#), vec![TokenKind::String("a'b\"c".into())]);
        assert_eq!(kinds(r"'a\_b\\'"), vec![TokenKind::String(r"a\_b\\".into())]);
    }

    #[test]
    fn symbols_and_positions() {
        let tokens = tokenize("a<>1 !=\t>=").expect("tokenizes");
        let positions: Vec<usize> = tokens.iter().map(|t| t.position).collect();
        assert_eq!(positions, vec![1, 2, 4, 6, 9]);
        assert_eq!(tokens[1].kind, TokenKind::Symbol(Symbol::LessGreater));
    }

    #[test]
    fn errors_carry_positions() {
        assert_eq!(tokenize("a = 'x").unwrap_err().position, 5);
        assert_eq!(tokenize("é = ").unwrap_err().position, 1);
        assert_eq!(tokenize("a ! b").unwrap_err().position, 3);
    }
}
