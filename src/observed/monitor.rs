//! What a live server says about itself through its monitoring endpoints
//! (`/healthz`, `/varz`, `/routez`, `/gatewayz`, `/leafz`, `/jsz`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::desired::{ClientTls, Desired};

/// One server's answers; fields stay empty where the endpoint did not answer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeObservation {
    /// `None` while unreachable; `Some(Err(reason))` when `/healthz` names a problem.
    pub health: Option<Result<(), String>>,
    pub config_digest: Option<String>,
    pub config_load_time: Option<String>,
    /// The nats-server version it runs.
    pub version: Option<String>,
    /// Distinct peers this server has routes to (`num_routes` counts pooled connections).
    pub route_peers: Vec<String>,
    /// Remote clusters this server has its outbound gateway connection to.
    pub gateways_out: Vec<String>,
    /// Inbound gateway connections by remote cluster: the server ID at the other end of each.
    pub gateways_in: BTreeMap<String, Vec<String>>,
    pub leafs: Vec<LeafConnection>,
    pub meta: Option<MetaCluster>,
    /// Its load and resource use, from `/varz`.
    pub figures: Option<ServerFigures>,
    /// Why the server could not be read, when it could not.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LeafConnection {
    /// The server name at the other end.
    pub name: String,
    pub account: String,
    #[serde(default)]
    pub is_spoke: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MetaCluster {
    pub leader: Option<String>,
    pub cluster_size: usize,
}

/// A server's load and resource use as `/varz` reports it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ServerFigures {
    pub connections: u64,
    pub slow_consumers: u64,
    /// Resident memory.
    pub memory_bytes: u64,
    /// JetStream's memory and file stores: bytes used and the server's limit (0: none).
    pub memory_store: (u64, u64),
    pub file_store: (u64, u64),
}

#[derive(Deserialize)]
struct Varz {
    config_digest: Option<String>,
    config_load_time: Option<String>,
    version: Option<String>,
    #[serde(default)]
    connections: u64,
    #[serde(default)]
    slow_consumers: u64,
    #[serde(default)]
    mem: u64,
    #[serde(default)]
    jetstream: VarzJetStream,
}

#[derive(Deserialize, Default)]
struct VarzJetStream {
    #[serde(default)]
    config: VarzJsConfig,
    #[serde(default)]
    stats: VarzJsStats,
}

#[derive(Deserialize, Default)]
struct VarzJsConfig {
    #[serde(default)]
    max_memory: i64,
    #[serde(default)]
    max_storage: i64,
}

#[derive(Deserialize, Default)]
struct VarzJsStats {
    #[serde(default)]
    memory: u64,
    #[serde(default)]
    storage: u64,
}

#[derive(Deserialize)]
struct Routez {
    #[serde(default)]
    routes: Vec<Route>,
}

#[derive(Deserialize)]
struct Route {
    remote_name: Option<String>,
}

#[derive(Deserialize)]
struct Gatewayz {
    #[serde(default)]
    outbound_gateways: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    inbound_gateways: BTreeMap<String, Vec<InboundGateway>>,
}

#[derive(Deserialize)]
struct InboundGateway {
    connection: GatewayConnection,
}

#[derive(Deserialize)]
struct GatewayConnection {
    /// The remote server's ID.
    name: String,
}

#[derive(Deserialize)]
struct Leafz {
    #[serde(default)]
    leafs: Vec<LeafConnection>,
}

#[derive(Deserialize)]
struct Jsz {
    meta_cluster: Option<JszMeta>,
}

#[derive(Deserialize)]
struct JszMeta {
    leader: Option<String>,
    #[serde(default)]
    cluster_size: usize,
    /// The other members, as this server sees them (the leader's view is the one that counts).
    #[serde(default)]
    replicas: Vec<MetaPeer>,
}

/// A member of the JetStream meta group as its leader sees it.
#[derive(Debug, Clone, Deserialize)]
pub struct MetaPeer {
    pub name: String,
    #[serde(default)]
    pub current: bool,
    #[serde(default)]
    pub offline: bool,
}

#[derive(Deserialize)]
struct Healthz {
    error: Option<String>,
}

#[derive(Clone)]
pub struct Monitor {
    http: reqwest::Client,
}

