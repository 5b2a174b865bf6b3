//! Where a declared message can go, worked out from the topology alone: the publisher's
//! permissions, leafnode links and their deny rules, stream exports and service imports between
//! accounts, streams (and the streams that source or mirror them), consumer filters and the
//! subscriber's permissions. Every hop and every refusal names the rule behind it.
//!
//! Sites are the super-cluster (every region: gateways carry every account between regions) and
//! each leafnode server. Pure: no I/O.

use indexmap::IndexMap;
use std::collections::VecDeque;

use crate::model::{Endpoint, ExportKind, Flow, FlowTarget, Loc, Pattern, Permissions, Rule, Site, Stream, Topology};
use crate::subject;

/// A rule of the topology that moved or stopped the message, with where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub text: String,
    pub loc: Option<Loc>,
}

impl Step {
    fn at(text: String, loc: Loc) -> Self {
        Step { text, loc: Some(loc) }
    }
}

/// What the walk says of one target of a flow.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub reached: bool,
    /// Reached: the hops from the publisher to the target. Not reached: the rules that stop it.
    pub steps: Vec<Step>,
    /// The subject the message arrives under (imports may map it), when reached.
    pub subject: Option<String>,
}

/// Where the message can be: which account, at which site, under which subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Place {
    account: Option<String>,
    site: SiteKey,
    subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SiteKey {
    SuperCluster,
    Leafnode(String),
}

fn site_key(site: &Site) -> SiteKey {
    match site {
        Site::Region(_) => SiteKey::SuperCluster,
        Site::Leafnode(l) => SiteKey::Leafnode(l.clone()),
    }
}

/// Every place a flow's message gets to, with how it got there, and the hops that were refused.
pub struct Walk<'t> {
    topology: &'t Topology,
    /// Place -> (the place it came from, the hop), `None` for where it was published.
    came_from: IndexMap<Place, Option<(Place, Step)>>,
    refused: Vec<(Place, Step)>,
    /// Why the publisher cannot send it at all.
    publish_refused: Option<Step>,
    /// What happened before the first place: the account's subject mapping, if one applies.
    origin: Vec<Step>,
    /// Each leafnode's link permissions (`None`: no allow lists), worked out once per walk.
    links: Vec<Option<Permissions>>,
}

/// Walks `flow` and judges its targets: `reaches` then `never`, in declaration order.
pub fn prove(topology: &Topology, flow: &Flow) -> (Vec<Verdict>, Vec<Verdict>) {
    let walk = Walk::new(topology, &flow.publish);
    let judge = |targets: &[FlowTarget]| targets.iter().map(|t| walk.verdict(t)).collect();
    (judge(&flow.reaches), judge(&flow.never))
}

impl<'t> Walk<'t> {
    pub fn new(topology: &'t Topology, publish: &Endpoint) -> Self {
        let mut walk = Walk {
            topology,
            came_from: IndexMap::new(),
            refused: Vec::new(),
            publish_refused: None,
            origin: Vec::new(),
            links: topology
                .leafnodes
                .iter()
                .map(|l| crate::access::link_permissions(topology, l))
                .collect(),
        };
        // The server maps the subject in the publisher's account before anything sees it.
        let mapping = publish
            .account
            .as_deref()
            .and_then(|a| topology.account(a))
            .and_then(|a| a.mappings.iter().find(|m| subject::matches(&m.from, &publish.subject)));
        let subject = match mapping {
            Some(m) => {
                let to = subject::apply_mapping(&m.from, &m.to, &publish.subject);
                walk.origin
                    .push(Step::at(format!("the account maps `{}` to `{to}`", publish.subject), m.loc));
                to
            }
            None => publish.subject.clone(),
        };
        // Measured on nats-server 2.15: the publish permission is checked on the mapped subject
        // (a user allowed only `orders.>` may publish `legacy.orders.1` mapped to `orders.1`).
        let user = user_rules(topology, publish);
        walk.publish_refused = user.and_then(|(who, publish_rule, _)| refusal(&publish_rule, &subject, "publish", &who));
        if walk.publish_refused.is_some() {
            return walk;
        }
        let start = Place {
            account: publish.account.clone(),
            site: site_key(&publish.at),
            subject,
        };
        walk.came_from.insert(start.clone(), None);
        let mut queue = VecDeque::from([start]);
        while let Some(place) = queue.pop_front() {
            for (next, step) in walk.hops(&place) {
                match next {
                    Ok(next) => {
                        if !walk.came_from.contains_key(&next) {
                            walk.came_from.insert(next.clone(), Some((place.clone(), step)));
                            queue.push_back(next);
                        }
                    }
                    Err(blocked) => walk.refused.push((blocked, step)),
                }
            }
        }
        walk
    }

