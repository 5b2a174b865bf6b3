//! The only reader of topology files: YAML -> schema (with positions) -> validated model.

mod diagnostic;
pub mod edit;
mod schema;
mod shape;
mod validate;

pub use diagnostic::{Diagnostic, Severity, did_you_mean};
pub use validate::check_env;

/// The file name the topologies' yaml-language-server modeline gives their schema.
pub const SCHEMA_FILE: &str = "notif-infra.schema.json";

/// The JSON Schema of the topology file, pretty-printed: what `schema` prints and what the shipped
/// topologies' modeline names (`topologies/notif-infra.schema.json`).
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schema::json_schema()).expect("a schema is JSON");
    text.push('\n');
    text
}

use std::fmt;
use std::path::Path;

use crate::model::{Loc, Topology};

/// A topology file as read, kept to point into it when reporting.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: String,
    pub text: String,
}

/// A valid topology with its warnings.
#[derive(Debug)]
pub struct Loaded {
    pub topology: Topology,
    pub warnings: Vec<Diagnostic>,
    pub source: Source,
}

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot read topology file `{path}`: {error}")]
    Read { path: String, error: std::io::Error },
    /// Every problem found, errors and warnings, in file order.
    #[error("{}", render_all(file, diagnostics))]
    Invalid { file: Source, diagnostics: Vec<Diagnostic> },
}

impl TopologyError {
    pub fn invalid(source: &Source, diagnostics: Vec<Diagnostic>) -> Self {
        TopologyError::Invalid {
            file: source.clone(),
            diagnostics,
        }
    }
}

pub fn render_all(source: &Source, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out += &d.render(&source.path, &source.text);
        out.push('\n');
    }
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = diagnostics.len() - errors;
    out += &format!(
        "error: `{}` is not a valid topology: {errors} error(s), {warnings} warning(s)",
        source.path
    );
    out
}

pub fn load(path: &Path) -> Result<Loaded, TopologyError> {
    let text = std::fs::read_to_string(path).map_err(|error| TopologyError::Read {
        path: path.display().to_string(),
        error,
    })?;
    parse(Source {
        path: path.display().to_string(),
        text,
    })
}

pub fn parse(source: Source) -> Result<Loaded, TopologyError> {
    let file: schema::TopologyFile = match serde_saphyr::from_str(&source.text) {
        Ok(file) => file,
        Err(e) => {
            // The typed reading stops at the first problem; the schema walk finds them all.
            let first = parse_diagnostic(&e, &source.text);
            let mut all: Vec<Diagnostic> = shape::problems(&source.text).into_iter().filter(|d| d.loc != first.loc).collect();
            all.push(first);
            all.sort_by_key(|d| d.loc.map(|l| (l.line, l.col)).unwrap_or((u32::MAX, 0)));
            return Err(TopologyError::invalid(&source, all));
        }
    };
    let validated = validate::validate(file);
    let mut diagnostics = validated.diagnostics;
    diagnostics.sort_by_key(|d| d.loc.map(|l| (l.line, l.col)).unwrap_or((u32::MAX, 0)));
    match validated.topology {
        Some(topology) => Ok(Loaded {
            topology,
            warnings: diagnostics,
            source,
        }),
        None => Err(TopologyError::invalid(&source, diagnostics)),
    }
}

/// Turns a YAML or schema error into a diagnostic in the topology's words: a suggestion for
/// misspelt keys, what a number may be, which reading limit was hit, long values shortened.
fn parse_diagnostic(e: &serde_saphyr::Error, text: &str) -> Diagnostic {
    use serde_saphyr::MessageFormatter;
    let raw = serde_saphyr::DefaultMessageFormatter
        .format_message(e.without_snippet())
        .escape_debug()
        .to_string();
    let mut loc = e.location().map(|l| Loc {
        line: l.line() as u32,
        col: l.column() as u32,
    });
    let about_tab = raw
        .split(|c: char| !c.is_ascii_alphabetic())
        .any(|w| w.eq_ignore_ascii_case("tab") || w.eq_ignore_ascii_case("tabs"));
    if about_tab {
        // The parser reports a tab at the end of the line before it, or one column late.
        loc = loc.and_then(|l| tab_near(text, l)).or(loc);
    }
    let (message, help) = if let serde_saphyr::Error::Budget { breach, .. } = e.without_snippet() {
        budget_words(breach, text)
    } else if let Some(words) = loc.and_then(|l| number_words(&raw, text, l)) {
        words
    } else {
        (elide_long_words(&raw), unknown_field_help(&raw))
    };
    let help = help.or_else(|| about_tab.then(|| "YAML indents with spaces only: replace the tab with spaces".to_string()));
    // The parser's own advice names its API, not the file.
    let (message, help) = match raw.split_once(", set DuplicateKeyPolicy") {
        Some((duplicate, _)) => (
            elide_long_words(duplicate),
            Some("a key appears twice in one mapping: merge the two or remove one".to_string()),
        ),
        None => (message, help),
    };
    let mut d = Diagnostic::error(message);
    if let Some(l) = loc {
        d = d.at(l);
    }
    if let Some(help) = help {
        d = d.help(help);
    }
    d
}

