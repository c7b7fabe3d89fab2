//! Exhaustive checks of the index checkpoint at small bounds: a cold reader
//! combining the newest checkpoint with the journal (or with a listing of
//! the partitions) holds every acknowledged commit and nothing that did not
//! land, whatever the checkpoint writers and committers do and wherever
//! they die; and switching a rule off lets the checker find the bug it
//! prevents.

use silt_protocol_model::checkpoint::{Bounds, CheckpointProtocol, Rules};
use stateright::{Checker, Model};

/// Two writers on two models, two commits, one checkpoint writer, four
/// ticks (a commit's window is one, the horizon lag two): 3.1 M unique
/// states, about 20 s. Checkpoints are immutable and each is read alone, so
/// a second writer racing the first adds interleavings, not cases (two
/// writers with three commits at five ticks exhausted 24 GB).
const BOUNDS: Bounds = Bounds {
    writers: 2,
    models: 2,
    max_commits: 2,
    checkpoint_writers: 1,
    max_time: 4,
};

fn check(rules: Rules, bounds: Bounds) -> impl Checker<CheckpointProtocol> {
    let checker = CheckpointProtocol { rules, bounds }
        .checker()
        .threads(2)
        .spawn_bfs()
        .join();
    eprintln!(
        "{rules:?} {bounds:?}: {} states, {} unique",
        checker.state_count(),
        checker.unique_state_count()
    );
    checker
}

#[test]
fn a_reader_from_a_checkpoint_and_the_journal_misses_no_commit() {
    let checker = check(Rules::SILT, BOUNDS);
    assert!(checker.is_done(), "the whole space was explored");
    checker.assert_properties();
}

#[test]
fn a_checkpoint_taken_as_the_truth_misses_a_later_commit() {
    let checker = check(Rules::WITHOUT_JOURNAL, BOUNDS);
    let path = checker
        .discovery("a reader holds every commit acknowledged before it began")
        .expect("a commit after the checkpoint, unseen");
    eprintln!("counterexample: {:?}", path.into_actions());
}

#[test]
fn an_as_of_taken_after_the_reads_misses_a_commit_between_them() {
    let checker = check(Rules::AS_OF_AFTER_READS, BOUNDS);
    let path = checker
        .discovery("a reader holds every commit acknowledged before it began")
        .expect("a commit after its partition was read, announced before the horizon");
    eprintln!("counterexample: {:?}", path.into_actions());
}

#[test]
fn a_manifest_published_before_its_chunks_misses_a_commit() {
    let checker = check(Rules::PUBLISHED_BEFORE_CHUNKS, BOUNDS);
    let path = checker
        .discovery("a reader holds every commit acknowledged before it began")
        .expect("a missing chunk read as an empty partition");
    eprintln!("counterexample: {:?}", path.into_actions());
}
