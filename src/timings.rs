//! Where a command's time goes: named phases and how long each took, in the order they ended
//! (`apply --timings`).

use serde::Serialize;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    pub ms: f64,
}

/// Phases recorded as they end; shared by the stages of one command.
#[derive(Debug, Default)]
pub struct Timings {
    phases: Mutex<Vec<Phase>>,
}

impl Timings {
    /// Records phase `name` as having run from `since` until now.
    pub fn record(&self, name: impl Into<String>, since: Instant) {
        self.push(name, since.elapsed().as_secs_f64() * 1000.0);
    }

    /// Records a phase measured elsewhere.
    pub fn push(&self, name: impl Into<String>, ms: f64) {
        self.phases.lock().expect("timings").push(Phase { name: name.into(), ms });
    }

    pub fn phases(&self) -> Vec<Phase> {
        self.phases.lock().expect("timings").clone()
    }
}

/// The phases as a table: each with its seconds and its share of `total_ms`.
pub fn table(phases: &[Phase], total_ms: f64) -> String {
    let width = phases.iter().map(|p| p.name.len()).max().unwrap_or(0).max("phase".len());
    let mut out = format!("{:<width$}  {:>8}  {:>6}\n", "phase", "seconds", "share");
    for p in phases {
        let share = if total_ms > 0.0 { 100.0 * p.ms / total_ms } else { 0.0 };
        out += &format!("{:<width$}  {:>8.3}  {:>5.1}%\n", p.name, p.ms / 1000.0, share);
    }
    out += &format!("{:<width$}  {:>8.3}\n", "total", total_ms / 1000.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_gives_each_phase_its_share_of_the_total() {
        let phases = [
            Phase {
                name: "prepare".into(),
                ms: 250.0,
            },
            Phase {
                name: "verify".into(),
                ms: 750.0,
            },
        ];
        let t = table(&phases, 1000.0);
        assert!(t.contains("prepare     0.250   25.0%"), "{t}");
        assert!(t.contains("verify      0.750   75.0%"), "{t}");
        assert!(t.ends_with("total       1.000\n"), "{t}");
    }
}