    /// The places one hop from `place`: `Ok` where the message goes, `Err` where a rule stops it.
    fn hops(&self, place: &Place) -> Vec<(Result<Place, Place>, Step)> {
        let t = self.topology;
        let mut out = Vec::new();
        let moved = |site: SiteKey| Place { site, ..place.clone() };
        match &place.site {
            SiteKey::SuperCluster => {
                for (leaf, link) in t.leafnodes.iter().zip(&self.links).filter(|(l, _)| l.account == place.account) {
                    let to = moved(SiteKey::Leafnode(leaf.name.clone()));
                    if let Some(refused) = link_refusal(leaf, link.as_ref().map(|p| &p.subscribe), &place.subject, "imports", "in from") {
                        out.push((Err(to), refused));
                        continue;
                    }
                    match first_match(&leaf.deny_import, &place.subject) {
                        Some(d) => out.push((
                            Err(to),
                            Step::at(
                                format!(
                                    "deny_import `{}` of leafnode `{}` keeps it in hub region `{}`",
                                    d.subject, leaf.name, leaf.hub
                                ),
                                d.loc,
                            ),
                        )),
                        None => out.push((
                            Ok(to),
                            Step::at(
                                format!(
                                    "leafnode `{}` takes it from hub region `{}` (no deny_import covers it)",
                                    leaf.name, leaf.hub
                                ),
                                leaf.loc,
                            ),
                        )),
                    }
                }
            }
            SiteKey::Leafnode(name) => {
                let found = t
                    .leafnodes
                    .iter()
                    .zip(&self.links)
                    .find(|(l, _)| &l.name == name && l.account == place.account);
                if let Some((leaf, link)) = found {
                    let hub_clustered = t.region(&leaf.hub).is_some_and(|r| t.is_clustered(r));
                    let to = moved(SiteKey::SuperCluster);
                    if let Some(refused) = link_refusal(leaf, link.as_ref().map(|p| &p.publish), &place.subject, "exports", "out to") {
                        out.push((Err(to), refused));
                    } else {
                        let export_deny = first_match(&leaf.deny_export, &place.subject);
                        // Measured on nats-server 2.15: a clustered hub applies deny_import both ways.
                        let import_deny = first_match(&leaf.deny_import, &place.subject).filter(|_| hub_clustered);
                        match (export_deny, import_deny) {
                        (Some(d), _) => out.push((
                            Err(to),
                            Step::at(format!("deny_export `{}` of leafnode `{}` keeps it on the leaf", d.subject, leaf.name), d.loc),
                        )),
                        (None, Some(d)) => out.push((
                            Err(to),
                            Step::at(
                                format!(
                                    "deny_import `{}` of leafnode `{}` keeps it on the leaf (a clustered hub applies deny_import both ways)",
                                    d.subject, leaf.name
                                ),
                                d.loc,
                            ),
                        )),
                        (None, None) => out.push((
                            Ok(to),
                            Step::at(format!("leafnode `{}` passes it to hub region `{}` (no deny_export covers it)", leaf.name, leaf.hub), leaf.loc),
                        )),
                    }
                    }
                }
            }
        }
        // A leaf in static mode knows only its own account; imports happen on the hub side.
        let imports_here = t.operator.is_some() || place.site == SiteKey::SuperCluster;
        if !imports_here {
            return out;
        }
        for account in t.accounts.iter() {
            for import in &account.imports {
                let stream_in = import.kind == ExportKind::Stream
                    && Some(&import.from) == place.account.as_ref()
                    && subject::matches(&import.subject, &place.subject);
                let service_out = import.kind == ExportKind::Service
                    && place.account.as_deref() == Some(account.name.as_str())
                    && subject::matches(import.local(), &place.subject);
                if stream_in {
                    let next = Place {
                        account: Some(account.name.clone()),
                        subject: subject::map(&import.subject, import.local(), &place.subject),
                        site: place.site.clone(),
                    };
                    let text = format!(
                        "account `{}` imports stream `{}` from `{}`",
                        account.name, import.subject, import.from
                    );
                    out.push((Ok(next), Step::at(text, import.loc)));
                } else if service_out {
                    let next = Place {
                        account: Some(import.from.clone()),
                        subject: subject::map(import.local(), &import.subject, &place.subject),
                        site: place.site.clone(),
                    };
                    let text = format!(
                        "account `{}` imports service `{}` from `{}`",
                        account.name, import.subject, import.from
                    );
                    out.push((Ok(next), Step::at(text, import.loc)));
                }
            }
        }
        out
    }

