//! Docker Compose for one host (the development layout of the covenant and MCP seeds): a service
//! per server on one network, reachable under the host name its peers dial, the configs mounted
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
/// Where the configs directory is mounted in the containers. The directory, not the file: apply
/// replaces a config by renaming a new file over it, which a file mount would not show.
const CONFS_IN_CONTAINER: &str = "/etc/nats/servers";
const NETWORK: &str = "nats";

#[derive(Serialize)]
struct Project {
    name: String,
    services: BTreeMap<String, Service>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    volumes: BTreeMap<String, Volume>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    networks: BTreeMap<String, Network>,
}

#[derive(Serialize)]
struct Service {
    image: String,
    command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_mode: Option<String>,
    volumes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ports: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    environment: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
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

/// Which host ports a project publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// The servers' own ports (offset where they clash), on every interface: a development host.
    Declared,
    /// The ports notif-infra reaches the servers by, on 127.0.0.1 only (the compose target).
    Loopback,
}

/// The compose project, or `None` when a server is dialled by IP address: that is a multi-host
/// layout (one host per address), which one compose project on one host cannot reproduce.
/// Certificates and credentials the configs name under `config_dir` are mounted from the
/// output tree at the same paths.
pub fn compose_file(desired: &Desired, env_vars: &[String], publish: Publish, config_dir: &str) -> Option<RenderedFile> {
    if desired.servers.iter().any(|s| s.host.as_str().parse::<std::net::IpAddr>().is_ok()) {
        return None;
    }
    let (client, monitor) = match publish {
        Publish::Declared => (
            published(&desired.servers, |s| s.endpoint_ports.client),
            published(&desired.servers, |s| s.endpoint_ports.monitor),
        ),
        Publish::Loopback => (
            desired.servers.iter().map(|s| s.reach_ports.client).collect(),
            desired.servers.iter().map(|s| s.reach_ports.monitor).collect(),
        ),
    };
    let bind = if publish == Publish::Loopback { "127.0.0.1:" } else { "" };
    let mut services = BTreeMap::new();
    let mut volumes = BTreeMap::new();
    for (i, s) in desired.servers.iter().enumerate() {
        let host = s.host.clone();
        let service = Service {
            hostname: Some(host.clone()),
            ports: vec![
                format!("{bind}{}:{}", client[i], s.endpoint_ports.client),
                format!("{bind}{}:{}", monitor[i], s.endpoint_ports.monitor),
            ],
            networks: BTreeMap::from([(NETWORK.to_string(), NetworkAttachment { aliases: vec![host] })]),
            ..service(s, &desired.compose_image, env_vars, "..", config_dir, &mut volumes)
        };
        services.insert(s.name.clone(), service);
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

/// A server's service: its config from the mounted configs directory, exactly the certificate
/// and credential files its config names (never the CA key or other servers' keys), a named
/// volume for its JetStream store, the password variables, and lame duck on stop. `tree` is
/// the output tree relative to the project directory.
fn service(
    s: &ServerSpec,
    image: &str,
    env_vars: &[String],
    tree: &str,
    config_dir: &str,
    volumes: &mut BTreeMap<String, Volume>,
) -> Service {
    let mut mounts = vec![format!("{tree}/nats:{CONFS_IN_CONTAINER}:ro")];
    mounts.extend(s.conf.referenced_files().into_iter().filter_map(|f| {
        let inside = f.strip_prefix(config_dir)?;
        Some(format!("{tree}{inside}:{f}:ro"))
    }));
    if let Some(js) = &s.conf.jetstream {
        let volume = format!("{}-data", s.name);
        mounts.push(format!("{volume}:{}", js.store_dir));
        volumes.insert(volume, Volume::default());
    }
    // Lame duck mode (SIGUSR2) hands clients over before the server exits; compose then
    // waits that long plus a margin before it kills.
    let (stop_signal, stop_grace_period) = match &s.conf.lame_duck_duration {
        Some(duration) => (Some("SIGUSR2".to_string()), Some(format!("{}s", seconds(duration) + 10))),
        None => (None, None),
    };
    Service {
        image: format!("${{NATS_IMAGE:-{image}}}"),
        command: vec!["-c".into(), format!("{CONFS_IN_CONTAINER}/{}.conf", s.name)],
        hostname: None,
        network_mode: None,
        volumes: mounts,
        ports: Vec::new(),
        environment: env_vars.to_vec(),
        networks: BTreeMap::new(),
        restart: "unless-stopped".into(),
        stop_signal,
        stop_grace_period,
    }
}

/// For a multi-host layout (servers dialled by IP address, as over a WireGuard mesh), one
/// project per host, `compose/<server>/`: its server on the host's network (so it listens on
/// the host's own and VPN addresses), and a `.env` naming the image and the variables to set.
pub fn host_projects(desired: &Desired, env_vars: &[String], config_dir: &str) -> Vec<RenderedFile> {
    if !desired.servers.iter().any(|s| s.host.parse::<std::net::IpAddr>().is_ok()) {
        return Vec::new();
    }
    let mut files = Vec::new();
    for s in &desired.servers {
        let mut volumes = BTreeMap::new();
        let service = Service {
            network_mode: Some("host".into()),
            ..service(s, &desired.compose_image, env_vars, "../..", config_dir, &mut volumes)
        };
        let project = Project {
            name: format!("{}-{}", desired.name, s.name).to_lowercase(),
            services: BTreeMap::from([(s.name.clone(), service)]),
            volumes,
            networks: BTreeMap::new(),
        };
        let body = serde_saphyr::to_string(&project).expect("the compose project serializes");
        let dir = PathBuf::from("compose").join(&s.name);
        files.push(RenderedFile {
            path: dir.join("docker-compose.yml"),
            content: format!(
                "# Rendered by notif-infra from topology `{}` for host {} ({}): `docker compose up -d` in this directory on that host.\n{body}",
                desired.name, s.name, s.host
            ),
            secret: false,
        });
        let mut env = format!(
            "# Read by docker compose for the project in this directory.\nNATS_IMAGE={}\n",
            desired.compose_image
        );
        for var in env_vars {
            env += &format!("# {var} must be set in the environment of `docker compose` (the server's config reads it)\n");
        }
        files.push(RenderedFile {
            path: dir.join(".env"),
            content: env,
            secret: false,
        });
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{Addressing, build, build_declared as desired};
    use crate::topology::{Source, parse};

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
        let project = compose_file(&by_name, &[], Publish::Declared, "/etc/nats").unwrap();
        assert!(project.content.contains("hostname: nats-a.example"), "{}", project.content);
        let by_ip = desired("name: t\nregions:\n  main:\n    nodes:\n      - { name: a, host: 10.0.1.1 }\n");
        assert!(compose_file(&by_ip, &[], Publish::Declared, "/etc/nats").is_none());
    }

    #[test]
    fn the_compose_target_publishes_its_slot_ports_on_loopback_only() {
        let t = parse(Source {
            path: "t.yaml".into(),
            text: "name: t\nregions:\n  main:\n    nodes: 2\n".into(),
        })
        .unwrap()
        .topology;
        let addressing = Addressing::Compose {
            port_base: 30000,
            port_stride: 5,
            slots: [("main-1".to_string(), 0), ("main-2".to_string(), 1)].into(),
            state_dir: "/state".into(),
        };
        let material = crate::desired::Material {
            keys: &Default::default(),
            certs: &Default::default(),
            issued: None,
            tree: std::path::Path::new("/state"),
        };
        let d = build(&t, &addressing, &material);
        assert_eq!(d.servers[1].client_url, "nats://127.0.0.1:30005");
        let project = compose_file(&d, &[], Publish::Loopback, "/state").unwrap().content;
        assert!(project.contains("- 127.0.0.1:30005:4222"), "{project}");
        assert!(project.contains("- 127.0.0.1:30009:8222"), "{project}");
    }

    #[test]
    fn the_topologys_image_is_the_default_that_nats_image_overrides() {
        let default = compose_file(
            &desired("name: t\nregions:\n  main:\n    nodes: 1\n"),
            &[],
            Publish::Declared,
            "/etc/nats",
        )
        .unwrap();
        assert!(
            default.content.contains(&format!("image: ${{NATS_IMAGE:-{DEFAULT_IMAGE}}}")),
            "{}",
            default.content
        );
        let named = desired("name: t\ncompose: { image: \"nats:2.10.0-alpine\" }\nregions:\n  main:\n    nodes: 1\n");
        let project = compose_file(&named, &[], Publish::Declared, "/etc/nats").unwrap();
        assert!(
            project.content.contains("image: ${NATS_IMAGE:-nats:2.10.0-alpine}"),
            "{}",
            project.content
        );
    }
}
