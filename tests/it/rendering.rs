//! Rendered configs: snapshot per topology, accepted by the real `nats-server -t`, deterministic.

use nkeys::KeyPair;
use notif_infra::desired::{self, Addressing};
use notif_infra::material::{KeyId, Keys, NkeyPair};
use sha2::{Digest, Sha256};

use crate::support::{ENV, nats_server, notif_infra, project_root};

fn shipped_topologies() -> Vec<(String, std::path::PathBuf)> {
    let mut all: Vec<_> = std::fs::read_dir(project_root().join("topologies"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    all.sort();
    assert!(all.len() >= 7, "the shipped topologies are missing");
    all
}

/// Keys derived from their names, so snapshots do not change from run to run.
fn fixed_keys(topology: &str, ids: &[KeyId]) -> Keys {
    ids.iter()
        .map(|id| {
            let raw: [u8; 32] = Sha256::digest(format!("{topology}/{}", id.file_stem())).into();
            let pair = KeyPair::new_from_raw(id.kind(), raw).unwrap();
            (
                id.clone(),
                NkeyPair {
                    public: pair.public_key(),
                    seed: pair.seed().unwrap(),
                },
            )
        })
        .collect()
}

#[test]
fn rendered_configs_match_their_snapshots() {
    for (name, path) in shipped_topologies() {
        let loaded = notif_infra::topology::load(&path).unwrap();
        let t = &loaded.topology;
        let keys = fixed_keys(&t.name, &notif_infra::material::needed_keys(t));
        // Fixed keys and issue time: the JWTs come out the same on every run.
        let issued = notif_infra::material::auth::issue(t, &keys, &std::collections::BTreeMap::new(), 1_800_000_000).unwrap();
        let material = desired::Material {
            keys: &keys,
            certs: &Default::default(),
            issued: issued.as_ref(),
            tree: std::path::Path::new("/out"),
        };
        let files = desired::render_files(&desired::build(t, &Addressing::Declared, &material)).unwrap();
        // Credentials files hold seeds: they are checked by the tests that use them, not kept here.
        for f in files.iter().filter(|f| f.path.extension().is_none_or(|e| e != "creds")) {
            let snapshot = format!(
                "{name}__{}",
                f.path.to_string_lossy().trim_start_matches("nats/").replace(['.', '/'], "_")
            );
            insta::assert_snapshot!(snapshot, f.content);
        }
    }
}

#[test]
fn rendered_ansible_inventories_match_their_snapshots() {
    for (name, path) in shipped_topologies() {
        let t = notif_infra::topology::load(&path).unwrap().topology;
        insta::assert_snapshot!(format!("{name}__ansible_inventory"), desired::hosts::inventory(&t).content);
    }
}

#[test]
fn rendered_monitoring_files_match_their_snapshots() {
    for (name, path) in shipped_topologies() {
        let t = notif_infra::topology::load(&path).unwrap().topology;
        insta::assert_snapshot!(format!("{name}__alerts"), desired::monitoring::alerts_file(&t).content);
        for f in desired::monitoring::scrape_files(&t)
            .iter()
            .filter(|f| f.path.ends_with("prometheus-local.yml"))
        {
            insta::assert_snapshot!(format!("{name}__prometheus_local"), f.content);
        }
    }
}

#[test]
fn every_rendered_config_passes_nats_server_check() {
    for (name, path) in shipped_topologies() {
        let dir = tempfile::tempdir().unwrap();
        let out = notif_infra(dir.path())
            .args(["render"])
            .arg(&path)
            .args(["--out", "out"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let confs: Vec<_> = std::fs::read_dir(dir.path().join("out/nats"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            // The shared files are checked as part of the configs that include them.
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('_'))
            .collect();
        assert!(!confs.is_empty(), "{name}: nothing rendered");
        let out_dir = dir.path().join("out");
        for conf in confs {
            // Certificates and creds sit under /etc/nats on the hosts; here, in the output tree.
            let text = std::fs::read_to_string(&conf)
                .unwrap()
                .replace("\"/etc/nats/", &format!("\"{}/", out_dir.display()));
            let local = conf.with_extension("local.conf");
            std::fs::write(&local, text).unwrap();
            let mut check = std::process::Command::new(nats_server());
            check.arg("-t").arg("-c").arg(&local);
            for (k, v) in ENV {
                check.env(k, v);
            }
            let result = check.output().unwrap();
            assert!(
                result.status.success(),
                "{}: {}",
                conf.display(),
                String::from_utf8_lossy(&result.stderr)
            );
        }
    }
}

#[test]
fn render_is_deterministic_and_keeps_secrets_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let topo = project_root().join("topologies/supercluster.yaml");
    notif_infra(dir.path()).arg("render").arg(&topo).assert().success();
    let first = crate::support::files_in(&dir.path().join("out/supercluster/nats"));
    notif_infra(dir.path()).arg("render").arg(&topo).assert().success();
    assert_eq!(
        first,
        crate::support::files_in(&dir.path().join("out/supercluster/nats")),
        "a second render changed bytes"
    );
    let mode = |p: &str| std::fs::metadata(dir.path().join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode("out/supercluster/nats/edge.conf"),
        0o600,
        "the leaf config holds its link seed"
    );
    assert_eq!(mode("out/supercluster/nats/east-1.conf"), 0o644);
    assert_eq!(mode("out/supercluster/auth/nkeys/leaf-edge.nk"), 0o600);
    assert_eq!(mode("out/supercluster/auth/nkeys/probe-APP.nk"), 0o600);
}

#[test]
fn init_writes_every_example_and_each_validates() {
    for (name, _) in shipped_topologies() {
        let dir = tempfile::tempdir().unwrap();
        notif_infra(dir.path())
            .args(["init", "t.yaml", "--example", &name])
            .assert()
            .success();
        notif_infra(dir.path()).args(["validate", "t.yaml"]).assert().success();
        // An existing file is not overwritten without --force.
        notif_infra(dir.path())
            .args(["init", "t.yaml", "--example", &name])
            .assert()
            .failure();
    }
    let dir = tempfile::tempdir().unwrap();
    let out = notif_infra(dir.path()).args(["init", "--example", "supercluser"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `supercluster`?"));
}

/// A render right after a render changes nothing, so `render --dry-run` can gate CI (0: no
/// changes); a command line notif-infra cannot read exits 64, never plan's 2 for "changes".
#[test]
fn a_dry_run_after_render_is_clean_and_a_usage_error_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let render = |extra: &[&str]| {
        notif_infra(dir.path())
            .args(["render", "--out", "out"])
            .args(extra)
            .arg(crate::support::topology("rsfga"))
            .output()
            .unwrap()
    };
    let first = render(&[]);
    assert!(first.status.success(), "{}", crate::support::text(&first));
    let again = render(&["--dry-run"]);
    assert_eq!(again.status.code(), Some(0), "{}", crate::support::text(&again));

    let usage = notif_infra(dir.path())
        .args(["plan", "--target", "kubernetes"])
        .arg(crate::support::topology("dev"))
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(64), "{}", crate::support::text(&usage));
    let help = notif_infra(dir.path()).arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
}

/// Shell completions and manual pages come from the CLI definition: the bash script parses and
/// completes every command; one page per command, each well formed where groff is installed.
/// Durations on the command line read as in the file (`2s`) or as seconds.
#[test]
fn completions_man_pages_and_duration_flags_follow_the_cli_definition() {
    let dir = tempfile::tempdir().unwrap();
    let out = notif_infra(dir.path()).args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let script = dir.path().join("notif-infra.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let parse = std::process::Command::new("bash").arg("-n").arg(&script).output().unwrap();
    assert!(parse.status.success(), "{}", String::from_utf8_lossy(&parse.stderr));
    let script = String::from_utf8_lossy(&out.stdout);
    for word in ["apply", "plan", "verify", "destroy", "--purge-keys", "--target", "--context"] {
        assert!(script.contains(word), "the completion script lacks {word}");
    }

    let pages = dir.path().join("man1");
    let out = notif_infra(dir.path()).args(["man", "--dir"]).arg(&pages).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for command in [
        "notif-infra",
        "notif-infra-apply",
        "notif-infra-plan",
        "notif-infra-destroy",
        "notif-infra-restore",
    ] {
        let page = pages.join(format!("{command}.1"));
        let roff = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(roff.contains(&format!(".TH {command} 1")), "{roff}");
        if let Ok(groff) = std::process::Command::new("groff")
            .args(["-man", "-Tutf8", "-z", "-ww"])
            .arg(&page)
            .output()
        {
            assert!(
                groff.status.success() && groff.stderr.is_empty(),
                "{command}: {}",
                String::from_utf8_lossy(&groff.stderr)
            );
        }
    }

    let dev = crate::support::topology("dev");
    let out = notif_infra(dir.path())
        .arg("verify")
        .arg(&dev)
        .args(["--timeout", "ten"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`ten`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for timeout in ["1s", "0.5", "1m"] {
        let out = notif_infra(dir.path())
            .arg("verify")
            .arg(&dev)
            .args(["--timeout", timeout])
            .output()
            .unwrap();
        // Not applied here: the run gets past the flags and says so.
        assert_eq!(out.status.code(), Some(1), "{timeout}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("is not applied"), "{timeout}");
    }
}
