//! `silt init`: write a `silt.toml` for this directory and, when the
//! datastore extension is installed, set the datastore up.

use std::path::{Path, PathBuf};

use clap::Args;

use super::Context;
use super::hydration_progress::with_progress;
use crate::config::Backend;
use crate::ops;
use crate::ops::init::InitRequest;

/// `silt init` arguments.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where the datastore lives.
    #[arg(long, value_enum, default_value_t = Backend::Dir)]
    backend: Backend,
    /// For `dir`: the directory (default `.silt/store`).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// For `s3` and `gcs`: the bucket.
    #[arg(long, required_if_eq_any([("backend", "s3"), ("backend", "gcs")]))]
    bucket: Option<String>,
    /// For `s3` and `gcs`: a key prefix inside the bucket.
    #[arg(long)]
    prefix: Option<String>,
    /// For `s3`: the endpoint of an S3-compatible store (default AWS); for
    /// `gcs` and `azure`: an emulator's (default the cloud's).
    #[arg(long)]
    endpoint: Option<String>,
    /// For `s3`: the region.
    #[arg(long)]
    region: Option<String>,
    /// For `azure`: the storage account (default: the connection string's,
    /// else AZURE_STORAGE_ACCOUNT).
    #[arg(long)]
    account: Option<String>,
    /// For `azure`: the container.
    #[arg(long, required_if_eq("backend", "azure"))]
    container: Option<String>,
    /// A namespace inside the datastore root.
    #[arg(long)]
    namespace: Option<String>,
    /// The datastore's extension: an installed name, or where to get it
    /// (`oci://HOST/REPO:TAG`, a path to a .wasm file). A source is written
    /// to [extensions.require], installed and locked in silt.lock.
    #[arg(long, value_name = "NAME|REF")]
    extension: Option<String>,
    /// Replace an existing silt.toml.
    #[arg(long)]
    force: bool,
    /// Use a store that fails the conditional-write checks anyway (unsafe:
    /// concurrent writers can lose updates). Recorded in silt.toml as
    /// `datastore.allow_unsafe_store = true`, so the decision is visible.
    #[arg(long)]
    allow_unsafe_store: bool,
}

pub(super) fn run(context: &Context, cwd: &Path, args: InitArgs) -> anyhow::Result<()> {
    let request = InitRequest {
        backend: args.backend,
        dir: args.dir,
        bucket: args.bucket,
        prefix: args.prefix,
        endpoint: args.endpoint,
        region: args.region,
        account: args.account,
        container: args.container,
        namespace: args.namespace,
        extension: args.extension,
        force: args.force,
        allow_unsafe_store: args.allow_unsafe_store,
        hydration: context.hydration,
    };
    let report = with_progress(context, "hydrate", |on_progress| {
        ops::init::init(cwd, &request, &context.runtimes, context, on_progress)
    })?;
    context.output.emit(&report, |out| {
        writeln!(out, "wrote {}", report.config.display())?;
        match &report.next {
            None => writeln!(out, "datastore ready"),
            Some(next) => writeln!(out, "next: {next}"),
        }
    })
}
