//! Streams, consumers, KV buckets and object stores: schema -> model, with the checks the
//! JetStream API would otherwise make one object at a time (overlaps, replicas, placement).

use serde_saphyr::Spanned;
use std::collections::HashMap;

use super::{Validator, loc};
use crate::model::*;
use crate::subject;
use crate::topology::diagnostic::{Diagnostic, did_you_mean};
use crate::topology::schema::*;

/// nats-server refuses more replicas than this.
const MAX_REPLICAS: u64 = 5;
/// nats-server's limit on KV history.
const MAX_KV_HISTORY: u64 = 64;

/// A stream as the server will hold it (KV buckets and object stores are streams too), for the
/// checks that span objects.
struct Held<'a> {
    stream_name: String,
    account: AccountName,
    /// The leafnode whose own JetStream holds it (`None`: the regions').
    leafnode: Option<&'a str>,
    subjects: Vec<String>,
    object: String,
    loc: Loc,
    store: &'a StoreSettings,
}

impl Validator {
    pub(super) fn jetstream_objects(&mut self, file: &TopologyFile, topology: &Topology) -> JetStreamObjects {
        let mut objects = JetStreamObjects::default();
        for (name, spec) in &file.streams {
            objects.streams.push(self.stream(name, spec, topology));
        }
        for (name, spec) in &file.kv {
            objects.kv.push(self.kv(name, spec, topology));
        }
        for (name, spec) in &file.object_stores {
            objects.object_stores.push(self.object_store(name, spec, topology));
        }
        let streams: HashMap<&str, &Stream> = objects.streams.iter().map(|s| (s.name.as_str(), s)).collect();
        for spec in &file.consumers {
            if let Some(c) = self.consumer(spec, &streams) {
                objects.consumers.push(c);
            }
        }
        self.cross_domain_sources(&objects, topology);
        let held = held_streams(&objects);
        self.stream_names_and_overlaps(&held);
        let js_regions = JetStreamRegions::of(topology);
        for h in &held {
            self.replicas_and_placement(h, topology, &js_regions);
        }
        self.stores_fit(&held, topology, &js_regions);
        self.consumer_checks(&objects);
        if !objects.is_empty() && !topology.regions.iter().any(|r| r.jetstream.is_some()) {
            let at = file.streams.keys().next().map(loc).or_else(|| file.kv.keys().next().map(loc));
            let mut d = Diagnostic::error("JetStream objects are declared but no region runs JetStream")
                .help("add `jetstream: true` to the region that should hold them");
            if let Some(at) = at {
                d = d.at(at);
            }
            self.error(d);
        }
        objects
    }

