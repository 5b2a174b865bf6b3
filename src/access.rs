//! Access: every subject an application needs for what it declares it does (the JetStream API,
//! acknowledgement, flow-control and reply subjects included), the least permissions that grant
//! them, and whether a user's permissions grant a need. Pure: no I/O.
//!
//! What a client needs was measured on nats-server 2.15 (NATS-FACTS, "What an application needs
//! to read a consumer"): a pull reader publishes `CONSUMER.INFO` (to bind) and `CONSUMER.MSG.NEXT`
//! and `$JS.ACK.<stream>.<durable>.>`, and receives on its inbox; a push reader subscribes to the
//! deliver subject, acknowledges, and answers flow control on `$JS.FC.<stream>.>`.

use crate::model::{
    AckPolicy, App, Consumer, DEFAULT_INBOX, Leafnode, Loc, Pattern, Permissions, Responses, Rule, Site, Stream, Topology, kv_stream_name,
    object_stream_name,
};
use crate::subject;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Publish,
    Subscribe,
    /// Answers requests on the subject: the reply goes to the requester's inbox.
    Reply,
}

impl Direction {
    fn verb(self) -> &'static str {
        match self {
            Direction::Publish => "publish",
            Direction::Subscribe => "subscribe to",
            Direction::Reply => "reply to requests on",
        }
    }
}

/// One subject an application needs, and the use that needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub direction: Direction,
    pub subject: String,
    /// The use, e.g. `pulls from consumer ORDERS/worker`.
    pub why: String,
    /// Where the use is written.
    pub loc: Loc,
    /// Without it the use fails; the others are what common clients do too (bind with an info
    /// request) and are derived, but a user lacking only those can still read.
    pub essential: bool,
}

impl Need {
    fn new(direction: Direction, subject: String, why: String, loc: Loc) -> Self {
        Need {
            direction,
            subject,
            why,
            loc,
            essential: true,
        }
    }

    fn optional(mut self) -> Self {
        self.essential = false;
        self
    }

    /// `publish `$JS.ACK.S.C.>` (acknowledges consumer S/C)`.
    pub fn describe(&self) -> String {
        format!("{} `{}` ({})", self.direction.verb(), self.subject, self.why)
    }
}

/// The JetStream domain a client at `site` is in: its leafnode's own, or the regions'.
fn site_domain(t: &Topology, site: &Site) -> Option<String> {
    match site {
        Site::Leafnode(l) => t
            .leafnodes
            .iter()
            .find(|x| &x.name == l)
            .and_then(|x| x.jetstream.as_ref())
            .map(|js| js.domain.clone())
            .or_else(|| t.settings.jetstream_domain.clone()),
        Site::Region(_) => t.settings.jetstream_domain.clone(),
    }
}

/// The JetStream API prefix a client at `site` uses for an object in `domain`: `$JS.API` in its
/// own domain, `$JS.<domain>.API` across domains. `Err` when the object's domain has no name a
/// client elsewhere could address.
pub fn api_prefix(t: &Topology, site: &Site, domain: Option<&str>) -> Result<String, String> {
    let own = site_domain(t, site);
    if own.as_deref() == domain {
        return Ok("$JS.API".into());
    }
    match domain {
        Some(d) => Ok(format!("$JS.{d}.API")),
        None => Err(format!(
            "a client at {site} is in JetStream domain `{}`, and the regions' JetStream has no domain to address it by (set `defaults.jetstream.domain`)",
            own.unwrap_or_default()
        )),
    }
}

