//! Carrying out a plan on a target: one driver per target (`local` processes, `compose`).

pub mod compose;
pub mod jetstream;
pub mod local;

pub use local::{LocalState, LocalTarget};
