//! The path a flow's message takes, as the servers themselves record it (message tracing,
//! nats-server 2.11+, ADR-41): the flow's message is published with `Nats-Trace-Dest`
//! and `Nats-Trace-Only` (traced to the end, delivered nowhere), and every server it crosses
//! reports how it came in (client, route, gateway, leafnode), where it went out and which
//! stream took it. The hops are ordered by `Nats-Trace-Hop`; a flow's `via:` sites must each
//! appear among them, and when one does not, the report names where the message stopped.

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use super::flows::MARK_HEADER;
use crate::client::own_connection;
use crate::desired::{Desired, ExpectedFlow, Role, TargetKind};
use crate::material::Keys;

/// How long trace events are collected after the last one arrived.
const QUIET: Duration = Duration::from_millis(400);
/// How long the first event may take.
const FIRST_EVENT: Duration = Duration::from_secs(3);
/// A path that misses a `via:` site is traced this many times before it is reported.
const ATTEMPTS: usize = 3;
/// The name the trace's connections carry, and how long each may take to open.
const TRACE_CLIENT: &str = "notif-infra-trace";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One server the message crossed.
#[derive(Debug, Clone, Serialize)]
pub struct Hop {
    pub server: String,
    /// The region or leafnode the server belongs to.
    pub site: String,
    /// `Nats-Trace-Hop`: empty for the server the publisher is connected to, `1`, `1.2`… after.
    pub hop: String,
    /// How it came in: `client NAME`, `route from S`, `gateway from S`, `leafnode from S`.
    pub came_in: String,
    /// Where it went: `route to S`, `gateway to S`, `leafnode to S`, `client NAME`.
    pub went_out: Vec<String>,
    /// The streams that took it here.
    pub stored_in: Vec<String>,
    /// Milliseconds from its arrival at the first server.
    pub at_ms: f64,
    /// What a server refused (a permission), when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlowTrace {
    pub flow: String,
    pub hops: Vec<Hop>,
    /// The `via:` sites, each with whether the message passed through it.
    pub via: Vec<(String, bool)>,
    pub ok: bool,
    pub detail: String,
}

#[derive(Deserialize)]
struct TraceMessage {
    server: TraceServer,
    #[serde(default)]
    request: TraceRequest,
    #[serde(default)]
    events: Vec<TraceEvent>,
}

#[derive(Deserialize)]
struct TraceServer {
    name: String,
}

#[derive(Deserialize, Default)]
struct TraceRequest {
    #[serde(default)]
    header: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct TraceEvent {
    #[serde(rename = "type")]
    kind_of_event: String,
    #[serde(default)]
    ts: Option<String>,
    #[serde(default)]
    kind: Option<u8>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// nats-server's connection kinds, as trace events number them.
fn connection(kind: Option<u8>) -> &'static str {
    match kind {
        Some(0) => "client",
        Some(1) => "route",
        Some(2) => "gateway",
        Some(3) => "system",
        Some(4) => "leafnode",
        Some(5) => "jetstream",
        Some(6) => "account",
        _ => "connection",
    }
}

fn site_of(desired: &Desired, server: &str) -> String {
    match desired.server(server) {
        Some(s) if s.role == Role::Leaf => s.name.clone(),
        Some(s) => s.region.clone(),
        None => "?".into(),
    }
}

fn nanos(ts: &Option<String>) -> Option<i128> {
    let ts = ts.as_deref()?;
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos())
}

