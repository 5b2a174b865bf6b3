//! notif-infra: one topology file -> validated model -> desired state (configs, expected links,
//! probes) -> plan (diff against disk and live servers) -> apply (a driver per target) -> verify.
//! Each module owns one step; data flows only in that direction.

pub mod apply;
pub mod auth;
pub mod client;
pub mod desired;
pub mod graph;
pub mod jsapi;
pub mod jwt;
pub mod model;
pub mod nats_server;
pub mod observed;
pub mod ops;
pub mod pki;
pub mod plan;
pub mod secrets;
pub mod ssh;
pub mod subject;
pub mod topology;
pub mod ui;
pub mod units;
pub mod verify;
pub mod wireguard;
