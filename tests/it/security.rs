//! TLS and operator mode on live servers: `topologies/secure.yaml` (TLS on every listener,
//! mutual TLS between servers, accounts ACME and PARTNER as JWTs, a leafnode bound to ACME),
//! checked through the monitoring endpoints, a client in another language (nats-py) and a
//! certificate rotation; and client-certificate verification on its own topology.

use crate::support::{Deployment, STRIDE, assert_contains_all, files_in, get_json_tls, json_of, leaked_secrets, python, text, topology};

/// Slots of secure.yaml's servers on the local target: east-1..3, west-1, edge.
const EAST_1: u16 = 0;
const EDGE: u16 = 4;

fn https_monitor(d: &Deployment, slot: u16, path: &str) -> serde_json::Value {
    let url = format!("https://127.0.0.1:{}{path}", d.port_base + STRIDE * slot + 4);
    get_json_tls(&url, &d.state_dir().join("pki/ca.pem"))
}

fn client_url(d: &Deployment, slot: u16) -> String {
    format!("tls://127.0.0.1:{}", d.port_base + STRIDE * slot)
}

/// A topology written in a test, applied on the local target. The deployment comes first so
/// it is destroyed before its topology file goes.
fn applied(yaml: &str, name: &str) -> (Deployment, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    let d = Deployment::new(&file, name, 1);
    let out = d.cmd("apply").timeout(std::time::Duration::from_secs(60)).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    (d, dir)
}

/// A CI step: connect as ACME's user from the variables `apply --env-file` wrote, round-trip a
/// request to itself.
const CI_STEP: &str = r#"
import asyncio, os, ssl, nats
async def main():
    nc = await nats.connect(os.environ["NATS_URL"].split(","), user_credentials=os.environ["NATS_CREDS_ACME_ACME_APP"],
                            tls=ssl.create_default_context(cafile=os.environ["NATS_CA"]))
    sub = await nc.subscribe("orders.ci")
    await nc.publish("orders.ci", b"ok")
    msg = await sub.next_msg(timeout=2)
    assert msg.data == b"ok"
    await nc.close()
asyncio.run(main())
"#;

/// Runs the nats-py client checks against the deployment; every one must pass.
fn nats_py_checks(d: &Deployment, when: &str) {
    let out = python()
        .arg(crate::support::project_root().join("tests/clients/secure_clients.py"))
        .arg(d.state_dir())
        .arg(client_url(d, EAST_1))
        .arg(client_url(d, EDGE))
        .output()
        .unwrap();
    let findings: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{when}: nats-py checks printed no report ({e}): {}", text(&out)));
    assert!(out.status.success(), "{when}: nats-py checks failed: {findings:#}");
    for check in [
        "anonymous_rejected",
        "import_delivers",
        "partner_sees_only_the_import",
        "acme_never_sees_partner",
        "publish_violation",
        "subscribe_violation",
        "jetstream_publish",
        "jetstream_account_limits",
        "leaf_to_hub",
    ] {
        assert_eq!(findings[check]["ok"], true, "{when}: {check}: {findings:#}");
    }
}

