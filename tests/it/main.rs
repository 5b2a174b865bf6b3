//! Integration tests: the built binary against real nats-server processes.

mod ansible;
mod apps;
mod backup;
mod bad_topologies;
mod compose;
mod day2;
mod domains;
mod engine;
mod gossip;
mod graph;
mod jetstream;
mod kubernetes;
mod load;
mod local_cluster;
mod monitor;
mod netns;
mod rendering;
mod rollout;
mod security;
mod seed_topologies;
mod ssh;
mod ssh_hosts;
mod support;
mod terraform;
mod upgrade;
mod wireguard;
