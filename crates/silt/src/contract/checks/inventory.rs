//! `verify` and the orphan listing against what the extension itself
//! committed: an extension whose listing and whose keys disagree (a layout
//! changed in one place and not the other) reports every object missing,
//! or calls committed objects orphans, or finds none. The store is read
//! and changed here behind the extension's back, through the suite's own
//! handle, with no knowledge of the extension's layout: a committed object
//! is found by its content.

use super::*;
use crate::store::{GetOutcome, ObjectKey, PutMode};

pub(super) async fn inventory(fixture: &Fixture, a: &Datastore) -> Checked {
    let store = &fixture.store;
    let model = model("inventory");
    let scope = Scope::Models(vec![model.clone()]);
    let older: &[u8] = b"contract suite: the older version of inventory.bin";
    let newer: &[u8] = b"contract suite: the newer version of inventory.bin";
    put(a, &model, "inventory.bin", older).await?;
    let before = all_keys(store).await?;
    put(a, &model, "inventory.bin", newer).await?;
    let newer_key = object_holding(store, &before, newer).await?;

    let findings = a.verify(&scope).await.or_fail("sync.verify")?;
    if let Some(first) = findings.first() {
        return fail(format!(
            "verify of a model just committed reports {} problems, the first: {}: {}",
            findings.len(),
            crate::runtime::guest_text_limited(&first.object, 200),
            crate::runtime::guest_text_limited(&first.problem, 200)
        ));
    }
    let orphans = orphan_listing(a, &scope, store, &newer_key).await?;

    // The latest version's object, removed behind the extension's back.
    delete(store, &newer_key).await?;
    let findings = a.verify(&scope).await.or_fail("sync.verify")?;
    if findings.is_empty() {
        return fail(format!(
            "verify found nothing wrong after the object of the latest version ({newer_key}) was deleted"
        ));
    }
    Ok(format!(
        "verify: clean, then {} finding(s) once the latest version's object was deleted; {orphans}",
        findings.len()
    ))
}

/// The orphan listing (a dry run, no age floor) finds nothing among
/// committed objects, then exactly one object planted beside them.
async fn orphan_listing(
    a: &Datastore,
    scope: &Scope,
    store: &Arc<dyn ObjectStore>,
    beside: &str,
) -> Result<String, NotPassed> {
    let options = sync::OrphanOptions {
        scope: scope.clone(),
        min_age_ms: 0,
        dry_run: true,
    };
    let found = match a.collect_orphans(&options).await {
        Ok(report) => report.found,
        Err(err) if kind(&err) == "not-supported" => {
            return Ok("no orphan listing (not-supported)".to_owned());
        }
        Err(err) => return fail(format!("sync.collect-orphans failed: {err:#}")),
    };
    if found != 0 {
        return fail(format!(
            "the orphan listing calls {found} of a model's committed objects orphans"
        ));
    }
    let planted = format!("{beside}-never-committed");
    let key = ObjectKey::new(&planted).or_fail("the planted key")?;
    store
        .put(&key, b"uploaded, never committed".to_vec(), PutMode::Create)
        .await
        .or_fail("planting an uncommitted object")?;
    let listed = a.collect_orphans(&options).await;
    delete(store, &planted).await?;
    let found = listed.or_fail("sync.collect-orphans")?.found;
    if found != 1 {
        return fail(format!(
            "an object beside the model's own that no index entry names ({planted}): the orphan listing found {found} orphans, not 1"
        ));
    }
    Ok("the orphan listing: none among committed objects, one planted beside them".to_owned())
}

/// Every key in the suite's store.
async fn all_keys(
    store: &Arc<dyn ObjectStore>,
) -> Result<std::collections::BTreeSet<String>, NotPassed> {
    let mut keys = std::collections::BTreeSet::new();
    let mut after: Option<ObjectKey> = None;
    loop {
        let page = store
            .list("", after.as_ref(), 1000)
            .await
            .or_fail("listing the suite's store")?;
        keys.extend(page.items.iter().map(|item| item.key.as_str().to_owned()));
        match page.next_start_after {
            Some(next) => after = Some(next),
            None => return Ok(keys),
        }
    }
}

/// The one object new since `before` whose content is `content`.
async fn object_holding(
    store: &Arc<dyn ObjectStore>,
    before: &std::collections::BTreeSet<String>,
    content: &[u8],
) -> Result<String, NotPassed> {
    let mut holding = Vec::new();
    for key in all_keys(store).await?.difference(before) {
        let object = ObjectKey::new(key).or_fail("a listed key")?;
        if let Ok(GetOutcome::Found(_, data)) = store.get(&object, None).await
            && data == content
        {
            holding.push(key.clone());
        }
    }
    match holding.as_slice() {
        [key] => Ok(key.clone()),
        _ => fail(format!(
            "a put-file of {} bytes left {} new objects holding them, not 1",
            content.len(),
            holding.len()
        )),
    }
}

async fn delete(store: &Arc<dyn ObjectStore>, key: &str) -> Result<(), NotPassed> {
    let object = ObjectKey::new(key).or_fail("a listed key")?;
    store
        .delete(&object, None)
        .await
        .or_fail("deleting an object behind the extension's back")
}
