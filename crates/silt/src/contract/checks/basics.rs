//! The datastore's basics: it describes itself, sets up, round-trips a
//! file, pulls and pushes between two clones, and refuses an edit of an
//! older version as a conflict.

use super::*;
use crate::capabilities::delivery::DELIVERY_DIR;
use crate::capabilities::sending::{GivenFile, SEND_DIR};
use crate::runtime::guest_text;

pub(super) async fn describe(a: &Datastore, metadata: &crate::runtime::Metadata) -> Checked {
    let description = match a.describe().await {
        Ok(description) => description,
        Err(err) => return fail(format!("describe failed: {err}")),
    };
    if description.name != metadata.name || description.version != metadata.version {
        return fail(format!(
            "describe says {} {}, the metadata {} {}",
            description.name, description.version, metadata.name, metadata.version
        ));
    }
    let described = crate::runtime::metadata::feature_names(description.features);
    let mut declared: Vec<&str> = metadata.capabilities.iter().map(String::as_str).collect();
    declared.sort_unstable();
    let mut sorted = described.clone();
    sorted.sort_unstable();
    if sorted != declared {
        return fail(format!(
            "describe's features [{}] differ from the metadata's capabilities [{}]",
            sorted.join(", "),
            declared.join(", ")
        ));
    }
    Ok(format!("features: {}", described.join(", ")))
}

pub(super) async fn setup(a: &Datastore, b: &Datastore) -> Checked {
    let created = a
        .setup(sync::SetupOptions {
            create: true,
            retain_versions: None,
        })
        .await
        .or_fail("sync.setup with create on an empty store")?;
    if !created.created {
        return fail("setup on an empty store reported that the datastore already existed");
    }
    let attached = b
        .setup(sync::SetupOptions {
            create: false,
            retain_versions: None,
        })
        .await
        .or_fail("sync.setup of a second clone")?;
    if attached.created {
        return fail("a second clone's setup claims to have created the datastore again");
    }
    Ok(format!("layout version {}", created.layout_version))
}

pub(super) async fn round_trip(a: &Datastore) -> Checked {
    let model = model("round-trip");
    let content: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    put(a, &model, "weights.bin", &content).await?;
    let readback = ".silt/staging/contract-readback";
    let version = a
        .get_file(&model, "weights.bin", None, readback)
        .await
        .or_fail("models.get-file of the file just put")?;
    if read_local(a, Path::new(readback)).as_deref() != Some(content.as_slice()) {
        return fail("get-file did not write the bytes that were put");
    }
    if version.size != content.len() as u64 || version.sha256 != sha256_hex(&content) {
        return fail(format!(
            "get-file reports size {} sha256 {}; the file has {} and {}",
            version.size,
            version.sha256,
            content.len(),
            sha256_hex(&content)
        ));
    }
    let delivered_by = delivered(a, &model, &content).await?;
    let sent_by = sent_as_given(a, &model, &content).await?;
    let files = a.list_files(&model).await.or_fail("models.list-files")?;
    if !files
        .iter()
        .any(|file| file.name == "weights.bin" && file.latest.size == content.len() as u64)
    {
        return fail(format!("list-files does not show weights.bin: {files:?}"));
    }
    let history = a
        .history(&model, "weights.bin")
        .await
        .or_fail("models.history")?;
    if history.len() != 1 {
        return fail(format!(
            "history of a file put once has {} versions",
            history.len()
        ));
    }
    let listed = a.list_models().await.or_fail("models.list-models")?;
    let same = |m: &ModelRef| m.model_type == model.model_type && m.model_id == model.model_id;
    if !listed.iter().any(same) {
        return fail("list-models does not show the model just written");
    }
    Ok(format!(
        "{} bytes, version {}; a delivery {delivered_by}; a sending {sent_by}",
        content.len(),
        version.version
    ))
}

