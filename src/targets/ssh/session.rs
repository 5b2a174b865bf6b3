//! SSH sessions to the hosts of the ssh target (russh: async, pure Rust): host keys checked
//! against known_hosts, public-key login from a key file or the SSH agent, commands with the
//! host's environment, and files written through SFTP.

use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate, known_hosts};
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

use crate::model::SshHost;

/// Connection attempts before a host is reported unreachable.
const CONNECT_ATTEMPTS: u32 = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a command on a host may run (stopping a server in lame duck mode included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error(
        "host {host} ({address}) is not in `{known_hosts}` (its key is {fingerprint}); check the fingerprint and accept it with --accept-new-host-keys"
    )]
    UnknownHostKey {
        host: String,
        address: String,
        known_hosts: String,
        fingerprint: String,
    },
    #[error(
        "the key of host {host} ({address}) does not match line {line} of `{known_hosts}`: the host was replaced, or someone is in the middle; if the host was really reinstalled, remove that line"
    )]
    ChangedHostKey {
        host: String,
        address: String,
        known_hosts: String,
        line: usize,
    },
    #[error("host {host} ({address}) is unreachable after {attempts} attempts: {reason}")]
    Unreachable {
        host: String,
        address: String,
        attempts: u32,
        reason: String,
    },
    #[error("host {host} refused the login of `{user}` with {method}")]
    LoginRefused { host: String, user: String, method: String },
    #[error("host {host}: {message}")]
    Session { host: String, message: String },
}

/// How host keys are trusted.
#[derive(Debug, Clone)]
pub struct HostKeyPolicy {
    /// Record the key of a host not yet in known_hosts (never a changed one).
    pub accept_new: bool,
}

/// What the host key check decided, kept for the error after the handshake is refused.
#[derive(Debug, Clone)]
enum KeyVerdict {
    Unknown(String),
    Changed(usize),
    Unreadable(String),
}

struct Checker {
    address: String,
    port: u16,
    known_hosts: PathBuf,
    accept_new: bool,
    verdict: Arc<Mutex<Option<KeyVerdict>>>,
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(&mut self, offered: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let key = &offered.public_key();
        let verdict = match known_hosts::check_known_hosts_path(&self.address, self.port, key, &self.known_hosts) {
            Ok(true) => return Ok(true),
            Ok(false) if self.accept_new => {
                return match known_hosts::learn_known_hosts_path(&self.address, self.port, key, &self.known_hosts) {
                    Ok(()) => Ok(true),
                    Err(e) => {
                        *self.verdict.lock().expect("verdict lock") = Some(KeyVerdict::Unreadable(e.to_string()));
                        Ok(false)
                    }
                };
            }
            Ok(false) => KeyVerdict::Unknown(key.fingerprint(Default::default()).to_string()),
            Err(russh::keys::Error::KeyChanged { line }) => KeyVerdict::Changed(line),
            Err(e) => KeyVerdict::Unreadable(e.to_string()),
        };
        *self.verdict.lock().expect("verdict lock") = Some(verdict);
        Ok(false)
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Default)]
pub struct Output {
    pub status: u32,
    pub stdout: String,
    pub stderr: String,
}

/// A logged-in session to one host.
pub struct Session {
    /// The server name the host runs, for messages.
    pub host: String,
    handle: client::Handle<Checker>,
    env: Vec<(String, String)>,
}

