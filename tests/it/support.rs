//! Shared test helpers: the built binary, the real nats-server, free port ranges and a guard
//! that tears a deployment down even when the test fails.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn topology(name: &str) -> PathBuf {
    project_root().join("topologies").join(format!("{name}.yaml"))
}

/// The nats-server the tests run: NATS_SERVER_BIN, or the one scripts/install-test-tools.sh installs.
pub fn nats_server() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let p = project_root().join(".tools/bin/nats-server");
    assert!(
        p.is_file(),
        "nats-server is not installed: run `bash scripts/install-test-tools.sh` first"
    );
    p
}

/// Values for every password variable the shipped topologies use.
pub const ENV: &[(&str, &str)] = &[
    ("APP_PASS", "app-secret"),
    ("ADMIN_PASS", "admin-secret"),
    ("WRITER_PASS", "writer-secret"),
    ("READER_PASS", "reader-secret"),
    ("EDGE_SYNC_TOKYO_PASS", "edge-sync-tokyo-secret"),
    ("EDGE_SYNC_LONDON_PASS", "edge-sync-london-secret"),
    ("EDGE_SYNC_NYC_PASS", "edge-sync-nyc-secret"),
    ("CONTROL_PASS", "control-secret"),
    ("API_PASSWORD", "api-secret"),
    ("MOBILE_PASSWORD", "mobile-secret"),
    ("ANALYTICS_PASSWORD", "analytics-secret"),
    ("CACHE_INVALIDATOR_PASSWORD", "cache-invalidator-secret"),
    ("NOTIFICATIONS_PASSWORD", "notifications-secret"),
    ("AUDIT_LOGGER_PASSWORD", "audit-logger-secret"),
    ("ASSETS_PASSWORD", "assets-secret"),
    ("ACME_PASS", "acme-secret"),
    ("COVENANT_JS_KEY", "covenant-test-encryption-key-0001"),
    ("PARTNER_PASS", "partner-secret"),
];

/// The binary, run in `dir`, with the test nats-server and the password variables set.
pub fn notif_infra(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("notif-infra").expect("the binary is built");
    cmd.current_dir(dir)
        .env("NATS_SERVER_BIN", nats_server())
        .env_remove("NOTIF_INFRA_PORT_BASE")
        .env_remove("NOTIF_INFRA_STATE_DIR");
    for (k, v) in ENV {
        cmd.env(k, v);
    }
    cmd
}

/// Ports between one local slot and the next.
pub const STRIDE: u16 = notif_infra::desired::LOCAL_PORT_STRIDE;

/// The port ranges handed out in this process: a range stays a test's even while a server of it
/// is down (killed, being restarted), so a test running beside it never takes its ports.
static HANDED_OUT: std::sync::Mutex<Vec<std::ops::Range<u16>>> = std::sync::Mutex::new(Vec::new());

/// A base port whose range of `servers` local slots is free right now and was handed to no
/// other test of this process, below the kernel's ephemeral range (client connections there
/// would collide). Ranges are spread by process id and time so parallel tests rarely even try
/// the same one.
pub fn free_port_base(servers: u16) -> u16 {
    let span = servers * STRIDE;
    let mut seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
    for _ in 0..200 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let base = 20000 + ((seed >> 33) % ((32000 - 20000 - span as u64) / 10)) as u16 * 10;
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        let taken = handed_out.iter().any(|r| r.start < base + span && base < r.end);
        if !taken && (base..base + span).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            handed_out.push(base..base + span);
            return base;
        }
    }
    panic!("no free port range found");
}

/// A deployment on the local target in its own temporary directory, destroyed on drop
/// (and any server still alive killed), so a failing test leaves nothing behind.
pub struct Deployment {
    pub dir: tempfile::TempDir,
    pub topology: PathBuf,
    pub name: String,
    pub port_base: u16,
    /// `--target` and its options, given to every command.
    target_args: Vec<String>,
}

impl Deployment {
    pub fn new(topology: &Path, name: &str, servers: u16) -> Self {
        Deployment {
            dir: tempfile::tempdir().unwrap(),
            topology: topology.to_path_buf(),
            name: name.to_string(),
            port_base: free_port_base(servers),
            target_args: Vec::new(),
        }
    }

    /// A deployment on the compose target, running the local FROM-scratch image.
    pub fn compose(topology: &Path, name: &str, servers: u16) -> Self {
        let mut d = Deployment::new(topology, name, servers);
        d.target_args = vec!["--target".into(), "compose".into(), "--image".into(), local_image().into()];
        d
    }

    /// A deployment on the compose target running the image the topology names (or derives from
    /// its pinned nats-server version): no `--image`.
    pub fn compose_with_topology_image(topology: &Path, name: &str, servers: u16) -> Self {
        let mut d = Deployment::new(topology, name, servers);
        d.target_args = vec!["--target".into(), "compose".into()];
        d
    }

    pub fn cmd(&self, verb: &str) -> Command {
        let mut cmd = notif_infra(self.dir.path());
        cmd.arg(verb).arg(&self.topology).args(&self.target_args);
        if matches!(verb, "apply" | "plan") {
            cmd.arg("--port-base").arg(self.port_base.to_string());
        }
        cmd
    }

    pub fn state_dir(&self) -> PathBuf {
        let dir = if self.target_args.is_empty() {
            self.name.clone()
        } else {
            format!("{}.compose", self.name)
        };
        self.dir.path().join(".notif-infra").join(dir)
    }