/// The tab a parser error at `at` is about: on the line before, on that line, or on the next.
fn tab_near(text: &str, at: Loc) -> Option<Loc> {
    let first = at.line.saturating_sub(1).max(1);
    text.lines().enumerate().skip(first as usize - 1).take(3).find_map(|(i, line)| {
        line.find('\t').map(|byte| Loc {
            line: i as u32 + 1,
            col: line[..byte].chars().count() as u32 + 1,
        })
    })
}

/// A reading limit in words, with the file's size: the limits keep a hostile file from
/// exhausting memory, so they stay, but the user must see which one and why.
fn budget_words(breach: &serde_saphyr::budget::BudgetBreach, text: &str) -> (String, Option<String>) {
    use serde_saphyr::budget::BudgetBreach as B;
    let size = format!("{:.1} MB, {} lines", text.len() as f64 / 1e6, text.lines().count());
    let what = match breach {
        B::Events { events } => format!("more than {} YAML items (comments, keys and values) were read", events - 1),
        B::Depth { depth } => format!("the file nests more than {} levels deep", depth - 1),
        B::Nodes { nodes } => format!("the file holds more than {} values", nodes - 1),
        B::Aliases { aliases } => format!("the file uses more than {} aliases (`*name`)", aliases - 1),
        B::Anchors { anchors } => format!("the file defines more than {} anchors (`&name`)", anchors - 1),
        B::ScalarBytes { total_scalar_bytes } => format!("its values add up to more than {total_scalar_bytes} bytes"),
        other => format!("a reading limit was reached ({other:?})"),
    };
    (
        format!("the topology file is too large to read: {what} (the file is {size})"),
        Some("a topology is a few hundred lines; check that this is the right file (a generated file may have repeated itself)".into()),
    )
}

/// Numbers out of range, in the words of the field: `client` is a port from 1 to 65535.
fn number_words(raw: &str, text: &str, at: Loc) -> Option<(String, Option<String>)> {
    let kind = raw.strip_prefix("invalid ")?;
    let line = text.lines().nth(at.line as usize - 1)?;
    let start = line.char_indices().nth(at.col as usize - 1).map(|(i, _)| i)?;
    let value: String = line[start..]
        .chars()
        .take_while(|c| !matches!(c, ',' | '}' | ']' | ' ' | '#'))
        .collect();
    let key = line[..start]
        .trim_end()
        .trim_end_matches(':')
        .rsplit(['{', ',', ' ', '-'])
        .next()
        .unwrap_or("")
        .trim();
    let range = match kind {
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65535",
        "u32" => "a whole number from 0 to 4294967295",
        "u64" => "a whole number, 0 or more",
        "i64" => "a whole number (-1 for no limit where a limit is meant)",
        _ => return None,
    };
    let port = kind == "u16" && (key == "port" || key == "keepalive" || line[..start].contains("ports"));
    let message = if port && key != "keepalive" {
        format!("`{key}` is `{value}`: a port is a number from 1 to 65535")
    } else {
        format!("`{key}` is `{value}`: it must be {range}")
    };
    Some((message, None))
}

/// Shortens words (a quoted value) of more than 80 characters, so a 200,000-character line does
/// not fill the terminal.
fn elide_long_words(message: &str) -> String {
    message
        .split(' ')
        .map(|w| {
            let n = w.chars().count();
            if n > 80 {
                let comma = if w.ends_with(',') { "," } else { "" };
                format!("{}…({n} characters){comma}", w.chars().take(40).collect::<String>())
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// serde words unknown keys as "unknown field `x`, expected one of `a`, `b`" (or "expected `a`").
fn unknown_field_help(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .split_once("expected one of ")
        .or_else(|| rest.split_once("expected "))
        .map(|(_, list)| list)?;
    let candidates: Vec<&str> = expected
        .split(',')
        .map(|c| c.trim().trim_matches('`'))
        .filter(|c| !c.is_empty())
        .collect();
    Some(match did_you_mean(field, candidates.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("expected one of: {}", candidates.join(", ")),
    })
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.path)
    }
}