#[test]
fn secure_topology_encrypts_every_listener_and_isolates_tenants() {
    let d = Deployment::new(&topology("secure"), "secure", 5);
    let mut printed = String::new();
    let mut run = |cmd: &mut assert_cmd::Command, expect_code: i32| {
        let out = cmd.timeout(std::time::Duration::from_secs(120)).output().unwrap();
        printed += &text(&out);
        assert_eq!(out.status.code(), Some(expect_code), "{}", text(&out));
        out
    };

    // plan shows the diffs of what it would write; 2: changes.
    run(&mut d.cmd("plan"), 2);
    let env_file = d.dir.path().join("ci.env");
    let applied = run(d.cmd("apply").args(["-o", "json"]).arg("--env-file").arg(&env_file), 0);
    let report = json_of(&applied);
    assert_eq!(report["verify"]["ok"], true, "{report:#}");

    // A later CI step reaches the deployment with nothing but the variables apply wrote.
    let vars: Vec<(String, String)> = std::fs::read_to_string(&env_file)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "NATS_URL",
            "NATS_MONITOR_URLS",
            "NATS_CA",
            "NATS_CREDS_ACME_ACME_APP",
            "NATS_CREDS_PARTNER_PARTNER_APP"
        ]
    );
    let step = python().envs(vars).args(["-c", CI_STEP]).output().unwrap();
    assert!(step.status.success(), "a CI step could not use the environment: {}", text(&step));

    // `output` gives every user its natscli context, without verifying again; a client that
    // has only that context (every node's URL, the creds, the CA) publishes and receives.
    let access = json_of(&run(&mut d.cmd("output"), 0));
    assert_eq!(access["format_version"], 1);
    let users: Vec<String> = access["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| format!("{}/{}", u["account"].as_str().unwrap(), u["user"].as_str().unwrap()))
        .collect();
    assert_eq!(users, ["ACME/acme-app", "PARTNER/partner-app"], "{access:#}");
    let context = &access["users"][0]["context"];
    assert_eq!(
        context["url"].as_str().unwrap().split(',').count(),
        4,
        "every node of east and west: {context}"
    );
    let from_context = [
        ("NATS_URL".to_string(), context["url"].as_str().unwrap().to_string()),
        (
            "NATS_CREDS_ACME_ACME_APP".to_string(),
            context["creds"].as_str().unwrap().to_string(),
        ),
        ("NATS_CA".to_string(), context["ca"].as_str().unwrap().to_string()),
    ];
    let step = python().envs(from_context).args(["-c", CI_STEP]).output().unwrap();
    assert!(
        step.status.success(),
        "a client with only the context could not connect: {}",
        text(&step)
    );
    // Certificate expiry as a monitoring check: each server's certificate has 364 days left,
    // OK by default, a WARNING when warned about a year ahead, CRITICAL two years ahead.
    let nagios = run(d.cmd("verify").args(["--format", "nagios"]), 0);
    assert!(
        String::from_utf8_lossy(&nagios.stdout).starts_with("OK notif-infra secure"),
        "{}",
        text(&nagios)
    );
    let warned = run(d.cmd("verify").args(["--format", "nagios", "--warn-cert-days", "400"]), 1);
    assert!(
        String::from_utf8_lossy(&warned.stdout).contains("certificate east-1: its certificate expires in 364 day(s)"),
        "{}",
        text(&warned)
    );
    run(d.cmd("verify").args(["--format", "nagios", "--crit-cert-days", "730"]), 2);
    let metrics = run(d.cmd("verify").args(["--format", "prometheus"]), 0);
    assert!(
        String::from_utf8_lossy(&metrics.stdout).contains(
            "notif_infra_check_certificate_expiry_days{topology=\"secure\",target=\"local\",kind=\"certificate\",subject=\"edge\"} 364"
        ),
        "{}",
        text(&metrics)
    );
    let env = run(d.cmd("output").args(["-o", "env"]), 0);
    assert!(
        String::from_utf8_lossy(&env.stdout)
            .lines()
            .any(|l| l.starts_with("NATS_CREDS_PARTNER_PARTNER_APP=/"))
    );

    // Every listener requires TLS; servers verify each other; gateways negotiate TLS.
    let varz = https_monitor(&d, EAST_1, "/varz");
    assert_eq!(varz["tls_required"], true, "client listener: {varz:#}");
    for listener in ["cluster", "gateway", "leaf"] {
        assert_eq!(varz[listener]["tls_required"], true, "{listener}");
        assert_eq!(varz[listener]["tls_verify"], true, "{listener}");
    }
    let gatewayz = https_monitor(&d, EAST_1, "/gatewayz");
    let tls_version = gatewayz["outbound_gateways"]["west"]["connection"]["tls_version"].as_str();
    assert!(tls_version.is_some_and(|v| v.starts_with("1.")), "{gatewayz:#}");
    // The leafnode is connected with its creds on ACME (the account's public key).
    let acme = std::fs::read_to_string(d.state_dir().join("auth/jwt/ACME.jwt")).unwrap();
    let acme_pub = notif_infra::material::jwt::verified_claims(&acme).unwrap()["sub"]
        .as_str()
        .unwrap()
        .to_string();
    let leafz = https_monitor(&d, EDGE, "/leafz");
    assert_eq!(leafz["leafs"][0]["account"], acme_pub.as_str(), "{leafz:#}");

    // Clients written in Python, with nothing but the generated creds and CA.
    nats_py_checks(&d, "after apply");

    // A second apply re-signs nothing: every JWT and creds file stays byte for byte.
    let jwts = files_in(&d.state_dir().join("auth/jwt"));
    let creds = files_in(&d.state_dir().join("auth/ACME"));
    run(&mut d.cmd("plan"), 0);
    run(&mut d.cmd("apply"), 0);
    assert_eq!(files_in(&d.state_dir().join("auth/jwt")), jwts);
    assert_eq!(files_in(&d.state_dir().join("auth/ACME")), creds);

    // Rotation: new certificates, served after a reload (same processes), clients reconnect.
    let pid_before = d.pid("east-1").unwrap();
    let not_after = varz["tls_cert_not_after"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let rotated = run(
        crate::support::notif_infra(d.dir.path()).args(["rotate", "certs"]).arg(&d.topology),
        0,
    );
    assert_contains_all(&text(&rotated), &["pki/east-1.pem", "5 certificate(s) issued"]);
    let plan = run(&mut d.cmd("plan"), 2);
    assert_contains_all(&text(&plan), &["reload  east-1", "TLS certificate replaced"]);
    let applied = run(d.cmd("apply").args(["-o", "json"]), 0);
    assert_eq!(json_of(&applied)["verify"]["ok"], true);
    assert_eq!(d.pid("east-1"), Some(pid_before), "rotation must not restart the server");
    let varz = https_monitor(&d, EAST_1, "/varz");
    assert_ne!(
        varz["tls_cert_not_after"].as_str().unwrap(),
        not_after,
        "the server still serves the old certificate"
    );
    nats_py_checks(&d, "after rotation");

    // No command printed a seed or a private key.
    assert_eq!(leaked_secrets(&printed), Vec::<String>::new());
    let logs = d.state_dir().join("logs");
    for (name, content) in files_in(&logs) {
        assert_eq!(leaked_secrets(&String::from_utf8_lossy(&content)), Vec::<String>::new(), "{name}");
    }
}

const CLIENT_VERIFY: &str = r#"
name: mtls
regions:
  main:
    nodes: 1
tls:
  client: { verify: true }
  monitor: true
operator:
  name: op
accounts:
  SYS: { system: true }
  APP:
    users:
      - user: svc
        client_cert: true
"#;

#[test]
fn client_certificates_are_required_when_clients_are_verified() {
    let (d, dir) = applied(CLIENT_VERIFY, "mtls");
    let state = d.state_dir();
    let url = client_url(&d, 0);
    let pki = state.join("pki");
    let creds = std::fs::read_to_string(state.join("auth/APP/svc.creds")).unwrap();

    // A rogue certificate: right shape, signed by nobody the server trusts.
    let rogue_key = rcgen::KeyPair::generate().unwrap();
    let rogue = rcgen::CertificateParams::new(vec!["svc".to_string()])
        .unwrap()
        .self_signed(&rogue_key)
        .unwrap();
    std::fs::write(dir.path().join("rogue.pem"), rogue.pem()).unwrap();
    std::fs::write(dir.path().join("rogue-key.pem"), rogue_key.serialize_pem()).unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let connect = |cert: Option<(std::path::PathBuf, std::path::PathBuf)>| {
        runtime.block_on(async {
            let mut opts = async_nats::ConnectOptions::with_credentials(&creds)
                .unwrap()
                .require_tls(true)
                .add_root_certificates(pki.join("ca.pem"))
                .connection_timeout(std::time::Duration::from_secs(2));
            if let Some((c, k)) = cert {
                opts = opts.add_client_certificate(c, k);
            }
            match opts.connect(url.as_str()).await {
                Ok(c) => c.flush().await.is_ok(),
                Err(_) => false,
            }
        })
    };
    assert!(
        connect(Some((pki.join("clients/APP/svc.pem"), pki.join("clients/APP/svc-key.pem")))),
        "the user's own certificate is accepted"
    );
    assert!(!connect(None), "a client without a certificate is refused");
    assert!(
        !connect(Some((dir.path().join("rogue.pem"), dir.path().join("rogue-key.pem")))),
        "a certificate not signed by the CA is refused"
    );
}

/// (case, file to damage, its new content or `None` to delete it, what the error must say)
const DAMAGE: &[(&str, &str, Option<&str>, &[&str])] = &[
    (
        "creds edited by hand",
        "auth/ACME/acme-app.creds",
        Some("token: hand-edited\n"),
        &["auth/ACME/acme-app.creds", "not a credentials file"],
    ),
    (
        "damaged server key",
        "pki/east-1-key.pem",
        Some("garbage"),
        &["pki/east-1-key.pem", "is damaged", "rotate certs"],
    ),
    (
        "CA key missing",
        "pki/ca-key.pem",
        None,
        &["pki/ca-key.pem", "missing", "rotate certs --ca"],
    ),
    (
        "damaged account key",
        "auth/nkeys/account-ACME.nk",
        Some("SXNOTASEED"),
        &["auth/nkeys/account-ACME.nk", "restore it from a backup"],
    ),
];

#[test]
fn damaged_key_material_is_an_error_never_a_silent_regeneration() {
    let dir = tempfile::tempdir().unwrap();
    for (n, (case, file, content, expected)) in DAMAGE.iter().enumerate() {
        let out_dir = dir.path().join(format!("out-{n}"));
        let render = || {
            crate::support::notif_infra(dir.path())
                .arg("render")
                .arg(topology("secure"))
                .arg("--out")
                .arg(&out_dir)
                .output()
                .unwrap()
        };
        assert!(render().status.success(), "{case}");
        let ca = std::fs::read(out_dir.join("pki/ca.pem")).unwrap();
        match content {
            Some(c) => std::fs::write(out_dir.join(file), c).unwrap(),
            None => std::fs::remove_file(out_dir.join(file)).unwrap(),
        }
        let out = render();
        assert_eq!(out.status.code(), Some(1), "{case}: {}", text(&out));
        assert_contains_all(&text(&out), expected);
        assert_eq!(
            std::fs::read(out_dir.join("pki/ca.pem")).unwrap(),
            ca,
            "{case}: the CA was replaced"
        );
        let now = std::fs::read_to_string(out_dir.join(file)).ok();
        assert_eq!(now.as_deref(), *content, "{case}: the damaged file was rewritten");
    }
}

const FULL_RESOLVER: &str = r#"
name: pushed
regions:
  main:
    nodes: 1
    jetstream: true
operator:
  name: op
  resolver: full
accounts:
  SYS: { system: true }
  APP:
    jetstream: { max_streams: 5 }
    users:
      - user: svc
"#;

/// The account's JetStream stream limit as the server enforces it.
fn max_streams(d: &Deployment) -> Option<i64> {
    let creds = std::fs::read_to_string(d.state_dir().join("auth/APP/svc.creds")).unwrap();
    let url = format!("nats://127.0.0.1:{}", d.port_base);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = async_nats::ConnectOptions::with_credentials(&creds)
            .unwrap()
            .connect(url.as_str())
            .await
            .unwrap();
        let account = async_nats::jetstream::new(client).query_account().await.unwrap();
        account.limits.max_streams
    })
}

