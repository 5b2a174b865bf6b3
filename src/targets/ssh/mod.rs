//! The `ssh` target: each server on its own host, reached over SSH. Its files are written over
//! SFTP (a temporary file, then a rename, mode set at creation), WireGuard is brought up with
//! wg-quick, nats-server runs as a process with a pid file. Keys, certificates and
//! credentials are made on this machine under `<state-root>/<topology>.ssh/`, and each host
//! gets exactly the files its servers name (never the CA key or another server's key).

pub mod session;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use futures_util::FutureExt;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use self::session::{HostKeyPolicy, Session, SshError, quote};
use super::{DeploymentState, HostLog, StopMode, Target, TargetKind};
use crate::desired::{Addressing, Desired, RenderedFile};
use crate::material::{NOT_YET_GENERATED, auth, redact};
use crate::model::{SshHost, Topology};
use crate::observed::{Monitor, files};
use crate::plan::{FileAction, FileChange, ObservedServer};

const TEMPORARY_SUFFIX: &str = ".notif-infra-tmp";
/// Hosts worked on at once: a fleet of hundreds does not open hundreds of sessions together.
const PARALLEL_HOSTS: usize = 16;

/// Runs one future per host, at most [`PARALLEL_HOSTS`] at a time, in whatever order they end.
async fn per_host<F: std::future::Future>(work: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    use futures_util::StreamExt;
    futures_util::stream::iter(work).buffer_unordered(PARALLEL_HOSTS).collect().await
}

/// Where one server's files and process live on its host.
struct Layout<'a> {
    server: &'a str,
    host: &'a SshHost,
}

impl Layout<'_> {
    fn remote(&self, rel: &Path) -> String {
        format!("{}/{}", self.host.config_dir, rel.display())
    }
    fn conf(&self) -> String {
        self.remote(&PathBuf::from("nats").join(format!("{}.conf", self.server)))
    }
    fn pid(&self) -> String {
        format!("{}/{}.pid", self.host.data_dir, self.server)
    }
    fn log(&self) -> String {
        format!("{}/{}.log", self.host.log_dir, self.server)
    }
    /// Shell that sets `$pid` to the server's process: the pid file's when it names a live
    /// nats-server of this config, otherwise any process of the host's nats-server running
    /// this config (one started by an interrupted apply before its pid file was written).
    fn find_pid(&self) -> String {
        format!(
            r#"pid=$(cat {pid} 2>/dev/null); if ! {{ [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' '\n' < /proc/$pid/cmdline | grep -qxF -- {conf}; }}; then pid=; for d in /proc/[0-9]*; do a=$(tr '\0' '\n' < $d/cmdline 2>/dev/null) || continue; [ "$(printf '%s\n' "$a" | head -n 1)" = {bin} ] && printf '%s\n' "$a" | grep -qxF -- {conf} && {{ pid=${{d#/proc/}}; break; }}; done; fi"#,
            pid = quote(&self.pid()),
            conf = quote(&self.conf()),
            bin = quote(&self.host.nats_server),
        )
    }
    /// Prints `running` when the server's process is alive.
    fn running_check(&self) -> String {
        format!("{}; [ -n \"$pid\" ] && echo running; true", self.find_pid())
    }
}

pub struct SshTarget {
    dir: PathBuf,
    policy: HostKeyPolicy,
    /// Every server's host, and the hosts of servers apply placed before that left the topology.
    hosts: BTreeMap<String, SshHost>,
    sessions: BTreeMap<String, Session>,
}

