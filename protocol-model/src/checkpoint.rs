//! A model of the index checkpoint: how a cold clone learns every model's
//! partition from a snapshot plus the change journal, for a model checker.
//!
//! What the datastores we ship do (extensions/silt-extension's
//! `checkpoint` and `journal`), reduced to what decides whether a reader
//! can miss a commit or see one that never landed:
//!
//! - **A commit** announces itself in the journal (an entry stamped with
//!   its writer's clock), then compare-and-swaps its model's partition,
//!   which then holds the commit's token. It may go on to the swap only
//!   while its entry is at most [`COMMIT_WINDOW`] old; else it announces
//!   again. A writer can die at any step.
//! - **A checkpoint writer** takes its `as_of` from its clock *before* it
//!   reads anything, reads every partition (one at a time, interleaved
//!   with commits: a view of different moments), and publishes the
//!   checkpoint (the manifest) only once every chunk has landed. It can
//!   die at any step; what it wrote before the manifest nobody reads.
//! - **A cold reader** takes the newest published checkpoint and then
//!   either lists the journal after the checkpoint's horizon (`as_of` −
//!   [`HORIZON_LAG`]) and reads again each model named by an entry whose
//!   commit the checkpoint's partition does not hold (tier J), or lists
//!   every partition and reads again each whose version the checkpoint
//!   does not have (tier L). Without a checkpoint it reads everything.
//!
//! silt's clones take tier L: it depends on nothing a checkpoint writer
//! says (its clock, its `as_of`), at one LIST per 1,000 models. Tier J is
//! checked too, to show what it would rest on.
//!
//! Clocks agree here (the journal's skew allowance is its own argument, in
//! `journal.rs`); the margin in [`HORIZON_LAG`] is what the code adds on
//! top of window and skew. The properties: a reader that has finished holds
//! every commit acknowledged before it began, and nothing that did not
//! land. [`Rules`] can switch rules off, to show the checker finds what
//! they prevent: a checkpoint taken as the truth without the journal, an
//! `as_of` taken after the reads, a manifest published before its chunks.

use stateright::{Model, Property};

/// How long (ticks) a commit may go on to its swap after its announcement.
pub const COMMIT_WINDOW: u8 = 1;

/// How far (ticks) a checkpoint's journal horizon trails its `as_of`: the
/// window and a tick of margin.
pub const HORIZON_LAG: u8 = COMMIT_WINDOW + 1;

/// The rules the modelled checkpoint and reader follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rules {
    /// A tier-J reader lists the journal after the checkpoint's horizon.
    pub journal: bool,
    /// The checkpoint's `as_of` is taken before its first read.
    pub as_of_before_reads: bool,
    /// The manifest is published only once every chunk has landed (and a
    /// reader refuses a checkpoint with a chunk missing).
    pub chunks_before_manifest: bool,
}

impl Rules {
    /// What silt does.
    pub const SILT: Rules = Rules {
        journal: true,
        as_of_before_reads: true,
        chunks_before_manifest: true,
    };

    /// A checkpoint taken as the truth: no journal after it.
    pub const WITHOUT_JOURNAL: Rules = Rules {
        journal: false,
        ..Rules::SILT
    };

    /// `as_of` taken when the checkpoint is published, after its reads.
    pub const AS_OF_AFTER_READS: Rules = Rules {
        as_of_before_reads: false,
        ..Rules::SILT
    };

    /// A manifest published before every chunk landed, and read as whole.
    pub const PUBLISHED_BEFORE_CHUNKS: Rules = Rules {
        chunks_before_manifest: false,
        ..Rules::SILT
    };
}

/// How much of the world to explore.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Committing clients.
    pub writers: u8,
    /// Models (each with its partition).
    pub models: u8,
    /// Commits begun, across every writer (at most 8).
    pub max_commits: u8,
    /// Checkpoints begun, one writer at a time each (concurrent ones race).
    pub checkpoint_writers: u8,
    /// Ticks of time.
    pub max_time: u8,
}

/// The checkpoint protocol under `bounds`: a [`Model`] for stateright.
#[derive(Clone, Debug)]
pub struct CheckpointProtocol {
    /// The rules.
    pub rules: Rules,
    /// The bounds.
    pub bounds: Bounds,
}

/// A partition as read: its version and the commits it holds (a bit each).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Read {
    version: u8,
    commits: u8,
}

/// A commit between its announcement and its swap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Announced {
    commit: u8,
    model: u8,
    stamp: u8,
}

/// A checkpoint being written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Writing {
    /// Its clock when it began (taken before any read).
    began: u8,
    /// Its chunks, a partition each: `None` until read.
    chunks: Vec<Option<Read>>,
}

/// A published checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    as_of: u8,
    /// `None`: a chunk that never landed.
    chunks: Vec<Option<Read>>,
}

