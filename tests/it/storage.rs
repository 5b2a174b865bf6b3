//! A JetStream store that fills: the server refuses what does not fit, loses nothing it
//! acknowledged, and verify names the server, how full its store is and the streams it holds.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::{Deployment, assert_contains_all, text};

const FULL: &str = r#"name: full
defaults:
  jetstream: { max_file_store: 1MB }
regions:
  main:
    nodes: 1
    jetstream: true
accounts:
  APP:
    jetstream: true
    users:
      - { user: app, password: "${APP_PASS}" }
streams:
  EVENTS: { account: APP, subjects: ["events.>"] }
"#;

#[test]
fn a_full_store_refuses_publishes_loses_nothing_acknowledged_and_verify_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("full.yaml");
    std::fs::write(&file, FULL).unwrap();
    let d = Deployment::new(&file, "full", 1);
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let url = format!("nats://127.0.0.1:{}", d.port_base);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (acked, refused, stored) = runtime.block_on(async {
        let client = async_nats::ConnectOptions::with_user_and_password("app".into(), "app-secret".into())
            .connect(url.as_str())
            .await
            .unwrap();
        let js = async_nats::jetstream::new(client);
        let (mut acked, mut refused) = (BTreeSet::new(), None);
        let started = Instant::now();
        for id in 0u64.. {
            let sent = js.publish(format!("events.{id}"), vec![b'x'; 1024].into()).await.unwrap().await;
            match sent {
                Ok(_) => {
                    acked.insert(id);
                }
                Err(e) => {
                    refused = Some(e.to_string());
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the store never filled: {} acknowledged",
                acked.len()
            );
        }
        let stream = js.get_stream("EVENTS").await.unwrap();
        let stored = stream.cached_info().state.messages;
        (acked, refused, stored)
    });
    eprintln!(
        "a 1 MB store: {} messages of 1 KiB acknowledged, then refused ({}); {stored} stored",
        acked.len(),
        refused.as_deref().unwrap_or("-")
    );
    assert!(acked.len() > 100, "{acked:?}");
    assert_eq!(stored, acked.len() as u64, "every acknowledged message is stored, and only those");

    let out = d.cmd("verify").args(["--timeout", "2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_contains_all(
        &text(&out),
        &["main-1", "JetStream file store is", "publishes to EVENTS will be refused"],
    );
}
