//! The deployment engine as a user meets it: Ctrl-C (and a kill) at any moment of a rollout,
//! two commands on one deployment at once, and saved plans that go stale.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Deployment, ENV, STRIDE, assert_contains_all, json_of, nats_server, text, topology};

/// Every live nats-server process whose config is in the deployment's `nats/` directory, by
/// server name (the same test the engine uses, from the outside: /proc).
fn processes_of(d: &Deployment) -> Vec<(String, u32)> {
    let conf_dir = std::fs::canonicalize(d.dir.path())
        .unwrap()
        .join(".notif-infra")
        .join(&d.name)
        .join("nats");
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let Some(conf) = args.iter().position(|a| a == "-c").and_then(|i| args.get(i + 1)) else {
            continue;
        };
        let conf = PathBuf::from(conf);
        if conf.parent() == Some(conf_dir.as_path()) && crate::support::alive(pid) {
            found.push((conf.file_stem().unwrap().to_string_lossy().into_owned(), pid));
        }
    }
    found.sort();
    found
}

/// The servers the deployment's state names (applied, or journaled as starting).
fn servers_in_state(d: &Deployment) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(d.state_dir().join("state.json")) else {
        return Vec::new();
    };
    let state: serde_json::Value = serde_json::from_str(&text).expect("the state stays readable after any interruption");
    let mut names: Vec<String> = state["applied"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    names.extend(
        state["starting"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from)),
    );
    names.sort();
    names.dedup();
    names
}

/// `apply` of the deployment as a child process, to be interrupted.
fn spawn_apply(d: &Deployment) -> Child {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("notif-infra"));
    cmd.current_dir(d.dir.path())
        .arg("apply")
        .arg(&d.topology)
        .arg("--port-base")
        .arg(d.port_base.to_string())
        .env("NATS_SERVER_BIN", nats_server())
        .env_remove("NOTIF_INFRA_STATE_DIR")
        .env_remove("NOTIF_INFRA_PORT_BASE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in ENV {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Interrupts an apply of `d` after `moment` with `signal`, then checks what the issue asks:
/// no process the state does not name, a converging apply, a green verify, and a destroy that
/// leaves no process, no port and no file. Returns the orphans found (none, or the test fails).
/// Whether process `pid` handles `signal` itself (its bit in `SigCgt` of /proc/<pid>/status).
fn catches(pid: u32, signal: nix::sys::signal::Signal) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|mask| mask & (1 << (signal as i32 - 1)) != 0)
}

fn interrupt_then_converge(d: &Deployment, moment: Duration, signal: nix::sys::signal::Signal, servers: usize) {
    let child = spawn_apply(d);
    if signal == nix::sys::signal::Signal::SIGINT {
        // Until it registers its handler a process dies of SIGINT like any other, having done
        // nothing (under load that can take longer than the first moment): moments count from there.
        let waited = Instant::now();
        while !catches(child.id(), signal) {
            assert!(waited.elapsed() < Duration::from_secs(10), "apply never handled SIGINT");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    std::thread::sleep(moment);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal);
    let out = child.wait_with_output().unwrap();
    let said = text(&out);
    match signal {
        nix::sys::signal::Signal::SIGINT => assert!(
            matches!(out.status.code(), Some(0) | Some(130)),
            "SIGINT at {moment:?}: exit {:?}\n{said}",
            out.status
        ),
        _ => assert!(
            out.status.code().is_none() || out.status.success(),
            "{signal} at {moment:?}: {said}"
        ),
    }
    if out.status.code() == Some(130) {
        assert_contains_all(&said, &["interrupted: stopped at a safe point", "not done:"]);
    }
    let running = processes_of(d);
    let named = servers_in_state(d);
    let orphans: Vec<&(String, u32)> = running.iter().filter(|(s, _)| !named.contains(s)).collect();
    assert!(
        orphans.is_empty(),
        "{signal} at {moment:?}: processes the state does not name: {orphans:?}\n{said}"
    );

    let out = d.cmd("apply").output().unwrap();
    assert!(
        out.status.success(),
        "apply after {signal} at {moment:?} did not converge:\n{}",
        text(&out)
    );
    assert_eq!(processes_of(d).len(), servers, "{}", text(&out));
    let out = d.cmd("verify").output().unwrap();
    assert!(out.status.success(), "verify after {signal} at {moment:?}:\n{}", text(&out));

    let out = d.cmd("destroy").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        processes_of(d).is_empty(),
        "destroy after {signal} at {moment:?} left {:?}",
        processes_of(d)
    );
    assert_eq!(crate::support::left_after_destroy(&d.state_dir()), Vec::<String>::new());
    let base = d.port_base;
    for port in (base..base + STRIDE * servers as u16).step_by(STRIDE as usize) {
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(), "port {port} still taken");
    }
}

