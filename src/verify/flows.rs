//! Live proof of the declared flows: each publishes one marked message as the declared user (with
//! that user's own credentials) at the declared site, then checks every target: the stream stored
//! it, the consumer has it pending, the subscriber got it; and every `never` target saw nothing.
//! Declared consumers are only read (never pulled, never acked); the marked message is deleted
//! from the streams afterwards where the stream allows deletes.

use data_encoding::BASE64;
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::desired::{Desired, ExpectedFlow, ExpectedTarget, FlowClient, Login, TargetKind};
use crate::jsapi::JsApi;
use crate::material::Keys;

/// The header every flow message carries, so a target tells it from real traffic.
pub(super) const MARK_HEADER: &str = "Notif-Infra-Flow";
/// How long every target has to show the message.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a `never` subscriber keeps listening once the `reaches` targets have it.
const NEVER_GRACE: Duration = Duration::from_millis(750);
/// The message is sent again (deduplicated by `Nats-Msg-Id`) until interest has crossed the links.
const RESEND_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Serialize)]
pub struct FlowReport {
    pub name: String,
    pub target: String,
    /// `reaches` or `never`.
    pub expect: &'static str,
    pub ok: bool,
    pub detail: String,
}

pub async fn run_all(desired: &Desired, keys: &Keys, nonce: &str) -> Vec<FlowReport> {
    // Flows that look at one consumer take turns: a read (with its NAKs of what is not its own)
    // would otherwise move what another flow is checking. So do flows that look at one stream:
    // each finds its message as the last on its subject, which another flow's may have followed.
    let consumers_of = |f: &ExpectedFlow| -> BTreeSet<(Option<String>, String, String)> {
        f.targets
            .iter()
            .flat_map(|t| match &t.kind {
                // A consumer's message is found in its stream first.
                TargetKind::Consumer {
                    stream, consumer, account, ..
                } => vec![
                    (account.clone(), stream.clone(), String::new()),
                    (account.clone(), stream.clone(), consumer.clone()),
                ],
                TargetKind::Stream { stream, account, .. } => vec![(account.clone(), stream.clone(), String::new())],
                TargetKind::Subscriber { .. } => Vec::new(),
            })
            .collect()
    };
    let locks: BTreeMap<_, tokio::sync::Mutex<()>> = desired
        .flows
        .iter()
        .flat_map(consumers_of)
        .map(|k| (k, tokio::sync::Mutex::new(())))
        .collect();
    let runs = desired.flows.iter().map(|f| {
        let locks = &locks;
        async move {
            let mut held = Vec::new();
            for key in consumers_of(f) {
                held.push(locks[&key].lock().await);
            }
            run_one(desired, keys, f, nonce).await
        }
    });
    futures_util::future::join_all(runs).await.into_iter().flatten().collect()
}

struct Listening {
    index: usize,
    sub: async_nats::Subscriber,
    got: Option<Duration>,
    client: async_nats::Client,
}

