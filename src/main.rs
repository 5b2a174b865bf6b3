//! The notif-infra binary: parse, run, map the outcome to an exit code
//! (0 ok, 1 error, 2 plan or render has changes, 64 usage error, 130 interrupted).

mod cli;

use clap::Parser;
use std::process::ExitCode;

use notif_infra::apply::interrupt::{self, Interrupted};
use notif_infra::topology::TopologyError;

/// A command line notif-infra cannot read (sysexits' EX_USAGE): apart from 2, which `plan` and
/// `render --dry-run` give for "changes".
const USAGE_ERROR: u8 = 64;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are answers, not errors.
            return if e.use_stderr() {
                ExitCode::from(USAGE_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let json = cli.json_output();
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if json {
                print_json_error(&e);
            }
            if let Some(i) = e.downcast_ref::<Interrupted>() {
                eprintln!("{i}");
                return ExitCode::from(interrupt::EXIT_CODE);
            }
            match e.downcast_ref::<TopologyError>() {
                // Already a full report, one diagnostic per problem.
                Some(t @ TopologyError::Invalid { .. }) => eprintln!("{t}"),
                _ => eprintln!("error: {}", notif_infra::material::redact(&format!("{e:#}"))),
            }
            ExitCode::FAILURE
        }
    }
}

/// What `-o json` prints on stdout when the command fails, for the program that asked for JSON
/// (the human message still goes to stderr). `format_version` changes when a field's meaning does.
fn print_json_error(e: &anyhow::Error) {
    let (kind, diagnostics) = match e.downcast_ref::<TopologyError>() {
        Some(TopologyError::Invalid { diagnostics, .. }) => ("invalid_topology", serde_json::to_value(diagnostics).unwrap_or_default()),
        Some(TopologyError::Read { .. }) => ("unreadable_topology", serde_json::json!([])),
        None if e.downcast_ref::<Interrupted>().is_some() => ("interrupted", serde_json::json!([])),
        None => ("failed", serde_json::json!([])),
    };
    let report = serde_json::json!({
        "format_version": 1,
        "ok": false,
        "error": { "kind": kind, "message": notif_infra::material::redact(&format!("{e:#}")) },
        "diagnostics": diagnostics,
    });
    println!("{}", serde_json::to_string_pretty(&report).expect("JSON serializes"));
}
