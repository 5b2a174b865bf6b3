//! Desired state -> file contents, through the templates in `templates/` (compiled into the
//! binary so it runs from anywhere). Output is byte-for-byte deterministic.

use std::path::PathBuf;
use std::sync::OnceLock;

use super::Desired;

const SERVER_CONF: &str = "nats-server.conf";

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
        t
    })
}

/// A string literal nats-server reads back exactly (its config grammar accepts JSON strings).
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// Renders every server's config as `nats/<server>.conf`, then the credential files.
pub fn render_files(desired: &Desired) -> Result<Vec<RenderedFile>, tera::Error> {
    let mut files = desired
        .servers
        .iter()
        .map(|s| {
            let mut ctx = tera::Context::new();
            ctx.insert("conf", &s.conf);
            ctx.insert("topology", &desired.name);
            let mut content = templates().render(SERVER_CONF, &ctx)?;
            content.push('\n');
            Ok(RenderedFile {
                path: PathBuf::from("nats").join(format!("{}.conf", s.name)),
                content,
                secret: s.conf.holds_secret(),
            })
        })
        .collect::<Result<Vec<_>, tera::Error>>()?;
    files.extend(desired.auth_files.iter().cloned());
    Ok(files)
}
