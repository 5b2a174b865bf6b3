//! `apps:`: schema -> model (users, sites, consumers and buckets resolved), then the permissions
//! of each application's user: derived from its declared use where none are written, checked
//! against it where they are. Then the access findings every topology gets: consumers nobody can
//! read, streams nobody can feed or drain, publish rights and imports nobody receives.

use serde_saphyr::Spanned;

use super::{Validator, loc};
use crate::access::{self, Direction, Need};
use crate::model::*;
use crate::subject;
use crate::topology::diagnostic::Diagnostic;
use crate::topology::schema::*;

#[derive(Clone, Copy)]
enum Store {
    Kv,
    Object,
}

impl Validator {
    pub(super) fn apps(&mut self, file: &TopologyFile, t: &Topology) -> Vec<App> {
        let mut apps = Vec::new();
        for (name, spec) in &file.apps {
            self.name(name, "app");
            let object = format!("app `{}`", name.value);
            let user = match (&spec.user, t.app_accounts().next().is_some()) {
                (Some(user), true) => match self.user_ref(user, t) {
                    Some(found) => Some(found),
                    None => continue,
                },
                (None, false) => None,
                (None, true) => {
                    self.error(
                        Diagnostic::error(format!("app `{}` does not say which user it logs in as", name.value))
                            .at(loc(name))
                            .help("add `user: <name>` (or `ACCOUNT/name`), one of the users declared under `accounts:`"),
                    );
                    continue;
                }
                (Some(user), false) => {
                    self.error(
                        Diagnostic::error(format!("app `{}` names user `{}`, and the topology declares no accounts", name.value, user.value))
                            .at(loc(user))
                            .help("declare the account and its users under `accounts:`, or leave `user` out (clients then connect without credentials)"),
                    );
                    continue;
                }
            };
            let site = self.site(&spec.at, t);
            let inbox = match &spec.inbox {
                Some(i) => {
                    self.inbox(i, &object);
                    i.value.clone()
                }
                None => DEFAULT_INBOX.to_string(),
            };
            let Some(at) = site else { continue };
            let (account, user) = match user {
                Some((a, u)) => (Some(a), Some(u)),
                None => (None, None),
            };
            if !self.site_serves(&at, &account, user.as_deref(), t, loc(&spec.at), &object) {
                continue;
            }
            let consumers = spec
                .consumers
                .iter()
                .filter_map(|c| self.consumer_use(c, &account, t, &object))
                .collect();
            let kv = self.bucket_uses(&spec.kv, &account, &object, t, Store::Kv);
            let object_stores = self.bucket_uses(&spec.object_stores, &account, &object, t, Store::Object);
            apps.push(App {
                name: name.value.clone(),
                account,
                user,
                at,
                inbox,
                publish: self.subjects(&spec.publish, &object),
                subscribe: self.subjects(&spec.subscribe, &object),
                requests: self.subjects(&spec.requests, &object),
                serves: self.subjects(&spec.serves, &object),
                consumers,
                kv,
                object_stores,
                loc: loc(name),
            });
        }
        apps
    }

    /// `bucket: read|write` entries naming buckets (KV or object stores) of the app's account.
    fn bucket_uses(
        &mut self,
        specs: &Named<Spanned<StoreAccess>>,
        account: &Option<String>,
        object: &str,
        t: &Topology,
        store: Store,
    ) -> Vec<BucketUse> {
        let declared: Vec<(&str, &Option<String>)> = match store {
            Store::Kv => t.jetstream.kv.iter().map(|k| (k.bucket.as_str(), &k.account)).collect(),
            Store::Object => t.jetstream.object_stores.iter().map(|o| (o.bucket.as_str(), &o.account)).collect(),
        };
        let (what, under) = match store {
            Store::Kv => ("KV bucket", "kv:"),
            Store::Object => ("object store", "object_stores:"),
        };
        specs
            .iter()
            .filter_map(|(bucket, access)| match declared.iter().find(|(b, _)| *b == bucket.value) {
                None => {
                    self.unknown(bucket, declared.iter().map(|(b, _)| *b), what, under);
                    None
                }
                Some((b, owner)) if *owner != account => {
                    self.foreign(object, &format!("{what} `{b}`"), owner, account, loc(bucket));
                    None
                }
                Some((b, _)) => Some(BucketUse {
                    bucket: b.to_string(),
                    write: access.value == StoreAccess::Write,
                    loc: loc(bucket),
                }),
            })
            .collect()
    }

