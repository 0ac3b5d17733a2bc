//! `LIKE` patterns (spec §3.4.3): `%` matches any run of characters, `_` exactly one, `\%` and
//! `\_` match the wildcard characters literally; every other character matches itself,
//! case-sensitively (a backslash before any other character is an ordinary backslash).

use std::fmt;

/// One element of a compiled pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Element {
    /// `%`: zero or more characters.
    AnyRun,
    /// `_`: exactly one character.
    AnyChar,
    /// A character matched literally.
    Literal(char),
}

/// A `LIKE` pattern, compiled once when the expression is parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LikePattern {
    source: String,
    elements: Vec<Element>,
}

impl LikePattern {
    /// Compiles a pattern (the contents of the string literal after `LIKE`).
    pub fn new(source: &str) -> Self {
        let mut elements = Vec::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            let element = match c {
                '\\' => match chars.next_if(|next| matches!(next, '%' | '_')) {
                    Some(wildcard) => Element::Literal(wildcard),
                    None => Element::Literal('\\'),
                },
                '%' => Element::AnyRun,
                '_' => Element::AnyChar,
                other => Element::Literal(other),
            };
            elements.push(element);
        }
        Self {
            source: source.to_string(),
            elements,
        }
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether `text` matches the whole pattern.
    ///
    /// Greedy matching that remembers the last `%` and retries from there, so the cost is at
    /// most proportional to the product of the two lengths.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let (mut t, mut p) = (0, 0);
        let mut retry: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.elements.get(p) {
                Some(Element::AnyRun) => {
                    retry = Some((p, t));
                    p += 1;
                }
                Some(Element::AnyChar) => {
                    t += 1;
                    p += 1;
                }
                Some(Element::Literal(c)) if *c == text[t] => {
                    t += 1;
                    p += 1;
                }
                _ => match retry {
                    Some((run, consumed)) => {
                        retry = Some((run, consumed + 1));
                        p = run + 1;
                        t = consumed + 1;
                    }
                    None => return false,
                },
            }
        }
        self.elements[p..].iter().all(|e| *e == Element::AnyRun)
    }
}

impl fmt::Display for LikePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::LikePattern;

    fn like(text: &str, pattern: &str) -> bool {
        LikePattern::new(pattern).matches(text)
    }

    #[test]
    fn wildcards() {
        assert!(like("abc", "a%"));
        assert!(like("a", "a%"));
        assert!(like("", "%"));
        assert!(!like("", "_"));
        assert!(like("abc", "_b_"));
        assert!(like("aXbYbc", "a%bc"));
        assert!(like("mississippi", "%iss%ppi"));
        assert!(!like("abcd", "a%c"));
        assert!(like("ünï", "_n_"), "wildcards count characters, not bytes");
    }

    #[test]
    fn escapes() {
        assert!(like("100%", "100\\%"));
        assert!(!like("1000", "100\\%"));
        assert!(like("a_b", "a\\_b"));
        assert!(!like("axb", "a\\_b"));
        assert!(like("a\\b", "a\\b"), "a backslash before a normal character is literal");
        assert!(like("a\\", "a\\"), "a trailing backslash is literal");
    }

    #[test]
    fn case_sensitive() {
        assert!(!like("ABC", "abc"));
    }
}