async fn run_one(desired: &Desired, keys: &Keys, flow: &ExpectedFlow, nonce: &str) -> Vec<FlowReport> {
    let mark = format!("{}/{nonce}", flow.name);
    let mut outcome: BTreeMap<usize, Result<String, String>> = BTreeMap::new();
    let publisher = match connect(desired, &flow.publisher).await {
        Ok(c) => c,
        Err(e) => {
            return reports(
                flow,
                &flow
                    .targets
                    .iter()
                    .enumerate()
                    .map(|(i, _)| (i, Err(format!("publisher: {e}"))))
                    .collect(),
            );
        }
    };
    let mut listening = Vec::new();
    for (i, t) in flow.targets.iter().enumerate() {
        if let TargetKind::Subscriber { client } = &t.kind {
            match subscribe(desired, client).await {
                Ok((client, sub)) => listening.push(Listening {
                    index: i,
                    sub,
                    got: None,
                    client,
                }),
                Err(e) => {
                    outcome.insert(i, Err(e));
                }
            }
        }
    }
    let jetstream = JetStreamTargets::open(desired, keys, &flow.targets).await;
    let start = Instant::now();
    let mut stored: BTreeMap<usize, Result<u64, String>> = BTreeMap::new();
    let mut last_send: Option<Instant> = None;
    let mut reaches_done_at: Option<Instant> = None;
    let mut last_poll: Option<Instant> = None;
    loop {
        if last_send.is_none_or(|t| t.elapsed() >= RESEND_EVERY) && reaches_done_at.is_none() {
            if let Err(e) = publish(&publisher, &flow.publisher.subject, &mark).await {
                let all = flow
                    .targets
                    .iter()
                    .enumerate()
                    .map(|(i, _)| (i, Err(format!("publish refused: {e}"))))
                    .collect();
                return reports(flow, &all);
            }
            last_send = Some(Instant::now());
        }
        for l in listening.iter_mut().filter(|l| l.got.is_none()) {
            while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(5), l.sub.next()).await {
                if marked(&m.headers, &mark) {
                    l.got = Some(start.elapsed());
                    break;
                }
            }
        }
        // The streams are asked as often as the message is sent, not on every turn of the loop.
        let poll_streams = last_poll.is_none_or(|t| t.elapsed() >= RESEND_EVERY);
        for (i, t) in flow.targets.iter().enumerate() {
            if !poll_streams
                || stored.get(&i).is_some_and(|s| s.is_ok())
                || !matches!(t.kind, TargetKind::Stream { .. } | TargetKind::Consumer { .. })
            {
                continue;
            }
            stored.insert(i, jetstream.find(t, &mark).await);
        }
        if poll_streams {
            last_poll = Some(Instant::now());
        }
        let reaches_done = flow
            .targets
            .iter()
            .enumerate()
            .filter(|(_, t)| t.must_arrive)
            .all(|(i, t)| match t.kind {
                TargetKind::Subscriber { .. } => outcome.contains_key(&i) || listening.iter().any(|l| l.index == i && l.got.is_some()),
                _ => stored.get(&i).is_some_and(|s| s.is_ok()),
            });
        if reaches_done && reaches_done_at.is_none() {
            reaches_done_at = Some(Instant::now());
        }
        let grace_over = reaches_done_at.is_some_and(|t| t.elapsed() >= NEVER_GRACE);
        if grace_over || start.elapsed() >= ARRIVAL_TIMEOUT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waited = start.elapsed();
    for l in &listening {
        let t = &flow.targets[l.index];
        let result = match (l.got, t.must_arrive) {
            (Some(after), true) => Ok(format!("received in {} ms", after.as_millis())),
            (None, true) => Err(format!("nothing arrived within {} s", ARRIVAL_TIMEOUT.as_secs())),
            (Some(after), false) => Err(format!("received it after {} ms, though it must never arrive", after.as_millis())),
            (None, false) => Ok(format!("nothing arrived in {} ms", waited.as_millis())),
        };
        outcome.insert(l.index, result);
    }
    for (i, t) in flow.targets.iter().enumerate() {
        if let Some(found) = stored.get(&i) {
            outcome.insert(i, jetstream.judge(t, found).await);
        }
    }
    for (i, t) in flow.targets.iter().enumerate() {
        if let (Some(Ok(seq)), TargetKind::Consumer { reader: Some(_), .. }) = (stored.get(&i), &t.kind) {
            let judged = outcome.remove(&i).unwrap_or_else(|| Err("not judged".into()));
            outcome.insert(i, jetstream.read_as_app(desired, t, *seq, &mark, judged).await);
        }
    }
    let cleanup = jetstream.remove(&flow.targets, &stored).await;
    for (i, note) in cleanup {
        if let Some(Ok(detail)) = outcome.get_mut(&i) {
            *detail = format!("{detail}; {note}");
        }
    }
    for l in listening {
        let _ = l.client.drain().await;
    }
    let _ = publisher.drain().await;
    jetstream.close().await;
    reports(flow, &outcome)
}

fn reports(flow: &ExpectedFlow, outcome: &BTreeMap<usize, Result<String, String>>) -> Vec<FlowReport> {
    flow.targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (ok, detail) = match outcome.get(&i) {
                Some(Ok(d)) => (true, d.clone()),
                Some(Err(e)) => (false, e.clone()),
                None => (false, "not checked".to_string()),
            };
            FlowReport {
                name: flow.name.clone(),
                target: t.label.clone(),
                expect: if t.must_arrive { "reaches" } else { "never" },
                ok,
                detail,
            }
        })
        .collect()
}

