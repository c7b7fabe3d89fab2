//! The integration suites in one test binary: one link of the library and
//! wasmtime instead of one per suite, and one SeaweedFS server for all.
//! Each suite is a module, so a filter selects one (`cargo test --test all
//! -- datastore::`).
//!
//! Four suites keep binaries of their own: `stalls` and `chaos` freeze the
//! server of their binary with SIGSTOP; `deadlines` and `leases` measure
//! time bounds and run one test at a time (`support::one_at_a_time`, and
//! `deadlines`' own lock for its async tests).

#[path = "support/mod.rs"]
mod support;

#[path = "artifact_cache.rs"]
mod artifact_cache;
#[path = "aws_credentials.rs"]
mod aws_credentials;
#[path = "azure_credentials.rs"]
mod azure_credentials;
#[path = "background_hydration.rs"]
mod background_hydration;
#[path = "checkpoint.rs"]
mod checkpoint;
#[path = "cli.rs"]
mod cli;
#[path = "conflicts.rs"]
mod conflicts;
#[path = "containment.rs"]
mod containment;
#[path = "contract.rs"]
mod contract;
#[path = "contract_versions.rs"]
mod contract_versions;
#[path = "conventions.rs"]
mod conventions;
#[path = "datastore.rs"]
mod datastore;
#[path = "doctor_refusals.rs"]
mod doctor_refusals;
#[path = "drivers.rs"]
mod drivers;
#[path = "execution.rs"]
mod execution;
#[path = "fuzz_parsers.rs"]
mod fuzz_parsers;
#[path = "gcs_credentials.rs"]
mod gcs_credentials;
#[path = "hostile.rs"]
mod hostile;
#[path = "hostile_calls.rs"]
mod hostile_calls;
#[path = "hydration.rs"]
mod hydration;
#[path = "identity.rs"]
mod identity;
#[path = "journal.rs"]
mod journal;
#[path = "json_schemas.rs"]
mod json_schemas;
#[path = "large_objects.rs"]
mod large_objects;
#[path = "latency.rs"]
mod latency;
#[path = "leftovers.rs"]
mod leftovers;
#[path = "lockfile.rs"]
mod lockfile;
#[path = "monolith.rs"]
mod monolith;
#[path = "out_of_process.rs"]
mod out_of_process;
#[path = "registry.rs"]
mod registry;
#[path = "sandbox.rs"]
mod sandbox;
#[path = "scaffold.rs"]
mod scaffold;
#[path = "settings.rs"]
mod settings;
#[path = "store_conformance.rs"]
mod store_conformance;
#[path = "store_faults.rs"]
mod store_faults;
#[path = "telemetry.rs"]
mod telemetry;
#[path = "typescript_datastore.rs"]
mod typescript_datastore;
#[path = "unleased.rs"]
mod unleased;
#[path = "validation.rs"]
mod validation;
