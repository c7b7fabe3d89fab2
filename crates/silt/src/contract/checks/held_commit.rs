//! A commit whose writes are held in flight while its lease is taken
//! over: none of it may land over the new holder's work.

use super::*;

/// The most writes of one commit the held-commit check holds, one a round.
const MOST_HELD_WRITES: u32 = 32;

/// The file every round of the held-commit check commits.
const HELD_FILE: &str = "held.bin";

/// How one round of the held-commit check ended.
enum Round {
    /// The commit was refused after the takeover: the fence held.
    Refused(String),
    /// Nothing to judge: the commit had landed before the takeover (the
    /// held write came after its commit point), landed while the takeover
    /// ran, or the takeover waited for it.
    NotJudged(String),
}

/// `model-locks`: a commit whose writes are held one at a time (a round
/// each) while another clone force-releases its lease and takes the model
/// over never lands after the takeover. A look at the lock object before
/// the commit's last write does not pass this: a writer stopped between
/// that look and the write (a GC pause, `SIGSTOP`) passes the look. The
/// takeover must change what the commit compare-and-swaps, as a fence
/// raised in the model's index does.
pub(super) async fn held_commit(fixture: &Fixture, b: &Datastore) -> Checked {
    let store = Arc::new(PausedWrites::new(fixture.store.clone()));
    let writer = fixture
        .clone_over(store.clone(), false)
        .await
        .or_fail("opening a clone whose writes can be held")?;
    writer
        .pull(&pull_all(false))
        .await
        .or_fail("a pull of a new clone")?;
    let mut rounds = Vec::new();
    let mut refused = 0;
    for nth in 1..=MOST_HELD_WRITES + 1 {
        let round = hold_one_write(&store, &writer, b, nth).await?;
        if nth > MOST_HELD_WRITES && round.is_some() {
            return fail(format!(
                "models.put-file made more than {MOST_HELD_WRITES} writes: the check holds at most \
                 that many, so its commit point may not have been held"
            ));
        }
        match round {
            Some(Round::Refused(detail)) => {
                refused += 1;
                rounds.push(detail);
            }
            Some(Round::NotJudged(detail)) => rounds.push(detail),
            None if rounds.is_empty() => return fail("models.put-file made no write"),
            None => break,
        }
    }
    if refused == 0 {
        return fail(format!(
            "no held write of a commit was ever refused after a takeover, so nothing showed \
             the commit fenced: {}",
            rounds.join("; ")
        ));
    }
    Ok(format!(
        "each of a commit's {} writes held while another clone took over: {}",
        rounds.len(),
        rounds.join("; ")
    ))
}

