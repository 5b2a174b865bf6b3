//! Desired state -> file contents, through the templates in `templates/` (compiled into the
//! binary so it runs from anywhere). Output is byte-for-byte deterministic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::{Desired, ServerSpec, SharedBlock};

/// The configs' directory in the output tree; the shared files sit beside them.
const CONFIG_DIR: &str = "nats";

const SERVER_CONF: &str = "nats-server.conf";
const ACCOUNTS: &str = "accounts.conf";
const GATEWAYS: &str = "gateways.conf";

/// A file to write under the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Relative to the output directory.
    pub path: PathBuf,
    pub content: String,
    /// Written 0600 and never shown in clear.
    pub secret: bool,
}

fn templates() -> &'static tera::Tera {
    static TERA: OnceLock<tera::Tera> = OnceLock::new();
    TERA.get_or_init(|| {
        let mut t = tera::Tera::new();
        t.register_filter("q", |s: &str, _: tera::Kwargs, _: &tera::State| quote(s));
        t.register_filter("qlist", |v: Vec<String>, _: tera::Kwargs, _: &tera::State| {
            format!("[{}]", v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", "))
        });
        t.register_filter("tls", |v: tera::Value, _: tera::Kwargs, _: &tera::State| {
            let conf: super::TlsConf = serde_json::to_value(&v)
                .and_then(serde_json::from_value)
                .map_err(|e| tera::Error::message(format!("not a TLS block: {e}")))?;
            Ok::<_, tera::Error>(conf.block())
        });
        t.add_raw_template(SERVER_CONF, include_str!("../../templates/nats-server.conf.tera"))
            .expect("the built-in nats-server template parses");
        t.add_raw_template(ACCOUNTS, include_str!("../../templates/accounts.conf.tera"))
            .expect("the built-in accounts template parses");
        t.add_raw_template(GATEWAYS, include_str!("../../templates/gateways.conf.tera"))
            .expect("the built-in gateways template parses");
        t
    })
}