#[test]
fn the_full_resolver_takes_changed_accounts_without_a_restart() {
    let (d, _dir) = applied(FULL_RESOLVER, "pushed");
    // APP is not preloaded: the server's resolver store holds it because apply pushed it.
    let app = std::fs::read_to_string(d.state_dir().join("auth/jwt/APP.jwt")).unwrap();
    let app_pub = notif_infra::material::jwt::verified_claims(&app).unwrap()["sub"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        d.state_dir().join(format!("resolver/main-1/{app_pub}.jwt")).is_file(),
        "APP was not pushed"
    );
    // Only the system account is preloaded; APP reached the server by the push.
    let conf = std::fs::read_to_string(d.state_dir().join("nats/main-1.conf")).unwrap();
    assert_eq!(conf.matches("eyJ0eXAiOiJKV1Qi").count(), 2, "operator + SYS only:\n{conf}");
    assert_eq!(max_streams(&d), Some(5));

    let pid = d.pid("main-1");
    std::fs::write(&d.topology, FULL_RESOLVER.replace("max_streams: 5", "max_streams: 7")).unwrap();
    let plan = d.cmd("plan").output().unwrap();
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert_contains_all(&text(&plan), &["~ auth/jwt/APP.jwt"]);
    assert!(!text(&plan).contains("-/+ restart"), "{}", text(&plan));
    let out = d.cmd("apply").timeout(std::time::Duration::from_secs(60)).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(d.pid("main-1"), pid, "the server was restarted");
    assert_eq!(max_streams(&d), Some(7));
}

