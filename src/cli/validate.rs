use anyhow::Result;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

use notif_infra::topology::{self, TopologyError};
use notif_infra::ui::{self, Format};

#[derive(Args)]
pub struct ValidateArgs {
    #[arg(default_value = super::DEFAULT_TOPOLOGY)]
    file: PathBuf,
    /// Also require what a target on this machine needs (every referenced environment variable set)
    #[arg(long, value_enum)]
    target: Option<super::Target>,
    #[arg(short = 'o', long, value_enum, default_value = "human")]
    pub(super) output: Format,
}

pub fn run(a: ValidateArgs) -> Result<ExitCode> {
    let result = topology::load(&a.file).and_then(|loaded| {
        let missing = match a.target {
            Some(super::Target::Local | super::Target::Compose | super::Target::Ssh) => {
                topology::check_env(&loaded.topology, |v| std::env::var(v).ok())
            }
            Some(super::Target::K8s) | None => Vec::new(),
        };
        if missing.is_empty() {
            Ok(loaded)
        } else {
            Err(TopologyError::invalid(&loaded.source, [loaded.warnings.clone(), missing].concat()))
        }
    });
    match (result, a.output) {
        (Ok(loaded), Format::Human) => {
            ui::warnings(&loaded);
            let t = &loaded.topology;
            let js = &t.jetstream;
            println!(
                "`{}` is a valid topology `{}`: {} region(s), {} node(s), {} leafnode(s), {} account(s), \
                 {} stream(s), {} consumer(s), {} KV bucket(s), {} object store(s), {} warning(s)",
                loaded.source.path,
                t.name,
                t.regions.len(),
                t.node_count(),
                t.leafnodes.len(),
                t.accounts.len(),
                js.streams.len(),
                js.consumers.len(),
                js.kv.len(),
                js.object_stores.len(),
                loaded.warnings.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        (Ok(loaded), Format::Json) => {
            let t = &loaded.topology;
            ui::json(&json!({
                "ok": true,
                "file": loaded.source.path,
                "name": t.name,
                "regions": t.regions.len(),
                "nodes": t.node_count(),
                "leafnodes": t.leafnodes.len(),
                "accounts": t.accounts.len(),
                "streams": t.jetstream.streams.len(),
                "consumers": t.jetstream.consumers.len(),
                "kv": t.jetstream.kv.len(),
                "object_stores": t.jetstream.object_stores.len(),
                "diagnostics": loaded.warnings,
            }));
            Ok(ExitCode::SUCCESS)
        }
        (Err(TopologyError::Invalid { file, diagnostics }), Format::Json) => {
            ui::json(&json!({ "ok": false, "file": file.path, "diagnostics": diagnostics }));
            Ok(ExitCode::FAILURE)
        }
        (Err(e), _) => Err(e.into()),
    }
}
