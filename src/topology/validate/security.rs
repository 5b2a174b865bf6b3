//! TLS, the operator, account limits, exports and imports: schema -> model, with the checks
//! nats-server would otherwise make only when a client is refused.

use serde_saphyr::Spanned;

use super::{Validator, loc};
use crate::model::*;
use crate::subject;
use crate::topology::diagnostic::{Diagnostic, did_you_mean};
use crate::topology::schema::*;

/// The connection types nats-server knows (`allowed_connection_types`).
const CONNECTION_TYPES: &[&str] = &["STANDARD", "WEBSOCKET", "LEAFNODE", "LEAFNODE_WS", "MQTT", "MQTT_WS", "IN_PROCESS"];

impl Validator {
    pub(super) fn tls(&mut self, spec: &Option<Spanned<TlsSpec>>) -> Tls {
        let Some(spec) = spec else { return Tls::default() };
        let listener = |l: &Option<Spanned<TlsListenerSpec>>| {
            l.as_ref()
                .filter(|l| l.value.enabled)
                .map(|l| TlsListener { verify: l.value.verify })
        };
        let tls = Tls {
            client: listener(&spec.value.client),
            cluster: listener(&spec.value.cluster),
            gateway: listener(&spec.value.gateway),
            leafnode: listener(&spec.value.leafnode),
            monitor: spec.value.monitor.as_ref().is_some_and(|m| m.value),
        };
        if let (Some(m), None) = (&spec.value.monitor, tls.client)
            && m.value
        {
            self.error(
                Diagnostic::error("https monitoring needs TLS on the client listener")
                    .at(loc(m))
                    .help("nats-server serves https with the client listener's certificate: add `client: true`"),
            );
        }
        tls
    }

    pub(super) fn operator(&mut self, spec: &Option<Spanned<OperatorSpec>>) -> Option<Operator> {
        let spec = &spec.as_ref()?.value;
        self.name(&spec.name, "operator");
        Some(Operator {
            name: spec.name.value.clone(),
            resolver: match spec.resolver.as_ref().map(|r| r.value) {
                None | Some(ResolverKind::Memory) => Resolver::Memory,
                Some(ResolverKind::Full) => Resolver::Full,
            },
            signing_key: spec.signing_key,
        })
    }

    pub(super) fn account_jetstream(&mut self, spec: &Option<Spanned<AccountJetStreamSpec>>) -> (bool, AccountLimits) {
        match spec.as_ref().map(|s| &s.value) {
            None | Some(AccountJetStreamSpec::Enabled(false)) => (false, AccountLimits::default()),
            Some(AccountJetStreamSpec::Enabled(true)) => (true, AccountLimits::default()),
            Some(AccountJetStreamSpec::Limits(l)) => {
                let mut count = |v: &Option<Spanned<i64>>| {
                    v.as_ref().map(|v| {
                        if v.value < 1 {
                            self.error(
                                Diagnostic::error(format!("a limit of {} is not usable", v.value))
                                    .at(loc(v))
                                    .help("give a positive number, or leave the limit out for no limit"),
                            );
                        }
                        v.value
                    })
                };
                let max_streams = count(&l.max_streams);
                let max_consumers = count(&l.max_consumers);
                let limits = AccountLimits {
                    max_memory: self.size(&l.max_memory, None),
                    max_file: self.size(&l.max_file, None),
                    max_streams,
                    max_consumers,
                };
                (true, limits)
            }
        }
    }

