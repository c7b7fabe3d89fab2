//! Property-based fuzzing of every parser of untrusted input, on stable Rust
//! (proptest): the host's readers of an extension's `silt-extension`
//! section and component binary, installed manifests, bundle manifests and
//! worker protocol frames, and the SDK's readers of index partitions and
//! lock objects (which run inside every extension, on whatever the store
//! holds).
//!
//! Each target gets valid seeds, mutated (bit flips, insertions, deletions,
//! truncations, duplicated chunks), and arbitrary bytes. The property: no
//! panic, no allocation beyond the input's own limits, and every error is
//! printable as it stands (no control characters). `SILT_FUZZ_CASES` sets
//! the cases per target (default 20,000, about 3 s in all here; `.ci/run` uses the default). A case
//! that ever fails is kept below as a named regression test.

use crate::support;

use std::io::Cursor;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use silt::runtime::metadata::Metadata;
use silt::runtime::{ComponentInfo, Manifest};
use silt::worker::BundleManifest;
use silt::worker::protocol::{FromWorker, ToWorker, read_message, receive};
use silt_extension::lock_object::LockBody;
use silt_extension::partition::Partition;
use silt_extension::silt::datastore::types::ModelRef;

/// Cases per target.
fn cases() -> u32 {
    std::env::var("SILT_FUZZ_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20_000)
}

/// Runs `check` on `cases()` inputs from `seeds` (mutated) and arbitrary bytes.
fn fuzz(target: &str, seeds: Vec<Vec<u8>>, check: impl Fn(&[u8])) {
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let inputs = prop_oneof![
        4 => mutated(seeds),
        1 => proptest::collection::vec(any::<u8>(), 0..512),
    ];
    let result = runner.run(&inputs, |input| {
        check(&input);
        Ok(())
    });
    if let Err(err) = result {
        panic!("{target}: {err}");
    }
}

/// One of `seeds`, edited at up to 16 places.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let count = seeds.len();
    let edits = proptest::collection::vec((any::<u32>(), 0u8..5, any::<u8>()), 1..16);
    (0..count, edits).prop_map(move |(seed, edits)| {
        let mut bytes = seeds[seed].clone();
        for (position, operation, byte) in edits {
            let at = position as usize % (bytes.len() + 1);
            match operation {
                0 if at < bytes.len() => bytes[at] ^= 1 << (byte % 8),
                1 => bytes.insert(at, byte),
                2 if at < bytes.len() => {
                    bytes.remove(at);
                }
                3 => bytes.truncate(at),
                _ => {
                    let end = (at + usize::from(byte)).min(bytes.len());
                    let chunk = bytes[at..end].to_vec();
                    bytes.splice(at..at, chunk);
                }
            }
        }
        bytes
    })
}

/// An error text as the host prints it must show no control character.
fn assert_printable(target: &str, text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{target}: an error carries a raw control character: {text:?}"
    );
}

const METADATA: &str = r#"api = "silt:datastore@0.7.1"
name = "hello-extension"
version = "0.1.0"
description = "Says hello"
capabilities = ["scoped-sync", "model-locks"]
"#;

#[test]
fn metadata_sections() {
    let seeds = vec![
        METADATA.as_bytes().to_vec(),
        b"api = \"x\"\nname = \"a\"\nversion = \"1\"\ndescription = \"\"\n".to_vec(),
    ];
    fuzz("metadata", seeds, |bytes| match Metadata::parse(bytes) {
        Ok(metadata) => {
            assert!(silt::runtime::metadata::is_valid_name(&metadata.name));
        }
        Err(err) => assert_printable("metadata", &err.to_string()),
    });
}

#[test]
fn installed_manifests() {
    let manifest = format!(
        "[metadata]\n{METADATA}\n[component]\nsha256 = \"{}\"\nsize = 1234\nadded_from = \"/tmp/x.wasm\"\nadded_at = 1700000000\n",
        "ab".repeat(32)
    );
    assert!(Manifest::parse(&manifest).is_ok(), "the seed is valid");
    fuzz("manifest", vec![manifest.into_bytes()], |bytes| {
        let text = String::from_utf8_lossy(bytes);
        match Manifest::parse(&text) {
            Ok(manifest) => {
                assert_eq!(manifest.component.short_sha256().len(), 12);
            }
            Err(err) => assert_printable("manifest", &err),
        }
    });
}

