//! Message probes: real messages through the real links, one probe per link. The routes and
//! gateways are proven by one message per node, which every node of every region listens for:
//! its arrival at a node of the sender's region proves the route there, at a node of another
//! region the sender's own outbound gateway to it. So a round costs a message per node, not one
//! per link. A leafnode's probes go one by one, in the leaf's account. A negative probe proves
//! a deny rule: it is sent right before a fence message on an allowed subject over the same
//! path, and the fence arriving alone shows the denied one was dropped.

use futures_util::StreamExt;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OnceCell};

use crate::desired::{Desired, Probe, ProbeKind, Role};
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
/// A node's message is sent again, less and less often, until every node it must reach has it:
/// interest takes a moment to cross routes and gateways, and at 66 servers on 2 cores one round
/// of messages takes about 90 ms to reach every node (measured), which resending sooner slows.
const BROADCAST_RESEND_FIRST: Duration = Duration::from_millis(20);
const BROADCAST_RESEND_AT_MOST_EVERY: Duration = Duration::from_millis(100);
/// How many probe connections open at once (60 open in about 0.25 s on 2 cores whatever the
/// bound: the servers' work is the limit).
const CONNECTS_AT_ONCE: usize = 64;

/// A server and the account a probe connects to it in.
type Endpoint = (String, Option<String>);

/// Probe connections, one per server and account, kept across verification rounds.
#[derive(Default)]
pub struct Clients {
    conns: Mutex<HashMap<Endpoint, Arc<OnceCell<async_nats::Client>>>>,
}

impl Clients {
    /// The connection to `server` in `account`: opened once, however many probes ask at once;
    /// one that failed is tried again by the next to ask.
    async fn get(&self, desired: &Desired, keys: &Keys, server: &str, account: &Option<String>) -> Result<async_nats::Client, String> {
        let cell = self
            .conns
            .lock()
            .await
            .entry((server.to_string(), account.clone()))
            .or_default()
            .clone();
        cell.get_or_try_init(|| async {
            let spec = desired.server(server).ok_or_else(|| format!("unknown server {server}"))?;
            crate::client::own_connection(desired, keys, account, spec, "notif-infra-verify", Duration::from_secs(1)).await
        })
        .await
        .cloned()
    }

