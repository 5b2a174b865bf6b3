//! Applications: permissions derived from declared use are the least that work (each derived
//! subject, taken away on the live servers, breaks the application's flow), hand-written ones
//! are checked against the use, and validate names what the permissions leave unusable.

use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{Deployment, get_json, notif_infra, text};

/// A shop publishes orders and keeps its prices in a KV bucket and its images in an object store; billing pulls the orders from its
/// consumer, the mailer receives them from a push consumer, a dashboard subscribes. Every one of
/// them has only derived permissions.
const SHOP: &str = r#"name: shop
regions:
  east:
    nodes: 1
    jetstream: true
accounts:
  APP:
    jetstream: true
    users:
      - { user: shop, password: "${SHOP_PASS}" }
      - { user: billing, password: "${BILLING_PASS}" }
      - { user: mailer, password: "${MAILER_PASS}" }
      - { user: dashboard, password: "${DASHBOARD_PASS}" }
streams:
  ORDERS: { account: APP, subjects: ["orders.>"], retention: interest }
kv:
  prices: { account: APP }
object_stores:
  images: { account: APP }
consumers:
  - { durable: billing, stream: ORDERS }
  - { durable: mailer, stream: ORDERS, deliver_subject: mail.orders }
apps:
  shop: { user: shop, at: east, publish: ["orders.>"], serves: ["quotes.*"], kv: { prices: write }, object_stores: { images: write } }
  billing: { user: billing, at: east, inbox: _INBOX_billing, consumers: [ORDERS/billing], requests: [quotes.price] }
  mailer: { user: mailer, at: east, consumers: [ORDERS/mailer] }
  dashboard: { user: dashboard, at: east, subscribe: ["orders.*"] }
flows:
  order-placed:
    publish: { user: shop, at: east, subject: orders.placed }
    reaches:
      - stream: ORDERS
      - { consumer: ORDERS/billing, by: billing }
      - { consumer: ORDERS/mailer, by: mailer }
      - subscriber: { user: dashboard, at: east, subject: "orders.*" }
    never:
      - { consumer: ORDERS/billing, by: mailer }
"#;

const PASSWORDS: &[(&str, &str)] = &[
    ("SHOP_PASS", "shop-secret"),
    ("BILLING_PASS", "billing-secret"),
    ("MAILER_PASS", "mailer-secret"),
    ("DASHBOARD_PASS", "dashboard-secret"),
];

fn with_passwords(mut cmd: assert_cmd::Command) -> assert_cmd::Command {
    for (k, v) in PASSWORDS {
        cmd.env(k, v);
    }
    cmd
}

fn flows(d: &Deployment) -> (bool, Vec<Value>) {
    let out = with_passwords(d.cmd("verify")).args(["--flows", "-o", "json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    (out.status.success(), v["flows"].as_array().unwrap().clone())
}

/// Every `(user, rule, subject)` a derived permission of the rendered accounts allows.
fn derived_rights(accounts: &str) -> Vec<(String, &'static str, String)> {
    let mut rights = Vec::new();
    let mut user = None;
    for line in accounts.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("user: \"") {
            user = Some(name.trim_end_matches('"').to_string());
        }
        for rule in ["publish", "subscribe"] {
            if let (Some(u), Some(rest)) = (&user, line.strip_prefix(&format!("{rule}: {{ allow: ["))) {
                let list = rest.split(']').next().unwrap();
                for s in list.split(", ").filter(|s| !s.is_empty()) {
                    rights.push((u.clone(), rule, s.trim_matches('"').to_string()));
                }
            }
        }
    }
    rights
}

/// The accounts file with `subject` taken out of `user`'s `rule` (deny all when nothing is left:
/// an empty allow list would allow everything).
fn without(accounts: &str, user: &str, rule: &str, subject: &str) -> String {
    let mut out = String::new();
    let mut current = None;
    for line in accounts.lines() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix("user: \"") {
            current = Some(name.trim_end_matches('"').to_string());
        }
        let mut line = line.to_string();
        if current.as_deref() == Some(user) && trimmed.starts_with(&format!("{rule}: {{ allow: [")) {
            let quoted = format!("\"{subject}\"");
            line = line
                .replace(&format!("{quoted}, "), "")
                .replace(&format!(", {quoted}"), "")
                .replace(&quoted, "");
            line = line.replace("allow: [], deny: []", "allow: [], deny: [\">\"]");
        }
        out += &line;
        out.push('\n');
    }
    out
}

