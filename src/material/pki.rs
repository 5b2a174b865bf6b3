//! The deployment's TLS PKI under `<tree>/pki/`: a CA, a certificate per server (SANs for every
//! name and address it is reached by, server and client auth for mutual TLS between servers)
//! and client certificates. ECDSA P-256. Issued once and reused; reissued only when a
//! certificate no longer fits (names changed, another CA, about to expire) or on rotation.
//! A damaged or half-missing file is an error, never a silent regeneration.

use anyhow::{Context, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SanType,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::fsio::{write_atomic, write_private};

pub const CA_CERT: &str = "ca.pem";
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86400);
const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 86400);
/// A certificate closer than this to its end is reissued by the next apply.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86400);

/// A certificate the deployment needs, by file stem under `pki/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRequest {
    /// `<server>` or `clients/<account>/<user>`: the files are `<stem>.pem` and `<stem>-key.pem`.
    pub stem: String,
    pub common_name: String,
    /// DNS names and IP addresses; empty for client certificates.
    pub sans: Vec<String>,
    pub server: bool,
}

/// What happens to a piece of key material, as plan shows it (presence only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CertAction {
    Create,
    Rotate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertEvent {
    pub file: String,
    pub action: CertAction,
    pub reason: String,
}

/// Which certificates `rotate certs` replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    None,
    Leaves,
    /// The CA too: every client must then trust the new `ca.pem`.
    All,
}

/// The issued PKI: each certificate's SHA-256 fingerprint by stem (`ca` for the CA).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Certs {
    pub fingerprints: BTreeMap<String, String>,
}

pub struct PkiStore {
    dir: PathBuf,
}

struct Existing {
    pem: String,
    key: String,
}

/// What an existing certificate says, for the reuse decision.
struct CertFacts {
    sans: Vec<String>,
    issuer: Vec<u8>,
    not_after: SystemTime,
}

impl PkiStore {
    pub fn new(tree: &Path) -> Self {
        PkiStore { dir: tree.join("pki") }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self, stem: &str) -> (PathBuf, PathBuf) {
        (self.dir.join(format!("{stem}.pem")), self.dir.join(format!("{stem}-key.pem")))
    }

