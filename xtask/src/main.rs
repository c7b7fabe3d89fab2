//! Project automation, std only so it builds in seconds.
//!
//! ```text
//! cargo xtask demo             # silt's main job on a local-directory datastore
//! cargo xtask test             # every test (installs the wasm target, builds components)
//! cargo xtask lint             # rustfmt --check, import circles, clippy -D warnings, host and guests
//! cargo xtask components       # build the wasm components; prints their directory
//! cargo xtask seaweed          # install SeaweedFS for the tests; prints the `weed` path
//! cargo xtask moto             # install moto (AWS STS and S3 emulator) for the tests; prints the `moto_server` path
//! cargo xtask fake-gcs         # install fake-gcs-server (GCS emulator) for the tests; prints its path
//! cargo xtask azurite          # install Azurite (Azure Blob emulator) for the tests; prints its path
//! cargo xtask registry         # install the OCI registry for the tests; prints its path
//! cargo xtask skopeo | oras    # install the registry clients the tests check silt against
//! cargo xtask bench startup    # start-up benchmark table
//! cargo xtask bench store      # object-store throughput vs aws-sdk-s3, bulk download
//! cargo xtask bench datastore  # the field's pain scenarios: silt vs the sharded and monolith baselines
//! cargo xtask bench hydration  # lazy (one model) vs full hydration vs raw GETs, 264k-object fixture
//! cargo xtask bench worker     # out-of-process execution per driver vs in-process
//! cargo xtask bench languages  # the Rust partitioned datastore vs the TypeScript example
//! ```

mod bench;
mod build;
mod circles;
mod dockerd;
mod tools;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["components"] => build::components().map(|dir| println!("{}", dir.display())),
        ["seaweed"] => build::seaweed().map(|weed| println!("{}", weed.display())),
        ["moto"] => build::moto().map(|moto| println!("{}", moto.display())),
        ["fake-gcs"] => build::fake_gcs().map(|path| println!("{}", path.display())),
        ["azurite"] => build::azurite().map(|path| println!("{}", path.display())),
        ["registry"] => build::registry().map(|path| println!("{}", path.display())),
        ["skopeo"] => build::skopeo().map(|path| println!("{}", path.display())),
        ["oras"] => build::oras().map(|path| println!("{}", path.display())),
        ["rotel"] => build::rotel().map(|path| println!("{}", path.display())),
        ["demo"] => build::demo(),
        ["install"] => build::install(),
        ["lint"] => build::lint(),
        ["test", rest @ ..] => build::test(rest),
        ["chaos", rest @ ..] => build::chaos(rest),
        ["bench", "startup", rest @ ..] => bench::startup(rest),
        ["bench", "store", rest @ ..] => bench::store(rest),
        ["bench", "datastore", rest @ ..] => bench::datastore(rest),
        ["bench", "hydration", rest @ ..] => bench::hydration(rest),
        ["bench", "worker", rest @ ..] => bench::worker(rest),
        ["bench", "languages", rest @ ..] => bench::languages(rest),
        ["bench", "telemetry", rest @ ..] => bench::telemetry(rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <demo | install | test [-- cargo test args] | chaos [--quick] | lint | components | seaweed | moto | fake-gcs | azurite | registry | skopeo | oras | rotel | bench startup|store|datastore|hydration|worker|languages|telemetry [--quick]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err}");
            ExitCode::FAILURE
        }
    }
}
