//! Background hydration: after a command, a detached low-priority process
//! fetches the rest of a lazy clone (`[datastore] background =
//! "after-command"`).
//!
//! - One hydrator per working copy: it holds the `background-hydrator` lock
//!   for its whole life; a second one exits at once.
//! - It never blocks a foreground command and never overwrites what one
//!   wrote: it works model by model, in slices of at most
//!   [`FILES_PER_SLICE`] files, each under the model's working-copy lock
//!   taken with *try* ([`WorkingCopyLocks::try_background`]); a model a
//!   foreground command holds is skipped and retried later. Under the lock
//!   the extension plans against what is on disk, and a plan never replaces
//!   a locally changed file.
//! - Safe to kill at any moment: every download lands by rename of a
//!   verified temporary file, the locks die with the process, and the next
//!   run removes the dead process's temporary files and skips what is
//!   present.
//! - Its progress is a small JSON state file that `silt datastore hydrate
//!   --status` reads.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::Datastore;
use super::holder::now_ms;
use super::hydration::remove_leftover_downloads;
use super::working_copy_lock::{WorkingCopyGuard, WorkingCopyLocks, host_state_dir};

/// The hydrator's state, under the host's state directory.
const STATE_FILE: &str = "background-hydration.json";
/// The hydrator's log, beside it.
const LOG_FILE: &str = "background-hydration.log";
use crate::beneath::Beneath;
use crate::locations::{ENV_CONFIG, ENV_EXECUTION, Locations};
use crate::runtime::bindings::exports::silt::datastore::hydration::HydrateOptions;
use crate::runtime::bindings::silt::datastore::types::{LocalEdits, ModelRef, Scope};

/// Files fetched per locked step: bounds how long a foreground command that
/// wants the same model waits (one slice), whatever the model's size.
const FILES_PER_SLICE: u64 = 256;

/// Rounds in a row a model may go without progress (the host's store
/// delivered no bytes, or the extension's count of what remains did not go
/// down) before the hydrator gives up on it: an extension that keeps
/// answering "more to do" and does nothing must not keep a CPU busy
/// forever. Also the slack of [`ModelProgress::allowed`].
const ROUNDS_WITHOUT_PROGRESS: u32 = 3;

/// How one model's slices are going.
#[derive(Debug, Default)]
struct ModelProgress {
    /// Rounds so far.
    rounds: u64,
    /// Rounds in a row without progress.
    stalled: u32,
    /// What the extension said remained after the last round.
    remaining: Option<u64>,
    /// The most rounds the model may take, once it has taken a few: its
    /// files (as `list-files` lists them, each named in the answer, so no
    /// bigger than what the extension sends) in slices, and the slack.
    allowed: Option<u64>,
}

impl ModelProgress {
    /// True once the model has taken enough rounds to be given a limit.
    fn needs_allowance(&self) -> bool {
        self.allowed.is_none() && self.rounds >= u64::from(ROUNDS_WITHOUT_PROGRESS)
    }

    /// Limits the model to the rounds `files` need.
    fn allow_for(&mut self, files: usize) {
        let slices = (files as u64).div_ceil(FILES_PER_SLICE);
        self.allowed = Some(slices.saturating_add(u64::from(ROUNDS_WITHOUT_PROGRESS)));
    }

    /// Notes a round whose downloads brought `fetched` bytes (as the host's
    /// store counted them) and left `remaining` (as the extension says);
    /// the reason to give up, once there is one.
    fn after_round(&mut self, fetched: u64, remaining: u64) -> Option<String> {
        self.rounds += 1;
        if let Some(allowed) = self.allowed
            && self.rounds > allowed
        {
            return Some(format!(
                "{} rounds, more than its files need ({allowed} with slack; {remaining} objects said to remain)",
                self.rounds
            ));
        }
        let went_down = self.remaining.is_none_or(|before| remaining < before);
        self.remaining = Some(remaining);
        if fetched > 0 && went_down {
            self.stalled = 0;
            return None;
        }
        self.stalled += 1;
        (self.stalled >= ROUNDS_WITHOUT_PROGRESS).then(|| {
            format!(
                "{ROUNDS_WITHOUT_PROGRESS} rounds in a row fetched nothing or left as much to do ({remaining} objects said to remain)"
            )
        })
    }
}

