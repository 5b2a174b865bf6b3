//! The one rollout, proven on every target from one suite: start, reloads confirmed by digest,
//! a rolling restart under acknowledged publishing, a failure half-way through a roll (the
//! apply killed once the first server has restarted), and a re-apply converging. Run on the
//! local target, the compose target (the local FROM-scratch image) and the ssh target (hosts in
//! network namespaces, each with its own sshd).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::load::Load;
use crate::ssh_hosts::SshHosts;
use crate::support::{Deployment, ENV, STRIDE, json_of, local_image, nats_server, text};

/// A deployment of the suite's topology on one target.
struct Place {
    target: &'static str,
    /// Where the commands run; the state is under `.notif-infra/` there.
    dir: PathBuf,
    file: PathBuf,
    args: Vec<String>,
    /// The local and compose targets' port range, given to plan and apply.
    port_base: Option<u16>,
    /// The network namespace the operator (notif-infra and the publisher) works from.
    op: Option<String>,
    urls: Vec<String>,
    state: PathBuf,
}

impl Place {
    /// `VERB... FILE` with the target's options (`verb`: the command's words before the file).
    fn command(&self, verb: &[&str]) -> Command {
        let bin = assert_cmd::cargo::cargo_bin("notif-infra");
        let mut cmd = match &self.op {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.current_dir(&self.dir)
            .args(verb)
            .arg(&self.file)
            .args(&self.args)
            .env("NATS_SERVER_BIN", nats_server())
            .env_remove("NOTIF_INFRA_STATE_DIR")
            .env_remove("NOTIF_INFRA_PORT_BASE")
            .env_remove("SSH_AUTH_SOCK");
        if let (Some(base), ["apply" | "plan"]) = (self.port_base, verb) {
            cmd.arg("--port-base").arg(base.to_string());
        }
        for (k, v) in ENV {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, verb: &str, extra: &[&str]) -> Output {
        self.command(&[verb]).args(extra).output().unwrap()
    }

    /// `rotate certs FILE`: new certificates from the deployment's CA.
    fn rotate_certs(&self) -> Output {
        self.command(&["rotate", "certs"]).output().unwrap()
    }

    /// The config each server was last given, as the state records it.
    fn applied(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(&self.state).unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&text)
            .map(|s| s["applied"].clone())
            .unwrap_or_default()
    }
}

fn topology(name: &str, nodes: &str, defaults: &str) -> String {
    format!(
        "name: {name}\ntls:\n  cluster: {{ verify: true }}\n{defaults}regions:\n  main:\n    jetstream: true\n{nodes}accounts:\n  SYS:\n    system: true\n  APP:\n    jetstream: true\n    users:\n      - user: app\n        password: ${{APP_PASS}}\nstreams:\n  EVENTS:\n    subjects: [\"events.>\"]\n    replicas: 3\n"
    )
}

fn actions(out: &Output) -> Vec<(String, String)> {
    json_of(out)["plan"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["server"].as_str().unwrap().to_string(), s["action"].as_str().unwrap().to_string()))
        .collect()
}

/// Applies, asserting that every server of the plan takes `action`, that the result verifies
/// and that nothing is left to do.
fn apply_to_every_server(place: &Place, extra: &[&str], action: &str) {
    let mut args = vec!["-o", "json"];
    args.extend_from_slice(extra);
    let out = place.run("apply", &args);
    assert!(out.status.success(), "{}: {}", place.target, text(&out));
    let taken = actions(&out);
    assert!(
        !taken.is_empty() && taken.iter().all(|(_, a)| a == action),
        "{}: every server should {action}: {taken:?}",
        place.target
    );
    assert_eq!(json_of(&out)["verify"]["ok"], true, "{}", place.target);
    assert_eq!(place.run("plan", &[]).status.code(), Some(0), "{}", place.target);
}

