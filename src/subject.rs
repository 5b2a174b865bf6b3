//! NATS subjects: syntax and wildcard matching, as nats-server defines them.

/// Checks a subject or subject pattern: dot-separated non-empty tokens without white space,
/// where `*` and `>` are whole tokens and `>` comes last.
pub fn check(subject: &str) -> Result<(), String> {
    if subject.is_empty() {
        return Err("a subject cannot be empty".into());
    }
    if subject.chars().any(char::is_whitespace) {
        return Err("a subject cannot contain white space".into());
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return Err("a subject cannot have an empty token (`..` or a leading or trailing `.`)".into());
        }
        if token.len() > 1 && (token.contains('*') || token.contains('>')) {
            return Err(format!("wildcard inside token `{token}`: `*` and `>` must be whole tokens"));
        }
        if *token == ">" && i + 1 != tokens.len() {
            return Err("`>` must be the last token".into());
        }
    }
    Ok(())
}

/// Whether the literal `subject` matches `pattern` (which may hold `*` and `>`).
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for p in pattern.split('.') {
        match (p, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (p, Some(s)) if p == s => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

/// Whether some literal subject matches both patterns.
pub fn overlaps(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        match (a.next(), b.next()) {
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(x), Some(y)) if x == y || x == "*" || y == "*" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether every literal subject that `inner` matches is matched by `outer` too.
pub fn is_subset(inner: &str, outer: &str) -> bool {
    let (mut i, mut o) = (inner.split('.'), outer.split('.'));
    loop {
        match (i.next(), o.next()) {
            (Some(_), Some(">")) => return true,
            (Some(">"), _) => return false,
            (Some(x), Some(y)) if x == y || y == "*" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A literal subject that `pattern` matches: every wildcard replaced by `token`.
pub fn instance(pattern: &str, token: &str) -> String {
    pattern
        .split('.')
        .map(|t| if t == "*" || t == ">" { token } else { t })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_syntax() {
        for ok in ["a", "a.b", "a.*", "a.>", ">", "*.b.*", "_INBOX.>", "rsfga.changes.>"] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a..b", ".a", "a.", "a.>.b", "a b", "a.b*", "a.>x"] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_wildcards() {
        assert!(matches("a.>", "a.b.c"));
        assert!(!matches("a.>", "a"));
        assert!(matches("a.*", "a.b"));
        assert!(!matches("a.*", "a.b.c"));
        assert!(matches(">", "x"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(matches("a.b", "a.b"));
    }

    #[test]
    fn overlap_and_subset_follow_wildcards() {
        assert!(overlaps("events.>", "events.a.b"));
        assert!(overlaps("events.*", "*.a"));
        assert!(overlaps(">", "x"));
        assert!(!overlaps("events.*", "events.a.b"));
        assert!(!overlaps("a.b", "a.c"));
        assert!(!overlaps("a", "a.b"));
        assert!(is_subset("events.a", "events.>"));
        assert!(is_subset("events.*.x", "events.*.*"));
        assert!(!is_subset("events.>", "events.*"));
        assert!(!is_subset("events.*", "events.a"));
        assert!(is_subset("events.>", "events.>"));
        assert!(!is_subset("orders.a", "events.>"));
    }

    #[test]
    fn instance_matches_its_pattern() {
        for p in ["secret.>", "a.*.c", ">"] {
            assert!(matches(p, &instance(p, "probe")), "{p}");
        }
    }
}
