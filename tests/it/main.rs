//! Integration tests: the built binary against real nats-server processes.

mod bad_topologies;
mod local_cluster;
mod rendering;
mod seed_topologies;
mod support;
