//! The declared flows as live verification runs them: which server each client connects to, how
//! it logs in as the declared user, and under which subject each target should see the message
//! (the static walk's answer, imports mapping subjects included).

use serde::Serialize;
use std::path::PathBuf;

use crate::model::{AckPolicy, App, Endpoint, FlowTarget, Password, Site, Topology, User};
use crate::reach;

#[derive(Debug, Clone, Serialize)]
pub struct ExpectedFlow {
    pub name: String,
    pub publisher: FlowClient,
    pub targets: Vec<ExpectedTarget>,
    /// The regions and leafnodes its message must pass through.
    pub via: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpectedTarget {
    /// `stream X`, `consumer S/C`, `subscriber A/u at site on subject`.
    pub label: String,
    pub kind: TargetKind,
    /// `true` for `reaches`, `false` for `never`.
    pub must_arrive: bool,
    /// The subject it arrives under (`reaches`); for `never`, the published subject.
    pub subject: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetKind {
    Stream {
        stream: String,
        account: Option<String>,
        deny_delete: bool,
        /// The leafnode domain that holds the stream (`None`: the regions').
        leaf_domain: Option<String>,
    },
    Consumer {
        stream: String,
        consumer: String,
        account: Option<String>,
        deny_delete: bool,
        leaf_domain: Option<String>,
        /// The application that reads it (`reaches`) or must not be able to (`never`).
        reader: Option<Box<ConsumerReader>>,
    },
    Subscriber {
        client: FlowClient,
    },
}

/// An application reading a consumer the way its client would: bind with an info request,
/// then pull (or receive on the deliver subject) and acknowledge.
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerReader {
    pub app: String,
    pub client: FlowClient,
    /// Its reply subjects' prefix.
    pub inbox: String,
    /// `$JS.API`, or `$JS.<domain>.API` for a consumer in another JetStream domain.
    pub api: String,
    /// Push consumers: the deliver subject and queue group.
    pub deliver: Option<(String, Option<String>)>,
    pub acks: bool,
}

/// An application's use of a KV bucket or object store, as `verify --flows` proves it with the
/// app's own credentials: bind, read, and (`write`) write, read back and delete.
#[derive(Debug, Clone, Serialize)]
pub struct BucketUse {
    pub app: String,
    pub client: FlowClient,
    pub inbox: String,
    /// `$JS.API`, or `$JS.<domain>.API` across domains.
    pub api: String,
    pub bucket: String,
    pub object_store: bool,
    pub write: bool,
}

/// Every declared KV and object store use of every application.
pub fn bucket_uses(topology: &Topology) -> Vec<BucketUse> {
    topology
        .apps
        .iter()
        .flat_map(|app| {
            let client = app_client(topology, app, String::new());
            let api = crate::access::api_prefix(topology, &app.at, topology.settings.jetstream_domain.as_deref());
            let kv = app.kv.iter().map(|b| (b, false));
            let objects = app.object_stores.iter().map(|b| (b, true));
            kv.chain(objects).filter_map(move |(b, object_store)| {
                Some(BucketUse {
                    app: app.name.clone(),
                    client: client.clone(),
                    inbox: app.inbox.clone(),
                    api: api.clone().ok()?,
                    bucket: b.bucket.clone(),
                    object_store,
                    write: b.write,
                })
            })
        })
        .collect()
}

/// A client connection as a declared user: at which server, as whom, with what.
#[derive(Debug, Clone, Serialize)]
pub struct FlowClient {
    pub server: String,
    pub who: String,
    pub account: Option<String>,
    pub subject: String,
    pub login: Login,
    /// The user's client certificate (stem under `pki/`), when it has one.
    pub cert: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Login {
    Anonymous,
    /// Static accounts: the password is read from this variable, as the servers read it.
    Password {
        user: String,
        var: String,
    },
    /// Only a bcrypt hash is known: nobody but the user can log in as it.
    Unknown {
        user: String,
    },
    /// Operator mode: the user's credentials file in the output tree.
    Creds {
        path: PathBuf,
    },
}

pub fn expected(topology: &Topology) -> Vec<ExpectedFlow> {
    topology
        .flows
        .iter()
        .map(|flow| {
            let (reaches, _) = reach::prove(topology, flow);
            let targets = flow
                .reaches
                .iter()
                .zip(reaches)
                .map(|(t, v)| target(topology, t, true, v.subject.unwrap_or_else(|| flow.publish.subject.clone())))
                .chain(flow.never.iter().map(|t| target(topology, t, false, flow.publish.subject.clone())))
                .collect();
            ExpectedFlow {
                name: flow.name.clone(),
                publisher: client(topology, &flow.publish),
                targets,
                via: flow.via.iter().map(|site| site.name().to_string()).collect(),
            }
        })
        .collect()
}

fn target(topology: &Topology, t: &FlowTarget, must_arrive: bool, subject: String) -> ExpectedTarget {
    let stream_of = |name: &str| topology.jetstream.streams.iter().find(|s| s.name == name);
    let leaf_domain = |name: &str| {
        stream_of(name)
            .filter(|s| s.leafnode.is_some())
            .and_then(|s| topology.stream_domain(s))
    };
    let kind = match t {
        FlowTarget::Stream { name, .. } => TargetKind::Stream {
            stream: name.clone(),
            account: stream_of(name).and_then(|s| s.account.clone()),
            deny_delete: stream_of(name).is_some_and(|s| s.deny_delete),
            leaf_domain: leaf_domain(name),
        },
        FlowTarget::Consumer { stream, name, reader, .. } => TargetKind::Consumer {
            stream: stream.clone(),
            consumer: name.clone(),
            account: stream_of(stream).and_then(|s| s.account.clone()),
            deny_delete: stream_of(stream).is_some_and(|s| s.deny_delete),
            leaf_domain: leaf_domain(stream),
            reader: reader
                .as_deref()
                .and_then(|app| consumer_reader(topology, stream, name, app))
                .map(Box::new),
        },
        FlowTarget::Subscriber(e) => TargetKind::Subscriber {
            client: client(topology, e),
        },
    };
    ExpectedTarget {
        label: t.to_string(),
        kind,
        must_arrive,
        subject,
    }
}

fn consumer_reader(topology: &Topology, stream: &str, durable: &str, app: &str) -> Option<ConsumerReader> {
    let app = topology.app(app)?;
    let consumer = topology
        .jetstream
        .consumers
        .iter()
        .find(|c| c.stream == stream && c.name == durable)?;
    let domain = topology
        .jetstream
        .streams
        .iter()
        .find(|s| s.name == stream)
        .and_then(|s| topology.stream_domain(s));
    Some(ConsumerReader {
        app: app.name.clone(),
        client: app_client(topology, app, consumer.deliver_subject.clone().unwrap_or_default()),
        inbox: app.inbox.clone(),
        api: crate::access::api_prefix(topology, &app.at, domain.as_deref()).ok()?,
        deliver: consumer.deliver_subject.clone().map(|d| (d, consumer.deliver_group.clone())),
        acks: consumer.ack_policy != AckPolicy::None,
    })
}

/// A request an application declares, proven live: sent by the app with its own credentials on
/// a literal instance of its `requests` subject, answered by the app that `serves` it or, for a
/// JetStream publish, by the stream that stores it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestCheck {
    pub app: String,
    pub client: FlowClient,
    pub inbox: String,
    pub subject: String,
    pub answer: Answerer,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answerer {
    /// A declared application that serves the subject.
    App { app: String, client: FlowClient, serves: String },
    /// A stream that stores it: the answer is JetStream's acknowledgement.
    Stream {
        stream: String,
        account: Option<String>,
        leaf_domain: Option<String>,
        deny_delete: bool,
    },
}

/// Every declared request that a declared app or a stream answers (validate warns of the others).
pub fn request_checks(topology: &Topology) -> Vec<RequestCheck> {
    let mut checks = Vec::new();
    for app in &topology.apps {
        for r in &app.requests {
            let subject = crate::access::request_instance(&r.subject);
            let Some(answer) = answerer(topology, app, &subject) else {
                continue;
            };
            checks.push(RequestCheck {
                app: app.name.clone(),
                client: app_client(topology, app, subject.clone()),
                inbox: app.inbox.clone(),
                subject,
                answer,
            });
        }
    }
    checks
}

/// Who answers `subject` requested by `app`, as verify reaches it.
fn answerer(topology: &Topology, app: &App, subject: &str) -> Option<Answerer> {
    Some(match crate::access::answerer(topology, app, subject)? {
        crate::access::Answer::App(b, serves) => Answerer::App {
            app: b.name.clone(),
            client: app_client(topology, b, serves.subject.clone()),
            serves: serves.subject.clone(),
        },
        crate::access::Answer::Stream(stream) => Answerer::Stream {
            stream: stream.name.clone(),
            account: stream.account.clone(),
            leaf_domain: stream.leafnode.as_ref().and_then(|_| topology.stream_domain(stream)),
            deny_delete: stream.deny_delete,
        },
    })
}

/// The application's connection: its user, at its site.
fn app_client(topology: &Topology, app: &App, subject: String) -> FlowClient {
    let endpoint = Endpoint {
        account: app.account.clone(),
        user: app.user.clone(),
        at: app.at.clone(),
        subject,
        loc: app.loc,
    };
    client(topology, &endpoint)
}

fn client(topology: &Topology, e: &Endpoint) -> FlowClient {
    let server = match &e.at {
        Site::Region(r) => topology
            .region(r)
            .and_then(|r| r.nodes.first())
            .map(|n| n.name.clone())
            .unwrap_or_default(),
        Site::Leafnode(l) => l.clone(),
    };
    let user = e
        .account
        .as_deref()
        .and_then(|a| topology.account(a))
        .and_then(|a| a.users.iter().find(|u| Some(&u.name) == e.user.as_ref()));
    let (login, cert) = match (user, &e.account) {
        (Some(u), Some(a)) => user_login(topology, a, u),
        _ => (Login::Anonymous, None),
    };
    FlowClient {
        server,
        who: e.who(),
        account: e.account.clone(),
        subject: e.subject.clone(),
        login,
        cert,
    }
}

/// How user `u` of `account` logs in, and the stem of its client certificate under `pki/`.
pub fn user_login(topology: &Topology, account: &str, u: &User) -> (Login, Option<String>) {
    let login = if topology.operator.is_some() {
        Login::Creds {
            path: crate::material::auth::user_creds_path(account, &u.name),
        }
    } else {
        match &u.password {
            Some(Password::Env { var, .. }) => Login::Password {
                user: u.name.clone(),
                var: var.clone(),
            },
            _ => Login::Unknown { user: u.name.clone() },
        }
    };
    (login, u.client_cert.then(|| format!("clients/{account}/{}", u.name)))
}
