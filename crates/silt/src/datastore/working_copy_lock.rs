//! Local locks on the working copy, between the silt processes of one clone.
//!
//! Leases exclude writers across machines; these locks keep the processes
//! of one clone from writing the same model's files and sidecar at once —
//! above all a foreground command and the background hydrator. They are
//! `flock` locks on files under `<local_dir>-host/locks/` (beside the working
//! copy, out of the extension's reach), so a killed process releases them
//! with its last file descriptor.
//!
//! Three kinds of lock file:
//! - `gate`: a turnstile. A foreground command takes it (shared, or
//!   exclusive for everything) before its other locks and drops it once it
//!   holds them; the background hydrator only *tries* it, exclusively. So a
//!   waiting foreground command stops the hydrator from starting anything
//!   new, and waits at most for the one slice the hydrator is fetching,
//!   while other foreground commands on other models go on.
//! - `all`: shared by whoever works on some models, exclusive for a command
//!   that works on every model (a pull of everything, setup).
//! - `model-<hash>`: exclusive, one per 16-bit hash of the model.
//!
//! Foreground commands take model locks in sorted order, so two of them
//! never deadlock; the hydrator never waits while holding anything.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

use super::model_ref::model_label;
use crate::beneath::Beneath;
use crate::runtime::bindings::silt::datastore::types::ModelRef;
use crate::runtime::hex;

