//! Declared traffic: messages the system must carry to streams, consumers and subscribers, and
//! places they must never reach. Names are resolved: every user, site, stream and consumer exists.

use super::Loc;

/// Where a client connects: a server of a region (any of its nodes) or a leafnode server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Site {
    Region(String),
    Leafnode(String),
}

impl Site {
    pub fn name(&self) -> &str {
        match self {
            Site::Region(n) | Site::Leafnode(n) => n,
        }
    }
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Site::Region(n) => write!(f, "region `{n}`"),
            Site::Leafnode(n) => write!(f, "leafnode `{n}`"),
        }
    }
}

/// A client of a flow: a user of an account (`None` in a topology without accounts) at a site,
/// publishing on or subscribed to `subject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub account: Option<String>,
    pub user: Option<String>,
    pub at: Site,
    pub subject: String,
    pub loc: Loc,
}

impl Endpoint {
    /// `ACCOUNT/user`, `user` or `(no user)` for reports.
    pub fn who(&self) -> String {
        match (&self.account, &self.user) {
            (Some(a), Some(u)) => format!("{a}/{u}"),
            (None, Some(u)) => u.clone(),
            _ => "(no user)".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowTarget {
    /// The stream stores the message.
    Stream { name: String, loc: Loc },
    /// The consumer of `stream` has the message pending; with `reader`, that application reads
    /// and acknowledges it (`never`: cannot read it).
    Consumer {
        stream: String,
        name: String,
        reader: Option<String>,
        loc: Loc,
    },
    /// The subscriber receives the message.
    Subscriber(Endpoint),
}

impl FlowTarget {
    pub fn loc(&self) -> Loc {
        match self {
            FlowTarget::Stream { loc, .. } | FlowTarget::Consumer { loc, .. } => *loc,
            FlowTarget::Subscriber(e) => e.loc,
        }
    }
}

impl std::fmt::Display for FlowTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            FlowTarget::Stream { name, .. } => write!(f, "stream {name}"),
            FlowTarget::Consumer {
                stream,
                name,
                reader: Some(app),
                ..
            } => write!(f, "consumer {stream}/{name} read by {app}"),
            FlowTarget::Consumer { stream, name, .. } => write!(f, "consumer {stream}/{name}"),
            FlowTarget::Subscriber(e) => write!(f, "subscriber {} at {} on {}", e.who(), e.at.name(), e.subject),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Flow {
    pub name: String,
    pub publish: Endpoint,
    pub reaches: Vec<FlowTarget>,
    pub never: Vec<FlowTarget>,
    /// The sites the message must pass through, in the order written.
    pub via: Vec<Site>,
    pub loc: Loc,
}
