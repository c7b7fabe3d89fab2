//! baseline-locks: the lease policy silt's benchmark baselines share
//! (`monolith-datastore`, and `sharded-datastore`, the peer's current
//! design): per-model locks, a structural namespace lease drained
//! symmetrically against them, and the namespace lock every commit takes
//! for its read-merge-write of the index (retried every second, as the
//! datastores in use today do; `locked_commit`). Only the index differs between the
//! baselines, so the benchmarks compare exactly that.
//!
//! An extension implements the `locks` interface with it in one line:
//!
//! ```ignore
//! baseline_locks::implement_locks!(MyBaseline);
//! ```

mod leases;
pub mod locked_commit;
pub mod namespace_lock;

pub use leases::acquire;

/// Implements the `locks` interface of `$extension` with this crate's
/// policy and the SDK's lease protocol.
#[macro_export]
macro_rules! implement_locks {
    ($extension:ty) => {
        impl silt_extension::exports::silt::datastore::locks::Guest for $extension {
            fn acquire(
                scope: silt_extension::silt::datastore::types::LockScope,
                options: silt_extension::exports::silt::datastore::locks::AcquireOptions,
            ) -> Result<
                silt_extension::silt::datastore::types::Lease,
                silt_extension::silt::datastore::types::Error,
            > {
                $crate::acquire(scope, options)
            }

            fn renew(
                lease: silt_extension::silt::datastore::types::Lease,
            ) -> Result<
                silt_extension::silt::datastore::types::Lease,
                silt_extension::silt::datastore::types::Error,
            > {
                silt_extension::lease::renew(&lease)
            }

            fn release(
                lease: silt_extension::silt::datastore::types::Lease,
            ) -> Result<(), silt_extension::silt::datastore::types::Error> {
                silt_extension::lease::release(&lease)
            }

            fn inspect(
                scope: silt_extension::silt::datastore::types::LockScope,
            ) -> Result<
                Option<silt_extension::silt::datastore::types::LockInfo>,
                silt_extension::silt::datastore::types::Error,
            > {
                silt_extension::lock_object::inspect(&scope)
            }

            fn list() -> Result<
                Vec<silt_extension::silt::datastore::types::LockInfo>,
                silt_extension::silt::datastore::types::Error,
            > {
                silt_extension::lock_object::list_all()
            }

            fn force_release(
                expected: silt_extension::silt::datastore::types::LockInfo,
            ) -> Result<(), silt_extension::silt::datastore::types::Error> {
                silt_extension::lock_object::force_release(&expected)
            }
        }
    };
}
