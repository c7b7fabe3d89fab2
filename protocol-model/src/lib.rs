//! A model of silt's commit and lease protocol, for a model checker.
//!
//! What the datastores we ship do (extensions/silt-extension), reduced to
//! what decides whether a write can be lost:
//!
//! - **Leases** are lock objects in the store: taken when free or stale (not
//!   renewed for a TTL), each taker getting a higher generation, and the
//!   model's partition *fence* raised to it before the lease is used.
//!   Renewal is a compare-and-swap on the lock object; a lease silent for a
//!   whole TTL is never revived.
//! - **A commit** is: check at the start that the lease copy is fresh
//!   (¾ TTL); later, confirm the lease from the lock object; then one
//!   compare-and-swap of the partition that refuses a generation below the
//!   fence and — since issue 18 — a change whose *base* (the version the
//!   local edit was made from) is not the file's latest.
//! - **An unleased commit** (`silt data put`, since issue 21) takes no
//!   lease: it reads the partition (its version, and the holder recorded
//!   there when a lease raised the fence), asks the lock object only when a
//!   holder is recorded (refused while that lease is live; cleared from the
//!   partition when it has ended), then compare-and-swaps on the version it
//!   read, with the same base check; a lost race reads again.
//! - **A working copy** holds, per file, some content and a stamp (the
//!   version it was last synced at). A pull lands a file and stamps it in
//!   two steps (a kill can fall in between). Content equal to a committed
//!   version is never an edit.
//! - **A leased slice** (`leased_slice.rs`): the fence raise that hands a
//!   lease out records, in the client's cache, the partition version it
//!   wrote, trusted for half a TTL after the acquisition (one clock here,
//!   and no force-release: those are argued in `leased_slice.rs`);
//!   hydration takes it as the model's latest instead of reading the
//!   partition again. Every commit of the client (leased or not) forgets
//!   it before it writes, and so does the release. A record on disk
//!   outlives a crash.
//! - **Anything can stop anywhere:** a client crashes (`kill -9`: its lease
//!   and its commit in flight are gone, its working copy and its cache
//!   stay) or stalls (every step interleaves with everyone else's, and time
//!   passes).
//!
//! The properties, checked exhaustively at small bounds (see the tests):
//! no acknowledged write is overwritten by a commit not made from it, no
//! commit lands under a lease that was taken over, no unleased commit
//! lands while someone holds a live lease on its model, and a read that
//! trusts a leased slice sees the partition's latest version. [`Protocol`] can
//! switch rules off, to show the checker finds the bugs they prevent (the
//! lost updates of issue 18 among them).
//!
//! [`checkpoint`] models the index checkpoint a cold clone starts from,
//! with the change journal after it.

use std::fmt::Debug;

pub mod checkpoint;

use stateright::{Model, Property};

/// Time to live of a lease, in ticks.
const TTL: u8 = 2;

/// A partition's store version is never explored past this. silt's rules
/// bound it on their own (every commit lands a new edit and every lease is
/// counted), but a protocol without base versions can commit the same
/// content again and again, each time a new version: without a bound its
/// state space never ends (and a `u8` overflows).
const MAX_VERSION: u8 = 32;

/// The rules the modelled system follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Protocol {
    /// A commit whose base is not the latest is refused (inside the
    /// compare-and-swap). Missing before issue 18.
    pub base_check: bool,
    /// The partition's fence refuses a generation below it.
    pub fence: bool,
    /// Content equal to a committed version is not an edit. Missing for
    /// stamped files before issue 18 (a killed pull's landed file).
    pub adopt_committed: bool,
    /// Clients without a lease may commit unleased (issue 21).
    pub unleased: bool,
    /// An unleased commit that finds a holder recorded in the partition
    /// asks the lock object and is refused while that lease is live.
    pub recorded_holder: bool,
    /// A client forgets its leased slice before each of its commits and at
    /// release.
    pub forget_leased_slice: bool,
}

