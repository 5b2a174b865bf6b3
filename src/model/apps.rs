//! Applications: a user of an account, where it connects, and what it does there (publish,
//! subscribe, request, serve, read consumers, use KV buckets). Every subject an application
//! needs follows from that use, so its user's permissions can be derived instead of written.

use super::{Loc, Pattern, Site};

#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    /// Both `None` only in a topology without accounts (nothing to derive then).
    pub account: Option<String>,
    pub user: Option<String>,
    pub at: Site,
    /// The prefix of its reply subjects (`_INBOX` unless it says otherwise).
    pub inbox: String,
    pub publish: Vec<Pattern>,
    pub subscribe: Vec<Pattern>,
    pub requests: Vec<Pattern>,
    pub serves: Vec<Pattern>,
    /// `(stream, durable)` of each consumer it reads.
    pub consumers: Vec<ConsumerUse>,
    pub kv: Vec<BucketUse>,
    pub object_stores: Vec<BucketUse>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerUse {
    pub stream: String,
    pub durable: String,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketUse {
    pub bucket: String,
    pub write: bool,
    pub loc: Loc,
}

impl App {
    /// `app `name` (ACCOUNT/user)`, for reports.
    pub fn who(&self) -> String {
        match (&self.account, &self.user) {
            (Some(a), Some(u)) => format!("app `{}` ({a}/{u})", self.name),
            _ => format!("app `{}`", self.name),
        }
    }

    pub fn reads(&self, stream: &str, durable: &str) -> bool {
        self.consumers.iter().any(|c| c.stream == stream && c.durable == durable)
    }
}

/// The default prefix of reply subjects, as every NATS client names it.
pub const DEFAULT_INBOX: &str = "_INBOX";
