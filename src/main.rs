//! The notif-infra binary: parse, run, map the outcome to an exit code
//! (0 ok, 1 error, 2 plan has changes, 130 interrupted).

mod cli;

use clap::Parser;
use std::process::ExitCode;

use notif_infra::apply::interrupt::{self, Interrupted};
use notif_infra::topology::TopologyError;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
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