    fn inbox(&mut self, inbox: &Spanned<String>, object: &str) {
        let bad = subject::check(&inbox.value).err().or_else(|| {
            inbox
                .value
                .split('.')
                .any(|t| t == "*" || t == ">")
                .then(|| "an inbox prefix holds no wildcard".to_string())
        });
        if let Some(why) = bad {
            self.error(
                Diagnostic::error(format!("invalid inbox prefix `{}`: {why}", inbox.value))
                    .at(loc(inbox))
                    .object(object.to_string())
                    .help("write the prefix the application's client is configured with, e.g. `_INBOX_billing`"),
            );
        }
    }

    /// `STREAM/durable`, a consumer in the application's own account.
    fn consumer_use(&mut self, spec: &Spanned<String>, account: &Option<String>, t: &Topology, object: &str) -> Option<ConsumerUse> {
        let found = spec
            .value
            .split_once('/')
            .and_then(|(s, d)| t.jetstream.consumers.iter().find(|c| c.stream == s && c.name == d));
        let Some(c) = found else {
            let all: Vec<String> = t.jetstream.consumers.iter().map(|c| format!("{}/{}", c.stream, c.name)).collect();
            self.unknown(
                spec,
                all.iter().map(String::as_str),
                "consumer",
                "consumers: (written STREAM/durable)",
            );
            return None;
        };
        if &c.account != account {
            self.foreign(
                object,
                &format!("consumer `{}/{}`", c.stream, c.name),
                &c.account,
                account,
                loc(spec),
            );
            return None;
        }
        Some(ConsumerUse {
            stream: c.stream.clone(),
            durable: c.name.clone(),
            loc: loc(spec),
        })
    }

    fn foreign(&mut self, object: &str, what: &str, owner: &Option<String>, account: &Option<String>, at: Loc) {
        let account = account.as_deref().unwrap_or("(none)");
        self.error(
            Diagnostic::error(format!(
                "{object} logs in to account `{account}`, and {what} lives in account `{}`",
                owner.as_deref().unwrap_or("(none)")
            ))
            .at(at)
            .help(format!(
                "a client reaches JetStream objects of its own account only: declare {what} in account `{account}` (a stream there can source the other account's messages), or log the app in to its owner's account"
            )),
        );
    }

    /// Gives each application's user the permissions its declared use needs, or checks the
    /// ones written by hand against that use.
    pub(super) fn app_permissions(&mut self, t: &mut Topology) {
        let mut by_user: Vec<((String, String), Vec<&App>)> = Vec::new();
        for app in &t.apps {
            let (Some(account), Some(user)) = (&app.account, &app.user) else {
                continue;
            };
            let key = (account.clone(), user.clone());
            match by_user.iter_mut().find(|(k, _)| *k == key) {
                Some((_, apps)) => apps.push(app),
                None => by_user.push((key, vec![app])),
            }
        }
        let mut derived: Vec<((String, String), Permissions, Vec<String>)> = Vec::new();
        for ((account, user), apps) in &by_user {
            let mut needs: Vec<Need> = Vec::new();
            for app in apps {
                match access::app_needs(t, app) {
                    Ok(n) => needs.extend(n),
                    Err(why) => self.error(Diagnostic::error(format!("{}: {why}", app.who())).at(app.loc)),
                }
            }
            let Some(u) = t.account(account).and_then(|a| a.users.iter().find(|u| &u.name == user)) else {
                continue;
            };
            let names: Vec<String> = apps.iter().map(|a| a.name.clone()).collect();
            if !u.permissions.is_empty() {
                self.check_written(u, account, &names, &needs);
            } else {
                derived.push(((account.clone(), user.clone()), access::derive(&needs), names));
            }
        }
        for ((account, user), permissions, names) in derived {
            if let Some(u) = t
                .accounts
                .iter_mut()
                .find(|a| a.name == account)
                .and_then(|a| a.users.iter_mut().find(|u| u.name == user))
            {
                u.permissions = permissions;
                u.derived_for = names;
            }
        }
    }

    fn check_written(&mut self, u: &User, account: &str, apps: &[String], needs: &[Need]) {
        let apps = apps.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ");
        for need in needs {
            if let Some(why) = access::refusal(Some(&u.permissions), need) {
                let d = if need.essential {
                    Diagnostic::error(format!(
                        "the permissions of `{account}/{}` are too narrow for app {apps}: it must {}",
                        u.name,
                        need.describe()
                    ))
                } else {
                    Diagnostic::warning(format!(
                        "the permissions of `{account}/{}` do not let app {apps} {} (common clients do)",
                        u.name,
                        need.describe()
                    ))
                };
                self.error(
                    d.at(need.loc)
                        .object(format!("user `{}` (line {})", u.name, u.loc.line))
                        .help(format!(
                            "{why}; add `{}` to the user's {} rights, or remove its `permissions:` to have them derived from the app",
                            need.subject,
                            match need.direction {
                                Direction::Subscribe => "subscribe",
                                Direction::Publish => "publish",
                                Direction::Reply => "`allow_responses`",
                            }
                        )),
                );
            }
        }
        for (what, pattern) in access::wider_than_needed(&u.permissions, needs) {
            self.error(
                Diagnostic::warning(format!(
                    "`{account}/{}` may {what} `{}`, wider than app {apps} declares it needs",
                    u.name, pattern.subject
                ))
                .at(pattern.loc)
                .help(
                    "narrow the right to what the app does, declare the use under its app, or remove `permissions:` to have them derived",
                ),
            );
        }
    }