/// The files each server's host needs, by plan path `<server>/<path on the host>`: its config,
/// the certificates and credentials the config names, and its WireGuard config.
fn host_files(t: &Topology, desired: &Desired, rendered: &[RenderedFile], tree: &Path) -> Vec<(String, PathBuf, RenderedFile)> {
    let mut files = Vec::new();
    let mut place = |server: &str, on_host: PathBuf, content: String, secret: bool| {
        let path = Path::new(server).join(&on_host);
        files.push((server.to_string(), on_host, RenderedFile { path, content, secret }));
    };
    let by_path: BTreeMap<&Path, &RenderedFile> = rendered.iter().map(|f| (f.path.as_path(), f)).collect();
    for s in &desired.servers {
        // A host holds its server's config and the shared files that config includes.
        for path in crate::desired::config_files(s) {
            if let Some(f) = by_path.get(path.as_path()) {
                place(&s.name, path, f.content.clone(), f.secret);
            }
        }
        let Some(host) = t.ssh_host(&s.name) else { continue };
        for referenced in s.conf.referenced_files() {
            let Some(rel) = referenced.strip_prefix(&format!("{}/", host.config_dir)) else {
                continue;
            };
            let rel = PathBuf::from(rel);
            let content = rendered
                .iter()
                .find(|f| f.path == rel)
                .map(|f| f.content.clone())
                .or_else(|| std::fs::read_to_string(tree.join(&rel)).ok())
                .unwrap_or_else(|| NOT_YET_GENERATED.to_string());
            let secret = rel.starts_with("auth") || rel.to_string_lossy().ends_with("-key.pem");
            place(&s.name, rel, content, secret);
        }
        let node = t.regions.iter().flat_map(|r| &r.nodes).find(|n| n.name == s.name);
        if let Some(peer) = node.and_then(|n| n.wireguard.as_ref()) {
            let rendered_path = PathBuf::from("wireguard").join(format!("{}.conf", s.name));
            if let Some(conf) = rendered.iter().find(|f| f.path == rendered_path) {
                place(
                    &s.name,
                    PathBuf::from("wireguard").join(format!("{}.conf", peer.interface)),
                    conf.content.clone(),
                    true,
                );
            }
        }
    }
    files
}

impl SshTarget {
    pub fn new(state_root: &Path, topology: &str, policy: HostKeyPolicy) -> Result<Self> {
        let dir =
            std::path::absolute(TargetKind::Ssh.deployment_dir(state_root, topology)).context("cannot resolve the state directory")?;
        Ok(SshTarget {
            dir,
            policy,
            hosts: BTreeMap::new(),
            sessions: BTreeMap::new(),
        })
    }

    fn layout<'a>(&'a self, server: &'a str) -> Result<(Layout<'a>, &'a Session)> {
        let host = self.hosts.get(server).with_context(|| format!("server {server} has no host"))?;
        let session = self
            .sessions
            .get(server)
            .with_context(|| format!("no session to the host of {server}"))?;
        Ok((Layout { server, host }, session))
    }

    /// The server a plan path belongs to, when it is a file on a host.
    fn host_of<'a>(&self, path: &'a Path) -> Option<(&str, &'a Path)> {
        let first = path.components().next()?.as_os_str().to_str()?;
        let (server, _) = self.hosts.get_key_value(first)?;
        Some((server.as_str(), path.strip_prefix(first).ok()?))
    }

    /// Writes the changed files of one host: each into a temporary file created with its mode,
    /// then all renamed into place at once; removed files deleted.
    async fn upload(&self, session: &Session, layout: &Layout<'_>, files: &[(&Path, &FileChange)], removed: &[&Path]) -> Result<()> {
        let mut dirs: Vec<String> = files.iter().filter_map(|(p, _)| p.parent().map(|p| layout.remote(p))).collect();
        dirs.extend([layout.host.data_dir.clone(), layout.host.log_dir.clone()]);
        dirs.sort();
        dirs.dedup();
        let mkdir: Vec<String> = dirs.iter().map(|d| quote(d)).collect();
        session.run(&format!("mkdir -p {}", mkdir.join(" "))).await?;
        if !files.is_empty() {
            let sftp = session.sftp().await?;
            let mut renames = Vec::new();
            for (rel, f) in files {
                let target = layout.remote(rel);
                let temporary = format!("{target}{TEMPORARY_SUFFIX}");
                let mode = if f.secret { 0o600 } else { 0o644 };
                let content = f.content.as_deref().unwrap_or_default();
                session.write_file(&sftp, &temporary, content.as_bytes(), mode).await?;
                renames.push(format!(
                    "chmod {mode:o} {t} && mv -f {t} {target}",
                    t = quote(&temporary),
                    target = quote(&target)
                ));
            }
            let _ = sftp.close().await;
            session.run(&renames.join(" && ")).await?;
        }
        if !removed.is_empty() {
            let paths: Vec<String> = removed.iter().map(|p| quote(&layout.remote(p))).collect();
            session.run(&format!("rm -f {}", paths.join(" "))).await?;
        }
        Ok(())
    }

    /// Brings the host's WireGuard interface up from its config, or gives a running one the
    /// new peers.
    async fn wireguard_up(&self, session: &Session, conf: &str) -> Result<()> {
        let interface = Path::new(conf)
            .file_stem()
            .and_then(|s| s.to_str())
            .context("a WireGuard config path without a name")?;
        let script = format!(
            // A running interface takes the new peers in place: syncconf keeps the sessions of
            // peers that stay. A userspace one (its UAPI socket is there; boringtun) refuses any
            // change to an existing peer and then stops answering, so its peers are replaced
            // instead: each session re-forms on its next handshake.
            r#"if ! ip link show {i} >/dev/null 2>&1; then wg-quick up {c}
elif [ -S /var/run/wireguard/{i}.sock ]; then
  for p in $(wg show {i} peers); do wg set {i} peer "$p" remove || exit 1; done
  peers=$(wg-quick strip {c} | sed '/^\[Interface\]/,/^\[Peer\]/{{/^\[Peer\]/!d}}')
  [ -z "$peers" ] || wg addconf {i} <(printf '%s\n' "$peers")
else wg syncconf {i} <(wg-quick strip {c})
fi"#,
            i = quote(interface),
            c = quote(conf)
        );
        session.run(&format!("bash -c {}", quote(&script))).await?;
        Ok(())
    }

    /// One host's part of `write_files`: its files, its tunnel, and what the state records.
    async fn write_host(
        &self,
        server: &str,
        changes: &[&FileChange],
        files: &[RenderedFile],
        state: &mut DeploymentState,
        log: HostLog<'_>,
    ) -> Result<()> {
        let (l, session) = self.layout(server)?;
        let mine: Vec<(&Path, &FileChange)> = changes
            .iter()
            .filter_map(|c| self.host_of(&c.path).filter(|(s, _)| *s == server).map(|(_, rel)| (rel, *c)))
            .collect();
        let changed: Vec<(&Path, &FileChange)> = mine.iter().filter(|(_, c)| c.action != FileAction::Delete).copied().collect();
        let removed: Vec<&Path> = mine
            .iter()
            .filter(|(_, c)| c.action == FileAction::Delete)
            .map(|(p, _)| *p)
            .collect();
        if !mine.is_empty() {
            self.upload(session, &l, &changed, &removed).await?;
            log(server, format!("wrote {} file(s), removed {}", changed.len(), removed.len()));
        }
        let deployed: Vec<&Path> = files
            .iter()
            .filter_map(|f| self.host_of(&f.path).filter(|(s, _)| *s == server).map(|(_, rel)| rel))
            .collect();
        state
            .uploaded
            .insert(server.to_string(), deployed.iter().map(|p| p.display().to_string()).collect());
        state.hosts.insert(server.to_string(), l.host.clone());
        if let Some(conf) = deployed.iter().find(|p| p.starts_with("wireguard")).map(|p| l.remote(p)) {
            let wg_changed = changed.iter().any(|(p, _)| p.starts_with("wireguard"));
            if wg_changed || !state.wireguard.contains_key(server) {
                self.wireguard_up(session, &conf).await?;
                log(server, format!("WireGuard up from {conf}"));
            }
            state.wireguard.insert(server.to_string(), conf);
        }
        state.save(&self.dir)
    }
}

