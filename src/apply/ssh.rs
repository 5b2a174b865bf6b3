//! The ssh target: each server's files on its own host, written over SFTP (a temporary file,
//! then a rename, mode set at creation), WireGuard brought up with wg-quick, nats-server run
//! as a process with a pid file, and changes carried out one host at a time. What apply gave
//! each server is kept on this machine under `<state-root>/<topology>.ssh/`.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::desired::{Desired, ServerConf};
use crate::model::SshHost;
use crate::observed::Monitor;
use crate::plan::{FileAction, ObservedServer, Plan, ServerAction};
use crate::secrets::{read_state, redact, write_atomic};
use crate::ssh::{HostKeyPolicy, Session, quote};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(60);
const TEMPORARY_SUFFIX: &str = ".notif-infra-tmp";

/// What apply recorded: the config each server was last given and the files it put on its host
/// (relative to the host's config directory).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SshState {
    pub applied: BTreeMap<String, ServerConf>,
    pub uploaded: BTreeMap<String, Vec<String>>,
    /// The hosts that run a WireGuard interface apply brought up: server -> config on the host.
    pub wireguard: BTreeMap<String, String>,
    /// Every host apply reached, so destroy finds the ones that left the topology.
    pub hosts: BTreeMap<String, SshHost>,
}

/// A file one server's host needs: `path` relative to its config directory.
#[derive(Debug, Clone)]
pub struct HostFile {
    pub server: String,
    pub path: PathBuf,
    pub content: String,
    pub secret: bool,
}

impl HostFile {
    /// How plan names it: `<server>/<path>`.
    pub fn plan_path(&self) -> PathBuf {
        Path::new(&self.server).join(&self.path)
    }
}

/// Reports one step on one host (the server it runs): a line, and its row of the per-host display.
pub type HostLog<'a> = &'a (dyn Fn(&str, String) + Sync);

/// Hosts worked on at once: a fleet of hundreds does not open hundreds of sessions together.
const PARALLEL_HOSTS: usize = 16;

/// Runs one future per host, at most [`PARALLEL_HOSTS`] at a time, in whatever order they end.
async fn per_host<F: std::future::Future>(work: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    use futures_util::StreamExt;
    futures_util::stream::iter(work).buffer_unordered(PARALLEL_HOSTS).collect().await
}

/// What one apply carries out: the plan, every host's files, and the state it converges to.
pub struct Rollout<'a> {
    pub plan: &'a Plan,
    pub files: &'a [HostFile],
    pub desired: &'a Desired,
}

/// Where one server's files and process live on its host.
pub struct Layout<'a> {
    pub server: &'a str,
    pub host: &'a SshHost,
}

impl Layout<'_> {
    pub fn remote(&self, rel: &Path) -> String {
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
    /// Prints `running` when the pid file names a live nats-server of this config.
    fn running_check(&self) -> String {
        format!(
            "pid=$(cat {pid} 2>/dev/null) && kill -0 \"$pid\" 2>/dev/null && tr '\\0' ' ' < /proc/$pid/cmdline | grep -qF -- {conf} && echo running; true",
            pid = quote(&self.pid()),
            conf = quote(&self.conf())
        )
    }
}

pub struct SshTarget {
    pub dir: PathBuf,
    pub policy: HostKeyPolicy,
}