/// The host's own state for the working copy in `local_dir` (locks,
/// background hydration state and log): `<local_dir>-host`, beside the
/// working copy and not in it. The working copy is the extension's
/// `/cache`; nothing there is the host's, so no guest can delete a lock
/// file from under a running silt or forge the hydrator's state.
pub fn host_state_dir(local_dir: &Path) -> PathBuf {
    // Lexically normal first: `a/b/..` names `a`, whose sibling is wanted,
    // not `a/local-host` (which would be inside the working copy).
    let mut normal = PathBuf::new();
    for component in local_dir.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if normal.file_name().is_some() => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    let mut name = normal
        .file_name()
        .map_or_else(|| "local".into(), ToOwned::to_owned);
    name.push("-host");
    normal.with_file_name(name)
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
    local_dir: PathBuf,
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
            local_dir: local_dir.to_owned(),
        }
    }

    /// Takes the locks a foreground command needs for `claim`, waiting for
    /// them (and saying so in the log when the wait is not immediate). The
    /// wait polls, so dropping the future (a signal, a lost lease) stops it.
    ///
    /// # Errors
    /// When the lock files cannot be created or locked.
    pub async fn foreground(&self, claim: Claim<'_>) -> anyhow::Result<WorkingCopyGuard> {
        let (mut models, everything) = match claim {
            Claim::Models(models) => (models.to_vec(), false),
            Claim::Everything => (Vec::new(), true),
        };
        // One global order of lock files (so two commands never wait on each
        // other in a cycle); models sharing a lock file take it once.
        models.sort_by_key(model_lock_name);
        models.dedup_by_key(|model| model_lock_name(model));
        let mode = if everything {
            Mode::Exclusive
        } else {
            Mode::Shared
        };
        // Shared among commands on models (they do not hold each other up
        // while one waits for a busy model), exclusive of the hydrator's try.
        let gate = self.open("gate")?;
        wait_for(&gate, mode, "the gate").await?;
        let all = self.open("all")?;
        wait_for(&all, mode, "the working copy").await?;
        let mut held = vec![all];
        for model in &models {
            let file = self.open(&model_lock_name(model))?;
            wait_for(&file, Mode::Exclusive, &model_label(model)).await?;
            held.push(file);
        }
        // Holding the rest, let the hydrator through the turnstile again.
        drop(gate);
        Ok(WorkingCopyGuard { _held: held })
    }

    /// Tries, without waiting, the locks a foreground command needs for
    /// `model`: `None` when another process holds one of them.
    ///
    /// # Errors
    /// When the lock files cannot be created or locked.
    pub fn try_foreground(&self, model: &ModelRef) -> anyhow::Result<Option<WorkingCopyGuard>> {
        self.try_model(Mode::Shared, model)
    }

    /// Tries, without waiting, the locks the background hydrator needs to
    /// fetch into `model`: `None` when a foreground command holds or waits
    /// for any of them.
    ///
    /// # Errors
    /// When the lock files cannot be created or locked.
    pub fn try_background(&self, model: &ModelRef) -> anyhow::Result<Option<WorkingCopyGuard>> {
        self.try_model(Mode::Exclusive, model)
    }

    /// Tries the gate (in `gate` mode, let go once through), then the
    /// working copy (shared) and `model`'s lock.
    fn try_model(&self, gate: Mode, model: &ModelRef) -> anyhow::Result<Option<WorkingCopyGuard>> {
        let gate_file = self.open("gate")?;
        if !try_lock(&gate_file, gate)? {
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
        let state = host_state_dir(&self.local_dir);
        let relative = Path::new("locks").join(name);
        Beneath::create(&state)
            .and_then(|dir| dir.open_or_create(&relative))
            .with_context(|| {
                format!(
                    "cannot open the lock file {}",
                    state.join(&relative).display()
                )
            })
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

/// Waits for `file`'s lock by polling (5 ms, doubling to 50 ms): a
/// blocking `flock` in a worker thread could not be cancelled, and a
/// runtime waits for its blocking threads before the process can exit.
async fn wait_for(file: &File, mode: Mode, what: &str) -> anyhow::Result<()> {
    let mut pause = std::time::Duration::from_millis(5);
    let mut said = false;
    while !try_lock(file, mode)? {
        if !said {
            tracing::info!("waiting for another silt process of this working copy ({what})");
            said = true;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
    Ok(())
}

/// A file name for the model's lock: the model type may hold `/` and any
/// character a file name cannot, so the name is a hash — cut to 16 bits, so
/// an extension listing millions of models cannot make the host create
/// millions of files. Models that share a file only share a lock.
fn model_lock_name(model: &ModelRef) -> String {
    let mut hasher = Sha256::new();
    hasher.update(model.model_type.as_bytes());
    hasher.update([0]);
    hasher.update(model.model_id.as_bytes());
    format!("model-{}", hex(&hasher.finalize()[..2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_state_is_beside_the_working_copy_never_in_it() {
        for (local, host) in [
            ("/p/.silt/local", "/p/.silt/local-host"),
            ("/p/.silt/local/", "/p/.silt/local-host"),
            ("/p/wc/./", "/p/wc-host"),
            ("/p/wc/sub/..", "/p/wc-host"),
        ] {
            assert_eq!(host_state_dir(Path::new(local)), Path::new(host), "{local}");
        }
    }

    fn model(id: &str) -> ModelRef {
        ModelRef {
            model_type: "t".to_owned(),
            model_id: id.to_owned(),
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
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
    fn a_command_waiting_for_a_busy_model_does_not_hold_up_others() {
        let dir = tempfile::tempdir().unwrap();
        let locks = WorkingCopyLocks::new(dir.path());
        let a = [model("a")];
        let busy = block_on(locks.foreground(Claim::Models(&a))).unwrap();
        let waiter = {
            let locks = locks.clone();
            std::thread::spawn(move || {
                let a = [model("a")];
                block_on(locks.foreground(Claim::Models(&a))).unwrap()
            })
        };
        // Once the waiter waits (holding the gate shared), the hydrator
        // starts nothing...
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while let Some(guard) = locks.try_background(&model("c")).unwrap() {
            drop(guard);
            assert!(
                std::time::Instant::now() < deadline,
                "the gate never closed"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // ...but a command on another model gets through.
        let b = [model("b")];
        let other = block_on(async {
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                locks.foreground(Claim::Models(&b)),
            )
            .await
        })
        .expect("held up by a command waiting for another model")
        .unwrap();
        drop((busy, other));
        drop(waiter.join().unwrap());
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
