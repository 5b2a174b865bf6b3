//! Each stream (and bucket) the topology names: it exists, sits in its region, and has its
//! replicas with a leader and every follower current.

use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

use crate::desired::{Desired, JsObject, ObjectKind};
use crate::observed::jetstream::StreamPlacement;

#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    pub kind: ObjectKind,
    pub account: Option<String>,
    pub name: String,
    pub region: Option<String>,
    pub leader: Option<String>,
    pub replicas: usize,
    /// Replicas up to date: the leader and its current followers.
    pub current: usize,
    pub ok: bool,
    pub detail: String,
}

/// Judges a `STREAM.INFO` reply against the object.
pub fn judge(o: &JsObject, info: &Value) -> StreamReport {
    let cluster = &info["cluster"];
    let region = cluster["name"].as_str().map(str::to_string);
    let leader = cluster["leader"].as_str().filter(|l| !l.is_empty()).map(str::to_string);
    let followers = cluster["replicas"].as_array().cloned().unwrap_or_default();
    let lagging: Vec<String> = followers
        .iter()
        .filter(|r| r["current"] != true || r["offline"] == true)
        .map(|r| r["name"].as_str().unwrap_or("?").to_string())
        .collect();
    let replicas = followers.len() + usize::from(leader.is_some());
    let problem = if leader.is_none() {
        Some("no leader".to_string())
    } else if let Some(want) = o.region.as_ref().filter(|w| region.as_ref() != Some(*w)) {
        Some(format!("in region {}, placed in {want}", region.as_deref().unwrap_or("?")))
    } else if replicas != usize::from(o.replicas) {
        Some(format!("{replicas} replica(s), {} wanted", o.replicas))
    } else if !lagging.is_empty() {
        Some(format!("replica(s) not current: {}", lagging.join(", ")))
    } else {
        None
    };
    StreamReport {
        kind: o.kind,
        account: o.account.clone(),
        name: o.name.clone(),
        region,
        ok: problem.is_none(),
        detail: problem.unwrap_or_else(|| format!("R{replicas}, leader {}, all current", leader.as_deref().unwrap_or("?"))),
        current: replicas - lagging.len().min(replicas),
        leader,
        replicas,
    }
}

fn missing(o: &JsObject, detail: String) -> StreamReport {
    StreamReport {
        kind: o.kind,
        account: o.account.clone(),
        name: o.name.clone(),
        region: None,
        leader: None,
        replicas: 0,
        current: 0,
        ok: false,
        detail,
    }
}

/// Judges every stream-like object of the topology against where the live streams run; `Err`
/// (the servers could not be read) marks them all failed with that reason.
pub fn check_all(desired: &Desired, live: &Result<Vec<StreamPlacement>, String>) -> Vec<StreamReport> {
    let streams: HashMap<(&Option<String>, &str), &StreamPlacement> = match live {
        Ok(live) => live.iter().map(|l| ((&l.account, l.stream.as_str()), l)).collect(),
        Err(_) => HashMap::new(),
    };
    desired
        .jetstream
        .iter()
        .filter(|o| o.kind != ObjectKind::Consumer)
        .map(|o| match (live, streams.get(&(&o.account, o.stream.as_str()))) {
            (Err(e), _) => missing(o, e.clone()),
            (Ok(_), Some(l)) => judge(o, &serde_json::json!({ "cluster": l.cluster })),
            (Ok(_), None) => missing(o, "missing on the servers".into()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(region: Option<&str>, replicas: u8) -> JsObject {
        JsObject {
            kind: ObjectKind::Stream,
            account: None,
            name: "EVENTS".into(),
            stream: "EVENTS".into(),
            config: Default::default(),
            region: region.map(str::to_string),
            replicas,
            leaf_domain: None,
            server_defaults: Vec::new(),
        }
    }

    #[test]
    fn an_r3_stream_with_current_followers_in_its_region_is_ok() {
        let info = json!({"cluster": {"name": "east", "leader": "east-1", "replicas": [
            {"name": "east-2", "current": true}, {"name": "east-3", "current": true}]}});
        assert!(judge(&object(Some("east"), 3), &info).ok);
    }

    #[test]
    fn lagging_misplaced_or_short_streams_are_named() {
        let lag = json!({"cluster": {"name": "east", "leader": "east-1", "replicas": [
            {"name": "east-2", "current": false}, {"name": "east-3", "current": true}]}});
        assert_eq!(judge(&object(None, 3), &lag).detail, "replica(s) not current: east-2");
        let elsewhere = json!({"cluster": {"name": "west", "leader": "west-1"}});
        assert!(judge(&object(Some("east"), 1), &elsewhere).detail.contains("placed in east"));
        let short = json!({"cluster": {"name": "east", "leader": "east-1"}});
        assert_eq!(judge(&object(None, 3), &short).detail, "1 replica(s), 3 wanted");
        assert_eq!(judge(&object(None, 1), &json!({"cluster": {}})).detail, "no leader");
    }
}
