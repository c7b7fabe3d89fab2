//! `silt run` in progress, marked in the host's state (`runs/`, beside the
//! working copy, out of the extension's reach): one file per model,
//! `<hash of the model>.<pid>`, holding the model's label.
//!
//! A run removes its markers when it ends, however it ends — except when
//! it is killed. A marker whose process is gone therefore says: this
//! model's working copy holds what a killed command left, never
//! acknowledged. A push does not commit that unless told to (`--ours`);
//! the next `silt run` on the model sets it aside and clears the marker.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};

use crate::beneath::{Beneath, EntryKind};
use crate::runtime::bindings::silt::datastore::types::ModelRef;

use super::leftovers::running;
use super::model_label;

/// The markers' directory in the host's state.
const RUNS_DIR: &str = "runs";

/// A marker file's name: `<16 hex digits of the label's hash>.<pid>`.
fn marker_name(label: &str, pid: u32) -> String {
    let mut hasher = DefaultHasher::new();
    label.hash(&mut hasher);
    format!("{:016x}.{pid}", hasher.finish())
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
        let Some(pid) = name
            .rsplit_once('.')
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if running(pid) {
            continue;
        }
        let Ok(label) = runs.read(name, 4096) else {
            continue;
        };
        let label = String::from_utf8_lossy(&label).into_owned();
        if labels.contains(&label) && marker_name(&label, pid) == name {
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
