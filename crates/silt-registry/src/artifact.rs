//! The layout of a component in a registry: the CNCF Wasm OCI artifact
//! (TAG Runtime's "Wasm OCI Artifact layout", which `wkg`, wasmCloud and
//! Spin's tooling also read): an OCI image manifest whose config has media
//! type `application/vnd.wasm.config.v0+json` and whose one layer is the
//! component, `application/wasm`.

use std::collections::BTreeMap;

use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use serde::{Deserialize, Serialize};

use crate::RegistryError;
use crate::error::server_text;

/// Media type of the artifact's config.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Media type of the one layer: the component's bytes.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The older `wasm-to-oci` media types, still read (never written).
const LEGACY_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v1+json";
const LEGACY_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";

/// The largest component silt downloads: far above any datastore extension
/// (ours are 0.1–12 MB), far below what would hurt the machine.
pub const MAX_COMPONENT_BYTES: u64 = 256 << 20;
/// The largest manifest or config read.
pub(crate) const MAX_DOCUMENT_BYTES: u64 = 4 << 20;

/// What a publisher says about the component, for the config and annotations.
#[derive(Debug, Clone, Default)]
pub struct ComponentDescription {
    /// Its name (`org.opencontainers.image.title`).
    pub name: String,
    /// Its version (`org.opencontainers.image.version`).
    pub version: String,
    /// One line on what it is (`org.opencontainers.image.description`).
    pub description: String,
    /// The interfaces it imports, as the component names them.
    pub imports: Vec<String>,
    /// The interfaces it exports.
    pub exports: Vec<String>,
    /// The world it targets, e.g. `silt:datastore/datastore@0.7.4`.
    pub target: Option<String>,
}

/// The config blob (`application/vnd.wasm.config.v0+json`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WasmConfig {
    /// When it was published (RFC 3339).
    pub created: String,
    /// Always `wasm`.
    pub architecture: String,
    /// `wasip2`: the component's ABI.
    pub os: String,
    /// The layers' digests, in order.
    pub layer_digests: Vec<String>,
    /// The component's imports, exports and target world.
    pub component: ComponentSection,
}

/// The `component` section of the config.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ComponentSection {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// The config and manifest of one component, serialized as they are pushed.
pub(crate) struct Layout {
    pub config: Vec<u8>,
    pub config_digest: String,
    pub layer_digest: String,
    pub manifest: Vec<u8>,
}

/// Builds the artifact for `component`.
pub(crate) fn layout(component: &[u8], about: &ComponentDescription, created: &str) -> Layout {
    let layer_digest = crate::sha256_digest(component);
    let config = WasmConfig {
        created: created.to_owned(),
        architecture: "wasm".to_owned(),
        os: "wasip2".to_owned(),
        layer_digests: vec![layer_digest.clone()],
        component: ComponentSection {
            exports: about.exports.clone(),
            imports: about.imports.clone(),
            target: about.target.clone(),
        },
    };
    let config = serde_json::to_vec(&config).expect("config serializes");
    let config_digest = crate::sha256_digest(&config);
    let mut annotations = BTreeMap::new();
    for (key, value) in [
        ("org.opencontainers.image.title", &about.name),
        ("org.opencontainers.image.version", &about.version),
        ("org.opencontainers.image.description", &about.description),
    ] {
        if !value.is_empty() {
            annotations.insert(key.to_owned(), value.clone());
        }
    }
    annotations.insert(
        "org.opencontainers.image.created".to_owned(),
        created.to_owned(),
    );
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_owned()),
        config: OciDescriptor {
            media_type: WASM_CONFIG_MEDIA_TYPE.to_owned(),
            digest: config_digest.clone(),
            size: config.len() as i64,
            ..OciDescriptor::default()
        },
        layers: vec![OciDescriptor {
            media_type: WASM_LAYER_MEDIA_TYPE.to_owned(),
            digest: layer_digest.clone(),
            size: component.len() as i64,
            // The file name other clients (oras) pull the layer to.
            annotations: (!about.name.is_empty()).then(|| {
                BTreeMap::from([(
                    "org.opencontainers.image.title".to_owned(),
                    format!("{}.wasm", about.name),
                )])
            }),
            ..OciDescriptor::default()
        }],
        subject: None,
        artifact_type: None,
        annotations: Some(annotations),
    };
    let manifest = serde_json::to_vec(&manifest).expect("manifest serializes");
    Layout {
        config,
        config_digest,
        layer_digest,
        manifest,
    }
}

