//! `flows:`: schema -> model (every name resolved, with a did-you-mean), then the static proof:
//! each `reaches` target must be reachable and each `never` target unreachable by the rules the
//! topology writes, and each error names the rule that blocks or lets the message through.

use serde_saphyr::Spanned;

use super::{Validator, loc};
use crate::model::*;
use crate::reach::{self, Step, Verdict};
use crate::subject;
use crate::topology::diagnostic::{Diagnostic, did_you_mean};
use crate::topology::schema::*;

/// A flow client's account and user (both `None` without accounts).
type AccountAndUser = (Option<String>, Option<String>);

impl Validator {
    pub(super) fn flows(&mut self, file: &TopologyFile, t: &Topology) -> Vec<Flow> {
        let mut flows = Vec::new();
        for (name, spec) in &file.flows {
            self.name(name, "flow");
            let object = format!("flow `{}`", name.value);
            let publish = self.endpoint(&spec.publish, t, &object, true);
            let reaches = match &spec.reaches {
                Some(list) if !list.value.is_empty() => self.targets(&list.value, t, &object, true),
                Some(list) => {
                    self.error(
                        Diagnostic::error(format!("flow `{}` has an empty `reaches`", name.value))
                            .at(loc(list))
                            .help("list at least one stream, consumer or subscriber the message must arrive at"),
                    );
                    Vec::new()
                }
                None => {
                    self.error(
                        Diagnostic::error(format!("flow `{}` does not say where the message must arrive", name.value))
                            .at(loc(name))
                            .help("add `reaches:` with at least one stream, consumer or subscriber"),
                    );
                    Vec::new()
                }
            };
            let never = self.targets(&spec.never, t, &object, false);
            let via = spec.via.iter().filter_map(|site| self.site(site, t)).collect();
            if let Some(publish) = publish {
                flows.push(Flow {
                    name: name.value.clone(),
                    publish,
                    reaches,
                    never,
                    via,
                    loc: loc(name),
                });
            }
        }
        flows
    }

    /// Proves every flow against the rules of the (otherwise valid) topology.
    pub(super) fn prove_flows(&mut self, t: &Topology) {
        for flow in &t.flows {
            let (reaches, never) = reach::prove(t, flow);
            for (target, verdict) in flow.reaches.iter().zip(reaches) {
                if !verdict.reached {
                    self.flow_error(flow, target, &verdict, "cannot reach");
                }
            }
            for (target, verdict) in flow.never.iter().zip(never) {
                if verdict.reached {
                    self.flow_error(flow, target, &verdict, "reaches, which it must never reach,");
                }
            }
        }
        self.idle_consumers(t);
        self.access_findings(t);
        self.unanswered(t);
    }

    fn flow_error(&mut self, flow: &Flow, target: &FlowTarget, verdict: &Verdict, what: &str) {
        // A refusal points at the rule that blocks; a forbidden delivery at the last rule that let
        // it through (a link or an import), else at the target.
        let pointed: Option<&Step> = if verdict.reached {
            verdict.steps.iter().rev().skip(1).find(|s| s.loc.is_some())
        } else {
            verdict.steps.first()
        };
        let at = pointed.and_then(|s| s.loc).unwrap_or(target.loc());
        let how = verdict.steps.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join("; then ");
        let because = if verdict.reached { "path" } else { "because" };
        self.error(
            Diagnostic::error(format!(
                "flow `{}`: `{}` published by {} at {} {what} {target}",
                flow.name,
                flow.publish.subject,
                flow.publish.who(),
                flow.publish.at
            ))
            .at(at)
            .object(format!("flow `{}`", flow.name))
            .help(format!(
                "{because}: {how} (the flow is at line {}, the target at line {})",
                flow.loc.line,
                target.loc().line
            )),
        );
    }

    /// Consumers whose filters match nothing a declared flow or a permitted publisher can send.
    fn idle_consumers(&mut self, t: &Topology) {
        let streams: std::collections::HashMap<(&Option<String>, &str), &crate::model::Stream> =
            t.jetstream.streams.iter().map(|s| ((&s.account, s.name.as_str()), s)).collect();
        for c in t.jetstream.consumers.iter().filter(|c| !c.filter_subjects.is_empty()) {
            let Some(stream) = streams.get(&(&c.account, c.stream.as_str())) else {
                continue;
            };
            let flow_subjects: Vec<&str> = t
                .flows
                .iter()
                .filter(|f| f.publish.account == stream.account)
                .map(|f| f.publish.subject.as_str())
                .collect();
            let publishers: Vec<&Rule> = t
                .accounts
                .iter()
                .filter(|a| Some(&a.name) == stream.account.as_ref())
                .flat_map(|a| a.users.iter().map(|u| &u.permissions.publish))
                .collect();
            let producible = |f: &str| {
                stream.subjects.iter().any(|s| subject::overlaps(s, f))
                    && (flow_subjects.iter().any(|s| subject::matches(f, s))
                        || stream.account.is_none()
                        || publishers
                            .iter()
                            .any(|p| p.allow.is_empty() || p.allow.iter().any(|a| subject::overlaps(&a.subject, f)))
                        || t.accounts.iter().any(|a| {
                            a.imports
                                .iter()
                                .any(|i| Some(&a.name) == stream.account.as_ref() && subject::overlaps(i.local(), f))
                        }))
            };
            if !c.filter_subjects.iter().any(|f| producible(f)) {
                self.diags.push(
                    Diagnostic::warning(format!(
                        "consumer `{}/{}` filters on {} but no declared flow or permitted publisher sends a subject it matches",
                        c.stream,
                        c.name,
                        c.filter_subjects.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
                    ))
                    .at(c.loc)
                    .help(
                        "check the filter against the subjects the publishers really use (and the stream's subjects), or declare the flow",
                    ),
                );
            }
        }
    }

