//! Validation before use: every broken component is refused with an error
//! naming the file and the problem, decided from the binary without
//! compiling anything.

use crate::support;

use silt::runtime::{Catalog, CatalogError, InvalidExtension, RuntimeError};
use support::{component, runtime};

fn refused(name_or_bytes: Result<&str, &[u8]>) -> (InvalidExtension, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let path = match name_or_bytes {
        Ok(name) => component(name),
        Err(bytes) => {
            let path = home.path().join("broken.wasm");
            std::fs::write(&path, bytes).unwrap();
            path
        }
    };
    let catalog = Catalog::new(home.path().join("extensions"));
    match catalog.add(&path, false) {
        Err(CatalogError::Invalid(err)) => {
            let message = err.to_string();
            assert!(
                message.contains(&path.display().to_string()),
                "error does not name the file: {message}"
            );
            assert!(
                catalog.list().unwrap().is_empty(),
                "a refused component was installed"
            );
            (err, home)
        }
        other => panic!("expected the component to be refused, got {other:?}"),
    }
}

#[test]
fn a_file_that_is_not_wasm_is_refused() {
    let (err, _home) = refused(Err(b"#!/bin/sh\necho not wasm\n"));
    assert!(matches!(err, InvalidExtension::NotWasm { .. }), "{err}");
}

#[test]
fn a_core_module_is_refused_as_such() {
    let (err, _home) = refused(Err(b"\0asm\x01\0\0\0"));
    assert!(matches!(err, InvalidExtension::CoreModule { .. }), "{err}");
    assert!(err.to_string().contains("wasm32-wasip2"), "{err}");
}

#[test]
fn a_truncated_component_is_refused() {
    let bytes = std::fs::read(component("hello-extension")).unwrap();
    let (err, _home) = refused(Err(&bytes[..bytes.len() / 2]));
    assert!(matches!(err, InvalidExtension::NotWasm { .. }), "{err}");
}

#[test]
fn another_api_version_is_refused_naming_both_versions() {
    let (err, _home) = refused(Ok("wrong-version"));
    let message = err.to_string();
    assert!(
        matches!(err, InvalidExtension::WrongApiVersion { .. }),
        "{message}"
    );
    assert!(
        message.contains("silt:datastore@0.0.9")
            && message.contains(&silt::runtime::metadata::api_id()),
        "{message}"
    );
}

#[test]
fn missing_exports_are_listed() {
    let (err, _home) = refused(Ok("partial"));
    let message = err.to_string();
    assert!(
        matches!(err, InvalidExtension::MissingExports { .. }),
        "{message}"
    );
    for export in ["sync", "hydration", "locks", "models"] {
        assert!(
            message.contains(&format!(
                "silt:datastore/{export}@{}",
                silt::runtime::metadata::API_VERSION
            )),
            "{message}"
        );
    }
}

#[test]
fn a_component_that_imports_sockets_is_refused() {
    let (err, _home) = refused(Ok("networked"));
    assert!(
        matches!(err, InvalidExtension::ForbiddenImport { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("wasi:sockets/"), "{err}");
}

#[tokio::test]
async fn the_runtime_refuses_invalid_components_without_compiling() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = runtime(cache.path());
    for name in ["networked", "partial", "wrong-version"] {
        let err = runtime.load(&component(name)).await.err().expect("refused");
        assert!(matches!(err, RuntimeError::Invalid(_)), "{name}: {err}");
    }
    assert_eq!(
        runtime.cache().entries().unwrap().len(),
        0,
        "something was compiled"
    );
}

#[test]
fn valid_extensions_install_and_list_from_manifests() {
    let home = tempfile::tempdir().unwrap();
    let catalog = Catalog::new(home.path().join("extensions"));
    let installed = catalog.add(&component("hello-extension"), false).unwrap();
    assert_eq!(installed.name(), "hello-extension");
    // The same bytes again: nothing to do, and no --force needed.
    let again = catalog.add(&component("hello-extension"), false).unwrap();
    assert_eq!(again.manifest, installed.manifest);
    catalog.add(&component("hello-extension"), true).unwrap();
    assert_eq!(catalog.list().unwrap().len(), 1);
    catalog.remove("hello-extension").unwrap();
    assert!(catalog.list().unwrap().is_empty());

    // Other bytes under an installed name need --force: the same component
    // with one custom section more (`other`) is another build.
    let first = catalog.add(&component("hello-extension"), false).unwrap();
    let mut bytes = std::fs::read(component("hello-extension")).unwrap();
    bytes.extend_from_slice(&[0, 7, 5, b'o', b't', b'h', b'e', b'r', b'!']);
    let rebuilt = home.path().join("rebuilt.wasm");
    std::fs::write(&rebuilt, bytes).unwrap();
    assert!(matches!(
        catalog.add(&rebuilt, false),
        Err(CatalogError::AlreadyInstalled { .. })
    ));
    let replaced = catalog.add(&rebuilt, true).unwrap();
    assert_eq!(replaced.name(), first.name());
    assert_ne!(
        replaced.manifest.component.sha256,
        first.manifest.component.sha256
    );
}
