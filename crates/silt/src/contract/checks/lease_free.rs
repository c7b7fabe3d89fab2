//! Lease-free commits: a single-file write without a lease, refused
//! while anyone holds the model.

use super::*;

/// Commits `content` as `name` with no lease, as `datastore`'s holder.
async fn put_unleased(
    datastore: &Datastore,
    model: &ModelRef,
    name: &str,
    content: &[u8],
    base: Base,
) -> anyhow::Result<String> {
    let by = Committer::Unleased(datastore.holder().clone());
    put_as(datastore, model, name, content, base, by).await
}

/// `lease-free-commits`: an unleased commit lands and honours its base; it
/// is refused (`lock-held`, nothing committed) while another holds the
/// model's lease, lands once that lease is released or has expired, and
/// then the expired holder cannot commit; a holder that comes after sees
/// the unleased commit as the latest version.
pub(super) async fn lease_free_commits(a: &Datastore, b: &Datastore) -> Checked {
    let model = model("lease-free");
    let scope = LockScope::Model(model.clone());
    let first = put_unleased(a, &model, "free.bin", b"one", Base::Absent)
        .await
        .or_fail("an unleased put of a new name")?;
    let files = b.list_files(&model).await.or_fail("models.list-files")?;
    match files.iter().find(|file| file.name == "free.bin") {
        Some(file) if file.latest.version == first && file.latest.writer == a.holder().name => {}
        other => {
            return fail(format!(
                "after an unleased put, the other clone lists {other:?}, not version {first} by {}",
                a.holder().name
            ));
        }
    }
    let conflict = expect_error(
        put_unleased(a, &model, "free.bin", b"again", Base::Absent).await,
        &["conflict"],
        "an unleased put with base `absent` of a name that exists",
    )?;

    // A live lease shuts unleased commits out.
    let held = b
        .acquire(&scope, TTL_MS)
        .await
        .or_fail("locks.acquire after an unleased commit")?;
    let while_held = put_unleased(a, &model, "free.bin", b"two", Base::Any).await;
    let released = b.release(&held).await;
    let refused = expect_error(
        while_held,
        &["lock-held"],
        "an unleased put while another holds the model's lease",
    )?;
    released.or_fail("locks.release")?;
    let files = a.list_files(&model).await.or_fail("models.list-files")?;
    if files
        .iter()
        .any(|file| file.name == "free.bin" && file.latest.version != first)
    {
        return fail("an unleased put refused with lock-held committed all the same");
    }
    let after_release = put_unleased(a, &model, "free.bin", b"two", Base::Version(first.clone()))
        .await
        .or_fail("an unleased put once the lease was released")?;

    // An expired lease: the unleased commit lands, the expired holder cannot.
    let short = 600;
    let stale = b
        .acquire(&scope, short)
        .await
        .or_fail("locks.acquire with a short TTL")?;
    tokio::time::sleep(Duration::from_millis(u64::from(short) + 400)).await;
    let over_stale = put_unleased(a, &model, "free.bin", b"three", Base::Any)
        .await
        .or_fail("an unleased put over an expired lease")?;
    let staged = stage(b, "late", b"must not land").or_fail("staging a file")?;
    let late = expect_error(
        b.put_file(
            &model,
            "late.bin",
            &staged,
            &Base::Any,
            &Committer::Leased(stale.clone()),
        )
        .await,
        &["lock-lost"],
        "a commit under a lease that expired while an unleased commit landed",
    )?;
    let _ = b.release(&stale).await;

    // A holder that comes after builds on the unleased commit.
    let on_top = put_on(
        b,
        &model,
        "free.bin",
        b"four",
        Base::Version(over_stale.clone()),
    )
    .await
    .or_fail("a leased put based on the last unleased commit")?;
    let history = a
        .history(&model, "free.bin")
        .await
        .or_fail("models.history")?;
    let versions: Vec<&str> = history.iter().map(|v| v.version.as_str()).collect();
    let expected = [
        first.as_str(),
        after_release.as_str(),
        over_stale.as_str(),
        on_top.as_str(),
    ];
    if versions != expected {
        return fail(format!("history is {versions:?}, expected {expected:?}"));
    }
    Ok(format!(
        "base absent on an existing name: {conflict}; under a live lease: {refused}; the expired holder: {late}"
    ))
}
