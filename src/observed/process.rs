//! Whether a recorded server process is still the one we started (and not a reused pid).

use std::path::Path;

/// The pid when that process is alive (not a zombie) and runs `nats-server` with `conf`.
pub fn running_server(pid: u32, conf: &Path) -> bool {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    // The state follows the parenthesised command name: "pid (comm) S ...".
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline")) else {
        return false;
    };
    let conf = conf.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|arg| arg == conf)
}

/// Whether `pid` has exited (gone, or a zombie waiting to be reaped).
pub fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => matches!(
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()),
            Some("Z") | Some("X")
        ),
        Err(_) => true,
    }
}

/// Reads a pid file; `None` when absent or unreadable.
pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