    /// Both files of a certificate, neither, or an error naming the missing one.
    fn read_pair(&self, stem: &str, cert_file: &Path, key_file: &Path) -> Result<Option<Existing>> {
        let read = |p: &Path| match std::fs::read_to_string(p) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read `{}`", p.display())),
        };
        match (read(cert_file)?, read(key_file)?) {
            (Some(pem), Some(key)) => Ok(Some(Existing { pem, key })),
            (None, None) => Ok(None),
            (Some(_), None) if stem == "ca" => bail!(
                "the CA key `{}` is missing while its certificate exists: nothing more can be signed. Restore it from a backup, or run `notif-infra rotate certs --ca` to replace the whole PKI (every client must then trust the new ca.pem)",
                key_file.display()
            ),
            (Some(_), None) => bail!(
                "the private key `{}` is missing while its certificate exists; restore it, or run `notif-infra rotate certs` to issue a new pair",
                key_file.display()
            ),
            (None, Some(_)) => bail!(
                "the certificate `{}` is missing while its private key exists; restore it, or run `notif-infra rotate certs` to issue a new pair",
                cert_file.display()
            ),
        }
    }

    /// What apply would do, writing nothing (for plan and verify).
    pub fn inspect(&self, requests: &[CertRequest]) -> Result<(Certs, Vec<CertEvent>)> {
        self.resolve(requests, Rotation::None, false)
    }

    /// Every certificate `requests` names, issuing what is missing or no longer fits.
    pub fn load_or_issue(&self, requests: &[CertRequest], rotation: Rotation) -> Result<(Certs, Vec<CertEvent>)> {
        self.resolve(requests, rotation, true)
    }

    fn resolve(&self, requests: &[CertRequest], rotation: Rotation, write: bool) -> Result<(Certs, Vec<CertEvent>)> {
        let mut events = Vec::new();
        let mut certs = Certs::default();
        if requests.is_empty() {
            return Ok((certs, events));
        }
        let (ca_cert, ca_key) = self.paths("ca");
        let ca_existing = self.read_pair("ca", &ca_cert, &ca_key)?;
        if ca_existing.is_none() {
            // Certificates without their CA cannot be renewed or matched by new ones.
            if let Some(orphan) = requests.iter().find(|r| self.paths(&r.stem).0.exists()) {
                bail!(
                    "`{}` exists but the CA that signed it (`{}`, `{}`) is missing; restore the CA from a backup, or run `notif-infra rotate certs --ca` to replace the whole PKI",
                    self.paths(&orphan.stem).0.display(),
                    ca_cert.display(),
                    ca_key.display()
                );
            }
        }
        let ca_key_pair = match &ca_existing {
            Some(e) => Some(KeyPair::from_pem(&e.key).map_err(|err| damaged(&ca_key, &err.to_string()))?),
            None => None,
        };
        let (ca_pem, ca_pair, ca_new) = match (ca_existing, ca_key_pair) {
            (Some(e), Some(key)) if rotation != Rotation::All => {
                facts(&e.pem).map_err(|err| damaged(&ca_cert, &err))?;
                (e.pem, key, false)
            }
            (existing, _) => {
                events.push(CertEvent {
                    file: "pki/ca.pem".into(),
                    action: if existing.is_some() {
                        CertAction::Rotate
                    } else {
                        CertAction::Create
                    },
                    reason: if existing.is_some() {
                        "rotation asked for".into()
                    } else {
                        "new".into()
                    },
                });
                let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
                let pem = ca_params()?.self_signed(&key)?.pem();
                if write {
                    write_private(&ca_key, key.serialize_pem().as_bytes())?;
                    write_atomic(&ca_cert, pem.as_bytes(), 0o644)?;
                }
                (pem, key, true)
            }
        };
        let ca_der = pem_der(&ca_pem).map_err(|e| damaged(&ca_cert, &e))?;
        let ca_subject = subject_of(&ca_der).map_err(|e| damaged(&ca_cert, &e))?;
        certs.fingerprints.insert("ca".into(), fingerprint(&ca_der));
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_pair).context("cannot use the CA certificate")?;

        for r in requests {
            let (cert_file, key_file) = self.paths(&r.stem);
            let existing = self.read_pair(&r.stem, &cert_file, &key_file)?;
            let reason = match &existing {
                None => Some((CertAction::Create, "new".to_string())),
                Some(e) => {
                    KeyPair::from_pem(&e.key).map_err(|err| damaged(&key_file, &err.to_string()))?;
                    let f = facts(&e.pem).map_err(|err| damaged(&cert_file, &err))?;
                    let missing: Vec<&String> = r.sans.iter().filter(|s| !f.sans.contains(s)).collect();
                    if rotation != Rotation::None {
                        Some((CertAction::Rotate, "rotation asked for".into()))
                    } else if ca_new || f.issuer != ca_subject {
                        Some((CertAction::Rotate, "signed by another CA".into()))
                    } else if !missing.is_empty() {
                        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                        Some((CertAction::Rotate, format!("does not cover {}", names.join(", "))))
                    } else if f.not_after < SystemTime::now() + RENEW_BEFORE {
                        Some((CertAction::Rotate, "expires within 30 days".into()))
                    } else {
                        None
                    }
                }
            };
            let pem = match (reason, existing) {
                (None, Some(e)) => e.pem,
                (Some((action, reason)), _) => {
                    events.push(CertEvent {
                        file: format!("pki/{}.pem", r.stem),
                        action,
                        reason,
                    });
                    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
                    let pem = leaf_params(r)?.signed_by(&key, &issuer)?.pem();
                    if write {
                        write_private(&key_file, key.serialize_pem().as_bytes())?;
                        write_atomic(&cert_file, pem.as_bytes(), 0o644)?;
                    }
                    pem
                }
                (None, None) => unreachable!("a missing certificate is always issued"),
            };
            let der = pem_der(&pem).map_err(|e| damaged(&cert_file, &e))?;
            certs.fingerprints.insert(r.stem.clone(), fingerprint(&der));
        }
        Ok((certs, events))
    }
}

fn damaged(path: &Path, why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "`{}` is damaged ({why}); restore it from a backup, or run `notif-infra rotate certs` (with `--ca` for the CA) to issue new ones",
        path.display()
    )
}

fn ca_params() -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "notif-infra CA");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut p, CA_VALIDITY);
    Ok(p)
}

fn leaf_params(r: &CertRequest) -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.subject_alt_names = r
        .sans
        .iter()
        .map(|s| match s.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(s.clone().try_into()?)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, r.common_name.clone());
    p.distinguished_name = dn;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // Servers dial each other (routes, gateways, leafnodes): with mutual TLS their certificate
    // is a client certificate too.
    p.extended_key_usages = if r.server {
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    validity(&mut p, LEAF_VALIDITY);
    Ok(p)
}

