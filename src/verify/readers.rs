//! The last hop of a flow: the application that reads a consumer does so with its own
//! credentials, as its client would: it binds with an info request, pulls (or receives on the
//! push consumer's deliver subject, answering flow control), and acknowledges the flow's message
//! with a confirmed (double) ack. Other messages it meets are handed back with a NAK, so real
//! traffic is redelivered to the real application.

use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::flows::FlowReport;
use crate::desired::{Answerer, BucketUse, ConsumerReader, Desired, FlowClient, RequestCheck};
use crate::material::Keys;

/// How long the application waits for the flow's message from its consumer.
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a JetStream API or ack request of the application may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Messages one pull asks for: enough to get past real traffic queued before the flow's.
const PULL_BATCH: usize = 256;

/// What the application managed: it received the flow's message (after `skipped` others, handed
/// back) and the server confirmed its acknowledgement.
#[derive(Debug)]
pub struct Read {
    pub how: &'static str,
    pub skipped: usize,
    pub acked: bool,
}

/// Why the application could not read: the step that failed and the server's own words
/// (permission violations) where it gave any.
#[derive(Debug)]
pub struct Refused(pub String);

pub async fn read(
    desired: &Desired,
    r: &ConsumerReader,
    stream: &str,
    consumer: &str,
    mark: &dyn Fn(&Option<async_nats::HeaderMap>) -> bool,
) -> Result<Read, Refused> {
    as_app(desired, &r.client, &r.inbox, |client| async move {
        read_with(&client, r, stream, consumer, mark).await
    })
    .await
    .map_err(Refused)
}

/// Runs `work` on a connection as the application's user (its credentials, its inbox prefix);
/// a failure carries the permission violations the server reported meanwhile.
async fn as_app<T, F, Fut>(desired: &Desired, who: &FlowClient, inbox: &str, work: F) -> Result<T, String>
where
    F: FnOnce(async_nats::Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let (client, violations) = open_app(desired, who, inbox).await?;
    let outcome = work(client.clone()).await;
    let _ = client.drain().await;
    outcome.map_err(|step| {
        let said = violations.lock().expect("not poisoned").join("; ");
        if said.is_empty() {
            step
        } else {
            format!("{step} (the server said: {said})")
        }
    })
}

/// A connection as the application's user, and the errors the server reports to it.
async fn open_app(desired: &Desired, who: &FlowClient, inbox: &str) -> Result<(async_nats::Client, Arc<Mutex<Vec<String>>>), String> {
    let violations: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = violations.clone();
    let options = super::flows::login(desired, who)?
        .custom_inbox_prefix(inbox)
        .event_callback(move |event| {
            let seen = seen.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    seen.lock().expect("not poisoned").push(e.to_string());
                }
            }
        });
    let client = super::flows::dial(desired, who, options).await?;
    Ok((client, violations))
}

/// The key an application's write proof puts, reads back and deletes.
const VERIFY_KEY: &str = "notif-infra.verify";

/// Each application uses each KV bucket it declares, as its client would.
pub async fn use_buckets(desired: &Desired) -> Vec<FlowReport> {
    let uses = desired.bucket_uses.iter().map(|u| async move {
        let outcome = as_app(desired, &u.client, &u.inbox, |client| async move {
            if u.object_store {
                use_object_store(&client, u).await
            } else {
                use_bucket(&client, u).await
            }
        })
        .await;
        FlowReport {
            name: format!("app {}", u.app),
            target: format!(
                "{} {} ({})",
                if u.object_store { "object_store" } else { "kv" },
                u.bucket,
                if u.write { "write" } else { "read" }
            ),
            expect: "reaches",
            ok: outcome.is_ok(),
            detail: outcome.unwrap_or_else(|e| e),
        }
    });
    futures_util::future::join_all(uses).await
}

/// A request as the application makes it, failing on no answer in time.
async fn ask(
    client: &async_nats::Client,
    who: &str,
    subject: String,
    payload: String,
    headers: Option<async_nats::HeaderMap>,
) -> Result<async_nats::Message, String> {
    let mut request = async_nats::Request::new().payload(payload.into()).timeout(Some(REQUEST_TIMEOUT));
    if let Some(h) = headers {
        request = request.headers(h);
    }
    client
        .send_request(subject.clone(), request)
        .await
        .map_err(|e| format!("{who} got no answer on `{subject}`: {e}"))
}

