use anyhow::Result;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

use notif_infra::ops;
use notif_infra::ui::{self, Format};

#[derive(Args)]
pub struct RenderArgs {
    file: PathBuf,
    /// Output directory (default out/<topology name>)
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(short = 'o', long, value_enum, default_value = "human")]
    output: Format,
}

pub fn run(a: RenderArgs) -> Result<ExitCode> {
    let rendered = ops::render(&a.file, a.out.as_deref())?;
    let out = &rendered.out;
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
