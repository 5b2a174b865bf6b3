//! nats-server processes on this machine, found through pid files and, whatever a pid file
//! says, through the config path on their command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Whether the process is alive (not a zombie).
fn alive(proc_dir: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    // The state follows the parenthesised command name: "pid (comm) S ...".
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

/// The config a process was started with (`-c PATH`), made absolute against its working
/// directory.
fn config_arg(proc_dir: &Path) -> Option<PathBuf> {
    let cmdline = std::fs::read(proc_dir.join("cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let i = args.iter().position(|a| *a == b"-c" || *a == b"--config")?;
    let conf = PathBuf::from(String::from_utf8_lossy(args.get(i + 1)?).into_owned());
    if conf.is_absolute() {
        Some(conf)
    } else {
        Some(std::fs::read_link(proc_dir.join("cwd")).ok()?.join(conf))
    }
}

/// Whether `pid` is alive and runs with `conf` (an absolute path) as its config.
pub fn running_server(pid: u32, conf: &Path) -> bool {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    alive(&proc_dir) && config_arg(&proc_dir).is_some_and(|c| c == conf)
}

/// Every live process whose config is a file directly in `conf_dir` (absolute), by the
/// config's file stem: the servers of one deployment, whether or not a pid file names them.
pub fn servers_with_configs_in(conf_dir: &Path) -> BTreeMap<String, u32> {
    let mut found = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return found };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let proc_dir = e.path();
        let Some(conf) = config_arg(&proc_dir) else { continue };
        if conf.parent() == Some(conf_dir)
            && conf.extension().is_some_and(|x| x == "conf")
            && alive(&proc_dir)
            && let Some(stem) = conf.file_stem().and_then(|s| s.to_str())
        {
            found.insert(stem.to_string(), pid);
        }
    }
    found
}

/// Whether `pid` has exited (gone, or a zombie waiting to be reaped).
pub fn exited(pid: u32) -> bool {
    !alive(&Path::new("/proc").join(pid.to_string()))
}

/// Reads a pid file; `None` when absent or unreadable.
pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_process_by_its_config_whatever_its_working_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let conf_dir = root.join("nats");
        std::fs::create_dir_all(&conf_dir).unwrap();
        let conf = conf_dir.join("main-1.conf");
        std::fs::write(&conf, "").unwrap();
        // A stand-in whose command line names its config relative to its working directory. It
        // must not fork: a forked child carries the same command line until it execs.
        let mut child = std::process::Command::new("perl")
            .args(["-e", "sleep 30", "--", "-c", "nats/main-1.conf"])
            .current_dir(&root)
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut found = BTreeMap::new();
        for _ in 0..100 {
            found = servers_with_configs_in(&conf_dir);
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let recognised = running_server(pid, &conf);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(found.get("main-1"), Some(&pid), "{found:?}");
        assert!(recognised);
        assert!(!running_server(pid, &conf), "a killed process no longer runs");
    }
}
