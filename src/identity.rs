//! A deployment's identity (`pki/` and `auth/`: the CA, every key and what it signed) sealed
//! for a backup: a tar archive encrypted with age under a passphrase (scrypt), so that the
//! `age` tool opens it too (`age -d identity.tar.age | tar x`).

use age::secrecy::SecretString;
use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::material::IDENTITY_DIRS;

/// The environment variable holding the passphrase; it is never printed.
pub const PASSPHRASE_VAR: &str = "NOTIF_INFRA_BACKUP_PASSPHRASE";
const MIN_PASSPHRASE_CHARS: usize = 12;
/// The sealed identity's file name in a backup.
pub const FILE: &str = "identity.tar.age";

/// The passphrase from the environment.
pub fn passphrase() -> Result<SecretString> {
    let value = std::env::var(PASSPHRASE_VAR).map_err(|_| {
        anyhow::anyhow!("the identity is sealed with a passphrase from {PASSPHRASE_VAR}, which is not set; nothing was written")
    })?;
    if value.chars().count() < MIN_PASSPHRASE_CHARS {
        bail!("the passphrase in {PASSPHRASE_VAR} is shorter than {MIN_PASSPHRASE_CHARS} characters; nothing was written");
    }
    Ok(SecretString::from(value))
}

/// The identity directories of the deployment tree `tree`, archived and encrypted.
pub fn seal(tree: &Path, passphrase: &SecretString) -> Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    archive.follow_symlinks(false);
    let mut any = false;
    for dir in IDENTITY_DIRS {
        let path = tree.join(dir);
        if path.is_dir() {
            archive
                .append_dir_all(dir, &path)
                .with_context(|| format!("cannot archive `{}`", path.display()))?;
            any = true;
        }
    }
    if !any {
        bail!(
            "`{}` holds no identity (no pki/ or auth/): apply the deployment first",
            tree.display()
        );
    }
    let plain = archive.into_inner()?;
    let mut sealed = Vec::new();
    let mut writer = age::Encryptor::with_user_passphrase(passphrase.clone()).wrap_output(&mut sealed)?;
    writer.write_all(&plain)?;
    writer.finish()?;
    Ok(sealed)
}

/// Opens `sealed` (from `what`) into the deployment tree `tree`, which must hold no identity;
/// returns the directories restored. Every entry is checked before anything is written.
pub fn open(sealed: &[u8], what: &Path, passphrase: &SecretString, tree: &Path) -> Result<Vec<PathBuf>> {
    let present: Vec<&str> = IDENTITY_DIRS.iter().copied().filter(|d| tree.join(d).exists()).collect();
    if !present.is_empty() {
        bail!(
            "`{}` already holds an identity ({}): restoring would replace it; nothing was restored (destroy --purge-keys removes it)",
            tree.display(),
            present.iter().map(|d| format!("{d}/")).collect::<Vec<_>>().join(", ")
        );
    }
    let decryptor = age::Decryptor::new(sealed).with_context(|| format!("`{}` is not an age file", what.display()))?;
    let identity = age::scrypt::Identity::new(passphrase.clone());
    let mut reader = decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity)).map_err(|e| {
        anyhow::anyhow!(
            "cannot open `{}` with the passphrase in {PASSPHRASE_VAR}: {e}; nothing was restored",
            what.display()
        )
    })?;
    let mut plain = Vec::new();
    reader
        .read_to_end(&mut plain)
        .with_context(|| format!("`{}` is damaged", what.display()))?;
    // Only paths under the identity directories, never out of them.
    for entry in tar::Archive::new(&plain[..]).entries()? {
        let entry = entry?;
        let path = entry.path()?.into_owned();
        let inside = path.components().all(|c| matches!(c, Component::Normal(_)))
            && path
                .components()
                .next()
                .is_some_and(|c| IDENTITY_DIRS.iter().any(|d| c.as_os_str() == *d));
        if !inside {
            bail!(
                "`{}` holds `{}`, outside pki/ and auth/; nothing was restored",
                what.display(),
                path.display()
            );
        }
    }
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(tree)
            .with_context(|| format!("cannot create `{}`", tree.display()))?;
    }
    let mut archive = tar::Archive::new(&plain[..]);
    archive.set_preserve_permissions(true);
    archive
        .unpack(tree)
        .with_context(|| format!("cannot unpack the identity into `{}`", tree.display()))?;
    Ok(IDENTITY_DIRS.iter().map(|d| tree.join(d)).filter(|d| d.exists()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_identity_opens_with_its_passphrase_only_and_never_over_another() {
        let from = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(from.path().join("pki")).unwrap();
        std::fs::create_dir_all(from.path().join("auth/nkeys")).unwrap();
        std::fs::write(from.path().join("pki/ca-key.pem"), "-----BEGIN PRIVATE KEY-----\nsecret\n").unwrap();
        std::fs::write(from.path().join("auth/nkeys/op.nk"), "SOAEXAMPLESEED").unwrap();
        std::fs::write(from.path().join("state.json"), "{}").unwrap();
        let pass = SecretString::from("correct horse battery".to_string());
        let sealed = seal(from.path(), &pass).unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("PRIVATE KEY"));
        assert!(!String::from_utf8_lossy(&sealed).contains("SOAEXAMPLESEED"));

        let to = tempfile::tempdir().unwrap();
        let tree = to.path().join("dep");
        let wrong = SecretString::from("incorrect horse battery".to_string());
        let e = open(&sealed, Path::new("b/identity.tar.age"), &wrong, &tree).unwrap_err();
        assert!(e.to_string().contains("cannot open `b/identity.tar.age`"), "{e}");
        assert!(!tree.exists(), "nothing written on a wrong passphrase");

        let restored = open(&sealed, Path::new("b/identity.tar.age"), &pass, &tree).unwrap();
        assert_eq!(restored, [tree.join("pki"), tree.join("auth")]);
        assert_eq!(std::fs::read_to_string(tree.join("auth/nkeys/op.nk")).unwrap(), "SOAEXAMPLESEED");
        assert!(!tree.join("state.json").exists(), "only the identity travels");
        let e = open(&sealed, Path::new("b/identity.tar.age"), &pass, &tree).unwrap_err();
        assert!(e.to_string().contains("already holds an identity (pki/, auth/)"), "{e}");
    }
}
