//! The `k8s` target's driver: kubectl, with server-side apply. On Kubernetes each region is a
//! StatefulSet, and its controller rolls the pods one at a time (readiness on `/healthz`), so
//! this driver works on manifests rather than on single servers: diff, apply, wait for the
//! rollout, delete. Without kubectl or a current context it says so, and the command line it
//! would run is printed instead.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// kubectl with a current context.
pub struct Kubectl {
    bin: PathBuf,
}

/// What the target could not reach, and the command the user can run instead.
pub fn command_line(args: &[&str], manifests: &Path) -> String {
    let mut words = vec!["kubectl".to_string()];
    words.extend(args.iter().map(|a| a.to_string()));
    words.push(manifests.display().to_string());
    words.join(" ")
}

pub const APPLY_ARGS: &[&str] = &["apply", "--server-side", "--field-manager=notif-infra", "--recursive", "-f"];
pub const DIFF_ARGS: &[&str] = &["diff", "--server-side", "--field-manager=notif-infra", "--recursive", "-f"];
pub const DELETE_ARGS: &[&str] = &["delete", "--ignore-not-found", "--wait=true", "--recursive", "-f"];

impl Kubectl {
    /// kubectl from `KUBECTL` or the PATH, when it has a current context.
    pub fn find() -> Option<Kubectl> {
        let bin = std::env::var_os("KUBECTL")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("kubectl"));
        let context = std::process::Command::new(&bin).args(["config", "current-context"]).output().ok()?;
        (context.status.success() && !context.stdout.trim_ascii().is_empty()).then_some(Kubectl { bin })
    }

    fn run(&self, args: &[&str], manifests: Option<&Path>) -> Result<Output> {
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.args(args);
        if let Some(m) = manifests {
            cmd.arg(m);
        }
        cmd.output().with_context(|| format!("cannot run `{}`", self.bin.display()))
    }

    fn run_ok(&self, args: &[&str], manifests: Option<&Path>) -> Result<String> {
        let out = self.run(args, manifests)?;
        if !out.status.success() {
            bail!(
                "`kubectl {}{}` failed:\n{}",
                args.join(" "),
                manifests.map(|m| format!(" {}", m.display())).unwrap_or_default(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// What the cluster would change (server-side dry run); `None` when nothing.
    pub fn diff(&self, manifests: &Path) -> Result<Option<String>> {
        let out = self.run(DIFF_ARGS, Some(manifests))?;
        // kubectl diff: 0 no differences, 1 differences, anything else an error.
        match out.status.code() {
            Some(0) => Ok(None),
            Some(1) => Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned())),
            _ => bail!(
                "`{}` failed:\n{}",
                command_line(DIFF_ARGS, manifests),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }
    }

    pub fn apply(&self, manifests: &Path) -> Result<String> {
        self.run_ok(APPLY_ARGS, Some(manifests))
    }

    /// Waits until the StatefulSet has rolled every pod to its new revision and each is ready.
    pub fn rollout_status(&self, namespace: &str, statefulset: &str, timeout: Duration) -> Result<String> {
        let timeout = format!("--timeout={}s", timeout.as_secs().max(1));
        let target = format!("statefulset/{statefulset}");
        self.run_ok(&["rollout", "status", "-n", namespace, &target, "--watch=true", &timeout], None)
    }

    pub fn delete(&self, manifests: &Path) -> Result<String> {
        self.run_ok(DELETE_ARGS, Some(manifests))
    }
}
