//! Carrying out a plan on a target: one driver per target (`local` for now).

pub mod jetstream;
pub mod local;

pub use local::{LocalState, LocalTarget};