    fn path_to(&self, place: &Place) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut at = place;
        while let Some(Some((from, step))) = self.came_from.get(at) {
            steps.push(step.clone());
            at = from;
        }
        steps.reverse();
        [self.origin.clone(), steps].concat()
    }

    /// Rules that stopped the message on its way into `account` at `site` (any site if `None`).
    fn refusals_into(&self, account: &Option<String>, site: Option<&SiteKey>) -> Vec<Step> {
        let mut steps: Vec<Step> = self
            .refused
            .iter()
            .filter(|(p, _)| &p.account == account && site.is_none_or(|s| &p.site == s) && !self.came_from.contains_key(p))
            .map(|(_, s)| s.clone())
            .collect();
        steps.dedup();
        steps
    }

    /// Where the message is stored by `stream`, under which subject, and how it got there.
    fn stored(&self, stream: &Stream, seen: &mut Vec<String>) -> Option<(String, Vec<Step>)> {
        if seen.contains(&stream.name) {
            return None;
        }
        seen.push(stream.name.clone());
        let home = stream_site(stream);
        let direct = self
            .came_from
            .keys()
            .find(|p| p.site == home && p.account == stream.account && stream.subjects.iter().any(|s| subject::matches(s, &p.subject)));
        if let Some(place) = direct {
            let mut steps = self.path_to(place);
            steps.push(Step::at(
                format!("stream `{}` stores it as `{}`", stream.name, place.subject),
                stream.loc,
            ));
            return Some((place.subject.clone(), steps));
        }
        let js = &self.topology.jetstream;
        for origin in stream.mirror.iter().chain(&stream.sources) {
            let Some(upstream) = js.streams.iter().find(|s| s.name == origin.name) else {
                continue;
            };
            if let Some((subj, mut steps)) = self.stored(upstream, seen)
                && origin.filter_subject.as_ref().is_none_or(|f| subject::matches(f, &subj))
            {
                steps.push(Step::at(
                    format!("stream `{}` sources it from `{}`", stream.name, upstream.name),
                    stream.loc,
                ));
                return Some((subj, steps));
            }
        }
        None
    }

    pub fn verdict(&self, target: &FlowTarget) -> Verdict {
        if let Some(step) = &self.publish_refused {
            return not_reached(vec![step.clone()]);
        }
        let js = &self.topology.jetstream;
        match target {
            FlowTarget::Stream { name, loc } => {
                let Some(stream) = js.streams.iter().find(|s| &s.name == name) else {
                    return not_reached(vec![Step::at(format!("stream `{name}` is not declared"), *loc)]);
                };
                match self.stored(stream, &mut Vec::new()) {
                    Some((subj, steps)) => reached(steps, subj),
                    None => not_reached(self.missed_stream(stream)),
                }
            }
            FlowTarget::Consumer { stream, name, reader, loc } => {
                let consumer = js.consumers.iter().find(|c| &c.stream == stream && &c.name == name);
                let (Some(consumer), Some(s)) = (consumer, js.streams.iter().find(|s| &s.name == stream)) else {
                    return not_reached(vec![Step::at(format!("consumer `{stream}/{name}` is not declared"), *loc)]);
                };
                match self.stored(s, &mut Vec::new()) {
                    None => not_reached(self.missed_stream(s)),
                    Some((subj, mut steps)) => {
                        let filters = &consumer.filter_subjects;
                        if filters.is_empty() || filters.iter().any(|f| subject::matches(f, &subj)) {
                            steps.push(Step::at(format!("consumer `{stream}/{name}` has it pending"), consumer.loc));
                            match reader.as_deref().and_then(|r| self.topology.app(r)) {
                                None => reached(steps, subj),
                                Some(app) => match self.reader_refusal(consumer, app, *loc) {
                                    None => {
                                        steps.push(Step::at(format!("{} reads and acknowledges it", app.who()), app.loc));
                                        reached(steps, subj)
                                    }
                                    Some(refused) => not_reached(vec![refused]),
                                },
                            }
                        } else {
                            not_reached(vec![Step::at(
                                format!("no filter of consumer `{stream}/{name}` ({}) matches `{subj}`", quoted(filters)),
                                consumer.loc,
                            )])
                        }
                    }
                }
            }
            FlowTarget::Subscriber(sub) => self.delivered(sub),
        }
    }

    fn missed_stream(&self, stream: &Stream) -> Vec<Step> {
        let home = stream_site(stream);
        let in_account: Vec<&Place> = self
            .came_from
            .keys()
            .filter(|p| p.account == stream.account && p.site == home)
            .collect();
        if in_account.is_empty() {
            let mut steps = self.refusals_into(&stream.account, Some(&home));
            if steps.is_empty() {
                let place = match &stream.leafnode {
                    Some(l) => format!("leafnode `{l}`"),
                    None => "the regions".into(),
                };
                steps.push(Step::at(
                    format!(
                        "it never reaches {} on {place}, where stream `{}` lives (no link, import or source carries it there)",
                        account_words(&stream.account),
                        stream.name
                    ),
                    stream.loc,
                ));
            }
            return steps;
        }
        let seen: Vec<String> = in_account.iter().map(|p| format!("`{}`", p.subject)).collect();
        vec![Step::at(
            format!(
                "no subject of stream `{}` ({}) matches {}",
                stream.name,
                quoted(&stream.subjects),
                seen.join(", ")
            ),
            stream.loc,
        )]
    }

    fn delivered(&self, sub: &Endpoint) -> Verdict {
        // Without accounts nobody logs in and nothing is restricted.
        let (who, _, subscribe) = user_rules(self.topology, sub).unwrap_or_else(|| (sub.who(), Rule::default(), Rule::default()));
        let allowed = subscribe.allow.is_empty() || subscribe.allow.iter().any(|a| subject::is_subset(&sub.subject, &a.subject));
        if !allowed {
            let loc = subscribe.allow.first().map(|a| a.loc).unwrap_or(sub.loc);
            return not_reached(vec![Step::at(
                format!(
                    "the subscribe permissions of `{who}` ({}) do not allow `{}`",
                    quoted_patterns(&subscribe.allow),
                    sub.subject
                ),
                loc,
            )]);
        }
        let site = site_key(&sub.at);
        let arriving = self.came_from.keys().find(|p| {
            p.account == sub.account
                && p.site == site
                && subject::matches(&sub.subject, &p.subject)
                && first_match(&subscribe.deny, &p.subject).is_none()
        });
        if let Some(place) = arriving {
            let mut steps = self.path_to(place);
            steps.push(Step::at(
                format!("`{who}` at {} receives it as `{}`", sub.at, place.subject),
                sub.loc,
            ));
            return reached(steps, place.subject.clone());
        }
        let denied = self.came_from.keys().find_map(|p| {
            (p.account == sub.account && p.site == site && subject::matches(&sub.subject, &p.subject))
                .then(|| first_match(&subscribe.deny, &p.subject))
                .flatten()
        });
        if let Some(d) = denied {
            return not_reached(vec![Step::at(format!("subscribe deny `{}` of `{who}` drops it", d.subject), d.loc)]);
        }
        let mut steps = self.refusals_into(&sub.account, Some(&site));
        if steps.is_empty() {
            let there: Vec<String> = self
                .came_from
                .keys()
                .filter(|p| p.account == sub.account && p.site == site)
                .map(|p| format!("`{}`", p.subject))
                .collect();
            steps.push(Step::at(
                if there.is_empty() {
                    format!(
                        "it never reaches {} at {} (no link or import carries it there)",
                        account_words(&sub.account),
                        sub.at
                    )
                } else {
                    format!("`{}` does not match {}", sub.subject, there.join(", "))
                },
                sub.loc,
            ));
        }
        not_reached(steps)
    }
}

