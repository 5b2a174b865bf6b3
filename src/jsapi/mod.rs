//! The JetStream API as JSON requests over a NATS connection (`$JS.API.*`). Configs stay JSON
//! so a diff can compare exactly the fields the topology sets, whatever the server adds.

mod snapshot;

pub use snapshot::SnapshotHeader;

use serde_json::{Map, Value, json};
use std::time::Duration;

use crate::desired::Desired;
use crate::material::Keys;

/// An error reply of the JetStream API, or no reply at all.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{description} (JetStream error {code}/{err_code})")]
    Server { code: u16, err_code: u32, description: String },
    #[error("no reply from the JetStream API within {0:?} (no quorum, or the servers are down)")]
    Timeout(Duration),
    #[error("{0}")]
    Transport(String),
    /// A listing the cluster could not complete: these objects' leaders did not answer in time.
    #[error("the JetStream API could not report {}: their leaders did not answer (an election in progress, or their servers are down)", .0.join(", "))]
    Incomplete(Vec<String>),
}

/// Error codes the callers branch on.
pub const STREAM_NOT_FOUND: u32 = 10059;
/// The message is not (or no longer) in the stream.
pub const MESSAGE_NOT_FOUND: u32 = 10057;
pub const CONSUMER_NOT_FOUND: u32 = 10014;
pub const RECONFIGURATION_IN_PROGRESS: u32 = 10226;
/// `SERVER.REMOVE` of a server the meta group does not have.
pub const PEER_NOT_MEMBER: u32 = 10044;
/// No peers for the replicas or placement (nats-server's "no suitable peers for placement",
/// the reasons follow in the description).
pub const NO_SUITABLE_PEERS: u32 = 10005;
/// Not enough resources for a consumer or stream on the peers chosen.
pub const INSUFFICIENT_RESOURCES: u32 = 10023;
/// The stream's leader could not create its store.
pub const STORE_FAILED: u32 = 10049;

/// The reasons nats-server gives after "no suitable peers for placement", each as it wrote it.
fn placement_reasons(description: &str) -> impl Iterator<Item = &str> {
    let reasons = description.strip_prefix("no suitable peers for placement").unwrap_or(description);
    reasons.split(',').map(str::trim).filter(|reason| !reason.is_empty())
}

impl ApiError {
    pub fn err_code(&self) -> Option<u32> {
        match self {
            ApiError::Server { err_code, .. } => Some(*err_code),
            _ => None,
        }
    }

    /// Worth another try: the cluster is busy or electing, not refusing.
    pub fn is_transient(&self) -> bool {
        match self {
            // While the meta group fills, a peer the leader has not yet heard from (its
            // statistics arrive after it joins) counts as offline, and a region whose members
            // have not all joined has too few peers, which the server gives no reason for
            // (validate refuses more replicas than a region has nodes). Both pass within
            // moments; a reason naming the configuration (tags, storage) does not.
            ApiError::Server {
                err_code: NO_SUITABLE_PEERS,
                description,
                ..
            } => placement_reasons(description).all(|reason| reason == "peer offline"),
            // Right after an account's JWT reaches the servers, the stream's store can fail to
            // be created once on a peer still applying the account's limits; it takes on retry.
            ApiError::Server {
                err_code: STORE_FAILED, ..
            } => true,
            ApiError::Server { err_code, code, .. } => *err_code == RECONFIGURATION_IN_PROGRESS || *code == 503,
            ApiError::Timeout(_) | ApiError::Transport(_) | ApiError::Incomplete(_) => true,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self.err_code(), Some(STREAM_NOT_FOUND | CONSUMER_NOT_FOUND))
    }
}