    /// A stream in a leafnode's own JetStream: the leaf runs JetStream, serves the stream's
    /// account, and is one server (one replica, no placement).
    fn leaf_stream(&mut self, leaf_name: &Spanned<String>, spec: &StreamSpec, account: &AccountName, t: &Topology) {
        let Some(leaf) = t.leafnodes.iter().find(|l| l.name == leaf_name.value) else {
            let d = Diagnostic::error(format!("unknown leafnode `{}`", leaf_name.value)).at(loc(leaf_name));
            self.error(match did_you_mean(&leaf_name.value, t.leafnodes.iter().map(|l| l.name.as_str())) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help("declare it under `leafnodes:`"),
            });
            return;
        };
        if leaf.jetstream.is_none() {
            self.error(
                Diagnostic::error(format!("leafnode `{}` runs no JetStream to hold the stream", leaf.name))
                    .at(loc(leaf_name))
                    .help(format!("give leafnode `{}` `jetstream: {{ domain: <name> }}`", leaf.name)),
            );
        }
        if account.is_some() && leaf.account != *account {
            self.error(
                Diagnostic::error(format!(
                    "leafnode `{}` serves account `{}`, not the stream's account `{}`",
                    leaf.name,
                    leaf.account.as_deref().unwrap_or("(none)"),
                    account.as_deref().unwrap_or_default()
                ))
                .at(loc(leaf_name))
                .help("a leafnode holds the JetStream of the account it binds to"),
            );
        }
        if let Some(r) = spec.replicas.as_ref().filter(|r| r.value > 1) {
            self.error(
                Diagnostic::error(format!(
                    "a stream on leafnode `{}` cannot have {} replicas: a leafnode is one server",
                    leaf.name, r.value
                ))
                .at(loc(r))
                .help("leave `replicas` out (1)"),
            );
        }
        if let Some(p) = &spec.placement {
            self.error(
                Diagnostic::error("a stream on a leafnode takes no placement")
                    .at(loc(p))
                    .help("`leafnode:` already says where it lives"),
            );
        }
    }

    /// A leafnode's stream that takes messages from the regions' streams reaches them through
    /// the regions' JetStream domain, so they need one.
    fn cross_domain_sources(&mut self, objects: &JetStreamObjects, t: &Topology) {
        if t.settings.jetstream_domain.is_some() {
            return;
        }
        for s in objects.streams.iter().filter(|s| s.leafnode.is_some()) {
            let from_regions = s
                .mirror
                .iter()
                .chain(&s.sources)
                .find(|origin| objects.streams.iter().any(|o| o.name == origin.name && o.leafnode.is_none()));
            if let Some(origin) = from_regions {
                self.error(
                    Diagnostic::error(format!(
                        "stream `{}` on leafnode `{}` takes `{}` from the regions, which have no JetStream domain to reach them by",
                        s.name,
                        s.leafnode.as_deref().unwrap_or_default(),
                        origin.name
                    ))
                    .at(s.loc)
                    .help("give the regions a domain: `defaults: { jetstream: { domain: <name> } }`"),
                );
            }
        }
    }

    /// The account an object lives in: the one it names, or the only JetStream account.
    fn object_account(&mut self, what: &str, name: &Spanned<String>, account: &Option<Spanned<String>>, t: &Topology) -> AccountName {
        if t.accounts.is_empty() {
            if let Some(a) = account {
                self.error(
                    Diagnostic::error(format!(
                        "{what} `{}` names account `{}`, but the topology declares no accounts",
                        name.value, a.value
                    ))
                    .at(loc(a))
                    .help("remove `account:` (the object lives in the global account) or declare the account"),
                );
            }
            return None;
        }
        match account {
            Some(a) => match t.account(&a.value) {
                None => {
                    let mut d = Diagnostic::error(format!(
                        "{what} `{}` is in account `{}`, which is not declared",
                        name.value, a.value
                    ))
                    .at(loc(a));
                    if let Some(s) = did_you_mean(&a.value, t.accounts.iter().map(|x| x.name.as_str())) {
                        d = d.help(format!("did you mean `{s}`?"));
                    }
                    self.error(d);
                    None
                }
                Some(acc) if !acc.jetstream => {
                    self.error(
                        Diagnostic::error(format!(
                            "{what} `{}` is in account `{}`, which does not have JetStream",
                            name.value, a.value
                        ))
                        .at(loc(a))
                        .help(format!("set `jetstream: true` on account `{}`", a.value)),
                    );
                    Some(acc.name.clone())
                }
                Some(acc) => Some(acc.name.clone()),
            },
            None => {
                // Without `account:` an object belongs to the one account with JetStream.
                let names: Vec<&str> = t.app_accounts().filter(|a| a.jetstream).map(|a| a.name.as_str()).collect();
                if let [only] = names[..] {
                    return Some(only.to_string());
                }
                self.error(
                    Diagnostic::error(format!("{what} `{}` does not say which account it belongs to", name.value))
                        .at(loc(name))
                        .help(if names.is_empty() {
                            "no account has `jetstream: true`: enable it on the account that owns this object".to_string()
                        } else {
                            format!("add `account:` naming one of {}", names.join(", "))
                        }),
                );
                None
            }
        }
    }

    fn placement(&mut self, spec: &Option<Spanned<PlacementSpec>>, object: &str) -> Option<Placement> {
        let p = spec.as_ref()?;
        let tags = p.value.tags.iter().map(|t| t.value.clone()).collect();
        if p.value.region.is_none() && p.value.tags.is_empty() {
            self.error(
                Diagnostic::error(format!("{object}: placement names neither a region nor tags"))
                    .at(loc(p))
                    .help("give `region:`, `tags:` or both, or remove `placement:`"),
            );
        }
        Some(Placement {
            region: p.value.region.as_ref().map(|r| r.value.clone()),
            tags,
        })
    }

    fn replicas(&mut self, value: &Option<Spanned<u64>>) -> u8 {
        match value {
            None => 1,
            Some(r) if r.value == 0 || r.value > MAX_REPLICAS => {
                self.error(
                    Diagnostic::error(format!("{} replicas: nats-server allows 1 to {MAX_REPLICAS}", r.value))
                        .at(loc(r))
                        .help("use 1 (no redundancy) or 3 (the usual for production)"),
                );
                1
            }
            Some(r) => r.value as u8,
        }
    }

    fn one_subject(&mut self, s: &Spanned<String>, object: &str) -> String {
        self.subjects(std::slice::from_ref(s), object).remove(0).subject
    }

    fn stream(&mut self, name: &Spanned<String>, spec: &StreamSpec, t: &Topology) -> Stream {
        self.name(name, "stream");
        let object = format!("stream `{}`", name.value);
        let account = self.object_account("stream", name, &spec.account, t);
        let subjects = subjects(&self.subjects(&spec.subjects, &object));
        let source = |v: &mut Validator, s: &Spanned<SourceSpec>| StreamSource {
            name: s.value.name.value.clone(),
            filter_subject: s.value.filter_subject.as_ref().map(|f| v.one_subject(f, &object)),
        };
        let mirror = spec.mirror.as_ref().map(|m| source(self, m));
        let sources: Vec<StreamSource> = spec.sources.iter().map(|s| source(self, s)).collect();
        if let Some(m) = &spec.mirror
            && (!spec.subjects.is_empty() || !spec.sources.is_empty())
        {
            self.error(
                Diagnostic::error(format!(
                    "stream `{}` mirrors `{}` and also has subjects or sources",
                    name.value, m.value.name.value
                ))
                .at(loc(m))
                .help("a mirror takes its messages only from the stream it mirrors: remove `subjects:` and `sources:`"),
            );
        }
        let replicas = self.replicas(&spec.replicas);
        let max_age = spec.max_age.as_ref().map(|d| self.duration(d));
        let leafnode = spec.leafnode.as_ref().map(|l| {
            self.leaf_stream(l, spec, &account, t);
            l.value.clone()
        });
        Stream {
            name: name.value.clone(),
            account,
            leafnode,
            subjects,
            retention: spec.retention.as_ref().map(|r| r.value).unwrap_or_default(),
            discard: spec.discard.as_ref().map(|d| d.value).unwrap_or_default(),
            store: StoreSettings {
                storage: spec.storage.as_ref().map(|s| s.value).unwrap_or_default(),
                replicas,
                max_bytes: self.size(&spec.max_bytes, None),
                max_age,
                placement: self.placement(&spec.placement, &object),
            },
            max_msgs: spec.max_msgs.as_ref().map(|m| m.value),
            max_msgs_per_subject: spec.max_msgs_per_subject.as_ref().map(|m| m.value),
            max_msg_size: self.size(&spec.max_msg_size, None),
            duplicate_window: spec.duplicate_window.as_ref().map(|d| self.duration(d)),
            mirror,
            sources,
            deny_delete: spec.deny_delete,
            deny_purge: spec.deny_purge,
            allow_rollup: spec.allow_rollup,
            features: self.stream_features(spec, &object),
            loc: loc(name),
        }
    }

    /// A time as the JetStream API takes it (RFC 3339); refused where it is written otherwise.
    fn time(&mut self, t: &Spanned<String>, object: &str) -> String {
        if !is_rfc3339(&t.value) {
            self.error(
                Diagnostic::error(format!("`{}` is not an RFC 3339 time", t.value))
                    .at(loc(t))
                    .object(object.to_string())
                    .help("write it as 2026-01-31T12:00:00Z"),
            );
        }
        t.value.clone()
    }

    /// The settings of nats-server 2.11 to 2.15, with the combinations the server refuses
    /// (measured on 2.15) refused here, where they are written.
    fn stream_features(&mut self, spec: &StreamSpec, object: &str) -> StreamFeatures {
        let on = |b: &Option<Spanned<bool>>| b.as_ref().map(|b| b.value);
        let features = StreamFeatures {
            allow_msg_ttl: on(&spec.allow_msg_ttl),
            subject_delete_marker_ttl: spec.subject_delete_marker_ttl.as_ref().map(|d| self.duration(d)),
            allow_atomic: on(&spec.allow_atomic),
            allow_msg_counter: on(&spec.allow_msg_counter),
            allow_msg_schedules: on(&spec.allow_msg_schedules),
            allow_batched: on(&spec.allow_batched),
            persist_mode: spec.persist_mode.as_ref().map(|p| p.value),
        };
        let ttl = features.allow_msg_ttl == Some(true);
        if let (Some(marker), false) = (&spec.subject_delete_marker_ttl, ttl) {
            self.error(
                Diagnostic::error(format!("{object}: `subject_delete_marker_ttl` needs `allow_msg_ttl: true`"))
                    .at(loc(marker))
                    .help("nats-server places delete markers only in a stream with per-message TTLs"),
            );
        }
        if let (Some(counter), true) = (&spec.allow_msg_counter, ttl)
            && counter.value
        {
            self.error(
                Diagnostic::error(format!("{object}: a counter stream cannot use message TTLs"))
                    .at(loc(counter))
                    .help("nats-server refuses `allow_msg_counter` beside `allow_msg_ttl`: keep one"),
            );
        }
        if let (Some(mode), Some(true)) = (&spec.persist_mode, features.allow_atomic)
            && mode.value == PersistMode::Async
        {
            self.error(
                Diagnostic::error(format!("{object}: `persist_mode: async` does not go with `allow_atomic`"))
                    .at(loc(mode))
                    .help("nats-server refuses atomic batch publish on a stream that acknowledges before it writes"),
            );
        }
        features
    }

    fn kv(&mut self, name: &Spanned<String>, spec: &KvSpec, t: &Topology) -> KeyValue {
        self.name(name, "KV bucket");
        let object = format!("KV bucket `{}`", name.value);
        let history = match &spec.history {
            None => 1,
            Some(h) if h.value == 0 || h.value > MAX_KV_HISTORY => {
                self.error(
                    Diagnostic::error(format!(
                        "history {} is out of range: nats-server keeps 1 to {MAX_KV_HISTORY} values per key",
                        h.value
                    ))
                    .at(loc(h))
                    .object(object.clone()),
                );
                1
            }
            Some(h) => h.value as u8,
        };
        let account = self.object_account("KV bucket", name, &spec.account, t);
        let replicas = self.replicas(&spec.replicas);
        KeyValue {
            bucket: name.value.clone(),
            account,
            history,
            store: StoreSettings {
                storage: spec.storage.as_ref().map(|s| s.value).unwrap_or_default(),
                replicas,
                max_bytes: self.size(&spec.max_bytes, None),
                max_age: spec.ttl.as_ref().map(|d| self.duration(d)),
                placement: self.placement(&spec.placement, &object),
            },
            max_value_size: self.size(&spec.max_value_size, None),
            loc: loc(name),
        }
    }

    fn object_store(&mut self, name: &Spanned<String>, spec: &ObjectStoreSpec, t: &Topology) -> ObjectStore {
        self.name(name, "object store");
        let object = format!("object store `{}`", name.value);
        let account = self.object_account("object store", name, &spec.account, t);
        let replicas = self.replicas(&spec.replicas);
        ObjectStore {
            bucket: name.value.clone(),
            account,
            store: StoreSettings {
                storage: spec.storage.as_ref().map(|s| s.value).unwrap_or_default(),
                replicas,
                max_bytes: self.size(&spec.max_bytes, None),
                max_age: spec.ttl.as_ref().map(|d| self.duration(d)),
                placement: self.placement(&spec.placement, &object),
            },
            loc: loc(name),
        }
    }

    fn consumer(&mut self, spec: &ConsumerSpec, streams: &HashMap<&str, &Stream>) -> Option<Consumer> {
        let name = &spec.durable;
        self.name(name, "consumer");
        let Some(stream) = streams.get(spec.stream.value.as_str()) else {
            let mut d = Diagnostic::error(format!(
                "consumer `{}` is on stream `{}`, which is not declared",
                name.value, spec.stream.value
            ))
            .at(loc(&spec.stream));
            let mut names: Vec<&str> = streams.keys().copied().collect();
            names.sort_unstable();
            d = match did_you_mean(&spec.stream.value, names) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help("declare the stream under `streams:`"),
            };
            self.error(d);
            return None;
        };
        let object = format!("consumer `{}/{}`", stream.name, name.value);
        let mut filters: Vec<String> = spec.filter_subject.iter().map(|f| self.one_subject(f, &object)).collect();
        filters.extend(subjects(&self.subjects(&spec.filter_subjects, &object)));
        let deliver_subject = spec.deliver_subject.as_ref().map(|d| {
            let s = self.one_subject(d, &object);
            if s.contains('*') || s.contains('>') {
                self.error(
                    Diagnostic::error(format!("deliver subject `{s}` has a wildcard"))
                        .at(loc(d))
                        .object(object.clone())
                        .help("a push consumer delivers to one literal subject"),
                );
            }
            s
        });
        let push_only = |v: &mut Validator, what: &str, at: Loc| {
            v.error(
                Diagnostic::error(format!("{object}: `{what}` needs a push consumer"))
                    .at(at)
                    .help("set `deliver_subject:` or remove it"),
            )
        };
        if deliver_subject.is_none() {
            if let Some(f) = &spec.flow_control {
                push_only(self, "flow_control", loc(f));
            }
            if let Some(h) = &spec.idle_heartbeat {
                push_only(self, "idle_heartbeat", loc(h));
            }
            if let Some(g) = &spec.deliver_group {
                push_only(self, "deliver_group", loc(g));
            }
        } else if let Some(w) = &spec.max_waiting {
            self.error(
                Diagnostic::error(format!("{object}: `max_waiting` is for pull consumers"))
                    .at(loc(w))
                    .help("remove it, or remove `deliver_subject:` to make the consumer pull"),
            );
        }
        let deliver_policy = spec.deliver_policy.as_ref().map(|d| d.value).unwrap_or_default();
        let opt_start_time = spec.opt_start_time.as_ref().map(|t| self.time(t, &object));
        let at = loc(name);
        match (deliver_policy, &opt_start_time, &spec.opt_start_seq) {
            (DeliverPolicy::ByStartTime, None, _) => self.error(
                Diagnostic::error(format!("{object}: deliver_policy by_start_time needs `opt_start_time`"))
                    .at(at)
                    .help("add `opt_start_time: 2026-01-31T12:00:00Z`"),
            ),
            (DeliverPolicy::ByStartSequence, _, None) => {
                self.error(Diagnostic::error(format!("{object}: deliver_policy by_start_sequence needs `opt_start_seq`")).at(at))
            }
            (p, Some(_), _) if p != DeliverPolicy::ByStartTime => {
                self.error(Diagnostic::error(format!("{object}: `opt_start_time` needs deliver_policy by_start_time")).at(at))
            }
            (p, _, Some(s)) if p != DeliverPolicy::ByStartSequence => {
                self.error(Diagnostic::error(format!("{object}: `opt_start_seq` needs deliver_policy by_start_sequence")).at(loc(s)))
            }
            _ => {}
        }
        let pause_until = spec.pause_until.as_ref().map(|t| self.time(t, &object));
        if let Some(policy) = &spec.priority_policy
            && policy.value != PriorityPolicy::None
        {
            if spec.priority_groups.is_empty() {
                self.error(
                    Diagnostic::error(format!("{object}: `priority_policy` needs at least one of `priority_groups`"))
                        .at(loc(policy))
                        .help("name the groups its clients pull in: `priority_groups: [jobs]`"),
                );
            }
            if deliver_subject.is_some() {
                self.error(
                    Diagnostic::error(format!("{object}: priority groups are for pull consumers"))
                        .at(loc(policy))
                        .help("remove `deliver_subject:` to make the consumer pull"),
                );
            }
        }
        let backoff: Vec<_> = spec.backoff.iter().map(|b| self.duration(b)).collect();
        let max_deliver = spec.max_deliver.as_ref().map(|m| m.value);
        if !backoff.is_empty() && max_deliver.is_none_or(|m| m >= 0 && m <= backoff.len() as i64) {
            self.error(
                Diagnostic::error(format!(
                    "{object}: a backoff of {} step(s) needs `max_deliver` above {}",
                    backoff.len(),
                    backoff.len()
                ))
                .at(loc(&spec.backoff[0]))
                .help("nats-server rejects a backoff list not shorter than max_deliver"),
            );
        }
        if let (Some(wait), false) = (&spec.ack_wait, backoff.is_empty()) {
            self.diags.push(
                Diagnostic::warning(format!("{object}: `ack_wait` is ignored when `backoff` is set"))
                    .at(loc(wait))
                    .help("nats-server waits the first backoff step for the first ack; remove `ack_wait`"),
            );
        }
        Some(Consumer {
            name: name.value.clone(),
            stream: stream.name.clone(),
            account: stream.account.clone(),
            deliver_subject,
            deliver_group: spec.deliver_group.as_ref().map(|g| g.value.clone()),
            filter_subjects: filters,
            ack_policy: spec.ack_policy.as_ref().map(|a| a.value).unwrap_or_default(),
            // With a backoff list the server takes its first step as the ack wait.
            ack_wait: spec.ack_wait.as_ref().map(|d| self.duration(d)).filter(|_| spec.backoff.is_empty()),
            max_deliver,
            backoff,
            deliver_policy,
            opt_start_time,
            opt_start_seq: spec.opt_start_seq.as_ref().map(|s| s.value),
            replay_policy: spec.replay_policy.as_ref().map(|r| r.value).unwrap_or_default(),
            max_ack_pending: spec.max_ack_pending.as_ref().map(|m| m.value),
            max_waiting: spec.max_waiting.as_ref().map(|m| m.value),
            rate_limit_bps: spec.rate_limit_bps.as_ref().map(|r| r.value),
            flow_control: spec.flow_control.as_ref().is_some_and(|f| f.value),
            idle_heartbeat: spec.idle_heartbeat.as_ref().map(|d| self.duration(d)),
            priority_groups: spec.priority_groups.iter().map(|g| g.value.clone()).collect(),
            priority_policy: spec.priority_policy.as_ref().map(|p| p.value),
            priority_timeout: spec.priority_timeout.as_ref().map(|d| self.duration(d)),
            pause_until,
            loc: at,
        })
    }

    fn stream_names_and_overlaps(&mut self, held: &[Held]) {
        // Names are unique across every JetStream domain too: flows and plans name streams alone.
        let mut names: HashMap<(&AccountName, &str), &Held> = HashMap::new();
        for h in held {
            if let Some(first) = names.insert((&h.account, &h.stream_name), h) {
                self.error(
                    Diagnostic::error(format!(
                        "{} and {} are both the stream `{}` on the server",
                        first.object, h.object, h.stream_name
                    ))
                    .at(h.loc)
                    .help("KV buckets are held in `KV_<bucket>` and object stores in `OBJ_<bucket>`: rename one"),
                );
            }
        }
        for (a, b, x, y) in overlapping(held) {
            let (a, b) = (&held[a], &held[b]);
            self.error(
                Diagnostic::error(format!("{} subject `{y}` overlaps `{x}` of {}", b.object, a.object))
                    .at(b.loc)
                    .object(account_label(&b.account))
                    .help("a message may be stored by one stream only: narrow one of the subjects (nats-server error 10065)"),
            );
        }
    }

    fn replicas_and_placement(&mut self, h: &Held, t: &Topology, js: &JetStreamRegions) {
        if h.leafnode.is_some() {
            // Checked with the stream: a leafnode is one server with its own limits.
            return;
        }
        let js_regions = &js.in_order;
        let region = match h.store.placement.as_ref().and_then(|p| p.region.as_deref()) {
            Some(name) => match js.by_name.get(name) {
                Some(r) => Some(*r),
                None => {
                    let mut d = if t.region(name).is_some() {
                        Diagnostic::error(format!("{} is placed in region `{name}`, which does not run JetStream", h.object))
                            .help(format!("set `jetstream: true` on region `{name}` or place it elsewhere"))
                    } else {
                        let d = Diagnostic::error(format!("{} is placed in region `{name}`, which does not exist", h.object));
                        match did_you_mean(name, js_regions.iter().map(|r| r.name.as_str())) {
                            Some(s) => d.help(format!("did you mean `{s}`?")),
                            None => d,
                        }
                    };
                    d = d.at(h.loc);
                    self.error(d);
                    return;
                }
            },
            // Unplaced objects go to the region notif-infra's JetStream connection lands in.
            None => js_regions.first().copied(),
        };
        let Some(region) = region else { return };
        let limits = region.jetstream.unwrap_or_default();
        let store_limit = match h.store.storage {
            Storage::File => limits.max_file_store,
            Storage::Memory => limits.max_memory_store,
        };
        if let (Some(want), Some(limit)) = (h.store.max_bytes, store_limit)
            && want > limit
        {
            self.error(
                Diagnostic::error(format!(
                    "{} wants max_bytes {want} but the servers of region `{}` store at most {limit} ({} storage)",
                    h.object,
                    region.name,
                    if h.store.storage == Storage::File { "file" } else { "memory" }
                ))
                .at(h.loc)
                .help("lower `max_bytes` or raise the region's `max_file_store`/`max_memory_store`"),
            );
        }
        let tags = h.store.placement.as_ref().map(|p| p.tags.as_slice()).unwrap_or_default();
        let fitting = region.nodes.iter().filter(|n| tags.iter().all(|t| n.tags.contains(t))).count();
        if !tags.is_empty() && fitting == 0 {
            self.error(
                Diagnostic::error(format!(
                    "{} is placed on tags [{}], which no node of region `{}` has",
                    h.object,
                    tags.join(", "),
                    region.name
                ))
                .at(h.loc)
                .help("add the tags to nodes under `tags:` or change the placement"),
            );
        } else if usize::from(h.store.replicas) > fitting {
            self.error(
                Diagnostic::error(format!(
                    "{} wants {} replicas but region `{}` has {} node(s){}",
                    h.object,
                    h.store.replicas,
                    region.name,
                    fitting,
                    if tags.is_empty() { String::new() } else { " with its tags".into() }
                ))
                .at(h.loc)
                .help("lower `replicas:` or add nodes (nats-server error 10005: no suitable peers for placement)"),
            );
        }
    }

    /// The objects' declared sizes against the stores of the servers that hold them: each
    /// replica takes its `max_bytes` on one server, so what a region's (or a leafnode's) objects
    /// declare, times their replicas, must fit in its servers' stores together. Objects without
    /// `max_bytes`, and stores without a limit, are not counted.
    fn stores_fit(&mut self, held: &[Held], t: &Topology, js: &JetStreamRegions) {
        // By holder and storage (file or memory).
        let mut groups: std::collections::BTreeMap<(String, bool), StoreGroup> = Default::default();
        for h in held {
            let Some(max_bytes) = h.store.max_bytes else { continue };
            let file = h.store.storage == Storage::File;
            let (holder, limits, servers, replicas) = match h.leafnode {
                Some(name) => {
                    let Some(leaf) = t.leafnodes.iter().find(|l| l.name == name) else {
                        continue;
                    };
                    let Some(js) = &leaf.jetstream else { continue };
                    (format!("leafnode `{name}`"), js.limits, vec![name.to_string()], 1)
                }
                None => {
                    let placed = h.store.placement.as_ref().and_then(|p| p.region.as_deref());
                    let region = match placed {
                        Some(name) => js.by_name.get(name).copied(),
                        None => js.in_order.first().copied(),
                    };
                    let Some(region) = region else { continue };
                    let servers = region.nodes.iter().map(|n| n.name.clone()).collect();
                    (
                        format!("region `{}`", region.name),
                        region.jetstream.unwrap_or_default(),
                        servers,
                        u64::from(h.store.replicas),
                    )
                }
            };
            let Some(limit) = (if file { limits.max_file_store } else { limits.max_memory_store }) else {
                continue;
            };
            let group = groups.entry((holder, file)).or_insert_with(|| StoreGroup {
                limit,
                servers,
                objects: Vec::new(),
            });
            group.objects.push((h, max_bytes.saturating_mul(replicas)));
        }
        for ((holder, file), StoreGroup { limit, servers, objects }) in groups {
            let wanted: u64 = objects.iter().map(|(_, b)| *b).fold(0, u64::saturating_add);
            let capacity = limit.saturating_mul(servers.len() as u64);
            if wanted <= capacity || objects.len() < 2 {
                // One object too large for its servers is named with the object itself.
                continue;
            }
            let kind = if file { "file" } else { "memory" };
            let listed: Vec<String> = objects
                .iter()
                .map(|(h, b)| {
                    format!(
                        "{} {b} (max_bytes {} x {} replica(s))",
                        h.object,
                        h.store.max_bytes.unwrap_or(0),
                        b / h.store.max_bytes.unwrap_or(1).max(1)
                    )
                })
                .collect();
            self.error(
                Diagnostic::error(format!(
                    "the {kind} stores of {holder} cannot hold what its objects declare: {wanted} bytes, and its servers ({}) store {limit} each, {capacity} in all: {}",
                    servers.join(", "),
                    listed.join("; ")
                ))
                .at(objects[0].0.loc)
                .help(format!("lower `max_bytes` or `replicas`, raise the `max_{kind}_store` of {holder}, or add servers")),
            );
        }
    }

    fn consumer_checks(&mut self, objects: &JetStreamObjects) {
        let streams: HashMap<&str, &Stream> = objects.streams.iter().map(|s| (s.name.as_str(), s)).collect();
        let mut by_stream: HashMap<&str, Vec<&Consumer>> = HashMap::new();
        let mut seen: HashMap<(&str, &str), Loc> = HashMap::new();
        for c in &objects.consumers {
            by_stream.entry(&c.stream).or_default().push(c);
            if let Some(first) = seen.insert((&c.stream, &c.name), c.loc) {
                self.error(
                    Diagnostic::error(format!("duplicate consumer `{}` on stream `{}`", c.name, c.stream))
                        .at(c.loc)
                        .help(format!("first declared at line {}", first.line)),
                );
            }
            let Some(stream) = streams.get(c.stream.as_str()) else {
                continue;
            };
            for f in &c.filter_subjects {
                if !stream.subjects.is_empty() && !stream.subjects.iter().any(|s| subject::is_subset(f, s)) {
                    self.diags.push(
                        Diagnostic::warning(format!(
                            "consumer `{}` filters `{f}`, outside the subjects of stream `{}` ({})",
                            c.name,
                            stream.name,
                            stream.subjects.join(", ")
                        ))
                        .at(c.loc)
                        .help("it will never receive those messages"),
                    );
                }
            }
        }
        for stream in objects.streams.iter().filter(|s| s.retention == Retention::Workqueue) {
            let consumers = by_stream.get(stream.name.as_str()).map(Vec::as_slice).unwrap_or_default();
            // nats-server refuses these (10101, 10098, 10084): a work queue hands out every
            // message it holds and removes each once its consumer acknowledges it.
            for c in consumers {
                let refused = [
                    (
                        c.deliver_policy != DeliverPolicy::All,
                        "must deliver all messages",
                        "nats-server requires `deliver_policy: all` on workqueue streams: remove `deliver_policy` (a work queue only holds messages not yet acknowledged)",
                    ),
                    (
                        c.ack_policy != AckPolicy::Explicit,
                        "must acknowledge each message",
                        "nats-server requires `ack_policy: explicit` on workqueue streams",
                    ),
                ];
                for (_, what, help) in refused.into_iter().filter(|r| r.0) {
                    self.error(
                        Diagnostic::error(format!("consumer `{}` of workqueue stream `{}` {what}", c.name, stream.name))
                            .at(c.loc)
                            .help(help),
                    );
                }
            }
            for (i, a) in consumers.iter().enumerate() {
                for b in &consumers[i + 1..] {
                    let overlap = a.filter_subjects.is_empty()
                        || b.filter_subjects.is_empty()
                        || a.filter_subjects
                            .iter()
                            .any(|x| b.filter_subjects.iter().any(|y| subject::overlaps(x, y)));
                    if overlap {
                        self.error(
                            Diagnostic::error(format!(
                                "consumers `{}` and `{}` of workqueue stream `{}` have overlapping filters",
                                a.name, b.name, stream.name
                            ))
                            .at(b.loc)
                            .help("on a workqueue stream each message goes to one consumer: give them disjoint `filter_subjects`"),
                        );
                    }
                }
            }
        }
    }
}

