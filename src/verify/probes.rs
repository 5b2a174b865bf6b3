//! Message probes: real messages through the real links. A positive probe must arrive; a
//! negative one proves a deny rule: it is sent right before a fence message on an allowed
//! subject over the same path, and the fence arriving alone shows the denied one was dropped.

use futures_util::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

use crate::desired::{Desired, Probe, ProbeKind};
use crate::material::Keys;

#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub kind: ProbeKind,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub expect_delivery: bool,
    pub ok: bool,
    pub detail: String,
    /// From the first send to the delivery, for a probe that must arrive and did.
    pub latency_ms: Option<f64>,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
const RESEND_EVERY: Duration = Duration::from_millis(2);

/// Probe connections, one per server and account, kept across verification rounds.
#[derive(Default)]
pub struct Clients {
    conns: Mutex<HashMap<(String, Option<String>), async_nats::Client>>,
}

impl Clients {
    async fn get(&self, desired: &Desired, keys: &Keys, server: &str, account: &Option<String>) -> Result<async_nats::Client, String> {
        let key = (server.to_string(), account.clone());
        if let Some(c) = self.conns.lock().await.get(&key) {
            return Ok(c.clone());
        }
        let url = desired.server(server).map(|s| s.client_url.clone()).ok_or("unknown server")?;
        let client = crate::client::nats_options(desired, keys, account)?
            .name("notif-infra-verify")
            .connection_timeout(Duration::from_secs(1))
            .ignore_discovered_servers()
            .connect(url.as_str())
            .await
            .map_err(|e| format!("cannot connect to {server} ({url}): {e}"))?;
        self.conns.lock().await.insert(key, client.clone());
        Ok(client)
    }

    pub async fn close(&self) {
        for (_, c) in self.conns.lock().await.drain() {
            let _ = c.drain().await;
        }
    }
}

pub async fn run_all(desired: &Desired, keys: &Keys, clients: &Clients, nonce: &str) -> Vec<ProbeReport> {
    let runs = desired
        .probes()
        .iter()
        .enumerate()
        .map(|(i, p)| run_one(desired, keys, clients, p, crate::desired::probe_subject(nonce, i)));
    futures_util::future::join_all(runs).await
}

async fn run_one(desired: &Desired, keys: &Keys, clients: &Clients, probe: &Probe, fresh: String) -> ProbeReport {
    let subject = probe.subject.clone().unwrap_or_else(|| fresh.clone());
    let outcome = async {
        let publisher = clients.get(desired, keys, &probe.from, &probe.account).await?;
        let subscriber = clients.get(desired, keys, &probe.to, &probe.account).await?;
        if probe.expect_delivery {
            let latency = deliver(&publisher, &subscriber, &subject).await?;
            Ok((format!("delivered in {} ms", latency.as_millis()), Some(latency)))
        } else {
            let fence_allowed = !blocked(desired, probe, &fresh);
            Ok((
                block(&publisher, &subscriber, &subject, fence_allowed.then_some(fresh.as_str())).await?,
                None,
            ))
        }
    }
    .await;
    let (ok, detail, latency) = match outcome {
        Ok((d, latency)) => (true, d, latency),
        Err(e) => (false, e, None),
    };
    ProbeReport {
        kind: probe.kind,
        from: probe.from.clone(),
        to: probe.to.clone(),
        subject,
        expect_delivery: probe.expect_delivery,
        ok,
        detail,
        latency_ms: latency.map(|l| l.as_secs_f64() * 1000.0),
    }
}

/// Whether the leaf's deny rules also block the fence subject (deny `>`): then a negative probe
/// can only wait.
fn blocked(desired: &Desired, probe: &Probe, subject: &str) -> bool {
    let leaf = [&probe.from, &probe.to]
        .into_iter()
        .filter_map(|s| desired.server(s))
        .find_map(|s| s.conf.leaf_remotes.first());
    leaf.is_some_and(|r| {
        let deny = if probe.kind == ProbeKind::LeafImport {
            &r.deny_import
        } else {
            &r.deny_export
        };
        deny.iter().any(|d| crate::subject::matches(d, subject))
    })
}

async fn deliver(publisher: &async_nats::Client, subscriber: &async_nats::Client, subject: &str) -> Result<Duration, String> {
    let mut sub = subscriber.subscribe(subject.to_string()).await.map_err(|e| e.to_string())?;
    subscriber.flush().await.map_err(|e| e.to_string())?;
    let start = Instant::now();
    // Interest takes a moment to cross routes, gateways and leafnodes: resend until it arrives.
    while start.elapsed() < PROBE_TIMEOUT {
        publisher
            .publish(subject.to_string(), "probe".into())
            .await
            .map_err(|e| e.to_string())?;
        publisher.flush().await.map_err(|e| e.to_string())?;
        if let Ok(Some(_)) = tokio::time::timeout(RESEND_EVERY, sub.next()).await {
            let _ = sub.unsubscribe().await;
            return Ok(start.elapsed());
        }
    }
    let _ = sub.unsubscribe().await;
    Err(format!("not delivered within {} s", PROBE_TIMEOUT.as_secs()))
}

async fn block(
    publisher: &async_nats::Client,
    subscriber: &async_nats::Client,
    denied: &str,
    fence: Option<&str>,
) -> Result<String, String> {
    let mut denied_sub = subscriber.subscribe(denied.to_string()).await.map_err(|e| e.to_string())?;
    let mut fence_sub = match fence {
        Some(f) => Some(subscriber.subscribe(f.to_string()).await.map_err(|e| e.to_string())?),
        None => None,
    };
    subscriber.flush().await.map_err(|e| e.to_string())?;
    let start = Instant::now();
    let result = loop {
        if start.elapsed() >= PROBE_TIMEOUT {
            break match fence {
                Some(_) => Err("the fence message on an allowed subject never arrived: the path itself is down".to_string()),
                None => Ok(format!("{denied} blocked (nothing arrived in {} s)", PROBE_TIMEOUT.as_secs())),
            };
        }
        publisher
            .publish(denied.to_string(), "must not arrive".into())
            .await
            .map_err(|e| e.to_string())?;
        if let Some(f) = fence {
            publisher.publish(f.to_string(), "fence".into()).await.map_err(|e| e.to_string())?;
        }
        publisher.flush().await.map_err(|e| e.to_string())?;
        let fenced = match fence_sub.as_mut() {
            Some(s) => matches!(tokio::time::timeout(RESEND_EVERY, s.next()).await, Ok(Some(_))),
            None => {
                tokio::time::sleep(RESEND_EVERY).await;
                false
            }
        };
        // Messages on one path keep their order, so once the fence is in, the denied message
        // would already be in too.
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(if fenced { 50 } else { 0 }), denied_sub.next()).await {
            break Err(format!("{denied} was delivered although a deny rule should block it"));
        }
        if fenced {
            break Ok(format!(
                "{denied} blocked (an allowed message on the same path arrived, the denied one did not)"
            ));
        }
    };
    let _ = denied_sub.unsubscribe().await;
    if let Some(mut s) = fence_sub {
        let _ = s.unsubscribe().await;
    }
    result
}