impl Walk<'_> {
    /// Why `app` cannot read `consumer`: the first essential subject its user may not use.
    fn reader_refusal(&self, consumer: &crate::model::Consumer, app: &crate::model::App, loc: Loc) -> Option<Step> {
        let t = self.topology;
        let needs = match crate::access::consumer_needs(t, consumer, &app.at, &app.inbox, loc) {
            Ok(needs) => needs,
            Err(why) => return Some(Step::at(why, app.loc)),
        };
        let account = t.account(app.account.as_deref()?)?;
        let user = account.users.iter().find(|u| Some(&u.name) == app.user.as_ref())?;
        let permissions = t.effective_permissions(account, user);
        needs.iter().filter(|n| n.essential).find_map(|n| {
            crate::access::refusal(permissions, n).map(|why| {
                let at = permissions
                    .and_then(|p| p.publish.allow.first().or(p.subscribe.allow.first()))
                    .map(|p| p.loc)
                    .filter(|l| l.line > 0)
                    .unwrap_or(user.loc);
                Step::at(format!("{} may not {}: {why}", app.who(), n.describe()), at)
            })
        })
    }
}

/// The user's name and publish and subscribe rules, its account's default permissions when it
/// declares none (`None` for a topology without users).
fn user_rules(t: &Topology, e: &Endpoint) -> Option<(String, Rule, Rule)> {
    let account = t.account(e.account.as_deref()?)?;
    let user = account.users.iter().find(|u| Some(&u.name) == e.user.as_ref())?;
    let permissions = t.effective_permissions(account, user).cloned().unwrap_or_default();
    Some((e.who(), permissions.publish, permissions.subscribe))
}

