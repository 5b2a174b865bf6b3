//! The `monitoring:` section: where `monitor` listens, how often it looks, and the alert
//! thresholds, each consumer it names declared in the topology.

use super::{Validator, loc};
use crate::model::*;
use crate::topology::diagnostic::{Diagnostic, did_you_mean};
use crate::topology::schema::*;

impl Validator {
    pub(super) fn monitoring(&mut self, file: &TopologyFile, topology: &Topology) -> Monitoring {
        let mut m = Monitoring::default();
        let Some(spec) = file.monitoring.as_ref().map(|s| &s.value) else {
            return m;
        };
        if let Some(listen) = &spec.listen {
            match listen.value.parse() {
                Ok(addr) => m.listen = addr,
                Err(_) => self.error(
                    Diagnostic::error(format!("`{}` is not an address to listen on", listen.value))
                        .at(loc(listen))
                        .help("write IP:PORT, e.g. `127.0.0.1:7777`"),
                ),
            }
        }
        for (field, value, target) in [
            ("interval", &spec.interval, &mut m.interval),
            ("alert_after", &spec.alert_after, &mut m.alert_after),
        ] {
            if let Some(v) = value {
                let d = self.duration(v);
                if d < std::time::Duration::from_secs(1) {
                    self.error(
                        Diagnostic::error(format!("`monitoring.{field}` of {} is shorter than a second", v.value.0))
                            .at(loc(v))
                            .help("Prometheus scrapes and evaluates rules in whole seconds at best"),
                    );
                } else {
                    *target = d;
                }
            }
        }
        if let Some(p) = &spec.store_full_percent {
            if p.value == 0 || p.value > 100 {
                self.error(Diagnostic::error(format!("`store_full_percent: {}` is not a percentage from 1 to 100", p.value)).at(loc(p)));
            } else {
                m.store_full_percent = p.value;
            }
        }
        if let Some(n) = &spec.consumer_pending {
            m.consumer_pending = n.value;
        }
        let declared: Vec<String> = topology
            .jetstream
            .consumers
            .iter()
            .map(|c| format!("{}/{}", c.stream, c.name))
            .collect();
        for (key, threshold) in &spec.consumers {
            match key.value.split_once('/') {
                Some((stream, durable)) if declared.contains(&key.value) => {
                    m.consumer_thresholds
                        .insert((stream.to_string(), durable.to_string()), threshold.value);
                }
                _ => {
                    let mut d = Diagnostic::error(format!("`{}` is not a consumer of this topology", key.value))
                        .at(loc(key))
                        .object("monitoring.consumers");
                    d = match did_you_mean(&key.value, declared.iter().map(String::as_str)) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help("name a declared consumer as `STREAM/durable`"),
                    };
                    self.error(d);
                }
            }
        }
        m
    }
}