    fn targets(&mut self, specs: &[FlowTargetSpec], t: &Topology, object: &str, must_arrive: bool) -> Vec<FlowTarget> {
        specs.iter().filter_map(|s| self.target(s, t, object, must_arrive)).collect()
    }

    fn target(&mut self, spec: &FlowTargetSpec, t: &Topology, object: &str, must_arrive: bool) -> Option<FlowTarget> {
        if let (Some(by), None) = (&spec.by, &spec.consumer) {
            self.error(
                Diagnostic::error("`by` names the application reading a consumer: it goes with `consumer`")
                    .at(loc(by))
                    .object(object.to_string())
                    .help("write `- { consumer: STREAM/durable, by: APP }`, or check a subscriber with `subscriber:`"),
            );
            return None;
        }
        match (&spec.stream, &spec.consumer, &spec.subscriber) {
            (Some(stream), None, None) => {
                let names = t.jetstream.streams.iter().map(|s| s.name.as_str());
                self.known(stream, names, "stream", "streams:").then(|| FlowTarget::Stream {
                    name: stream.value.clone(),
                    loc: loc(stream),
                })
            }
            (None, Some(consumer), None) => {
                let found = t.jetstream.consumers.iter().find(|c| {
                    let full = format!("{}/{}", c.stream, c.name);
                    full == consumer.value || (!consumer.value.contains('/') && c.name == consumer.value)
                });
                match found {
                    Some(c) => {
                        let reader = match &spec.by {
                            None => None,
                            Some(by) => Some(self.reader(by, c, t, must_arrive)?),
                        };
                        Some(FlowTarget::Consumer {
                            stream: c.stream.clone(),
                            name: c.name.clone(),
                            reader,
                            loc: loc(consumer),
                        })
                    }
                    None => {
                        let all: Vec<String> = t.jetstream.consumers.iter().map(|c| format!("{}/{}", c.stream, c.name)).collect();
                        self.unknown(
                            consumer,
                            all.iter().map(String::as_str),
                            "consumer",
                            "consumers: (written STREAM/durable)",
                        );
                        None
                    }
                }
            }
            (None, None, Some(sub)) => self.endpoint(sub, t, object, false).map(FlowTarget::Subscriber),
            _ => {
                let at = [&spec.stream, &spec.consumer]
                    .into_iter()
                    .flatten()
                    .map(loc)
                    .chain(spec.subscriber.as_ref().map(loc))
                    .next();
                let mut d = Diagnostic::error("a flow target is exactly one of `stream`, `consumer` or `subscriber`")
                    .object(object.to_string())
                    .help("write each target as its own list item, e.g. `- stream: ORDERS`");
                if let Some(at) = at {
                    d = d.at(at);
                }
                self.error(d);
                None
            }
        }
    }

    fn endpoint(&mut self, spec: &Spanned<EndpointSpec>, t: &Topology, object: &str, publishes: bool) -> Option<Endpoint> {
        let e = &spec.value;
        let at = self.site(&e.at, t);
        let subject_ok = match subject::check(&e.subject.value) {
            Err(why) => {
                self.error(
                    Diagnostic::error(format!("invalid subject `{}`: {why}", e.subject.value))
                        .at(loc(&e.subject))
                        .object(object.to_string()),
                );
                false
            }
            Ok(()) if publishes && (e.subject.value.split('.').any(|t| t == "*" || t == ">")) => {
                self.error(
                    Diagnostic::error(format!(
                        "`{}` is not a publish subject: a message is published on a literal subject",
                        e.subject.value
                    ))
                    .at(loc(&e.subject))
                    .object(object.to_string())
                    .help("replace the wildcards with the tokens of one real message, e.g. `orders.created.42`"),
                );
                false
            }
            Ok(()) => true,
        };
        let (account, user) = self.flow_user(e, t, object)?;
        let at = at?;
        if !self.site_serves(&at, &account, user.as_deref(), t, loc(&e.at), object) {
            return None;
        }
        subject_ok.then(|| Endpoint {
            account,
            user,
            at,
            subject: e.subject.value.clone(),
            loc: loc(spec),
        })
    }