    /// Opens every connection the probes will use, a bounded number at once; a failure is left
    /// for the probe that needs the connection to report.
    pub async fn open_all(&self, desired: &Desired, keys: &Keys) {
        let probes: Vec<&Probe> = desired.probes().iter().collect();
        futures_util::stream::iter(endpoints(desired, &probes))
            .map(|(server, account)| self.get(desired, keys, server, account))
            .buffer_unordered(CONNECTS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
    }

    pub async fn close(&self) {
        let conns: Vec<_> = self.conns.lock().await.drain().filter_map(|(_, c)| c.get().cloned()).collect();
        futures_util::future::join_all(conns.iter().map(|c| c.drain())).await;
    }
}

/// Sends every probe of the topology; the reports come in the order of `desired.probes()`.
pub async fn run_all(desired: &Desired, keys: &Keys, clients: &Clients, nonce: &str) -> Vec<ProbeReport> {
    let (broadcast, single): (Vec<_>, Vec<_>) = desired.probes().iter().enumerate().partition(|(_, p)| rides_the_broadcast(p));
    let singles = single
        .iter()
        .map(|(i, p)| run_one(desired, keys, clients, p, crate::desired::probe_subject(nonce, *i)));
    let broadcast_probes: Vec<&Probe> = broadcast.iter().map(|(_, p)| *p).collect();
    let (broadcast_reports, single_reports) = tokio::join!(
        run_broadcast(desired, keys, clients, &broadcast_probes, nonce),
        futures_util::future::join_all(singles)
    );
    let mut reports: Vec<(usize, ProbeReport)> = broadcast
        .iter()
        .map(|(i, _)| *i)
        .zip(broadcast_reports)
        .chain(single.iter().map(|(i, _)| *i).zip(single_reports))
        .collect();
    reports.sort_by_key(|(i, _)| *i);
    reports.into_iter().map(|(_, r)| r).collect()
}

/// Route and gateway probes, which carry notif-infra's own subjects in one account.
fn rides_the_broadcast(p: &Probe) -> bool {
    matches!(p.kind, ProbeKind::Route | ProbeKind::Gateway) && p.expect_delivery && p.subject.is_none()
}

/// The servers at which a probe's message counts as delivered: its server, or for a gateway
/// probe any node of its region.
fn receivers<'a>(desired: &'a Desired, probe: &'a Probe) -> Vec<&'a str> {
    match probe.kind {
        ProbeKind::Gateway => desired
            .servers
            .iter()
            .filter(|s| s.region == probe.to && s.role == Role::Node)
            .map(|s| s.name.as_str())
            .collect(),
        _ => vec![probe.to.as_str()],
    }
}

/// The servers, with the account, that `probes` send from or count a delivery at.
fn endpoints<'a>(desired: &'a Desired, probes: &[&'a Probe]) -> BTreeSet<(&'a str, &'a Option<String>)> {
    probes
        .iter()
        .flat_map(|p| {
            receivers(desired, p)
                .into_iter()
                .chain([p.from.as_str()])
                .map(move |s| (s, &p.account))
        })
        .collect()
}

/// Every node listens on the run's broadcast subjects; each sender sends its message until
/// each of its probes has a delivery (or the time is up). Each probe's evidence is the first
/// delivery at one of its receivers and the time since its sender first sent.
async fn run_broadcast(desired: &Desired, keys: &Keys, clients: &Clients, probes: &[&Probe], nonce: &str) -> Vec<ProbeReport> {
    if probes.is_empty() {
        return Vec::new();
    }
    let senders: Vec<&str> = probes
        .iter()
        .map(|p| p.from.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let receivers_of: Vec<Vec<&str>> = probes.iter().map(|p| receivers(desired, p)).collect();
    let listeners: BTreeSet<&str> = receivers_of.iter().flatten().copied().collect();
    let conns: HashMap<&str, Result<async_nats::Client, String>> = futures_util::stream::iter(endpoints(desired, probes))
        .map(|(server, account)| async move { (server, clients.get(desired, keys, server, account).await) })
        .buffer_unordered(CONNECTS_AT_ONCE)
        .collect()
        .await;
    let conns = &conns;
    // A sender's message goes out on `<prefix>.<its region>.<its index>`. Each listener takes
    // its own region's messages (the routes), and all messages in a queue group of its region:
    // one node of each other region gets a sender's message, the one its gateway reached,
    // instead of the whole region (measured at 66 servers: 16 deliveries a message, not 65).
    let prefix = format!("{}.{nonce}.b", crate::access::PROBE_PREFIX);
    let regions: Vec<&str> = desired
        .servers
        .iter()
        .map(|s| s.region.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let region_of = |server: &str| {
        desired
            .server(server)
            .and_then(|s| regions.iter().position(|r| *r == s.region))
            .unwrap_or_default()
    };
    let subject_of = |sender: usize| format!("{prefix}.{}.{sender}", region_of(senders[sender]));
    // Every listener subscribes before anything is sent.
    let subscriptions = listeners
        .iter()
        .filter_map(|l| conns[l].as_ref().ok().map(|c| (*l, c)))
        .map(|(l, c)| {
            let (prefix, region) = (&prefix, region_of(l));
            async move {
                let own_region = c.subscribe(format!("{prefix}.{region}.>")).await.map_err(|e| e.to_string())?;
                let one_per_region = c
                    .queue_subscribe(format!("{prefix}.>"), format!("region-{region}"))
                    .await
                    .map_err(|e| e.to_string())?;
                c.flush().await.map_err(|e| e.to_string())?;
                Ok::<_, String>((l, futures_util::stream::select(own_region, one_per_region)))
            }
        });
    let mut subscribe_failures = HashMap::new();
    let mut subscriptions_made = Vec::new();
    for (listener, outcome) in listeners.iter().zip(futures_util::future::join_all(subscriptions).await) {
        match outcome {
            Ok(s) => subscriptions_made.push(s),
            Err(e) => {
                subscribe_failures.insert(*listener, format!("cannot subscribe at {listener}: {e}"));
            }
        }
    }
    // What each sender must reach: for each of its probes, the servers that count.
    let sender_of: Vec<usize> = probes
        .iter()
        .map(|p| senders.binary_search(&p.from.as_str()).expect("every probe's sender is listed"))
        .collect();
    let mut wanted: Vec<Vec<&[&str]>> = vec![Vec::new(); senders.len()];
    for (sender, receivers) in sender_of.iter().zip(&receivers_of) {
        wanted[*sender].push(receivers);
    }
    let arrivals: std::sync::Mutex<HashMap<(usize, &str), Instant>> = Default::default();
    let first_sent: Vec<std::sync::OnceLock<Instant>> = senders.iter().map(|_| Default::default()).collect();
    let deadline = tokio::time::Instant::now() + PROBE_TIMEOUT;
    let (all_sent, sending_over) = tokio::sync::watch::channel(false);
    let reached = |sender: usize| {
        let seen = arrivals.lock().expect("probe arrivals lock");
        wanted[sender]
            .iter()
            .all(|those| those.iter().any(|r| seen.contains_key(&(sender, *r))))
    };
    let sending = senders.iter().enumerate().map(|(i, sender)| {
        let (first_sent, reached, subject) = (&first_sent, &reached, subject_of(i));
        async move {
            let Ok(client) = &conns[sender] else { return };
            let mut wait = BROADCAST_RESEND_FIRST;
            while tokio::time::Instant::now() < deadline && !reached(i) {
                let _ = first_sent[i].set(Instant::now());
                if client.publish(subject.clone(), "probe".into()).await.is_err() || client.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(BROADCAST_RESEND_AT_MOST_EVERY);
            }
        }
    });
    let listening = subscriptions_made.into_iter().map(|(listener, mut sub)| {
        let (arrivals, mut sending_over) = (&arrivals, sending_over.clone());
        async move {
            loop {
                let message = tokio::select! {
                    m = tokio::time::timeout_at(deadline, sub.next()) => m,
                    _ = sending_over.changed() => break,
                };
                let Ok(Some(message)) = message else { break };
                let sender = message.subject.rsplit('.').next().and_then(|i| i.parse::<usize>().ok());
                if let Some(sender) = sender {
                    arrivals
                        .lock()
                        .expect("probe arrivals lock")
                        .entry((sender, listener))
                        .or_insert_with(Instant::now);
                }
            }
            let (own_region, one_per_region) = sub.into_inner();
            for mut sub in [own_region, one_per_region] {
                let _ = sub.unsubscribe().await;
            }
        }
    });
    tokio::join!(
        async {
            futures_util::future::join_all(sending).await;
            let _ = all_sent.send(true);
        },
        futures_util::future::join_all(listening)
    );

    let arrivals = arrivals.into_inner().expect("probe arrivals lock");
    probes
        .iter()
        .zip(sender_of.iter().zip(&receivers_of))
        .map(|(p, (&sender, receivers))| {
            let at = receivers
                .iter()
                .copied()
                .filter_map(|r| arrivals.get(&(sender, r)).map(|t| (r, *t)))
                .min_by_key(|(_, t)| *t);
            let outcome = match (&conns[p.from.as_str()], at, first_sent[sender].get()) {
                (Err(e), _, _) => Err(e.clone()),
                (Ok(_), Some((r, t)), Some(sent)) => {
                    let latency = t.saturating_duration_since(*sent);
                    let place = if p.kind == ProbeKind::Gateway {
                        format!(" at {r}")
                    } else {
                        String::new()
                    };
                    Ok((format!("delivered in {} ms{place}", latency.as_millis()), latency))
                }
                (Ok(_), _, _) => Err(receivers
                    .iter()
                    .find_map(|r| match &conns[r] {
                        Err(e) => Some(e.clone()),
                        Ok(_) => subscribe_failures.get(r).cloned(),
                    })
                    .unwrap_or_else(|| format!("not delivered within {} s", PROBE_TIMEOUT.as_secs()))),
            };
            ProbeReport {
                kind: p.kind,
                from: p.from.clone(),
                to: p.to.clone(),
                subject: subject_of(sender),
                expect_delivery: true,
                ok: outcome.is_ok(),
                latency_ms: outcome.as_ref().ok().map(|(_, l)| l.as_secs_f64() * 1000.0),
                detail: outcome.map(|(d, _)| d).unwrap_or_else(|e| e),
            }
        })
        .collect()
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
