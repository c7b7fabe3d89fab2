//! Values the SDK's unit tests share.

use crate::silt::datastore::types::{Holder, Lease, LockScope, ModelRef};

/// The model `vision/detector/<id>`.
pub fn model(id: &str) -> ModelRef {
    ModelRef {
        model_type: "vision/detector".to_owned(),
        model_id: id.to_owned(),
    }
}

/// A lease on `scope`, held by `ana@build-1` at generation 5.
pub fn lease(scope: LockScope) -> Lease {
    Lease {
        scope,
        token: "0f1e2d3c4b5a69788796a5b4c3d2e1f0".to_owned(),
        generation: 5,
        version: "lock-v1".to_owned(),
        acquired_at: 1_000,
        renewed_at: 2_000,
        ttl_ms: 30_000,
        holder: Holder {
            name: "ana@build-1".to_owned(),
            host: "build-1".to_owned(),
            pid: 4242,
        },
    }
}