pub(super) fn marked(headers: &Option<async_nats::HeaderMap>, mark: &str) -> bool {
    headers
        .as_ref()
        .and_then(|h| h.get(MARK_HEADER))
        .is_some_and(|v| v.as_str() == mark)
}

async fn publish(client: &async_nats::Client, subject: &str, mark: &str) -> Result<(), String> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(MARK_HEADER, mark);
    // Streams keep one copy of the resent message.
    headers.insert("Nats-Msg-Id", format!("notif-infra-flow-{mark}").as_str());
    client
        .publish_with_headers(subject.to_string(), headers, format!("notif-infra flow {mark}").into())
        .await
        .map_err(|e| e.to_string())?;
    client.flush().await.map_err(|e| e.to_string())
}

async fn subscribe(desired: &Desired, c: &FlowClient) -> Result<(async_nats::Client, async_nats::Subscriber), String> {
    let client = connect(desired, c).await?;
    let sub = client
        .subscribe(c.subject.clone())
        .await
        .map_err(|e| format!("{} cannot subscribe to {}: {e}", c.who, c.subject))?;
    client.flush().await.map_err(|e| e.to_string())?;
    Ok((client, sub))
}

/// Connects as the flow's user, with that user's own credentials and certificate.
async fn connect(desired: &Desired, c: &FlowClient) -> Result<async_nats::Client, String> {
    dial(desired, c, login(desired, c)?).await
}

/// The options that log in as the client's user: its own credentials and certificate.
pub(super) fn login(desired: &Desired, c: &FlowClient) -> Result<async_nats::ConnectOptions, String> {
    let mut opts = match &c.login {
        Login::Anonymous => async_nats::ConnectOptions::new(),
        Login::Password { user, var } => {
            let password = std::env::var(var).map_err(|_| format!("cannot log in as {}: `{var}` is not set in this environment", c.who))?;
            async_nats::ConnectOptions::with_user_and_password(user.clone(), password)
        }
        Login::Unknown { user } => {
            return Err(format!(
                "cannot log in as {user}: the topology holds only a bcrypt hash of its password (write it as `${{VAR}}` to let verify use it)"
            ));
        }
        Login::Creds { path } => {
            let creds = desired
                .auth_files
                .iter()
                .find(|f| &f.path == path)
                .ok_or_else(|| format!("no credentials for {} ({})", c.who, path.display()))?;
            async_nats::ConnectOptions::with_credentials(&creds.content)
                .map_err(|e| format!("credentials of {} are unusable: {e}", c.who))?
        }
    };
    if let Some(tls) = &desired.client_tls {
        opts = opts.require_tls(true).add_root_certificates(tls.ca.clone());
        let pki = tls.ca.parent().unwrap_or(std::path::Path::new("."));
        match &c.cert {
            Some(stem) => opts = opts.add_client_certificate(pki.join(format!("{stem}.pem")), pki.join(format!("{stem}-key.pem"))),
            None if tls.identity.is_some() => {
                return Err(format!(
                    "{} has no client certificate, and the servers verify clients (give it `client_cert: true`)",
                    c.who
                ));
            }
            None => {}
        }
    }
    Ok(opts)
}

/// Connects with `opts` to the server the client is declared at.
pub(super) async fn dial(desired: &Desired, c: &FlowClient, opts: async_nats::ConnectOptions) -> Result<async_nats::Client, String> {
    let server = desired.server(&c.server).ok_or_else(|| format!("unknown server {}", c.server))?;
    opts.name("notif-infra-flow")
        .connection_timeout(Duration::from_secs(2))
        .ignore_discovered_servers()
        .connect(server.client_url.as_str())
        .await
        .map_err(|e| format!("{} cannot connect to {} ({}): {e}", c.who, c.server, server.client_url))
}

/// JetStream API connections (notif-infra's own user) to the accounts holding target streams.
struct JetStreamTargets {
    apis: BTreeMap<Option<String>, Result<JsApi, String>>,
}

