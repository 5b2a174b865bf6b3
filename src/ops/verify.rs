//! `verify`: the live checks and message probes against an applied deployment, changing nothing.

use anyhow::Result;
use std::time::Duration;

use super::material::{KeyMode, secrets};
use super::{Options, not_applied, open_target, record_verification};
use crate::desired;
use crate::material::pki::Rotation;
use crate::target::{DeploymentState, TargetKind};
use crate::verify::{self, Progress, Report};

pub async fn verify(opts: &Options, timeout: Duration, progress: &(dyn Fn(Progress) + Sync)) -> Result<Report> {
    if opts.target == TargetKind::K8s {
        return super::k8s::verify(opts, timeout, progress).await;
    }
    let loaded = super::load(&opts.topology)?;
    let t = &loaded.topology;
    let target = open_target(opts, &t.name, false)?;
    let mut state = DeploymentState::load(target.dir())?.ok_or_else(|| not_applied(opts, &t.name))?;
    let addressing = target.addressing(t, &mut state, None)?;
    let tree = target.dir();
    let secrets = secrets(t, tree, &addressing, KeyMode::Require, Rotation::None)?;
    let desired = desired::build(t, &addressing, &secrets.material(tree));
    let report = verify::verify(&desired, &secrets.keys, target.kind().name(), timeout, None, progress).await;
    record_verification(tree, &report)?;
    Ok(report)
}
