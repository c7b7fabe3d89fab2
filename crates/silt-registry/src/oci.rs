//! Publishing and pulling a component as a Wasm OCI artifact, through
//! oci-client. What is pulled is checked here, not trusted: the manifest
//! against a pinned digest, its layout against [`crate::artifact`], the
//! component against the layer digest, and every size against a limit.

use std::time::Duration;

use futures_util::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::manifest::OCI_IMAGE_MEDIA_TYPE;
use oci_client::{Client, RegistryOperation};

use crate::artifact::{self, ComponentDescription, MAX_COMPONENT_BYTES, MAX_DOCUMENT_BYTES};
use crate::error::server_text;
use crate::{OciReference, RegistryError};

/// A component now in the registry.
#[derive(Debug, Clone)]
pub struct Published {
    /// Where, pinned: `oci://HOST/REPO:TAG@sha256:…`.
    pub reference: OciReference,
    /// The manifest's digest, `sha256:…`: what a lockfile pins.
    pub manifest_digest: String,
    /// The component's digest, `sha256:…` (the layer).
    pub component_digest: String,
}

/// A component pulled and checked.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// Where it came from, pinned to the manifest it was read through.
    pub reference: OciReference,
    /// The manifest's digest, `sha256:…`.
    pub manifest_digest: String,
    /// The component, whose sha256 is the layer digest (checked).
    pub component: Vec<u8>,
}

/// Pushes `component` to `reference` (which must carry a tag).
///
/// # Errors
/// A reference without a tag, refused credentials, or a registry that
/// cannot be reached or answers an error.
pub async fn publish(
    reference: &OciReference,
    component: &[u8],
    about: &ComponentDescription,
) -> Result<Published, RegistryError> {
    if reference.tag.is_none() || reference.digest.is_some() {
        return Err(RegistryError::BadReference {
            reference: reference.to_string(),
            why: "publish to a tag (oci://HOST/REPO:VERSION); the digest is the registry's answer"
                .to_owned(),
        });
    }
    let client = client(reference);
    let image = reference.to_client()?;
    let auth = crate::credentials::for_registry(&reference.registry)?;
    let failed = |err| map_error(reference, err);
    client
        .auth(&image, &auth, RegistryOperation::Push)
        .await
        .map_err(failed)?;
    let layout = artifact::layout(component, about, &artifact::created_now());
    client
        .push_blob(&image, component.to_vec(), &layout.layer_digest)
        .await
        .map_err(failed)?;
    client
        .push_blob(&image, layout.config, &layout.config_digest)
        .await
        .map_err(failed)?;
    let manifest_digest = crate::sha256_digest(&layout.manifest);
    client
        .push_manifest_raw(
            &image,
            layout.manifest,
            OCI_IMAGE_MEDIA_TYPE.parse().expect("a valid header value"),
        )
        .await
        .map_err(failed)?;
    Ok(Published {
        reference: reference.pinned(&manifest_digest),
        manifest_digest,
        component_digest: layout.layer_digest,
    })
}