/// Moments spread over a whole supercluster bring-up (about 5 s here).
const BRING_UP_MOMENTS_MS: &[u64] = &[20, 60, 120, 200, 300, 450, 650, 900, 1300, 2000];

fn supercluster_interrupted(signal: nix::sys::signal::Signal) {
    let d = Deployment::new(&topology("supercluster"), "supercluster", 7);
    let started = Instant::now();
    for ms in BRING_UP_MOMENTS_MS {
        interrupt_then_converge(&d, Duration::from_millis(*ms), signal, 7);
    }
    eprintln!(
        "{signal}: {} moments of a supercluster bring-up, 0 orphans, {:.1} s",
        BRING_UP_MOMENTS_MS.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn ctrl_c_at_any_moment_of_a_bring_up_leaves_nothing_unknown_and_apply_converges() {
    supercluster_interrupted(nix::sys::signal::Signal::SIGINT);
}

#[test]
fn a_kill_at_any_moment_of_a_bring_up_leaves_nothing_unknown_and_apply_converges() {
    supercluster_interrupted(nix::sys::signal::Signal::SIGKILL);
}

/// An add-node rollout (a start and two reloads) interrupted at moments across it.
#[test]
fn an_interrupted_add_node_rollout_converges() {
    let mut d = Deployment::new(&topology("dev"), "grow", 4);
    let file = d.dir.path().join("grow.yaml");
    let original = std::fs::read_to_string(topology("dev")).unwrap().replace("name: dev", "name: grow");
    d.topology = file.clone();
    let mut moments = 0;
    for signal in [nix::sys::signal::Signal::SIGINT, nix::sys::signal::Signal::SIGKILL] {
        for ms in [10u64, 40, 90, 160, 260] {
            std::fs::write(&file, &original).unwrap();
            let out = d.cmd("apply").output().unwrap();
            assert!(out.status.success(), "{}", text(&out));
            let out = crate::support::notif_infra(d.dir.path())
                .args(["add", "node", "grow.yaml", "main"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out));
            interrupt_then_converge(&d, Duration::from_millis(ms), signal, 4);
            moments += 1;
        }
    }
    eprintln!("{moments} moments of an add-node rollout, 0 orphans");
}

#[test]
fn two_commands_on_one_deployment_one_proceeds_the_other_names_the_lock_holder() {
    let d = Deployment::new(&topology("dev"), "dev", 3);
    // Two applies at the same moment.
    let (a, b) = (spawn_apply(&d), spawn_apply(&d));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let outcomes = [&a, &b];
    let ok = outcomes.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "exactly one apply proceeds:\n{}\n---\n{}", text(&a), text(&b));
    let refused = outcomes.iter().find(|o| !o.status.success()).unwrap();
    assert_contains_all(&text(refused), &["is locked by pid", "`apply ", "--lock-timeout"]);
    let out = d.cmd("plan").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "the state stays readable and the apply whole:\n{}",
        text(&out)
    );

    // An apply and a destroy at the same moment: one proceeds, the other names it.
    let apply = spawn_apply(&d);
    let destroy = d.cmd("destroy").output().unwrap();
    let apply = apply.wait_with_output().unwrap();
    let failures: Vec<String> = [&apply, &destroy].iter().filter(|o| !o.status.success()).map(|o| text(o)).collect();
    assert!(failures.len() <= 1, "{failures:?}");
    for f in &failures {
        assert_contains_all(f, &["is locked by pid"]);
    }
    let out = d.cmd("plan").output().unwrap();
    assert!(matches!(out.status.code(), Some(0) | Some(2)), "{}", text(&out));

    // With --lock-timeout the second waits for the first instead.
    let first = spawn_apply(&d);
    std::thread::sleep(Duration::from_millis(50));
    let second = d.cmd("destroy").args(["--lock-timeout", "60"]).output().unwrap();
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    assert!(second.status.success(), "{}", text(&second));
    assert!(processes_of(&d).is_empty());
}

