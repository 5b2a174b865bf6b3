//! `verify`: the live checks and message probes against an applied deployment, changing nothing.

use anyhow::Result;
use std::time::Duration;

use super::{Options, reach, record_verification};
use crate::verify::{self, Progress, Report};

pub async fn verify(opts: &Options, timeout: Duration, progress: &(dyn Fn(Progress) + Sync)) -> Result<Report> {
    let loaded = super::load(&opts.topology)?;
    let t = &loaded.topology;
    let mut reached = reach(opts, t).await?;
    let scope = verify::Scope {
        timeout,
        flows: opts.flows,
        trace: opts.trace,
    };
    let report = verify::verify(&reached.desired, &reached.keys, reached.target.kind().name(), scope, None, progress).await;
    reached.target.close().await;
    record_verification(reached.target.dir(), &report)?;
    Ok(report)
}
