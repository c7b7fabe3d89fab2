//! `silt datastore doctor` refuses (exit 69) a GCS or Azure endpoint that
//! takes conditional writes and ignores them: the real emulators behind a
//! proxy that drops every precondition (`support::stripping_proxy`).

use crate::support::project::{Backend, Project};
use crate::support::{azurite, fake_gcs, stripping_proxy};

const UNAVAILABLE: i32 = 69;

/// Runs `silt datastore doctor` in `project` with `variables` (and no
/// Azure setting of the test process); its exit code and stderr.
fn doctor(project: &Project, variables: &[(&str, String)]) -> (i32, String) {
    let home = tempfile::tempdir().unwrap();
    let mut command = project.silt_with_only(&["AZURE_"], home.path(), variables);
    let (code, stdout, stderr) = crate::support::output(command.args(["datastore", "doctor"]));
    (code, format!("{stdout}{stderr}"))
}

fn point_at(project: &Project, from: &str, to: &str) {
    let path = project.path().join("silt.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

#[test]
fn doctor_refuses_a_gcs_endpoint_that_ignores_preconditions() {
    let project = Project::new(Backend::Gcs, "");
    let (code, report) = doctor(&project, &[]);
    assert_eq!(code, 0, "through the gate, as GCS: {report}");
    let proxy = stripping_proxy::start(fake_gcs::gated());
    point_at(&project, fake_gcs::gated(), &proxy);
    let (code, report) = doctor(&project, &[]);
    assert_eq!(code, UNAVAILABLE, "{report}");
    for check in ["create-if-absent", "update-if-match", "delete-if-match"] {
        assert!(report.contains(check), "{check} in {report}");
    }
}

#[test]
fn doctor_refuses_an_azure_endpoint_that_ignores_preconditions() {
    // A SAS signs no headers, so dropping the conditions leaves requests
    // valid (Shared Key signs them: dropping them would be refused as a
    // bad signature instead).
    let project = Project::new(Backend::Azure, "");
    let sas = [("AZURE_STORAGE_SAS_TOKEN", azurite::account_sas())];
    let (code, report) = doctor(&project, &sas);
    assert_eq!(code, 0, "Azurite itself: {report}");
    let endpoint = azurite::server().endpoint.clone();
    let (host, account) = endpoint.rsplit_once('/').unwrap();
    let proxy = stripping_proxy::start(host);
    point_at(&project, &endpoint, &format!("{proxy}/{account}"));
    let (code, report) = doctor(&project, &sas);
    assert_eq!(code, UNAVAILABLE, "{report}");
    for check in ["create-if-absent", "update-if-match", "delete-if-match"] {
        assert!(report.contains(check), "{check} in {report}");
    }
}
