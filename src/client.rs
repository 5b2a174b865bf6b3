//! How notif-infra's own clients reach the servers of a desired state: NATS connections as the
//! account's notif-infra user (nkey, or credentials in operator mode) over TLS when the
//! listeners use it, and the monitoring HTTP client trusting the deployment's CA.

use crate::desired::Desired;
use crate::material::jwt;
use crate::material::{KeyId, Keys};

/// Connection options with the authentication and TLS `desired` asks for; anonymous without
/// accounts.
pub fn nats_options(desired: &Desired, keys: &Keys, account: &Option<String>) -> Result<async_nats::ConnectOptions, String> {
    let mut opts = match account {
        None => async_nats::ConnectOptions::new(),
        Some(a) => {
            let pair = keys
                .get(&KeyId::Probe(a.clone()))
                .ok_or_else(|| format!("no notif-infra key for account {a}"))?;
            match desired.own_jwts.get(a) {
                Some(user_jwt) => async_nats::ConnectOptions::with_credentials(&jwt::creds_file(user_jwt, &pair.seed))
                    .map_err(|e| format!("notif-infra's credentials for account {a} are unusable: {e}"))?,
                None => async_nats::ConnectOptions::new().nkey(pair.seed.clone()),
            }
        }
    };
    if let Some(tls) = &desired.client_tls {
        opts = opts.require_tls(true).add_root_certificates(tls.ca.clone());
        if let Some((cert, key)) = &tls.identity {
            opts = opts.add_client_certificate(cert.clone(), key.clone());
        }
    }
    // Replies under notif-infra's own prefix, which a leaf's allow lists always let through.
    Ok(opts.custom_inbox_prefix(crate::access::OWN_INBOX))
}

/// A connection as notif-infra's own user of `account` to `server` alone (not to the servers
/// it tells of), named `name` for the servers' connection lists.
pub async fn own_connection(
    desired: &Desired,
    keys: &Keys,
    account: &Option<String>,
    server: &crate::desired::ServerSpec,
    name: &str,
    timeout: std::time::Duration,
) -> Result<async_nats::Client, String> {
    nats_options(desired, keys, account)?
        .name(name)
        .connection_timeout(timeout)
        .ignore_discovered_servers()
        .connect(server.client_url.as_str())
        .await
        .map_err(|e| format!("cannot connect to {} ({}): {e}", server.name, server.client_url))
}

/// Installs the process-wide TLS crypto provider (ring, as async-nats uses) once: reqwest is
/// built without one so the binary carries a single provider.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = async_nats::rustls::crypto::ring::default_provider().install_default();
    });
}
