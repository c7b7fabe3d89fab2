//! Registry credentials, from where the user's other tools keep them: the
//! environment, then podman's and docker's auth files (and the credential
//! helpers those name). They go to the registry only; no extension ever
//! sees them (a guest has no environment and no files of the host).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::RegistryError;

/// Environment variables that, both set, are used for every registry.
pub const USERNAME_VAR: &str = "SILT_REGISTRY_USERNAME";
/// See [`USERNAME_VAR`].
pub const PASSWORD_VAR: &str = "SILT_REGISTRY_PASSWORD";

/// The credentials for `registry` (`HOST[:PORT]`): anonymous when nothing
/// names it.
///
/// # Errors
/// An auth file that exists but does not parse, or a credential helper
/// that fails.
pub fn for_registry(registry: &str) -> Result<RegistryAuth, RegistryError> {
    if let (Ok(user), Ok(password)) = (std::env::var(USERNAME_VAR), std::env::var(PASSWORD_VAR)) {
        return Ok(RegistryAuth::Basic(user, password));
    }
    for path in auth_files() {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => {
                return Err(RegistryError::BadAuthFile {
                    path,
                    detail: err.to_string(),
                });
            }
        };
        if let Some(auth) = from_auth_file(&path, &text, registry)? {
            return Ok(auth);
        }
    }
    Ok(RegistryAuth::Anonymous)
}

/// Where podman and docker keep credentials, in the order podman reads them.
fn auth_files() -> Vec<PathBuf> {
    let env_path = |var: &str| std::env::var_os(var).map(PathBuf::from);
    let home = env_path("HOME");
    let mut files = Vec::new();
    if let Some(file) = env_path("REGISTRY_AUTH_FILE") {
        files.push(file);
    }
    if let Some(runtime) = env_path("XDG_RUNTIME_DIR") {
        files.push(runtime.join("containers/auth.json"));
    }
    if let Some(config) =
        env_path("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")))
    {
        files.push(config.join("containers/auth.json"));
    }
    if let Some(docker) =
        env_path("DOCKER_CONFIG").or_else(|| home.as_ref().map(|h| h.join(".docker")))
    {
        files.push(docker.join("config.json"));
    }
    files
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
    creds_store: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthEntry {
    auth: Option<String>,
    identitytoken: Option<String>,
}

/// The entry of one auth file for `registry`, if it has one.
fn from_auth_file(
    path: &Path,
    text: &str,
    registry: &str,
) -> Result<Option<RegistryAuth>, RegistryError> {
    let bad = |detail: String| RegistryError::BadAuthFile {
        path: path.to_owned(),
        detail,
    };
    let file: AuthFile =
        serde_json::from_str(text).map_err(|err| bad(format!("not an auth file ({err})")))?;
    if let Some(helper) = file
        .cred_helpers
        .iter()
        .find(|(key, _)| normalized(key) == registry)
        .map(|(_, helper)| helper)
    {
        return helper_credentials(helper, registry).map(Some);
    }
    if let Some((_, entry)) = file
        .auths
        .iter()
        .find(|(key, _)| normalized(key) == registry)
    {
        if let Some(token) = &entry.identitytoken
            && !token.is_empty()
        {
            return Ok(Some(RegistryAuth::Bearer(token.clone())));
        }
        if let Some(auth) = &entry.auth {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad(format!("the entry for {registry} is not base64")))?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| bad(format!("the entry for {registry} is not text")))?;
            let (user, password) = decoded
                .split_once(':')
                .ok_or_else(|| bad(format!("the entry for {registry} is not user:password")))?;
            return Ok(Some(RegistryAuth::Basic(
                user.to_owned(),
                password.to_owned(),
            )));
        }
    }
    match &file.creds_store {
        Some(helper) if !helper.is_empty() => helper_credentials(helper, registry).map(Some),
        _ => Ok(None),
    }
}

/// An auth file's key as `HOST[:PORT]`: docker writes `https://host/v1/`.
fn normalized(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// Runs `docker-credential-HELPER get` (the credential helper protocol: the
/// server on stdin, `{"Username":…,"Secret":…}` on stdout).
fn helper_credentials(helper: &str, registry: &str) -> Result<RegistryAuth, RegistryError> {
    let failed = |detail: String| RegistryError::CredentialHelper {
        helper: crate::error::server_text(helper),
        detail,
    };
    if !helper
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(failed("its name is not a plain program name".to_owned()));
    }
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| failed(format!("cannot start it ({err})")))?;
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("piped");
        stdin
            .write_all(registry.as_bytes())
            .map_err(|err| failed(format!("cannot write to it ({err})")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|err| failed(format!("cannot read its answer ({err})")))?;
    if !output.status.success() {
        // A helper says "credentials not found in native keychain" on stdout.
        return if String::from_utf8_lossy(&output.stdout).contains("not found") {
            Ok(RegistryAuth::Anonymous)
        } else {
            Err(failed(format!(
                "{}: {}",
                output.status,
                crate::error::server_text(String::from_utf8_lossy(&output.stderr).trim())
            )))
        };
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&output.stdout)
        .map_err(|err| failed(format!("its answer is not the expected JSON ({err})")))?;
    // Docker's convention: the user `<token>` means the secret is a token.
    Ok(if answer.username == "<token>" {
        RegistryAuth::Bearer(answer.secret)
    } else {
        RegistryAuth::Basic(answer.username, answer.secret)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(auth: Option<RegistryAuth>) -> Option<(String, String)> {
        match auth {
            Some(RegistryAuth::Basic(user, password)) => Some((user, password)),
            _ => None,
        }
    }

    #[test]
    fn reads_podman_and_docker_entries() {
        // "silt:s3cret:x" -- a password may hold ':'.
        let file = r#"{"auths":{"https://127.0.0.1:5000/v1/":{"auth":"c2lsdDpzM2NyZXQ6eA=="},
                      "ghcr.io":{"auth":"dTpw"}}}"#;
        let path = Path::new("auth.json");
        assert_eq!(
            basic(from_auth_file(path, file, "127.0.0.1:5000").unwrap()),
            Some(("silt".into(), "s3cret:x".into()))
        );
        assert_eq!(
            basic(from_auth_file(path, file, "ghcr.io").unwrap()),
            Some(("u".into(), "p".into()))
        );
        assert!(from_auth_file(path, file, "quay.io").unwrap().is_none());
    }

    #[test]
    fn a_broken_file_is_named() {
        let err = from_auth_file(Path::new("/x/auth.json"), "{", "h").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/x/auth.json: not an auth file"),
            "{err}"
        );
        let err = from_auth_file(
            Path::new("/x/auth.json"),
            r#"{"auths":{"h":{"auth":"!!"}}}"#,
            "h",
        )
        .unwrap_err();
        assert!(err.to_string().contains("not base64"), "{err}");
    }
}
