//! `apply --env-file`: what later CI steps need to reach an applied deployment, on any target.

use anyhow::Result;

use super::{Options, Reached, reach};
use crate::desired::Role;

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