/// A stream target's stream, account, whether it denies deletes, and its leafnode domain.
fn stream_of(t: &ExpectedTarget) -> Option<(&str, &Option<String>, bool, Option<&str>)> {
    match &t.kind {
        TargetKind::Stream {
            stream,
            account,
            deny_delete,
            leaf_domain,
        }
        | TargetKind::Consumer {
            stream,
            account,
            deny_delete,
            leaf_domain,
            ..
        } => Some((stream, account, *deny_delete, leaf_domain.as_deref())),
        TargetKind::Subscriber { .. } => None,
    }
}

impl JetStreamTargets {
    async fn open(desired: &Desired, keys: &Keys, targets: &[ExpectedTarget]) -> Self {
        let mut apis = BTreeMap::new();
        for t in targets {
            if let Some((_, account, _, _)) = stream_of(t)
                && !apis.contains_key(account)
            {
                apis.insert(
                    account.clone(),
                    JsApi::connect(desired, account, keys).await.map_err(|e| e.to_string()),
                );
            }
        }
        JetStreamTargets { apis }
    }

    /// The account's connection, speaking to the stream's JetStream domain.
    fn api(&self, account: &Option<String>, leaf_domain: Option<&str>) -> Result<JsApi, String> {
        match self.apis.get(account) {
            Some(Ok(api)) => Ok(api.in_domain(leaf_domain)),
            Some(Err(e)) => Err(e.clone()),
            None => Err("no JetStream connection".into()),
        }
    }

    /// The sequence of the marked message in the target's stream, if it is there.
    async fn find(&self, t: &ExpectedTarget, mark: &str) -> Result<u64, String> {
        let (stream, account, _, domain) = stream_of(t).ok_or("not a stream target")?;
        let api = self.api(account, domain)?;
        let reply = api.last_message(stream, &t.subject).await.map_err(|e| e.to_string())?;
        let message = &reply["message"];
        let headers = message["hdrs"]
            .as_str()
            .and_then(|h| BASE64.decode(h.as_bytes()).ok())
            .map(|h| String::from_utf8_lossy(&h).into_owned())
            .unwrap_or_default();
        let seq = message["seq"].as_u64().unwrap_or(0);
        if headers.lines().any(|l| l.trim() == format!("{MARK_HEADER}: {mark}")) {
            Ok(seq)
        } else {
            Err(format!(
                "the last message on {} in {stream} (seq {seq}) is not this flow's",
                t.subject
            ))
        }
    }

    /// The application of a consumer target reads it: `reaches`, it gets the flow's message
    /// (pending, as `judged` says) and its ack moves the consumer on; `never`, it cannot.
    async fn read_as_app(
        &self,
        desired: &Desired,
        t: &ExpectedTarget,
        seq: u64,
        mark: &str,
        judged: Result<String, String>,
    ) -> Result<String, String> {
        let TargetKind::Consumer {
            stream,
            consumer,
            account,
            leaf_domain,
            reader: Some(reader),
            ..
        } = &t.kind
        else {
            return judged;
        };
        let is_ours = |h: &Option<async_nats::HeaderMap>| marked(h, mark);
        let read = super::readers::read(desired, reader, stream, consumer, &is_ours).await;
        let app = &reader.app;
        match (read, t.must_arrive) {
            (Ok(r), true) => {
                let pending = judged?;
                let skipped = match r.skipped {
                    0 => String::new(),
                    n => format!(" after handing back {n} other message(s)"),
                };
                if !r.acked {
                    return Ok(format!("{pending}; app `{app}` {}{skipped} (the consumer takes no acks)", r.how));
                }
                let info = self
                    .api(account, leaf_domain.as_deref())?
                    .consumer_info(stream, consumer)
                    .await
                    .map_err(|e| e.to_string())?;
                let floor = info["ack_floor"]["stream_seq"].as_u64().unwrap_or(0);
                if r.skipped == 0 && floor < seq {
                    return Err(format!(
                        "app `{app}` {} and its ack was confirmed, yet the consumer's ack floor is {floor}, below seq {seq}",
                        r.how
                    ));
                }
                Ok(format!(
                    "{pending}; app `{app}` {}{skipped} and acknowledged it (confirmed; ack floor {floor})",
                    r.how
                ))
            }
            (Err(super::readers::Refused(why)), true) => Err(format!("app `{app}` could not read it: {why}")),
            (Ok(r), false) => Err(format!("app `{app}` {}, though it must never be able to read this consumer", r.how)),
            (Err(super::readers::Refused(why)), false) => Ok(format!("app `{app}` cannot read it: {why}")),
        }
    }