/// The hops in path order, from the servers' trace messages.
fn hops(desired: &Desired, messages: Vec<TraceMessage>) -> Vec<Hop> {
    let mut hops: Vec<(Vec<u32>, Option<i128>, Hop)> = messages
        .into_iter()
        .map(|m| {
            let hop = m
                .request
                .header
                .get("Nats-Trace-Hop")
                .and_then(|v| v.first())
                .cloned()
                .unwrap_or_default();
            let order: Vec<u32> = hop.split('.').filter_map(|n| n.parse().ok()).collect();
            let mut entry = Hop {
                site: site_of(desired, &m.server.name),
                server: m.server.name,
                hop,
                came_in: String::new(),
                went_out: Vec::new(),
                stored_in: Vec::new(),
                at_ms: 0.0,
                error: None,
            };
            let mut arrived = None;
            for e in &m.events {
                let name = e.name.clone().unwrap_or_default();
                let kind = connection(e.kind);
                match e.kind_of_event.as_str() {
                    "in" => {
                        arrived = nanos(&e.ts);
                        entry.came_in = if kind == "client" {
                            format!("client {name}")
                        } else {
                            format!("{kind} from {name}")
                        };
                    }
                    "eg" => entry.went_out.push(if kind == "client" {
                        format!("client {name}")
                    } else {
                        format!("{kind} to {name}")
                    }),
                    "js" => entry.stored_in.extend(e.stream.clone()),
                    _ => {}
                }
                if e.error.is_some() {
                    entry.error = e.error.clone();
                }
            }
            (order, arrived, entry)
        })
        .collect();
    hops.sort_by(|a, b| a.0.cmp(&b.0));
    let first = hops.first().and_then(|h| h.1);
    hops.into_iter()
        .map(|(_, arrived, mut hop)| {
            if let (Some(first), Some(arrived)) = (first, arrived) {
                hop.at_ms = (arrived - first) as f64 / 1e6;
            }
            hop
        })
        .collect()
}

/// notif-infra's own connection in the publisher's account, at the publisher's server,
/// subscribed to every trace subject of `flow` (`prefix.>`) before anything is traced: the
/// servers publish the trace messages in that account, and interest in them must have crossed
/// the gateways before the first traced message does.
async fn trace_listener(
    desired: &Desired,
    keys: &Keys,
    flow: &ExpectedFlow,
    prefix: &str,
) -> Result<(async_nats::Client, async_nats::Subscriber), String> {
    let server = desired
        .server(&flow.publisher.server)
        .ok_or_else(|| format!("unknown server {}", flow.publisher.server))?;
    let client = own_connection(desired, keys, &flow.publisher.account, server, TRACE_CLIENT, CONNECT_TIMEOUT).await?;
    let events = client.subscribe(format!("{prefix}.>")).await.map_err(|e| e.to_string())?;
    client.flush().await.map_err(|e| e.to_string())?;
    Ok((client, events))
}

/// Traces the message of `flow` once: its trace messages, in the order they came. The servers
/// trace only for a publisher allowed to publish to the trace subject, which a flow's user seldom
/// is: notif-infra's own user of the same account publishes it, on the same subject at the same
/// server, so it takes the same path (the flow itself proved the user may publish it).
async fn trace_once(
    client: &async_nats::Client,
    events: &mut async_nats::Subscriber,
    flow: &ExpectedFlow,
    dest: &str,
) -> Result<Vec<TraceMessage>, String> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Trace-Dest", dest);
    headers.insert("Nats-Trace-Only", "true");
    headers.insert(MARK_HEADER, format!("{}/trace", flow.name).as_str());
    client
        .publish_with_headers(flow.publisher.subject.clone(), headers, "notif-infra flow trace".into())
        .await
        .map_err(|e| format!("publish refused: {e}"))?;
    client.flush().await.map_err(|e| e.to_string())?;
    let mut messages = Vec::new();
    let mut wait = FIRST_EVENT;
    while let Ok(Some(m)) = tokio::time::timeout(wait, events.next()).await {
        if m.subject.as_str() != dest {
            continue;
        }
        if let Ok(parsed) = serde_json::from_slice::<TraceMessage>(&m.payload) {
            messages.push(parsed);
        }
        wait = QUIET;
    }
    Ok(messages)
}

/// Where the message stopped: the last servers of the path and where they sent it.
fn stopped_at(hops: &[Hop]) -> String {
    let ends: Vec<String> = hops
        .iter()
        .filter(|h| !h.went_out.iter().any(|o| !o.starts_with("client")))
        .map(|h| {
            let out = if h.went_out.is_empty() {
                "nowhere".to_string()
            } else {
                h.went_out.join(", ")
            };
            let refused = h.error.as_deref().map(|e| format!(", refused: {e}")).unwrap_or_default();
            format!("{} ({}; it went out to {out}{refused})", h.server, h.site)
        })
        .collect();
    ends.join("; ")
}

