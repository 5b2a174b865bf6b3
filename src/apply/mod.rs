//! Carrying out a plan on a target: one driver per target (`local` processes, `compose`, `ssh`).

pub mod compose;
pub mod jetstream;
pub mod local;
pub mod ssh;

pub use local::{LocalState, LocalTarget};