#[test]
fn bundle_manifests() {
    let seed = serde_json::json!({
        "format": 2,
        "wasmtime": "48.0.8",
        "compat_hash": "00ff",
        "engine": {"deadline_ms": 30000},
        "extension": {"api": "silt:datastore@0.7.1", "name": "x", "version": "1", "description": "", "capabilities": []},
        "component_sha256": "ab",
        "artifact_size": 12,
    });
    let seeds = vec![serde_json::to_vec(&seed).unwrap()];
    fuzz("bundle manifest", seeds, |bytes| {
        let _ = BundleManifest::parse(bytes);
    });
}

#[test]
fn worker_protocol_frames() {
    // Real frames of both directions, several per stream.
    let mut to_worker = Vec::new();
    for message in [
        ToWorker::Call(Box::new(silt::runtime::ExportCall::Describe {})),
        ToWorker::Call(Box::new(silt::runtime::ExportCall::HydrateFile {
            path: "data/t/m/f".to_owned(),
        })),
    ] {
        silt::worker::protocol::write_message(&mut to_worker, &message).unwrap();
    }
    fuzz("frames to a worker", vec![to_worker], |bytes| {
        let mut reader = Cursor::new(bytes);
        while let Ok(Some(_)) = read_message::<ToWorker>(&mut reader) {}
    });
    // The host reads a worker's frames with the async reader.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    fuzz(
        "frames from a worker",
        vec![vec![0, 0, 0, 0], vec![3, 0, 0, 0, 1, 2, 3]],
        |bytes| {
            let mut reader = bytes;
            runtime.block_on(async {
                while let Ok(Some(_)) = receive::<FromWorker>(&mut reader).await {}
            });
        },
    );
}

#[test]
fn component_binaries() {
    let seeds = ["hello-extension", "misbehaving"]
        .into_iter()
        .map(|name| std::fs::read(support::component(name)).unwrap())
        .collect();
    fuzz("component", seeds, |bytes| {
        if let Ok(info) = ComponentInfo::parse(bytes, Path::new("x.wasm"))
            && let Err(err) = info.validate(Path::new("x.wasm"))
        {
            assert_printable("component", &err.to_string());
        }
    });
}

fn model() -> ModelRef {
    ModelRef {
        model_type: "t".to_owned(),
        model_id: "m".to_owned(),
    }
}

#[test]
fn index_partitions() {
    let partition = serde_json::json!({
        "layout": 1, "area": "data", "model_type": "t", "model_id": "m",
        "fence": 3, "fence_token": "f00d", "seq": 7, "last_commit": "c1",
        "files": {
            "weights.bin": [
                {"version": "v1", "size": 3, "sha256": "ab", "generation": 2,
                 "writer": "a@h", "committed_at": 1},
                {"version": "v2", "size": 0, "sha256": "cd", "generation": 3,
                 "writer": "b@h", "committed_at": 2, "deleted": true}
            ]
        }
    });
    let seeds = vec![serde_json::to_vec(&partition).unwrap()];
    fuzz("partition", seeds, |bytes| {
        if let Ok(parsed) = Partition::parse("_index/data/t/m.json", bytes, "data", &model()) {
            for name in parsed.files.keys() {
                let _ = parsed.latest(name);
                let _ = parsed.live(name);
            }
        }
    });
}

#[test]
fn lock_objects() {
    let lock = serde_json::json!({
        "scope": {"kind": "model", "model_type": "t", "model_id": "m"},
        "holder": {"name": "a@h", "host": "h", "pid": 7},
        "token": "t0k", "generation": 4, "acquired_at": 1, "renewed_at": 2,
        "ttl_ms": 30000, "nonce": "n"
    });
    let seeds = vec![serde_json::to_vec(&lock).unwrap()];
    fuzz("lock object", seeds, |bytes| {
        let _ = LockBody::parse("_locks/model/t/m.json", bytes);
    });
}
