//! What clients need to reach an applied deployment, on any target: `apply --env-file` (for
//! later CI steps) and `output` (every user's URLs, CA, credentials and natscli context).

use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Options, Reached, reach};
use crate::desired::{Login, Role, user_login};

/// The client and monitoring URLs as this machine reaches them, the CA, and each user's
/// credentials file (absolute paths), as environment variables.
pub async fn client_environment(opts: &Options) -> Result<Vec<(String, String)>> {
    let loaded = super::load(&opts.topology)?;
    let t = &loaded.topology;
    let Reached { mut target, desired, .. } = reach(opts, t).await?;
    target.close().await;
    let tree = target.dir();
    let urls: Vec<(String, String)> = desired
        .servers
        .iter()
        .filter(|s| s.role == Role::Node)
        .map(|s| target.lasting_urls(s))
        .collect();
    let join = |f: fn(&(String, String)) -> &str| urls.iter().map(f).collect::<Vec<_>>().join(",");
    let mut vars = vec![
        ("NATS_URL".to_string(), join(|u| u.0.as_str())),
        ("NATS_MONITOR_URLS".to_string(), join(|u| u.1.as_str())),
    ];
    if let Some(tls) = &desired.client_tls {
        vars.push(("NATS_CA".into(), tls.ca.display().to_string()));
    }
    for f in desired
        .auth_files
        .iter()
        .filter(|f| f.path.extension().is_some_and(|e| e == "creds"))
    {
        let (Some(account), Some(user)) = (f.path.parent().and_then(|p| p.file_name()), f.path.file_stem()) else {
            continue;
        };
        if account.to_string_lossy().starts_with('_') {
            continue;
        }
        let name = format!("NATS_CREDS_{}_{}", account.to_string_lossy(), user.to_string_lossy())
            .to_uppercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        vars.push((name, tree.join(&f.path).display().to_string()));
    }
    Ok(vars)
}

/// How every declared user reaches the deployment: the output of `output`.
#[derive(Debug, Serialize)]
pub struct ClientAccess {
    /// Changes when a field's meaning does.
    pub format_version: u32,
    pub topology: String,
    pub target: String,
    /// The regions' client URLs, as this machine reaches them beyond this command.
    pub urls: Vec<String>,
    pub monitor_urls: Vec<String>,
    /// Each region's and leafnode's client URLs.
    pub sites: BTreeMap<String, Vec<String>>,
    pub ca: Option<PathBuf>,
    pub users: Vec<UserAccess>,
}

#[derive(Debug, Serialize)]
pub struct UserAccess {
    pub account: String,
    pub user: String,
    /// Operator mode: its credentials file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creds: Option<PathBuf>,
    /// Static accounts: the variable its password is read from (never the password).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// A natscli context (`nats context import`, or a file under ~/.config/nats/context/).
    pub context: BTreeMap<&'static str, String>,
}

/// The client URLs, CA, credentials and a natscli context of every declared user.
pub async fn client_access(opts: &Options) -> Result<ClientAccess> {
    let loaded = super::load(&opts.topology)?;
    let t = &loaded.topology;
    let Reached { mut target, desired, .. } = reach(opts, t).await?;
    target.close().await;
    let tree = target.dir().to_path_buf();
    let mut sites: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (mut urls, mut monitor_urls) = (Vec::new(), Vec::new());
    for s in &desired.servers {
        let (client, monitor) = target.lasting_urls(s);
        let site = if s.role == Role::Node { s.region.clone() } else { s.name.clone() };
        sites.entry(site).or_default().push(client.clone());
        if s.role == Role::Node {
            urls.push(client);
            monitor_urls.push(monitor);
        }
    }
    let ca = desired.client_tls.as_ref().map(|tls| tls.ca.clone());
    let pki = tree.join("pki");
    let users = t
        .accounts
        .iter()
        .flat_map(|a| a.users.iter().map(move |u| (a, u)))
        .map(|(a, u)| {
            let (login, cert) = user_login(t, &a.name, u);
            let (creds, password_env) = match login {
                Login::Creds { path } => (Some(tree.join(path)), None),
                Login::Password { var, .. } => (None, Some(var)),
                Login::Anonymous | Login::Unknown { .. } => (None, None),
            };
            let cert = cert.map(|stem| (pki.join(format!("{stem}.pem")), pki.join(format!("{stem}-key.pem"))));
            let mut context = BTreeMap::new();
            context.insert("description", format!("user {} of account {} ({})", u.name, a.name, t.name));
            context.insert("url", urls.join(","));
            match (&creds, &password_env) {
                (Some(path), _) => {
                    context.insert("creds", path.display().to_string());
                }
                (None, _) => {
                    context.insert("user", u.name.clone());
                }
            }
            if let Some(ca) = &ca {
                context.insert("ca", ca.display().to_string());
            }
            if let Some((c, k)) = &cert {
                context.insert("cert", c.display().to_string());
                context.insert("key", k.display().to_string());
            }
            UserAccess {
                account: a.name.clone(),
                user: u.name.clone(),
                creds,
                password_env,
                cert: cert.as_ref().map(|c| c.0.clone()),
                key: cert.map(|c| c.1),
                context,
            }
        })
        .collect();
    Ok(ClientAccess {
        format_version: 1,
        topology: t.name.clone(),
        target: target.kind().name().to_string(),
        urls,
        monitor_urls,
        sites,
        ca,
        users,
    })
}