/// Pairs of streams of one account whose subjects overlap, as (earlier, later, subject of the
/// earlier, subject of the later), each pair once, found through a subject index per account.
/// One JetStream: an account's in the regions, or in one leafnode.
type JetStreamOf<'a> = (&'a AccountName, Option<&'a str>);

fn overlapping<'a>(held: &'a [Held]) -> Vec<(usize, usize, &'a str, &'a str)> {
    // Streams overlap only within one JetStream: the regions', or one leafnode's own.
    let mut indexes: HashMap<JetStreamOf, subject::SubjectIndex<(usize, &str)>> = HashMap::new();
    for (i, h) in held.iter().enumerate() {
        let index = indexes.entry((&h.account, h.leafnode)).or_default();
        for s in &h.subjects {
            index.insert(s, (i, s.as_str()));
        }
    }
    let mut found: Vec<(usize, usize, &str, &str)> = Vec::new();
    let mut seen: std::collections::HashSet<(usize, usize)> = std::collections::HashSet::new();
    for (i, h) in held.iter().enumerate() {
        for s in &h.subjects {
            for (j, other) in indexes[&(&h.account, h.leafnode)].overlapping(s) {
                if j > i && seen.insert((i, j)) {
                    found.push((i, j, s, other));
                }
            }
        }
    }
    found.sort();
    found
}

