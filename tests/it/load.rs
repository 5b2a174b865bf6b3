//! Acknowledged publishing while a deployment changes: a publisher sends `events.<n>` to an
//! R3 stream on `events.>` as user `app`, retrying a failed publish under the same message id,
//! until stopped; then every acknowledged message must be in the stream.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct Load {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(BTreeSet<u64>, u64, BTreeSet<u64>)>,
}

impl Load {
    /// Starts publishing to `urls`; from inside network namespace `netns` when given (the
    /// publisher's thread joins it, the rest of the test stays where it is).
    pub fn start(urls: Vec<String>, netns: Option<String>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            if let Some(ns) = netns {
                let fd = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
                nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            }
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let (acked, failures) = rt.block_on(publish_until(urls.clone(), flag));
            let stored = rt.block_on(stored_ids(&urls));
            (acked, failures, stored)
        });
        Load { stop, thread }
    }

    /// Stops the publisher and asserts every acknowledged message is in the stream.
    pub fn stop_and_check(self, during: &str) {
        self.stop.store(true, Ordering::Relaxed);
        let (acked, failures, stored) = self.thread.join().unwrap();
        let lost: Vec<&u64> = acked.difference(&stored).collect();
        eprintln!(
            "published {} acknowledged messages ({failures} retried) during {during}: {} stored, {} lost",
            acked.len(),
            stored.len(),
            lost.len()
        );
        assert!(acked.len() > 100, "the publisher ran throughout: {}", acked.len());
        assert!(
            lost.is_empty(),
            "{} acknowledged message(s) lost: {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        );
    }
}

async fn connect(urls: &[String]) -> async_nats::Client {
    let addrs: Vec<async_nats::ServerAddr> = urls.iter().map(|u| u.parse().unwrap()).collect();
    async_nats::ConnectOptions::with_user_and_password("app".into(), "app-secret".into())
        .connect(addrs)
        .await
        .unwrap()
}

async fn publish_until(urls: Vec<String>, stop: Arc<AtomicBool>) -> (BTreeSet<u64>, u64) {
    let js = async_nats::jetstream::new(connect(&urls).await);
    let (mut acked, mut failures, mut id) = (BTreeSet::new(), 0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.to_string().as_str());
        let sent = js
            .publish_with_headers(format!("events.{id}"), headers, id.to_string().into())
            .await;
        match sent {
            Ok(ack) => match tokio::time::timeout(Duration::from_secs(3), ack).await {
                Ok(Ok(_)) => {
                    acked.insert(id);
                    id += 1;
                }
                _ => failures += 1,
            },
            Err(_) => failures += 1,
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (acked, failures)
}

/// The ids stored in EVENTS, read back through an ordered consumer.
async fn stored_ids(urls: &[String]) -> BTreeSet<u64> {
    use futures_util::StreamExt;
    let js = async_nats::jetstream::new(connect(urls).await);
    // Right after servers came back (a restarted engine, a roll) the stream may still be electing
    // its leader: its API requests time out until it has one.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (total, consumer) = loop {
        let attempt = async {
            let mut stream = js.get_stream("EVENTS").await.map_err(|e| e.to_string())?;
            let total = stream.info().await.map_err(|e| e.to_string())?.state.messages;
            let consumer = stream
                .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((total, consumer))
        };
        match attempt.await {
            Ok(ready) => break ready,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("reading EVENTS back: {e}; asking again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("cannot read EVENTS back: {e}"),
        }
    };
    let mut messages = consumer.messages().await.unwrap();
    let mut ids = BTreeSet::new();
    while (ids.len() as u64) < total {
        let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("messages keep coming")
            .unwrap()
            .unwrap();
        ids.insert(String::from_utf8_lossy(&m.payload).parse::<u64>().unwrap());
    }
    ids
}
