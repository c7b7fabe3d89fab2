//! The optional capabilities: lazy hydration, gc, and typed errors for
//! mistakes.

use super::*;

pub(super) async fn lazy_hydration(fixture: &Fixture, a: &Datastore) -> Checked {
    let model = model("lazy");
    put(a, &model, "one.bin", b"first file").await?;
    put(a, &model, "two.bin", b"second file").await?;
    let (one, two) = (
        working_path(&model, "one.bin"),
        working_path(&model, "two.bin"),
    );

    let c = fixture
        .clone_datastore(true)
        .await
        .or_fail("opening a lazy clone")?;
    c.pull(&pull_all(false)).await.or_fail("a lazy pull")?;
    if read_local(&c, &one).is_some() || read_local(&c, &two).is_some() {
        return fail("a lazy pull (fetch-missing off) fetched file content");
    }
    c.hydrate_file(&two.to_string_lossy())
        .await
        .or_fail("hydration.hydrate-file")?;
    if read_local(&c, &two).as_deref() != Some(b"second file".as_slice()) {
        return fail("hydrate-file did not fetch the file asked for");
    }
    if read_local(&c, &one).is_some() {
        return fail("hydrate-file fetched a file it was not asked for");
    }
    c.hydrate_scope(
        std::slice::from_ref(&model),
        hydration::HydrateOptions {
            include_history: false,
            dry_run: false,
            max_objects: None,
            local_edits: LocalEdits::Keep,
        },
    )
    .await
    .or_fail("hydration.hydrate-scope")?;
    if read_local(&c, &one).as_deref() != Some(b"first file".as_slice()) {
        return fail("hydrate-scope of the model did not fetch all its files");
    }
    Ok("lazy pull fetched no content; hydrate-file one file; hydrate-scope the rest".to_owned())
}

pub(super) async fn gc(a: &Datastore) -> Checked {
    let model = model("gc");
    for round in 0..3u8 {
        put(a, &model, "versions.bin", &[round; 16]).await?;
    }
    let lease = a
        .acquire(&LockScope::Model(model.clone()), TTL_MS)
        .await
        .or_fail("locks.acquire")?;
    let result = a
        .gc(&sync::GcOptions {
            scope: Scope::Models(vec![model.clone()]),
            keep_versions: 1,
            leases: vec![lease.clone()],
            dry_run: false,
        })
        .await;
    let _ = a.release(&lease).await;
    result.or_fail("sync.gc keeping 1 version")?;
    let history = a
        .history(&model, "versions.bin")
        .await
        .or_fail("models.history")?;
    let live: Vec<_> = history.iter().filter(|v| !v.deleted).collect();
    if live.len() != 1 || live[0].sha256 != sha256_hex(&[2u8; 16]) {
        return fail(format!(
            "after gc keeping 1, history holds {} versions",
            live.len()
        ));
    }
    Ok("3 versions → 1 (the newest)".to_owned())
}

pub(super) async fn typed_errors(a: &Datastore) -> Checked {
    let model = model("errors");
    put(a, &model, "present.bin", b"here").await?;
    let missing = expect_error(
        a.get_file(&model, "absent.bin", None, ".silt/staging/contract-absent")
            .await,
        &["not-found"],
        "get-file of a file that was never put",
    )?;
    let real = a
        .acquire(&LockScope::Model(model.clone()), TTL_MS)
        .await
        .or_fail("locks.acquire")?;
    let forged = Lease {
        token: "forged-token-0000".to_owned(),
        ..real.clone()
    };
    let staged = stage(a, "forged", b"forged").or_fail("staging a file")?;
    let forged_result = a
        .put_file(
            &model,
            "forged.bin",
            &staged,
            &Base::Any,
            &Committer::Leased(forged.clone()),
        )
        .await;
    let _ = a.release(&real).await;
    let refused = expect_error(
        forged_result,
        &[
            "lock-lost",
            "lock-held",
            "invalid-input",
            "precondition-failed",
        ],
        "put-file under a forged lease",
    )?;
    let malformed = ModelRef {
        model_type: "../escape".to_owned(),
        model_id: "x".to_owned(),
    };
    let invalid = expect_error(
        a.list_files(&malformed).await,
        &["invalid-input", "not-found"],
        "list-files of a model named `../escape`",
    )?;
    Ok(format!(
        "missing file: {missing}; forged lease: {refused}; `../escape`: {invalid}"
    ))
}