/// Why `rule` refuses `what` on literal `subject`, if it does.
fn refusal(rule: &Rule, subject: &str, what: &str, who: &str) -> Option<Step> {
    if let Some(d) = first_match(&rule.deny, subject) {
        return Some(Step::at(
            format!("{what} deny `{}` of `{who}` refuses `{subject}`", d.subject),
            d.loc,
        ));
    }
    if !rule.allow.is_empty() && first_match(&rule.allow, subject).is_none() {
        return Some(Step::at(
            format!(
                "the {what} permissions of `{who}` ({}) do not allow `{subject}`",
                quoted_patterns(&rule.allow)
            ),
            rule.allow[0].loc,
        ));
    }
    None
}

/// Where a stream takes its messages from: its leafnode, or the regions.
fn stream_site(stream: &Stream) -> SiteKey {
    match &stream.leafnode {
        Some(l) => SiteKey::Leafnode(l.clone()),
        None => SiteKey::SuperCluster,
    }
}

/// Why a leafnode's link (its `imports` or `exports`, as `rule`) keeps `subject` from crossing.
fn link_refusal(leaf: &crate::model::Leafnode, rule: Option<&Rule>, subject: &str, lists: &str, way: &str) -> Option<Step> {
    let allow = &rule?.allow;
    if first_match(allow, subject).is_some() {
        return None;
    }
    Some(Step::at(
        format!(
            "the {lists} of leafnode `{}` ({}) do not let `{subject}` {way} hub region `{}`",
            leaf.name,
            quoted_patterns(allow),
            leaf.hub
        ),
        allow.first().map(|p| p.loc).unwrap_or(leaf.loc),
    ))
}

fn first_match<'a>(patterns: &'a [Pattern], subject: &str) -> Option<&'a Pattern> {
    patterns.iter().find(|p| subject::matches(&p.subject, subject))
}

fn reached(steps: Vec<Step>, subject: String) -> Verdict {
    Verdict {
        reached: true,
        steps,
        subject: Some(subject),
    }
}

fn not_reached(steps: Vec<Step>) -> Verdict {
    Verdict {
        reached: false,
        steps,
        subject: None,
    }
}

fn quoted(list: &[String]) -> String {
    list.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
}

fn quoted_patterns(list: &[Pattern]) -> String {
    list.iter().map(|s| format!("`{}`", s.subject)).collect::<Vec<_>>().join(", ")
}