impl SshTarget {
    pub fn new(state_root: &Path, topology: &str, policy: HostKeyPolicy) -> Self {
        SshTarget {
            dir: state_root.join(format!("{topology}.ssh")),
            policy,
        }
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    pub fn load_state(&self) -> Result<Option<SshState>> {
        read_state(&self.state_path())
    }

    pub fn save_state(&self, state: &SshState) -> Result<()> {
        write_atomic(&self.state_path(), serde_json::to_string_pretty(state)?.as_bytes(), 0o644)
    }

    /// Logs in to the hosts in parallel; fails naming each host that could not be reached, before
    /// anything is changed anywhere.
    pub async fn connect(&self, hosts: &BTreeMap<String, SshHost>, log: HostLog<'_>) -> Result<BTreeMap<String, Session>> {
        let attempts = hosts.iter().map(|(server, host)| async move {
            log(server, format!("connecting to {}@{}:{}", host.user, host.address, host.port));
            let result = Session::connect(server, host, &self.policy).await;
            match &result {
                Ok(_) => log(server, format!("connected to {}@{}:{}", host.user, host.address, host.port)),
                Err(_) => log(server, "unreachable".into()),
            }
            (server.clone(), result)
        });
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
            bail!(
                "{} host(s) could not be reached, so nothing was changed on any host:\n  - {}",
                failures.len(),
                failures.join("\n  - ")
            );
        }
        Ok(sessions)
    }

    /// The files on the hosts (the desired ones and those apply put there before), by plan path.
    pub async fn files_on_hosts(
        &self,
        sessions: &BTreeMap<String, Session>,
        hosts: &BTreeMap<String, SshHost>,
        files: &[HostFile],
        state: &SshState,
    ) -> Result<BTreeMap<PathBuf, String>> {
        let reads = sessions.iter().map(|(server, session)| async move {
            let layout = Layout {
                server,
                host: &hosts[server],
            };
            let mut paths: Vec<PathBuf> = files.iter().filter(|f| &f.server == server).map(|f| f.path.clone()).collect();
            paths.extend(state.uploaded.get(server).into_iter().flatten().map(PathBuf::from));
            paths.sort();
            paths.dedup();
            let sftp = session.sftp().await?;
            let mut found = BTreeMap::new();
            for path in paths {
                if let Some(content) = session.read_file(&sftp, &layout.remote(&path)).await? {
                    found.insert(Path::new(server).join(&path), content);
                }
            }
            let _ = sftp.close().await;
            Ok::<_, crate::ssh::SshError>(found)
        });
        let mut on_hosts = BTreeMap::new();
        for read in per_host(reads).await {
            on_hosts.extend(read?);
        }
        Ok(on_hosts)
    }

    /// Whether each server runs on its host, and the digest it runs with (read through its
    /// monitoring port from this machine).
    pub async fn observe(
        &self,
        sessions: &BTreeMap<String, Session>,
        hosts: &BTreeMap<String, SshHost>,
        state: &SshState,
        desired: &Desired,
    ) -> Result<BTreeMap<String, ObservedServer>> {
        let monitor = Monitor::for_desired(desired);
        let reads = sessions.iter().map(|(server, session)| {
            let monitor = monitor.clone();
            async move {
                let layout = Layout {
                    server,
                    host: &hosts[server],
                };
                let running = session.run(&layout.running_check()).await?.trim() == "running";
                let digest = match (running, desired.server(server)) {
                    (true, Some(s)) => monitor.config_digest(&s.monitor_url).await.ok().and_then(|(d, _)| d),
                    _ => None,
                };
                let applied = state.applied.get(server.as_str()).cloned();
                Ok::<_, crate::ssh::SshError>((server.clone(), ObservedServer { running, digest, applied }))
            }
        });
        let mut observed = BTreeMap::new();
        for read in per_host(reads).await {
            let (server, o) = read?;
            observed.insert(server, o);
        }
        Ok(observed)
    }

    /// The digest nats-server computes for `content` on the host (config fed on stdin, so
    /// nothing is written); `None` when the host cannot check it yet (files it names missing).
    pub async fn digest_on_host(&self, session: &Session, host: &SshHost, content: &str) -> Option<String> {
        let out = session
            .exec_with_input(&format!("{} -t -c /dev/stdin", quote(&host.nats_server)), Some(content.as_bytes()))
            .await
            .ok()?;
        let said = out.stderr + &out.stdout;
        (out.status == 0)
            .then(|| said.split("(sha256:").nth(1)?.split(')').next().map(|hex| format!("sha256:{hex}")))
            .flatten()
    }

