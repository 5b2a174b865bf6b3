//! The one rollout, proven on every target from one suite: start, reloads confirmed by digest,
//! a rolling restart under acknowledged publishing, a failure half-way through a roll (the
//! apply killed once the first server has restarted), and a re-apply converging. Run on the
//! local target, the compose target (the local FROM-scratch image) and the ssh target (hosts in
//! network namespaces, each with its own sshd).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::docker_engine::PrivateEngine;
use crate::load::Load;
use crate::ssh_hosts::{SshHosts, monitoring};
use crate::support::{Deployment, ENV, STRIDE, files_under, json_of, local_image, nats_server, text};

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
    /// More environment for notif-infra (DOCKER_HOST for a private engine).
    env: Vec<(String, String)>,
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
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
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
        env: Vec::new(),
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

/// The suite's deployment named `name` on `hosts`, and what rewrites its topology.
fn on_ssh_hosts<'a>(d: &'a Path, hosts: &SshHosts, name: &'a str) -> (Place, impl Fn(&str) + 'a) {
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
    let file = d.join(format!("{name}.yaml"));
    let place = Place {
        target: "ssh",
        dir: d.to_path_buf(),
        file: file.clone(),
        args: vec!["--target".into(), "ssh".into()],
        port_base: None,
        op: Some(hosts.op.clone()),
        urls: hosts.addresses.iter().map(|a| format!("nats://{a}:4222")).collect(),
        state: d.join(format!(".notif-infra/{name}.ssh/state.json")),
        env: Vec::new(),
    };
    let write = move |defaults: &str| {
        let yaml = topology(name, &format!("    nodes:\n{nodes}"), &format!("{ssh}{defaults}"));
        std::fs::write(&file, yaml).unwrap();
    };
    (place, write)
}

#[test]
fn the_rollout_on_the_ssh_target() {
    let id = std::process::id() % 100_000;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hosts = SshHosts::new(&format!("rs{id}"), "172.31.251", 3, d);
    let (place, write) = on_ssh_hosts(d, &hosts, "rolls");
    suite(&place, &write, &["--accept-new-host-keys"]);
}

/// Spawns `apply` with `extra`, its standard error in `err`.
fn spawn_apply(place: &Place, extra: &[&str], err: &Path) -> std::process::Child {
    place
        .command(&["apply"])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(err).unwrap())
        .spawn()
        .unwrap()
}