/// Pulls the component `reference` names and checks it.
///
/// # Errors
/// Not found, refused, not a component artifact, larger than
/// [`MAX_COMPONENT_BYTES`], or bytes that are not what a digest names.
pub async fn pull(reference: &OciReference) -> Result<Pulled, RegistryError> {
    let client = client(reference);
    let image = reference.to_client()?;
    let auth = crate::credentials::for_registry(&reference.registry)?;
    let failed = |err| map_error(reference, err);
    // Ask for manifests of any kind so that an index or a docker image is
    // named as such rather than answered "not found".
    let (manifest, _) = client
        .pull_manifest_raw(
            &image,
            &auth,
            &[
                OCI_IMAGE_MEDIA_TYPE,
                oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
                oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE,
                oci_client::manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
            ],
        )
        .await
        .map_err(failed)?;
    if manifest.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(RegistryError::TooLarge {
            what: format!("the manifest of {reference}"),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    // The digest is computed here, whatever the registry's header says.
    let manifest_digest = crate::sha256_digest(&manifest);
    if let Some(pinned) = &reference.digest
        && *pinned != manifest_digest
    {
        return Err(RegistryError::DigestMismatch {
            what: format!("the manifest of {reference}"),
            expected: pinned.clone(),
            actual: manifest_digest,
        });
    }
    let layer = artifact::component_layer(&reference.to_string(), &manifest)?;
    let mut stream = client
        .pull_blob_stream(&image, &layer)
        .await
        .map_err(failed)?;
    let declared = u64::try_from(layer.size).unwrap_or(0);
    let mut component = Vec::with_capacity(declared.min(MAX_COMPONENT_BYTES) as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| {
            // oci-client checks the digest at the end of the stream too.
            match err
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<DigestError>())
            {
                Some(DigestError::VerificationError { actual, .. }) => {
                    RegistryError::DigestMismatch {
                        what: format!("the component of {reference}"),
                        expected: layer.digest.clone(),
                        actual: server_text(actual),
                    }
                }
                _ => transport(reference, server_text(&err.to_string())),
            }
        })?;
        if (component.len() + chunk.len()) as u64 > declared {
            return Err(RegistryError::DigestMismatch {
                what: format!("the component of {reference}"),
                expected: layer.digest.clone(),
                actual: format!("(more than the manifest's {declared} bytes)"),
            });
        }
        component.extend_from_slice(&chunk);
    }
    let actual = crate::sha256_digest(&component);
    if actual != layer.digest {
        return Err(RegistryError::DigestMismatch {
            what: format!("the component of {reference}"),
            expected: layer.digest.clone(),
            actual,
        });
    }
    Ok(Pulled {
        reference: reference.pinned(&manifest_digest),
        manifest_digest,
        component,
    })
}

/// The tags of `repository` (a reference without tag), every page of them
/// (up to 100,000).
///
/// # Errors
/// As [`pull`]'s, for the listing.
pub async fn list_tags(repository: &OciReference) -> Result<Vec<String>, RegistryError> {
    const PAGE: usize = 1000;
    let client = client(repository);
    let image = repository.to_client()?;
    let auth = crate::credentials::for_registry(&repository.registry)?;
    let mut tags: Vec<String> = Vec::new();
    loop {
        let page = client
            .list_tags(&image, &auth, Some(PAGE), tags.last().map(String::as_str))
            .await
            .map_err(|err| map_error(repository, err))?;
        let full = page.tags.len() >= PAGE;
        tags.extend(page.tags);
        if !full || tags.len() >= 100 * PAGE {
            return Ok(tags);
        }
    }
}

/// A client speaking HTTPS, or plain HTTP to a loopback registry only.
fn client(reference: &OciReference) -> Client {
    let protocol = if reference.is_loopback() {
        ClientProtocol::HttpsExcept(vec![reference.registry.clone()])
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        // No platform resolution: an index is refused, not resolved to
        // some platform's image.
        platform_resolver: None,
        user_agent: concat!("silt/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    })
}

/// oci-client's error, in words that say what to do.
fn map_error(reference: &OciReference, err: OciDistributionError) -> RegistryError {
    let detail = server_text(&with_causes(&err));
    let unauthorized = || RegistryError::Unauthorized {
        registry: reference.registry.clone(),
        detail: detail.clone(),
    };
    let not_found = || RegistryError::NotFound {
        reference: reference.to_string(),
        detail: detail.clone(),
    };
    match &err {
        OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::UnauthorizedError { .. } => unauthorized(),
        OciDistributionError::ImageManifestNotFoundError(_) => not_found(),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                unauthorized()
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                not_found()
            } else {
                transport(reference, detail)
            }
        }
        OciDistributionError::ServerError {
            code: 401 | 403, ..
        } => unauthorized(),
        OciDistributionError::ServerError { code: 404, .. } => not_found(),
        OciDistributionError::DigestError(_) => RegistryError::DigestMismatch {
            what: reference.to_string(),
            expected: "the digest the registry named".to_owned(),
            actual: detail,
        },
        _ => transport(reference, detail),
    }
}

fn transport(reference: &OciReference, detail: String) -> RegistryError {
    RegistryError::Transport {
        target: reference.registry.clone(),
        detail,
    }
}

/// An error and its causes, `: `-joined (reqwest keeps "connection
/// refused" two levels down).
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