/// Notif-infra's own subscriptions where the flow's subscribers are, on the subjects they get
/// the message under: a traced message goes only where there is interest, and the flow's own
/// subscribers are gone once the flow was proven. Streams are interest of their own. A server
/// that cannot be reached gets no stand-in: the trace then shows where the message stopped.
async fn stand_in_subscribers(desired: &Desired, keys: &Keys, flow: &ExpectedFlow) -> Vec<(async_nats::Client, async_nats::Subscriber)> {
    let mut clients = Vec::new();
    for t in flow.targets.iter().filter(|t| t.must_arrive) {
        let TargetKind::Subscriber { client } = &t.kind else { continue };
        let Some(server) = desired.server(&client.server) else { continue };
        let Ok(c) = own_connection(desired, keys, &client.account, server, TRACE_CLIENT, CONNECT_TIMEOUT).await else {
            continue;
        };
        // Dropping a subscriber unsubscribes: it is kept until the trace is done.
        if let Ok(subscription) = c.subscribe(t.subject.clone()).await
            && c.flush().await.is_ok()
        {
            clients.push((c, subscription));
        }
    }
    clients
}

/// Traces every flow and judges its `via:`.
pub async fn trace_all(desired: &Desired, keys: &Keys, nonce: &str) -> Vec<FlowTrace> {
    let runs = desired.flows.iter().enumerate().map(|(i, flow)| async move {
        let prefix = format!("_NOTIF.trace.{nonce}.{i}");
        let (client, mut events) = match trace_listener(desired, keys, flow, &prefix).await {
            Ok(listening) => listening,
            Err(detail) => {
                return FlowTrace {
                    flow: flow.name.clone(),
                    hops: Vec::new(),
                    via: flow.via.iter().map(|v| (v.clone(), false)).collect(),
                    ok: false,
                    detail,
                };
            }
        };
        let interest = stand_in_subscribers(desired, keys, flow).await;
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                // Interest may still be crossing a link that just came up.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let trace = match trace_once(&client, &mut events, flow, &format!("{prefix}.{attempt}")).await {
                Ok(messages) => judge(flow, hops(desired, messages)),
                Err(detail) => FlowTrace {
                    flow: flow.name.clone(),
                    hops: Vec::new(),
                    via: flow.via.iter().map(|v| (v.clone(), false)).collect(),
                    ok: false,
                    detail,
                },
            };
            let done = trace.ok;
            last = Some(trace);
            if done {
                break;
            }
        }
        for (c, _) in interest {
            let _ = c.drain().await;
        }
        let _ = client.drain().await;
        last.expect("at least one attempt")
    });
    futures_util::future::join_all(runs).await
}

fn judge(flow: &ExpectedFlow, hops: Vec<Hop>) -> FlowTrace {
    let via: Vec<(String, bool)> = flow.via.iter().map(|v| (v.clone(), hops.iter().any(|h| &h.site == v))).collect();
    let missed: Vec<&str> = via.iter().filter(|(_, seen)| !seen).map(|(v, _)| v.as_str()).collect();
    let refused = hops
        .iter()
        .find_map(|h| h.error.as_ref().map(|e| format!("{} refused it: {e}", h.server)));
    let (ok, detail) = if hops.is_empty() {
        (
            false,
            "no server reported the message (tracing needs nats-server 2.11 or later)".to_string(),
        )
    } else if !missed.is_empty() {
        (
            false,
            format!("it did not pass through {}: it stopped at {}", missed.join(", "), stopped_at(&hops)),
        )
    } else if let Some(refused) = refused {
        (false, refused)
    } else {
        let path: Vec<&str> = hops.iter().map(|h| h.server.as_str()).collect();
        (true, format!("{} hop(s): {}", hops.len(), path.join(" -> ")))
    };
    FlowTrace {
        flow: flow.name.clone(),
        hops,
        via,
        ok,
        detail,
    }
}