impl Protocol {
    /// What silt does today.
    pub const SILT: Protocol = Protocol {
        base_check: true,
        fence: true,
        adopt_committed: true,
        unleased: true,
        recorded_holder: true,
        forget_leased_slice: true,
    };

    /// Before issue 21: every commit under a lease.
    pub const LEASED_ONLY: Protocol = Protocol {
        unleased: false,
        ..Protocol::SILT
    };

    /// Unleased commits that ignore the holder recorded in the partition.
    pub const WITHOUT_RECORDED_HOLDER: Protocol = Protocol {
        recorded_holder: false,
        ..Protocol::SILT
    };

    /// A leased slice kept through the client's own commits and its release.
    pub const LEASED_SLICE_NEVER_FORGOTTEN: Protocol = Protocol {
        forget_leased_slice: false,
        ..Protocol::SILT
    };

    /// Before issue 18: no base versions, stamped content never adopted.
    pub const BEFORE_BASE_VERSIONS: Protocol = Protocol {
        base_check: false,
        adopt_committed: false,
        ..Protocol::SILT
    };

    /// Without the fence: a confirmed lease may be taken over before the
    /// commit's compare-and-swap.
    pub const WITHOUT_FENCE: Protocol = Protocol {
        fence: false,
        ..Protocol::SILT
    };
}

/// How much of the world to explore.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Clients (machines), each with its own working copy.
    pub clients: u8,
    /// Models (each with its lease and partition).
    pub models: u8,
    /// Files per model.
    pub files: u8,
    /// Ticks of time.
    pub max_time: u8,
    /// Distinct contents ever written (edits), across everyone.
    pub max_contents: u8,
    /// Leases granted per model (each takes the next generation).
    pub max_generation: u8,
}

/// The protocol under `bounds`: a [`Model`] for stateright.
#[derive(Clone, Debug)]
pub struct CommitProtocol {
    /// The rules.
    pub protocol: Protocol,
    /// The bounds.
    pub bounds: Bounds,
}

/// A content id; 0 is "no file".
type Content = u8;

/// A lock object in the store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lock {
    holder: u8,
    generation: u8,
    renewed_at: u8,
}

/// One file of a working copy.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Local {
    /// What the file holds (0: absent).
    content: Content,
    /// The version it was last synced at (0: none).
    stamp: Content,
}

/// A lease as its holder keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Held {
    model: u8,
    generation: u8,
    renewed_at: u8,
}

/// A commit on its way.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pending {
    model: u8,
    file: u8,
    content: Content,
    base: Content,
    generation: u8,
    /// The lease was confirmed from the lock object (unleased: the
    /// partition was read, and the lock object if a holder was recorded).
    confirmed: bool,
    /// An unleased commit: the partition version it read, and whether it
    /// clears the recorded holder (whose lease had ended).
    unleased: Option<Unleased>,
}

/// What an unleased commit read before its compare-and-swap.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Unleased {
    read_version: u8,
    clears_holder: bool,
}

/// A leased slice as the client's cache records it: the partition version
/// its lease's fence raise wrote, trusted up to `until`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeasedSlice {
    model: u8,
    version: u8,
    until: u8,
}

/// One client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    lease: Option<Held>,
    /// On disk: survives a crash.
    leased_slice: Option<LeasedSlice>,
    /// `[model][file]`.
    local: Vec<Vec<Local>>,
    pending: Option<Pending>,
}

