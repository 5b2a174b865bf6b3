//! WireGuard keys under `<tree>/auth/wireguard/`: a private key per host (x25519, clamped as
//! `wg genkey` does, so `wg pubkey` gives the same public key) and, when asked, a pre-shared key
//! per pair of hosts. Generated once, written 0600, never printed; a damaged key file is an
//! error, never silently replaced (the whole mesh would have to learn the new key).

use anyhow::{Context, Result, bail};
use data_encoding::BASE64;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::fsio::write_private;

/// The mesh's keys, base64 as wg writes them.
#[derive(Debug, Clone, Default)]
pub struct WgKeys {
    pub private: BTreeMap<String, String>,
    pub public: BTreeMap<String, String>,
    /// By host pair, names in order.
    pub preshared: BTreeMap<(String, String), String>,
}

pub struct WgKeyStore {
    dir: PathBuf,
}

/// 32 random bytes, clamped when they are a private key.
fn random_key(clamp: bool) -> [u8; 32] {
    let mut k = x25519_dalek::StaticSecret::random().to_bytes();
    if clamp {
        k[0] &= 248;
        k[31] &= 127;
        k[31] |= 64;
    }
    k
}

pub fn public_key(private: &[u8; 32]) -> String {
    let secret = x25519_dalek::StaticSecret::from(*private);
    BASE64.encode(x25519_dalek::PublicKey::from(&secret).as_bytes())
}

impl WgKeyStore {
    pub fn new(tree: &Path) -> Self {
        WgKeyStore {
            dir: tree.join("auth").join("wireguard"),
        }
    }

    /// The 32-byte key in `file`, generating (and storing) it when missing and `generate`.
    fn key(&self, file: &str, clamp: bool, generate: bool) -> Result<Option<[u8; 32]>> {
        let path = self.dir.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = BASE64
                    .decode(text.trim().as_bytes())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok());
                match bytes {
                    Some(b) => Ok(Some(b)),
                    None => bail!(
                        "`{}` does not hold a WireGuard key; restore it from a backup, or delete it to generate a new one (every peer's config then changes)",
                        path.display()
                    ),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && generate => {
                let key = random_key(clamp);
                write_private(&path, format!("{}\n", BASE64.encode(&key)).as_bytes())?;
                Ok(Some(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        }
    }

    /// Keys for `hosts` (and pre-shared keys for every pair when `preshared`); with `generate`
    /// false, hosts without a key are left out.
    pub fn load(&self, hosts: &[&str], preshared: bool, generate: bool) -> Result<WgKeys> {
        let mut keys = WgKeys::default();
        for host in hosts {
            if let Some(private) = self.key(&format!("{host}.key"), true, generate)? {
                keys.public.insert(host.to_string(), public_key(&private));
                keys.private.insert(host.to_string(), BASE64.encode(&private));
            }
        }
        if preshared {
            for (i, a) in hosts.iter().enumerate() {
                for b in &hosts[i + 1..] {
                    let (a, b) = if a < b { (a, b) } else { (b, a) };
                    if let Some(psk) = self.key(&format!("psk-{a}--{b}.key"), false, generate)? {
                        keys.preshared.insert((a.to_string(), b.to_string()), BASE64.encode(&psk));
                    }
                }
            }
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_generated_once_clamped_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = WgKeyStore::new(dir.path());
        let first = store.load(&["a", "b"], true, true).unwrap();
        let again = store.load(&["a", "b"], true, true).unwrap();
        assert_eq!(first.private, again.private);
        assert_eq!(first.preshared.len(), 1);
        let raw = BASE64.decode(first.private["a"].as_bytes()).unwrap();
        assert_eq!((raw[0] & 7, raw[31] & 0xc0), (0, 0x40), "clamped as wg genkey does");
        std::fs::write(dir.path().join("auth/wireguard/a.key"), "nope").unwrap();
        let err = store.load(&["a"], false, true).unwrap_err().to_string();
        assert!(err.contains("a.key") && err.contains("does not hold a WireGuard key"), "{err}");
    }
}
