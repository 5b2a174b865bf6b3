use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use notif_infra::topology::edit;

use super::add::{read, unwrap, write_keeping_mode};

#[derive(Args)]
pub struct HostsArgs {
    #[command(subcommand)]
    what: HostsWhat,
}

#[derive(Subcommand)]
enum HostsWhat {
    /// Fill the hosts' public addresses into the topology from `terraform output -json`
    Import {
        file: PathBuf,
        /// The JSON `terraform output -json` prints for the module in terraform/
        terraform_output: PathBuf,
    },
}

pub fn run(a: HostsArgs) -> Result<ExitCode> {
    let HostsWhat::Import { file, terraform_output } = a.what;
    let text = std::fs::read_to_string(&terraform_output).with_context(|| format!("cannot read `{}`", terraform_output.display()))?;
    let output: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("`{}` is not JSON", terraform_output.display()))?;
    // `terraform output -json` wraps each output as { "value": ... }; `-json hosts` does not.
    let hosts = output.get("hosts").map(|h| h.get("value").unwrap_or(h)).unwrap_or(&output);
    let Some(hosts) = hosts.as_object() else {
        bail!(
            "`{}` has no `hosts` output: give it `terraform output -json` of the module in terraform/",
            terraform_output.display()
        );
    };
    let mut addresses = BTreeMap::new();
    for (name, host) in hosts {
        let Some(ip) = host["public_ipv4"].as_str() else {
            bail!("host `{name}` in `{}` has no public_ipv4", terraform_output.display());
        };
        addresses.insert(name.clone(), ip.to_string());
    }
    let source = read(&file)?;
    let (text, loaded, changed) = edit::set_addresses(&source, &addresses).map_err(unwrap)?;
    write_keeping_mode(&file, &text)?;
    notif_infra::ui::warnings(&loaded);
    println!(
        "gave {} host(s) their address in `{}`: {}",
        changed.len(),
        file.display(),
        changed.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
