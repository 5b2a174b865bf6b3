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

/// The nats-server the tests run: NATS_SERVER_BIN, or the one scripts/install-tools.sh installs.
pub fn nats_server() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let p = project_root().join(".tools/bin/nats-server");
    assert!(
        p.is_file(),
        "nats-server is not installed: run `bash scripts/install-tools.sh` first"
    );
    p
}

/// Values for every password variable the shipped topologies use.
pub const ENV: &[(&str, &str)] = &[
    ("APP_PASS", "app-secret"),
    ("ADMIN_PASS", "admin-secret"),
    ("WRITER_PASS", "writer-secret"),
    ("READER_PASS", "reader-secret"),
    ("API_PASSWORD", "api-secret"),
    ("MOBILE_PASSWORD", "mobile-secret"),
    ("ANALYTICS_PASSWORD", "analytics-secret"),
    ("ACME_PASS", "acme-secret"),
    ("PARTNER_PASS", "partner-secret"),
    ("STARTUP_PASS", "startup-secret"),
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

/// A base port whose range of `servers` local slots is free right now, below the kernel's
/// ephemeral range (client connections there would collide). Ranges are spread by process id
/// and time so parallel tests rarely even try the same one.
pub fn free_port_base(servers: u16) -> u16 {
    let span = servers * 10;
    let mut seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
    for _ in 0..200 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let base = 20000 + ((seed >> 33) % ((32000 - 20000 - span as u64) / 10)) as u16 * 10;
        if (base..base + span).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
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
}

impl Deployment {
    pub fn new(topology: &Path, name: &str, servers: u16) -> Self {
        Deployment {
            dir: tempfile::tempdir().unwrap(),
            topology: topology.to_path_buf(),
            name: name.to_string(),
            port_base: free_port_base(servers),
        }
    }

    pub fn cmd(&self, verb: &str) -> Command {
        let mut cmd = notif_infra(self.dir.path());
        cmd.arg(verb).arg(&self.topology);
        if matches!(verb, "apply" | "plan") {
            cmd.arg("--port-base").arg(self.port_base.to_string());
        }
        cmd
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join(".notif-infra").join(&self.name)
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
        format!("http://127.0.0.1:{}", self.port_base + 10 * slot + 4)
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