/// What reading `consumer` from `site` with reply subjects under `inbox` needs.
pub fn consumer_needs(t: &Topology, consumer: &Consumer, site: &Site, inbox: &str, loc: Loc) -> Result<Vec<Need>, String> {
    let stream = t.jetstream.streams.iter().find(|s| s.name == consumer.stream);
    let domain = stream.and_then(|s| t.stream_domain(s));
    let api = api_prefix(t, site, domain.as_deref())?;
    let (s, d) = (&consumer.stream, &consumer.name);
    let mut needs = vec![
        Need::new(
            Direction::Publish,
            format!("{api}.CONSUMER.INFO.{s}.{d}"),
            format!("binds to consumer {s}/{d}"),
            loc,
        )
        .optional(),
    ];
    let inbox_need = Need::new(
        Direction::Subscribe,
        format!("{inbox}.>"),
        "receives replies on its inbox".into(),
        loc,
    );
    match &consumer.deliver_subject {
        None => {
            needs.push(Need::new(
                Direction::Publish,
                format!("{api}.CONSUMER.MSG.NEXT.{s}.{d}"),
                format!("pulls from consumer {s}/{d}"),
                loc,
            ));
            needs.push(inbox_need);
        }
        Some(deliver) => {
            needs.push(inbox_need.optional());
            needs.push(Need::new(
                Direction::Subscribe,
                deliver.clone(),
                format!("receives push consumer {s}/{d} on its deliver subject"),
                loc,
            ));
            if consumer.flow_control {
                needs.push(Need::new(
                    Direction::Publish,
                    format!("$JS.FC.{s}.>"),
                    format!("answers the flow control of push consumer {s}/{d}"),
                    loc,
                ));
            }
        }
    }
    if consumer.ack_policy != AckPolicy::None {
        needs.push(Need::new(
            Direction::Publish,
            format!("$JS.ACK.{s}.{d}.>"),
            format!("acknowledges consumer {s}/{d}"),
            loc,
        ));
    }
    Ok(needs)
}

/// Every subject `app` needs for what it declares. `Err` names a use that cannot be served.
pub fn app_needs(t: &Topology, app: &App) -> Result<Vec<Need>, String> {
    let mut needs = Vec::new();
    let inbox_need = |why: String, loc: Loc| Need::new(Direction::Subscribe, format!("{}.>", app.inbox), why, loc);
    for u in &app.publish {
        needs.push(Need::new(Direction::Publish, u.subject.clone(), "publishes it".into(), u.loc));
    }
    for u in &app.subscribe {
        needs.push(Need::new(Direction::Subscribe, u.subject.clone(), "subscribes to it".into(), u.loc));
    }
    for u in &app.requests {
        needs.push(Need::new(
            Direction::Publish,
            u.subject.clone(),
            "sends requests on it".into(),
            u.loc,
        ));
        needs.push(inbox_need(
            format!("receives the replies to its requests on `{}`", u.subject),
            u.loc,
        ));
    }
    for u in &app.serves {
        needs.push(Need::new(
            Direction::Subscribe,
            u.subject.clone(),
            "serves requests on it".into(),
            u.loc,
        ));
        needs.push(Need::new(Direction::Reply, u.subject.clone(), "answers its requests".into(), u.loc));
    }
    for c in &app.consumers {
        let consumer = t
            .jetstream
            .consumers
            .iter()
            .find(|x| x.stream == c.stream && x.name == c.durable)
            .ok_or_else(|| format!("consumer `{}/{}` is not declared", c.stream, c.durable))?;
        needs.extend(consumer_needs(t, consumer, &app.at, &app.inbox, c.loc)?);
    }
    for b in &app.kv {
        let api = api_prefix(t, &app.at, t.settings.jetstream_domain.as_deref())?;
        let stream = kv_stream_name(&b.bucket);
        let bucket = &b.bucket;
        needs.push(Need::new(
            Direction::Publish,
            format!("{api}.STREAM.INFO.{stream}"),
            format!("binds to KV bucket `{bucket}`"),
            b.loc,
        ));
        needs.push(Need::new(
            Direction::Publish,
            format!("{api}.DIRECT.GET.{stream}.>"),
            format!("reads keys of KV bucket `{bucket}`"),
            b.loc,
        ));
        needs.push(inbox_need(format!("receives the answers of KV bucket `{bucket}`"), b.loc));
        if b.write {
            needs.push(Need::new(
                Direction::Publish,
                format!("$KV.{bucket}.>"),
                format!("writes keys of KV bucket `{bucket}`"),
                b.loc,
            ));
        }
    }
    for b in &app.object_stores {
        let api = api_prefix(t, &app.at, t.settings.jetstream_domain.as_deref())?;
        let stream = object_stream_name(&b.bucket);
        let bucket = &b.bucket;
        let need = |direction, subject: String, why: &str| Need::new(direction, subject, format!("{why} object store `{bucket}`"), b.loc);
        needs.push(need(Direction::Publish, format!("{api}.STREAM.INFO.{stream}"), "binds to"));
        needs.push(need(
            Direction::Publish,
            format!("{api}.DIRECT.GET.{stream}.>"),
            "reads the object descriptions of",
        ));
        // Clients read an object's chunks through an ordered (push, flow-controlled) consumer.
        needs.push(need(
            Direction::Publish,
            format!("{api}.CONSUMER.CREATE.{stream}.>"),
            "reads the chunks of",
        ));
        needs.push(need(
            Direction::Publish,
            format!("$JS.FC.{stream}.>"),
            "answers the flow control of",
        ));
        needs.push(inbox_need(
            format!("receives the answers and chunks of object store `{bucket}`"),
            b.loc,
        ));
        if b.write {
            needs.push(need(
                Direction::Publish,
                format!("$O.{bucket}.>"),
                "writes chunks and descriptions to",
            ));
            needs.push(need(
                Direction::Publish,
                format!("{api}.STREAM.PURGE.{stream}"),
                "removes replaced and deleted chunks from",
            ));
        }
    }
    Ok(needs)
}

