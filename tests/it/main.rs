//! Integration tests: the built binary against real nats-server processes.

mod bad_topologies;
mod compose;
mod day2;
mod graph;
mod jetstream;
mod local_cluster;
mod rendering;
mod seed_topologies;
mod support;
