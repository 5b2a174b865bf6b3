//! Hosts for the ssh target: network namespaces on a bridge, each running its own OpenSSH sshd
//! (Debian's, unpacked by scripts/install-test-tools.sh) on its own address, the operator's key
//! authorized; and an operator namespace that runs notif-infra.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::Lan;
use crate::support::{project_root, text};

pub fn tools() -> PathBuf {
    project_root().join(".tools")
}

fn sshd() -> PathBuf {
    let p = tools().join("openssh/usr/sbin/sshd");
    assert!(p.is_file(), "sshd is not installed: run `bash scripts/install-test-tools.sh`");
    p
}

pub fn ssh_keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// sshd on `address` in namespace `ns`, its files in `host_dir`; the operator's key (in `d`)
/// authorized, StrictModes off for the temporary directories.
pub fn start_sshd(ns: &str, host_dir: &Path, address: &str, d: &Path) -> Child {
    let config = format!(
        "ListenAddress {address}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nSubsystem sftp {}\n",
        host_dir.join("ssh_host_ed25519_key").display(),
        host_dir.join("sshd.pid").display(),
        d.join("authorized_keys").display(),
        tools().join("openssh/usr/lib/openssh/sftp-server").display()
    );
    std::fs::write(host_dir.join("sshd_config"), config).unwrap();
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(sshd())
        .args(["-D", "-e", "-f"])
        .arg(host_dir.join("sshd_config"))
        .env("LD_LIBRARY_PATH", tools().join("openssh/usr/lib/x86_64-linux-gnu"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(host_dir.join("sshd.log")).unwrap())
        .spawn()
        .unwrap()
}

pub fn wait_listening(ns: &str, address: &str, host_dir: &Path) {
    let started = Instant::now();
    let probe = format!("exec 3<>/dev/tcp/{address}/22");
    while !Command::new("ip")
        .args(["netns", "exec", ns, "bash", "-c", &probe])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
    {
        let log = std::fs::read_to_string(host_dir.join("sshd.log")).unwrap_or_default();
        assert!(started.elapsed().as_secs() < 10, "sshd on {address} does not listen: {log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `count` hosts with sshd at `<subnet>.1..`, an operator namespace at `<subnet>.100`, the
/// operator's key in `dir/id_ed25519`; every process and namespace removed on drop.
pub struct SshHosts {
    pub op: String,
    pub addresses: Vec<String>,
    /// Each host's network namespace.
    pub namespaces: Vec<String>,
    sshd: Vec<Child>,
    /// Dropped after the sshd processes: what apply started in the namespaces goes with it.
    _lan: Lan,
}

impl SshHosts {
    pub fn new(prefix: &str, subnet: &str, count: usize, dir: &Path) -> SshHosts {
        let mut lan = Lan::new(prefix);
        let addresses: Vec<String> = (0..count).map(|i| format!("{subnet}.{}", i + 1)).collect();
        let names: Vec<String> = addresses.iter().enumerate().map(|(i, a)| lan.host(&format!("h{i}"), a)).collect();
        let op = lan.host("op", &format!("{subnet}.100"));
        std::fs::create_dir_all("/run/sshd").unwrap();
        ssh_keygen(&dir.join("id_ed25519"));
        std::fs::copy(dir.join("id_ed25519.pub"), dir.join("authorized_keys")).unwrap();
        let mut hosts = SshHosts {
            op,
            addresses: addresses.clone(),
            namespaces: names.clone(),
            sshd: Vec::new(),
            _lan: lan,
        };
        for (i, ns) in names.iter().enumerate() {
            let host_dir = dir.join(format!("h{i}"));
            std::fs::create_dir_all(&host_dir).unwrap();
            ssh_keygen(&host_dir.join("ssh_host_ed25519_key"));
            hosts.sshd.push(start_sshd(ns, &host_dir, &addresses[i], dir));
        }
        for (i, ns) in names.iter().enumerate() {
            wait_listening(ns, &addresses[i], &dir.join(format!("h{i}")));
        }
        hosts
    }
}

impl SshHosts {
    /// Cuts host `i` off the network (its link down: nothing reaches it, nothing leaves it),
    /// or connects it again.
    pub fn cut_off(&self, i: usize, off: bool) {
        crate::netns::ip(&["-n", &self.namespaces[i], "link", "set", "eth0", if off { "down" } else { "up" }]);
    }
}

/// `path` of the monitoring endpoint of the server at `address`, asked from namespace `op`.
pub fn monitoring(op: &str, address: &str, path: &str) -> serde_json::Value {
    let out = Command::new("ip")
        .args(["netns", "exec", op, "python3", "-c"])
        .arg(format!(
            "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://{address}:8222{path}', timeout=2).read().decode())"
        ))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("no {path} from {address}: {}", text(&out)))
}

impl Drop for SshHosts {
    fn drop(&mut self) {
        for c in &mut self.sshd {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
