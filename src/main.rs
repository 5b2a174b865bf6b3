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
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
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