/// Waits until the state records a new config for one of the servers; returns its name.
fn first_rolled(place: &Place, before: &serde_json::Value) -> String {
    let waited = Instant::now();
    loop {
        let now = place.applied();
        if let Some((name, _)) = now
            .as_object()
            .into_iter()
            .flatten()
            .find(|(k, v)| before.get(k.as_str()) != Some(*v))
        {
            return name.clone();
        }
        assert!(waited.elapsed() < Duration::from_secs(60), "the roll never began");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Host loss during a roll on the ssh target. Once the first server has restarted, the last
/// host is cut off (its link down). The next restart waits: with one of three servers away,
/// restarting another would leave the R3 stream and the meta group without a quorum. Back
/// within the wait, the roll finishes by itself. Away longer than `--timeout`, the roll stops
/// naming the host and the step; the server already rolled runs its new config, the state
/// says what was done, every host holds whole files; once the host is back a re-apply finishes
/// the roll. No acknowledged message is lost throughout.
#[test]
fn a_host_cut_off_during_a_roll_on_the_ssh_target() {
    let id = std::process::id() % 100_000;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hosts = SshHosts::new(&format!("rc{id}"), "172.31.250", 3, d);
    let (place, write) = on_ssh_hosts(d, &hosts, "cutoff");
    write("");
    apply_to_every_server(&place, &["--accept-new-host-keys"], "start");
    let load = Load::start(place.urls.clone(), place.op.clone());
    std::thread::sleep(Duration::from_millis(500));
    let err = d.join("apply.err");
    let said = || std::fs::read_to_string(&err).unwrap_or_default();

    // Cut off for 4 s: the roll waits, then finishes by itself.
    write("defaults:\n  jetstream: { max_memory_store: 256MB }\n");
    let before = place.applied();
    let mut apply = spawn_apply(&place, &[], &err);
    let first = first_rolled(&place, &before);
    assert_eq!(first, "pod-0", "the roll goes in name order");
    hosts.cut_off(2, true);
    let cut = Instant::now();
    while !said().contains("waits for pod-2") {
        assert!(
            cut.elapsed() < Duration::from_secs(20),
            "the roll did not wait for pod-2:\n{}",
            said()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let detected = cut.elapsed();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        place.applied()["pod-1"],
        before["pod-1"],
        "pod-1 restarted while pod-2 was cut off:\n{}",
        said()
    );
    hosts.cut_off(2, false);
    let back = Instant::now();
    let status = apply.wait().unwrap();
    let finished = back.elapsed();
    assert!(status.success(), "{}", said());
    assert_eq!(place.run("plan", &[]).status.code(), Some(0));
    eprintln!(
        "host cut off mid-roll: the wait began {:.2} s after the cut; the roll finished {:.1} s after the host came back",
        detected.as_secs_f64(),
        finished.as_secs_f64()
    );

    // Cut off for longer than --timeout: the roll stops there, and a re-apply finishes it.
    write("defaults:\n  jetstream: { max_memory_store: 128MB }\n");
    let before = place.applied();
    let mut apply = spawn_apply(&place, &["--timeout", "5s"], &err);
    assert_eq!(first_rolled(&place, &before), "pod-0");
    hosts.cut_off(2, true);
    let cut = Instant::now();
    let status = apply.wait().unwrap();
    let stopped = cut.elapsed();
    let message = said();
    assert_eq!(status.code(), Some(1), "{message}");
    for expected in [
        "the roll stopped at `restart pod-1`",
        "its peer pod-2 at 172.31.250.3",
        "done: files, restart pod-0",
        "not done: restart pod-1, restart pod-2, JetStream",
    ] {
        assert!(message.contains(expected), "{expected:?} not in:\n{message}");
    }
    let applied = place.applied();
    assert_ne!(applied["pod-0"], before["pod-0"], "the state records pod-0's roll");
    assert_eq!(applied["pod-1"], before["pod-1"]);
    assert_eq!(applied["pod-2"], before["pod-2"]);
    // The rolled server runs its new config, the next one its old: both serve.
    for (i, limit) in [(0, 128u64 << 20), (1, 256 << 20)] {
        let varz = monitoring(&hosts.op, &hosts.addresses[i], "/varz");
        assert_eq!(varz["jetstream"]["config"]["max_memory"], limit, "pod-{i}");
    }
    let half_written: Vec<PathBuf> = files_under(d)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".notif-infra-tmp"))
        .collect();
    assert!(half_written.is_empty(), "{half_written:?}");

    hosts.cut_off(2, false);
    let out = place.run("plan", &["-o", "json"]);
    let left = actions(&out);
    assert_eq!(
        left,
        [
            ("pod-1".to_string(), "restart".to_string()),
            ("pod-2".to_string(), "restart".to_string())
        ]
    );
    let again = Instant::now();
    let out = place.run("apply", &["-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json_of(&out)["verify"]["ok"], true);
    assert_eq!(place.run("plan", &[]).status.code(), Some(0));
    eprintln!(
        "host cut off past --timeout 5s: the roll stopped {:.1} s after the cut; the re-apply finished it in {:.1} s",
        stopped.as_secs_f64(),
        again.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_millis(300));
    load.stop_and_check("a roll with a host cut off");
    assert!(place.run("destroy", &[]).status.success());
}

/// The compose target through a restart of its Docker engine (a private engine, so that no
/// other test's containers go with it). While the engine is down verify names every server as
/// unreachable; once it is back, apply brings the project to verified, and every message the
/// publisher had acknowledged is still in the R3 stream (file storage on named volumes).
#[test]
fn the_compose_target_through_a_docker_engine_restart() {
    let id = std::process::id() % 100_000;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut engine = PrivateEngine::new(&format!("de{id}"), d);
    let port_base = 4222;
    let file = d.join("restart.yaml");
    std::fs::write(&file, topology("restart", "    nodes: 3\n", "")).unwrap();
    let place = Place {
        target: "compose",
        dir: d.to_path_buf(),
        file,
        args: vec!["--target".into(), "compose".into(), "--image".into(), local_image().into()],
        port_base: Some(port_base),
        op: Some(engine.netns.clone()),
        urls: (0..3).map(|i| format!("nats://127.0.0.1:{}", port_base + STRIDE * i)).collect(),
        state: d.join(".notif-infra/restart.compose/state.json"),
        env: vec![("DOCKER_HOST".into(), engine.host.clone())],
    };
    apply_to_every_server(&place, &[], "start");
    let load = Load::start(place.urls.clone(), place.op.clone());
    std::thread::sleep(Duration::from_secs(1));

    let stopping = Instant::now();
    engine.stop();
    let stopped = stopping.elapsed();
    let out = place.run("verify", &["-o", "json", "--timeout", "2s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let nodes = json_of(&out)["nodes"].clone();
    let down: Vec<&str> = nodes
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["healthy"] == false && n["detail"].as_str().is_some_and(|d| d.contains("127.0.0.1")))
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(down.len(), 3, "verify names every server as down: {nodes}");

    let starting = Instant::now();
    engine.start();
    let out = place.run("apply", &["-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json_of(&out)["verify"]["ok"], true);
    let recovered = starting.elapsed();
    let taken = actions(&out);
    assert_eq!(place.run("plan", &[]).status.code(), Some(0));
    std::thread::sleep(Duration::from_millis(500));
    load.stop_and_check("a Docker engine restart under the compose target");
    eprintln!(
        "Docker engine restart: the engine stopped its containers in {:.1} s; from its start to verified {:.1} s (apply took {taken:?})",
        stopped.as_secs_f64(),
        recovered.as_secs_f64()
    );
    assert!(place.run("destroy", &[]).status.success());
}