fn account_label(account: &AccountName) -> String {
    match account {
        Some(a) => format!("account `{a}`"),
        None => "the global account".into(),
    }
}

/// The servers that hold some objects, each with a store of `limit` bytes, and the objects
/// with the bytes they declare (max_bytes times replicas).
struct StoreGroup<'a> {
    limit: u64,
    servers: Vec<String>,
    objects: Vec<(&'a Held<'a>, u64)>,
}

/// The regions that run JetStream, in topology order and by name: looked up once per object.
struct JetStreamRegions<'a> {
    in_order: Vec<&'a Region>,
    by_name: HashMap<&'a str, &'a Region>,
}

impl<'a> JetStreamRegions<'a> {
    fn of(t: &'a Topology) -> Self {
        let in_order: Vec<&Region> = t.regions.iter().filter(|r| r.jetstream.is_some()).collect();
        let by_name = in_order.iter().map(|r| (r.name.as_str(), *r)).collect();
        JetStreamRegions { in_order, by_name }
    }
}

/// The server-side streams the objects become, with the subjects each one stores.
fn held_streams(o: &JetStreamObjects) -> Vec<Held<'_>> {
    let streams = o.streams.iter().map(|s| Held {
        stream_name: s.name.clone(),
        account: s.account.clone(),
        leafnode: s.leafnode.as_deref(),
        subjects: if s.mirror.is_some() || (s.subjects.is_empty() && !s.sources.is_empty()) {
            Vec::new()
        } else if s.subjects.is_empty() {
            vec![s.name.clone()]
        } else {
            s.subjects.clone()
        },
        object: format!("stream `{}`", s.name),
        loc: s.loc,
        store: &s.store,
    });
    let kv = o.kv.iter().map(|k| Held {
        stream_name: kv_stream_name(&k.bucket),
        account: k.account.clone(),
        leafnode: None,
        subjects: vec![format!("$KV.{}.>", k.bucket)],
        object: format!("KV bucket `{}`", k.bucket),
        loc: k.loc,
        store: &k.store,
    });
    let obj = o.object_stores.iter().map(|b| Held {
        stream_name: object_stream_name(&b.bucket),
        account: b.account.clone(),
        leafnode: None,
        subjects: vec![format!("$O.{}.C.>", b.bucket), format!("$O.{}.M.>", b.bucket)],
        object: format!("object store `{}`", b.bucket),
        loc: b.loc,
        store: &b.store,
    });
    streams.chain(kv).chain(obj).collect()
}

/// `2026-01-31T12:00:00Z` or with fractional seconds and a `+hh:mm` offset.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    if b.len() < 20 || !digits(0..4) || b[4] != b'-' || !digits(5..7) || b[7] != b'-' || !digits(8..10) {
        return false;
    }
    if !matches!(b[10], b'T' | b't') || !digits(11..13) || b[13] != b':' || !digits(14..16) || b[16] != b':' || !digits(17..19) {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.find(|c: char| !c.is_ascii_digit()).unwrap_or(frac.len());
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_rfc3339;

    #[test]
    fn rfc3339_times() {
        assert!(is_rfc3339("2026-01-31T12:00:00Z"));
        assert!(is_rfc3339("2026-01-31T12:00:00.123+02:00"));
        assert!(!is_rfc3339("2026-01-31 12:00:00"));
        assert!(!is_rfc3339("yesterday"));
    }
}
