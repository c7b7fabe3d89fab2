//! `silt run` in progress, marked in the host's state (`runs/`, beside the
//! working copy, out of the extension's reach): one file per model,
//! `<sha256 of the model's label, 16 hex digits>.<pid>`, holding the label.
//! The label inside says which model a marker is for: a marker named by
//! another hash (an older silt's) is found all the same.
//!
//! A run removes its markers when it ends, however it ends — except when
//! it is killed. A marker whose process is gone therefore says: this
//! model's working copy holds what a killed command left, never
//! acknowledged. A push does not commit that unless told to (`--ours`);
//! the next `silt run` on the model sets it aside and clears the marker.

use std::path::{Path, PathBuf};

use crate::beneath::{Beneath, EntryKind};
use crate::runtime::bindings::silt::datastore::types::ModelRef;

use super::leftovers::running;
use super::model_label;

/// The markers' directory in the host's state.
const RUNS_DIR: &str = "runs";

/// A marker file's name: `<16 hex digits of the label's sha256>.<pid>`,
/// the same in every build (the name persists across upgrades).
fn marker_name(label: &str, pid: u32) -> String {
    let digest = crate::runtime::sha256_hex(label.as_bytes());
    format!("{}.{pid}", &digest[..16])
}

/// The pid of a marker's name, when it has a marker's shape.
fn marker_pid(name: &str) -> Option<u32> {
    let (hash, pid) = name.split_once('.')?;
    let hex = hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| pid.parse().ok()).flatten()
}

/// The markers of one run; removed when dropped (a kill skips that).
pub struct RunMarkers {
    runs: Beneath,
    names: Vec<String>,
}

impl RunMarkers {
    /// Marks `models` as being changed by this process's command.
    ///
    /// # Errors
    /// When the host's state cannot be written.
    pub fn create(host_state: &Beneath, models: &[ModelRef]) -> std::io::Result<Self> {
        let runs = host_state.create_dir_all(RUNS_DIR)?;
        let mut names = Vec::new();
        for model in models {
            let label = model_label(model);
            let name = marker_name(&label, std::process::id());
            runs.write_atomic(&name, label.as_bytes())?;
            names.push(name);
        }
        Ok(Self { runs, names })
    }
}

impl Drop for RunMarkers {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = self.runs.remove_file(name);
        }
    }
}

/// A model left by a killed run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KilledRun {
    /// The model's label (`type/id`).
    pub model: String,
    /// The process that was killed.
    pub pid: u32,
    /// Its marker, relative to the host's state.
    marker: PathBuf,
}

/// The models of `models` whose last `silt run` was killed.
pub fn killed_runs(host_state: &Beneath, models: &[ModelRef]) -> Vec<KilledRun> {
    let Ok(runs) = host_state.dir(RUNS_DIR) else {
        return Vec::new();
    };
    let Ok(entries) = runs.entries() else {
        return Vec::new();
    };
    let labels: Vec<String> = models.iter().map(model_label).collect();
    let mut killed = Vec::new();
    for (name, kind) in entries {
        let Some(name) = name.to_str().filter(|_| kind == EntryKind::File) else {
            continue;
        };
        let Some(pid) = marker_pid(name) else {
            continue;
        };
        if running(pid) {
            continue;
        }
        let Ok(label) = runs.read(name, 4096) else {
            continue;
        };
        let label = String::from_utf8_lossy(&label).into_owned();
        if labels.contains(&label) {
            killed.push(KilledRun {
                model: label,
                pid,
                marker: Path::new(RUNS_DIR).join(name),
            });
        }
    }
    killed.sort_by(|a, b| a.model.cmp(&b.model));
    killed
}

/// Forgets `killed` (their leftovers were set aside or committed).
pub fn clear(host_state: &Beneath, killed: &[KilledRun]) {
    for run in killed {
        if let Err(err) = host_state.remove_file(&run.marker) {
            tracing::debug!("cannot remove {}: {err}", run.marker.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Above Linux's largest pid: never running.
    const DEAD: u32 = 4_194_305;

    fn model(label: &str) -> ModelRef {
        crate::datastore::parse_model(label).unwrap()
    }

    #[test]
    fn a_markers_name_is_the_same_in_every_build() {
        // The first 16 hex digits of sha256("t/m"), fixed for good.
        assert_eq!(marker_name("t/m", 7), "02b9f0ff8960354a.7");
    }

    #[test]
    fn a_dead_runs_marker_is_found_by_its_label_whatever_hash_named_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = Beneath::open(dir.path()).unwrap();
        let runs = state.create_dir_all(RUNS_DIR).unwrap();
        // As this build names it, and as an older one (another hash) did.
        runs.write_atomic(marker_name("t/a", DEAD), b"t/a").unwrap();
        runs.write_atomic(format!("0123456789abcdef.{DEAD}"), b"t/b")
            .unwrap();
        // Not a marker's shape, or a live process's: left alone.
        runs.write_atomic(format!("x.{DEAD}"), b"t/c").unwrap();
        runs.write_atomic(marker_name("t/d", std::process::id()), b"t/d")
            .unwrap();
        let models: Vec<ModelRef> = ["t/a", "t/b", "t/c", "t/d"].map(model).into();
        let killed: Vec<String> = killed_runs(&state, &models)
            .into_iter()
            .map(|run| run.model)
            .collect();
        assert_eq!(killed, ["t/a", "t/b"]);
    }
}
