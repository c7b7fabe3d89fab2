//! Where silt keeps things: the configuration, installed extensions and the
//! artifact cache, resolved once from `silt.toml`, the environment and the
//! user's directories.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, find_config_file};

/// Environment variable naming the configuration file explicitly.
pub const ENV_CONFIG: &str = "SILT_CONFIG";
/// Environment variable overriding the installed-extensions directory.
pub const ENV_EXTENSIONS_DIR: &str = "SILT_EXTENSIONS_DIR";
/// Environment variable overriding the artifact cache directory.
pub const ENV_CACHE_DIR: &str = "SILT_CACHE_DIR";
/// Environment variable running every extension `in-process` or
/// `out-of-process`, whatever `silt.toml` says.
pub const ENV_EXECUTION: &str = "SILT_EXECUTION";

/// Environment variable running every out-of-process worker in a container
/// of this runtime (`podman`, `docker`, `runc`, or a path), whatever
/// `silt.toml` says: `[sandbox] driver = "container"` and
/// `[sandbox.container] runtime`.
pub const ENV_SANDBOX_RUNTIME: &str = "SILT_SANDBOX_RUNTIME";

/// The configuration in force and the directories derived from it.
#[derive(Debug, Clone)]
pub struct Locations {
    /// The configuration file in force, if any.
    pub config_file: Option<PathBuf>,
    /// The parsed configuration (defaults when there is no file).
    pub config: Config,
    /// Installed extensions.
    pub extensions_dir: PathBuf,
    /// The user's own extensions (`silt extension add` outside a project),
    /// where a project finds one it lacks: `None` when that is
    /// `extensions_dir` itself.
    pub user_extensions_dir: Option<PathBuf>,
    /// Compiled artifacts.
    pub cache_dir: PathBuf,
    /// The local-directory datastore, when the backend is `dir`.
    pub store_dir: PathBuf,
    /// The local copy of the datastore: working copy and index sidecars.
    pub local_dir: PathBuf,
}

impl Locations {
    /// Resolves locations for a process started in `cwd`.
    ///
    /// Precedence: environment variable, then `silt.toml`, then defaults.
    ///
    /// # Errors
    /// When the configuration file exists but cannot be read or parsed.
    pub fn discover(cwd: &Path) -> Result<Self, ConfigError> {
        let config_file = match std::env::var_os(ENV_CONFIG) {
            Some(path) => Some(cwd.join(path)),
            None => find_config_file(cwd),
        };
        let mut config = match &config_file {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(value) = std::env::var_os(ENV_EXECUTION) {
            let execution = match value.to_str() {
                Some("in-process") => crate::sandbox::Execution::InProcess,
                Some("out-of-process") => crate::sandbox::Execution::OutOfProcess,
                _ => {
                    return Err(ConfigError::Invalid {
                        path: PathBuf::from(ENV_EXECUTION),
                        message: format!(
                            "{ENV_EXECUTION}={} is neither `in-process` nor `out-of-process`",
                            value.to_string_lossy()
                        ),
                    });
                }
            };
            config.sandbox.force_execution(execution);
        }
        if let Some(runtime) = std::env::var_os(ENV_SANDBOX_RUNTIME) {
            config.sandbox.driver = Some(crate::sandbox::Driver::Container);
            config.sandbox.container.runtime = runtime.to_string_lossy().into_owned();
        }
        let project_dir = config_file
            .as_deref()
            .and_then(Path::parent)
            .map(|root| root.join(crate::config::PROJECT_DATA_DIR));
        let project_or_cwd = project_dir
            .clone()
            .unwrap_or_else(|| cwd.join(crate::config::PROJECT_DATA_DIR));
        let store_dir = config
            .datastore
            .dir
            .clone()
            .unwrap_or_else(|| project_or_cwd.join("store"));
        let local_dir = config
            .datastore
            .local_dir
            .clone()
            .unwrap_or_else(|| project_or_cwd.join("local"));

        let user_extensions_dir = user_data_dir().join("extensions");
        let extensions_dir = env_dir(ENV_EXTENSIONS_DIR, cwd)
            .or_else(|| config.extensions.dir.clone())
            .or_else(|| project_dir.map(|dir| dir.join("extensions")))
            .unwrap_or_else(|| user_extensions_dir.clone());
        let user_extensions_dir = (user_extensions_dir != extensions_dir
            && std::env::var_os(ENV_EXTENSIONS_DIR).is_none())
        .then_some(user_extensions_dir);
        let cache_dir = env_dir(ENV_CACHE_DIR, cwd)
            .or_else(|| config.cache.dir.clone())
            .unwrap_or_else(user_cache_dir);
        Ok(Self {
            config_file,
            config,
            extensions_dir,
            user_extensions_dir,
            cache_dir,
            store_dir,
            local_dir,
        })
    }
}

fn env_dir(name: &str, cwd: &Path) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|value| !value.is_empty())
        .map(|value| cwd.join(value))
}

fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// `$XDG_CACHE_HOME/silt`, else `~/.cache/silt`.
fn user_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home_dir().join(".cache"))
        .join("silt")
}

/// `$XDG_DATA_HOME/silt`, else `~/.local/share/silt`.
fn user_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home_dir().join(".local/share"))
        .join("silt")
}
