//! Files an output tree holds now, for the plan to diff against.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Contents of every file under `root/<sub>` (relative paths), for the sub-directories given.
pub fn read_tree<S: AsRef<str>>(root: &Path, subdirs: &[S]) -> std::io::Result<BTreeMap<PathBuf, String>> {
    let mut files = BTreeMap::new();
    for sub in subdirs {
        let sub = sub.as_ref();
        let dir = root.join(sub);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            // `.<name>.tmp` files are atomic writes in flight; other dotfiles (`.env`) count.
            let name_text = name.to_string_lossy();
            let in_flight = name_text.starts_with('.') && name_text.ends_with(".tmp");
            if entry.file_type()?.is_file() && !in_flight {
                files.insert(Path::new(sub).join(&name), std::fs::read_to_string(entry.path())?);
            }
        }
    }
    Ok(files)
}