/// A `put-file` the host names a sending of a file outside the cache
/// (0.7.4) commits that file's bytes, sent by `object-store.upload-hashed`
/// of the path it was handed, which holds no file. Says how: sent, or not
/// offered (an extension built before 0.7.4).
async fn sent_as_given(
    a: &Datastore,
    model: &ModelRef,
    content: &[u8],
) -> Result<&'static str, NotPassed> {
    if !a.takes_given_files() {
        return Ok("not offered (built before 0.7.4)");
    }
    let bytes_given: Vec<u8> = content.iter().rev().copied().collect();
    let state = a.host_state().or_fail("opening the host's state")?;
    let name = "contract-sending";
    let _ = state.remove_file(name);
    state
        .write_atomic(name, &bytes_given)
        .or_fail("writing the file to send")?;
    let file = state.open_read(name).or_fail("opening the file to send")?;
    let _ = state.remove_file(name);
    let cache_path = format!("{SEND_DIR}/contract-sending");
    let given = GivenFile::new(file, name.to_owned()).or_fail("opening the file to send")?;
    let sending = a.expect_given(&cache_path, given.clone());
    let lease = a
        .acquire(&LockScope::Model(model.clone()), TTL_MS)
        .await
        .or_fail("locks.acquire of a free model")?;
    let committed = a
        .put_file(
            model,
            "sent.bin",
            &cache_path,
            &Base::Any,
            &Committer::Leased(lease.clone()),
        )
        .await;
    let released = a.release(&lease).await;
    let committed = committed.or_fail("models.put-file of a sending")?;
    drop(sending);
    released.or_fail("locks.release")?;
    let expected = (bytes_given.len() as u64, sha256_hex(&bytes_given));
    match given.sent() {
        Some(sent) if (sent.size, sent.sha256.as_str()) == (expected.0, expected.1.as_str()) => {}
        Some(_) => return fail("upload-hashed of a sending answered other bytes"),
        None => {
            return fail(
                "put-file of a sending did not send it (hand its cache path to object-store.upload-hashed)",
            );
        }
    }
    if (committed.size, committed.sha256.as_str()) != (expected.0, expected.1.as_str()) {
        return fail(format!(
            "put-file of a sending committed size {} sha256 {}; the file has {} and {}",
            committed.size,
            guest_text(&committed.sha256),
            expected.0,
            expected.1
        ));
    }
    let readback = ".silt/staging/contract-sent";
    a.get_file(model, "sent.bin", None, readback)
        .await
        .or_fail("models.get-file of the file sent")?;
    let bytes = read_local(a, Path::new(readback));
    let _ = a.local().map(|local| local.remove_file(readback));
    if bytes.as_deref() != Some(bytes_given.as_slice()) {
        return fail("get-file of the file sent did not give its bytes");
    }
    Ok("sent from the file given (object-store.upload-hashed)")
}

/// A `get-file` the host names a delivery (0.7.3) answers the bytes that
/// were put: handed to `object-store.deliver`, or (an extension before
/// 0.7.3, or one that does not deliver) written to the cache path. Says
/// which.
async fn delivered(
    a: &Datastore,
    model: &ModelRef,
    content: &[u8],
) -> Result<&'static str, NotPassed> {
    let cache_path = format!("{DELIVERY_DIR}/contract-delivery");
    let state = a.host_state().or_fail("opening the host's state")?;
    let name = "contract-delivery";
    let delivery = a.expect_delivery(&cache_path, std::sync::Arc::new(state), name.to_owned());
    a.get_file(model, "weights.bin", None, &cache_path)
        .await
        .or_fail("models.get-file of a delivery")?;
    let (bytes, how) = match delivery.take() {
        Some(delivered) => {
            delivered
                .rename_into_place()
                .or_fail("putting the delivered file in place")?;
            let state = a.host_state().or_fail("opening the host's state")?;
            let bytes = state.read(name, 1 << 20).ok();
            let _ = state.remove_file(name);
            (bytes, "handed to the host (object-store.deliver)")
        }
        None => (
            read_local(a, Path::new(&cache_path)),
            "written to the cache path",
        ),
    };
    let _ = a.local().map(|local| local.remove_file(&cache_path));
    if bytes.as_deref() != Some(content) {
        return fail(format!(
            "get-file of a delivery ({how}) did not give the bytes that were put"
        ));
    }
    Ok(how)
}