/// One round: holds the `nth` write of a leased put-file by `writer`, has
/// `b` force-release the lease and take the model over, lets the write go
/// and looks whether the commit landed after the takeover. `None` when the
/// put ended with fewer than `nth` writes.
async fn hold_one_write(
    store: &PausedWrites,
    writer: &Arc<Datastore>,
    b: &Datastore,
    nth: u32,
) -> Result<Option<Round>, NotPassed> {
    let model = model(&format!("held-{nth}"));
    let scope = LockScope::Model(model.clone());
    // A long TTL: nothing here is about staleness or the self-fence.
    let lease = writer
        .acquire(&scope, TTL_MS)
        .await
        .or_fail("locks.acquire of a free model")?;
    let staged = match stage(writer, "held", b"held across a takeover") {
        Ok(staged) => staged,
        Err(err) => {
            let _ = writer.release(&lease).await;
            return fail(format!("staging a file failed: {err:#}"));
        }
    };
    let reached = store.arm(nth);
    let mut put = tokio::spawn({
        let (writer, model, lease) = (writer.clone(), model.clone(), lease.clone());
        async move {
            let by = Committer::Leased(lease);
            writer
                .put_file(&model, HELD_FILE, &staged, &Base::Any, &by)
                .await
        }
    });
    let held = tokio::select! {
        held = reached => held.ok(),
        ended = &mut put => {
            store.disarm();
            let _ = writer.release(&lease).await;
            return match ended {
                Ok(Ok(_)) => Ok(None),
                Ok(Err(err)) => fail(format!("models.put-file under a fresh lease failed: {err:#}")),
                Err(err) => fail(format!("models.put-file under a fresh lease did not finish: {err}")),
            };
        }
    };
    let Some(held) = held else {
        store.disarm();
        let _ = put.await;
        let _ = writer.release(&lease).await;
        return fail("the held write was neither held nor finished");
    };
    let what = held.kind;
    let taken = take_over(b, &scope, &model).await;
    // Listed once the takeover is done, the write still held: a commit
    // that shows now landed before it or while it ran (concurrent writes).
    let landed_by_takeover = match &taken {
        Ok(Takeover {
            lease: Some(_),
            landed_before,
        }) => match *landed_before {
            true => Ok(true),
            false => lists(b, &model, HELD_FILE).await,
        },
        _ => Ok(false),
    };
    held.resume();
    let ended = put
        .await
        .map_err(|err| anyhow::anyhow!("the put did not finish: {err}"))
        .and_then(|result| result);
    let landed_after = lists(b, &model, HELD_FILE).await;
    if let Ok(Takeover {
        lease: Some(new), ..
    }) = &taken
    {
        let _ = b.release(new).await;
    }
    let _ = writer.release(&lease).await;

    let Takeover {
        lease: new,
        landed_before,
    } = taken?;
    let (landed_by_takeover, landed_after) = (landed_by_takeover?, landed_after?);
    let Some(new) = new else {
        // A design may keep a takeover out while a commit is under way,
        // but not once it has ended.
        let new = b
            .acquire(&scope, TTL_MS)
            .await
            .or_fail("locks.acquire after a force-release, once the held commit had ended")?;
        let _ = b.release(&new).await;
        return Ok(Some(Round::NotJudged(format!(
            "#{nth} ({what}): the takeover waited for it"
        ))));
    };
    Ok(Some(
        match (landed_before, landed_by_takeover, landed_after, ended) {
            (true, _, _, _) => Round::NotJudged(format!("#{nth} ({what}): had landed before")),
            (false, true, _, _) => {
                Round::NotJudged(format!("#{nth} ({what}): landed while the takeover ran"))
            }
            (false, false, true, ended) => {
                return fail(format!(
                    "the commit's write #{nth} ({what}) was held while another clone force-released \
                 its lease and took the model over (generation {}); let go, the commit landed \
                 inside the new holder's lease (put-file answered {}). A look at the lock \
                 object before writing does not fence a writer stopped after the look: the \
                 takeover must change what the commit compare-and-swaps (a fence in the \
                 model's index that refuses an older generation)",
                    new.generation,
                    match ended {
                        Ok(_) => "success".to_owned(),
                        Err(err) => kind(&err),
                    }
                ));
            }
            (false, false, false, Ok(version)) => {
                return fail(format!(
                    "models.put-file answered version {} after its held write #{nth} ({what}) \
                 was let go, but the file is not listed",
                    crate::runtime::guest_text(&version.version)
                ));
            }
            (false, false, false, Err(err)) => {
                Round::Refused(format!("#{nth} ({what}): refused with {}", kind(&err)))
            }
        },
    ))
}

/// What a takeover found and got.
struct Takeover {
    /// Whether the held commit was listed once the lock was force-released.
    landed_before: bool,
    /// The new holder's lease; `None` when the extension kept it out
    /// (`lock-held`) while the commit was under way.
    lease: Option<Lease>,
}

/// `b` force-releases the model's lock and takes the model over: the
/// operator's way past a machine that stopped.
async fn take_over(
    b: &Datastore,
    scope: &LockScope,
    model: &ModelRef,
) -> Result<Takeover, NotPassed> {
    let Some(current) = b
        .inspect(scope)
        .await
        .or_fail("locks.inspect of a held model")?
    else {
        return fail("locks.inspect found no lock on a model whose lease is held");
    };
    b.force_release(&current)
        .await
        .or_fail("locks.force-release of the held lease")?;
    // A force-release that answered success must have let the lock go.
    if let Some(still) = b
        .inspect(scope)
        .await
        .or_fail("locks.inspect after a force-release")?
        && still.generation == current.generation
        && still.holder.name == current.holder.name
        && still.holder.pid == current.holder.pid
    {
        return fail(format!(
            "locks.force-release answered success, but the lock (generation {}) is still there",
            still.generation
        ));
    }
    let landed_before = lists(b, model, HELD_FILE).await?;
    let lease = match b.acquire(scope, TTL_MS).await {
        Ok(lease) => Some(lease),
        Err(err) if kind(&err) == "lock-held" => None,
        Err(err) => {
            return fail(format!(
                "locks.acquire after a force-release failed: {err:#}"
            ));
        }
    };
    Ok(Takeover {
        landed_before,
        lease,
    })
}