/// The whole system. What the properties need of the past is kept as
/// flags, not as a log: a log's order would make every interleaving a
/// state of its own.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct World {
    time: u8,
    next_content: Content,
    locks: Vec<Option<Lock>>,
    /// The highest generation ever granted, per model.
    granted: Vec<u8>,
    /// The partition's fence, per model.
    fence: Vec<u8>,
    /// The partition's store version, per model (every write changes it).
    version: Vec<u8>,
    /// The generation of the holder recorded in the partition, per model
    /// (set when a lease raises the fence; cleared by an unleased commit).
    recorded: Vec<Option<u8>>,
    /// The latest version, `[model][file]`.
    latest: Vec<Vec<Content>>,
    /// Every committed version, as a bit set of content ids, `[model][file]`.
    committed: Vec<Vec<u16>>,
    clients: Vec<Client>,
    /// A commit replaced an acknowledged version it was not made from.
    lost_write: bool,
    /// A commit landed under a lease that had been taken over.
    taken_over_commit: bool,
    /// A commit replaced another commit's version, made from it.
    followed_up: bool,
    /// A commit was refused as a conflict.
    refused_conflict: bool,
    /// An unleased commit landed while someone held a live lease on its model.
    unleased_under_lease: bool,
    /// An unleased commit landed.
    unleased_landed: bool,
}

/// What can happen next.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Time passes.
    Tick,
    /// Client takes the lease of a model (free or stale).
    Acquire(u8, u8),
    /// Client renews its lease.
    Renew(u8),
    /// Client releases its lease.
    Release(u8),
    /// Client edits a file of its working copy (a user, or `silt run`'s command).
    Edit(u8, u8, u8),
    /// Client's pull lands the latest version of a file (not stamped yet).
    PullLand(u8, u8, u8),
    /// Client's pull stamps a landed file.
    PullStamp(u8, u8, u8),
    /// Client starts committing an edited file of its lease's model.
    BeginCommit(u8, u8),
    /// Client, holding no lease, starts an unleased commit of an edited file.
    BeginUnleased(u8, u8, u8),
    /// Client confirms its lease from the lock object.
    Confirm(u8),
    /// Client's compare-and-swap of the partition.
    Swap(u8),
    /// Client is killed: its lease and commit in flight are gone.
    Crash(u8),
}

impl CommitProtocol {
    fn stale(&self, lock: &Lock, time: u8) -> bool {
        time.saturating_sub(lock.renewed_at) > TTL
    }

    /// Client `c` has an unleased commit on its way.
    fn unleased_pending(&self, world: &World, c: u8) -> bool {
        world.clients[c as usize]
            .pending
            .as_ref()
            .is_some_and(|pending| pending.unleased.is_some())
    }

    /// A working-copy file is an edit: its content is neither what it was
    /// stamped at nor (with `adopt_committed`) any committed version.
    fn edited(&self, world: &World, model: u8, file: u8, local: &Local) -> bool {
        let (m, f) = (model as usize, file as usize);
        local.content != 0
            && local.content != local.stamp
            && !(self.protocol.adopt_committed && world.committed[m][f] & (1 << local.content) != 0)
    }
}

impl Model for CommitProtocol {
    type State = World;
    type Action = Action;

    fn init_states(&self) -> Vec<World> {
        let b = &self.bounds;
        let (models, files) = (b.models as usize, b.files as usize);
        vec![World {
            time: 0,
            next_content: 1,
            locks: vec![None; models],
            granted: vec![0; models],
            fence: vec![0; models],
            version: vec![0; models],
            recorded: vec![None; models],
            latest: vec![vec![0; files]; models],
            committed: vec![vec![0; files]; models],
            clients: vec![
                Client {
                    lease: None,
                    leased_slice: None,
                    local: vec![vec![Local::default(); files]; models],
                    pending: None,
                };
                b.clients as usize
            ],
            lost_write: false,
            taken_over_commit: false,
            followed_up: false,
            refused_conflict: false,
            unleased_under_lease: false,
            unleased_landed: false,
        }]
    }