/// The first few of `items`, and how many more there are.
fn first_few(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let shown = items[..items.len().min(SHOWN)].join(", ");
    match items.len().saturating_sub(SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// A model as a map key.
fn model_key(model: &ModelRef) -> (String, String) {
    (model.model_type.clone(), model.model_id.clone())
}

/// The lock a running hydrator holds.
const WORKER_LOCK: &str = "background-hydrator";

/// Attempts at the worker lock, 20 ms apart, before concluding that
/// another hydrator holds it.
const WORKER_LOCK_TRIES: usize = 5;

/// How long to sleep when every model left is held by foreground commands.
const BUSY_PAUSE: Duration = Duration::from_millis(200);

/// How often the state file is rewritten while fetching.
const STATE_INTERVAL: Duration = Duration::from_millis(250);

/// Where a background hydrator is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Listing models or fetching.
    Running,
    /// Every model's latest files are present (or locally changed).
    Done,
    /// Stopped on an error (see `error`); the next command starts it again.
    Failed,
}

/// The state file of the background hydrator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackgroundState {
    /// The hydrator's process id.
    pub pid: u32,
    /// Its phase as it last wrote it.
    pub phase: Phase,
    /// When it started (ms since the Unix epoch).
    pub started_ms: u64,
    /// When it last wrote this file.
    pub updated_ms: u64,
    /// Models in the store.
    pub models_total: usize,
    /// Models whose latest files are all present.
    pub models_done: usize,
    /// Files fetched by this run.
    pub files_fetched: u64,
    /// Bytes fetched by this run.
    pub bytes_fetched: u64,
    /// Times a model was skipped because a foreground command held it.
    pub yielded: u64,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// The state file and whether a hydrator is running now.
#[derive(Debug, Clone, Serialize)]
pub struct BackgroundStatus {
    /// True when a hydrator holds the lock now.
    pub running: bool,
    /// The last state written, if any run ever did.
    pub last: Option<BackgroundState>,
}

/// Largest state file read back (it is a few hundred bytes).
const STATE_LIMIT: u64 = 1 << 20;

/// The background hydrator of the working copy in `local_dir`.
#[derive(Debug, Clone)]
pub struct BackgroundHydration {
    local_dir: PathBuf,
    locks: WorkingCopyLocks,
}

impl BackgroundHydration {
    /// The background hydration of the working copy in `local_dir`.
    pub fn new(local_dir: &Path) -> Self {
        Self {
            local_dir: local_dir.to_owned(),
            locks: WorkingCopyLocks::new(local_dir),
        }
    }

    /// The state file.
    fn state_path(&self) -> PathBuf {
        host_state_dir(&self.local_dir).join(STATE_FILE)
    }

    /// The hydrator's log (stdout and stderr, appended).
    pub fn log_path(&self) -> PathBuf {
        host_state_dir(&self.local_dir).join(LOG_FILE)
    }

    /// Whether a hydrator runs and what the last one wrote.
    ///
    /// # Errors
    /// When the lock cannot be checked.
    pub fn status(&self) -> anyhow::Result<BackgroundStatus> {
        let running = self.locks.try_exclusive(WORKER_LOCK)?.is_none();
        let last = Beneath::open(&host_state_dir(&self.local_dir))
            .and_then(|dir| dir.read(STATE_FILE, STATE_LIMIT))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        Ok(BackgroundStatus { running, last })
    }

    /// Starts a detached hydrator (`silt datastore hydrate --worker`) unless
    /// one runs. It outlives this process, is not in its process group (a
    /// Ctrl-C on this terminal does not stop it) and writes its log to
    /// [`Self::log_path`]. Returns its pid, or `None` when one was running.
    ///
    /// # Errors
    /// When the process cannot be started.
    pub fn spawn(&self, locations: &Locations) -> anyhow::Result<Option<u32>> {
        if self.locks.try_exclusive(WORKER_LOCK)?.is_none() {
            return Ok(None);
        }
        let exe = std::env::current_exe().context("cannot find the silt executable")?;
        let log_path = self.log_path();
        let log = Beneath::create(&host_state_dir(&self.local_dir))
            .and_then(|dir| dir.open_append(LOG_FILE))
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let mut command = std::process::Command::new(exe);
        command
            .args(["datastore", "hydrate", "--worker"])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Its log file holds silt's info events, with their times, not a
        // line per request as `-v` would (unless RUST_LOG says otherwise).
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn,silt=info");
        }
        // The same configuration wherever the child looks for it, and where
        // this command was told to run extensions (`--execution`): the
        // hydrator runs them as this command would have. The rest of the
        // sandbox's settings come from the file and the environment, which
        // the child shares.
        if let Some(config_file) = &locations.config_file {
            command.env(ENV_CONFIG, config_file);
        }
        if let Some(execution) = locations.config.sandbox.forced_execution {
            command.env(ENV_EXECUTION, execution.as_str());
        }
        // Its trace hangs beneath the command that started it, when spans
        // are recorded (it exports them itself, as the environment says).
        if let Some(traceparent) = silt_telemetry::traceparent(&tracing::Span::current()) {
            command.env(silt_telemetry::propagation::TRACEPARENT, traceparent);
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt as _;
            command.process_group(0);
        }
        let mut child = command
            .spawn()
            .context("cannot start the background hydrator")?;
        let pid = child.id();
        // Reaped when it ends, should this process outlive it; a one-shot
        // `silt` usually exits first, and the hydrator is reparented.
        let _ = std::thread::Builder::new()
            .name("silt-background-reaper".into())
            .spawn(move || child.wait());
        Ok(Some(pid))
    }

    /// Runs the hydrator in this process until every model is present:
    /// returns `None` at once when another one runs.
    ///
    /// # Errors
    /// When listing or a fetch fails (the state file says so too).
    pub async fn run(&self, datastore: &Datastore) -> anyhow::Result<Option<BackgroundState>> {
        let Some(_running) = self.take_worker_lock().await? else {
            return Ok(None);
        };
        let now = now_ms();
        let mut state = BackgroundState {
            pid: std::process::id(),
            phase: Phase::Running,
            started_ms: now,
            updated_ms: now,
            models_total: 0,
            models_done: 0,
            files_fetched: 0,
            bytes_fetched: 0,
            yielded: 0,
            error: None,
        };
        self.save(&mut state)?;
        let result = self.fetch_everything(datastore, &mut state).await;
        match &result {
            Ok(()) => state.phase = Phase::Done,
            Err(err) => {
                state.phase = Phase::Failed;
                state.error = Some(format!("{err:#}"));
            }
        }
        self.save(&mut state)?;
        result.map(|()| Some(state))
    }

    /// The worker lock, tried a few times: `status` and `spawn` hold it for
    /// an instant to see whether a hydrator runs, and a hydrator starting
    /// in that instant must not take it for another one and quit.
    async fn take_worker_lock(&self) -> anyhow::Result<Option<WorkingCopyGuard>> {
        for _ in 0..WORKER_LOCK_TRIES - 1 {
            if let Some(held) = self.locks.try_exclusive(WORKER_LOCK)? {
                return Ok(Some(held));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.locks.try_exclusive(WORKER_LOCK)
    }

    async fn fetch_everything(
        &self,
        datastore: &Datastore,
        state: &mut BackgroundState,
    ) -> anyhow::Result<()> {
        let models = datastore.list_models().await?;
        state.models_total = models.len();
        self.save(state)?;
        // Temporary files of killed downloads (their process is gone), by
        // the walk a pull of everything makes when one is due.
        remove_leftover_downloads(datastore, &Scope::All);
        let mut queue: VecDeque<ModelRef> = models.into();
        let mut progress: HashMap<(String, String), ModelProgress> = HashMap::new();
        let mut given_up: Vec<String> = Vec::new();
        let mut skipped_in_a_row = 0;
        let mut last_saved = Instant::now();
        while let Some(model) = queue.pop_front() {
            let Some(guard) = self.locks.try_background(&model)? else {
                // A foreground command has it: come back to it later.
                state.yielded += 1;
                queue.push_back(model);
                skipped_in_a_row += 1;
                if skipped_in_a_row >= queue.len() {
                    tokio::time::sleep(BUSY_PAUSE).await;
                    skipped_in_a_row = 0;
                }
                continue;
            };
            skipped_in_a_row = 0;
            let options = HydrateOptions {
                include_history: false,
                dry_run: false,
                max_objects: Some(FILES_PER_SLICE),
                local_edits: LocalEdits::Keep,
            };
            let before = datastore.traffic();
            let report = datastore
                .hydrate_scope(std::slice::from_ref(&model), options)
                .await;
            drop(guard);
            let report = report?;
            // Counted by the host's own store, not by what the guest says.
            let fetched = datastore
                .traffic()
                .get_bytes
                .saturating_sub(before.get_bytes);
            state.files_fetched = state
                .files_fetched
                .saturating_add(report.stats.objects_downloaded);
            state.bytes_fetched = state
                .bytes_fetched
                .saturating_add(report.stats.bytes_downloaded);
            if report.objects_remaining == 0 {
                state.models_done += 1;
                progress.remove(&model_key(&model));
            } else if let Some(reason) = {
                let model_progress = progress.entry(model_key(&model)).or_default();
                if model_progress.needs_allowance() {
                    // Outside the model's lock: a read of its index.
                    model_progress.allow_for(datastore.list_files(&model).await?.len());
                }
                model_progress.after_round(fetched, report.objects_remaining)
            } {
                let model_label = super::model_label(&model);
                tracing::warn!("background hydration of {model_label} stopped: {reason}");
                given_up.push(format!("{model_label} ({reason})"));
            } else {
                // More slices to go: back at the front, after the lock
                // was released (a waiting foreground command takes it).
                queue.push_front(model);
            }
            if last_saved.elapsed() >= STATE_INTERVAL {
                self.save(state)?;
                last_saved = Instant::now();
            }
        }
        if !given_up.is_empty() {
            anyhow::bail!(
                "stopped without progress on {} of the models: {}; `silt datastore hydrate` fetches them in the foreground",
                given_up.len(),
                first_few(&given_up)
            );
        }
        Ok(())
    }

    /// Writes the state file atomically (temporary file, rename).
    fn save(&self, state: &mut BackgroundState) -> anyhow::Result<()> {
        state.updated_ms = now_ms();
        let path = self.state_path();
        let bytes = serde_json::to_vec_pretty(state)?;
        Beneath::create(&host_state_dir(&self.local_dir))
            .and_then(|dir| dir.write_atomic(STATE_FILE, &bytes))
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Lowers this process's CPU and I/O priority (nice 10, idle I/O class), so
/// the hydrator leaves the machine to foreground work. Call it before any
/// thread starts: Linux applies both per thread, and threads inherit them.
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on this thread with constant arguments.
        let niced = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
        if niced != 0 {
            tracing::debug!(
                "cannot lower the CPU priority: {}",
                std::io::Error::last_os_error()
            );
        }
        const IOPRIO_WHO_PROCESS: libc::c_long = 1;
        const IOPRIO_CLASS_IDLE: libc::c_long = 3;
        const IOPRIO_CLASS_SHIFT: libc::c_long = 13;
        // SAFETY: as above; ioprio_set takes three integers.
        let ioniced = unsafe {
            libc::syscall(
                libc::SYS_ioprio_set,
                IOPRIO_WHO_PROCESS,
                0 as libc::c_long,
                IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
            )
        };
        if ioniced != 0 {
            tracing::debug!(
                "cannot lower the I/O priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_state_and_not_running_before_any_run() {
        let dir = tempfile::tempdir().unwrap();
        let background = BackgroundHydration::new(dir.path());
        let status = background.status().unwrap();
        assert!(!status.running);
        assert!(status.last.is_none());
    }

    #[test]
    fn a_held_worker_lock_reads_as_running_and_blocks_a_second_spawn() {
        let dir = tempfile::tempdir().unwrap();
        let background = BackgroundHydration::new(dir.path());
        let held = background.locks.try_exclusive(WORKER_LOCK).unwrap();
        assert!(held.is_some());
        assert!(background.status().unwrap().running);
        let locations = crate::locations::Locations::discover(dir.path()).unwrap();
        assert_eq!(background.spawn(&locations).unwrap(), None);
    }

    #[test]
    fn the_state_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let background = BackgroundHydration::new(dir.path());
        let mut state = BackgroundState {
            pid: 7,
            phase: Phase::Failed,
            started_ms: 1,
            updated_ms: 1,
            models_total: 3,
            models_done: 1,
            files_fetched: 10,
            bytes_fetched: 100,
            yielded: 2,
            error: Some("store unreachable".to_owned()),
        };
        background.save(&mut state).unwrap();
        let last = background.status().unwrap().last.unwrap();
        assert_eq!(last.phase, Phase::Failed);
        assert_eq!(last.files_fetched, 10);
        assert_eq!(last.error.as_deref(), Some("store unreachable"));
    }
}
