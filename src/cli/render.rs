use anyhow::Result;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

use notif_infra::ops;
use notif_infra::ui::{self, Format};

#[derive(Args)]
pub struct RenderArgs {
    #[arg(default_value = super::DEFAULT_TOPOLOGY)]
    file: PathBuf,
    /// Output directory (default out/<topology name>)
    #[arg(long)]
    out: Option<PathBuf>,
    /// Show what would change in the output directory (diffs, secrets masked) and write
    /// nothing; exit 0 when nothing would, 2 when something would
    #[arg(long)]
    dry_run: bool,
    #[arg(short = 'o', long, value_enum, default_value = "human")]
    pub(super) output: Format,
}

pub fn run(a: RenderArgs) -> Result<ExitCode> {
    let rendered = ops::render(&a.file, a.out.as_deref(), a.dry_run)?;
    let out = &rendered.out;
    if a.dry_run {
        match a.output {
            Format::Human => {
                ui::warnings(&rendered.loaded);
                if rendered.changes.is_empty() {
                    println!("`{}` is up to date: render would change nothing.", out.display());
                } else {
                    print!("{}", notif_infra::plan::files_section(&rendered.changes, true));
                }
            }
            Format::Json => ui::json(&json!({ "out": out, "changes": rendered.changes })),
        }
        return Ok(if rendered.changes.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        });
    }
    match a.output {
        Format::Human => {
            ui::warnings(&rendered.loaded);
            for f in &rendered.files {
                let note = if f.secret { "  (holds a secret: 0600)" } else { "" };
                println!("{}{note}", out.join(&f.path).display());
            }
            eprintln!("rendered {} file(s) into `{}`", rendered.files.len(), out.display());
        }
        Format::Json => {
            let files: Vec<_> = rendered
                .files
                .iter()
                .map(|f| json!({ "path": out.join(&f.path), "secret": f.secret }))
                .collect();
            ui::json(&json!({ "out": out, "files": files, "warnings": rendered.loaded.warnings }));
        }
    }
    Ok(ExitCode::SUCCESS)
}
