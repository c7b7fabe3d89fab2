//! A component fetched by URL: `https://` anywhere, plain `http://` only
//! from this machine, always pinned by the sha256 the user gives, and
//! refused whole when the bytes are not those.

use std::time::Duration;

use futures_util::StreamExt as _;

use crate::RegistryError;
use crate::artifact::MAX_COMPONENT_BYTES;
use crate::error::server_text;
use crate::reference::{host_is_loopback, is_sha256_hex};

/// Downloads `url` and returns its bytes if their sha256 is `sha256` (hex).
///
/// Redirects are followed (up to 5) under the same rule as the URL itself:
/// a redirect to plain HTTP elsewhere is refused.
///
/// # Errors
/// A missing or malformed digest, a URL that is neither https nor loopback
/// http, a server error, more than [`MAX_COMPONENT_BYTES`], or bytes whose
/// digest is not `sha256`.
pub async fn fetch(url: &str, sha256: Option<&str>) -> Result<Vec<u8>, RegistryError> {
    let shown = server_text(url);
    let parsed = reqwest::Url::parse(url).map_err(|err| RegistryError::BadReference {
        reference: shown.clone(),
        why: err.to_string(),
    })?;
    allowed(&parsed)?;
    let Some(expected) = sha256 else {
        return Err(RegistryError::DigestRequired { url: shown });
    };
    let expected = expected.strip_prefix("sha256:").unwrap_or(expected);
    if !is_sha256_hex(expected) {
        return Err(RegistryError::BadReference {
            reference: server_text(expected),
            why: "--sha256 takes 64 lowercase hex digits".to_owned(),
        });
    }
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("silt/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("more than 5 redirects")
            } else if allowed(attempt.url()).is_err() {
                attempt.error("redirected to plain http off this machine")
            } else {
                attempt.follow()
            }
        }))
        .build()
        .map_err(|err| transport(&shown, &err))?;
    let response = client
        .get(parsed)
        .send()
        .await
        .map_err(|err| transport(&shown, &err))?;
    let status = response.status();
    if !status.is_success() {
        return Err(RegistryError::Transport {
            target: shown,
            detail: format!("the server answered {status}"),
        });
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_COMPONENT_BYTES)
    {
        return Err(RegistryError::TooLarge {
            what: shown,
            limit: MAX_COMPONENT_BYTES,
        });
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| transport(&shown, &err))?;
        if (body.len() + chunk.len()) as u64 > MAX_COMPONENT_BYTES {
            return Err(RegistryError::TooLarge {
                what: shown,
                limit: MAX_COMPONENT_BYTES,
            });
        }
        body.extend_from_slice(&chunk);
    }
    let actual = crate::sha256_digest(&body);
    if actual.strip_prefix("sha256:") != Some(expected) {
        return Err(RegistryError::DigestMismatch {
            what: shown,
            expected: format!("sha256:{expected}"),
            actual,
        });
    }
    Ok(body)
}

/// https anywhere; http only to this machine.
fn allowed(url: &reqwest::Url) -> Result<(), RegistryError> {
    let loopback = url
        .host_str()
        .is_some_and(|host| host_is_loopback(host.trim_start_matches('[').trim_end_matches(']')));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(RegistryError::PlainHttp {
            url: server_text(url.as_str()),
        }),
        other => Err(RegistryError::BadReference {
            reference: server_text(url.as_str()),
            why: format!("{} is not https", server_text(other)),
        }),
    }
}

/// A reqwest error with its causes, escaped.
fn transport(target: &str, err: &reqwest::Error) -> RegistryError {
    let mut detail = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    RegistryError::Transport {
        target: target.to_owned(),
        detail: server_text(&detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_before_any_request() {
        let hex = "0".repeat(64);
        let err = fetch("http://example.com/x.wasm", Some(&hex))
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::PlainHttp { .. }), "{err}");
        let err = fetch("https://example.com/x.wasm", None).await.unwrap_err();
        assert!(matches!(err, RegistryError::DigestRequired { .. }), "{err}");
        let err = fetch("https://example.com/x.wasm", Some("abc"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("64 lowercase hex"), "{err}");
        let err = fetch("ftp://127.0.0.1/x.wasm", Some(&hex))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not https"), "{err}");
    }
}