    fn kind_and_subject<'a>(
        &mut self,
        stream: &'a Option<Spanned<String>>,
        service: &'a Option<Spanned<String>>,
        what: &str,
        at: Loc,
        object: &str,
    ) -> Option<(ExportKind, &'a Spanned<String>)> {
        let (kind, subject) = match (stream, service) {
            (Some(s), None) => (ExportKind::Stream, s),
            (None, Some(s)) => (ExportKind::Service, s),
            _ => {
                self.error(
                    Diagnostic::error(format!("an {what} needs exactly one of `stream:` and `service:`"))
                        .at(at)
                        .object(object.to_string()),
                );
                return None;
            }
        };
        self.subjects(std::slice::from_ref(subject), object);
        Some((kind, subject))
    }

    pub(super) fn exports(&mut self, spec: &AccountSpec, account: &str) -> Vec<Export> {
        let object = format!("account `{account}`");
        spec.exports
            .iter()
            .filter_map(|e| {
                let at = e.stream.as_ref().or(e.service.as_ref()).map(loc).unwrap_or_default();
                let (kind, subject) = self.kind_and_subject(&e.stream, &e.service, "export", at, &object)?;
                Some(Export {
                    kind,
                    subject: subject.value.clone(),
                    to: e.to.iter().map(|t| t.value.clone()).collect(),
                })
            })
            .collect()
    }

    pub(super) fn imports(&mut self, spec: &AccountSpec, account: &str) -> Vec<Import> {
        let object = format!("account `{account}`");
        spec.imports
            .iter()
            .filter_map(|i| {
                let (kind, subject) = self.kind_and_subject(&i.stream, &i.service, "import", loc(&i.from), &object)?;
                if let Some(to) = &i.to {
                    self.subjects(std::slice::from_ref(to), &object);
                }
                Some(Import {
                    kind,
                    subject: subject.value.clone(),
                    from: i.from.value.clone(),
                    local_subject: i.to.as_ref().map(|t| t.value.clone()),
                    loc: loc(subject),
                })
            })
            .collect()
    }

    pub(super) fn connection_types(&mut self, list: &[Spanned<String>], object: &str) -> Vec<String> {
        for t in list {
            if !CONNECTION_TYPES.contains(&t.value.as_str()) {
                let mut d = Diagnostic::error(format!("unknown connection type `{}`", t.value))
                    .at(loc(t))
                    .object(object.to_string());
                d = match did_you_mean(&t.value.to_uppercase(), CONNECTION_TYPES.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("one of {}", CONNECTION_TYPES.join(", "))),
                };
                self.error(d);
            }
        }
        list.iter().map(|t| t.value.clone()).collect()
    }

    /// Checks across accounts: every import names an export that allows it, imports of one
    /// account do not overlap, and operator mode has what nats-server needs.
    pub(super) fn security(&mut self, file: &TopologyFile, topology: &Topology) {
        for (name, spec) in &file.accounts {
            let Some(account) = topology.account(&name.value) else { continue };
            for to in spec.exports.iter().flat_map(|e| &e.to) {
                if topology.account(&to.value).is_none() {
                    self.unknown_account(&to.value, loc(to), topology, &format!("account `{}`", name.value));
                }
            }
            for (i, spec_i) in account.imports.iter().zip(&spec.imports) {
                let object = format!("account `{}`", name.value);
                let Some(from) = topology.account(&i.from) else {
                    self.unknown_account(&i.from, loc(&spec_i.from), topology, &object);
                    continue;
                };
                if from.name == account.name {
                    self.error(
                        Diagnostic::error(format!("account `{}` imports from itself", account.name))
                            .at(loc(&spec_i.from))
                            .object(object),
                    );
                    continue;
                }
                let covering = from
                    .exports
                    .iter()
                    .find(|e| e.kind == i.kind && subject::is_subset(&i.subject, &e.subject));
                match covering {
                    None => {
                        let kind = i.kind.name();
                        self.error(
                            Diagnostic::error(format!(
                                "account `{}` imports {kind} `{}` from `{}`, which does not export it",
                                account.name, i.subject, from.name
                            ))
                            .at(i.loc)
                            .object(object)
                            .help(format!(
                                "add `exports: [{{ {kind}: \"{}\" }}]` to account `{}`, or import a subject it exports",
                                i.subject, from.name
                            )),
                        );
                    }
                    Some(e) if !e.to.is_empty() && !e.to.contains(&account.name) => self.error(
                        Diagnostic::error(format!(
                            "account `{}` exports `{}` only to {}, not to `{}`",
                            from.name,
                            e.subject,
                            e.to.join(", "),
                            account.name
                        ))
                        .at(i.loc)
                        .object(object)
                        .help(format!("add `{}` to the export's `to:` list", account.name)),
                    ),
                    Some(_) => {}
                }
            }
            for (n, a) in account.imports.iter().enumerate() {
                if let Some(b) = account.imports[..n].iter().find(|b| subject::overlaps(a.local(), b.local())) {
                    self.error(
                        Diagnostic::error(format!(
                            "imports `{}` and `{}` of account `{}` overlap",
                            a.local(),
                            b.local(),
                            account.name
                        ))
                        .at(a.loc)
                        .object(format!("account `{}`", account.name))
                        .help(format!(
                            "the import at line {} already delivers some of these subjects; give one of them a distinct `to:` subject",
                            b.loc.line
                        )),
                    );
                }
            }
        }
        if let Some(op) = &file.operator {
            if topology.system_account().is_none() {
                self.error(
                    Diagnostic::error("operator mode needs a system account")
                        .at(loc(op))
                        .help("declare one under `accounts:` with `system: true`; the servers and notif-infra use it to manage accounts and JetStream"),
                );
            }
            if topology.accounts.iter().all(|a| a.system) {
                self.error(
                    Diagnostic::error("operator mode with no application account")
                        .at(loc(op))
                        .help("declare the accounts clients use under `accounts:`"),
                );
            }
        }
        for (name, spec) in &file.accounts {
            for u in &spec.users {
                if u.client_cert && topology.tls.client.is_none() {
                    self.error(
                        Diagnostic::error(format!(
                            "user `{}` asks for a client certificate, but clients do not use TLS",
                            u.user.value
                        ))
                        .at(loc(&u.user))
                        .object(format!("account `{}`", name.value))
                        .help("add `tls: { client: { verify: true } }`"),
                    );
                }
            }
        }
    }

    /// The `kubernetes:` block, and names that must be DNS labels once they become Kubernetes
    /// objects (namespace, StatefulSets and their services).
    pub(super) fn kubernetes(&mut self, file: &TopologyFile, topology: &Topology) -> Option<Kubernetes> {
        let spec = &file.kubernetes.as_ref()?.value;
        let namespace = spec
            .namespace
            .as_ref()
            .map(|n| (n.value.clone(), loc(n)))
            .unwrap_or_else(|| (topology.name.clone(), loc(&file.name)));
        self.dns_label(&namespace.0, namespace.1, "namespace", 63);
        for (name, _) in &file.regions {
            // `<region>-external` is the longest object name a region gets.
            self.dns_label(
                &name.value,
                loc(name),
                "region (a StatefulSet and its services)",
                63 - "-external".len(),
            );
        }
        for (name, _) in &file.leafnodes {
            // On Kubernetes a leafnode is a Pod of that name, with `<leafnode>-config` and the like.
            self.dns_label(&name.value, loc(name), "leafnode (a Pod and its ConfigMap)", 63 - "-config".len());
        }
        let (requests, limits) = match (&spec.resources, &spec.cpu, &spec.memory) {
            (Some(r), None, None) => (
                Resources {
                    cpu: r.value.requests.cpu.as_ref().map(|q| self.quantity(q)),
                    memory: r.value.requests.memory.as_ref().map(|q| self.quantity(q)),
                },
                Resources {
                    cpu: r.value.limits.cpu.as_ref().map(|q| self.quantity(q)),
                    memory: r.value.limits.memory.as_ref().map(|q| self.quantity(q)),
                },
            ),
            (Some(r), _, _) => {
                self.error(
                    Diagnostic::error("`resources` and the `cpu`/`memory` shorthands together")
                        .at(loc(r))
                        .help("write requests and limits under `resources:` only"),
                );
                (Resources::default(), Resources::default())
            }
            (None, cpu, memory) => {
                let memory = memory.as_ref().map(|m| self.quantity(m)).unwrap_or_else(|| "1Gi".into());
                (
                    Resources {
                        cpu: Some(cpu.as_ref().map(|c| self.quantity(c)).unwrap_or_else(|| "500m".into())),
                        memory: Some(memory.clone()),
                    },
                    // A memory limit equal to the request: JetStream's memory store must not be
                    // the reason a node is evicted.
                    Resources {
                        cpu: None,
                        memory: Some(memory),
                    },
                )
            }
        };
        let storage = spec.storage.as_ref().map(|s| self.quantity(s)).unwrap_or_else(|| "10Gi".into());
        if let Some(class) = &spec.storage_class {
            self.dns_label(&class.value, loc(class), "storage class", 253);
        }
        Some(Kubernetes {
            namespace: namespace.0,
            image: spec
                .image
                .as_ref()
                .map(|i| i.value.clone())
                .or_else(|| topology.nats_server_version.as_ref().map(|v| format!("nats:{v}")))
                .unwrap_or_else(|| crate::desired::DEFAULT_IMAGE.into()),
            requests,
            limits,
            storage,
            anti_affinity_required: spec.anti_affinity.as_ref().is_some_and(|a| a.value == AntiAffinity::Required),
            spread_across: spec.spread_across.as_ref().map(|s| s.value.clone()),
            client_service: format!(
                "{:?}",
                spec.client_service.as_ref().map(|t| t.value).unwrap_or(ServiceType::ClusterIP)
            ),
            storage_class: spec.storage_class.as_ref().map(|c| c.value.clone()),
            service_type: format!(
                "{:?}",
                spec.service_type.as_ref().map(|t| t.value).unwrap_or(ServiceType::LoadBalancer)
            ),
        })
    }

    fn quantity(&mut self, v: &Spanned<Scalar>) -> String {
        if !is_quantity(&v.value.0) {
            self.error(
                Diagnostic::error(format!("`{}` is not a Kubernetes quantity", v.value.0))
                    .at(loc(v))
                    .help("write it as Kubernetes does: `500m` or `2` CPUs, `512Mi` or `4Gi` of memory or storage"),
            );
        }
        v.value.0.clone()
    }

    fn dns_label(&mut self, name: &str, at: Loc, what: &str, max: usize) {
        let valid = !name.is_empty()
            && name.len() <= max
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !valid {
            self.error(
                Diagnostic::error(format!("`{name}` cannot name a Kubernetes {what}"))
                    .at(at)
                    .help(format!(
                        "Kubernetes names are DNS labels: lowercase letters, digits and `-`, starting and ending with a letter or digit, at most {max} characters"
                    )),
            );
        }
    }

    fn unknown_account(&mut self, name: &str, at: Loc, topology: &Topology, object: &str) {
        let mut d = Diagnostic::error(format!("account `{name}` is not declared"))
            .at(at)
            .object(object.to_string());
        d = match did_you_mean(name, topology.accounts.iter().map(|a| a.name.as_str())) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help("declare it under `accounts:`"),
        };
        self.error(d);
    }
}

/// A Kubernetes resource quantity (`500m`, `2`, `1.5Gi`, `10G`).
fn is_quantity(q: &str) -> bool {
    let suffixes = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", ""];
    suffixes.iter().any(|s| {
        q.strip_suffix(s).is_some_and(|n| {
            let mut parts = n.splitn(2, '.');
            let whole = parts.next().unwrap_or("");
            let frac = parts.next();
            !whole.is_empty()
                && whole.chars().all(|c| c.is_ascii_digit())
                && frac.is_none_or(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()))
        })
    })
}
