//! notif-infra: one topology file -> validated model -> desired state (configs, expected links,
//! probes) -> plan (diff against disk and live servers) -> apply (one rollout through a target
//! driver) -> verify. Each module owns one step; data flows only in that direction.

pub mod access;
pub mod apply;
pub mod backup;
pub mod client;
pub mod desired;
pub mod fsio;
pub mod graph;
pub mod identity;
pub mod jsapi;
pub mod material;
pub mod model;
pub mod monitor;
pub mod nats_server;
pub mod observed;
pub mod ops;
pub mod plan;
pub mod reach;
pub mod subject;
pub mod targets;
pub mod timings;
pub mod topology;
pub mod ui;
pub mod units;
pub mod verify;
