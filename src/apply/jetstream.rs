//! Applying the JetStream part of a plan: streams and buckets first, then their consumers,
//! deletions last; independent objects concurrently; transient refusals retried with backoff.
//! Reports exactly what was applied, what failed and what was not attempted.

use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::time::Duration;

use crate::jsapi::{ApiError, INSUFFICIENT_RESOURCES, JsApi, NO_SUITABLE_PEERS};
use crate::observed::jetstream::Connections;
use crate::plan::{JsAction, JsChange};

/// Requests in flight at once: enough to keep the servers busy. Measured against 64: 1000 streams
/// and consumers on tmpfs in 0.74 s instead of 0.90, 10,000 in 23 s instead of 39; on disk the
/// disk is the limit either way. Timeouts are retried.
const CONCURRENCY: usize = 256;
const RETRY_FOR: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct Outcome {
    pub applied: Vec<String>,
    pub failed: Vec<(String, String)>,
    pub not_attempted: Vec<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.not_attempted.is_empty()
    }

    /// The full account of a partial failure.
    pub fn failure_report(&self) -> String {
        let mut out = format!("JetStream apply failed for {} object(s):\n", self.failed.len());
        for (label, error) in &self.failed {
            out += &format!("  - {label}: {error}\n");
        }
        if !self.not_attempted.is_empty() {
            out += &format!("not attempted ({}), since what they depend on failed:\n", self.not_attempted.len());
            for label in &self.not_attempted {
                out += &format!("  - {label}\n");
            }
        }
        out += &format!("applied ({}):", self.applied.len());
        for label in &self.applied {
            out += &format!("\n  - {label}");
        }
        out
    }
}

/// What to change in the topology for the errors a user can fix there.
fn hint(e: &ApiError) -> &'static str {
    let storage = matches!(e, ApiError::Server { description, .. } if description.contains("storage"));
    match e.err_code() {
        Some(10065) => "; another stream of the account already claims these subjects: narrow `subjects:` or remove the other stream",
        Some(10047) | Some(10028) => {
            "; the servers' JetStream storage is too small: raise `max_file_store`/`max_memory_store` or lower `max_bytes`"
        }
        Some(NO_SUITABLE_PEERS | INSUFFICIENT_RESOURCES) if storage => {
            "; no server has the storage: raise `max_file_store`/`max_memory_store` of the region or lower `max_bytes`"
        }
        Some(NO_SUITABLE_PEERS | INSUFFICIENT_RESOURCES) => {
            "; not enough servers for the replicas or placement: lower `replicas:`, fix `placement:` or add nodes"
        }
        Some(10052) | Some(10012) => {
            "; the server cannot change this in place: apply with --allow-replace (replacing loses what the object holds)"
        }
        Some(10039) => "; the account does not have JetStream: set `jetstream: true` on it",
        Some(10084) | Some(10098) | Some(10101) => {
            "; consumers of a workqueue stream need `ack_policy: explicit` and `deliver_policy: all`"
        }
        _ => "",
    }
}

/// Sends one request, again and again while the cluster answers that it is busy.
async fn with_retry<F, Fut>(call: F) -> Result<(), ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, ApiError>>,
{
    crate::jsapi::retry_transient(RETRY_FOR, call).await.map(drop)
}

async fn apply_one(api: &JsApi, c: &JsChange) -> Result<(), ApiError> {
    let consumer = !c.is_stream_like();
    match (c.action, consumer) {
        (JsAction::Create, false) => with_retry(|| api.create_stream(&c.config)).await,
        (JsAction::Update, false) => with_retry(|| api.update_stream(&c.config)).await,
        (JsAction::Replace, false) => {
            with_retry(|| api.delete_stream(&c.stream)).await?;
            with_retry(|| api.create_stream(&c.config)).await
        }
        (JsAction::Delete, false) => with_retry(|| api.delete_stream(&c.stream)).await,
        (JsAction::Create, true) => with_retry(|| api.put_consumer(&c.stream, &c.config, false)).await,
        (JsAction::Update, true) => with_retry(|| api.put_consumer(&c.stream, &c.config, true)).await,
        (JsAction::Replace, true) => {
            with_retry(|| api.delete_consumer(&c.stream, &c.name)).await?;
            with_retry(|| api.put_consumer(&c.stream, &c.config, false)).await
        }
        (JsAction::Delete, true) => with_retry(|| api.delete_consumer(&c.stream, &c.name)).await,
        (JsAction::Unmanaged, _) => Ok(()),
    }
}

async fn run_batch(conns: &Connections, batch: Vec<&JsChange>, outcome: &mut Outcome, log: &(dyn Fn(String) + Sync)) {
    let results: Vec<(&JsChange, Result<(), ApiError>)> = futures_util::stream::iter(batch)
        .map(|c| async move {
            let result = match conns.get(&c.account) {
                Some(api) => apply_one(&api.in_domain(c.leaf_domain.as_deref()), c).await,
                None => Err(ApiError::Transport("no JetStream connection for this account".into())),
            };
            (c, result)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (c, result) in results {
        match result {
            Ok(()) => {
                log(format!("{} {}", c.action.symbol(), c.label()));
                outcome.applied.push(c.label());
            }
            Err(e) => outcome.failed.push((c.label(), format!("{e}{}", hint(&e)))),
        }
    }
}

/// Applies every change of the plan that is work (unmanaged objects are left alone).
pub async fn apply(conns: &Connections, changes: &[JsChange], log: &(dyn Fn(String) + Sync)) -> Outcome {
    let mut outcome = Outcome::default();
    let work: Vec<&JsChange> = changes.iter().filter(|c| c.action != JsAction::Unmanaged).collect();
    let (deletes, puts): (Vec<&JsChange>, Vec<&JsChange>) = work.into_iter().partition(|c| c.action == JsAction::Delete);
    let (streams, consumers): (Vec<&JsChange>, Vec<&JsChange>) = puts.into_iter().partition(|c| c.is_stream_like());

    run_batch(conns, streams, &mut outcome, log).await;
    let failed_streams: BTreeSet<(Option<String>, String)> = changes
        .iter()
        .filter(|c| c.is_stream_like() && outcome.failed.iter().any(|(l, _)| *l == c.label()))
        .map(|c| (c.account.clone(), c.stream.clone()))
        .collect();
    let (ready, blocked): (Vec<&JsChange>, Vec<&JsChange>) = consumers
        .into_iter()
        .partition(|c| !failed_streams.contains(&(c.account.clone(), c.stream.clone())));
    outcome.not_attempted.extend(blocked.iter().map(|c| c.label()));
    run_batch(conns, ready, &mut outcome, log).await;

    let (consumer_deletes, stream_deletes): (Vec<&JsChange>, Vec<&JsChange>) = deletes.into_iter().partition(|c| !c.is_stream_like());
    run_batch(conns, consumer_deletes, &mut outcome, log).await;
    run_batch(conns, stream_deletes, &mut outcome, log).await;
    outcome
}