/// Calls the API again while the cluster answers that it is busy or electing (pausing 50 ms,
/// doubling up to 2 s), for at most `patience`; any other answer is returned.
pub async fn retry_transient<T, F, Fut>(patience: Duration, mut call: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        match call().await {
            Err(e) if e.is_transient() && started.elapsed() + pause < patience => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// The error a JetStream API reply carries, if it is one.
fn api_error(reply: &Value) -> Option<ApiError> {
    let err = reply.get("error")?;
    Some(ApiError::Server {
        code: err["code"].as_u64().unwrap_or(0) as u16,
        err_code: err["err_code"].as_u64().unwrap_or(0) as u32,
        description: err["description"].as_str().unwrap_or("unknown error").to_string(),
    })
}

/// A connection to the JetStream API of one account.
#[derive(Clone)]
pub struct JsApi {
    client: async_nats::Client,
    timeout: Duration,
    /// `$JS.API`, or `$JS.<domain>.API` for another JetStream domain (a leafnode's).
    prefix: String,
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

impl JsApi {
    /// Connects to any of the JetStream servers as the account's notif-infra user (anonymous
    /// without accounts).
    pub async fn connect(desired: &Desired, account: &Option<String>, keys: &Keys) -> Result<JsApi, ApiError> {
        let urls = &desired.jetstream_urls;
        let opts = crate::client::nats_options(desired, keys, account)
            .map_err(ApiError::Transport)?
            .name("notif-infra")
            .connection_timeout(Duration::from_secs(2))
            .request_timeout(Some(REQUEST_TIMEOUT))
            .retry_on_initial_connect()
            // A client that gives up reconnecting stays closed; the callers' deadlines bound the wait.
            .max_reconnects(None);
        let addrs: Vec<async_nats::ServerAddr> = urls
            .iter()
            .map(|u| u.parse().map_err(|e| ApiError::Transport(format!("bad server url {u}: {e}"))))
            .collect::<Result<_, _>>()?;
        let connect = opts.connect(addrs);
        let client = tokio::time::timeout(Duration::from_secs(5), connect)
            .await
            .map_err(|_| ApiError::Transport(format!("cannot connect to {} within 5 s", urls.join(", "))))?
            .map_err(|e| ApiError::Transport(format!("cannot connect to {}: {e}", urls.join(", "))))?;
        Ok(JsApi {
            client,
            timeout: REQUEST_TIMEOUT,
            prefix: "$JS.API".into(),
        })
    }

    /// The same connection speaking to JetStream domain `domain` (`None`: the connected
    /// servers' own), as a leafnode's streams are reached from the regions.
    pub fn in_domain(&self, domain: Option<&str>) -> JsApi {
        JsApi {
            prefix: domain.map(|d| format!("$JS.{d}.API")).unwrap_or_else(|| "$JS.API".into()),
            ..self.clone()
        }
    }

    pub async fn request(&self, api: &str, payload: &Value) -> Result<Value, ApiError> {
        let subject = format!("{}.{api}", self.prefix);
        let body = serde_json::to_vec(payload).expect("JSON serializes");
        let reply = match tokio::time::timeout(self.timeout, self.client.request(subject, body.into())).await {
            Err(_) => return Err(ApiError::Timeout(self.timeout)),
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::TimedOut => return Err(ApiError::Timeout(self.timeout)),
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                return Err(ApiError::Server {
                    code: 503,
                    err_code: 0,
                    description: "JetStream is not available (no responders)".into(),
                });
            }
            Ok(Err(e)) => return Err(ApiError::Transport(e.to_string())),
            Ok(Ok(m)) => m,
        };
        let value: Value = serde_json::from_slice(&reply.payload).map_err(|e| ApiError::Transport(format!("bad API reply: {e}")))?;
        api_error(&value).map_or(Ok(value), Err)
    }

    /// Every stream's info (config, state, cluster), all pages.
    pub async fn streams(&self) -> Result<Vec<Value>, ApiError> {
        self.paged("STREAM.LIST", "streams").await
    }

    pub async fn consumers(&self, stream: &str) -> Result<Vec<Value>, ApiError> {
        self.paged(&format!("CONSUMER.LIST.{stream}"), "consumers").await
    }

    async fn paged(&self, api: &str, field: &str) -> Result<Vec<Value>, ApiError> {
        let mut all = Vec::new();
        loop {
            let page = self.request(api, &json!({ "offset": all.len() })).await?;
            // In a cluster a listing leaves out what it could not gather: taking the rest as
            // the whole would show existing objects as missing.
            let mut unreported: Vec<String> = page["missing"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m.as_str().map(str::to_string))
                .collect();
            unreported.extend(page["offline"].as_object().into_iter().flat_map(|o| o.keys().cloned()));
            if !unreported.is_empty() {
                return Err(ApiError::Incomplete(unreported));
            }
            let items = page[field].as_array().cloned().unwrap_or_default();
            let total = page["total"].as_u64().unwrap_or(0) as usize;
            let empty = items.is_empty();
            all.extend(items);
            if empty || all.len() >= total {
                return Ok(all);
            }
        }
    }

    pub async fn stream_info(&self, stream: &str) -> Result<Value, ApiError> {
        self.request(&format!("STREAM.INFO.{stream}"), &json!({})).await
    }

    pub async fn create_stream(&self, config: &Map<String, Value>) -> Result<Value, ApiError> {
        let name = config["name"].as_str().unwrap_or_default();
        self.request(&format!("STREAM.CREATE.{name}"), &Value::Object(config.clone())).await
    }

    pub async fn update_stream(&self, config: &Map<String, Value>) -> Result<Value, ApiError> {
        let name = config["name"].as_str().unwrap_or_default();
        self.request(&format!("STREAM.UPDATE.{name}"), &Value::Object(config.clone())).await
    }

    pub async fn delete_stream(&self, stream: &str) -> Result<Value, ApiError> {
        self.request(&format!("STREAM.DELETE.{stream}"), &json!({})).await
    }

    /// Creates (`update` false) or updates a durable consumer.
    pub async fn put_consumer(&self, stream: &str, config: &Map<String, Value>, update: bool) -> Result<Value, ApiError> {
        let name = config["durable_name"].as_str().unwrap_or_default();
        let body = json!({
            "stream_name": stream,
            "config": config,
            "action": if update { "update" } else { "create" },
        });
        self.request(&format!("CONSUMER.CREATE.{stream}.{name}"), &body).await
    }

    pub async fn delete_consumer(&self, stream: &str, name: &str) -> Result<Value, ApiError> {
        self.request(&format!("CONSUMER.DELETE.{stream}.{name}"), &json!({})).await
    }

    pub async fn consumer_info(&self, stream: &str, name: &str) -> Result<Value, ApiError> {
        self.request(&format!("CONSUMER.INFO.{stream}.{name}"), &json!({})).await
    }

    /// The last message the stream holds on `subject` (`message.seq`, `message.hdrs` base64).
    pub async fn last_message(&self, stream: &str, subject: &str) -> Result<Value, ApiError> {
        self.request(&format!("STREAM.MSG.GET.{stream}"), &json!({ "last_by_subj": subject }))
            .await
    }

    pub async fn delete_message(&self, stream: &str, seq: u64) -> Result<Value, ApiError> {
        self.request(&format!("STREAM.MSG.DELETE.{stream}"), &json!({ "seq": seq, "no_erase": true }))
            .await
    }

    /// Takes `server` out of the stream's group (and its consumers'); nats-server places a new
    /// replica elsewhere when the cluster has a server for it.
    pub async fn remove_stream_peer(&self, stream: &str, server: &str) -> Result<Value, ApiError> {
        self.request(&format!("STREAM.PEER.REMOVE.{stream}"), &json!({ "peer": server }))
            .await
    }

    /// Asks the stream's leader to hand leadership to another current replica.
    pub async fn stream_leader_stepdown(&self, stream: &str) -> Result<Value, ApiError> {
        self.request(&format!("STREAM.LEADER.STEPDOWN.{stream}"), &json!({})).await
    }

    /// Removes a server that is gone for good from the JetStream meta group.
    pub async fn remove_peer(&self, server: &str) -> Result<Value, ApiError> {
        self.request("SERVER.REMOVE", &json!({ "peer": server })).await
    }

    pub async fn close(self) {
        let _ = self.client.drain().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(err_code: u32, description: &str) -> ApiError {
        ApiError::Server {
            code: 400,
            err_code,
            description: description.into(),
        }
    }

    #[test]
    fn a_meta_group_still_filling_is_worth_waiting_for_but_a_configuration_refusal_is_not() {
        assert!(refusal(NO_SUITABLE_PEERS, "no suitable peers for placement, peer offline").is_transient());
        assert!(refusal(NO_SUITABLE_PEERS, "no suitable peers for placement").is_transient());
        assert!(!refusal(NO_SUITABLE_PEERS, "insufficient resources").is_transient());
        assert!(!refusal(NO_SUITABLE_PEERS, "no suitable peers for placement, tags not matched").is_transient());
        assert!(
            !refusal(
                NO_SUITABLE_PEERS,
                "no suitable peers for placement, peer offline, insufficient storage"
            )
            .is_transient()
        );
        assert!(!refusal(NO_SUITABLE_PEERS, "no suitable peers for placement, miscellaneous issue").is_transient());
        assert!(!refusal(INSUFFICIENT_RESOURCES, "insufficient resources").is_transient());
        assert!(refusal(RECONFIGURATION_IN_PROGRESS, "reconfiguration in progress").is_transient());
        assert!(refusal(STORE_FAILED, "error creating store for stream").is_transient());
        assert!(!refusal(10065, "subjects overlap with an existing stream").is_transient());
    }
}