/// Checks a pulled manifest is a component artifact and returns its layer.
///
/// # Errors
/// [`RegistryError::NotAComponent`] saying what it is instead, or
/// [`RegistryError::TooLarge`].
pub(crate) fn component_layer(
    reference: &str,
    manifest: &[u8],
) -> Result<OciDescriptor, RegistryError> {
    let not = |why: String| RegistryError::NotAComponent {
        reference: reference.to_owned(),
        why,
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(manifest)
        .map_err(|err| not(format!("its manifest is not JSON ({err})")))?;
    if probe.manifests.is_some() {
        return Err(not(
            "it is an image index (a list of platform images), not one artifact".to_owned(),
        ));
    }
    if let Some(media_type) = &probe.media_type
        && media_type != OCI_IMAGE_MEDIA_TYPE
    {
        return Err(not(format!(
            "its manifest has media type {}",
            server_text(media_type)
        )));
    }
    let manifest: OciImageManifest = serde_json::from_slice(manifest)
        .map_err(|err| not(format!("its manifest does not parse ({err})")))?;
    let config_type = manifest.config.media_type.as_str();
    if config_type != WASM_CONFIG_MEDIA_TYPE && config_type != LEGACY_CONFIG_MEDIA_TYPE {
        return Err(not(format!(
            "its config has media type {} (a container image?), not {WASM_CONFIG_MEDIA_TYPE}",
            server_text(config_type)
        )));
    }
    let [layer] = manifest.layers.as_slice() else {
        return Err(not(format!(
            "it has {} layers; a component artifact has exactly one",
            manifest.layers.len()
        )));
    };
    let layer_type = layer.media_type.as_str();
    if layer_type != WASM_LAYER_MEDIA_TYPE && layer_type != LEGACY_LAYER_MEDIA_TYPE {
        return Err(not(format!(
            "its layer has media type {}, not {WASM_LAYER_MEDIA_TYPE}",
            server_text(layer_type)
        )));
    }
    crate::reference::check_digest(&layer.digest)
        .map_err(|why| not(format!("its layer digest is not usable: {why}")))?;
    match u64::try_from(layer.size) {
        Ok(size) if size > MAX_COMPONENT_BYTES => Err(RegistryError::TooLarge {
            what: reference.to_owned(),
            limit: MAX_COMPONENT_BYTES,
        }),
        Ok(_) => Ok(layer.clone()),
        Err(_) => Err(not("its layer has a negative size".to_owned())),
    }
}

/// Now (or `SOURCE_DATE_EPOCH`, for reproducible artifacts) in RFC 3339.
pub(crate) fn created_now() -> String {
    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|text| text.parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    rfc3339(seconds)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of seconds since the epoch (proleptic Gregorian).
fn rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let in_day = seconds.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn a_published_layout_reads_back_as_a_component() {
        let component = b"\0asm\x0d\0\x01\0";
        let about = ComponentDescription {
            name: "store".into(),
            version: "1.0.0".into(),
            ..ComponentDescription::default()
        };
        let layout = layout(component, &about, "2026-11-25T00:00:00Z");
        let layer = component_layer("r", &layout.manifest).unwrap();
        assert_eq!(layer.digest, crate::sha256_digest(component));
        assert_eq!(layer.size, component.len() as i64);
        let config: WasmConfig = serde_json::from_slice(&layout.config).unwrap();
        assert_eq!(config.layer_digests, vec![layer.digest]);
        assert_eq!(layout.config_digest, crate::sha256_digest(&layout.config));
    }

    #[test]
    fn container_images_and_indexes_are_refused_by_name() {
        let image = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#;
        let err = component_layer("r", image).unwrap_err().to_string();
        assert!(err.contains("container image"), "{err}");
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        let err = component_layer("r", index).unwrap_err().to_string();
        assert!(err.contains("image index"), "{err}");
    }
}