/// A JetStream API answer, failing on its `error`.
async fn ask_api(client: &async_nats::Client, who: &str, subject: String, payload: String) -> Result<serde_json::Value, String> {
    let answer = ask(client, who, subject.clone(), payload, None).await?;
    let v: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap_or_default();
    match v.get("error") {
        Some(e) => Err(format!("{who} asked `{subject}` and JetStream refused: {e}")),
        None => Ok(v),
    }
}

async fn use_bucket(client: &async_nats::Client, u: &BucketUse) -> Result<String, String> {
    let who = u.client.who.as_str();
    let stream = crate::model::kv_stream_name(&u.bucket);
    let ask = |subject: String, payload: String, headers: Option<async_nats::HeaderMap>| ask(client, who, subject, payload, headers);
    ask_api(client, who, format!("{}.STREAM.INFO.{stream}", u.api), String::new()).await?;
    let get = || {
        ask(
            format!("{}.DIRECT.GET.{stream}.$KV.{}.{VERIFY_KEY}", u.api, u.bucket),
            String::new(),
            None,
        )
    };
    if !u.write {
        let answer = get().await?;
        let found = if answer.status.is_some_and(|s| s.as_u16() == 404) {
            "no such key"
        } else {
            "a value"
        };
        return Ok(format!("bound and read key `{VERIFY_KEY}` ({found})"));
    }
    let key_subject = format!("$KV.{}.{VERIFY_KEY}", u.bucket);
    let value = format!("written by {who}");
    let ack = ask(key_subject.clone(), value.clone(), None).await?;
    let ack: serde_json::Value = serde_json::from_slice(&ack.payload).unwrap_or_default();
    let seq = ack["seq"]
        .as_u64()
        .ok_or_else(|| format!("{who} put `{VERIFY_KEY}` and JetStream did not store it: {ack}"))?;
    // A direct get may be answered by a replica that has not applied the put yet: ask again.
    let start = Instant::now();
    loop {
        let read_back = get().await?;
        if read_back.payload.as_ref() == value.as_bytes() {
            break;
        }
        if start.elapsed() > REQUEST_TIMEOUT {
            return Err(format!(
                "{who} put `{VERIFY_KEY}` (seq {seq}) and read back {:?} (status {:?})",
                String::from_utf8_lossy(&read_back.payload),
                read_back.status
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut delete = async_nats::HeaderMap::new();
    delete.insert("KV-Operation", "DEL");
    ask(key_subject, String::new(), Some(delete)).await?;
    Ok(format!("bound, put key `{VERIFY_KEY}` (seq {seq}), read it back and deleted it"))
}

async fn read_with(
    client: &async_nats::Client,
    r: &ConsumerReader,
    stream: &str,
    consumer: &str,
    mark: &dyn Fn(&Option<async_nats::HeaderMap>) -> bool,
) -> Result<Read, String> {
    let who = &r.client.who;
    let info_subject = format!("{}.CONSUMER.INFO.{stream}.{consumer}", r.api);
    let info = tokio::time::timeout(REQUEST_TIMEOUT, client.request(info_subject.clone(), "".into()))
        .await
        .map_err(|_| format!("{who} got no answer to `{info_subject}` (binding to the consumer)"))?
        .map_err(|e| format!("{who} cannot bind with `{info_subject}`: {e}"))?;
    let answer: serde_json::Value = serde_json::from_slice(&info.payload).unwrap_or_default();
    if let Some(e) = answer.get("error") {
        return Err(format!("{who} asked `{info_subject}` and JetStream refused: {e}"));
    }
    // A pull asks only for what is there now (`no_wait`): a request left waiting on the server
    // would take the next flow's message after this read has gone.
    let (mut sub, how, pull) = match &r.deliver {
        None => {
            let inbox = client.new_inbox();
            let sub = client
                .subscribe(inbox.clone())
                .await
                .map_err(|e| format!("{who} cannot subscribe to its inbox `{inbox}`: {e}"))?;
            let next = format!("{}.CONSUMER.MSG.NEXT.{stream}.{consumer}", r.api);
            let request = serde_json::json!({"batch": PULL_BATCH, "no_wait": true}).to_string();
            (sub, "pulled it", Some((next, inbox, request)))
        }
        Some((deliver, group)) => {
            let sub = match group {
                Some(g) => client.queue_subscribe(deliver.clone(), g.clone()).await,
                None => client.subscribe(deliver.clone()).await,
            }
            .map_err(|e| format!("{who} cannot subscribe to the deliver subject `{deliver}`: {e}"))?;
            (sub, "received it on the deliver subject", None)
        }
    };
    let send_pull = || async {
        match &pull {
            Some((next, inbox, request)) => client
                .publish_with_reply(next.clone(), inbox.clone(), request.clone().into())
                .await
                .map_err(|e| format!("{who} cannot pull with `{next}`: {e}")),
            None => Ok(()),
        }
    };
    send_pull().await?;
    client.flush().await.map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut others: Vec<async_nats::Subject> = Vec::new();
    let mut ours: Option<async_nats::Subject> = None;
    while ours.is_none() {
        let left = READ_TIMEOUT.saturating_sub(start.elapsed());
        let Ok(Some(m)) = tokio::time::timeout(left, sub.next()).await else {
            break;
        };
        if let Some(status) = m.status {
            // Flow control asks for an answer on its reply subject; a pull ends with a status
            // (404 nothing there, 408): ask again while there is time.
            if let Some(reply) = m.reply {
                client
                    .publish(reply.clone(), "".into())
                    .await
                    .map_err(|e| format!("{who} cannot answer flow control on `{reply}`: {e}"))?;
            } else if status.as_u16() != 100 && pull.is_some() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                send_pull().await?;
            }
            continue;
        }
        match (mark(&m.headers), m.reply) {
            (true, Some(reply)) => ours = Some(reply),
            (true, None) => {
                return Ok(Read {
                    how,
                    skipped: others.len(),
                    acked: false,
                });
            }
            (false, Some(reply)) => others.push(reply),
            (false, None) => {}
        }
    }
    let _ = sub.unsubscribe().await;
    for reply in &others {
        let _ = client.publish(reply.clone(), "-NAK".into()).await;
    }
    let Some(reply) = ours else {
        return Err(format!(
            "{who} found nothing of this flow within {} s ({} other message(s) handed back)",
            READ_TIMEOUT.as_secs(),
            others.len()
        ));
    };
    if !r.acks {
        return Ok(Read {
            how,
            skipped: others.len(),
            acked: false,
        });
    }
    tokio::time::timeout(REQUEST_TIMEOUT, client.request(reply.clone(), "+ACK".into()))
        .await
        .map_err(|_| format!("{who} {how}, and its acknowledgement on `{reply}` was not confirmed"))?
        .map_err(|e| format!("{who} {how} and cannot acknowledge it on `{reply}`: {e}"))?;
    Ok(Read {
        how,
        skipped: others.len(),
        acked: true,
    })
}

/// The object an application's write proof stores, reads back and deletes.
const VERIFY_OBJECT: &str = "notif-infra-verify";

/// An object store as its clients use it: bind, read the object's description (direct get of
/// the last `$O.<bucket>.M.<name>`), read its chunks through an ordered push consumer; writing
/// puts a chunk and the description (rolled up), and deleting marks it deleted and purges its
/// chunks.
async fn use_object_store(client: &async_nats::Client, u: &BucketUse) -> Result<String, String> {
    let who = u.client.who.as_str();
    let stream = crate::model::object_stream_name(&u.bucket);
    let bucket = &u.bucket;
    ask_api(client, who, format!("{}.STREAM.INFO.{stream}", u.api), String::new()).await?;
    let meta_subject = format!("$O.{bucket}.M.{}", data_encoding::BASE64URL.encode(VERIFY_OBJECT.as_bytes()));
    let data = format!("stored by {who}");
    let rollup = || {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Rollup", "sub");
        h
    };
    let description = |nuid: &str, size: usize, deleted: bool| {
        let digest = data_encoding::BASE64URL.encode(&<sha2::Sha256 as sha2::Digest>::digest(data.as_bytes()));
        serde_json::json!({
            "name": VERIFY_OBJECT, "bucket": bucket, "nuid": nuid, "size": size,
            "chunks": if deleted { 0 } else { 1 }, "digest": format!("SHA-256={digest}"),
            "deleted": deleted,
        })
        .to_string()
    };
    let written = if u.write {
        let nuid = client.new_inbox().rsplit('.').next().unwrap_or_default().to_string();
        let ack = ask(client, who, format!("$O.{bucket}.C.{nuid}"), data.clone(), None).await?;
        if serde_json::from_slice::<serde_json::Value>(&ack.payload).unwrap_or_default()["seq"]
            .as_u64()
            .is_none()
        {
            return Err(format!(
                "{who} wrote a chunk to object store `{bucket}` and JetStream did not store it"
            ));
        }
        ask(
            client,
            who,
            meta_subject.clone(),
            description(&nuid, data.len(), false),
            Some(rollup()),
        )
        .await?;
        Some(nuid)
    } else {
        None
    };
    let meta = ask(
        client,
        who,
        format!("{}.DIRECT.GET.{stream}.{meta_subject}", u.api),
        String::new(),
        None,
    )
    .await?;
    let found: Option<String> = serde_json::from_slice::<serde_json::Value>(&meta.payload)
        .ok()
        .filter(|m| m["deleted"] != true)
        .and_then(|m| m["nuid"].as_str().map(String::from));
    if u.write && found != written {
        return Err(format!("{who} stored `{VERIFY_OBJECT}` and read back another description"));
    }
    // The chunks, as clients read them: an ordered consumer pushing to an inbox.
    let nuid = found.clone().unwrap_or_else(|| "none".into());
    let deliver = client.new_inbox();
    let mut chunks = client
        .subscribe(deliver.clone())
        .await
        .map_err(|e| format!("{who} cannot subscribe to its inbox: {e}"))?;
    let name = format!("notif_infra_verify_{}", deliver.rsplit('.').next().unwrap_or_default());
    let filter = format!("$O.{bucket}.C.{nuid}");
    let config = serde_json::json!({"stream_name": stream, "config": {
        "name": name, "deliver_subject": deliver, "filter_subject": filter, "ack_policy": "none",
        "deliver_policy": "all", "flow_control": true, "idle_heartbeat": 5_000_000_000u64,
        "mem_storage": true, "num_replicas": 1, "inactive_threshold": 5_000_000_000u64,
    }});
    ask_api(
        client,
        who,
        format!("{}.CONSUMER.CREATE.{stream}.{name}.{filter}", u.api),
        config.to_string(),
    )
    .await?;
    let mut read = None;
    if found.is_some() {
        let start = Instant::now();
        while read.is_none() && start.elapsed() < READ_TIMEOUT {
            let left = READ_TIMEOUT.saturating_sub(start.elapsed());
            let Ok(Some(m)) = tokio::time::timeout(left, chunks.next()).await else {
                break;
            };
            match (m.status, m.reply) {
                (Some(_), Some(reply)) => client
                    .publish(reply.clone(), "".into())
                    .await
                    .map_err(|e| format!("{who} cannot answer flow control on `{reply}`: {e}"))?,
                (Some(_), None) => {}
                (None, _) => read = Some(m.payload),
            }
        }
    }
    let _ = chunks.unsubscribe().await;
    let Some(nuid) = written else {
        return Ok(match read {
            Some(chunk) => format!("bound and read `{VERIFY_OBJECT}` ({} bytes)", chunk.len()),
            None => format!("bound, found no `{VERIFY_OBJECT}` and opened a chunk reader"),
        });
    };
    if read.as_deref() != Some(data.as_bytes()) {
        return Err(format!("{who} stored `{VERIFY_OBJECT}` and did not read its chunk back"));
    }
    ask(client, who, meta_subject, description(&nuid, 0, true), Some(rollup())).await?;
    let purged = ask_api(
        client,
        who,
        format!("{}.STREAM.PURGE.{stream}", u.api),
        serde_json::json!({"filter": format!("$O.{bucket}.C.{nuid}")}).to_string(),
    )
    .await?;
    if purged["success"] != true {
        return Err(format!("{who} deleted `{VERIFY_OBJECT}` and its chunks were not purged: {purged}"));
    }
    Ok(format!(
        "bound, stored `{VERIFY_OBJECT}`, read it back through an ordered consumer and deleted it"
    ))
}

/// Each declared request, sent by its application and answered by the app that serves it (or
/// acknowledged by the stream that stores it, and deleted from it afterwards).
pub async fn make_requests(desired: &Desired, keys: &Keys, nonce: &str) -> Vec<FlowReport> {
    let checks = desired.request_checks.iter().map(|c| async move {
        let outcome = request(desired, keys, c, nonce).await;
        FlowReport {
            name: format!("app {}", c.app),
            target: match &c.answer {
                Answerer::App { app, .. } => format!("request {} answered by app {app}", c.subject),
                Answerer::Stream { stream, .. } => format!("request {} acknowledged by stream {stream}", c.subject),
            },
            expect: "reaches",
            ok: outcome.is_ok(),
            detail: outcome.unwrap_or_else(|e| e),
        }
    });
    futures_util::future::join_all(checks).await
}

async fn request(desired: &Desired, keys: &Keys, c: &RequestCheck, nonce: &str) -> Result<String, String> {
    let mark = format!("request/{nonce}");
    match &c.answer {
        Answerer::App {
            app,
            client: server_client,
            serves,
        } => {
            // The serving app, as its own user, answers this check's request only.
            let (server, server_said) = open_app(desired, server_client, crate::model::DEFAULT_INBOX).await?;
            let mut sub = server
                .subscribe(serves.clone())
                .await
                .map_err(|e| format!("{} cannot subscribe to `{serves}`: {e}", server_client.who))?;
            server.flush().await.map_err(|e| e.to_string())?;
            let responder = {
                let server = server.clone();
                let mark = mark.clone();
                tokio::spawn(async move {
                    while let Some(m) = sub.next().await {
                        if let (true, Some(reply)) = (super::flows::marked(&m.headers, &mark), m.reply) {
                            let _ = server.publish(reply, "notif-infra reply".into()).await;
                            let _ = server.flush().await;
                            return;
                        }
                    }
                })
            };
            let start = Instant::now();
            let asked = requested(desired, c, &mark).await;
            let took = start.elapsed();
            responder.abort();
            let _ = server.drain().await;
            let said = server_said.lock().expect("not poisoned").join("; ");
            match asked {
                Ok(reply) if reply.payload.as_ref() == b"notif-infra reply" => {
                    Ok(format!("app `{app}` answered in {} ms", took.as_millis()))
                }
                Ok(_) => Err(format!("`{}` was answered by someone other than app `{app}`", c.subject)),
                Err(e) if said.is_empty() => Err(e),
                Err(e) => Err(format!("{e} (the server said to app `{app}`: {said})")),
            }
        }
        Answerer::Stream {
            stream,
            account,
            leaf_domain,
            deny_delete,
        } => {
            let who = c.client.who.as_str();
            let ack = requested(desired, c, &mark).await?;
            let ack: serde_json::Value = serde_json::from_slice(&ack.payload).unwrap_or_default();
            let seq = ack["seq"]
                .as_u64()
                .filter(|_| ack["stream"] == stream.as_str())
                .ok_or_else(|| format!("{who} sent `{}` and stream {stream} did not acknowledge it: {ack}", c.subject))?;
            let left = if *deny_delete {
                format!("left in {stream} at seq {seq}: the stream denies deletes")
            } else {
                let api = crate::jsapi::JsApi::connect(desired, account, keys)
                    .await
                    .map_err(|e| e.to_string())?;
                let deleted = api.in_domain(leaf_domain.as_deref()).delete_message(stream, seq).await;
                api.close().await;
                match deleted {
                    Ok(_) => format!("deleted from {stream} afterwards"),
                    Err(e) => format!("left in {stream} at seq {seq}: delete failed: {e}"),
                }
            };
            Ok(format!("stream {stream} acknowledged it at seq {seq}; {left}"))
        }
    }
}

/// The check's request, sent by the requesting app as its own user, marked as notif-infra's.
async fn requested(desired: &Desired, c: &RequestCheck, mark: &str) -> Result<async_nats::Message, String> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(super::flows::MARK_HEADER, mark);
    as_app(desired, &c.client, &c.inbox, |client| async move {
        let payload = format!("notif-infra request check {mark}");
        ask(&client, &c.client.who, c.subject.clone(), payload, Some(headers)).await
    })
    .await
}