    pub fn pid(&self, server: &str) -> Option<u32> {
        std::fs::read_to_string(self.state_dir().join("run").join(format!("{server}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Pids of every server of this deployment, from its pid files.
    pub fn pids(&self) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir(self.state_dir().join("run")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok()?.trim().parse().ok())
            .collect()
    }

    pub fn monitor_url(&self, slot: u16) -> String {
        format!("http://127.0.0.1:{}", self.port_base + STRIDE * slot + 4)
    }
}

/// Whether a process with this pid is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next()),
            Some("Z") | Some("X")
        ),
        Err(_) => false,
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let pids = self.pids();
        let _ = self.cmd("destroy").timeout(std::time::Duration::from_secs(60)).output();
        for pid in pids {
            if alive(pid) {
                let _ = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
        }
    }
}

/// What a destroyed deployment's directory still holds besides its identity (`pki/`, `auth/`):
/// nothing, after a destroy.
pub fn left_after_destroy(state: &Path) -> Vec<String> {
    std::fs::read_dir(state)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| !notif_infra::material::IDENTITY_DIRS.contains(&name.as_str()))
                .collect()
        })
        .unwrap_or_default()
}

/// GETs a monitoring endpoint (plain HTTP/1.0) and parses its JSON body.
pub fn get_json(url: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut stream = std::net::TcpStream::connect(host).unwrap_or_else(|e| panic!("{url}: {e}"));
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{url} did not answer JSON: {e}"))
}

/// Standard output parsed as JSON, or a panic showing both streams.
pub fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Both output streams, for assertion messages and searches.
pub fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Fails naming the first of `expected` that `haystack` lacks, and showing all of it.
pub fn assert_contains_all(haystack: &str, expected: &[&str]) {
    for e in expected {
        assert!(haystack.contains(e), "expected `{e}` in:\n{haystack}");
    }
}

/// GETs a monitoring endpoint over https, trusting only `ca` (a deployment's `ca.pem`).
pub fn get_json_tls(url: &str, ca: &Path) -> serde_json::Value {
    notif_infra::client::install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
        let resp = client.get(url).send().await.unwrap_or_else(|e| panic!("{url}: {e:?}"));
        resp.json().await.unwrap_or_else(|e| panic!("{url} did not answer JSON: {e}"))
    })
}

/// Every nkey seed and PEM private key in `text`: nothing a command prints may hold one.
pub fn leaked_secrets(text: &str) -> Vec<String> {
    let mut found: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| {
            w.len() == 58
                && w.starts_with('S')
                && matches!(w.as_bytes()[1], b'U' | b'A' | b'O' | b'N' | b'C' | b'X' | b'P')
                && w.chars().all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
        })
        .map(String::from)
        .collect();
    if text.contains("PRIVATE KEY-----") {
        found.push("a PEM private key".into());
    }
    found
}

/// The Python interpreter with the test clients' packages (nats-py) on its path.
pub fn python() -> std::process::Command {
    let mut cmd = std::process::Command::new("python3");
    cmd.env("PYTHONPATH", project_root().join(".tools/python"));
    cmd
}

/// Every file directly under `dir`, with its bytes, by name.
pub fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

/// The nats-server image the compose tests run, built once per test run FROM scratch by
/// scripts/build-local-image.sh (no image can be pulled here). Fails loudly without a Docker
/// engine: CI has one and must run these tests.
/// Builds a FROM-scratch image of the installed nats-server `version` (from `.tools/versions/`)
/// tagged as the official `nats:<version>`, which a topology pinning that version runs on the
/// compose target (no engine here can pull the official one).
pub fn official_tag_image(version: &str) -> String {
    let bin = project_root().join(".tools/versions").join(version).join("nats-server");
    let tag = format!("nats:{version}");
    let out = std::process::Command::new("bash")
        .arg(project_root().join("scripts/build-local-image.sh"))
        .arg(&tag)
        .env("NATS_SERVER_BIN", &bin)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "cannot build {tag} from {}: {}",
        bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    tag
}

pub fn local_image() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let out = std::process::Command::new("bash")
            .arg(project_root().join("scripts/build-local-image.sh"))
            .arg("notif-infra-test/nats:local")
            .env("NATS_SERVER_BIN", nats_server())
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "NO DOCKER ENGINE: the compose tests need one to build and run the local nats image:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

/// Containers (running or not) of the compose project whose file is in `compose_dir`.
pub fn containers_in(compose_dir: &Path) -> Vec<String> {
    let label = format!("label=com.docker.compose.project.working_dir={}", compose_dir.display());
    let out = std::process::Command::new("docker")
        .args(["ps", "-a", "--filter", &label, "--format", "{{.Names}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// Runs `render FILE --out OUT` (from OUT's parent) and fails the test if it does not succeed.
pub fn render_into(file: &Path, out: &Path) {
    let dir = out.parent().unwrap();
    let rendered = notif_infra(dir).arg("render").arg(file).arg("--out").arg(out).output().unwrap();
    assert!(rendered.status.success(), "render {}: {}", file.display(), text(&rendered));
}

/// An Ansible tool from .tools/python, with its caches in `home` (nothing written elsewhere),
/// run in network namespace `netns` when given.
pub fn ansible(tool: &str, home: &Path, netns: Option<&str>) -> std::process::Command {
    let python = project_root().join(".tools/python");
    let bin = python.join("bin").join(tool);
    assert!(bin.is_file(), "{tool} is not installed: run `bash scripts/install-test-tools.sh`");
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = std::process::Command::new("ip");
            c.args(["netns", "exec", ns]).arg(bin);
            c
        }
        None => std::process::Command::new(bin),
    };
    cmd.env("PYTHONPATH", &python)
        .env("PATH", format!("{}:/usr/bin:/bin", python.join("bin").display()))
        .env("HOME", home)
        .env("ANSIBLE_HOME", home.join(".ansible"))
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"));
    cmd
}

/// Every file under `dir` (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}
