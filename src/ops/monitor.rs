//! `monitor`: serves the applied deployment's metrics until interrupted.

use anyhow::{Context, Result};
use std::net::SocketAddr;

use super::{Options, reach};
use crate::monitor::{self, Watched, Watcher};

/// Binds `listen` (the topology's `monitoring.listen` when `None`), tells `ready` the address
/// it serves on, then watches and serves until Ctrl-C or SIGTERM.
pub async fn monitor(opts: &Options, listen: Option<SocketAddr>, ready: &(dyn Fn(SocketAddr) + Sync), log: monitor::Log) -> Result<()> {
    let loaded = super::load(&opts.topology)?;
    let t = &loaded.topology;
    let reached = reach(opts, t).await?;
    let listen = listen.unwrap_or(t.monitoring.listen);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    ready(listener.local_addr()?);
    let watcher = Watcher::new(
        Watched {
            desired: reached.desired.clone(),
            keys: reached.keys.clone(),
            monitoring: t.monitoring.clone(),
            target: opts.target.name().to_string(),
        },
        log,
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = monitor::serve(listener, watcher.clone()) => {}
        _ = watcher.watch() => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    // The port-forwards (k8s) last as long as the watching.
    drop(reached);
    Ok(())
}