const STATIC_ACCOUNTS: &str = r#"
name: static
regions:
  main:
    nodes: 1
    jetstream: true
accounts:
  A:
    jetstream: { max_memory: 64MB, max_streams: 3 }
    exports:
      - stream: "orders.>"
        to: [B]
    users:
      - user: a
        password: ${ACME_PASS}
  B:
    imports:
      - stream: "orders.>"
        from: A
        to: "a.orders.>"
    users:
      - user: b
        password: ${PARTNER_PASS}
"#;

#[test]
fn static_accounts_share_only_what_they_export_and_keep_passwords_out_of_files() {
    let (d, _dir) = applied(STATIC_ACCOUNTS, "static");
    let conf = std::fs::read_to_string(d.state_dir().join("nats/main-1.conf")).unwrap();
    assert!(conf.contains("include \"_accounts.conf\""), "{conf}");
    let accounts = std::fs::read_to_string(d.state_dir().join("nats/_accounts.conf")).unwrap();
    assert!(
        accounts.contains("password: $ACME_PASS") && !accounts.contains("acme-secret"),
        "{accounts}"
    );

    let url = format!("nats://127.0.0.1:{}", d.port_base);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        use futures_util::StreamExt;
        let connect =
            |user: &str, pass: &str| async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()).connect(url.as_str());
        assert!(connect("a", "wrong").await.is_err(), "a wrong password is refused");
        let a = connect("a", "acme-secret").await.unwrap();
        let b = connect("b", "partner-secret").await.unwrap();
        let mut imported = b.subscribe("a.orders.>").await.unwrap();
        let mut unmapped = b.subscribe("orders.>").await.unwrap();
        b.flush().await.unwrap();
        a.publish("billing.x", "private".into()).await.unwrap();
        // Resent until it crosses: the test is about where it goes, not how soon.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let got = loop {
            a.publish("orders.created", "o-1".into()).await.unwrap();
            a.flush().await.unwrap();
            if let Ok(Some(m)) = tokio::time::timeout(std::time::Duration::from_millis(100), imported.next()).await {
                break m;
            }
            assert!(std::time::Instant::now() < deadline, "A's orders.created never reached B");
        };
        assert_eq!((got.subject.as_str(), &got.payload[..]), ("a.orders.created", &b"o-1"[..]));
        let leaked = tokio::time::timeout(std::time::Duration::from_millis(300), unmapped.next()).await;
        assert!(leaked.is_err(), "B saw A's subject unmapped: {leaked:?}");
        let account = async_nats::jetstream::new(a).query_account().await.unwrap();
        assert_eq!(account.limits.max_streams, Some(3));
        assert_eq!(account.limits.max_memory, Some(64 * 1024 * 1024));
    });
}