fn validity(p: &mut CertificateParams, length: Duration) {
    let now = time::OffsetDateTime::now_utc();
    // A little slack for clocks that lag the issuing machine.
    p.not_before = now - time::Duration::minutes(5);
    p.not_after = now + length;
}

fn pem_der(pem: &str) -> Result<Vec<u8>, String> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| format!("not a PEM certificate: {e}"))?;
    Ok(parsed.contents)
}

fn subject_of(der: &[u8]) -> Result<Vec<u8>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(cert.subject().as_raw().to_vec())
}

/// Whole days until the PEM certificate expires (negative once it has).
pub fn days_left(pem: &str) -> Result<i64, String> {
    let not_after = facts(pem)?.not_after;
    let now = SystemTime::now();
    Ok(match not_after.duration_since(now) {
        Ok(left) => (left.as_secs() / 86_400) as i64,
        Err(past) => -((past.duration().as_secs() / 86_400) as i64) - 1,
    })
}

fn facts(pem: &str) -> Result<CertFacts, String> {
    let der = pem_der(pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => sans.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                    4 => sans.push(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
                    16 => sans.push(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).expect("16 bytes")).to_string()),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let secs = cert.validity().not_after.timestamp().max(0) as u64;
    Ok(CertFacts {
        sans,
        issuer: cert.issuer().as_raw().to_vec(),
        not_after: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
    })
}

fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn server(stem: &str, sans: &[&str]) -> CertRequest {
        CertRequest {
            stem: stem.into(),
            common_name: stem.into(),
            sans: sans.iter().map(|s| s.to_string()).collect(),
            server: true,
        }
    }

    #[test]
    fn issues_once_then_reuses_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let store = PkiStore::new(dir.path());
        let reqs = vec![server("n1", &["n1", "127.0.0.1", "localhost"])];
        let (first, events) = store.load_or_issue(&reqs, Rotation::None).unwrap();
        assert_eq!(events.len(), 2, "CA and n1 created: {events:?}");
        let pem = std::fs::read(dir.path().join("pki/n1.pem")).unwrap();
        let (again, events) = store.load_or_issue(&reqs, Rotation::None).unwrap();
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(first, again);
        assert_eq!(std::fs::read(dir.path().join("pki/n1.pem")).unwrap(), pem);
        for key in ["pki/ca-key.pem", "pki/n1-key.pem"] {
            let mode = std::fs::metadata(dir.path().join(key)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        let f = facts(std::str::from_utf8(&pem).unwrap()).unwrap();
        assert_eq!(f.sans, vec!["n1", "127.0.0.1", "localhost"]);
    }

    #[test]
    fn a_new_name_reissues_only_that_certificate_and_rotation_keeps_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let store = PkiStore::new(dir.path());
        let (first, _) = store
            .load_or_issue(&[server("n1", &["n1"]), server("n2", &["n2"])], Rotation::None)
            .unwrap();
        let (second, events) = store
            .load_or_issue(&[server("n1", &["n1", "10.0.0.1"]), server("n2", &["n2"])], Rotation::None)
            .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].file, "pki/n1.pem");
        assert_eq!(events[0].reason, "does not cover 10.0.0.1");
        assert_eq!(first.fingerprints["n2"], second.fingerprints["n2"]);
        let (third, events) = store
            .load_or_issue(&[server("n1", &["n1", "10.0.0.1"]), server("n2", &["n2"])], Rotation::Leaves)
            .unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(third.fingerprints["ca"], first.fingerprints["ca"]);
        assert_ne!(third.fingerprints["n2"], first.fingerprints["n2"]);
    }

    #[test]
    fn missing_ca_key_and_damaged_files_are_errors_that_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = PkiStore::new(dir.path());
        let reqs = vec![server("n1", &["n1"])];
        store.load_or_issue(&reqs, Rotation::None).unwrap();
        std::fs::write(dir.path().join("pki/n1-key.pem"), "garbage").unwrap();
        let err = store.load_or_issue(&reqs, Rotation::None).unwrap_err().to_string();
        assert!(err.contains("n1-key.pem") && err.contains("damaged"), "{err}");
        std::fs::remove_file(dir.path().join("pki/ca-key.pem")).unwrap();
        let err = store.inspect(&reqs).unwrap_err().to_string();
        assert!(err.contains("ca-key.pem") && err.contains("rotate certs --ca"), "{err}");
        std::fs::remove_file(dir.path().join("pki/ca.pem")).unwrap();
        let err = store.inspect(&reqs).unwrap_err().to_string();
        assert!(err.contains("n1.pem") && err.contains("CA that signed it"), "{err}");
    }
}
