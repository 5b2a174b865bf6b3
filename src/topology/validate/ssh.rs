//! Hosts as the ssh target reaches them: the top-level `ssh:` defaults merged with a node's own
//! `ssh:`, with the directories absolute and the environment names valid.

use super::{Validator, loc};
use crate::model::*;
use crate::topology::diagnostic::Diagnostic;
use crate::topology::schema::*;
use serde_saphyr::Spanned;

pub const DEFAULT_CONFIG_DIR: &str = "/etc/nats";
pub const DEFAULT_DATA_DIR: &str = "/var/lib/nats";
pub const DEFAULT_LOG_DIR: &str = "/var/log/nats";
/// Where the playbook in `ansible/` installs the binary (and its systemd unit runs it from).
pub const DEFAULT_NATS_SERVER: &str = "/usr/local/bin/nats-server";
/// Linux limits interface names to 15 bytes.
const MAX_INTERFACE_NAME: usize = 15;

impl Validator {
    /// The host of server `object`, reached at `fallback_address` unless its `ssh:` names one.
    pub(super) fn ssh_host(
        &mut self,
        defaults: Option<&Spanned<SshSpec>>,
        own: Option<&Spanned<SshSpec>>,
        object: &str,
        fallback_address: &str,
    ) -> SshHost {
        if let Some(address) = defaults.and_then(|d| d.value.address.as_ref()) {
            self.error(
                Diagnostic::error("the top-level `ssh:` cannot name an address: every host would share it")
                    .at(loc(address))
                    .help("give each node its own `ssh: { address: .. }`"),
            );
        }
        let pick = |f: fn(&SshSpec) -> &Option<Spanned<String>>| {
            own.and_then(|o| f(&o.value).as_ref())
                .or_else(|| defaults.and_then(|d| f(&d.value).as_ref()))
        };
        for (field, value) in [
            ("config_dir", pick(|s| &s.config_dir)),
            ("data_dir", pick(|s| &s.data_dir)),
            ("log_dir", pick(|s| &s.log_dir)),
            // Ansible installs it at this path and systemd runs it from there: no PATH lookup.
            ("nats_server", pick(|s| &s.nats_server)),
        ] {
            if let Some(dir) = value
                && !dir.value.starts_with('/')
            {
                self.error(
                    Diagnostic::error(format!("`{field}` must be an absolute path on the host, not `{}`", dir.value))
                        .at(loc(dir))
                        .object(object.to_string()),
                );
            }
        }
        let mut env: Vec<(String, String)> = Vec::new();
        for spec in [defaults, own].into_iter().flatten() {
            for (name, value) in &spec.value.env {
                let valid = name.value.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    self.error(
                        Diagnostic::error(format!("`{}` is not an environment variable name", name.value))
                            .at(loc(name))
                            .object(object.to_string()),
                    );
                }
                env.retain(|(n, _)| n != &name.value);
                env.push((name.value.clone(), value.value.clone()));
            }
        }
        let address = own
            .and_then(|o| o.value.address.as_ref())
            .map(|a| a.value.clone())
            .unwrap_or_else(|| fallback_address.to_string());
        let text = |f: fn(&SshSpec) -> &Option<Spanned<String>>, default: &str| {
            pick(f).map(|v| v.value.clone()).unwrap_or_else(|| default.to_string())
        };
        SshHost {
            address,
            port: own
                .and_then(|o| o.value.port.as_ref())
                .or_else(|| defaults.and_then(|d| d.value.port.as_ref()))
                .map(|p| p.value)
                .unwrap_or(22),
            user: text(|s| &s.user, "root"),
            key: pick(|s| &s.key).map(|k| k.value.clone()),
            known_hosts: pick(|s| &s.known_hosts).map(|k| k.value.clone()),
            config_dir: text(|s| &s.config_dir, DEFAULT_CONFIG_DIR).trim_end_matches('/').to_string(),
            data_dir: text(|s| &s.data_dir, DEFAULT_DATA_DIR).trim_end_matches('/').to_string(),
            log_dir: text(|s| &s.log_dir, DEFAULT_LOG_DIR).trim_end_matches('/').to_string(),
            nats_server: text(|s| &s.nats_server, DEFAULT_NATS_SERVER),
            env,
        }
    }

    /// A WireGuard interface name Linux accepts.
    pub(super) fn wireguard_interface(&mut self, name: Option<&Spanned<String>>, object: &str) -> String {
        let Some(name) = name else { return "wg0".into() };
        let valid = !name.value.is_empty()
            && name.value.len() <= MAX_INTERFACE_NAME
            && name
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            self.error(
                Diagnostic::error(format!("`{}` is not a network interface name", name.value))
                    .at(loc(name))
                    .object(object.to_string())
                    .help("up to 15 letters, digits, `_`, `-` or `.`"),
            );
        }
        name.value.clone()
    }
}
