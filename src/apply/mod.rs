//! Carrying out a plan on a target: the one rollout, the cluster steps and JetStream objects
//! it ends with, and what keeps a deployment whole while it runs (the lock, interrupts).

pub mod cluster;
pub mod interrupt;
pub mod jetstream;
pub mod lock;
pub mod replicas;
pub mod rollout;
