//! The users of each account as the servers' configs hold them: the declared ones, notif-infra's
//! own, and the link users of the leafnodes bound to it.

use super::{ResponsesConf, RuleConf, UserConf};
use crate::material::{KeyId, Keys, NkeyPair};
use crate::model::{Password, Permissions, Rule, Topology, subjects};
use crate::units::format_duration;

pub(super) fn rule_conf(rule: &Rule) -> Option<RuleConf> {
    (!rule.is_empty()).then(|| RuleConf {
        allow: subjects(&rule.allow),
        deny: subjects(&rule.deny),
    })
}

/// The users of `account`: its declared users, the verifier's probe user and, `with_links`
/// (the nodes' shared accounts), the link users of every leafnode bound to it.
pub(super) fn user_confs(topology: &Topology, account: &str, keys: &Keys, with_links: bool) -> Vec<UserConf> {
    let Some(a) = topology.account(account) else { return Vec::new() };
    let mut users: Vec<UserConf> = a
        .users
        .iter()
        .map(|u| {
            let Permissions {
                publish,
                subscribe,
                responses,
            } = &u.permissions;
            UserConf {
                comment: (!u.derived_for.is_empty())
                    .then(|| format!("permissions derived from what app(s) {} declare", u.derived_for.join(", "))),
                user: Some(u.name.clone()),
                password: u.password.as_ref().map(|p| match p {
                    Password::Env { var, .. } => format!("${var}"),
                    Password::Bcrypt(hash) => serde_json::to_string(hash).expect("string serializes"),
                }),
                nkey: None,
                allowed_connection_types: u.allowed_connection_types.clone(),
                publish: rule_conf(publish),
                subscribe: rule_conf(subscribe),
                responses: responses.map(|r| ResponsesConf {
                    max: r.max,
                    expires: r.ttl.map(format_duration),
                }),
            }
        })
        .collect();
    // The account's default permissions would otherwise bind notif-infra's own users too.
    let everything = a.default_permissions.as_ref().map(|_| RuleConf {
        allow: vec![">".into()],
        deny: Vec::new(),
    });
    let generated = |comment: String, key: &NkeyPair, types: Vec<String>| UserConf {
        comment: Some(comment),
        user: None,
        password: None,
        nkey: Some(key.public.clone()),
        allowed_connection_types: types,
        publish: everything.clone(),
        subscribe: everything.clone(),
        responses: None,
    };
    if let Some(probe) = keys.get(&KeyId::Probe(account.to_string())) {
        users.push(generated(
            "notif-infra user (verification, JetStream management)".into(),
            probe,
            Vec::new(),
        ));
    }
    if with_links {
        for leaf in topology.leafnodes.iter().filter(|l| l.account.as_deref() == Some(account)) {
            if let Some(key) = keys.get(&KeyId::LeafLink(leaf.name.clone())) {
                let mut link = generated(format!("link of leafnode {}", leaf.name), key, vec!["LEAFNODE".into()]);
                if let Some(p) = crate::access::link_permissions(topology, leaf) {
                    link.publish = rule_conf(&p.publish);
                    link.subscribe = rule_conf(&p.subscribe);
                }
                users.push(link);
            }
        }
    }
    users
}