impl Monitor {
    /// A client for the monitoring endpoints; over https it trusts only the deployment's CA
    /// (and presents notif-infra's client certificate where clients are verified).
    pub fn new(tls: Option<&ClientTls>) -> Self {
        crate::client::install_crypto_provider();
        // The endpoints are the deployment's own: trusted by its CA alone, never by the system's
        // roots (which also spares loading those on every command). Unreadable files were
        // already reported when the PKI was loaded; without them https requests fail and say so.
        let ca = tls
            .and_then(|tls| std::fs::read(&tls.ca).ok())
            .and_then(|pem| reqwest::Certificate::from_pem(&pem).ok());
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(2))
            .tls_certs_only(ca);
        if let Some((cert, key)) = tls.and_then(|tls| tls.identity.as_ref())
            && let (Ok(mut pem), Ok(key)) = (std::fs::read(cert), std::fs::read(key))
        {
            pem.extend_from_slice(&key);
            if let Ok(identity) = reqwest::Identity::from_pem(&pem) {
                builder = builder.identity(identity);
            }
        }
        let http = builder.build().expect("the monitoring HTTP client builds");
        Monitor { http }
    }

    pub fn for_desired(desired: &Desired) -> Self {
        Monitor::new(desired.client_tls.as_ref())
    }

    /// How long to wait between two rounds of `requests` requests to the servers while waiting
    /// for them: about a thousand requests a second in all, from 10 ms to 250 ms apart. Asking
    /// faster takes the CPU the servers need to form: on 2 cores, 66 servers polled every 10 ms
    /// took 8.8 s to all answer after their start.
    pub fn poll_interval(requests: usize) -> Duration {
        Duration::from_millis(requests as u64).clamp(Duration::from_millis(10), Duration::from_millis(250))
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, base: &str, path: &str) -> Result<T, String> {
        let url = format!("{base}{path}");
        let resp = self.http.get(&url).send().await.map_err(|e| describe(&e))?;
        resp.json::<T>().await.map_err(|e| format!("{url}: {e}"))
    }

    /// `/healthz`: Ok when 200; the server's own reason otherwise.
    pub async fn health(&self, base: &str) -> Result<Result<(), String>, String> {
        let resp = self.http.get(format!("{base}/healthz")).send().await.map_err(|e| describe(&e))?;
        if resp.status().is_success() {
            return Ok(Ok(()));
        }
        let status = resp.status();
        let body: Option<Healthz> = resp.json().await.ok();
        Ok(Err(body
            .and_then(|b| b.error)
            .unwrap_or_else(|| format!("/healthz answered {status}"))))
    }

    /// Polls `/healthz` until it passes or `limit` runs out; on failure, the last reason seen.
    pub async fn wait_healthy(&self, base: &str, limit: Duration) -> Result<(), String> {
        let started = std::time::Instant::now();
        let mut last = String::from("no answer yet");
        while started.elapsed() < limit {
            match self.health(base).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(reason)) | Err(reason) => last = reason,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(last)
    }

    /// The meta leader's name and the other members as this server sees them.
    pub async fn meta_peers(&self, base: &str) -> Result<(Option<String>, Vec<MetaPeer>), String> {
        let j: Jsz = self.get(base, "/jsz").await?;
        Ok(j.meta_cluster.map(|m| (m.leader, m.replicas)).unwrap_or_default())
    }

    /// `/jsz` with every account's streams, as much of them as `depth` asks for.
    pub async fn jetstream_detail(&self, base: &str, depth: super::jetstream::JszDepth) -> Result<super::jetstream::JszDetail, String> {
        self.get(base, depth.query()).await
    }

    /// `/varz` digest and load time only (what reload confirmation needs).
    pub async fn config_digest(&self, base: &str) -> Result<(Option<String>, Option<String>), String> {
        let v: Varz = self.get(base, "/varz").await?;
        Ok((v.config_digest, v.config_load_time))
    }

    /// How many requests `observe` sends a server.
    pub const ENDPOINTS_OBSERVED: usize = 6;

    /// Reads every endpoint concurrently.
    pub async fn observe(&self, base: &str) -> NodeObservation {
        let (health, varz, routez, gatewayz, leafz, jsz) = tokio::join!(
            self.health(base),
            self.get::<Varz>(base, "/varz"),
            self.get::<Routez>(base, "/routez"),
            self.get::<Gatewayz>(base, "/gatewayz"),
            self.get::<Leafz>(base, "/leafz"),
            self.get::<Jsz>(base, "/jsz"),
        );
        let mut o = NodeObservation::default();
        match health {
            Ok(h) => o.health = Some(h),
            Err(e) => {
                o.error = Some(e);
                return o;
            }
        }
        if let Ok(v) = varz {
            o.config_digest = v.config_digest;
            o.config_load_time = v.config_load_time;
            o.version = v.version;
            o.figures = Some(ServerFigures {
                connections: v.connections,
                slow_consumers: v.slow_consumers,
                memory_bytes: v.mem,
                memory_store: (v.jetstream.stats.memory, v.jetstream.config.max_memory.max(0) as u64),
                file_store: (v.jetstream.stats.storage, v.jetstream.config.max_storage.max(0) as u64),
            });
        }
        if let Ok(r) = routez {
            let mut peers: Vec<String> = r.routes.into_iter().filter_map(|r| r.remote_name).collect();
            peers.sort();
            peers.dedup();
            o.route_peers = peers;
        }
        if let Ok(g) = gatewayz {
            o.gateways_out = g.outbound_gateways.into_keys().collect();
            o.gateways_in = g
                .inbound_gateways
                .into_iter()
                .map(|(region, conns)| (region, conns.into_iter().map(|c| c.connection.name).collect()))
                .collect();
        }
        if let Ok(l) = leafz {
            o.leafs = l.leafs;
        }
        if let Ok(j) = jsz {
            o.meta = j.meta_cluster.map(|m| MetaCluster {
                leader: m.leader.filter(|l| !l.is_empty()),
                cluster_size: m.cluster_size,
            });
        }
        o
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_connect() {
        format!("{}: connection refused or unreachable", e.url().map(|u| u.as_str()).unwrap_or("?"))
    } else if e.is_timeout() {
        format!("{}: timed out", e.url().map(|u| u.as_str()).unwrap_or("?"))
    } else {
        e.to_string()
    }
}
