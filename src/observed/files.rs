//! Files an output tree holds now, for the plan to diff against.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Contents of every file under `root/<sub>` (relative paths), for the sub-directories given.
pub fn read_tree(root: &Path, subdirs: &[&str]) -> std::io::Result<BTreeMap<PathBuf, String>> {
    let mut files = BTreeMap::new();
    for sub in subdirs {
        let dir = root.join(sub);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if entry.file_type()?.is_file() && !name.to_string_lossy().starts_with('.') {
                files.insert(Path::new(sub).join(&name), std::fs::read_to_string(entry.path())?);
            }
        }
    }
    Ok(files)
}
