//! Local locks on the working copy, between the silt processes of one clone.
//!
//! Leases exclude writers across machines; these locks keep the processes
//! of one clone from writing the same model's files and sidecar at once —
//! above all a foreground command and the background hydrator. They are
//! `flock` locks on files under `<local_dir>/.silt-host/locks/`, so a killed
//! process releases them with its last file descriptor.
//!
//! Three kinds of lock file:
//! - `gate`: a turnstile. A foreground command takes it (waiting) before its
//!   other locks and drops it once it holds them; the background hydrator
//!   only *tries* it. So a waiting foreground command stops the hydrator
//!   from starting anything new, and waits at most for the one slice the
//!   hydrator is fetching.
//! - `all`: shared by whoever works on some models, exclusive for a command
//!   that works on every model (a pull of everything, setup).
//! - `model-<hash>`: exclusive, one per model.
//!
//! Foreground commands take model locks in sorted order, so two of them
//! never deadlock; the hydrator never waits while holding anything.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

use super::model_ref::model_label;
use crate::runtime::bindings::silt::datastore::types::ModelRef;

/// The host's own state beside the working copy (locks, background
/// hydration): `<local_dir>/.silt-host`.
pub fn host_state_dir(local_dir: &Path) -> PathBuf {
    local_dir.join(".silt-host")
}

/// What a foreground command is about to touch.
#[derive(Debug, Clone)]
pub enum Claim<'a> {
    /// These models' files and sidecars.
    Models(&'a [ModelRef]),
    /// Any model (a pull or push of everything, setup).
    Everything,
}

/// The lock files of one working copy.
#[derive(Debug, Clone)]
pub struct WorkingCopyLocks {
    dir: PathBuf,
}

/// Held locks; dropping it releases them.
#[derive(Debug)]
#[must_use = "the locks are released when this is dropped"]
pub struct WorkingCopyGuard {
    _held: Vec<File>,
}

impl WorkingCopyLocks {
    /// The locks of the working copy in `local_dir`.
    pub fn new(local_dir: &Path) -> Self {
        Self {
            dir: host_state_dir(local_dir).join("locks"),
        }
    }

    /// Takes the locks a foreground command needs for `claim`, waiting for
    /// them (and saying so on stderr when the wait is not immediate).
    ///
    /// # Errors
    /// When the lock files cannot be created or locked.
    pub async fn foreground(&self, claim: Claim<'_>) -> anyhow::Result<WorkingCopyGuard> {
        let this = self.clone();
        let mut models: Vec<ModelRef> = match claim {
            Claim::Models(models) => models.to_vec(),
            Claim::Everything => Vec::new(),
        };
        let everything = matches!(claim, Claim::Everything);
        models.sort_by(|a, b| (&a.model_type, &a.model_id).cmp(&(&b.model_type, &b.model_id)));
        models.dedup_by(|a, b| a.model_type == b.model_type && a.model_id == b.model_id);
        tokio::task::spawn_blocking(move || this.foreground_blocking(&models, everything))
            .await
            .context("the working-copy lock task failed")?
    }

    fn foreground_blocking(
        &self,
        models: &[ModelRef],
        everything: bool,
    ) -> anyhow::Result<WorkingCopyGuard> {
        let gate = self.open("gate")?;
        wait_for(&gate, Mode::Exclusive, "gate")?;
        let all = self.open("all")?;
        let mode = if everything {
            Mode::Exclusive
        } else {
            Mode::Shared
        };
        wait_for(&all, mode, "the working copy")?;
        let mut held = vec![all];
        for model in models {
            let file = self.open(&model_lock_name(model))?;
            wait_for(&file, Mode::Exclusive, &model_label(model))?;
            held.push(file);
        }
        // Holding the rest, let the next one through the turnstile.
        drop(gate);
        Ok(WorkingCopyGuard { _held: held })
    }

    /// Tries, without waiting, the locks the background hydrator needs to
    /// fetch into `model`: `None` when a foreground command holds or waits
    /// for any of them.
    ///
    /// # Errors
    /// When the lock files cannot be created or locked.
    pub fn try_background(&self, model: &ModelRef) -> anyhow::Result<Option<WorkingCopyGuard>> {
        let gate = self.open("gate")?;
        if !try_lock(&gate, Mode::Exclusive)? {
            return Ok(None);
        }
        let all = self.open("all")?;
        if !try_lock(&all, Mode::Shared)? {
            return Ok(None);
        }
        let file = self.open(&model_lock_name(model))?;
        if !try_lock(&file, Mode::Exclusive)? {
            return Ok(None);
        }
        Ok(Some(WorkingCopyGuard {
            _held: vec![all, file],
        }))
    }