    fn actions(&self, world: &World, actions: &mut Vec<Action>) {
        let b = &self.bounds;
        if world.time < b.max_time {
            actions.push(Action::Tick);
        }
        for c in 0..b.clients {
            let client = &world.clients[c as usize];
            // A commit on its way goes on whatever became of the lease
            // (a lost renewal does not stop a guest mid-call): the store
            // must refuse it.
            match &client.pending {
                Some(p) if !p.confirmed => actions.push(Action::Confirm(c)),
                Some(_) => actions.push(Action::Swap(c)),
                None => {}
            }
            match &client.lease {
                None if client.pending.is_none() => {
                    for m in 0..b.models {
                        let free = world.locks[m as usize]
                            .as_ref()
                            .is_none_or(|lock| self.stale(lock, world.time));
                        if free {
                            actions.push(Action::Acquire(c, m));
                        }
                    }
                }
                None => {}
                Some(held) => {
                    actions.push(Action::Renew(c));
                    if client.pending.is_none() {
                        actions.push(Action::Release(c));
                        for f in 0..b.files {
                            let local = &client.local[held.model as usize][f as usize];
                            if self.edited(world, held.model, f, local) {
                                actions.push(Action::BeginCommit(c, f));
                            }
                        }
                    }
                }
            }
            for m in 0..b.models {
                for f in 0..b.files {
                    let local = &client.local[m as usize][f as usize];
                    // One edit at a time per file: editing an edit again
                    // changes nothing the protocol sees.
                    if world.next_content <= b.max_contents && !self.edited(world, m, f, local) {
                        actions.push(Action::Edit(c, m, f));
                    }
                    let idle = client.lease.is_none() && client.pending.is_none();
                    if self.protocol.unleased && idle && self.edited(world, m, f, local) {
                        actions.push(Action::BeginUnleased(c, m, f));
                    }
                    let latest = world.latest[m as usize][f as usize];
                    // A pull refreshes a file that is not edited.
                    if latest != 0 && local.content != latest && !self.edited(world, m, f, local) {
                        actions.push(Action::PullLand(c, m, f));
                    }
                    if local.content == latest && latest != 0 && local.stamp != latest {
                        actions.push(Action::PullStamp(c, m, f));
                    }
                }
            }
            if client.lease.is_some() || client.pending.is_some() {
                actions.push(Action::Crash(c));
            }
        }
    }