pub(super) async fn pull_and_push(a: &Datastore, b: &Datastore) -> Checked {
    let model = model("sync");
    let name = "data.txt";
    put(a, &model, name, b"written by clone A\n").await?;
    b.pull(&pull_all(true))
        .await
        .or_fail("sync.pull-changed on clone B")?;
    let path = working_path(&model, name);
    if read_local(b, &path).as_deref() != Some(b"written by clone A\n".as_slice()) {
        return fail(format!(
            "after a full pull, clone B has no {}",
            path.display()
        ));
    }
    write_local(b, &path, b"changed by clone B\n").or_fail("editing B's working copy")?;
    let pushed = push_under_a_fresh_lease(b, &model)
        .await?
        .or_fail("sync.push-changed of an edited file")?;
    if pushed.stats.objects_uploaded == 0 {
        return fail("push-changed of an edited file uploaded nothing");
    }
    a.pull(&pull_all(true))
        .await
        .or_fail("sync.pull-changed on clone A")?;
    if read_local(a, &path).as_deref() != Some(b"changed by clone B\n".as_slice()) {
        return fail("after B pushed, A's pull did not bring B's change");
    }
    Ok("A → B by pull, B → A by push and pull".to_owned())
}

/// Base versions: a put or push whose base is not the latest is refused
/// with `conflict` and commits nothing; `theirs` sets the edit aside.
pub(super) async fn conflicts(a: &Datastore, b: &Datastore) -> Checked {
    let model = model("conflicts");
    let name = "shared.txt";
    let v1 = put_on(a, &model, name, b"v1\n", Base::Absent)
        .await
        .or_fail("put-file of a new name with base `absent`")?;
    b.pull(&pull_all(true))
        .await
        .or_fail("sync.pull-changed on clone B")?;
    let path = working_path(&model, name);
    write_local(b, &path, b"B's edit of v1\n").or_fail("editing B's working copy")?;
    let v2 = put_on(a, &model, name, b"v2\n", Base::Version(v1.clone()))
        .await
        .or_fail("put-file with the latest version as its base")?;
    let stale_put = expect_error(
        put_on(a, &model, name, b"stale\n", Base::Version(v1.clone())).await,
        &["conflict"],
        "put-file with an older version as its base",
    )?;
    expect_error(
        put_on(a, &model, name, b"stale\n", Base::Absent).await,
        &["conflict"],
        "put-file with base `absent` of a name that exists",
    )?;
    let stale_push = expect_error(
        push_under_a_fresh_lease(b, &model).await?,
        &["conflict"],
        "push-changed of an edit made from a version the store moved on from",
    )?;
    let files = a.list_files(&model).await.or_fail("models.list-files")?;
    if files
        .iter()
        .find(|f| f.name == name)
        .map(|f| &f.latest.version)
        != Some(&v2)
    {
        return fail(format!(
            "after the refused push, the latest of {name} is not {v2} any more: the edit was committed on top"
        ));
    }
    let theirs = b
        .pull(&sync::SyncOptions {
            local_edits: LocalEdits::Theirs,
            ..pull_all(false)
        })
        .await
        .or_fail("sync.pull-changed with local-edits `theirs`")?;
    if read_local(b, &path).as_deref() != Some(b"v2\n".as_slice()) {
        return fail(
            "after a pull with `theirs`, B's working copy does not hold the latest version",
        );
    }
    let Some(aside) = theirs.set_aside.first() else {
        return fail("a pull with `theirs` reported no edit set aside");
    };
    if read_local(b, Path::new(aside)).as_deref() != Some(b"B's edit of v1\n".as_slice()) {
        return fail(format!("the edit set aside is not at {aside}, as reported"));
    }
    Ok(format!(
        "stale put: {stale_put}; stale push: {stale_push}; `theirs` set the edit aside"
    ))
}

/// Pushes `model`'s local edits on clone `datastore` under a lease taken
/// for it and given back; the push's own outcome is the caller's to judge.
async fn push_under_a_fresh_lease(
    datastore: &Datastore,
    model: &ModelRef,
) -> Result<anyhow::Result<sync::SyncReport>, NotPassed> {
    let lease = datastore
        .acquire(&LockScope::Model(model.clone()), TTL_MS)
        .await
        .or_fail("locks.acquire on clone B")?;
    let pushed = datastore
        .push(&sync::SyncOptions {
            scope: Scope::Models(vec![model.clone()]),
            leases: vec![lease.clone()],
            dry_run: false,
            fetch_missing: false,
            local_edits: LocalEdits::Keep,
        })
        .await;
    datastore.release(&lease).await.or_fail("locks.release")?;
    Ok(pushed)
}
