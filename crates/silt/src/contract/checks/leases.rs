//! Leases: a model lease excludes, a lease taken over cannot commit
//! (fencing), the namespace lease excludes model leases.

use super::*;

/// Takes `scope` on `datastore` (it must be free) and gives it back.
async fn acquire_and_release(
    datastore: &Datastore,
    scope: &LockScope,
    what: &str,
) -> Result<(), NotPassed> {
    let lease = datastore.acquire(scope, TTL_MS).await.or_fail(what)?;
    datastore.release(&lease).await.or_fail("locks.release")
}

/// Expects `b`'s acquire of `scope` to be refused as held; a lease it
/// wrongly got is released so later checks start clean.
async fn expect_held(b: &Datastore, scope: &LockScope, what: &str) -> Result<String, NotPassed> {
    match b.acquire(scope, TTL_MS).await {
        Ok(lease) => {
            let _ = b.release(&lease).await;
            fail(format!("{what}: expected lock-held, but it was granted"))
        }
        Err(err) => expect_error(Err::<(), _>(err), &["lock-held"], what),
    }
}

pub(super) async fn lease_exclusion(a: &Datastore, b: &Datastore) -> Checked {
    let model = model("leases");
    let scope = LockScope::Model(model.clone());
    let lease = a
        .acquire(&scope, TTL_MS)
        .await
        .or_fail("locks.acquire of a free model")?;
    let checked = async {
        let second = expect_held(b, &scope, "a second holder's acquire").await?;
        let info = a
            .inspect(&scope)
            .await
            .or_fail("locks.inspect of a held lease")?;
        let Some(info) = info else {
            return fail("locks.inspect of a held lease found nothing");
        };
        if info.holder.name != a.holder().name {
            return fail(format!(
                "locks.inspect names {} as the holder, not {}",
                info.holder.name,
                a.holder().name
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let renewed = a
            .renew(&lease, None)
            .await
            .or_fail("locks.renew of our lease")?;
        if renewed.renewed_at <= lease.renewed_at {
            return fail("locks.renew did not move renewed-at forward");
        }
        a.release(&renewed)
            .await
            .or_fail("locks.release of the renewed lease")?;
        Ok(second)
    }
    .await;
    if checked.is_err() {
        let _ = a.release(&lease).await;
    }
    let second = checked?;
    acquire_and_release(b, &scope, "locks.acquire after release").await?;
    Ok(format!(
        "second holder got {second}; renewed, released, re-acquired"
    ))
}

pub(super) async fn fencing(a: &Datastore, b: &Datastore) -> Checked {
    let model = model("fencing");
    let scope = LockScope::Model(model.clone());
    let ttl = 600;
    let old = a
        .acquire(&scope, ttl)
        .await
        .or_fail("locks.acquire with a short TTL")?;
    // Let it go stale: not renewed within its TTL.
    tokio::time::sleep(Duration::from_millis(u64::from(ttl) + 400)).await;
    let new = b
        .acquire(&scope, TTL_MS)
        .await
        .or_fail("taking over a stale lease")?;
    let checked = async {
        let staged = stage(a, "fenced", b"must not land").or_fail("staging a file")?;
        let refused = expect_error(
            a.put_file(&model, "fenced.bin", &staged, &Base::Any, &Committer::Leased(old.clone()))
                .await,
            &["lock-lost"],
            "a commit under the taken-over lease",
        )?;
        let files = b.list_files(&model).await.or_fail("models.list-files")?;
        if files.iter().any(|file| file.name == "fenced.bin") {
            return fail("the taken-over lease's commit landed");
        }
        if new.generation <= old.generation {
            return fail(format!(
                "the takeover has generation {}, not above the stale lease's {} (generations only grow)",
                new.generation, old.generation
            ));
        }
        Ok(format!(
            "generation {} → {}; the old holder got {refused}",
            old.generation, new.generation
        ))
    }
    .await;
    let _ = b.release(&new).await;
    checked
}

pub(super) async fn namespace_exclusion(a: &Datastore, b: &Datastore) -> Checked {
    let model = model("namespace");
    let namespace = a
        .acquire(&LockScope::Namespace, TTL_MS)
        .await
        .or_fail("locks.acquire of the namespace")?;
    let refused = expect_held(
        b,
        &LockScope::Model(model.clone()),
        "a model lease while another holds the namespace",
    )
    .await;
    let released = a.release(&namespace).await;
    let refused = refused?;
    released.or_fail("locks.release of the namespace")?;
    acquire_and_release(
        b,
        &LockScope::Model(model),
        "a model lease once the namespace is free",
    )
    .await?;
    Ok(format!(
        "a model lease under a held namespace got {refused}"
    ))
}