#[async_trait]
impl Target for SshTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Ssh
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn addressing(&self, _t: &Topology, _state: &mut DeploymentState, _port_base: Option<u16>) -> Result<Addressing> {
        Ok(Addressing::Ssh)
    }

    fn runs_wireguard(&self) -> bool {
        true
    }

    fn layout(&self, t: &Topology, desired: &Desired, rendered: Vec<RenderedFile>) -> Result<Vec<RenderedFile>> {
        let mut files: Vec<RenderedFile> = host_files(t, desired, &rendered, &self.dir)
            .into_iter()
            .map(|(_, _, f)| f)
            .collect();
        // Credentials and contexts stay on this machine, for clients and later commands.
        files.extend(
            rendered
                .into_iter()
                .filter(|f| !f.path.starts_with("nats") && !f.path.starts_with("wireguard")),
        );
        Ok(files)
    }

    async fn connect(&mut self, t: &Topology, state: &DeploymentState, log: HostLog<'_>) -> Result<()> {
        let mut hosts = state.hosts.clone();
        for name in t.server_names() {
            if let Some(h) = t.ssh_host(name) {
                hosts.insert(name.to_string(), h.clone());
            }
        }
        let policy = &self.policy;
        let attempts = hosts
            .iter()
            .map(|(server, host)| {
                async move {
                    log(server, format!("connecting to {}@{}:{}", host.user, host.address, host.port));
                    let result = Session::connect(server, host, policy).await;
                    match &result {
                        Ok(_) => log(server, format!("connected to {}@{}:{}", host.user, host.address, host.port)),
                        Err(_) => log(server, "unreachable".into()),
                    }
                    (server.clone(), result)
                }
                .boxed()
            })
            .collect::<Vec<_>>();
        let mut sessions = BTreeMap::new();
        let mut failures = Vec::new();
        for (server, result) in per_host(attempts).await {
            match result {
                Ok(s) => {
                    sessions.insert(server, s);
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        if !failures.is_empty() {
            for (_, s) in sessions {
                s.close().await;
            }
            failures.sort();
            bail!(
                "{} host(s) could not be reached, so nothing was changed on any host:\n  - {}",
                failures.len(),
                failures.join("\n  - ")
            );
        }
        self.hosts = hosts;
        self.sessions = sessions;
        Ok(())
    }

    async fn close(&mut self) {
        for (_, s) in std::mem::take(&mut self.sessions) {
            s.close().await;
        }
    }

    async fn read_files(&self, t: &Topology, files: &[RenderedFile], state: &DeploymentState) -> Result<BTreeMap<PathBuf, String>> {
        let mut found =
            files::read_tree(&self.dir, &auth::tree_dirs(t)).with_context(|| format!("cannot read `{}`", self.dir.display()))?;
        let reads = self
            .sessions
            .iter()
            .map(|(server, session)| {
                async move {
                    let layout = Layout {
                        server,
                        host: &self.hosts[server],
                    };
                    let mut paths: Vec<PathBuf> = files
                        .iter()
                        .filter_map(|f| self.host_of(&f.path).filter(|(s, _)| s == server).map(|(_, rel)| rel.to_path_buf()))
                        .collect();
                    paths.extend(state.uploaded.get(server).into_iter().flatten().map(PathBuf::from));
                    paths.sort();
                    paths.dedup();
                    let sftp = session.sftp().await?;
                    let mut on_host = BTreeMap::new();
                    for path in paths {
                        if let Some(content) = session.read_file(&sftp, &layout.remote(&path)).await? {
                            on_host.insert(Path::new(server).join(&path), content);
                        }
                    }
                    let _ = sftp.close().await;
                    Ok::<_, SshError>(on_host)
                }
                .boxed()
            })
            .collect::<Vec<_>>();
        for read in per_host(reads).await {
            found.extend(read?);
        }
        Ok(found)
    }

    async fn observe(&self, state: &DeploymentState, desired: &Desired) -> Result<BTreeMap<String, ObservedServer>> {
        let monitor = Monitor::for_desired(desired);
        let reads = self
            .sessions
            .iter()
            .map(|(server, session)| {
                let monitor = monitor.clone();
                async move {
                    let layout = Layout {
                        server,
                        host: &self.hosts[server],
                    };
                    let running = session.run(&layout.running_check()).await?.trim() == "running";
                    let digest = match (running, desired.server(server)) {
                        (true, Some(s)) => monitor.config_digest(&s.monitor_url).await.ok().and_then(|(d, _)| d),
                        _ => None,
                    };
                    let applied = state.applied.get(server.as_str()).cloned();
                    Ok::<_, SshError>((
                        server.clone(),
                        ObservedServer {
                            running,
                            digest,
                            applied,
                            must_restart: None,
                        },
                    ))
                }
                .boxed()
            })
            .collect::<Vec<_>>();
        let mut observed = BTreeMap::new();
        for read in per_host(reads).await {
            let (server, o) = read?;
            observed.insert(server, o);
        }
        Ok(observed)
    }

    async fn config_digest(&self, server: &str, conf: &str) -> Result<Option<String>> {
        let (l, session) = self.layout(server)?;
        // The config goes in on stdin, so nothing is written; the files it names must be there.
        let out = session
            .exec_with_input(&format!("{} -t -c /dev/stdin", quote(&l.host.nats_server)), Some(conf.as_bytes()))
            .await?;
        let said = out.stderr + &out.stdout;
        Ok((out.status == 0)
            .then(|| said.split("(sha256:").nth(1)?.split(')').next().map(|hex| format!("sha256:{hex}")))
            .flatten())
    }

    async fn write_files(
        &self,
        changes: &[&FileChange],
        files: &[RenderedFile],
        state: &mut DeploymentState,
        log: HostLog<'_>,
    ) -> Result<()> {
        let local: Vec<&FileChange> = changes.iter().filter(|c| self.host_of(&c.path).is_none()).copied().collect();
        super::local::write_under(&self.dir, &local)?;
        // Files (and tunnels) go out host by host before any server changes: a host failing
        // here leaves every server as it was, and the error says which hosts already have theirs.
        let mut done: Vec<&str> = Vec::new();
        for server in self.sessions.keys() {
            self.write_host(server, changes, files, state, log).await.with_context(|| {
                let done = if done.is_empty() { "none".to_string() } else { done.join(", ") };
                format!(
                    "on {server}, no server was started, reloaded or restarted (hosts that already have their new files: {done}); run apply again once it is fixed"
                )
            })?;
            done.push(server);
        }
        Ok(())
    }

    async fn start(&self, servers: &[&str], _state: &DeploymentState) -> Result<()> {
        for server in servers {
            let (l, session) = self.layout(server)?;
            let command = format!(
                // Started only when no process runs this config (an interrupted apply may have
                // started it). `setsid` execs the server in place, so `$!` is the server's own
                // pid; only the server runs in the background, holding none of the session's
                // streams.
                "{find}; [ -n \"$pid\" ] && exit 0; cd {data} || exit 1; setsid nohup {bin} -c {conf} >> {log} 2>&1 < /dev/null & echo $! > {pidfile}",
                find = l.find_pid(),
                data = quote(&l.host.data_dir),
                bin = quote(&l.host.nats_server),
                conf = quote(&l.conf()),
                log = quote(&l.log()),
                pidfile = quote(&l.pid()),
            );
            session.run(&command).await?;
        }
        Ok(())
    }

    async fn stop(&self, server: &str, grace: Duration, mode: StopMode) -> Result<()> {
        let (l, session) = self.layout(server)?;
        let command = format!(
            "{find}; [ -n \"$pid\" ] || {{ rm -f {pidfile}; exit 0; }}; kill -s {signal} \"$pid\" 2>/dev/null; for i in $(seq {ticks}); do kill -0 \"$pid\" 2>/dev/null || break; sleep 0.1; done; kill -9 \"$pid\" 2>/dev/null; rm -f {pidfile}; true",
            find = l.find_pid(),
            pidfile = quote(&l.pid()),
            signal = mode.signal(),
            ticks = grace.as_millis() / 100,
        );
        session.run(&command).await?;
        Ok(())
    }

    async fn reload(&self, server: &str) -> Result<()> {
        let (l, session) = self.layout(server)?;
        let out = session
            .run(&format!(
                "{}; [ -n \"$pid\" ] && kill -HUP \"$pid\" && echo signalled; true",
                l.find_pid()
            ))
            .await?;
        if out.trim() != "signalled" {
            bail!("server {server} is not running on {}: it cannot be reloaded", l.host.address);
        }
        Ok(())
    }

    async fn running(&self, server: &str) -> Result<bool> {
        let (l, session) = self.layout(server)?;
        Ok(session.run(&l.running_check()).await?.trim() == "running")
    }

    async fn log_tail(&self, server: &str) -> String {
        let Ok((l, session)) = self.layout(server) else {
            return String::new();
        };
        let tail = session
            .exec(&format!("tail -n 12 {}", quote(&l.log())))
            .await
            .map(|o| o.stdout)
            .unwrap_or_default();
        format!("--- last lines of {} on {} ---\n{}", l.log(), l.server, redact(&tail))
    }

    async fn destroy(&self, state: &DeploymentState, log: HostLog<'_>) -> Result<Vec<String>> {
        let mut stopped = Vec::new();
        for server in self.sessions.keys() {
            let (l, session) = self.layout(server)?;
            if session.run(&l.running_check()).await?.trim() == "running" {
                self.stop(server, Duration::from_secs(10), StopMode::Terminate).await?;
                stopped.push(server.clone());
            }
            if let Some(conf) = state.wireguard.get(server) {
                // An interface already gone (a reboot, an operator) is not an error.
                let interface = Path::new(conf).file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                let script = format!(
                    "if ip link show {i} >/dev/null 2>&1; then wg-quick down {c}; fi",
                    i = quote(interface),
                    c = quote(conf)
                );
                session.run(&format!("bash -c {}", quote(&script))).await?;
            }
            let mut paths: Vec<String> = state
                .uploaded
                .get(server)
                .into_iter()
                .flatten()
                .map(|p| quote(&l.remote(Path::new(p))))
                .collect();
            paths.push(quote(&l.conf()));
            paths.extend([
                quote(&format!("{}/jetstream/{server}", l.host.data_dir)),
                quote(&l.log()),
                quote(&l.pid()),
                quote(&format!("{}/resolver/{server}", l.host.config_dir)),
            ]);
            session.run(&format!("rm -rf {}", paths.join(" "))).await?;
            // Directories apply created and that are now empty go too; the bases stay.
            session
                .run(&format!(
                    "find {} -mindepth 1 -type d -empty -delete 2>/dev/null; true",
                    quote(&l.host.config_dir)
                ))
                .await?;
            log(server, "removed what apply installed".into());
        }
        stopped.sort();
        Ok(stopped)
    }
}
