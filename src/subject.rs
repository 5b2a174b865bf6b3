//! NATS subjects: syntax and wildcard matching, as nats-server defines them.

use std::collections::HashMap;

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

/// Subject patterns indexed token by token, so that the patterns overlapping a given one are
/// found by walking the shared prefixes instead of comparing every pair (thousands of streams
/// under one first token would otherwise cost millions of comparisons).
pub struct SubjectIndex<T> {
    root: IndexNode<T>,
}

struct IndexNode<T> {
    children: HashMap<String, IndexNode<T>>,
    /// Values of the patterns that end at this node.
    ending: Vec<T>,
}

impl<T> IndexNode<T> {
    fn new() -> Self {
        IndexNode {
            children: HashMap::new(),
            ending: Vec::new(),
        }
    }
}

impl<T: Copy> Default for SubjectIndex<T> {
    fn default() -> Self {
        SubjectIndex { root: IndexNode::new() }
    }
}

impl<T: Copy> SubjectIndex<T> {
    /// Adds a valid pattern (see [`check`]) with its value.
    pub fn insert(&mut self, pattern: &str, value: T) {
        let node = pattern.split('.').fold(&mut self.root, |node, token| {
            node.children.entry(token.to_string()).or_insert_with(IndexNode::new)
        });
        node.ending.push(value);
    }

    /// The values of every indexed pattern that [`overlaps`] `pattern`, each once per insertion.
    pub fn overlapping(&self, pattern: &str) -> Vec<T> {
        let tokens: Vec<&str> = pattern.split('.').collect();
        let mut found = Vec::new();
        Self::walk(&self.root, &tokens, &mut found);
        found
    }

    fn walk(node: &IndexNode<T>, tokens: &[&str], found: &mut Vec<T>) {
        let Some((&token, rest)) = tokens.split_first() else {
            found.extend(&node.ending);
            return;
        };
        if token == ">" {
            // One or more tokens: everything below this node.
            for child in node.children.values() {
                Self::subtree(child, found);
            }
            return;
        }
        // An indexed `>` here takes this token and whatever follows.
        if let Some(tail) = node.children.get(">") {
            found.extend(&tail.ending);
        }
        if token == "*" {
            for (key, child) in &node.children {
                if key != ">" {
                    Self::walk(child, rest, found);
                }
            }
        } else {
            for key in [token, "*"] {
                if let Some(child) = node.children.get(key) {
                    Self::walk(child, rest, found);
                }
            }
        }
    }

    fn subtree(node: &IndexNode<T>, found: &mut Vec<T>) {
        found.extend(&node.ending);
        for child in node.children.values() {
            Self::subtree(child, found);
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

/// The tokens of `subject` that `from`'s wildcards take, in order (`>` takes the rest as one).
fn wildcard_tokens(from: &str, subject: &str) -> Vec<String> {
    let mut taken: Vec<String> = Vec::new();
    let mut tokens = subject.split('.');
    for p in from.split('.') {
        match p {
            "*" => taken.extend(tokens.next().map(String::from)),
            ">" => taken.push(tokens.by_ref().collect::<Vec<_>>().join(".")),
            _ => {
                tokens.next();
            }
        }
    }
    taken
}

/// `subject` (matched by `from`) as seen through a mapping to `to`: the tokens `from`'s wildcards
/// took fill `to`'s wildcards in order, as nats-server maps imported subjects. A `to` without
/// wildcards is the subject itself.
pub fn map(from: &str, to: &str, subject: &str) -> String {
    let taken = wildcard_tokens(from, subject);
    let mut taken = taken.into_iter();
    to.split('.')
        .map(|t| match t {
            "*" | ">" => taken.next().unwrap_or_else(|| t.to_string()),
            _ => t.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The wildcard number a mapping destination token takes (`{{wildcard(2)}}` or `$2`), if any.
pub fn mapping_wildcard(token: &str) -> Option<usize> {
    let inner = token
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .map(str::trim)
        .and_then(|t| t.strip_prefix("wildcard("))
        .and_then(|t| t.strip_suffix(')'))
        .or_else(|| token.strip_prefix('$'))?;
    inner.trim().parse().ok()
}

/// `subject` (matched by the mapping source `from`) as a subject mapping sends it on: `to`'s
/// `{{wildcard(n)}}` tokens take the n-th wildcard token of `subject`.
pub fn apply_mapping(from: &str, to: &str, subject: &str) -> String {
    let taken = wildcard_tokens(from, subject);
    to.split('.')
        .map(|t| match mapping_wildcard(t) {
            Some(n) => taken.get(n.wrapping_sub(1)).cloned().unwrap_or_else(|| t.to_string()),
            None => t.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
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
    fn index_finds_exactly_the_overlapping_patterns() {
        let patterns = [
            "a", "a.b", "a.c", "a.*", "a.>", "*", "*.b", "*.*.c", ">", "a.b.c", "a.*.c", "b.>", "a.b.>", "*.>", "x.y.z",
        ];
        let mut index = SubjectIndex::default();
        for (i, p) in patterns.iter().enumerate() {
            index.insert(p, i);
        }
        for query in patterns.iter().chain(&["a.b.c.d", "q", "*.*", "a.*.*.>"]) {
            let mut found = index.overlapping(query);
            found.sort();
            let expected: Vec<usize> = (0..patterns.len()).filter(|&i| overlaps(patterns[i], query)).collect();
            assert_eq!(found, expected, "overlapping {query}");
        }
    }

    #[test]
    fn map_moves_wildcard_tokens() {
        assert_eq!(map("orders.>", "partner.orders.>", "orders.created.1"), "partner.orders.created.1");
        assert_eq!(map("a.*.c", "x.*", "a.b.c"), "x.b");
        assert_eq!(map("orders.created", "orders.created", "orders.created"), "orders.created");
    }

    #[test]
    fn mappings_take_the_numbered_wildcards() {
        assert_eq!(mapping_wildcard("{{wildcard(2)}}"), Some(2));
        assert_eq!(mapping_wildcard("$1"), Some(1));
        assert_eq!(mapping_wildcard("orders"), None);
        assert_eq!(
            apply_mapping("orders.*.*", "eu.{{wildcard(2)}}.{{wildcard(1)}}", "orders.a.b"),
            "eu.b.a"
        );
        assert_eq!(apply_mapping("legacy.orders", "orders.created", "legacy.orders"), "orders.created");
    }

    #[test]
    fn instance_matches_its_pattern() {
        for p in ["secret.>", "a.*.c", ">"] {
            assert!(matches(p, &instance(p, "probe")), "{p}");
        }
    }
}