/// A string literal nats-server reads back exactly (its config grammar accepts JSON strings).
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// Renders every server's config as `nats/<server>.conf`, the blocks they share as
/// `nats/<file>`, then the credential files.
pub fn render_files(desired: &Desired) -> Result<Vec<RenderedFile>, tera::Error> {
    let mut files = Vec::with_capacity(desired.servers.len() + desired.shared.len() + desired.auth_files.len());
    for s in &desired.servers {
        // What comes from a shared file is not handed to the template: each config is
        // rendered from its own settings only.
        let mut own = s.conf.clone();
        let accounts_block = match &own.accounts_file {
            Some(_) => String::new(),
            None if own.accounts.is_empty() => String::new(),
            None => accounts_block(&own.accounts)?,
        };
        own.accounts = Default::default();
        if let Some(g) = &mut own.gateway {
            g.gateways = Default::default();
        }
        if let Some(o) = own.operator.as_mut().filter(|o| o.preload_file.is_some()) {
            o.preload = Default::default();
        }
        let mut ctx = tera::Context::new();
        ctx.insert("conf", &own);
        ctx.insert("topology", &desired.name);
        ctx.insert("accounts_block", &accounts_block);
        let mut content = templates().render(SERVER_CONF, &ctx)?;
        content.push('\n');
        // The renderer's buffer is sized for any config; thousands of them are kept.
        content.shrink_to_fit();
        files.push(RenderedFile {
            path: config_path(&s.name),
            content,
            secret: s.conf.holds_secret(),
        });
    }
    for block in &desired.shared {
        let (what, body) = match block {
            SharedBlock::Accounts { accounts, .. } => ("The accounts every node holds", accounts_block(accounts)?),
            SharedBlock::Preload { accounts, .. } => (
                "Every account's JWT, preloaded by the memory resolvers",
                accounts
                    .iter()
                    .map(|a| format!("{}: {}", a.public_key, quote(&a.jwt)))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            SharedBlock::Gateways { remotes, .. } => {
                let mut ctx = tera::Context::new();
                ctx.insert("gateways", remotes.as_ref());
                ("Gateway seeds", templates().render(GATEWAYS, &ctx)?.trim_end().to_string())
            }
        };
        files.push(RenderedFile {
            path: shared_path(block.file()),
            content: format!(
                "# {what}, included by the configs beside this file; rendered by notif-infra from topology `{}`.\n{body}\n",
                desired.name
            ),
            secret: false,
        });
    }
    files.extend(desired.auth_files.iter().cloned());
    Ok(files)
}

fn accounts_block(accounts: &[super::AccountConf]) -> Result<String, tera::Error> {
    let mut ctx = tera::Context::new();
    ctx.insert("accounts", accounts);
    Ok(templates().render(ACCOUNTS, &ctx)?.trim_end().to_string())
}

/// Where a server's config is written, relative to the output directory.
pub fn config_path(server: &str) -> PathBuf {
    Path::new(CONFIG_DIR).join(format!("{server}.conf"))
}

/// Where a shared file is written: beside the configs that include it.
fn shared_path(file: &str) -> PathBuf {
    Path::new(CONFIG_DIR).join(file)
}

/// What a server reads its config from, as rendered paths: its config, then the shared files
/// it includes (every one of them must be where the config is).
pub fn config_files(server: &ServerSpec) -> Vec<PathBuf> {
    std::iter::once(config_path(&server.name))
        .chain(server.conf.included_files().map(shared_path))
        .collect()
}

/// Each server's config as nats-server reads it, its includes written out: what
/// `nats-server -t` is given where the shared files are not in place yet. nats-server reads an
/// include as if its text stood there, so the digest is the one the deployed config gets.
pub struct SelfContained {
    configs: BTreeMap<String, String>,
    shared: BTreeMap<String, String>,
}

impl SelfContained {
    pub fn new(desired: &Desired, rendered: &[RenderedFile]) -> Self {
        let by_path: BTreeMap<&Path, &str> = rendered.iter().map(|f| (f.path.as_path(), f.content.as_str())).collect();
        let configs = desired
            .servers
            .iter()
            .filter_map(|s| Some((s.name.clone(), by_path.get(config_path(&s.name).as_path())?.to_string())))
            .collect();
        let shared = desired
            .shared
            .iter()
            .filter_map(|b| {
                let content = by_path.get(shared_path(b.file()).as_path())?;
                Some((b.file().to_string(), content.to_string()))
            })
            .collect();
        SelfContained { configs, shared }
    }

    /// `server`'s config with each `include "<shared file>"` line replaced by that file.
    pub fn config(&self, server: &str) -> Option<String> {
        let conf = self.configs.get(server)?;
        let mut out = String::with_capacity(conf.len());
        for line in conf.lines() {
            let included = line
                .trim()
                .strip_prefix("include ")
                .and_then(|f| serde_json::from_str::<String>(f).ok())
                .and_then(|f| self.shared.get(&f));
            out.push_str(included.map(String::as_str).unwrap_or(line));
            out.push('\n');
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_contained_config_holds_what_its_config_includes() {
        let desired = crate::desired::build_declared(
            "name: t\nregions:\n  east:\n    nodes: 2\n  west:\n    nodes: 2\naccounts:\n  APP:\n    users:\n      - user: app\n        password: ${APP_PASS}\n",
        );
        let rendered = render_files(&desired).unwrap();
        let own = &rendered.iter().find(|f| f.path == config_path("east-1")).unwrap().content;
        assert!(
            own.contains("include \"_gateways-0.conf\"") && own.contains("include \"_accounts.conf\""),
            "{own}"
        );
        assert!(!own.contains("user: \"app\""), "{own}");

        let whole = SelfContained::new(&desired, &rendered).config("east-1").unwrap();
        assert!(!whole.contains("include "), "{whole}");
        assert!(
            whole.contains("{ name: \"west\", urls: [\"nats://west-1:7222\", \"nats://west-2:7222\"] }"),
            "{whole}"
        );
        assert!(whole.contains("user: \"app\"") && whole.contains("password: $APP_PASS"), "{whole}");
    }
}