    /// Takes `name` (a lock of its own, outside the gate protocol)
    /// exclusively if free: `None` when another process holds it.
    ///
    /// # Errors
    /// When the lock file cannot be created or locked.
    pub fn try_exclusive(&self, name: &str) -> anyhow::Result<Option<WorkingCopyGuard>> {
        let file = self.open(name)?;
        Ok(try_lock(&file, Mode::Exclusive)?.then(|| WorkingCopyGuard { _held: vec![file] }))
    }

    fn open(&self, name: &str) -> anyhow::Result<File> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let path = self.dir.join(name);
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Shared,
    Exclusive,
}

fn try_lock(file: &File, mode: Mode) -> anyhow::Result<bool> {
    let result = match mode {
        Mode::Shared => file.try_lock_shared(),
        Mode::Exclusive => file.try_lock(),
    };
    match result {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(err)) => Err(err).context("cannot lock the working copy"),
    }
}

fn wait_for(file: &File, mode: Mode, what: &str) -> anyhow::Result<()> {
    if try_lock(file, mode)? {
        return Ok(());
    }
    tracing::info!("waiting for another silt process of this working copy ({what})");
    match mode {
        Mode::Shared => file.lock_shared(),
        Mode::Exclusive => file.lock(),
    }
    .context("cannot lock the working copy")
}

/// A file name for the model's lock: the model type may hold `/` and any
/// character a file name cannot, so the name is a hash.
fn model_lock_name(model: &ModelRef) -> String {
    let mut hasher = Sha256::new();
    hasher.update(model.model_type.as_bytes());
    hasher.update([0]);
    hasher.update(model.model_id.as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("model-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: &str) -> ModelRef {
        ModelRef {
            model_type: "t".to_owned(),
            model_id: id.to_owned(),
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn background_yields_to_foreground_on_the_same_model_only() {
        let dir = tempfile::tempdir().unwrap();
        let locks = WorkingCopyLocks::new(dir.path());
        let a = [model("a")];
        let held = block_on(locks.foreground(Claim::Models(&a))).unwrap();
        assert!(locks.try_background(&model("a")).unwrap().is_none());
        assert!(locks.try_background(&model("b")).unwrap().is_some());
        drop(held);
        assert!(locks.try_background(&model("a")).unwrap().is_some());
    }

    #[test]
    fn everything_excludes_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let locks = WorkingCopyLocks::new(dir.path());
        let held = block_on(locks.foreground(Claim::Everything)).unwrap();
        assert!(locks.try_background(&model("b")).unwrap().is_none());
        drop(held);
        let background = locks.try_background(&model("b")).unwrap();
        assert!(background.is_some());
        // Two foreground commands on different models do not exclude each other.
        let (a, c) = ([model("a")], [model("c")]);
        let first = block_on(locks.foreground(Claim::Models(&a))).unwrap();
        let second = block_on(locks.foreground(Claim::Models(&c))).unwrap();
        drop((first, second, background));
    }

    #[test]
    fn a_waiting_foreground_command_closes_the_gate() {
        let dir = tempfile::tempdir().unwrap();
        let locks = WorkingCopyLocks::new(dir.path());
        let background = locks.try_background(&model("a")).unwrap().unwrap();
        let waiter = {
            let locks = locks.clone();
            std::thread::spawn(move || {
                let a = [model("a")];
                block_on(locks.foreground(Claim::Models(&a))).unwrap()
            })
        };
        // The waiter holds the gate while it waits for model a: the
        // hydrator can start nothing new, not even on another model.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match locks.try_background(&model("b")).unwrap() {
                None => break,
                Some(guard) => drop(guard),
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the gate never closed"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        drop(background);
        let foreground = waiter.join().unwrap();
        assert!(locks.try_background(&model("a")).unwrap().is_none());
        drop(foreground);
    }

    #[test]
    fn lock_names_are_safe_and_distinct() {
        let odd = ModelRef {
            model_type: "a/b".to_owned(),
            model_id: "../x".to_owned(),
        };
        let name = model_lock_name(&odd);
        assert!(name.starts_with("model-") && !name.contains('/'));
        assert_ne!(name, model_lock_name(&model("x")));
    }
}