/// Writes `accounts` and has the server load it, waiting until it has.
fn reload_with(d: &Deployment, path: &Path, accounts: &str) {
    std::fs::write(path, accounts).unwrap();
    let varz = format!("{}/varz", d.monitor_url(0));
    let before = get_json(&varz)["config_load_time"].clone();
    let pid = d.pid("east-1").expect("the server's pid file");
    let status = std::process::Command::new(crate::support::nats_server())
        .args(["--signal", &format!("reload={pid}")])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    while get_json(&varz)["config_load_time"] == before {
        assert!(start.elapsed() < Duration::from_secs(10), "the server did not reload");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn each_derived_subject_is_needed_by_its_application() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.yaml");
    std::fs::write(&file, SHOP).unwrap();
    let d = Deployment::new(&file, "shop", 1);
    let apply = with_passwords(d.cmd("apply")).output().unwrap();
    assert!(apply.status.success(), "{}", text(&apply));

    let (ok, reports) = flows(&d);
    assert!(ok, "{reports:#?}");
    let billing = reports
        .iter()
        .find(|r| r["target"] == "consumer ORDERS/billing read by billing")
        .unwrap();
    assert!(
        billing["detail"].as_str().unwrap().contains("pulled it and acknowledged it"),
        "{billing}"
    );
    let mailer = reports
        .iter()
        .find(|r| r["target"] == "consumer ORDERS/mailer read by mailer")
        .unwrap();
    assert!(
        mailer["detail"]
            .as_str()
            .unwrap()
            .contains("received it on the deliver subject and acknowledged it"),
        "{mailer}"
    );

    let accounts_path = d.state_dir().join("nats").join("_accounts.conf");
    let accounts = std::fs::read_to_string(&accounts_path).unwrap();
    let rights = derived_rights(&accounts);
    let expected: Vec<(&str, &str, &str)> = vec![
        ("shop", "publish", "orders.>"),
        ("shop", "publish", "$JS.API.STREAM.INFO.KV_prices"),
        ("shop", "publish", "$JS.API.DIRECT.GET.KV_prices.>"),
        ("shop", "publish", "$KV.prices.>"),
        ("shop", "subscribe", "_INBOX.>"),
        ("shop", "publish", "$JS.API.STREAM.INFO.OBJ_images"),
        ("shop", "publish", "$JS.API.DIRECT.GET.OBJ_images.>"),
        ("shop", "publish", "$JS.API.CONSUMER.CREATE.OBJ_images.>"),
        ("shop", "publish", "$JS.FC.OBJ_images.>"),
        ("shop", "publish", "$O.images.>"),
        ("shop", "publish", "$JS.API.STREAM.PURGE.OBJ_images"),
        ("shop", "subscribe", "quotes.*"),
        ("billing", "publish", "quotes.price"),
        ("billing", "publish", "$JS.API.CONSUMER.INFO.ORDERS.billing"),
        ("billing", "publish", "$JS.API.CONSUMER.MSG.NEXT.ORDERS.billing"),
        ("billing", "publish", "$JS.ACK.ORDERS.billing.>"),
        ("billing", "subscribe", "_INBOX_billing.>"),
        ("mailer", "publish", "$JS.API.CONSUMER.INFO.ORDERS.mailer"),
        ("mailer", "publish", "$JS.ACK.ORDERS.mailer.>"),
        ("mailer", "subscribe", "_INBOX.>"),
        ("mailer", "subscribe", "mail.orders"),
        ("dashboard", "subscribe", "orders.*"),
    ];
    let mut found: Vec<(&str, &str, &str)> = rights.iter().map(|(u, r, s)| (u.as_str(), *r, s.as_str())).collect();
    let mut want = expected.clone();
    found.sort();
    want.sort();
    assert_eq!(found, want, "the derived permissions are exactly what the apps use");

    // Flow control answers are derived from nats-server's subjects; a one-chunk object or one
    // message never triggers flow control, so taking them away shows nothing here.
    for (user, rule, subject) in expected.into_iter().filter(|(_, _, s)| !s.starts_with("$JS.FC.")) {
        reload_with(&d, &accounts_path, &without(&accounts, user, rule, subject));
        let (ok, reports) = flows(&d);
        let failed: Vec<&Value> = reports.iter().filter(|r| r["ok"] == false).collect();
        assert!(
            !ok && !failed.is_empty(),
            "without {rule} `{subject}` for {user}, the flow still passed: {reports:#?}"
        );
        // The failure is the application's own: the target it reads (`by billing`), the
        // subscriber it is (`APP/dashboard`), its bucket use (`app shop`), or for the
        // publisher's own subject the stream the flow publishes to.
        let blamed = failed.iter().any(|r| {
            let target = r["target"].as_str().unwrap();
            target.contains(&format!("by {user}"))
                || target.contains(&format!("by app {user}"))
                || target.contains(&format!("APP/{user}"))
                || r["name"] == format!("app {user}")
                || (subject == "orders.>" && target == "stream ORDERS")
        });
        assert!(blamed, "without {rule} `{subject}` for {user}: {failed:#?}");
    }
    // The server of the quotes answers by `allow_responses`: without it billing gets no answer.
    let no_responses: String = accounts
        .lines()
        .filter(|l| !l.trim_start().starts_with("allow_responses"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(no_responses, accounts, "shop's derived permissions let it respond");
    reload_with(&d, &accounts_path, &no_responses);
    let (ok, reports) = flows(&d);
    let quote = reports
        .iter()
        .find(|r| r["name"] == "app billing" && r["target"].as_str().unwrap().starts_with("request"))
        .unwrap();
    assert!(!ok && quote["ok"] == false, "without allow_responses: {quote:#}");
    assert!(quote["detail"].as_str().unwrap().contains("Permissions Violation"), "{quote:#}");

    reload_with(&d, &accounts_path, &accounts);
    let (ok, reports) = flows(&d);
    assert!(ok, "with every derived subject back the flow passes again: {reports:#?}");
    let quote = reports
        .iter()
        .find(|r| r["name"] == "app billing" && r["target"].as_str().unwrap().starts_with("request"))
        .unwrap();
    assert_eq!(quote["target"], "request quotes.price answered by app shop");
}

fn validate(yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = notif_infra(dir.path()).arg("validate").arg(&file).output().unwrap();
    (out.status.success(), text(&out))
}

#[test]
fn hand_written_permissions_too_narrow_for_the_app_are_an_error_naming_the_subject() {
    let narrow = SHOP.replace(
        "      - { user: billing, password: \"${BILLING_PASS}\" }",
        "      - { user: billing, password: \"${BILLING_PASS}\", permissions: { publish: [\"$JS.API.CONSUMER.>\", \"orders.>\"], subscribe: [\"_INBOX_billing.>\"] } }",
    );
    let (ok, out) = validate(&narrow);
    assert!(!ok, "{out}");
    assert!(
        out.contains("the permissions of `APP/billing` are too narrow for app `billing`: it must publish `$JS.ACK.ORDERS.billing.>` (acknowledges consumer ORDERS/billing)"),
        "{out}"
    );
    assert!(
        out.contains("t.yaml:25:"),
        "the error points at the app's use of the consumer: {out}"
    );
    assert!(
        out.contains("warning: `APP/billing` may publish `orders.>`, wider than app `billing` declares it needs"),
        "{out}"
    );
}

#[test]
fn validate_names_consumers_nobody_can_read_and_rights_nothing_receives() {
    let (ok, out) = validate(&std::fs::read_to_string(crate::support::topology("covenant")).unwrap());
    assert!(ok, "{out}");
    // The seed's own hole, kept on purpose and commented in the file.
    assert!(
        out.contains("`COVENANT/mobile` may publish `user-events.>`, which no stream stores"),
        "{out}"
    );
    assert_eq!(out.matches("warning:").count(), 1, "{out}");

    // Without its apps (and the flows naming them), covenant's consumers are the seed's: nobody
    // can read them.
    let full = std::fs::read_to_string(crate::support::topology("covenant")).unwrap();
    let seed_only = &full[..full.find("\napps:").unwrap()];
    let (ok, out) = validate(seed_only);
    assert!(ok, "{out}");
    for expected in [
        "consumer `COVENANT_COUNTRIES/ANALYTICS` can be read by no declared user of account `COVENANT`",
        "push consumer `COVENANT_COUNTRIES/CACHE_INVALIDATOR` delivers to `consumer.cache-invalidator.countries`, which no declared user of account `COVENANT` may subscribe to",
        "stream `COVENANT_COUNTRIES` keeps each message until its consumers acknowledge it (interest retention)",
        "`api`, `mobile`, `analytics`, `cache-invalidator`, `notifications`, `audit-logger`, `assets` may not publish `$JS.API.CONSUMER.MSG.NEXT.COVENANT_COUNTRIES.ANALYTICS`",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }
}
