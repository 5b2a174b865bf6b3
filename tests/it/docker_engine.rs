//! A Docker engine of the test's own: dockerd (the machine's binary) in a network namespace the
//! test creates, with its own data root, exec root and socket, so that it can be stopped and
//! started again without touching the machine's engine or the other tests' containers. It
//! holds the local nats image, copied from the machine's engine. Whatever happens, its
//! containers, its processes, its files and its namespace go on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{local_image, text};

pub struct PrivateEngine {
    /// The network namespace it (and whatever talks to its published ports) runs in.
    pub netns: String,
    /// `unix://…` for DOCKER_HOST.
    pub host: String,
    root: PathBuf,
    dockerd: Option<Child>,
}

impl PrivateEngine {
    /// Starts the engine in a new namespace `<prefix>-dk` with its files under `dir`.
    pub fn new(prefix: &str, dir: &Path) -> PrivateEngine {
        let netns = format!("{prefix}-dk");
        crate::netns::ip(&["netns", "add", &netns]);
        let root = dir.join("docker");
        std::fs::create_dir_all(&root).unwrap();
        // vfs: no storage driver the machine's engine might hold; the image is one small layer.
        std::fs::write(root.join("daemon.json"), r#"{"storage-driver": "vfs"}"#).unwrap();
        let mut engine = PrivateEngine {
            host: format!("unix://{}", root.join("docker.sock").display()),
            netns,
            root,
            dockerd: None,
        };
        crate::netns::ip(&["-n", &engine.netns, "link", "set", "lo", "up"]);
        engine.start();
        // The image the compose target runs, from the machine's engine.
        let image = local_image();
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("docker save {image} | docker -H {} load", engine.host))
            .output()
            .unwrap();
        assert!(out.status.success(), "cannot copy {image} to the private engine: {}", text(&out));
        engine
    }

    /// Starts dockerd and waits until it answers. `nsenter` joins only the network namespace:
    /// `ip netns exec` would remount /sys and hide the cgroups the engine needs.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("dockerd.log"))
            .unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", self.netns))
            .arg("dockerd")
            .arg("--config-file")
            .arg(self.root.join("daemon.json"))
            .arg("--data-root")
            .arg(self.root.join("data"))
            .arg("--exec-root")
            .arg(self.root.join("exec"))
            .arg("--pidfile")
            .arg(self.root.join("dockerd.pid"))
            .arg("-H")
            .arg(&self.host)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.dockerd = Some(child);
        let started = Instant::now();
        while !self.docker(&["info"]).status.success() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the private Docker engine does not answer:\n{}",
                std::fs::read_to_string(self.root.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops dockerd as a service manager does (SIGTERM: it stops the containers, then exits)
    /// and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.dockerd.take() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
        }
    }

    /// `docker ARGS` against this engine.
    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker").arg("-H").arg(&self.host).args(args).output().unwrap()
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if self.dockerd.is_some() {
            let ids = self.docker(&["ps", "-aq"]);
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = self.docker(&["rm", "-f", "-v", id]);
            }
            let _ = self.docker(&["volume", "prune", "-f"]);
        }
        self.stop();
        // Its containerd and the containers' shims, should any outlive it.
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &self.netns]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).status();
    }
}