/// notif-infra's own subjects: verification probes and the inboxes of its own connections.
pub const OWN_PREFIX: &str = "_NOTIF_INFRA";
/// The literal subject verification requests on for a declared `requests` pattern: each
/// wildcard taken by one token.
pub fn request_instance(pattern: &str) -> String {
    subject::instance(pattern, "notif-infra-verify")
}

/// Who answers a request an application sends on `subject`.
pub enum Answer<'t> {
    /// An application of its account that serves the subject (with the pattern it serves).
    App(&'t App, &'t Pattern),
    /// A stream of its account that stores it: JetStream acknowledges.
    Stream(&'t Stream),
}

/// The app of the requester's account serving `subject`, else the stream storing it.
pub fn answerer<'t>(t: &'t Topology, requester: &App, subject: &str) -> Option<Answer<'t>> {
    let server = t.apps.iter().filter(|b| b.account == requester.account).find_map(|b| {
        b.serves
            .iter()
            .find(|s| subject::matches(&s.subject, subject))
            .map(|s| Answer::App(b, s))
    });
    server.or_else(|| {
        t.jetstream
            .streams
            .iter()
            .find(|s| s.account == requester.account && s.subjects.iter().any(|x| subject::matches(x, subject)))
            .map(Answer::Stream)
    })
}

/// The first tokens of every verification probe's subject.
pub const PROBE_PREFIX: &str = "_NOTIF_INFRA.probe";
/// The reply prefix of notif-infra's own connections (JetStream management, probes).
pub const OWN_INBOX: &str = "_NOTIF_INFRA.inbox";

/// The permissions of a leafnode's link user in its hub account, which is how nats-server
/// restricts a leaf: it may send into the hub what they let it publish (its `exports`) and
/// receive what they let it subscribe to (its `imports`). What the leaf's applications ask of
/// the hub's JetStream crosses too: their API requests and acknowledgements go out, the replies
/// and pushed messages come in. `None`: the leaf declares no allow list.
pub fn link_permissions(t: &Topology, leaf: &Leafnode) -> Option<Permissions> {
    if leaf.imports.is_none() && leaf.exports.is_none() {
        return None;
    }
    let everything = || {
        vec![Pattern {
            subject: ">".into(),
            loc: leaf.loc,
        }]
    };
    let mut needs: Vec<Need> = Vec::new();
    let site = Site::Leafnode(leaf.name.clone());
    for app in t.apps.iter().filter(|a| a.at == site) {
        let remote = |stream: &str| {
            t.jetstream
                .streams
                .iter()
                .find(|s| s.name == stream)
                .is_some_and(|s| s.leafnode.as_deref() != Some(leaf.name.as_str()))
        };
        for c in app.consumers.iter().filter(|c| remote(&c.stream)) {
            if let Some(consumer) = t.jetstream.consumers.iter().find(|x| x.stream == c.stream && x.name == c.durable) {
                needs.extend(consumer_needs(t, consumer, &site, &app.inbox, c.loc).unwrap_or_default());
            }
        }
    }
    // A stream on the leaf that sources or mirrors one of the hub's: the leaf's server asks the
    // hub's API for a consumer (replies on `$JSC.R.<id>`) that pushes to a `$JS.S.<id>` subject
    // with flow control (nats-server's stream.go).
    for stream in t
        .jetstream
        .streams
        .iter()
        .filter(|s| s.leafnode.as_deref() == Some(leaf.name.as_str()))
    {
        for origin in stream.mirror.iter().chain(&stream.sources) {
            let Some(upstream) = t.jetstream.streams.iter().find(|s| s.name == origin.name && s.leafnode.is_none()) else {
                continue;
            };
            let Ok(api) = api_prefix(t, &site, t.stream_domain(upstream).as_deref()) else {
                continue;
            };
            let why = format!("stream `{}` sources stream `{}` of the hub", stream.name, upstream.name);
            let publish = |subject: String| Need::new(Direction::Publish, subject, why.clone(), stream.loc);
            let subscribe = |subject: String| Need::new(Direction::Subscribe, subject, why.clone(), stream.loc);
            needs.push(publish(format!("{api}.CONSUMER.CREATE.{}", upstream.name)));
            needs.push(publish(format!("{api}.CONSUMER.CREATE.{}.>", upstream.name)));
            needs.push(publish(format!("$JS.FC.{}.>", upstream.name)));
            needs.push(subscribe("$JSC.R.>".into()));
            needs.push(subscribe("$JS.S.>".into()));
        }
    }
    let derived = derive(&needs);
    let pattern = |subject: String| Pattern { subject, loc: leaf.loc };
    // notif-infra's own traffic crosses too: verification's probes (so verify proves the link
    // carries messages) and the replies to its JetStream requests; and a leaf with its own
    // JetStream is managed from the hub through its domain's API.
    let own = pattern(format!("{OWN_PREFIX}.>"));
    let managed = leaf.jetstream.as_ref().map(|js| pattern(format!("$JS.{}.API.>", js.domain)));
    let mut publish = leaf.exports.clone().unwrap_or_else(everything);
    let mut subscribe = leaf.imports.clone().unwrap_or_else(everything);
    publish.extend(derived.publish.allow.into_iter().chain([own.clone()]));
    subscribe.extend(derived.subscribe.allow.into_iter().chain([own]).chain(managed));
    Some(Permissions {
        publish: Rule {
            allow: publish,
            deny: Vec::new(),
        },
        subscribe: Rule {
            allow: subscribe,
            deny: Vec::new(),
        },
        responses: None,
    })
}