    /// Writes the changed files of one host: each into a temporary file created with its mode,
    /// then all renamed into place at once; removed files deleted.
    async fn upload(&self, session: &Session, layout: &Layout<'_>, files: &[&HostFile], removed: &[PathBuf]) -> Result<()> {
        let mut dirs: Vec<String> = files.iter().filter_map(|f| f.path.parent().map(|p| layout.remote(p))).collect();
        dirs.extend([layout.host.data_dir.clone(), layout.host.log_dir.clone()]);
        dirs.sort();
        dirs.dedup();
        let mkdir: Vec<String> = dirs.iter().map(|d| quote(d)).collect();
        session.run(&format!("mkdir -p {}", mkdir.join(" "))).await?;
        if !files.is_empty() {
            let sftp = session.sftp().await?;
            let mut renames = Vec::new();
            for f in files {
                let target = layout.remote(&f.path);
                let temporary = format!("{target}{TEMPORARY_SUFFIX}");
                let mode = if f.secret { 0o600 } else { 0o644 };
                session.write_file(&sftp, &temporary, f.content.as_bytes(), mode).await?;
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

    async fn start(&self, session: &Session, layout: &Layout<'_>) -> Result<()> {
        let command = format!(
            // `setsid` execs the server in place, so `$!` is the server's own pid; only the
            // server runs in the background, holding none of the session's streams.
            "cd {data} || exit 1; setsid nohup {bin} -c {conf} >> {log} 2>&1 < /dev/null & echo $! > {pid}",
            data = quote(&layout.host.data_dir),
            bin = quote(&layout.host.nats_server),
            conf = quote(&layout.conf()),
            log = quote(&layout.log()),
            pid = quote(&layout.pid()),
        );
        session.run(&command).await?;
        Ok(())
    }

    /// SIGTERM (lame duck, when configured, happens on the server's own terms), then SIGKILL
    /// after the grace period; removes the pid file.
    async fn stop(&self, session: &Session, layout: &Layout<'_>, grace: Duration) -> Result<()> {
        let command = format!(
            "pid=$(cat {pid} 2>/dev/null) || exit 0; kill \"$pid\" 2>/dev/null; for i in $(seq {ticks}); do kill -0 \"$pid\" 2>/dev/null || break; sleep 0.1; done; kill -9 \"$pid\" 2>/dev/null; rm -f {pid}; true",
            pid = quote(&layout.pid()),
            ticks = grace.as_millis() / 100,
        );
        session.run(&command).await?;
        Ok(())
    }

    async fn log_tail(&self, session: &Session, layout: &Layout<'_>) -> String {
        let tail = session
            .exec(&format!("tail -n 12 {}", quote(&layout.log())))
            .await
            .map(|o| o.stdout)
            .unwrap_or_default();
        format!("--- last lines of {} on {} ---\n{}", layout.log(), layout.server, redact(&tail))
    }

    /// Carries out the plan host by host: files (and WireGuard) on each host in turn, then
    /// stops, starts, reloads (each confirmed by its digest) and restarts (one server at a
    /// time, the next once this one is healthy).
    pub async fn execute(
        &self,
        sessions: &BTreeMap<String, Session>,
        hosts: &BTreeMap<String, SshHost>,
        rollout: Rollout<'_>,
        state: &mut SshState,
        log: HostLog<'_>,
    ) -> Result<()> {
        let Rollout { plan, files, desired } = rollout;
        let monitor = Monitor::for_desired(desired);
        let layout = |server: &'_ str| -> Layout<'_> {
            Layout {
                server: hosts.keys().find(|s| s.as_str() == server).expect("a known host"),
                host: &hosts[server],
            }
        };
        // Files (and tunnels) go out host by host before any server changes: a host failing
        // here leaves every server as it was, and the error says which hosts already have theirs.
        let mut files_done: Vec<&str> = Vec::new();
        for (server, session) in sessions {
            let step = async {
                let changed: Vec<&HostFile> = files
                    .iter()
                    .filter(|f| &f.server == server)
                    .filter(|f| plan.files.iter().any(|c| c.path == f.plan_path() && c.action != FileAction::Delete))
                    .collect();
                let removed: Vec<PathBuf> = plan
                    .files
                    .iter()
                    .filter(|c| c.action == FileAction::Delete)
                    .filter_map(|c| c.path.strip_prefix(server).ok().map(Path::to_path_buf))
                    .collect();
                let l = layout(server);
                if !changed.is_empty() || !removed.is_empty() {
                    self.upload(session, &l, &changed, &removed).await?;
                    log(server, format!("wrote {} file(s), removed {}", changed.len(), removed.len()));
                }
                let uploaded: Vec<String> = files
                    .iter()
                    .filter(|f| &f.server == server)
                    .map(|f| f.path.display().to_string())
                    .collect();
                state.uploaded.insert(server.clone(), uploaded);
                state.hosts.insert(server.clone(), hosts[server].clone());
                let wg = files
                    .iter()
                    .find(|f| &f.server == server && f.path.starts_with("wireguard"))
                    .map(|f| l.remote(&f.path));
                if let Some(conf) = wg {
                    let wg_changed = changed.iter().any(|f| f.path.starts_with("wireguard"));
                    if wg_changed || !state.wireguard.contains_key(server) {
                        self.wireguard_up(session, &conf).await?;
                        log(server, format!("WireGuard up from {conf}"));
                    }
                    state.wireguard.insert(server.clone(), conf);
                }
                self.save_state(state)?;
                Ok::<_, anyhow::Error>(())
            };
            step.await.with_context(|| {
                let done = if files_done.is_empty() { "none".to_string() } else { files_done.join(", ") };
                format!(
                    "on {server}, no server was started, reloaded or restarted (hosts that already have their new files: {done}); run apply again once it is fixed"
                )
            })?;
            files_done.push(server);
        }

        let grace = |server: &str| {
            desired
                .server(server)
                .and_then(|s| s.conf.lame_duck_duration.as_deref())
                .and_then(|d| crate::units::parse_duration(d).ok())
                .map(|d| d + Duration::from_secs(10))
                .unwrap_or(Duration::from_secs(10))
        };
        for c in plan.servers.iter().filter(|c| c.action == ServerAction::Stop) {
            // A server that left the topology: its host is the one apply last reached it on.
            let Some(session) = sessions.get(&c.server) else { continue };
            self.stop(session, &layout(&c.server), grace(&c.server)).await?;
            state.applied.remove(&c.server);
            self.save_state(state)?;
            log(&c.server, "stopped".into());
        }
        for c in plan.servers.iter().filter(|c| c.action == ServerAction::Start) {
            let session = &sessions[&c.server];
            let l = layout(&c.server);
            self.start(session, &l).await?;
            if let Some(s) = desired.server(&c.server) {
                state.applied.insert(c.server.clone(), s.conf.clone());
            }
            self.save_state(state)?;
            log(&c.server, format!("started on {}", l.host.address));
        }
        for c in plan.servers.iter().filter(|c| c.action == ServerAction::Start) {
            self.wait_ready(&monitor, desired, &sessions[&c.server], &layout(&c.server), None)
                .await?;
            log(&c.server, "answering".into());
        }
        for c in plan.servers.iter().filter(|c| c.action == ServerAction::Reload) {
            let session = &sessions[&c.server];
            let l = layout(&c.server);
            let spec = desired.server(&c.server).context("reload of a server not in the topology")?;
            let conf = files
                .iter()
                .find(|f| f.server == c.server && f.path.starts_with("nats"))
                .context("reload of a server without a config")?;
            let digest = self.digest_on_host(session, l.host, &conf.content).await;
            let loaded_before = monitor.config_digest(&spec.monitor_url).await.ok().and_then(|(_, t)| t);
            session.run(&format!("kill -HUP $(cat {})", quote(&l.pid()))).await?;
            let started = Instant::now();
            loop {
                if let Ok((seen, loaded)) = monitor.config_digest(&spec.monitor_url).await
                    && loaded != loaded_before
                    && (digest.is_none() || seen == digest)
                {
                    break;
                }
                if started.elapsed() > Duration::from_secs(10) {
                    bail!(
                        "server {} did not take the new config on reload:\n{}",
                        c.server,
                        self.log_tail(session, &l).await
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            state.applied.insert(c.server.clone(), spec.conf.clone());
            self.save_state(state)?;
            log(&c.server, format!("reloaded ({})", c.reason));
        }
        for c in plan.servers.iter().filter(|c| c.action == ServerAction::Restart) {
            let session = &sessions[&c.server];
            let l = layout(&c.server);
            self.stop(session, &l, grace(&c.server)).await?;
            self.start(session, &l).await?;
            if let Some(s) = desired.server(&c.server) {
                state.applied.insert(c.server.clone(), s.conf.clone());
            }
            self.save_state(state)?;
            self.wait_ready(&monitor, desired, session, &l, Some(HEALTHY_TIMEOUT)).await?;
            log(&c.server, format!("restarted ({})", c.reason));
        }
        Ok(())
    }

    /// Waits until the server answers on its monitoring port (and, with `healthy`, passes
    /// `/healthz`: its streams caught up), failing with its log when the process is gone.
    async fn wait_ready(
        &self,
        monitor: &Monitor,
        desired: &Desired,
        session: &Session,
        layout: &Layout<'_>,
        healthy: Option<Duration>,
    ) -> Result<()> {
        let Some(spec) = desired.server(layout.server) else { return Ok(()) };
        let started = Instant::now();
        let mut checks = 0u32;
        while monitor.config_digest(&spec.monitor_url).await.is_err() {
            checks += 1;
            // Asking the host costs a round trip: look at the process every 20th try.
            if checks.is_multiple_of(20) && session.run(&layout.running_check()).await?.trim() != "running" {
                bail!(
                    "server {} exited right after start:\n{}",
                    layout.server,
                    self.log_tail(session, layout).await
                );
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "server {} did not answer on {} within {} s:\n{}",
                    layout.server,
                    spec.monitor_url,
                    READY_TIMEOUT.as_secs(),
                    self.log_tail(session, layout).await
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(limit) = healthy
            && let Err(last) = monitor.wait_healthy(&spec.monitor_url, limit).await
        {
            bail!(
                "server {} is not healthy {} s after its restart ({last}); the roll stops here",
                layout.server,
                limit.as_secs()
            );
        }
        Ok(())
    }

    /// Stops every server apply started, takes WireGuard down, removes the files it put on
    /// each host and the server's data and log, then this machine's state. Returns the servers
    /// stopped.
    pub async fn destroy(&self, sessions: &BTreeMap<String, Session>, state: &SshState, log: HostLog<'_>) -> Result<Vec<String>> {
        let mut stopped = Vec::new();
        for (server, session) in sessions {
            let host = &state.hosts[server];
            let l = Layout { server, host };
            if session.run(&l.running_check()).await?.trim() == "running" {
                self.stop(session, &l, Duration::from_secs(10)).await?;
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
            paths.extend([
                quote(&format!("{}/jetstream/{server}", host.data_dir)),
                quote(&l.log()),
                quote(&l.pid()),
                quote(&format!("{}/resolver/{server}", host.config_dir)),
            ]);
            session.run(&format!("rm -rf {}", paths.join(" "))).await?;
            // Directories apply created and that are now empty go too; the bases stay.
            session
                .run(&format!(
                    "find {} -mindepth 1 -type d -empty -delete 2>/dev/null; true",
                    quote(&host.config_dir)
                ))
                .await?;
            log(server, "removed what apply installed".into());
        }
        std::fs::remove_dir_all(&self.dir)
            .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
            .with_context(|| format!("cannot remove `{}`", self.dir.display()))?;
        stopped.sort();
        Ok(stopped)
    }
}
