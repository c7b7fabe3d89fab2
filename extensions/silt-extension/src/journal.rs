//! The change journal: how a pull learns that nothing changed from one
//! LIST request, however many models the datastore has, without a shared
//! object every commit must update.
//!
//! Every commit first *announces* itself: it writes an empty object
//! `_journal/<ms>.<token>.<type/id>` (its writer's clock, the commit's
//! token, the model with `%` and `/` percent-encoded: one object directly
//! under `_journal/`, no directories on stores that keep them), and only
//! then compare-and-swaps the model's partition.
//! Keys sort by time, so a reader lists the journal `start-after` the point
//! it has reconciled (its *horizon*) and reads only the models named since.
//! No entry is ever updated: writers of different models still share
//! nothing.
//!
//! Why a change is never missed:
//! - **announced before committed**: a commit that landed has an entry, and
//!   the entry was in the store before the commit was;
//! - **a commit window**: a writer goes on to its compare-and-swap only
//!   with an entry that is at most [`COMMIT_WINDOW_MS`] old (by its own
//!   clock) once it has landed, else it announces again; so an entry that
//!   matters is visible within that window of its timestamp, and the
//!   reader's horizon trails its own clock by [`HORIZON_LAG_MS`] (window
//!   plus [`CLOCK_SKEW_MS`] between machines). The compare-and-swap itself
//!   may land later (a lease check and the host's retries come between):
//!   settling, below, waits for it;
//! - **settled by token**: a reader that saw an entry keeps it *pending*
//!   until the model's partition, as read here, holds the commit's token
//!   (the commit landed and is reflected) or the entry is older than
//!   [`SETTLE_MS`] (the writer died or its commit was refused); a pending
//!   entry holds the horizon back, and its model is read again each pull;
//! - **a periodic full check**: every [`FULL_CHECK_MS`] (or as the
//!   project's setting `journal.full-check-minutes` says) a pull lists every
//!   partition as before, which bounds whatever the assumptions above do
//!   not cover (a clock off by more than [`CLOCK_SKEW_MS`], a host that
//!   keeps retrying a compare-and-swap for longer than [`SETTLE_MS`], a
//!   datastore upgraded while an old writer still ran).
//!
//! ```no_run,standalone_crate
//! use silt_extension::journal;
//! use silt_extension::silt::datastore::types::{Error, ModelRef};
//!
//! /// An index's commit: announce, then compare-and-swap (retrying).
//! fn commit(model: &ModelRef, token: &str) -> Result<(), Error> {
//!     let mut announced = journal::announce(model, token)?;
//!     loop {
//!         // ... read the partition, apply the changes ...
//!         announced.keep_fresh()?; // just before each compare-and-swap
//!         // ... put_owned(...); on a lost race, go round again ...
//! #       break;
//!     }
//!     Ok(())
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::cache_file;
use crate::clock;
use crate::layout::{self, CACHE_STATE_DIR};
use crate::partition::Partition;
use crate::silt::datastore::object_store::{self, PutMode};
use crate::silt::datastore::types::{BackendFailure, Error, ModelRef};
use crate::store;

/// Prefix of every journal entry.
///
/// ```no_run,standalone_crate
/// use silt_extension::{journal, store};
/// # fn main() -> Result<(), silt_extension::silt::datastore::types::Error> {
/// let entries = store::list_all(journal::JOURNAL_PREFIX)?.len();
/// # let _ = entries;
/// # Ok(()) }
/// ```
pub const JOURNAL_PREFIX: &str = "_journal/";

/// A writer goes on to its compare-and-swap only with an entry at most
/// this old (by its own clock) once it has landed; else it announces again.
///
/// ```no_run,standalone_crate
/// assert!(silt_extension::journal::COMMIT_WINDOW_MS < silt_extension::journal::HORIZON_LAG_MS);
/// ```
pub const COMMIT_WINDOW_MS: u64 = 20_000;

/// How far apart two machines' clocks may be for the journal alone to be
/// enough (beyond it, the full check still finds every change).
///
/// ```no_run,standalone_crate
/// assert_eq!(silt_extension::journal::CLOCK_SKEW_MS, 60_000);
/// ```
pub const CLOCK_SKEW_MS: u64 = 60_000;

