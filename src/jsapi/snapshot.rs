//! Moving a stream's whole store through the JetStream API: `STREAM.SNAPSHOT` streams it out in
//! chunks (each acknowledged, so the server keeps its window), `STREAM.RESTORE` takes the chunks
//! back, each as a request the server answers, and an empty one to finish. The store travels as
//! nats-server writes it (an s2-compressed tar with the consumers' state): it is kept as is.

use serde_json::{Value, json};
use std::time::Duration;

use super::{ApiError, JsApi};
use futures_util::StreamExt;

/// The bytes a chunk carries: nats-server's own default.
const CHUNK_SIZE: usize = 128 * 1024;
/// Longest silence between two chunks of a snapshot before it counts as lost.
const CHUNK_PATIENCE: Duration = Duration::from_secs(30);
/// How long a restore waits for the cluster to take it (a placement it refuses for a moment).
const START_PATIENCE: Duration = Duration::from_secs(30);
/// The server builds the stream from the staged store before it answers the final request.
const FINISH_PATIENCE: Duration = Duration::from_secs(300);
/// The server that takes the restore subscribes to its chunk subject as it answers; in a cluster
/// that interest reaches the client's server over a route a moment later, and a chunk sent
/// before it finds no responders (so was not taken, and is sent again).
const INTEREST_PATIENCE: Duration = Duration::from_secs(5);

/// A stream's configuration and state when its snapshot began.
#[derive(Debug, Clone)]
pub struct SnapshotHeader {
    pub config: Value,
    pub state: Value,
}

impl JsApi {
    /// Streams `stream`'s snapshot (messages and consumers) into `sink`, chunk by chunk.
    pub async fn snapshot(&self, stream: &str, mut sink: impl FnMut(&[u8]) -> std::io::Result<()>) -> Result<SnapshotHeader, ApiError> {
        let inbox = self.client.new_inbox();
        let mut chunks = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        let request = json!({ "deliver_subject": inbox, "chunk_size": CHUNK_SIZE, "no_consumers": false, "jsck": false });
        let header = self.request(&format!("STREAM.SNAPSHOT.{stream}"), &request).await?;
        loop {
            let chunk = match tokio::time::timeout(CHUNK_PATIENCE, chunks.next()).await {
                Err(_) => return Err(ApiError::Timeout(CHUNK_PATIENCE)),
                Ok(None) => return Err(ApiError::Transport("the connection closed during the snapshot".into())),
                Ok(Some(m)) => m,
            };
            if chunk.payload.is_empty() {
                // The end: a status other than success says why the server stopped early.
                if let Some(status) = chunk.status.filter(|s| s.as_u16() >= 300) {
                    let description = chunk.description.unwrap_or_default();
                    return Err(ApiError::Server {
                        code: status.as_u16(),
                        err_code: 0,
                        description: format!("the snapshot of {stream} stopped: {description}"),
                    });
                }
                break;
            }
            sink(&chunk.payload).map_err(|e| ApiError::Transport(format!("cannot keep the snapshot of {stream}: {e}")))?;
            if let Some(reply) = chunk.reply {
                self.client
                    .publish(reply, Default::default())
                    .await
                    .map_err(|e| ApiError::Transport(e.to_string()))?;
            }
        }
        Ok(SnapshotHeader {
            config: header["config"].clone(),
            state: header["state"].clone(),
        })
    }

    /// Creates the stream `config` names from a snapshot read through `source` (`None` at its
    /// end), calling `sent` with each chunk's size. Returns the restored stream's info.
    pub async fn restore(
        &self,
        config: &Value,
        state: &Value,
        mut source: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
        sent: impl Fn(u64),
    ) -> Result<Value, ApiError> {
        let stream = config["name"].as_str().unwrap_or_default();
        // A peer the meta leader has not heard from yet (right after a start) refuses placement
        // for a moment; nothing is staged until the request is taken.
        let (api, request) = (format!("STREAM.RESTORE.{stream}"), json!({ "config": config, "state": state }));
        let started = super::retry_transient(START_PATIENCE, || self.request(&api, &request)).await?;
        let deliver = started["deliver_subject"]
            .as_str()
            .ok_or_else(|| ApiError::Transport(format!("the restore of {stream} was not given a subject to send to")))?
            .to_string();
        let mut buf = vec![0u8; CHUNK_SIZE];
        loop {
            let n = fill(&mut source, &mut buf).map_err(|e| ApiError::Transport(format!("cannot read the snapshot of {stream}: {e}")))?;
            if n == 0 {
                break;
            }
            let reply = self.chunk_request(&deliver, &buf[..n], self.timeout).await?;
            if !reply.is_empty() {
                check_reply(&reply)?;
            }
            sent(n as u64);
        }
        let done = self.chunk_request(&deliver, &[], FINISH_PATIENCE).await?;
        check_reply(&done)
    }

    /// Sends one chunk (or the final empty one) and waits `patience` for its answer, sending it
    /// again while the restore's subject has no responders yet.
    async fn chunk_request(&self, subject: &str, body: &[u8], patience: Duration) -> Result<Vec<u8>, ApiError> {
        let interest_deadline = tokio::time::Instant::now() + INTEREST_PATIENCE;
        loop {
            match tokio::time::timeout(patience, self.client.request(subject.to_string(), body.to_vec().into())).await {
                Err(_) => return Err(ApiError::Timeout(patience)),
                Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::TimedOut => return Err(ApiError::Timeout(patience)),
                Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders && tokio::time::Instant::now() < interest_deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(Err(e)) => return Err(ApiError::Transport(format!("the restore's subject {subject}: {e}"))),
                Ok(Ok(m)) => return Ok(m.payload.to_vec()),
            }
        }
    }
}

/// Reads until `buf` is full or the source ends.
fn fill(source: &mut impl FnMut(&mut [u8]) -> std::io::Result<usize>, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn check_reply(payload: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| ApiError::Transport(format!("bad API reply: {e}")))?;
    super::api_error(&value).map_or(Ok(value), Err)
}
