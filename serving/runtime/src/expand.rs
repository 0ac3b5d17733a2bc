//! `$(VAR)` references in a container's `command` and `args`, expanded as Kubernetes expands
//! them: `$(NAME)` becomes the value of `NAME` in the container's environment, `$$` is a
//! literal `$`, and a reference to a name that is not defined is left as written.

/// Expands the `$(VAR)` references of `text` from `lookup`.
pub fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            // `$$` escapes a `$`.
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match lookup(name) {
                        Some(value) => out.push_str(&value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str(&rest[at..]);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn expands_as_kubernetes_does() {
        let env = |name: &str| match name {
            "PORT" => Some("8123".to_string()),
            "TARGET" => Some("World".to_string()),
            _ => None,
        };
        for (input, want) in [
            ("--bind :$(PORT)", "--bind :8123"),
            ("$(TARGET)-$(PORT)", "World-8123"),
            ("$(MISSING)", "$(MISSING)"),
            ("$$(PORT)", "$(PORT)"),
            ("cost: $5", "cost: $5"),
            ("unclosed $(PORT", "unclosed $(PORT"),
            ("$", "$"),
            ("plain", "plain"),
        ] {
            assert_eq!(expand(input, env), want, "{input}");
        }
    }
}
