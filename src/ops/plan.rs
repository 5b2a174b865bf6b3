//! `plan`: what apply would change, and the saved plan (`plan -out FILE`) that `apply FILE`
//! carries out exactly, or refuses when what it saw has changed (Terraform's stale-plan rule).

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::material::KeyMode;
use super::prepare::{Prepared, prepare};
use super::{Options, PlanOutcome};
use crate::targets::{HostLog, TargetKind};

/// The format version of plan files this build reads and writes.
const PLAN_FILE_VERSION: u32 = 1;

/// A rendered file as a saved plan holds it: its digest, and its content unless it holds a
/// secret (then only where it is: the path in the deployment's key store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SavedFile {
    sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content: Option<String>,
}

/// A server as the plan saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SavedServer {
    running: bool,
    digest: Option<String>,
}

/// Everything a saved plan was made from and says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanFile {
    notif_infra_plan: u32,
    pub topology: PathBuf,
    pub target: TargetKind,
    pub state_root: PathBuf,
    pub port_base: u16,
    pub prune: bool,
    /// The image the compose and k8s targets run instead of the topology's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The k8s target's kubectl context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_context: Option<String>,
    topology_sha256: String,
    /// Every file the target deploys, as rendered when the plan was made, by plan path.
    files: BTreeMap<PathBuf, SavedFile>,
    servers: BTreeMap<String, SavedServer>,
    /// The plan itself, as `plan -o json` shows it.
    plan: serde_json::Value,
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl PlanFile {
    fn of(opts: &Options, p: &Prepared) -> Result<Self> {
        let source = std::fs::read(&opts.topology).with_context(|| format!("cannot read `{}`", opts.topology.display()))?;
        Ok(PlanFile {
            notif_infra_plan: PLAN_FILE_VERSION,
            topology: std::path::absolute(&opts.topology)?,
            target: opts.target,
            state_root: std::path::absolute(&opts.state_root)?,
            port_base: p.state.port_base,
            prune: opts.prune,
            image: opts.image.clone(),
            kube_context: opts.kube_context.clone(),
            topology_sha256: sha256(&source),
            files: p
                .files
                .iter()
                .map(|f| {
                    let saved = SavedFile {
                        sha256: sha256(f.content.as_bytes()),
                        content: (!f.secret).then(|| f.content.clone()),
                    };
                    (f.path.clone(), saved)
                })
                .collect(),
            servers: p
                .observed
                .iter()
                .map(|(name, o)| {
                    let saved = SavedServer {
                        running: o.running,
                        digest: o.digest.clone(),
                    };
                    (name.clone(), saved)
                })
                .collect(),
            plan: serde_json::to_value(&p.plan)?,
        })
    }

    /// What differs between the plan as saved and as it would be made now.
    fn differences(&self, now: &PlanFile) -> Vec<String> {
        let mut found = Vec::new();
        if self.topology_sha256 != now.topology_sha256 {
            found.push(format!("the topology file `{}` changed", self.topology.display()));
        }
        let paths: BTreeSet<&PathBuf> = self.files.keys().chain(now.files.keys()).collect();
        for path in paths {
            match (self.files.get(path), now.files.get(path)) {
                (Some(a), Some(b)) if a.sha256 != b.sha256 => found.push(format!("file {} renders differently", path.display())),
                (Some(_), None) => found.push(format!("file {} is no longer rendered", path.display())),
                (None, Some(_)) => found.push(format!("file {} is rendered now", path.display())),
                _ => {}
            }
        }
        let shown = |s: Option<&SavedServer>| match s {
            Some(SavedServer { running: true, digest }) => format!("running {}", digest.as_deref().unwrap_or("(digest unknown)")),
            Some(_) => "not running".to_string(),
            None => "unknown".to_string(),
        };
        let servers: BTreeSet<&String> = self.servers.keys().chain(now.servers.keys()).collect();
        for name in servers {
            let (was, is) = (self.servers.get(name), now.servers.get(name));
            if was != is {
                found.push(format!("server {name} was {} and is {} now", shown(was), shown(is)));
            }
        }
        // What the plan would do differs for reasons not seen above: files on the target or
        // objects on the servers changed.
        let explained = !found.is_empty();
        for section in ["keys", "files", "servers", "cluster", "jetstream"]
            .into_iter()
            .filter(|_| !explained)
        {
            if self.plan.get(section) != now.plan.get(section) {
                let what = match section {
                    "keys" => "the keys to generate differ (the key store changed)",
                    "files" => "the file changes differ (files on the target changed)",
                    "servers" => "the server changes differ",
                    "cluster" => "the cluster steps differ",
                    _ => "the JetStream changes differ (objects changed on the servers)",
                };
                found.push(what.to_string());
            }
        }
        found
    }
}

/// Makes the plan (writing nothing); with `out`, saves it there (0600) for `apply`.
pub async fn plan(opts: &Options, out: Option<&Path>, host: HostLog<'_>) -> Result<PlanOutcome> {
    let mut p = prepare(opts, super::load_for_servers(&opts.topology)?, KeyMode::Inspect, host).await?;
    p.target.close().await;
    if let Some(out) = out {
        let saved = PlanFile::of(opts, &p)?;
        crate::fsio::write_private(out, serde_json::to_string_pretty(&saved)?.as_bytes())?;
    }
    Ok(PlanOutcome {
        loaded: p.loaded,
        plan: p.plan,
    })
}

/// The saved plan in `path`, when it is one (a topology file is not).
pub fn read_plan_file(path: &Path) -> Result<Option<PlanFile>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Ok(None);
    };
    let Some(version) = value.get("notif_infra_plan") else {
        return Ok(None);
    };
    if version.as_u64() != Some(PLAN_FILE_VERSION.into()) {
        bail!(
            "`{}` is a plan file of format {version}, and this notif-infra reads format {PLAN_FILE_VERSION}: make the plan again",
            path.display()
        );
    }
    let saved = serde_json::from_value(value).with_context(|| format!("`{}` is a damaged plan file", path.display()))?;
    Ok(Some(saved))
}

/// Fails, naming what changed, unless the plan made now is the saved one.
pub(super) async fn check_saved(opts: &Options, saved: &PlanFile, path: &Path, host: HostLog<'_>) -> Result<()> {
    let mut now = prepare(opts, super::load_for_servers(&opts.topology)?, KeyMode::Inspect, host).await?;
    now.target.close().await;
    let differences = saved.differences(&PlanFile::of(opts, &now)?);
    if !differences.is_empty() {
        bail!(
            "the saved plan `{}` is stale, so nothing was changed:\n  - {}\nhelp: run `notif-infra plan {} --target {} --out {}` again and review it",
            path.display(),
            differences.join("\n  - "),
            saved.topology.display(),
            saved.target.name(),
            path.display()
        );
    }
    Ok(())
}