/// A deployment whose users hold JWT credentials and trust its CA.
const IDENTITY: &str = r#"name: identity
regions:
  main:
    nodes: 1
tls:
  client: true
operator:
  name: op
accounts:
  SYS: { system: true }
  APP:
    users:
      - user: svc
"#;

/// Connects over TLS to the server on `port` with a user's `.creds` and a CA file handed out
/// earlier, as that user's application would.
fn connect_with(creds: &str, ca: &std::path::Path, port: u16) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = async_nats::ConnectOptions::with_credentials(creds)
            .unwrap()
            .require_tls(true)
            .add_root_certificates(ca.to_path_buf())
            .connection_timeout(std::time::Duration::from_secs(2))
            .connect(format!("tls://127.0.0.1:{port}"))
            .await
            .map_err(|e| e.to_string())?;
        client.flush().await.map_err(|e| e.to_string())
    })
}

/// Destroy stops the servers and removes the runtime state but keeps the identity: a re-apply
/// reuses it, and a `.creds` file handed out before still connects, over TLS trusting the CA
/// handed out before. `--purge-keys` removes the identity too.
#[test]
fn destroy_keeps_the_identity_so_credentials_handed_out_still_connect_after_a_reapply() {
    let (d, dir) = applied(IDENTITY, "identity");
    let state = d.state_dir();
    let creds = std::fs::read_to_string(state.join("auth/APP/svc.creds")).unwrap();
    let ca = dir.path().join("handed-out-ca.pem");
    std::fs::copy(state.join("pki/ca.pem"), &ca).unwrap();

    let out = d.cmd("destroy").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_contains_all(&text(&out), &["kept the identity (pki/, auth/)", "destroy --purge-keys"]);
    assert!(!state.join("state.json").exists() && !state.join("nats").exists());
    assert!(state.join("pki/ca-key.pem").is_file() && state.join("auth/nkeys").is_dir());

    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        connect_with(&creds, &ca, d.port_base),
        Ok(()),
        "the old credentials and CA after destroy and apply"
    );

    let out = d.cmd("destroy").arg("--purge-keys").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!state.exists(), "--purge-keys leaves nothing");
}

