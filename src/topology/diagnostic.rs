//! Problems found in a topology file, each with where it is: a file position, an object, or both.

use serde::Serialize;
use std::fmt::Write as _;

use crate::model::Loc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// Position in the topology file, when the problem has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loc: Option<Loc>,
    /// The region, node, leafnode, account or user the problem concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            loc: None,
            object: None,
            help: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn at(mut self, loc: Loc) -> Self {
        if loc.line > 0 {
            self.loc = Some(loc);
        }
        self
    }

    pub fn object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Renders the diagnostic the way compilers do: `error: ...`, `--> file:line:col`, the source
    /// line with a caret under the column, then the help.
    pub fn render(&self, file: &str, source: &str) -> String {
        let mut out = String::new();
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{kind}: {}", self.message);
        match (self.loc, &self.object) {
            (Some(loc), object) => {
                let suffix = object.as_ref().map(|o| format!(" ({o})")).unwrap_or_default();
                let _ = writeln!(out, "  --> {file}:{}:{}{suffix}", loc.line, loc.col);
                if let Some(line) = source.lines().nth(loc.line as usize - 1) {
                    let number = loc.line.to_string();
                    let pad = " ".repeat(number.len());
                    let (text, col) = window(line, loc.col as usize);
                    let caret_pad: String = text
                        .chars()
                        .take(col.saturating_sub(1))
                        .map(|c| if c == '\t' { '\t' } else { ' ' })
                        .collect();
                    let _ = writeln!(out, " {pad} |");
                    let _ = writeln!(out, " {number} | {text}");
                    let _ = writeln!(out, " {pad} | {caret_pad}^");
                }
            }
            (None, Some(object)) => {
                let _ = writeln!(out, "  --> {file} ({object})");
            }
            (None, None) => {
                let _ = writeln!(out, "  --> {file}");
            }
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        out
    }
}

/// At most `WINDOW` characters of a long source line around column `col` (1-based), with `…`
/// where it was cut, and the column within what is shown.
fn window(line: &str, col: usize) -> (String, usize) {
    const WINDOW: usize = 120;
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= WINDOW {
        return (line.to_string(), col);
    }
    let start = col.saturating_sub(WINDOW / 2).min(chars.len().saturating_sub(WINDOW));
    let end = (start + WINDOW).min(chars.len());
    let mut shown: String = chars[start..end].iter().collect();
    let mut col = col - start;
    if start > 0 {
        shown = format!("…{shown}");
        col += 1;
    }
    if end < chars.len() {
        shown.push('…');
    }
    (shown, col)
}

/// The closest candidate to `word`, when one is close enough to be a plausible typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("jetstrem", ["nodes", "jetstream"]), Some("jetstream"));
        assert_eq!(did_you_mean("wst", ["east", "west"]), Some("west"));
        assert_eq!(did_you_mean("zzz", ["east", "west"]), None);
    }

    #[test]
    fn renders_location_with_caret() {
        let d = Diagnostic::error("unknown field `jetstrem`")
            .at(Loc { line: 2, col: 3 })
            .help("did you mean `jetstream`?");
        let text = d.render("t.yaml", "a:\n  jetstrem: true\n");
        assert!(text.contains("--> t.yaml:2:3"), "{text}");
        assert!(text.contains(" 2 |   jetstrem: true\n   |   ^"), "{text}");
        assert!(text.contains("help: did you mean `jetstream`?"), "{text}");
    }
}