fn account_words(account: &Option<String>) -> String {
    match account {
        Some(a) => format!("account `{a}`"),
        None => "the global account".into(),
    }
}

#[cfg(test)]
mod tests {
    use crate::topology::{Source, parse};

    /// Validates `yaml` (the flows' static proof included) and returns every diagnostic text.
    fn diagnostics(yaml: &str) -> String {
        match parse(Source {
            path: "t.yaml".into(),
            text: yaml.into(),
        }) {
            Ok(loaded) => loaded.warnings.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("\n"),
            Err(e) => e.to_string(),
        }
    }

    const ACCOUNTS: &str = "name: t\nregions:\n  east:\n    nodes: 3\n    jetstream: true\naccounts:\n  SHOP:\n    jetstream: true\n    exports: [{ service: \"prices.>\" }]\n    users: [{ user: shop, password: \"${S}\" }]\n  WEB:\n    imports: [{ service: \"prices.>\", from: SHOP, to: \"quote.>\" }]\n    users: [{ user: web, password: \"${W}\", permissions: { publish: [\"quote.>\"] } }]\nstreams:\n  PRICES: { account: SHOP, subjects: [\"prices.>\"] }\n  COPY: { account: SHOP, sources: [{ name: PRICES, filter_subject: \"prices.eu.>\" }] }\n";

    #[test]
    fn a_service_import_carries_requests_to_the_exporter_under_its_subject() {
        let yaml = format!(
            "{ACCOUNTS}flows:\n  quote:\n    publish: {{ user: web, at: east, subject: quote.eu.widget }}\n    reaches:\n      - stream: PRICES\n      - subscriber: {{ user: shop, at: east, subject: prices.eu.widget }}\n"
        );
        assert_eq!(diagnostics(&yaml), "");
    }

    #[test]
    fn a_sourcing_stream_stores_only_what_its_filter_takes() {
        let ok = format!(
            "{ACCOUNTS}flows:\n  eu:\n    publish: {{ user: shop, at: east, subject: prices.eu.a }}\n    reaches:\n      - stream: COPY\n"
        );
        assert_eq!(diagnostics(&ok), "");
        let us = format!(
            "{ACCOUNTS}flows:\n  us:\n    publish: {{ user: shop, at: east, subject: prices.us.a }}\n    reaches:\n      - stream: COPY\n"
        );
        assert!(diagnostics(&us).contains("cannot reach stream COPY"), "{}", diagnostics(&us));
    }

    #[test]
    fn the_publishers_own_permissions_come_first() {
        let yaml = format!(
            "{ACCOUNTS}flows:\n  denied:\n    publish: {{ user: web, at: east, subject: prices.eu.a }}\n    reaches:\n      - stream: PRICES\n"
        );
        let text = diagnostics(&yaml);
        assert!(text.contains("cannot reach stream PRICES"), "{text}");
        let help = match parse(Source {
            path: "t.yaml".into(),
            text: yaml,
        }) {
            Err(crate::topology::TopologyError::Invalid { diagnostics, .. }) => diagnostics[0].help.clone().unwrap_or_default(),
            _ => String::new(),
        };
        assert!(
            help.contains("the publish permissions of `WEB/web` (`quote.>`) do not allow `prices.eu.a`"),
            "{help}"
        );
    }

    #[test]
    fn a_mapped_subject_is_what_the_publish_permission_and_the_streams_see() {
        let yaml = "name: t\nregions:\n  east:\n    nodes: 3\n    jetstream: true\naccounts:\n  APP:\n    jetstream: true\n    mappings: { \"legacy.*\": \"orders.{{wildcard(1)}}\" }\n    users: [{ user: w, password: \"${W}\", permissions: { publish: [\"orders.>\"] } }]\nstreams:\n  ORDERS: { account: APP, subjects: [\"orders.>\"] }\n  LEGACY: { account: APP, subjects: [\"legacy.>\"] }\nflows:\n  f:\n    publish: { user: w, at: east, subject: legacy.42 }\n    reaches:\n      - stream: ORDERS\n    never:\n      - stream: LEGACY\n";
        assert_eq!(diagnostics(yaml), "");
    }
}