    /// The application `by` names, which must declare the consumer it reads (`reaches`): its
    /// permissions are derived from what it declares.
    fn reader(&mut self, by: &Spanned<String>, c: &Consumer, t: &Topology, must_arrive: bool) -> Option<String> {
        let Some(app) = t.app(&by.value) else {
            self.unknown(by, t.apps.iter().map(|a| a.name.as_str()), "app", "apps:");
            return None;
        };
        if must_arrive && !app.reads(&c.stream, &c.name) {
            self.error(
                Diagnostic::error(format!(
                    "app `{}` reads consumer `{}/{}` in this flow but does not declare it",
                    app.name, c.stream, c.name
                ))
                .at(loc(by))
                .help(format!(
                    "add `{}/{}` to the `consumers:` of app `{}` (line {})",
                    c.stream, c.name, app.name, app.loc.line
                )),
            );
            return None;
        }
        Some(app.name.clone())
    }

    /// Resolves `user` or `ACCOUNT/user`: both `None` in a topology without accounts.
    fn flow_user(&mut self, e: &EndpointSpec, t: &Topology, object: &str) -> Option<AccountAndUser> {
        let Some(user) = &e.user else {
            if t.accounts.is_empty() {
                return Some((None, None));
            }
            self.error(
                Diagnostic::error("a flow client needs a `user`: the topology has accounts")
                    .at(loc(&e.at))
                    .object(object.to_string())
                    .help("add `user: <name>` (or `ACCOUNT/name`) naming one of the declared users"),
            );
            return None;
        };
        self.user_ref(user, t).map(|(a, u)| (Some(a), Some(u)))
    }

    /// The account and name of `user` or `ACCOUNT/user`, a user of an application account.
    pub(super) fn user_ref(&mut self, user: &Spanned<String>, t: &Topology) -> Option<(String, String)> {
        let app_users: Vec<(&Account, &User)> = t.app_accounts().flat_map(|a| a.users.iter().map(move |u| (a, u))).collect();
        let (account, name) = match user.value.split_once('/') {
            Some((a, u)) => (Some(a), u),
            None => (None, user.value.as_str()),
        };
        let found = app_users
            .iter()
            .find(|(a, u)| u.name == name && account.is_none_or(|acc| acc == a.name));
        match found {
            Some((a, u)) => Some((a.name.clone(), u.name.clone())),
            None => {
                let all: Vec<String> = app_users.iter().map(|(a, u)| format!("{}/{}", a.name, u.name)).collect();
                let names: Vec<&str> = app_users
                    .iter()
                    .map(|(_, u)| u.name.as_str())
                    .chain(all.iter().map(String::as_str))
                    .collect();
                self.unknown(user, names.into_iter(), "user", "the `users:` of an application account");
                None
            }
        }
    }

    /// The region or leafnode `at` names.
    pub(super) fn site(&mut self, at: &Spanned<String>, t: &Topology) -> Option<Site> {
        if t.region(&at.value).is_some() {
            Some(Site::Region(at.value.clone()))
        } else if t.leafnodes.iter().any(|l| l.name == at.value) {
            Some(Site::Leafnode(at.value.clone()))
        } else {
            let sites = t
                .regions
                .iter()
                .map(|r| r.name.as_str())
                .chain(t.leafnodes.iter().map(|l| l.name.as_str()));
            self.unknown(at, sites, "region or leafnode", "regions: or leafnodes:");
            None
        }
    }

    /// Whether a user of `account` can connect at `site`: without an operator a leafnode knows
    /// only the account it binds to.
    pub(super) fn site_serves(
        &mut self,
        site: &Site,
        account: &Option<String>,
        user: Option<&str>,
        t: &Topology,
        at: Loc,
        object: &str,
    ) -> bool {
        if let (Site::Leafnode(leaf), Some(account)) = (site, account)
            && t.operator.is_none()
            && let Some(l) = t.leafnodes.iter().find(|l| &l.name == leaf)
            && l.account.as_ref() != Some(account)
        {
            self.error(
                Diagnostic::error(format!(
                    "user `{}` of account `{account}` cannot connect at leafnode `{leaf}`, which serves only account `{}`",
                    user.unwrap_or_default(),
                    l.account.as_deref().unwrap_or("(none)")
                ))
                .at(at)
                .object(object.to_string())
                .help("a leafnode without an operator knows only the account it binds to; connect the user at a region"),
            );
            return false;
        }
        true
    }

    fn known<'a>(&mut self, name: &Spanned<String>, candidates: impl Iterator<Item = &'a str> + Clone, what: &str, under: &str) -> bool {
        if candidates.clone().any(|c| c == name.value) {
            return true;
        }
        self.unknown(name, candidates, what, under);
        false
    }

    pub(super) fn unknown<'a>(&mut self, name: &Spanned<String>, candidates: impl Iterator<Item = &'a str>, what: &str, under: &str) {
        let mut d = Diagnostic::error(format!("unknown {what} `{}`", name.value)).at(loc(name));
        d = match did_you_mean(&name.value, candidates) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help(format!("declare it under `{under}`")),
        };
        self.error(d);
    }
}
