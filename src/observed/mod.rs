//! Every read of the world: files on disk, server processes, live servers' monitoring endpoints.

pub mod files;
pub mod jetstream;
pub mod monitor;
pub mod process;

pub use monitor::{LeafConnection, MetaCluster, Monitor, NodeObservation, ServerFigures};
