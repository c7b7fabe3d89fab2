//! `silt extension test PATH.wasm`: the datastore contract suite against
//! any component, printed as a pass/fail table (or `--json`). Exits 0 when
//! every check that applies passes, 1 otherwise.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::Context;
use crate::contract::{self, CheckResult, Outcome, SuiteOptions, SuiteStore};
use crate::store::S3Config;

/// Where the suite's temporary datastore lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// A temporary directory, removed afterwards.
    #[default]
    Dir,
    /// A fresh prefix of an S3 bucket (credentials from the environment).
    S3,
}

/// Arguments of `silt extension test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The component (.wasm) to test; it need not be installed.
    pub path: PathBuf,
    /// Where the suite's datastore lives.
    #[arg(long, value_enum, default_value_t = StoreKind::Dir)]
    pub store: StoreKind,
    /// With `--store s3`: the bucket.
    #[arg(long, required_if_eq("store", "s3"))]
    pub bucket: Option<String>,
    /// With `--store s3`: a key prefix under which a fresh one is made.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// With `--store s3`: an S3-compatible endpoint (e.g. http://127.0.0.1:8333).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// With `--store s3`: the region.
    #[arg(long)]
    pub region: Option<String>,
}

#[derive(Serialize)]
struct Report {
    component: PathBuf,
    passed: usize,
    failed: usize,
    skipped: usize,
    checks: Vec<CheckResult>,
}

pub(super) fn run(context: &Context, args: TestArgs) -> anyhow::Result<()> {
    let store = match args.store {
        StoreKind::Dir => SuiteStore::Dir,
        StoreKind::S3 => SuiteStore::S3(S3Config {
            bucket: args.bucket.clone().unwrap_or_default(),
            prefix: args.prefix.clone(),
            region: args.region.clone(),
            endpoint: args.endpoint.clone(),
            path_style: None,
            profile: None,
            credentials: Default::default(),
            multipart_threshold_mib: None,
            part_size_mib: None,
            parts_in_flight: None,
        }),
    };
    let options = SuiteOptions {
        component: args.path.clone(),
        cache_dir: context.locations.cache_dir.clone(),
        store,
        execution: context.locations.config.sandbox.execution,
    };
    let checks = super::block_on(contract::run(options))??;
    let count = |outcome| checks.iter().filter(|c| c.outcome == outcome).count();
    let report = Report {
        component: args.path,
        passed: count(Outcome::Pass),
        failed: count(Outcome::Fail),
        skipped: count(Outcome::Skip),
        checks,
    };
    context.output.emit(&report, |out| {
        let width = report
            .checks
            .iter()
            .map(|c| c.check.len())
            .max()
            .unwrap_or(0);
        for check in &report.checks {
            let mark = match check.outcome {
                Outcome::Pass => "pass",
                Outcome::Fail => "FAIL",
                Outcome::Skip => "skip",
            };
            writeln!(out, "{mark}  {:width$}  {}", check.check, check.detail)?;
        }
        writeln!(
            out,
            "\n{}: {} passed, {} failed, {} skipped",
            report.component.display(),
            report.passed,
            report.failed,
            report.skipped
        )
    })?;
    if report.failed > 0 {
        anyhow::bail!(
            "{} of the datastore contract's checks failed for {}",
            report.failed,
            report.component.display()
        );
    }
    Ok(())
}
