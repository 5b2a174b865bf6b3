//! Ctrl-C during a command that changes a deployment. The first interrupt (SIGINT or SIGTERM)
//! asks the rollout to stop at its next safe point, between two steps, with the state saved;
//! the second aborts at once. Either way the state file is whole (every step saves it
//! atomically, and a server's start is journaled before its process exists), so the next
//! `apply` converges and `destroy` finds every server.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// The exit code of an interrupted command (128 + SIGINT), as shells report it.
pub const EXIT_CODE: u8 = 130;

/// A rollout stopped at a safe point because it was asked to.
#[derive(Debug, thiserror::Error)]
#[error(
    "interrupted: stopped at a safe point with the state saved\n  done: {}\n  not done: {}\nhelp: run the same command again to continue",
    list(.done),
    list(.not_done)
)]
pub struct Interrupted {
    pub done: Vec<String>,
    pub not_done: Vec<String>,
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "nothing".into() } else { items.join(", ") }
}

/// Listens for interrupts for the rest of the process (call inside the tokio runtime). The
/// handlers are registered before this returns, not when the listening task first runs: an
/// interrupt right after the command starts is already a request to stop at a safe point.
pub fn install() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                r = interrupt.recv() => if r.is_none() { return },
                _ = terminate.recv() => {}
            }
            if REQUESTED.swap(true, Ordering::SeqCst) {
                eprintln!("interrupted again: aborting now; the state is saved, run the command again to continue");
                std::process::exit(EXIT_CODE.into());
            }
            eprintln!("interrupt: stopping at the next safe point (interrupt again to abort now)");
        }
    });
}

/// Whether an interrupt was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