/// How far behind the reader's clock its horizon stays: an entry stamped
/// earlier than that is in the store by now.
///
/// ```no_run,standalone_crate
/// use silt_extension::journal::{CLOCK_SKEW_MS, COMMIT_WINDOW_MS, HORIZON_LAG_MS};
/// assert_eq!(HORIZON_LAG_MS, COMMIT_WINDOW_MS + CLOCK_SKEW_MS + 10_000);
/// ```
pub const HORIZON_LAG_MS: u64 = COMMIT_WINDOW_MS + CLOCK_SKEW_MS + 10_000;

/// An entry whose commit has not shown after this long is settled anyway:
/// its writer died or its commit was refused. Covers the commit window, the
/// clock skew and a host retrying the compare-and-swap for a few minutes
/// (silt's default `operation_timeout_ms` is 25 s).
///
/// ```no_run,standalone_crate
/// assert!(silt_extension::journal::SETTLE_MS > silt_extension::journal::HORIZON_LAG_MS);
/// ```
pub const SETTLE_MS: u64 = 5 * 60_000;

/// A pull lists every partition at least this often.
///
/// ```no_run,standalone_crate
/// assert_eq!(silt_extension::journal::FULL_CHECK_MS, 10 * 60_000);
/// ```
pub const FULL_CHECK_MS: u64 = 10 * 60_000;

/// The longest full-check interval a project may set: the full check must
/// come round before an entry it may need is pruned
/// (`PRUNE_AFTER_MS > full check + SETTLE_MS`).
pub const MAX_FULL_CHECK_MINUTES: u64 = 50;

/// How often a pull lists every partition: the setting
/// `journal.full-check-minutes` (0 to [`MAX_FULL_CHECK_MINUTES`]; 0: every
/// pull), else [`FULL_CHECK_MS`].
///
/// # Errors
/// `invalid-input` for a setting that is no number in that range.
pub fn full_check_every_ms() -> Result<u64, Error> {
    Ok(
        crate::settings::parsed("journal.full-check-minutes", 0..=MAX_FULL_CHECK_MINUTES)?
            .map_or(FULL_CHECK_MS, |minutes| minutes * 60_000),
    )
}

/// `silt datastore gc` deletes entries older than this: no reader lists
/// them (each lists every partition at least every [`FULL_CHECK_MS`], and
/// its horizon is then at most [`SETTLE_MS`] behind).
///
/// ```no_run,standalone_crate
/// use silt_extension::journal::{FULL_CHECK_MS, PRUNE_AFTER_MS, SETTLE_MS};
/// assert!(PRUNE_AFTER_MS > FULL_CHECK_MS + SETTLE_MS);
/// ```
pub const PRUNE_AFTER_MS: u64 = 60 * 60_000;

/// Where a reader keeps its progress through the journal, in the cache.
const STATE_PATH: &str = "journal/data.json";

/// One journal entry: a commit to one model, announced at `at_ms`.
///
/// ```no_run,standalone_crate
/// use silt_extension::journal::Entry;
/// use silt_extension::silt::datastore::types::ModelRef;
///
/// let model = ModelRef { model_type: "vision/detector".into(), model_id: "m-42".into() };
/// let entry = Entry { at_ms: 1767225600000, token: "1767225600000-9f2c4e1a7b3d5c60".into(), model };
/// let key = entry.key();
/// assert_eq!(key, "_journal/1767225600000.1767225600000-9f2c4e1a7b3d5c60.vision%2Fdetector%2Fm-42");
/// assert_eq!(Entry::parse(&key).map(|parsed| parsed.key()), Some(key));
/// ```
#[derive(Debug, Clone)]
pub struct Entry {
    /// When it was announced, by its writer's clock (ms since the epoch).
    pub at_ms: u64,
    /// The commit's token ([`crate::change::commit_token`]).
    pub token: String,
    /// The model committed to.
    pub model: ModelRef,
}

impl Entry {
    /// Its key: `_journal/<ms, 13 digits>.<token>.<type/id, % and / encoded>`.
    pub fn key(&self) -> String {
        let label = layout::model_label(&self.model)
            .replace('%', "%25")
            .replace('/', "%2F");
        format!("{}.{}.{label}", horizon_key(self.at_ms), self.token)
    }