    async fn judge(&self, t: &ExpectedTarget, found: &Result<u64, String>) -> Result<String, String> {
        let (stream, account, _, domain) = stream_of(t).ok_or("not a stream target")?;
        match (&t.kind, found, t.must_arrive) {
            (TargetKind::Stream { .. }, Ok(seq), true) => Ok(format!("stored as {} at seq {seq}", t.subject)),
            (TargetKind::Stream { .. }, Err(e), true) => Err(format!("not stored within {} s: {e}", ARRIVAL_TIMEOUT.as_secs())),
            (TargetKind::Stream { .. }, Ok(seq), false) => Err(format!("stored at seq {seq}, though it must never be")),
            (TargetKind::Stream { .. }, Err(_), false) => Ok("not stored".into()),
            (TargetKind::Consumer { consumer, .. }, Ok(seq), must) => {
                let info = self
                    .api(account, domain)?
                    .consumer_info(stream, consumer)
                    .await
                    .map_err(|e| e.to_string())?;
                let delivered = info["delivered"]["stream_seq"].as_u64().unwrap_or(0);
                let pending = info["num_pending"].as_u64().unwrap_or(0);
                // The server's own filters (not the topology's) say whether it will deliver it.
                let config = &info["config"];
                let filters: Vec<&str> = config["filter_subject"]
                    .as_str()
                    .into_iter()
                    .chain(
                        config["filter_subjects"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|f| f.as_str()),
                    )
                    .filter(|f| !f.is_empty())
                    .collect();
                let filtered_in = filters.is_empty() || filters.iter().any(|f| crate::subject::matches(f, &t.subject));
                let has_it = filtered_in && delivered < *seq && pending > 0;
                match (has_it, must) {
                    (true, true) => Ok(format!("pending at seq {seq} ({pending} pending, delivered up to {delivered})")),
                    (false, true) => Err(format!(
                        "stored at seq {seq} but not pending (delivered up to {delivered}, {pending} pending)"
                    )),
                    (true, false) => Err(format!("pending at seq {seq}, though it must never be")),
                    (false, false) => Ok(format!("stored at seq {seq} but not pending for it")),
                }
            }
            (TargetKind::Consumer { .. }, Err(e), true) => {
                Err(format!("the stream did not store it within {} s: {e}", ARRIVAL_TIMEOUT.as_secs()))
            }
            (TargetKind::Consumer { .. }, Err(_), false) => Ok("not stored, so not pending".into()),
            (TargetKind::Subscriber { .. }, ..) => Err("not a stream target".into()),
        }
    }

    /// Deletes the marked message from every stream that stored it; a note per target.
    async fn remove(&self, targets: &[ExpectedTarget], stored: &BTreeMap<usize, Result<u64, String>>) -> Vec<(usize, String)> {
        let mut done: BTreeMap<(String, u64), String> = BTreeMap::new();
        let mut notes = Vec::new();
        for (i, found) in stored {
            let (Ok(seq), Some((stream, account, deny_delete, domain))) = (found, stream_of(&targets[*i])) else {
                continue;
            };
            let key = (stream.to_string(), *seq);
            let note = match done.get(&key) {
                Some(note) => note.clone(),
                None => {
                    let note = if deny_delete {
                        format!("left in {stream} at seq {seq}: the stream denies deletes")
                    } else {
                        match self.api(account, domain) {
                            Ok(api) => match api.delete_message(stream, *seq).await {
                                Ok(_) => format!("deleted from {stream} afterwards"),
                                // Interest retention drops a message once every consumer acked it.
                                Err(e) if e.err_code() == Some(crate::jsapi::MESSAGE_NOT_FOUND) => {
                                    format!("gone from {stream} afterwards (acknowledged by every consumer)")
                                }
                                Err(e) => format!("left in {stream} at seq {seq}: delete failed: {e}"),
                            },
                            Err(e) => format!("left in {stream} at seq {seq}: {e}"),
                        }
                    };
                    done.insert(key, note.clone());
                    note
                }
            };
            notes.push((*i, note));
        }
        notes
    }

    async fn close(self) {
        for api in self.apis.into_values().flatten() {
            api.close().await;
        }
    }
}
