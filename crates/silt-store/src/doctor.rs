//! Trust, but verify the store: does it honour create-if-absent,
//! update-if-match and delete-if-match, does exactly one of several racing
//! creates win, does a bulk upload from a file come back byte for byte, and
//! how long does a round trip take?
//!
//! Some S3-compatible servers accept conditional headers and ignore them;
//! a datastore on such a store silently loses updates. [`diagnose`] finds
//! out with real requests under a scratch prefix, and cleans up after itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{ObjectKey, ObjectStore, PutMode, StoreError};

/// One check and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether the store behaved correctly.
    pub ok: bool,
    /// What happened.
    pub detail: String,
}

/// Everything `diagnose` found.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    /// The store, as it names itself.
    pub store: String,
    /// Each check.
    pub checks: Vec<Check>,
    /// Median round trip of a small put + get, in milliseconds.
    pub round_trip_ms: f64,
    /// True when every check passed: safe for concurrent writers.
    pub trustworthy: bool,
}

impl DoctorReport {
    /// The names of the checks that failed.
    pub fn failed_checks(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|check| !check.ok)
            .map(|check| check.name)
            .collect()
    }
}

/// Racers in the racing-create check.
const RACERS: usize = 8;
/// Round trips timed for latency.
const SAMPLES: usize = 5;