    /// The entry a key names, or `None` for a key that is not an entry.
    pub fn parse(key: &str) -> Option<Self> {
        let rest = key.strip_prefix(JOURNAL_PREFIX)?;
        let (at, rest) = rest.split_once('.')?;
        // A token has no `.` (it is `<ms>-<hex>`); the label may.
        let (token, encoded) = rest.split_once('.')?;
        let label = decode(encoded)?;
        let (model_type, model_id) = label.rsplit_once('/')?;
        let model = ModelRef {
            model_type: model_type.to_owned(),
            model_id: model_id.to_owned(),
        };
        let plausible = at.len() == 13
            && at.bytes().all(|b| b.is_ascii_digit())
            && !token.is_empty()
            && layout::check_model(&model).is_ok();
        if !plausible {
            return None;
        }
        Some(Self {
            at_ms: at.parse().ok()?,
            token: token.to_owned(),
            model,
        })
    }
}

/// A label as [`Entry::key`] encodes it, decoded; `None` for any other escape
/// (and for a raw `/`, which an encoded label never has).
fn decode(encoded: &str) -> Option<String> {
    let mut label = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(at) = rest.find(['%', '/']) {
        label.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3)?;
        label.push(match escape {
            "%25" => '%',
            "%2F" => '/',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    label.push_str(rest);
    Some(label)
}

/// The key every entry announced at `at_ms` or later sorts after.
///
/// ```no_run,standalone_crate
/// assert_eq!(silt_extension::journal::horizon_key(42), "_journal/0000000000042");
/// ```
pub fn horizon_key(at_ms: u64) -> String {
    format!("{JOURNAL_PREFIX}{at_ms:013}")
}

/// A commit announced in the journal, before its compare-and-swap.
///
/// ```no_run,standalone_crate
/// use silt_extension::journal::Announcement;
///
/// fn after_a_refusal(announced: Announcement) {
///     // The commit will not land: readers need not wait for it.
///     announced.withdraw();
/// }
/// ```
#[derive(Debug)]
pub struct Announcement {
    entry: Entry,
}

/// Announces a commit of `token` to `model`: creates its journal entry.
/// Call it after the commit's content is uploaded and before the first
/// compare-and-swap, and [`Announcement::keep_fresh`] before each one.
///
/// # Errors
/// The store's failure (then do not commit: readers would not learn of it).
///
/// ```no_run,standalone_crate
/// use silt_extension::journal;
/// # use silt_extension::silt::datastore::types::{Error, ModelRef};
/// # fn f(model: &ModelRef, token: &str) -> Result<(), Error> {
/// let announced = journal::announce(model, token)?;
/// # let _ = announced;
/// # Ok(()) }
/// ```
pub fn announce(model: &ModelRef, token: &str) -> Result<Announcement, Error> {
    let entry = Entry {
        at_ms: clock::now_ms(),
        token: token.to_owned(),
        model: model.clone(),
    };
    let key = entry.key();
    // A plain write: the key is this commit's alone (its token), so a
    // retried write only writes the same empty object again.
    object_store::put(&key, &[], &PutMode::Overwrite).map_err(|err| store::error(&key, err))?;
    Ok(Announcement { entry })
}

impl Announcement {
    /// The entry announced.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Announces again while the entry is older than the commit window, so
    /// that the compare-and-swap about to be sent is covered by an entry
    /// readers still look at. Call it before confirming the lease: a slow
    /// announcement must not stand between the confirmation and the
    /// compare-and-swap.
    ///
    /// # Errors
    /// As [`announce`]; a retryable backend failure when three
    /// announcements in a row took longer than the window to land.
    pub fn keep_fresh(&mut self) -> Result<(), Error> {
        for _ in 0..3 {
            if clock::now_ms().saturating_sub(self.entry.at_ms) <= COMMIT_WINDOW_MS {
                return Ok(());
            }
            *self = announce(&self.entry.model, &self.entry.token)?;
        }
        Err(Error::Backend(BackendFailure {
            retryable: true,
            detail: format!(
                "{}: the store took longer than {} s to write each of three announcements of this commit; nothing was committed, try again",
                JOURNAL_PREFIX,
                COMMIT_WINDOW_MS / 1000
            ),
        }))
    }

    /// The commit was refused (a conflict, a lost lease): deletes the entry
    /// so that readers stop waiting for it. Best effort: an entry left
    /// behind is settled by age.
    pub fn withdraw(self) {
        let _ = object_store::delete(&self.entry.key(), None);
    }
}

/// How long a partition remembers a commit's token
/// ([`Partition::recent_commits`]): as long as a reader may wait for an
/// announced commit to show, and the clock skew between the writers that
/// commit to it.
///
/// ```no_run,standalone_crate
/// use silt_extension::journal::{CLOCK_SKEW_MS, RECENT_COMMITS_MS, SETTLE_MS};
/// assert_eq!(RECENT_COMMITS_MS, SETTLE_MS + CLOCK_SKEW_MS);
/// ```
pub const RECENT_COMMITS_MS: u64 = SETTLE_MS + CLOCK_SKEW_MS;

/// The most commit tokens a partition remembers (older ones go first): a
/// model committed to more often than this within [`RECENT_COMMITS_MS`]
/// leaves its readers to settle the rest by age.
///
/// ```no_run,standalone_crate
/// assert_eq!(silt_extension::journal::MAX_RECENT_COMMITS, 32);
/// ```
pub const MAX_RECENT_COMMITS: usize = 32;

/// Records the commit `token` in the partition it is about to write: as
/// its last commit, and among its recent ones ([`holds_commit`] looks
/// there), which keep the tokens of the last [`RECENT_COMMITS_MS`] (by
/// `now_ms`, the committing writer's clock, and the time in each token), at
/// most [`MAX_RECENT_COMMITS`] of them.
///
/// ```no_run,standalone_crate
/// use silt_extension::journal;
/// use silt_extension::partition::Partition;
/// use silt_extension::silt::datastore::types::ModelRef;
///
/// let model = ModelRef { model_type: "t".into(), model_id: "m".into() };
/// let mut slice = Partition::empty("data", &model);
/// journal::record_commit(&mut slice, "1767225600000-9f2c4e1a7b3d5c60", 1_767_225_600_500);
/// assert!(journal::holds_commit(&slice, "1767225600000-9f2c4e1a7b3d5c60"));
/// ```
pub fn record_commit(partition: &mut Partition, token: &str, now_ms: u64) {
    partition.last_commit = token.to_owned();
    let since = now_ms.saturating_sub(RECENT_COMMITS_MS);
    let recent = &mut partition.recent_commits;
    // A token without a time cannot age: the count bounds it.
    recent.retain(|kept| kept != token && clock::token_ms(kept).is_none_or(|at| at >= since));
    recent.push(token.to_owned());
    let over = recent.len().saturating_sub(MAX_RECENT_COMMITS);
    recent.drain(..over);
}

/// True when `partition` shows the commit `token`: an entry of that
/// version, the token of the last commit, or one of the recent commits'
/// (a commit without entries, followed by others).
///
/// ```no_run,standalone_crate
/// use silt_extension::journal;
/// use silt_extension::partition::Partition;
///
/// fn landed(slice: &Partition, token: &str) -> bool {
///     journal::holds_commit(slice, token)
/// }
/// ```
pub fn holds_commit(partition: &Partition, token: &str) -> bool {
    partition.last_commit == token
        || partition
            .recent_commits
            .iter()
            .any(|recent| recent == token)
        || partition
            .files
            .values()
            .flatten()
            .any(|entry| entry.version == token)
}

/// A reader's progress through the journal (kept in the cache).
///
/// ```no_run,standalone_crate
/// use silt_extension::journal::Progress;
///
/// fn due_for_full_check(progress: &Option<Progress>, now_ms: u64) -> bool {
///     let every = silt_extension::journal::FULL_CHECK_MS;
///     progress.as_ref().is_none_or(|p| p.full_check_due(now_ms, every))
/// }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Every entry at or before this key is reflected here: list after it.
    pub horizon: String,
    /// Entries after the horizon already reflected here (no read needed).
    pub settled: BTreeSet<String>,
    /// When this cache last listed every partition (its own clock).
    pub full_check_ms: u64,
    /// True when every pull since that full check fetched every missing
    /// file: a full clone's models named nowhere in the journal since are
    /// still complete.
    #[serde(default)]
    pub complete: bool,
}

impl Progress {
    /// True when the last full check is `every_ms` old (or in the future:
    /// this machine's clock went back).
    pub fn full_check_due(&self, now_ms: u64, every_ms: u64) -> bool {
        now_ms < self.full_check_ms || now_ms - self.full_check_ms >= every_ms
    }

    /// The entries of `listed` this cache has not settled yet, by model.
    pub fn unsettled<'a>(&self, listed: &'a [Entry]) -> BTreeMap<String, Vec<&'a Entry>> {
        let mut by_model: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
        for entry in listed {
            if !self.settled.contains(&entry.key()) {
                by_model
                    .entry(layout::model_label(&entry.model))
                    .or_default()
                    .push(entry);
            }
        }
        by_model
    }

    /// The progress after a pull that saw `listed` and settled those for
    /// which `settled` says so, at `now_ms` (the reader's clock when it
    /// listed), after a full check when `full_check` is true. (`complete`
    /// is carried over; the pull says whether it still holds.)
    ///
    /// The horizon moves to the first entry still pending, or to
    /// [`HORIZON_LAG_MS`] before `now_ms` if none is; never backwards.
    pub fn advance(
        &self,
        listed: &[Entry],
        mut settled: impl FnMut(&Entry) -> bool,
        now_ms: u64,
        full_check: bool,
    ) -> Self {
        let mut horizon = horizon_key(now_ms.saturating_sub(HORIZON_LAG_MS));
        let mut done = BTreeSet::new();
        for entry in listed {
            let key = entry.key();
            let age = now_ms.saturating_sub(entry.at_ms);
            if self.settled.contains(&key) || age > SETTLE_MS || settled(entry) {
                done.insert(key);
            } else if key <= horizon {
                // Pending: listed again (and its model read) next time.
                horizon = pending_horizon(&key);
            }
        }
        if horizon < self.horizon {
            horizon = self.horizon.clone();
        }
        done.retain(|key| *key > horizon);
        Self {
            horizon,
            settled: done,
            full_check_ms: if full_check {
                now_ms
            } else {
                self.full_check_ms
            },
            complete: self.complete,
        }
    }
}