/// A cold reader.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reader {
    /// Not begun.
    Idle,
    /// Reading again the models it must.
    Reading {
        /// Commits acknowledged before it began: it must hold each.
        owed: u8,
        /// What it holds, per model.
        view: Vec<Read>,
        /// Models still to read from the store (a bit each).
        to_read: u8,
        /// It started from a checkpoint.
        from_checkpoint: bool,
        /// The journal named a commit the checkpoint did not hold.
        caught_up: bool,
    },
    /// Finished.
    Done {
        /// It held every commit it owed.
        complete: bool,
        /// It held only commits that landed.
        landed_only: bool,
        /// It started from a checkpoint.
        from_checkpoint: bool,
        /// The journal named a commit the checkpoint did not hold.
        caught_up: bool,
    },
}

/// The whole system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct World {
    time: u8,
    next_commit: u8,
    partitions: Vec<Read>,
    /// Journal entries: (stamp, commit, model).
    journal: Vec<(u8, u8, u8)>,
    /// Commits acknowledged (landed), a bit each.
    landed: u8,
    writers: Vec<Option<Announced>>,
    writing: Vec<Option<Writing>>,
    /// Checkpoint writers that have begun (each begins once).
    begun: u8,
    checkpoints: Vec<Checkpoint>,
    reader: Reader,
}

/// What can happen next.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Time passes.
    Tick,
    /// Writer announces a new commit to a model.
    Announce(u8, u8),
    /// Writer announces its commit again (its entry is too old).
    Reannounce(u8),
    /// Writer's compare-and-swap lands its commit.
    Swap(u8),
    /// Writer is killed (its entry stays).
    Crash(u8),
    /// Checkpoint writer begins.
    BeginCheckpoint(u8),
    /// Checkpoint writer reads a partition into its chunk.
    ReadChunk(u8, u8),
    /// Checkpoint writer publishes its manifest.
    Publish(u8),
    /// Checkpoint writer is killed.
    CrashCheckpoint(u8),
    /// The reader begins, from the newest checkpoint, by the journal (J)
    /// or by listing every partition (L).
    BeginReader { by_journal: bool },
    /// The reader reads a partition from the store.
    ReadPartition(u8),
}

fn bit(i: u8) -> u8 {
    1 << i
}

impl CheckpointProtocol {
    /// What a reader starting now, by the journal or by the listing, holds
    /// and must still read.
    fn begin_reader(&self, world: &World, by_journal: bool) -> Reader {
        let models = self.bounds.models;
        let all = (0..models).fold(0, |set, m| set | bit(m));
        let newest = world
            .checkpoints
            .iter()
            .max_by_key(|checkpoint| checkpoint.as_of)
            // A reader refuses a checkpoint with a chunk missing (it
            // verifies each chunk against the manifest).
            .filter(|checkpoint| {
                !self.rules.chunks_before_manifest || checkpoint.chunks.iter().all(Option::is_some)
            });
        let Some(checkpoint) = newest else {
            return Reader::Reading {
                owed: world.landed,
                view: vec![Read::default(); models as usize],
                to_read: all,
                from_checkpoint: false,
                caught_up: false,
            };
        };
        // A chunk that never landed, read as an empty partition.
        let view: Vec<Read> = checkpoint
            .chunks
            .iter()
            .map(|chunk| chunk.unwrap_or_default())
            .collect();
        let mut to_read = 0;
        if by_journal {
            if self.rules.journal {
                let horizon = checkpoint.as_of.saturating_sub(HORIZON_LAG);
                for &(stamp, commit, model) in &world.journal {
                    if stamp >= horizon && view[model as usize].commits & bit(commit) == 0 {
                        to_read |= bit(model);
                    }
                }
            }
        } else {
            for m in 0..models {
                if world.partitions[m as usize].version != view[m as usize].version {
                    to_read |= bit(m);
                }
            }
        }
        Reader::Reading {
            owed: world.landed,
            view,
            to_read,
            from_checkpoint: true,
            caught_up: to_read != 0,
        }
    }
}

impl Model for CheckpointProtocol {
    type State = World;
    type Action = Action;

    fn init_states(&self) -> Vec<World> {
        let b = &self.bounds;
        vec![World {
            time: 0,
            next_commit: 0,
            partitions: vec![Read::default(); b.models as usize],
            journal: Vec::new(),
            landed: 0,
            writers: vec![None; b.writers as usize],
            writing: vec![None; b.checkpoint_writers as usize],
            begun: 0,
            checkpoints: Vec::new(),
            reader: Reader::Idle,
        }]
    }

