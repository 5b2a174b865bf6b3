//! `rotate certs`: new certificates (the CA too, when asked) for an applied deployment; the
//! next apply reloads the servers with them.

use anyhow::{Result, bail};

use super::material::{KeyMode, secrets};
use super::{Options, lock, not_applied, open_target};
use crate::material::pki::Rotation;
use crate::plan;
use crate::targets::DeploymentState;

/// Issues new certificates (the CA too with `Rotation::All`); returns what was issued.
pub fn rotate_certs(opts: &Options, rotation: Rotation, log: &(dyn Fn(String) + Sync)) -> Result<Vec<plan::KeyChange>> {
    let loaded = super::load(&opts.topology)?;
    let t = &loaded.topology;
    if !t.tls.any() {
        bail!("topology `{}` uses no TLS: there are no certificates to rotate", t.name);
    }
    let _lock = lock(opts, &t.name, "rotate certs", log)?;
    let target = open_target(opts, t, false)?;
    let mut state = DeploymentState::load(target.dir())?.ok_or_else(|| not_applied(opts, &t.name))?;
    let deployed = target.deployed(t)?;
    let addressing = target.addressing(&deployed, &mut state, None)?;
    Ok(secrets(&deployed, target.dir(), &addressing, KeyMode::Generate, rotation)?.changes)
}