/// The greatest key that sorts before `key` as far as a listing
/// `start-after` it is concerned: `key` itself is listed again.
fn pending_horizon(key: &str) -> String {
    // Every entry key ends with a model id (non-empty), so the key without
    // its last character (a prefix of it) sorts before it and after
    // everything that sorts before it.
    let mut before = key.to_owned();
    before.pop();
    before
}

/// This cache's progress, `None` when it has none (or it does not parse:
/// then the next pull is a full check).
pub fn load_progress() -> Option<Progress> {
    let bytes = crate::cache_file::read_file(&format!("{CACHE_STATE_DIR}/{STATE_PATH}")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Saves this cache's progress: atomically, but without waiting for the
/// disk (a pull that changed nothing would otherwise wait for every dirty
/// file of the file system). Losing it costs a full check: an older copy
/// lists more, and a missing or torn one is none.
///
/// # Errors
/// `invalid-input` when the cache cannot be written.
pub fn save_progress(progress: &Progress) -> Result<(), Error> {
    let bytes = serde_json::to_vec(progress).expect("progress serializes");
    cache_file::write_atomic_unsynced(&format!("{CACHE_STATE_DIR}/{STATE_PATH}"), &bytes)
}

/// The models, by label, whose commits this cache may not hold yet: those
/// named by the entries after its horizon that it has not settled (one
/// LIST, as a pull's journal pass makes). Every other model's sidecar
/// holds every commit announced so far, if the sidecar has a slice at all.
/// `None` when the progress cannot tell (there is none, or a full check is
/// due): then any model may have changed.
///
/// # Errors
/// The store's failure; `invalid-input` for a `journal.full-check-minutes`
/// setting out of its range.
///
/// ```no_run,standalone_crate
/// use silt_extension::journal;
/// use silt_extension::layout;
/// use silt_extension::silt::datastore::types::{Error, ModelRef};
///
/// /// True when the journal vouches that this cache holds `model`'s latest slice.
/// fn held(model: &ModelRef) -> Result<bool, Error> {
///     Ok(journal::possibly_changed()?.is_some_and(|named| !named.contains(&layout::model_label(model))))
/// }
/// ```
pub fn possibly_changed() -> Result<Option<BTreeSet<String>>, Error> {
    let Some(progress) = load_progress() else {
        return Ok(None);
    };
    if progress.full_check_due(clock::now_ms(), full_check_every_ms()?) {
        return Ok(None);
    }
    let listed = list_after(&progress.horizon)?;
    Ok(Some(progress.unsettled(&listed).into_keys().collect()))
}

/// Forgets this cache's progress (the datastore has no journal): the next
/// pull is a full check.
pub fn forget_progress() {
    let _ = std::fs::remove_file(layout::in_cache(&format!("{CACHE_STATE_DIR}/{STATE_PATH}")));
}

/// The entries after `horizon`, oldest first (one LIST page per 1,000).
///
/// # Errors
/// The store's failure.
pub fn list_after(horizon: &str) -> Result<Vec<Entry>, Error> {
    let mut entries = Vec::new();
    let mut after = Some(horizon.to_owned());
    loop {
        let page = object_store::list(JOURNAL_PREFIX, after.as_deref(), 1000)
            .map_err(|err| store::error(JOURNAL_PREFIX, err))?;
        entries.extend(page.items.iter().filter_map(|meta| Entry::parse(&meta.key)));
        match page.next_start_after {
            Some(next) => after = Some(next),
            None => return Ok(entries),
        }
    }
}

/// Deletes entries announced more than `older_than_ms` before `now_ms`;
/// returns how many. Readers never need an entry older than a full check
/// plus [`SETTLE_MS`] (they list every partition at least that often).
///
/// # Errors
/// The store's failure on the listing; a failed delete is left for the next
/// time.
pub fn prune(now_ms: u64, older_than_ms: u64) -> Result<u64, Error> {
    let cutoff = horizon_key(now_ms.saturating_sub(older_than_ms));
    let mut deleted = 0;
    let mut after: Option<String> = None;
    loop {
        let page = object_store::list(JOURNAL_PREFIX, after.as_deref(), 1000)
            .map_err(|err| store::error(JOURNAL_PREFIX, err))?;
        for meta in &page.items {
            if meta.key >= cutoff {
                return Ok(deleted);
            }
            if object_store::delete(&meta.key, None).is_ok() {
                deleted += 1;
            }
        }
        match page.next_start_after {
            Some(next) => after = Some(next),
            None => return Ok(deleted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at_ms: u64, token: &str, id: &str) -> Entry {
        Entry {
            at_ms,
            token: token.to_owned(),
            model: ModelRef {
                model_type: "vision/detector".to_owned(),
                model_id: id.to_owned(),
            },
        }
    }

    const NOW: u64 = 1_767_225_600_000;

    #[test]
    fn keys_round_trip_and_sort_by_time() {
        let early = entry(NOW, "1767225600000-aa", "m-9");
        let late = entry(NOW + 1, "1767225600001-00", "m-1");
        let parsed = Entry::parse(&early.key()).unwrap();
        assert_eq!(
            (
                parsed.at_ms,
                parsed.token.as_str(),
                parsed.model.model_type.as_str(),
                parsed.model.model_id.as_str()
            ),
            (NOW, "1767225600000-aa", "vision/detector", "m-9")
        );
        assert!(early.key() < late.key());
        assert!(horizon_key(NOW) < early.key());
        assert!(early.key() < horizon_key(NOW + 1));
        // `%` and `/` in a label survive; `.` splits nothing after the token.
        let odd = Entry {
            model: ModelRef {
                model_type: "a%2F/b.c".to_owned(),
                model_id: "m.1%".to_owned(),
            },
            ..early.clone()
        };
        let parsed = Entry::parse(&odd.key()).unwrap();
        assert_eq!(
            (
                parsed.model.model_type.as_str(),
                parsed.model.model_id.as_str()
            ),
            ("a%2F/b.c", "m.1%")
        );
        assert!(
            !odd.key()[JOURNAL_PREFIX.len()..].contains('/'),
            "{}",
            odd.key()
        );
        // Not entries: other prefixes, a short stamp, no model, a bad model,
        // a raw `/` or another escape.
        for key in [
            "_index/data/vision/m-1.json",
            "_journal/123.t.vision%2Fm-1",
            "_journal/1767225600000.t.m-1",
            "_journal/1767225600000.vision%2Fm-1",
            "_journal/1767225600000.t.vision%2F..%2Fm-1",
            "_journal/1767225600000.t.vision/m-1",
            "_journal/1767225600000.t.vision%2fm-1",
            "_journal/1767225600000.t.vision%2",
        ] {
            assert!(Entry::parse(key).is_none(), "{key}");
        }
    }

    #[test]
    fn a_pending_entry_holds_the_horizon_and_is_listed_again() {
        // Older than the lag, younger than SETTLE_MS: it holds the horizon.
        let stamped = NOW - HORIZON_LAG_MS - 5_000;
        let pending = entry(stamped, "t-pending", "m-1");
        let landed = entry(NOW - 4_000, "t-landed", "m-2");
        let listed = vec![pending.clone(), landed.clone()];
        let next = Progress::default().advance(&listed, |e| e.token == "t-landed", NOW, false);
        assert!(
            next.horizon < pending.key(),
            "the pending entry is listed again"
        );
        assert!(next.horizon > horizon_key(stamped - 1));
        // Pending inside the lag: the horizon is the lag's.
        let young = entry(NOW - 1_000, "t-young", "m-3");
        let lagging = Progress::default().advance(&[young], |_| false, NOW, false);
        assert_eq!(lagging.horizon, horizon_key(NOW - HORIZON_LAG_MS));
        assert!(lagging.settled.is_empty());
        assert!(next.settled.contains(&landed.key()));
        assert!(!next.settled.contains(&pending.key()));
        assert_eq!(next.unsettled(&listed).len(), 1);
        // Once its commit shows, the horizon moves on to the lag.
        let later = next.advance(&listed, |_| true, NOW + 1_000, false);
        assert_eq!(later.horizon, horizon_key(NOW + 1_000 - HORIZON_LAG_MS));
        // Entries inside the lag stay remembered as settled; older ones
        // are behind the horizon and forgotten.
        assert!(later.settled.contains(&landed.key()));
        assert!(!later.settled.contains(&pending.key()));
        let relisted: Vec<Entry> = listed
            .iter()
            .filter(|e| e.key() > later.horizon)
            .cloned()
            .collect();
        assert_eq!(relisted.len(), 1);
        assert!(later.unsettled(&relisted).is_empty());
    }

    #[test]
    fn an_entry_whose_commit_never_shows_settles_by_age() {
        let abandoned = entry(NOW, "t-dead", "m-1");
        let listed = vec![abandoned.clone()];
        let soon = Progress::default().advance(&listed, |_| false, NOW + SETTLE_MS, false);
        assert!(soon.horizon < abandoned.key());
        let late = soon.advance(&listed, |_| false, NOW + SETTLE_MS + 1, false);
        assert_eq!(
            late.horizon,
            horizon_key(NOW + SETTLE_MS + 1 - HORIZON_LAG_MS)
        );
        assert!(late.horizon > abandoned.key());
        assert!(
            late.settled.is_empty(),
            "nothing after the horizon to remember"
        );
    }

    #[test]
    fn the_horizon_trails_the_clock_and_never_goes_back() {
        let fresh = Progress::default().advance(&[], |_| true, NOW, true);
        assert_eq!(fresh.horizon, horizon_key(NOW - HORIZON_LAG_MS));
        assert_eq!(fresh.full_check_ms, NOW);
        // This machine's clock went back a minute: the horizon stays.
        let back = fresh.advance(&[], |_| true, NOW - 60_000, false);
        assert_eq!(back.horizon, fresh.horizon);
        assert_eq!(back.full_check_ms, NOW);
        assert!(
            back.full_check_due(NOW - 60_000, FULL_CHECK_MS),
            "a clock that went back re-checks"
        );
        assert!(!fresh.full_check_due(NOW + FULL_CHECK_MS - 1, FULL_CHECK_MS));
        assert!(fresh.full_check_due(NOW + FULL_CHECK_MS, FULL_CHECK_MS));
        assert!(fresh.full_check_due(NOW, 0));
    }

    #[test]
    fn an_entry_stamped_behind_the_horizon_by_a_slow_clock_is_still_listed() {
        // A writer whose clock is CLOCK_SKEW_MS behind announces just before
        // its compare-and-swap; the reader pulled a moment earlier.
        let progress = Progress::default().advance(&[], |_| true, NOW, false);
        let skewed = entry(NOW - CLOCK_SKEW_MS - COMMIT_WINDOW_MS, "t", "m-1");
        assert!(skewed.key() > progress.horizon);
    }

    #[test]
    fn holds_commit_looks_at_entries_and_the_last_commit() {
        let model = entry(NOW, "t", "m-1").model;
        let mut slice = Partition::empty("data", &model);
        assert!(!holds_commit(&slice, "t-1"));
        slice.last_commit = "t-gc".to_owned();
        assert!(holds_commit(&slice, "t-gc"));
        slice.files.insert(
            "w.bin".to_owned(),
            vec![crate::partition::Entry {
                version: "t-1".to_owned(),
                size: 1,
                sha256: String::new(),
                generation: 1,
                writer: String::new(),
                committed_at: NOW,
                deleted: false,
            }],
        );
        assert!(holds_commit(&slice, "t-1"));
        assert!(!holds_commit(&slice, "t-2"));
    }

    #[test]
    fn a_partition_remembers_its_recent_commits_by_age_and_count() {
        let model = entry(NOW, "t", "m-1").model;
        let mut slice = Partition::empty("data", &model);
        let at = |ms: u64| format!("{ms:013}-9f2c4e1a7b3d5c60");
        let now = NOW;
        record_commit(
            &mut slice,
            &at(now - RECENT_COMMITS_MS - 1),
            now - RECENT_COMMITS_MS - 1,
        );
        record_commit(&mut slice, "v-no-time", now - 1);
        record_commit(&mut slice, &at(now - 1), now - 1);
        // The same token again (a retried write re-applied) is kept once.
        record_commit(&mut slice, &at(now - 1), now - 1);
        record_commit(&mut slice, &at(now), now);
        assert_eq!(slice.last_commit, at(now));
        assert_eq!(
            slice.recent_commits,
            ["v-no-time".to_owned(), at(now - 1), at(now)]
        );
        for i in 0..(MAX_RECENT_COMMITS as u64 + 5) {
            record_commit(&mut slice, &at(now + i), now + i);
        }
        assert_eq!(slice.recent_commits.len(), MAX_RECENT_COMMITS);
        assert_eq!(
            slice.recent_commits.last(),
            Some(&at(now + MAX_RECENT_COMMITS as u64 + 4))
        );
    }

    #[test]
    fn a_commit_without_entries_still_shows_after_later_commits() {
        let model = entry(NOW, "t", "m-1").model;
        let mut slice = Partition::empty("data", &model);
        let gc = format!("{}-00aa", NOW - 2_000);
        record_commit(&mut slice, &gc, NOW - 2_000);
        record_commit(&mut slice, &format!("{}-00bb", NOW - 1_000), NOW - 1_000);
        record_commit(&mut slice, &format!("{NOW}-00cc"), NOW);
        assert_ne!(slice.last_commit, gc);
        assert!(holds_commit(&slice, &gc), "{slice:?}");
        // A reader waits for no announced commit longer than SETTLE_MS: the
        // partition need not remember one for longer (nor does it).
        record_commit(
            &mut slice,
            &format!("{}-00dd", NOW + RECENT_COMMITS_MS + 2_001),
            NOW + RECENT_COMMITS_MS + 2_001,
        );
        assert!(!holds_commit(&slice, &gc), "{slice:?}");
    }
}
