use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

use notif_infra::ops;
use notif_infra::plan::render_human;
use notif_infra::ui::{self, Format, Spinner};

#[derive(Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    target: super::TargetArgs,
    /// First port of the local target's range (kept from the last apply when not given)
    #[arg(long, env = "NOTIF_INFRA_PORT_BASE")]
    port_base: Option<u16>,
    /// Seconds to wait for the topology to verify
    #[arg(long, default_value = "60")]
    timeout: f64,
    /// Delete JetStream objects on the servers that the topology does not name
    #[arg(long)]
    prune: bool,
    /// Replace JetStream objects the server cannot change in place (a stream's messages, a consumer's position are lost)
    #[arg(long)]
    allow_replace: bool,
    /// After a verified apply, append NATS_URL, NATS_MONITOR_URLS, NATS_CA and NATS_CREDS_<ACCOUNT>_<USER>
    /// to this file as NAME=value lines (e.g. "$GITHUB_ENV" for later CI steps)
    #[arg(long)]
    env_file: Option<std::path::PathBuf>,
    #[arg(short = 'o', long, value_enum, default_value = "human")]
    output: Format,
}

pub async fn run(a: ApplyArgs) -> Result<ExitCode> {
    // Refused before anything is changed, not after the apply it would follow.
    if a.env_file.is_some() && !matches!(a.target.target, super::Target::Local | super::Target::Compose) {
        anyhow::bail!("--env-file works with the local and compose targets only");
    }
    if let super::Target::K8s = a.target.target {
        let applied = ops::apply_k8s(&a.target.file, &a.target.state_dir)?;
        for f in &applied.files {
            eprintln!("wrote {}", applied.dir.join(f).display());
        }
        match applied.kubectl {
            Some(output) => print!("{output}"),
            None => println!(
                "kubectl or a current context is missing, so nothing was applied. Apply the manifests with:\n  {}",
                applied.command
            ),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let spinner = Spinner::new(a.output);
    let human = a.output == Format::Human;
    let events = ops::ApplyEvents {
        plan: &|loaded, plan| {
            if human {
                ui::warnings(loaded);
                spinner.line(render_human(plan, false));
            }
        },
        log: &|l| spinner.line(l),
        host: &|server, step| spinner.host(server, step),
        progress: &|p| spinner.progress(p),
    };
    let timeout = Duration::from_secs_f64(a.timeout);
    let result = match a.target.ssh() {
        Some(mut opts) => {
            opts.prune = a.prune;
            opts.allow_replace = a.allow_replace;
            ops::apply_ssh(&opts, timeout, events).await.map(|r| (r, None))
        }
        None => {
            let mut opts = a.target.local(a.port_base)?;
            opts.prune = a.prune;
            opts.allow_replace = a.allow_replace;
            ops::apply_local(&opts, timeout, events).await.map(|r| (r, Some(opts)))
        }
    };
    spinner.finish();
    let ((loaded, plan, report), local) = result?;
    if let (Some(file), true) = (&a.env_file, report.ok) {
        let opts = local.context("a local or compose apply gives its options")?;
        let vars = ops::client_environment(&opts)?;
        let lines: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut f| f.write_all(lines.as_bytes()))
            .with_context(|| format!("cannot append to `{}`", file.display()))?;
        eprintln!("wrote {} variable(s) to `{}`", vars.len(), file.display());
    }
    match a.output {
        Format::Human => print!("{}", ui::verify_table(&report)),
        Format::Json => ui::json(&json!({ "plan": plan, "verify": report, "warnings": loaded.warnings })),
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