    fn actions(&self, world: &World, actions: &mut Vec<Action>) {
        let b = &self.bounds;
        if world.time < b.max_time {
            actions.push(Action::Tick);
        }
        for w in 0..b.writers {
            match world.writers[w as usize] {
                None if world.next_commit < b.max_commits => {
                    for m in 0..b.models {
                        actions.push(Action::Announce(w, m));
                    }
                }
                None => {}
                Some(announced) => {
                    if world.time - announced.stamp <= COMMIT_WINDOW {
                        actions.push(Action::Swap(w));
                    } else {
                        actions.push(Action::Reannounce(w));
                    }
                    actions.push(Action::Crash(w));
                }
            }
        }
        for k in 0..b.checkpoint_writers {
            match &world.writing[k as usize] {
                None if world.begun & bit(k) == 0 => actions.push(Action::BeginCheckpoint(k)),
                None => {}
                Some(writing) => {
                    for m in 0..b.models {
                        if writing.chunks[m as usize].is_none() {
                            actions.push(Action::ReadChunk(k, m));
                        }
                    }
                    let whole = writing.chunks.iter().all(Option::is_some);
                    if whole || !self.rules.chunks_before_manifest {
                        actions.push(Action::Publish(k));
                    }
                    actions.push(Action::CrashCheckpoint(k));
                }
            }
        }
        match &world.reader {
            Reader::Idle => {
                actions.push(Action::BeginReader { by_journal: true });
                actions.push(Action::BeginReader { by_journal: false });
            }
            Reader::Reading { to_read, .. } => {
                for m in 0..b.models {
                    if to_read & bit(m) != 0 {
                        actions.push(Action::ReadPartition(m));
                    }
                }
            }
            Reader::Done { .. } => {}
        }
    }

    fn next_state(&self, world: &World, action: Action) -> Option<World> {
        let mut next = world.clone();
        let now = world.time;
        match action {
            Action::Tick => next.time += 1,
            Action::Announce(w, m) => {
                let commit = world.next_commit;
                next.next_commit += 1;
                next.journal.push((now, commit, m));
                next.writers[w as usize] = Some(Announced {
                    commit,
                    model: m,
                    stamp: now,
                });
            }
            Action::Reannounce(w) => {
                let announced = next.writers[w as usize].as_mut()?;
                announced.stamp = now;
                next.journal.push((now, announced.commit, announced.model));
            }
            Action::Swap(w) => {
                let announced = next.writers[w as usize].take()?;
                let partition = &mut next.partitions[announced.model as usize];
                partition.version += 1;
                partition.commits |= bit(announced.commit);
                next.landed |= bit(announced.commit);
            }
            Action::Crash(w) => next.writers[w as usize] = None,
            Action::BeginCheckpoint(k) => {
                next.begun |= bit(k);
                next.writing[k as usize] = Some(Writing {
                    began: now,
                    chunks: vec![None; self.bounds.models as usize],
                });
            }
            Action::ReadChunk(k, m) => {
                let writing = next.writing[k as usize].as_mut()?;
                writing.chunks[m as usize] = Some(world.partitions[m as usize]);
            }
            Action::Publish(k) => {
                let writing = next.writing[k as usize].take()?;
                let as_of = if self.rules.as_of_before_reads {
                    writing.began
                } else {
                    now
                };
                next.checkpoints.push(Checkpoint {
                    as_of,
                    chunks: writing.chunks,
                });
            }
            Action::CrashCheckpoint(k) => next.writing[k as usize] = None,
            Action::BeginReader { by_journal } => {
                next.reader = self.begin_reader(world, by_journal);
            }
            Action::ReadPartition(m) => {
                let Reader::Reading { view, to_read, .. } = &mut next.reader else {
                    return None;
                };
                view[m as usize] = world.partitions[m as usize];
                *to_read &= !bit(m);
            }
        }
        // A reader with nothing (more) to read has finished.
        if let Reader::Reading {
            owed,
            view,
            to_read: 0,
            from_checkpoint,
            caught_up,
        } = &next.reader
        {
            let held = view.iter().fold(0, |set, read| set | read.commits);
            next.reader = Reader::Done {
                complete: *owed & !held == 0,
                landed_only: held & !next.landed == 0,
                from_checkpoint: *from_checkpoint,
                caught_up: *caught_up,
            };
        }
        Some(next)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(
                "a reader holds every commit acknowledged before it began",
                |_, world: &World| {
                    !matches!(
                        world.reader,
                        Reader::Done {
                            complete: false,
                            ..
                        }
                    )
                },
            ),
            Property::always(
                "a reader holds only commits that landed",
                |_, world: &World| {
                    !matches!(
                        world.reader,
                        Reader::Done {
                            landed_only: false,
                            ..
                        }
                    )
                },
            ),
            // Not vacuous: readers start from checkpoints, and catch up
            // with commits after them.
            Property::sometimes("a reader finishes from a checkpoint", |_, world: &World| {
                matches!(
                    world.reader,
                    Reader::Done {
                        from_checkpoint: true,
                        ..
                    }
                )
            }),
            Property::sometimes(
                "a reader from a checkpoint reads again a model committed after it",
                |_, world: &World| {
                    matches!(
                        world.reader,
                        Reader::Done {
                            from_checkpoint: true,
                            caught_up: true,
                            ..
                        }
                    )
                },
            ),
        ]
    }

    fn within_boundary(&self, world: &World) -> bool {
        world.time <= self.bounds.max_time
    }
}
