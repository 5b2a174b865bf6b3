use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use notif_infra::graph::GraphFormat;
use notif_infra::ops;

#[derive(Args)]
pub struct GraphArgs {
    #[command(flatten)]
    target: super::TargetArgs,
    #[arg(long, value_enum, default_value = "mermaid")]
    format: Format,
    /// Colour the links by the last verification of the deployment on --target (green up, red down)
    #[arg(long)]
    live: bool,
    /// The SVG file to write (--format svg; default <topology name>.svg)
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Mermaid,
    Dot,
    /// Graphviz's `dot` renders the DOT picture (needs graphviz on PATH)
    Svg,
}

pub fn run(a: GraphArgs) -> Result<ExitCode> {
    let format = match a.format {
        Format::Mermaid => GraphFormat::Mermaid,
        Format::Dot | Format::Svg => GraphFormat::Dot,
    };
    let picture = ops::graph(&a.target.options(None), format, a.live)?;
    if !matches!(a.format, Format::Svg) {
        print!("{picture}");
        return Ok(ExitCode::SUCCESS);
    }
    let out = match a.out {
        Some(out) => out,
        None => PathBuf::from(format!("{}.svg", ops::load(&a.target.file)?.topology.name)),
    };
    let mut dot = Command::new("dot")
        .arg("-Tsvg")
        .arg("-o")
        .arg(&out)
        .stdin(Stdio::piped())
        .spawn()
        .context("cannot run graphviz `dot` (install graphviz, or use --format dot and render it elsewhere)")?;
    dot.stdin.take().expect("piped").write_all(picture.as_bytes())?;
    let status = dot.wait()?;
    if !status.success() {
        bail!("graphviz `dot` failed ({status}) to render the picture");
    }
    eprintln!("wrote `{}`", out.display());
    Ok(ExitCode::SUCCESS)
}