/// The suite, on one place whose topology `write(defaults)` rewrites.
fn suite(place: &Place, write: &dyn Fn(&str), first_apply: &[&str]) {
    let started = Instant::now();
    // Start: every server started, each confirmed by its digest, and verified.
    write("");
    apply_to_every_server(place, first_apply, "start");

    // A reloadable change: every server reloads, confirmed by its new digest.
    write("defaults:\n  max_payload: 2MB\n");
    apply_to_every_server(place, &[], "reload");

    // New certificates: every server takes them without a restart where a reload reads them
    // (a container's file mount does not: there the rollout restarts it), routes re-verified.
    let out = place.rotate_certs();
    assert!(out.status.success(), "{}: {}", place.target, text(&out));
    apply_to_every_server(place, &[], "reload");

    let load = Load::start(place.urls.clone(), place.op.clone());
    std::thread::sleep(Duration::from_millis(500));

    // A change that needs a restart: one server at a time, each healthy before the next.
    write("defaults:\n  max_payload: 2MB\n  jetstream: { max_memory_store: 256MB }\n");
    apply_to_every_server(place, &[], "restart");

    // A failure half-way: apply killed once the first server has its new config.
    write("defaults:\n  max_payload: 2MB\n  jetstream: { max_memory_store: 128MB }\n");
    let before = place.applied();
    let mut apply = place.command(&["apply"]).spawn().unwrap();
    let waited = Instant::now();
    while place.applied() == before {
        assert!(waited.elapsed() < Duration::from_secs(60), "{}: the roll never began", place.target);
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(apply.id() as i32), nix::sys::signal::Signal::SIGKILL);
    apply.wait().unwrap();
    let out = place.run("plan", &["-o", "json"]);
    let left = actions(&out);
    assert!(
        !left.is_empty() && left.len() < 3 && left.iter().all(|(_, a)| a == "restart"),
        "{}: half-way, only the servers not yet rolled are left: {left:?}",
        place.target
    );
    // Re-apply converges.
    let out = place.run("apply", &["-o", "json"]);
    assert!(out.status.success(), "{}: {}", place.target, text(&out));
    assert_eq!(json_of(&out)["verify"]["ok"], true);
    assert_eq!(place.run("plan", &[]).status.code(), Some(0), "{}", place.target);
    std::thread::sleep(Duration::from_millis(300));
    load.stop_and_check(&format!("the {} rollouts", place.target));

    let out = place.run("destroy", &[]);
    assert!(out.status.success(), "{}", text(&out));
    eprintln!("{}: rollout suite in {:.1} s", place.target, started.elapsed().as_secs_f64());
}

fn on_this_machine(d: &Deployment, target: &'static str, args: Vec<String>) {
    let file = d.dir.path().join(format!("{}.yaml", d.name));
    let state = d.state_dir().join("state.json");
    let place = Place {
        target,
        dir: d.dir.path().to_path_buf(),
        file: file.clone(),
        args,
        port_base: Some(d.port_base),
        op: None,
        urls: (0..3).map(|i| format!("nats://127.0.0.1:{}", d.port_base + STRIDE * i)).collect(),
        state,
    };
    let name = d.name.clone();
    suite(
        &place,
        &|defaults| std::fs::write(&file, topology(&name, "    nodes: 3\n", defaults)).unwrap(),
        &[],
    );
}

#[test]
fn the_rollout_on_the_local_target() {
    let mut d = Deployment::new(Path::new("roll.yaml"), "roll", 3);
    d.topology = d.dir.path().join("roll.yaml");
    on_this_machine(&d, "local", Vec::new());
}

#[test]
fn the_rollout_on_the_compose_target() {
    let mut d = Deployment::compose(Path::new("rollc.yaml"), "rollc", 3);
    d.topology = d.dir.path().join("rollc.yaml");
    on_this_machine(
        &d,
        "compose",
        vec!["--target".into(), "compose".into(), "--image".into(), local_image().into()],
    );
}

#[test]
fn the_rollout_on_the_ssh_target() {
    let id = std::process::id() % 100_000;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hosts = SshHosts::new(&format!("rs{id}"), "172.31.251", 3, d);
    let nodes: String = hosts
        .addresses
        .iter()
        .enumerate()
        .map(|(i, address)| {
            let base = d.join(format!("h{i}"));
            format!(
                "      - name: pod-{i}\n        host: {address}\n        ssh: {{ config_dir: {}, data_dir: {}, log_dir: {} }}\n",
                base.join("etc").display(),
                base.join("data").display(),
                base.join("log").display()
            )
        })
        .collect();
    let ssh = format!(
        "ssh:\n  user: root\n  key: {}\n  known_hosts: {}\n  nats_server: {}\n  env:\n    APP_PASS: app-secret\n",
        d.join("id_ed25519").display(),
        d.join("known_hosts").display(),
        nats_server().display()
    );
    let file = d.join("rolls.yaml");
    let place = Place {
        target: "ssh",
        dir: d.to_path_buf(),
        file: file.clone(),
        args: vec!["--target".into(), "ssh".into()],
        port_base: None,
        op: Some(hosts.op.clone()),
        urls: hosts.addresses.iter().map(|a| format!("nats://{a}:4222")).collect(),
        state: d.join(".notif-infra/rolls.ssh/state.json"),
    };
    let write = |defaults: &str| {
        let yaml = topology("rolls", &format!("    nodes:\n{nodes}"), &format!("{ssh}{defaults}"));
        std::fs::write(&file, yaml).unwrap();
    };
    suite(&place, &write, &["--accept-new-host-keys"]);
}
