//! The only reader of topology files: YAML -> schema (with positions) -> validated model.

mod diagnostic;
pub mod edit;
mod schema;
mod validate;

pub use diagnostic::{Diagnostic, Severity, did_you_mean};
pub use validate::check_env;

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
        Err(e) => return Err(TopologyError::invalid(&source, vec![parse_diagnostic(&e)])),
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

/// Turns a YAML or schema error into a diagnostic, with a suggestion for misspelt keys.
fn parse_diagnostic(e: &serde_saphyr::Error) -> Diagnostic {
    use serde_saphyr::MessageFormatter;
    let message = serde_saphyr::DefaultMessageFormatter
        .format_message(e.without_snippet())
        .escape_debug()
        .to_string();
    let mut d = Diagnostic::error(message.clone());
    if let Some(l) = e.location() {
        d = d.at(Loc {
            line: l.line() as u32,
            col: l.column() as u32,
        });
    }
    if let Some(help) = unknown_field_help(&message) {
        d = d.help(help);
    }
    d
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