/// Checks `store` with real requests under `_silt/doctor/<random>/`.
///
/// # Errors
/// When the store cannot be reached or fails in a way that says nothing
/// about its conditional writes (a dead server, bad credentials).
pub async fn diagnose(store: Arc<dyn ObjectStore>) -> Result<DoctorReport, StoreError> {
    let scratch = format!("_silt/doctor/{}", unique());
    let key = |name: &str| ObjectKey::new(&format!("{scratch}/{name}")).expect("valid scratch key");
    let mut checks = Vec::new();

    // create-if-absent
    let created = key("create");
    let first = store
        .put(&created, b"first".to_vec(), PutMode::Create)
        .await?;
    let second = store
        .put(&created, b"second".to_vec(), PutMode::Create)
        .await;
    checks.push(match second {
        Err(StoreError::AlreadyExists { .. }) => pass(
            "create-if-absent (If-None-Match: *)",
            "a second create was refused",
        ),
        Ok(_) => fail(
            "create-if-absent (If-None-Match: *)",
            "a second create of an existing key SUCCEEDED: the store ignores If-None-Match",
        ),
        Err(other) => return Err(other),
    });

    // update-if-match
    let stale = first.clone();
    let current = store
        .put(&created, b"third".to_vec(), PutMode::Overwrite)
        .await?;
    let stale_update = store
        .put(&created, b"stale".to_vec(), PutMode::Update(stale.clone()))
        .await;
    let fresh_update = store
        .put(
            &created,
            b"fresh".to_vec(),
            PutMode::Update(current.clone()),
        )
        .await;
    checks.push(match (&stale_update, &fresh_update) {
        (Err(StoreError::PreconditionFailed { .. }), Ok(_)) => pass(
            "update-if-match (If-Match)",
            "a stale version was refused, the current one accepted",
        ),
        (Ok(_), _) => fail(
            "update-if-match (If-Match)",
            "an update with a STALE version succeeded: the store ignores If-Match",
        ),
        (_, Err(err)) => fail(
            "update-if-match (If-Match)",
            &format!("an update with the current version failed: {err}"),
        ),
        (Err(err), _) => return Err(err.clone()),
    });
    let latest = fresh_update.unwrap_or(current);

    // delete-if-match
    let stale_delete = store.delete(&created, Some(&stale)).await;
    let still_there = store.head(&created).await.is_ok();
    let fresh_delete = store.delete(&created, Some(&latest)).await;
    checks.push(match (&stale_delete, still_there, &fresh_delete) {
        (Err(StoreError::PreconditionFailed { .. }), true, Ok(())) => {
            pass("delete-if-match (If-Match)", "a stale version was refused, the current one accepted")
        }
        (Ok(()), ..) | (_, false, _) => {
            fail("delete-if-match (If-Match)", "a delete with a STALE version removed the object: the store ignores If-Match on DELETE")
        }
        (_, _, Err(err)) => fail("delete-if-match (If-Match)", &format!("a delete with the current version failed: {err}")),
        (Err(err), ..) => return Err(err.clone()),
    });

    // racing creates
    let raced = key("race");
    let mut racers = tokio::task::JoinSet::new();
    for racer in 0..RACERS {
        let (store, raced) = (store.clone(), raced.clone());
        racers.spawn(async move {
            store
                .put(
                    &raced,
                    format!("racer {racer}").into_bytes(),
                    PutMode::Create,
                )
                .await
        });
    }
    let mut winners = 0;
    while let Some(result) = racers.join_next().await {
        match result.expect("racer task") {
            Ok(_) => winners += 1,
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    checks.push(if winners == 1 {
        pass(
            "racing creates",
            &format!("{RACERS} racing creates, exactly one winner"),
        )
    } else {
        fail(
            "racing creates",
            &format!("{RACERS} racing creates, {winners} winners: creates are not atomic"),
        )
    });

    checks.push(bulk_round_trip(&store, &key("bulk")).await);

    // latency
    let timed = key("latency");
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let started = Instant::now();
        store.put(&timed, vec![0; 1024], PutMode::Overwrite).await?;
        store.get(&timed, None).await?;
        samples.push(started.elapsed());
    }
    samples.sort();
    let round_trip = samples[SAMPLES / 2];

    for name in ["create", "race", "bulk", "latency"] {
        let _ = store.delete(&key(name), None).await;
    }
    let trustworthy = checks.iter().all(|check| check.ok);
    Ok(DoctorReport {
        store: store.to_string(),
        checks,
        round_trip_ms: round_trip.as_secs_f64() * 1e3,
        trustworthy,
    })
}

/// Bytes in the bulk round trip: over a MiB and not a multiple of any
/// chunk size, so framing or a lost tail shows.
const BULK_BYTES: usize = (1 << 20) + 4099;

/// Uploads a file the way bulk transfers do (`put_file`), reads it back
/// streamed (`get_into`) and compares every byte: a store that keeps
/// upload framing with the data, or truncates, fails here rather than in a
/// user's `data get`.
async fn bulk_round_trip(store: &Arc<dyn ObjectStore>, key: &ObjectKey) -> Check {
    const NAME: &str = "bulk upload round trip";
    // Deterministic bytes that differ everywhere (a counter, scrambled).
    let sent: Vec<u8> = (0..BULK_BYTES as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = {
        let sent = sent.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut file = tempfile::tempfile()?;
            file.write_all(&sent)?;
            Ok::<_, std::io::Error>(file)
        })
        .await
    };
    let file = match file
        .map_err(std::io::Error::other)
        .and_then(|written| written)
    {
        Ok(file) => file,
        Err(err) => return fail(NAME, &format!("cannot write the local scratch file: {err}")),
    };
    if let Err(err) = store.put_file(key, file, PutMode::Overwrite).await {
        return fail(NAME, &format!("the upload failed: {err}"));
    }
    let mut received = Vec::with_capacity(BULK_BYTES);
    if let Err(err) = store.get_into(key, &mut received).await {
        return fail(NAME, &format!("reading it back failed: {err}"));
    }
    if received == sent {
        pass(
            NAME,
            &format!("{BULK_BYTES} bytes uploaded from a file came back byte for byte"),
        )
    } else {
        let first_difference = received
            .iter()
            .zip(&sent)
            .position(|(a, b)| a != b)
            .unwrap_or(received.len().min(sent.len()));
        fail(
            NAME,
            &format!(
                "{} bytes uploaded from a file came back as {} bytes, different from byte {first_difference}: the store does not keep uploads as sent",
                sent.len(),
                received.len()
            ),
        )
    }
}

fn pass(name: &'static str, detail: &str) -> Check {
    Check {
        name,
        ok: true,
        detail: detail.to_owned(),
    }
}

fn fail(name: &'static str, detail: &str) -> Check {
    Check {
        name,
        ok: false,
        detail: detail.to_owned(),
    }
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    format!("{}-{nanos:x}", std::process::id())
}