    /// Requests no declared app serves and no stream stores, and services no declared app
    /// requests: neither side of them can be proven.
    pub(super) fn unanswered(&mut self, t: &Topology) {
        for app in &t.apps {
            for r in &app.requests {
                let subject = access::request_instance(&r.subject);
                if access::answerer(t, app, &subject).is_none() {
                    self.error(
                        Diagnostic::warning(format!(
                            "app `{}` requests `{}`, which no declared app serves and no stream stores",
                            app.name, r.subject
                        ))
                        .at(r.loc)
                        .help("declare the app that serves it (`serves:`), so verify --flows can prove the exchange"),
                    );
                }
            }
            for s in &app.serves {
                let requested = t.apps.iter().any(|a| {
                    a.account == app.account
                        && a.requests
                            .iter()
                            .any(|r| subject::matches(&s.subject, &access::request_instance(&r.subject)))
                });
                if !requested {
                    self.error(
                        Diagnostic::warning(format!(
                            "app `{}` serves `{}`, which no declared app of its account requests",
                            app.name, s.subject
                        ))
                        .at(s.loc)
                        .help("declare the app that sends the requests (`requests:`), so verify --flows can prove the exchange"),
                    );
                }
            }
        }
    }

    /// What the topology's permissions leave unusable, as warnings: consumers no declared user
    /// can read, interest and work-queue streams nobody can drain, stream subjects nobody
    /// publishes, publish rights nothing receives, imports nobody may subscribe to.
    pub(super) fn access_findings(&mut self, t: &Topology) {
        if t.app_accounts().next().is_none() {
            return;
        }
        let mut readable_streams: Vec<&str> = Vec::new();
        for c in &t.jetstream.consumers {
            let Some(account) = c.account.as_deref().and_then(|a| t.account(a)) else {
                continue;
            };
            // What stops each user, grouped by the subject: `api`, `mobile` may not publish `X` (..).
            let mut refusals: Vec<(String, Vec<String>)> = Vec::new();
            let mut readable = false;
            for u in &account.users {
                let app = t
                    .apps
                    .iter()
                    .find(|a| a.account.as_deref() == Some(account.name.as_str()) && a.user.as_deref() == Some(u.name.as_str()));
                let site = app.map(|a| a.at.clone()).unwrap_or_else(|| Site::Region(t.regions[0].name.clone()));
                let inbox = app.map(|a| a.inbox.as_str()).unwrap_or(DEFAULT_INBOX);
                let Ok(needs) = access::consumer_needs(t, c, &site, inbox, c.loc) else {
                    continue;
                };
                let permissions = t.effective_permissions(account, u);
                let refused = needs
                    .iter()
                    .filter(|n| n.essential)
                    .find_map(|n| access::refusal(permissions, n).map(|why| (n, why)));
                match refused {
                    None => readable = true,
                    Some((n, _)) => {
                        let need = n.describe();
                        let user = format!("`{}`", u.name);
                        match refusals.iter_mut().find(|(d, _)| *d == need) {
                            Some((_, users)) => users.push(user),
                            None => refusals.push((need, vec![user])),
                        }
                    }
                }
            }
            if readable {
                readable_streams.push(&c.stream);
                continue;
            }
            let message = match &c.deliver_subject {
                Some(deliver)
                    if !account
                        .users
                        .iter()
                        .any(|u| access::grants_some(t.effective_permissions(account, u), Direction::Subscribe, deliver)) =>
                {
                    format!(
                        "push consumer `{}/{}` delivers to `{deliver}`, which no declared user of account `{}` may subscribe to",
                        c.stream, c.name, account.name
                    )
                }
                _ => format!(
                    "consumer `{}/{}` can be read by no declared user of account `{}`",
                    c.stream, c.name, account.name
                ),
            };
            let help = if account.users.is_empty() {
                "the account has no users: declare the application that reads it under `apps:`".to_string()
            } else {
                format!(
                    "{}; declare the application that reads it under `apps:` (its permissions are then derived)",
                    refusals
                        .iter()
                        .map(|(need, users)| format!("{} may not {need}", users.join(", ")))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            };
            self.error(Diagnostic::warning(message).at(c.loc).help(help));
        }
        for s in &t.jetstream.streams {
            let Some(account) = s.account.as_deref().and_then(|a| t.account(a)) else {
                continue;
            };
            let consumers: Vec<&Consumer> = t
                .jetstream
                .consumers
                .iter()
                .filter(|c| c.stream == s.name && c.account == s.account)
                .collect();
            if s.retention != Retention::Limits && !consumers.is_empty() && !readable_streams.contains(&s.name.as_str()) {
                self.error(
                    Diagnostic::warning(format!(
                        "stream `{}` keeps each message until its consumers acknowledge it ({} retention), and no declared user can read any of its {} consumer(s): it fills to its limits",
                        s.name,
                        if s.retention == Retention::Interest { "interest" } else { "work-queue" },
                        consumers.len()
                    ))
                    .at(s.loc)
                    .help("declare the applications that read its consumers under `apps:`"),
                );
            }
            for subj in &s.subjects {
                if !fed(t, account, subj) {
                    self.error(
                        Diagnostic::warning(format!(
                            "no declared user, import, leafnode or flow publishes to `{subj}`, a subject of stream `{}`",
                            s.name
                        ))
                        .at(s.loc)
                        .help(format!(
                            "declare the application that publishes it under `apps:` (or give a user of account `{}` the right)",
                            account.name
                        )),
                    );
                }
            }
        }
        for account in t.app_accounts() {
            for u in &account.users {
                let Some(p) = t.effective_permissions(account, u) else { continue };
                for allow in &p.publish.allow {
                    if allow.subject.starts_with('$') || allow.subject.starts_with(DEFAULT_INBOX) || received(t, account, &allow.subject) {
                        continue;
                    }
                    self.error(
                        Diagnostic::warning(format!(
                            "`{}/{}` may publish `{}`, which no stream stores and no declared user may subscribe to",
                            account.name, u.name, allow.subject
                        ))
                        .at(allow.loc)
                        .help("declare the stream or the application that receives it, or drop the right"),
                    );
                }
            }
            for i in account.imports.iter().filter(|i| i.kind == ExportKind::Stream) {
                let local = i.local();
                let subscribed = account
                    .users
                    .iter()
                    .any(|u| access::grants_some(t.effective_permissions(account, u), Direction::Subscribe, local));
                let stored =
                    t.jetstream.streams.iter().any(|s| {
                        s.account.as_deref() == Some(account.name.as_str()) && s.subjects.iter().any(|x| subject::overlaps(x, local))
                    });
                if !subscribed && !stored && !has_leafnode(t, account) {
                    self.error(
                        Diagnostic::warning(format!(
                            "account `{}` imports `{local}` from `{}`, and no declared user of it may subscribe to it",
                            account.name, i.from
                        ))
                        .at(i.loc)
                        .help("declare the application that receives the import under `apps:`"),
                    );
                }
            }
        }
    }
}

fn has_leafnode(t: &Topology, account: &Account) -> bool {
    t.leafnodes.iter().any(|l| l.account.as_deref() == Some(account.name.as_str()))
}

/// Whether anything can publish to `subj` in `account`: a user, an import, a leafnode bound to
/// it, a mapping into it or a declared flow.
fn fed(t: &Topology, account: &Account, subj: &str) -> bool {
    account
        .users
        .iter()
        .any(|u| access::grants_some(t.effective_permissions(account, u), Direction::Publish, subj))
        || account.imports.iter().any(|i| subject::overlaps(i.local(), subj))
        || account.mappings.iter().any(|m| subject::overlaps(&m.to, subj))
        || has_leafnode(t, account)
        || t.flows
            .iter()
            .any(|f| f.publish.account.as_deref() == Some(account.name.as_str()) && subject::overlaps(&f.publish.subject, subj))
}

/// Whether a message published on `pattern` in `account` can be received: stored by a stream,
/// subscribed by a user, exported, served through an import, or carried to a leafnode.
fn received(t: &Topology, account: &Account, pattern: &str) -> bool {
    t.jetstream
        .streams
        .iter()
        .any(|s| s.account.as_deref() == Some(account.name.as_str()) && s.subjects.iter().any(|x| subject::overlaps(x, pattern)))
        || account
            .users
            .iter()
            .any(|u| access::grants_some(t.effective_permissions(account, u), Direction::Subscribe, pattern))
        || account.exports.iter().any(|e| subject::overlaps(&e.subject, pattern))
        || account
            .imports
            .iter()
            .any(|i| i.kind == ExportKind::Service && subject::overlaps(i.local(), pattern))
        || account.mappings.iter().any(|m| subject::overlaps(&m.from, pattern))
        || has_leafnode(t, account)
}