/// The least permissions that grant every need: each subject once, none a subset of another.
pub fn derive(needs: &[Need]) -> Permissions {
    let rule = |direction: Direction| {
        let of: Vec<&Need> = needs.iter().filter(|n| n.direction == direction).collect();
        let mut allow: Vec<Pattern> = Vec::new();
        for (i, n) in of.iter().enumerate() {
            let covered_by_other = of
                .iter()
                .enumerate()
                .any(|(j, m)| j != i && subject::is_subset(&n.subject, &m.subject) && (m.subject != n.subject || j < i));
            if !covered_by_other {
                allow.push(Pattern {
                    subject: n.subject.clone(),
                    loc: n.loc,
                });
            }
        }
        Rule { allow, deny: Vec::new() }
    };
    let mut publish = rule(Direction::Publish);
    let subscribe = rule(Direction::Subscribe);
    let replies = needs.iter().any(|n| n.direction == Direction::Reply);
    // A user allowed nothing to publish must say so: an empty allow list means everything.
    if publish.allow.is_empty() {
        publish.deny.push(Pattern {
            subject: ">".into(),
            loc: Loc::default(),
        });
    }
    let mut subscribe = subscribe;
    if subscribe.allow.is_empty() {
        subscribe.deny.push(Pattern {
            subject: ">".into(),
            loc: Loc::default(),
        });
    }
    Permissions {
        publish,
        subscribe,
        responses: replies.then_some(Responses { max: 1, ttl: None }),
    }
}

/// Why `permissions` (`None`: unrestricted) do not grant `need`, if they do not.
pub fn refusal(permissions: Option<&Permissions>, need: &Need) -> Option<String> {
    let p = permissions?;
    match need.direction {
        Direction::Publish => rule_refusal(&p.publish, &need.subject, "publish"),
        Direction::Subscribe => rule_refusal(&p.subscribe, &need.subject, "subscribe"),
        Direction::Reply => {
            let inbox = format!("{DEFAULT_INBOX}.>");
            if p.responses.is_some() || rule_refusal(&p.publish, &inbox, "publish").is_none() {
                None
            } else {
                Some("neither `allow_responses` nor a publish right to the requesters' `_INBOX.>`".into())
            }
        }
    }
}

/// Why `rule` does not cover every subject of `pattern`, if it does not.
fn rule_refusal(rule: &Rule, pattern: &str, what: &str) -> Option<String> {
    if let Some(d) = rule.deny.iter().find(|d| subject::overlaps(&d.subject, pattern)) {
        return Some(format!("its {what} deny `{}` refuses `{pattern}`", d.subject));
    }
    if !rule.allow.is_empty() && !rule.allow.iter().any(|a| subject::is_subset(pattern, &a.subject)) {
        return Some(format!(
            "its {what} allow list ({}) does not cover `{pattern}`",
            rule.allow.iter().map(|a| format!("`{}`", a.subject)).collect::<Vec<_>>().join(", ")
        ));
    }
    None
}

