//! `verify`: the live checks and message probes against an applied deployment, changing nothing.

use anyhow::Result;
use std::time::Duration;

use super::{Options, applied, record_verification};
use crate::targets::TargetKind;
use crate::verify::{self, Progress, Report};

pub async fn verify(opts: &Options, timeout: Duration, progress: &(dyn Fn(Progress) + Sync)) -> Result<Report> {
    if opts.target == TargetKind::K8s {
        return super::k8s::verify(opts, timeout, progress).await;
    }
    let loaded = super::load(&opts.topology)?;
    let t = &loaded.topology;
    let (target, desired, keys) = applied(opts, t)?;
    let scope = verify::Scope {
        timeout,
        flows: opts.flows,
    };
    let report = verify::verify(&desired, &keys, target.kind().name(), scope, None, progress).await;
    record_verification(target.dir(), &report)?;
    Ok(report)
}
