//! broken-datastore: a datastore extension that is wrong on purpose, so the
//! contract suite (`silt extension test`) can be seen to fail it, saying why.
//!
//! Built on silt-extension like silt's own extensions, so everything
//! else works (setup, put/get, sync, hydration); two defects:
//! - leases exclude nobody: `acquire` grants every caller a lease and
//!   stores nothing, so two holders write one model at once;
//! - commits ignore leases: one taken over, expired or forged still
//!   commits (no fence), and the partition is overwritten, not swapped;
//! - commits ignore base versions: a change made from an older version
//!   goes on top (the lost update base versions exist to refuse).
//!
//! And for models of type `attack`, it is hostile on purpose (`attacks`):
//! lying lease answers, escape codes, floods, wrong checksums; and for the
//! call the setting `attack` names (`hostile`): huge files, impossible
//! counts, the host's records, endless hydration, floods, panics.

mod attacks;
mod hostile;

use silt_extension::change::{self, Base, Change, Committed};
use silt_extension::clock;
use silt_extension::exports::silt::datastore::{capabilities, locks};
use silt_extension::index_io;
use silt_extension::layout::DATA_AREA;
use silt_extension::meta;
use silt_extension::silt::datastore::object_store::PutMode;
use silt_extension::silt::datastore::types::{Error, Lease, LockInfo, LockScope, ModelRef};
use silt_extension::store::{self, Written};
use silt_extension::{Fresh, Index, Listed};

// The metadata the host reads without compiling this component.
silt_extension::metadata! {
    description: "Deliberately broken: leases exclude nobody, commits ignore leases and base versions (for silt extension test's own tests)",
    capabilities: ["scoped-sync", "model-locks", "lazy-hydration"],
}

struct Broken;

impl capabilities::Guest for Broken {
    fn describe() -> capabilities::Description {
        use capabilities::Features;
        capabilities::Description {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            features: Features::SCOPED_SYNC | Features::MODEL_LOCKS | Features::LAZY_HYDRATION,
        }
    }
}

const INDEX_PREFIX: &str = "_broken-index/";

pub(crate) fn partition_key(model: &ModelRef) -> String {
    format!("{INDEX_PREFIX}{}/{}.json", model.model_type, model.model_id)
}

impl Index for Broken {
    const KIND: &'static str = "broken";

    fn read_if_changed(model: &ModelRef, known: Option<&str>) -> Result<Fresh, Error> {
        index_io::read_object(&partition_key(model), DATA_AREA, model, known)
    }

    fn list() -> Result<Listed, Error> {
        let mut listed = Listed::new();
        for meta in store::list_all(INDEX_PREFIX)? {
            let Some(rest) = meta
                .key
                .strip_prefix(INDEX_PREFIX)
                .and_then(|rest| rest.strip_suffix(".json"))
            else {
                continue;
            };
            let Some((model_type, model_id)) = rest.rsplit_once('/') else {
                continue;
            };
            let model = ModelRef {
                model_type: model_type.to_owned(),
                model_id: model_id.to_owned(),
            };
            listed.insert(
                (model.model_type.clone(), model.model_id.clone()),
                (model, meta.version),
            );
        }
        Ok(listed)
    }

    fn commit(model: &ModelRef, lease: &Lease, changes: &[Change]) -> Result<Committed, Error> {
        if model.model_type == attacks::ATTACK {
            return attacks::commit(model, changes, |changes| {
                commit_unfenced(model, lease, changes)
            });
        }
        commit_unfenced(model, lease, changes)
    }
}

/// `change` committed on top of whatever is latest.
fn without_base(change: &Change) -> Change {
    let mut change = change.clone();
    if let Change::Put { base, .. } | Change::Remove { base, .. } = &mut change {
        *base = Base::Any;
    }
    change
}

/// The defect: no fence, no check that the lease is current or ours, no
/// base versions, and an unconditional overwrite.
fn commit_unfenced(
    model: &ModelRef,
    lease: &Lease,
    changes: &[Change],
) -> Result<Committed, Error> {
    let changes: &[Change] = &changes.iter().map(without_base).collect::<Vec<_>>();
    let retain = meta::read(Broken::KIND)?.retain_versions;
    let mut next = Broken::read(model)?.partition;
    let token = change::commit_token(changes)?;
    next.seq += 1;
    next.last_commit = token.clone();
    let applied = change::apply(model, &mut next, lease, changes, retain)?;
    match store::put_owned(
        &partition_key(model),
        &next.to_bytes(),
        &PutMode::Overwrite,
        &token,
    )? {
        Written::Landed(version) => {
            let deleted = index_io::delete_dropped(model, &applied.dropped);
            Ok(Committed {
                partition: next,
                version,
                entries: applied.entries,
                expired: applied.dropped,
                deleted,
            })
        }
        Written::Lost => Err(Error::PreconditionFailed(partition_key(model))),
    }
}

impl locks::Guest for Broken {
    fn acquire(scope: LockScope, options: locks::AcquireOptions) -> Result<Lease, Error> {
        // The defect: every caller is granted a lease; nothing is stored.
        let now = clock::now_ms();
        Ok(attacks::bend_lease(Lease {
            scope,
            token: clock::random_hex(),
            generation: 1,
            version: "unstored".to_owned(),
            acquired_at: now,
            renewed_at: now,
            ttl_ms: options.ttl_ms,
            holder: options.holder,
        }))
    }

    fn renew(lease: Lease) -> Result<Lease, Error> {
        Ok(Lease {
            renewed_at: clock::now_ms(),
            ..lease
        })
    }

    fn release(_lease: Lease) -> Result<(), Error> {
        Ok(())
    }

    fn inspect(_scope: LockScope) -> Result<Option<LockInfo>, Error> {
        Ok(None)
    }

    fn list() -> Result<Vec<LockInfo>, Error> {
        Ok(Vec::new())
    }

    fn force_release(_expected: LockInfo) -> Result<(), Error> {
        Ok(())
    }
}

use hostile::Hostile;
silt_extension::export!(Hostile);