#[test]
fn a_saved_plan_is_applied_exactly_or_refused_when_stale() {
    let mut d = Deployment::new(&topology("dev"), "saved", 3);
    let file = d.dir.path().join("saved.yaml");
    let original = std::fs::read_to_string(topology("dev"))
        .unwrap()
        .replace("name: dev", "name: saved");
    std::fs::write(&file, &original).unwrap();
    d.topology = file.clone();
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let planfile = d.dir.path().join("change.plan");
    let make_plan = || {
        let out = d.cmd("plan").arg("--out").arg(&planfile).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&planfile).unwrap().permissions().mode() & 0o777, 0o600);
        let saved = std::fs::read_to_string(&planfile).unwrap();
        assert!(crate::support::leaked_secrets(&saved).is_empty(), "a plan file holds no secret");
    };
    let apply_saved = || {
        crate::support::notif_infra(d.dir.path())
            .arg("apply")
            .arg(&planfile)
            .args(["-o", "json"])
            .output()
            .unwrap()
    };
    let conf = d.state_dir().join("nats/main-1.conf");
    let changed = original.replace("name: saved\n", "name: saved\ndefaults:\n  max_payload: 2MB\n");
    assert_ne!(changed, original, "the dev topology's name line moved: update this test");

    // The topology changes after the plan: refused, naming it, and nothing changes.
    std::fs::write(&file, &changed).unwrap();
    make_plan();
    std::fs::write(&file, changed.replace("2MB", "4MB")).unwrap();
    let before = std::fs::read_to_string(&conf).unwrap();
    let out = apply_saved();
    assert!(!out.status.success());
    assert_contains_all(
        &text(&out),
        &[
            "is stale, so nothing was changed",
            "saved.yaml` changed",
            "file nats/main-1.conf renders differently",
        ],
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), before);

    // A server dies after the plan: refused, naming the server.
    std::fs::write(&file, &changed).unwrap();
    make_plan();
    let pid = d.pid("main-2").unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    while crate::support::alive(pid) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = apply_saved();
    assert!(!out.status.success());
    assert_contains_all(
        &text(&out),
        &["is stale", "server main-2 was running sha256:", "and is not running now"],
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), before);

    // Unchanged since the plan: exactly the saved plan is carried out.
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(&file, &original).unwrap();
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(&file, &changed).unwrap();
    make_plan();
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&planfile).unwrap()).unwrap();
    let out = apply_saved();
    assert!(out.status.success(), "{}", text(&out));
    let applied = json_of(&out);
    assert_eq!(applied["plan"]["servers"], saved["plan"]["servers"]);
    assert_eq!(applied["plan"]["files"], saved["plan"]["files"]);
    assert_ne!(
        std::fs::read_to_string(&conf).unwrap(),
        before,
        "the saved change reached the server's config"
    );
    let out = d.cmd("plan").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_second_interrupt_aborts_at_once_and_the_next_apply_converges() {
    let d = Deployment::new(&topology("supercluster"), "twice", 7);
    let child = spawn_apply(&d);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // Into the bring-up, where the rollout waits on the servers: the first interrupt asks for
    // a safe point, the second does not wait for it.
    std::thread::sleep(Duration::from_millis(400));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
    let out = child.wait_with_output().unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(130), "{said}");
    if !said.contains("interrupted: stopped at a safe point") {
        assert_contains_all(&said, &["interrupted again: aborting now"]);
    }
    let named = servers_in_state(&d);
    assert!(processes_of(&d).iter().all(|(s, _)| named.contains(s)), "{said}");
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = d.cmd("destroy").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(processes_of(&d).is_empty());
}
