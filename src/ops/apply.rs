//! `apply`: under the deployment's lock, makes the plan (or checks a saved one is still true),
//! carries it out through the one rollout, then verifies.

use anyhow::Result;
use std::path::Path;
use std::time::{Duration, Instant};

use super::material::KeyMode;
use super::plan::{PlanFile, check_saved};
use super::prepare::prepare;
use super::{ApplyEvents, Options, lock, record_verification};
use crate::apply::cluster::refuse_replacements;
use crate::apply::interrupt::{self, Interrupted};
use crate::apply::rollout::Rollout;
use crate::observed::jetstream::StreamPlacement;
use crate::plan::{LiveState, Plan, ServerAction};
use crate::timings::Timings;
use crate::topology::Loaded;
use crate::verify::{self, Report};

/// Applies the plan (the saved one in `saved`, if it still holds), then verifies until
/// `timeout`.
pub async fn apply(
    opts: &Options,
    saved: Option<(&PlanFile, &Path)>,
    timeout: Duration,
    events: ApplyEvents<'_>,
    timings: &Timings,
) -> Result<(Loaded, Plan, Report)> {
    // Invalid input stops here, before the lock or anything else is written.
    let phase = Instant::now();
    let loaded = super::load_for_servers(&opts.topology)?;
    timings.record("read and check the topology", phase);
    let phase = Instant::now();
    let _lock = lock(opts, &loaded.topology.name, "apply", events.log)?;
    timings.record("take the deployment's lock", phase);
    if let Some((saved, path)) = saved {
        let phase = Instant::now();
        check_saved(opts, saved, path, events.host).await?;
        timings.record("check the saved plan still holds", phase);
    }
    let phase = Instant::now();
    let mut p = prepare(opts, loaded, KeyMode::Generate, events.host).await?;
    timings.record("prepare: keys, render, read the live state, plan", phase);
    let result = async {
        let starting: Vec<_> = p
            .plan
            .servers
            .iter()
            .filter(|c| c.action == ServerAction::Start)
            .filter_map(|c| p.desired.server(&c.server))
            .collect();
        p.target.check_ports_free(&starting)?;
        (events.plan)(&p.loaded, &p.plan);
        refuse_replacements(&p.plan.jetstream, opts.allow_replace)?;
        let rollout = Rollout {
            target: p.target.as_ref(),
            plan: &p.plan,
            desired: &p.desired,
            keys: &p.keys,
            files: &p.files,
            configs: &p.configs,
            live_jetstream: &p.live_jetstream,
            prune: opts.prune,
            allow_replace: opts.allow_replace,
            peer_wait: timeout,
            timings,
        };
        rollout.run(&mut p.state, events.log, events.host).await?;
        p.state.save(p.target.dir())?;
        if interrupt::requested() {
            return Err(Interrupted {
                done: vec!["every change of the plan".into()],
                not_done: vec!["verify".into()],
            }
            .into());
        }
        // Nothing changed: the objects the plan read are the ones to verify.
        let known_streams = match (p.plan.servers_change(), p.plan.jetstream_work().next(), &p.live_jetstream) {
            (false, None, LiveState::Read(live)) => Some(StreamPlacement::of(live)),
            _ => None,
        };
        let report = verify::verify(
            &p.desired,
            &p.keys,
            p.target.kind().name(),
            verify::Scope {
                timeout,
                flows: opts.flows,
                trace: false,
            },
            known_streams,
            events.progress,
        )
        .await;
        for phase in &report.phases {
            timings.push(phase.name.clone(), phase.ms);
        }
        record_verification(p.target.dir(), &report)?;
        Ok::<_, anyhow::Error>(report)
    }
    .await;
    p.target.close().await;
    Ok((p.loaded, p.plan, result?))
}