/// Whether `permissions` let a client publish (or subscribe to, by `direction`) some subject
/// of `pattern`.
pub fn grants_some(permissions: Option<&Permissions>, direction: Direction, pattern: &str) -> bool {
    let Some(p) = permissions else { return true };
    let rule = match direction {
        Direction::Subscribe => &p.subscribe,
        Direction::Publish | Direction::Reply => &p.publish,
    };
    let denied_whole = rule.deny.iter().any(|d| subject::is_subset(pattern, &d.subject));
    let allowed = rule.allow.is_empty() || rule.allow.iter().any(|a| subject::overlaps(&a.subject, pattern));
    allowed && !denied_whole
}

/// The allow patterns of hand-written `permissions` that no need asks for: wider than the
/// declared use.
pub fn wider_than_needed<'p>(permissions: &'p Permissions, needs: &[Need]) -> Vec<(&'static str, &'p Pattern)> {
    let inbox = format!("{DEFAULT_INBOX}.>");
    let needed = |direction: Direction, allow: &str| {
        needs.iter().any(|n| match n.direction {
            Direction::Reply => direction == Direction::Publish && subject::is_subset(allow, &inbox),
            d => d == direction && subject::is_subset(allow, &n.subject),
        })
    };
    let publish = permissions
        .publish
        .allow
        .iter()
        .filter(|a| !needed(Direction::Publish, &a.subject))
        .map(|a| ("publish", a));
    let subscribe = permissions
        .subscribe
        .allow
        .iter()
        .filter(|a| !needed(Direction::Subscribe, &a.subject))
        .map(|a| ("subscribe", a));
    publish.chain(subscribe).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(yaml: &str) -> Topology {
        let source = crate::topology::Source {
            path: "t.yaml".into(),
            text: yaml.into(),
        };
        crate::topology::parse(source).expect("a valid topology").topology
    }

    const PULL_AND_PUSH: &str = "name: t\nregions:\n  east:\n    nodes: 3\n    jetstream: true\naccounts:\n  APP:\n    jetstream: true\n    users: [{ user: worker, password: \"${W}\" }, { user: pusher, password: \"${P}\" }]\nstreams:\n  ORDERS: { account: APP, subjects: [\"orders.>\"] }\nconsumers:\n  - { durable: work, stream: ORDERS }\n  - { durable: fan, stream: ORDERS, deliver_subject: deliver.fan, flow_control: true, idle_heartbeat: 5s }\napps:\n  billing:\n    user: worker\n    at: east\n    consumers: [ORDERS/work]\n  cache:\n    user: pusher\n    at: east\n    consumers: [ORDERS/fan]\n";

    fn subjects(r: &Rule) -> Vec<&str> {
        r.allow.iter().map(|p| p.subject.as_str()).collect()
    }

    #[test]
    fn a_pull_reader_gets_the_consumer_api_its_acks_and_its_inbox() {
        let t = topology(PULL_AND_PUSH);
        let user = &t.account("APP").unwrap().users[0];
        assert_eq!(
            subjects(&user.permissions.publish),
            [
                "$JS.API.CONSUMER.INFO.ORDERS.work",
                "$JS.API.CONSUMER.MSG.NEXT.ORDERS.work",
                "$JS.ACK.ORDERS.work.>"
            ]
        );
        assert_eq!(subjects(&user.permissions.subscribe), ["_INBOX.>"]);
        assert_eq!(user.derived_for, ["billing"]);
    }

    #[test]
    fn a_push_reader_gets_its_deliver_subject_and_flow_control() {
        let t = topology(PULL_AND_PUSH);
        let user = &t.account("APP").unwrap().users[1];
        assert_eq!(
            subjects(&user.permissions.publish),
            ["$JS.API.CONSUMER.INFO.ORDERS.fan", "$JS.FC.ORDERS.>", "$JS.ACK.ORDERS.fan.>"]
        );
        assert_eq!(subjects(&user.permissions.subscribe), ["_INBOX.>", "deliver.fan"]);
    }

    #[test]
    fn a_covered_subject_is_not_repeated_and_nothing_means_deny_all() {
        let needs = [
            Need::new(Direction::Publish, "orders.>".into(), "a".into(), Loc::default()),
            Need::new(Direction::Publish, "orders.eu.1".into(), "b".into(), Loc::default()),
            Need::new(Direction::Publish, "orders.>".into(), "c".into(), Loc::default()),
        ];
        let p = derive(&needs);
        assert_eq!(subjects(&p.publish), ["orders.>"]);
        assert!(p.subscribe.allow.is_empty());
        assert_eq!(p.subscribe.deny[0].subject, ">");
    }

    #[test]
    fn a_rule_grants_a_pattern_only_when_an_allow_covers_it_and_no_deny_touches_it() {
        let pattern = |s: &str| Pattern {
            subject: s.into(),
            loc: Loc::default(),
        };
        let rule = Rule {
            allow: vec![pattern("$JS.ACK.>")],
            deny: vec![pattern("$JS.ACK.SECRET.>")],
        };
        assert!(rule_refusal(&rule, "$JS.ACK.ORDERS.work.>", "publish").is_none());
        assert!(rule_refusal(&rule, "$JS.ACK.*.work.>", "publish").unwrap().contains("deny"));
        assert!(rule_refusal(&rule, "_INBOX.>", "publish").unwrap().contains("does not cover"));
    }

    #[test]
    fn a_leaf_link_carries_its_lists_and_what_its_apps_and_sources_need_of_the_hub() {
        let yaml = "name: t\ndefaults:\n  jetstream: { domain: hub }\nregions:\n  east:\n    nodes: 3\n    jetstream: true\nleafnodes:\n  edge:\n    hub: east\n    account: APP\n    imports: [\"changes.edge.>\"]\n    exports: []\n    jetstream: { domain: edge }\naccounts:\n  SYS: { system: true }\n  APP:\n    jetstream: true\n    users: [{ user: sync, password: \"${S}\" }]\nstreams:\n  CHANGES: { account: APP, subjects: [\"changes.>\"] }\n  CACHE: { account: APP, leafnode: edge, sources: [{ name: CHANGES }] }\nconsumers:\n  - { durable: edge, stream: CHANGES }\napps:\n  sync:\n    user: sync\n    at: edge\n    consumers: [CHANGES/edge]\n";
        let t = topology(yaml);
        let link = link_permissions(&t, &t.leafnodes[0]).expect("the leaf lists what crosses");
        assert_eq!(
            subjects(&link.publish),
            [
                "$JS.hub.API.CONSUMER.INFO.CHANGES.edge",
                "$JS.hub.API.CONSUMER.MSG.NEXT.CHANGES.edge",
                "$JS.ACK.CHANGES.edge.>",
                "$JS.hub.API.CONSUMER.CREATE.CHANGES",
                "$JS.hub.API.CONSUMER.CREATE.CHANGES.>",
                "$JS.FC.CHANGES.>",
                "_NOTIF_INFRA.>"
            ]
        );
        assert_eq!(
            subjects(&link.subscribe),
            [
                "changes.edge.>",
                "_INBOX.>",
                "$JSC.R.>",
                "$JS.S.>",
                "_NOTIF_INFRA.>",
                "$JS.edge.API.>"
            ]
        );
        // Without lists the link is the deny lists' business.
        let open = yaml.replace("    imports: [\"changes.edge.>\"]\n    exports: []\n", "");
        let t = topology(&open);
        assert!(link_permissions(&t, &t.leafnodes[0]).is_none());
    }

    #[test]
    fn a_reader_on_a_leaf_with_its_own_domain_uses_the_regions_domain_prefix() {
        let yaml = "name: t\ndefaults:\n  jetstream: { domain: hub }\nregions:\n  east:\n    nodes: 3\n    jetstream: true\nleafnodes:\n  edge:\n    hub: east\n    account: APP\n    jetstream: { domain: edge }\naccounts:\n  SYS: { system: true }\n  APP:\n    jetstream: true\n    users: [{ user: sync, password: \"${S}\" }]\nstreams:\n  CHANGES: { account: APP, subjects: [\"changes.>\"] }\nconsumers:\n  - { durable: edge, stream: CHANGES }\napps:\n  sync:\n    user: sync\n    at: edge\n    consumers: [CHANGES/edge]\n";
        let t = topology(yaml);
        let user = &t.account("APP").unwrap().users[0];
        assert!(subjects(&user.permissions.publish).contains(&"$JS.hub.API.CONSUMER.MSG.NEXT.CHANGES.edge"));
    }
}
