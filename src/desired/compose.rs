//! Docker Compose for one host (the development layout of the covenant and MCP seeds): a service
//! per server on one network, reachable under the host name its peers dial, its config mounted
//! read-only, a named volume for its JetStream store, the client and monitoring ports published
//! without clashes, and the environment variables its config reads passed through.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Desired, RenderedFile, ServerSpec};

pub const COMPOSE_FILE: &str = "compose/docker-compose.yml";
/// The official image of the nats-server version notif-infra is tested with; `NATS_IMAGE`
/// overrides it when the project runs.
pub const DEFAULT_IMAGE: &str = "nats:2.15.1";
/// Where the mounted config sits in the container.
const CONF_IN_CONTAINER: &str = "/etc/nats/nats-server.conf";
const NETWORK: &str = "nats";

#[derive(Serialize)]
struct Project {
    name: String,
    services: BTreeMap<String, Service>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    volumes: BTreeMap<String, Volume>,
    networks: BTreeMap<String, Network>,
}

#[derive(Serialize)]
struct Service {
    image: String,
    command: Vec<String>,
    hostname: String,
    volumes: Vec<String>,
    ports: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    environment: Vec<String>,
    networks: BTreeMap<String, NetworkAttachment>,
    restart: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_grace_period: Option<String>,
}

#[derive(Serialize)]
struct NetworkAttachment {
    aliases: Vec<String>,
}

#[derive(Serialize, Default)]
struct Volume {}

#[derive(Serialize, Default)]
struct Network {}

/// The host name peers dial a server by: the host of its client URL.
fn dialled_host(s: &ServerSpec) -> &str {
    let rest = s.client_url.split("://").nth(1).unwrap_or(&s.client_url);
    rest.rsplit_once(':').map(|(host, _)| host).unwrap_or(rest)
}

/// Whole seconds of a duration as the server config writes it (`30s`, `1m30s`, `2h`).
fn seconds(duration: &str) -> u64 {
    crate::units::parse_duration(duration).map(|d| d.as_secs()).unwrap_or(0)
}

/// Host ports for one listener kind: the servers' own ports when they differ, otherwise each
/// server's port plus its position, so that one host can publish them all.
fn published(servers: &[ServerSpec], port: impl Fn(&ServerSpec) -> u16) -> Vec<u16> {
    let ports: Vec<u16> = servers.iter().map(&port).collect();
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() == ports.len() {
        ports
    } else {
        ports.iter().zip(0u16..).map(|(p, i)| p + i).collect()
    }
}

/// The compose project, or `None` when a server is dialled by IP address: that is a multi-host
/// layout (one host per address), which one compose project on one host cannot reproduce.
pub fn compose_file(desired: &Desired, env_vars: &[String]) -> Option<RenderedFile> {
    if desired.servers.iter().any(|s| dialled_host(s).parse::<std::net::IpAddr>().is_ok()) {
        return None;
    }
    let client = published(&desired.servers, |s| s.endpoint_ports.client);
    let monitor = published(&desired.servers, |s| s.endpoint_ports.monitor);
    let mut services = BTreeMap::new();
    let mut volumes = BTreeMap::new();
    for (i, s) in desired.servers.iter().enumerate() {
        let mut mounts = vec![format!("../nats/{}.conf:{CONF_IN_CONTAINER}:ro", s.name)];
        if let Some(js) = &s.conf.jetstream {
            let volume = format!("{}-data", s.name);
            mounts.push(format!("{volume}:{}", js.store_dir));
            volumes.insert(volume, Volume::default());
        }
        let host = dialled_host(s).to_string();
        // Lame duck mode (SIGUSR2) hands clients over before the server exits; compose then
        // waits that long plus a margin before it kills.
        let (stop_signal, stop_grace_period) = match &s.conf.lame_duck_duration {
            Some(duration) => (Some("SIGUSR2".to_string()), Some(format!("{}s", seconds(duration) + 10))),
            None => (None, None),
        };
        services.insert(
            s.name.clone(),
            Service {
                image: format!("${{NATS_IMAGE:-{DEFAULT_IMAGE}}}"),
                command: vec!["-c".into(), CONF_IN_CONTAINER.into()],
                hostname: host.clone(),
                volumes: mounts,
                ports: vec![
                    format!("{}:{}", client[i], s.endpoint_ports.client),
                    format!("{}:{}", monitor[i], s.endpoint_ports.monitor),
                ],
                environment: env_vars.to_vec(),
                networks: BTreeMap::from([(NETWORK.to_string(), NetworkAttachment { aliases: vec![host] })]),
                restart: "unless-stopped".into(),
                stop_signal,
                stop_grace_period,
            },
        );
    }
    let project = Project {
        name: desired.name.clone(),
        services,
        volumes,
        networks: BTreeMap::from([(NETWORK.to_string(), Network::default())]),
    };
    let body = serde_saphyr::to_string(&project).expect("the compose project serializes");
    Some(RenderedFile {
        path: PathBuf::from(COMPOSE_FILE),
        content: format!(
            "# Rendered by notif-infra from topology `{}`: `docker compose -f {COMPOSE_FILE} up -d` from the output directory.\n{body}",
            desired.name
        ),
        secret: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{Addressing, build};
    use crate::topology::{Source, parse};

    fn desired(yaml: &str) -> Desired {
        let t = parse(Source {
            path: "t.yaml".into(),
            text: yaml.into(),
        })
        .unwrap()
        .topology;
        build(&t, &Addressing::Declared, &Default::default())
    }

    #[test]
    fn shared_ports_are_offset_and_distinct_ports_kept() {
        let same = desired("name: t\nregions:\n  main:\n    nodes: 3\n");
        assert_eq!(published(&same.servers, |s| s.endpoint_ports.client), vec![4222, 4223, 4224]);
        let distinct = desired(
            "name: t\nregions:\n  main:\n    nodes:\n      - { name: a, ports: { client: 5000 } }\n      - { name: b, ports: { client: 5001 } }\n      - { name: c, ports: { client: 4000 } }\n",
        );
        assert_eq!(published(&distinct.servers, |s| s.endpoint_ports.client), vec![5000, 5001, 4000]);
    }

    #[test]
    fn servers_dialled_by_address_get_no_single_host_project() {
        let by_name = desired("name: t\nregions:\n  main:\n    nodes:\n      - { name: a, host: nats-a.example }\n");
        assert_eq!(dialled_host(&by_name.servers[0]), "nats-a.example");
        assert!(compose_file(&by_name, &[]).is_some());
        let by_ip = desired("name: t\nregions:\n  main:\n    nodes:\n      - { name: a, host: 10.0.1.1 }\n");
        assert!(compose_file(&by_ip, &[]).is_none());
    }
}