fn known_hosts_path(host: &SshHost) -> PathBuf {
    match &host.known_hosts {
        Some(path) => expand_home(path),
        None => expand_home("~/.ssh/known_hosts"),
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// A word the remote shell reads back unchanged.
pub fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

impl Session {
    /// Logs in to `host` (server `name`), retrying a connection that fails; host key and login
    /// refusals are not retried.
    pub async fn connect(name: &str, host: &SshHost, policy: &HostKeyPolicy) -> Result<Session, SshError> {
        let mut last = String::new();
        for attempt in 1..=CONNECT_ATTEMPTS {
            match Self::connect_once(name, host, policy).await {
                Ok(session) => return Ok(session),
                Err(SshError::Unreachable { reason, .. }) => last = reason,
                Err(e) => return Err(e),
            }
            if attempt < CONNECT_ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
        }
        Err(SshError::Unreachable {
            host: name.into(),
            address: format!("{}:{}", host.address, host.port),
            attempts: CONNECT_ATTEMPTS,
            reason: last,
        })
    }

    async fn connect_once(name: &str, host: &SshHost, policy: &HostKeyPolicy) -> Result<Session, SshError> {
        let known_hosts = known_hosts_path(host);
        let verdict = Arc::new(Mutex::new(None));
        let checker = Checker {
            address: host.address.clone(),
            port: host.port,
            known_hosts: known_hosts.clone(),
            accept_new: policy.accept_new,
            verdict: verdict.clone(),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(Duration::from_secs(120)),
            keepalive_interval: Some(Duration::from_secs(15)),
            ..Default::default()
        });
        let unreachable = |reason: String| SshError::Unreachable {
            host: name.into(),
            address: format!("{}:{}", host.address, host.port),
            attempts: 1,
            reason,
        };
        let connecting = client::connect(config, (host.address.as_str(), host.port), checker);
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| unreachable(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?;
        let mut handle = match connected {
            Ok(handle) => handle,
            Err(e) => {
                let verdict = verdict.lock().expect("verdict lock").clone();
                let (address, known_hosts) = (host.address.clone(), known_hosts.display().to_string());
                return Err(match verdict {
                    Some(KeyVerdict::Unknown(fingerprint)) => SshError::UnknownHostKey {
                        host: name.into(),
                        address,
                        known_hosts,
                        fingerprint,
                    },
                    Some(KeyVerdict::Changed(line)) => SshError::ChangedHostKey {
                        host: name.into(),
                        address,
                        known_hosts,
                        line,
                    },
                    Some(KeyVerdict::Unreadable(reason)) => SshError::Session {
                        host: name.into(),
                        message: format!("cannot use `{known_hosts}`: {reason}"),
                    },
                    None => unreachable(e.to_string()),
                });
            }
        };
        let session_error = |message: String| SshError::Session {
            host: name.into(),
            message,
        };
        let (accepted, method) = match &host.key {
            Some(path) => {
                let path = expand_home(path);
                let key = russh::keys::load_secret_key(&path, None)
                    .map_err(|e| session_error(format!("cannot read the SSH key `{}`: {e}", path.display())))?;
                let hash = handle.best_supported_rsa_hash().await.ok().flatten().flatten();
                let auth = handle
                    .authenticate_publickey(&host.user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
                    .await
                    .map_err(|e| session_error(e.to_string()))?;
                (auth.success(), format!("the key `{}`", path.display()))
            }
            None => (
                login_with_agent(&mut handle, &host.user).await.map_err(session_error)?,
                "the keys of the SSH agent".to_string(),
            ),
        };
        if !accepted {
            return Err(SshError::LoginRefused {
                host: name.into(),
                user: host.user.clone(),
                method,
            });
        }
        Ok(Session {
            host: name.into(),
            handle,
            env: host.env.clone(),
        })
    }

    fn error(&self, message: impl std::fmt::Display) -> SshError {
        SshError::Session {
            host: self.host.clone(),
            message: message.to_string(),
        }
    }

    /// Runs `command` in the host's shell with the host's environment.
    pub async fn exec(&self, command: &str) -> Result<Output, SshError> {
        self.exec_with_input(command, None).await
    }

    /// Runs `command`, feeding it `input` on standard input.
    pub async fn exec_with_input(&self, command: &str, input: Option<&[u8]>) -> Result<Output, SshError> {
        let mut channel = self.handle.channel_open_session().await.map_err(|e| self.error(e))?;
        let exports: String = self.env.iter().map(|(k, v)| format!("export {k}={}; ", quote(v))).collect();
        channel.exec(true, format!("{exports}{command}")).await.map_err(|e| self.error(e))?;
        if let Some(input) = input {
            channel.data(input).await.map_err(|e| self.error(e))?;
        }
        channel.eof().await.map_err(|e| self.error(e))?;
        let mut out = Output::default();
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let collect = async {
            while let Some(msg) = channel.wait().await {
                match msg {
                    russh::ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
                    russh::ChannelMsg::ExtendedData { data, .. } => stderr.extend_from_slice(&data),
                    russh::ChannelMsg::ExitStatus { exit_status } => out.status = exit_status,
                    _ => {}
                }
            }
        };
        if tokio::time::timeout(COMMAND_TIMEOUT, collect).await.is_err() {
            return Err(self.error(format!("`{command}` did not finish within {} s", COMMAND_TIMEOUT.as_secs())));
        }
        out.stdout = String::from_utf8_lossy(&stdout).into_owned();
        out.stderr = String::from_utf8_lossy(&stderr).into_owned();
        Ok(out)
    }

    /// Runs `command` and fails with what it printed when it exits non-zero.
    pub async fn run(&self, command: &str) -> Result<String, SshError> {
        let out = self.exec(command).await?;
        if out.status != 0 {
            let said = if out.stderr.trim().is_empty() { &out.stdout } else { &out.stderr };
            return Err(self.error(format!("`{command}` exited with {}: {}", out.status, said.trim())));
        }
        Ok(out.stdout)
    }

    pub async fn sftp(&self) -> Result<SftpSession, SshError> {
        let channel = self.handle.channel_open_session().await.map_err(|e| self.error(e))?;
        channel.request_subsystem(true, "sftp").await.map_err(|e| self.error(e))?;
        SftpSession::new(channel.into_stream())
            .await
            .map_err(|e| self.error(format!("SFTP: {e}")))
    }

    /// Writes `content` to `path` created with `mode` (so a secret is never readable by others,
    /// even while it is written).
    pub async fn write_file(&self, sftp: &SftpSession, path: &str, content: &[u8], mode: u32) -> Result<(), SshError> {
        let attributes = FileAttributes {
            permissions: Some(mode),
            ..FileAttributes::empty()
        };
        let flags = OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE;
        let mut file = sftp
            .open_with_flags_and_attributes(path, flags, attributes)
            .await
            .map_err(|e| self.error(format!("cannot create `{path}`: {e}")))?;
        file.write_all(content)
            .await
            .map_err(|e| self.error(format!("cannot write `{path}`: {e}")))?;
        file.shutdown().await.map_err(|e| self.error(format!("cannot close `{path}`: {e}")))
    }

    /// The text of `path`, or `None` when the host has no such file.
    pub async fn read_file(&self, sftp: &SftpSession, path: &str) -> Result<Option<String>, SshError> {
        match sftp.try_exists(path).await {
            Ok(false) => return Ok(None),
            Ok(true) => {}
            Err(e) => return Err(self.error(format!("cannot look at `{path}`: {e}"))),
        }
        let bytes = sftp
            .read(path)
            .await
            .map_err(|e| self.error(format!("cannot read `{path}`: {e}")))?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    pub async fn close(self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
}

/// Tries each key the agent holds; `Ok(false)` when none is accepted.
async fn login_with_agent(handle: &mut client::Handle<Checker>, user: &str) -> Result<bool, String> {
    let mut agent = russh::keys::agent::client::AgentClient::connect_env()
        .await
        .map_err(|e| format!("no SSH key given and no SSH agent reachable (SSH_AUTH_SOCK): {e}; set `ssh: {{ key: .. }}`"))?;
    let identities = agent
        .request_identities()
        .await
        .map_err(|e| format!("the SSH agent did not list its keys: {e}"))?;
    let hash = handle.best_supported_rsa_hash().await.ok().flatten().flatten();
    for identity in identities {
        let russh::keys::agent::AgentIdentity::PublicKey { key, .. } = identity else {
            continue;
        };
        if let Ok(result) = handle.authenticate_publickey_with(user, key, hash, &mut agent).await
            && result.success()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_words_survive_the_shell() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        let echoed = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", quote("a 'b' $HOME `x`")))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&echoed.stdout), "a 'b' $HOME `x`");
    }
}