/// Purging the identity of a deployment outside this machine asks first; without a terminal
/// and without --auto-approve nothing is destroyed.
#[test]
fn purging_keys_off_this_machine_needs_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::notif_infra(dir.path())
        .args(["destroy"])
        .arg(topology("secure"))
        .args(["--target", "ssh", "--purge-keys"])
        .write_stdin("yes\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_contains_all(&text(&out), &["needs confirmation", "--auto-approve", "nothing was destroyed"]);
}

/// A new machine: the identity comes back from a backup sealed under a passphrase, into a clean
/// state folder, and a deployment applied there accepts the credentials and trusts the CA handed
/// out by the first.
#[test]
fn an_identity_restored_from_a_sealed_backup_on_a_clean_machine_keeps_credentials_working() {
    const PASS: &str = "NOTIF_INFRA_BACKUP_PASSPHRASE";
    let (d, dir) = applied(IDENTITY, "identity");
    let creds = std::fs::read_to_string(d.state_dir().join("auth/APP/svc.creds")).unwrap();
    let ca = dir.path().join("handed-out-ca.pem");
    std::fs::copy(d.state_dir().join("pki/ca.pem"), &ca).unwrap();
    let backup = dir.path().join("backup");
    let to = backup.to_str().unwrap();

    let out = d.cmd("backup").args(["--identity", "--to", to]).env_remove(PASS).output().unwrap();
    assert!(!out.status.success());
    assert_contains_all(&text(&out), &[PASS, "not set", "nothing was written"]);
    let out = d
        .cmd("backup")
        .args(["--identity", "--to", to])
        .env(PASS, "a long enough passphrase")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_contains_all(&text(&out), &["the identity is sealed in", "identity.tar.age"]);
    let sealed = std::fs::read(backup.join("identity.tar.age")).unwrap();
    assert!(leaked_secrets(&String::from_utf8_lossy(&sealed)).is_empty());
    assert!(!text(&out).contains("a long enough passphrase"));

    let clean = Deployment::new(&d.topology, "identity", 1);
    let out = clean
        .cmd("restore")
        .args(["--identity", "--from", to])
        .env(PASS, "not the passphrase")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_contains_all(&text(&out), &["cannot open", "nothing was restored"]);
    assert!(!clean.state_dir().join("pki").exists());
    let out = clean
        .cmd("restore")
        .args(["--identity", "--from", to])
        .env(PASS, "a long enough passphrase")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = clean
        .cmd("restore")
        .args(["--identity", "--from", to])
        .env(PASS, "a long enough passphrase")
        .output()
        .unwrap();
    assert!(!out.status.success(), "an identity is never restored over another");
    assert_contains_all(&text(&out), &["already holds an identity"]);

    let out = clean.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        connect_with(&creds, &ca, clean.port_base),
        Ok(()),
        "the first deployment's credentials on the second"
    );
}
