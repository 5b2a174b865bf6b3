use anyhow::Result;
use clap::Args;
use serde_json::json;
use std::process::ExitCode;

use notif_infra::ops;
use notif_infra::ui::{self, Format};

#[derive(Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    target: super::TargetArgs,
    /// Remove the identity too: the CA, the operator, account, user and WireGuard keys, and what
    /// they signed. Every credential handed out stops working; on a target other than local
    /// this asks for confirmation
    #[arg(long)]
    purge_keys: bool,
    /// With --purge-keys: do not ask (for scripts)
    #[arg(long)]
    auto_approve: bool,
    #[arg(short = 'o', long, value_enum, default_value = "human")]
    pub(super) output: Format,
}

pub async fn run(a: DestroyArgs) -> Result<ExitCode> {
    let opts = a.target.options(None);
    if a.purge_keys && opts.target.shared() && !a.auto_approve {
        confirm_purge(&opts)?;
    }
    let done = ops::destroy(&opts, a.purge_keys, &|l| eprintln!("{l}"), &|server, step| {
        eprintln!("{server}: {step}")
    })
    .await?;
    match a.output {
        Format::Human => {
            for s in &done.stopped {
                println!("stopped {s}");
            }
            if done.kept.is_empty() {
                println!("removed `{}` ({} server(s) stopped)", done.dir.display(), done.stopped.len());
            } else {
                println!(
                    "removed the runtime state in `{}` ({} server(s) stopped); kept the identity ({}): a later apply reuses it, `destroy --purge-keys` removes it",
                    done.dir.display(),
                    done.stopped.len(),
                    done.kept
                        .iter()
                        .filter_map(|k| k.file_name())
                        .map(|n| format!("{}/", n.to_string_lossy()))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        Format::Json => ui::json(&json!({ "stopped": done.stopped, "removed": done.dir, "kept": done.kept })),
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks, as Terraform does, before the identity of a deployment outside this machine goes.
fn confirm_purge(opts: &notif_infra::ops::Options) -> Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    let what = format!(
        "destroy {} on the {} target with --purge-keys",
        opts.topology.display(),
        opts.target.name()
    );
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "{what} removes the CA and every signing key, and needs confirmation: run it in a terminal, or add --auto-approve; nothing was destroyed"
        );
    }
    eprint!(
        "{what} removes the CA, the operator and account keys and every credential they signed: no client holding one can connect again.\n  Only 'yes' will be accepted: "
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        anyhow::bail!("not confirmed; nothing was destroyed");
    }
    Ok(())
}