    fn next_state(&self, world: &World, action: Action) -> Option<World> {
        let mut next = world.clone();
        let now = world.time;
        match action {
            Action::Tick => {
                next.time += 1;
                // Past its time a record is no longer trusted: as if gone.
                for client in &mut next.clients {
                    if client
                        .leased_slice
                        .as_ref()
                        .is_some_and(|slice| next.time > slice.until)
                    {
                        client.leased_slice = None;
                    }
                }
            }
            Action::Acquire(c, m) => {
                let generation = world.granted[m as usize] + 1;
                next.granted[m as usize] = generation;
                next.locks[m as usize] = Some(Lock {
                    holder: c,
                    generation,
                    renewed_at: now,
                });
                // Raised before the lease is handed out (and the holder
                // recorded with it).
                next.fence[m as usize] = generation;
                next.version[m as usize] += 1;
                next.recorded[m as usize] = Some(generation);
                next.clients[c as usize].lease = Some(Held {
                    model: m,
                    generation,
                    renewed_at: now,
                });
                // Trusted for half the TTL (the code's `until_ms`), well
                // within the lock's life without a renewal.
                next.clients[c as usize].leased_slice = Some(LeasedSlice {
                    model: m,
                    version: next.version[m as usize],
                    until: now + TTL / 2,
                });
            }
            Action::Renew(c) => {
                let held = world.clients[c as usize].lease.clone()?;
                let ours = world.locks[held.model as usize]
                    .as_ref()
                    .is_some_and(|lock| lock.holder == c && lock.generation == held.generation);
                // An expired lease is never revived.
                let expired = now.saturating_sub(held.renewed_at) > TTL;
                if ours && !expired {
                    next.locks[held.model as usize]
                        .as_mut()
                        .expect("ours")
                        .renewed_at = now;
                    next.clients[c as usize]
                        .lease
                        .as_mut()
                        .expect("held")
                        .renewed_at = now;
                } else {
                    next.clients[c as usize].lease = None;
                }
            }
            Action::Release(c) => {
                if self.protocol.forget_leased_slice {
                    next.clients[c as usize].leased_slice = None;
                }
                let held = next.clients[c as usize].lease.take()?;
                let ours = world.locks[held.model as usize]
                    .as_ref()
                    .is_some_and(|lock| lock.holder == c && lock.generation == held.generation);
                if ours {
                    next.locks[held.model as usize] = None;
                }
            }
            Action::Edit(c, m, f) => {
                next.clients[c as usize].local[m as usize][f as usize].content = world.next_content;
                next.next_content += 1;
            }
            Action::PullLand(c, m, f) => {
                next.clients[c as usize].local[m as usize][f as usize].content =
                    world.latest[m as usize][f as usize];
            }
            Action::PullStamp(c, m, f) => {
                let local = &mut next.clients[c as usize].local[m as usize][f as usize];
                local.stamp = local.content;
            }
            Action::BeginCommit(c, f) => {
                let held = world.clients[c as usize].lease.clone()?;
                // The lease copy must be fresh to start (¾ TTL; with a TTL
                // of 2 ticks: renewed this tick or the last).
                if now.saturating_sub(held.renewed_at) > TTL * 3 / 4 {
                    return None;
                }
                let local = &world.clients[c as usize].local[held.model as usize][f as usize];
                if self.protocol.forget_leased_slice {
                    next.clients[c as usize].leased_slice = None;
                }
                next.clients[c as usize].pending = Some(Pending {
                    model: held.model,
                    file: f,
                    content: local.content,
                    base: local.stamp,
                    generation: held.generation,
                    confirmed: false,
                    unleased: None,
                });
            }
            Action::BeginUnleased(c, m, f) => {
                let local = &world.clients[c as usize].local[m as usize][f as usize];
                if self.protocol.forget_leased_slice {
                    next.clients[c as usize].leased_slice = None;
                }
                next.clients[c as usize].pending = Some(Pending {
                    model: m,
                    file: f,
                    content: local.content,
                    base: local.stamp,
                    generation: 0,
                    confirmed: false,
                    unleased: Some(Unleased::default()),
                });
            }
            Action::Confirm(c) if self.unleased_pending(world, c) => {
                let pending = next.clients[c as usize].pending.as_mut()?;
                let m = pending.model as usize;
                // The partition, then (a holder recorded) its lock object.
                let live = world.locks[m]
                    .as_ref()
                    .is_some_and(|lock| !self.stale(lock, now));
                let recorded = self.protocol.recorded_holder && world.recorded[m].is_some();
                if recorded && live {
                    // `lock-held`: nothing committed (the host takes the lease).
                    next.clients[c as usize].pending = None;
                } else {
                    pending.confirmed = true;
                    pending.unleased = Some(Unleased {
                        read_version: world.version[m],
                        clears_holder: recorded,
                    });
                }
            }
            Action::Confirm(c) => {
                let pending = next.clients[c as usize].pending.as_mut()?;
                let current = world.locks[pending.model as usize].as_ref();
                let ours = current.is_some_and(|lock| {
                    lock.holder == c
                        && lock.generation == pending.generation
                        && now.saturating_sub(lock.renewed_at) <= TTL * 3 / 4
                });
                if ours {
                    pending.confirmed = true;
                } else {
                    // Lock lost: nothing committed.
                    next.clients[c as usize].pending = None;
                    next.clients[c as usize].lease = None;
                }
            }
            Action::Swap(c) if self.unleased_pending(world, c) => {
                let p = next.clients[c as usize].pending.take()?;
                let read = p.unleased.clone().expect("unleased");
                let (m, f) = (p.model as usize, p.file as usize);
                if world.version[m] != read.read_version {
                    // A lost race: read again.
                    next.clients[c as usize].pending = Some(Pending {
                        confirmed: false,
                        ..p
                    });
                    return Some(next);
                }
                let latest = world.latest[m][f];
                if self.protocol.base_check && latest != p.base && latest != p.content {
                    next.refused_conflict = true;
                    return Some(next);
                }
                next.latest[m][f] = p.content;
                next.committed[m][f] |= 1 << p.content;
                next.version[m] += 1;
                if read.clears_holder {
                    next.recorded[m] = None;
                }
                next.clients[c as usize].local[m][f].stamp = p.content;
                next.unleased_landed = true;
                if latest != 0 && latest != p.base && latest != p.content {
                    next.lost_write = true;
                }
                if latest != 0 && latest == p.base {
                    next.followed_up = true;
                }
                let held_live = world.clients.iter().any(|client| {
                    client.lease.as_ref().is_some_and(|held| {
                        held.model as usize == m && now.saturating_sub(held.renewed_at) <= TTL
                    })
                });
                if held_live {
                    next.unleased_under_lease = true;
                }
            }
            Action::Swap(c) => {
                let p = next.clients[c as usize].pending.take()?;
                let (m, f) = (p.model as usize, p.file as usize);
                let fenced = self.protocol.fence && p.generation < world.fence[m];
                let latest = world.latest[m][f];
                let conflict = self.protocol.base_check && latest != p.base && latest != p.content;
                if fenced {
                    next.clients[c as usize].lease = None;
                } else if conflict {
                    next.refused_conflict = true;
                } else {
                    next.latest[m][f] = p.content;
                    next.committed[m][f] |= 1 << p.content;
                    next.version[m] += 1;
                    next.clients[c as usize].local[m][f].stamp = p.content;
                    // Every landed commit is acknowledged; committing the
                    // very content that is latest loses nothing.
                    if latest != 0 && latest != p.base && latest != p.content {
                        next.lost_write = true;
                    }
                    if latest != 0 && latest == p.base {
                        next.followed_up = true;
                    }
                    if p.generation < world.granted[m] {
                        next.taken_over_commit = true;
                    }
                }
            }
            Action::Crash(c) => {
                next.clients[c as usize].lease = None;
                next.clients[c as usize].pending = None;
            }
        }
        Some(next)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(
                "no acknowledged write is overwritten by a commit not made from it",
                |_, world: &World| !world.lost_write,
            ),
            Property::always(
                "no commit lands under a lease that was taken over",
                |_, world: &World| !world.taken_over_commit,
            ),
            Property::always(
                "no unleased commit lands while someone holds a live lease on its model",
                |_, world: &World| !world.unleased_under_lease,
            ),
            // A hydration may take a trusted record at any moment: so it
            // must be the partition's latest in every state.
            Property::always(
                "a read that trusts a leased slice sees the partition's latest version",
                |_, world: &World| {
                    world.clients.iter().all(|client| {
                        client.leased_slice.as_ref().is_none_or(|slice| {
                            world.version[slice.model as usize] == slice.version
                        })
                    })
                },
            ),
            // The model is not vacuous: writes follow each other, and
            // conflicts happen (and are refused).
            Property::sometimes("a commit follows up another's", |_, world: &World| {
                world.followed_up
            }),
            Property::sometimes("a conflict is refused", |_, world: &World| {
                world.refused_conflict
            }),
            Property::sometimes(
                "a client holds a trusted leased slice",
                |_, world: &World| {
                    world
                        .clients
                        .iter()
                        .any(|client| client.leased_slice.is_some())
                },
            ),
            Property::sometimes(
                "an unleased commit lands",
                |model: &CommitProtocol, world: &World| {
                    world.unleased_landed || !model.protocol.unleased
                },
            ),
        ]
    }

    fn within_boundary(&self, world: &World) -> bool {
        world.time <= self.bounds.max_time
            && world.next_content <= self.bounds.max_contents + 1
            && world
                .granted
                .iter()
                .all(|g| *g <= self.bounds.max_generation)
            && world.version.iter().all(|v| *v <= MAX_VERSION)
    }
}
