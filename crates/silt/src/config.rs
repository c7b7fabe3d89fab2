//! `silt.toml`: the project configuration, its defaults, and where it is found.
//!
//! The file is optional. silt looks for it in the current directory and its
//! parents (like cargo does with `Cargo.toml`); `SILT_CONFIG` names one
//! explicitly. Every field has a default, unknown fields are errors, and a
//! malformed file is reported with its path, line and column.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use silt_runtime::config::{CacheConfig, RuntimeConfig};

/// The name of the configuration file at a repository's root.
pub const CONFIG_FILE_NAME: &str = "silt.toml";

/// The whole of `silt.toml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where installed extensions live.
    pub extensions: ExtensionsConfig,
    /// Limits every extension call runs under.
    pub runtime: RuntimeConfig,
    /// The on-disk cache of compiled extensions.
    pub cache: CacheConfig,
    /// Where the shared datastore lives.
    pub datastore: DatastoreConfig,
    /// Leases on models and the namespace.
    pub locks: LocksConfig,
    /// Out-of-process execution and its OS sandbox.
    pub sandbox: crate::sandbox::SandboxConfig,
}

/// `[locks]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LocksConfig {
    /// Time to live of a lease after each renewal, in milliseconds; the host
    /// renews every third of it. Default 30000.
    pub ttl_ms: u32,
    /// How long a command waits for a held lease before giving up (exit code
    /// 75), in milliseconds. Default 60000. `SILT_LOCK_MAX_WAIT` (seconds)
    /// overrides it.
    pub max_wait_ms: u64,
}

impl Default for LocksConfig {
    fn default() -> Self {
        Self {
            ttl_ms: 30_000,
            max_wait_ms: 60_000,
        }
    }
}

/// Which backend holds the datastore: the store's own type.
pub use crate::store::root::Backend;

/// `[datastore]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DatastoreConfig {
    /// `dir` (default), `s3`, `gcs` or `azure`.
    pub backend: Backend,
    /// For `dir`: the directory. Default `.silt/store` beside `silt.toml`.
    pub dir: Option<PathBuf>,
    /// For `dir`: fsync writes before acknowledging them. Default true.
    pub durable: bool,
    /// For `s3`: bucket, prefix, region, endpoint, path_style, profile.
    pub s3: Option<crate::store::S3Config>,
    /// For `gcs`: bucket, prefix, endpoint, credentials.
    pub gcs: Option<crate::store::GcsConfig>,
    /// For `azure`: account, container, prefix, endpoint, credentials.
    pub azure: Option<crate::store::AzureConfig>,
    /// A namespace inside the datastore root (a key prefix), if any.
    pub namespace: Option<String>,
    /// Concurrent transfers of bulk downloads and uploads. Default 32.
    pub transfer_concurrency: usize,
    /// How long one S3 request may wait to connect, and then for the
    /// server's first answer, in milliseconds (a body that stops flowing
    /// is caught by the client's stall protection). Default 10000.
    pub request_timeout_ms: u64,
    /// How long one store operation may take with its retries, in
    /// milliseconds: a stalled or unreachable store is reported (exit 69)
    /// after this. Default 25000.
    pub operation_timeout_ms: u64,
    /// Use a store that failed `silt datastore doctor`'s conditional-write
    /// checks. Unsafe: concurrent writers can then lose updates. Default false.
    pub allow_unsafe_store: bool,
    /// The installed extension that implements the datastore. Default
    /// `partitioned-datastore`.
    pub extension: String,
    /// The local copy (working copy and index sidecars). Default
    /// `.silt/local` beside `silt.toml`.
    pub local_dir: Option<PathBuf>,
    /// Versions kept per file name, applied by `silt datastore setup`
    /// (the datastore records it for every writer). Default: the
    /// datastore's own (10 for a new one).
    pub retain_versions: Option<u32>,
    /// How much of the datastore this clone fetches: `full` (default) or
    /// `lazy`. Overridden per command by `--hydration`.
    pub hydration: Hydration,
    /// In a lazy clone, whether to fetch the rest in the background:
    /// `off` (default) or `after-command` (a detached, low-priority process
    /// started after each command that touched the datastore).
    pub background: Background,
    /// Concurrent transfers of the background hydrator. Default 4: it
    /// should leave the network and disk to foreground commands.
    pub background_concurrency: usize,
}

/// `[datastore] background`: fetching the rest of a lazy clone unasked.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Background {
    /// Only what commands use is fetched.
    #[default]
    Off,
    /// After a command, a detached low-priority process fetches the rest.
    AfterCommand,
}

/// `[datastore] hydration`: how much of the datastore a clone fetches.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Hydration {
    /// Setup and every pull fetch every model's latest files.
    #[default]
    Full,
    /// Setup and pulls fetch index metadata only; a command fetches the
    /// models it works on, `silt datastore hydrate` the rest.
    Lazy,
}

impl DatastoreConfig {
    /// The store's part of this section, for [`crate::store::root::open`];
    /// `store_dir` is where a `dir` backend lives (resolved by
    /// [`crate::locations::Locations`]).
    pub fn root<'a>(
        &'a self,
        store_dir: &'a std::path::Path,
    ) -> crate::store::root::RootConfig<'a> {
        crate::store::root::RootConfig {
            backend: self.backend,
            dir: store_dir,
            durable: self.durable,
            s3: self.s3.as_ref(),
            gcs: self.gcs.as_ref(),
            azure: self.azure.as_ref(),
            namespace: self.namespace.as_deref(),
            request_timeout: std::time::Duration::from_millis(self.request_timeout_ms),
            operation_timeout: std::time::Duration::from_millis(self.operation_timeout_ms),
        }
    }
}

impl Default for DatastoreConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Dir,
            dir: None,
            durable: true,
            s3: None,
            gcs: None,
            azure: None,
            namespace: None,
            transfer_concurrency: silt_runtime::capabilities::transfer::DEFAULT_CONCURRENCY,
            request_timeout_ms: 10_000,
            operation_timeout_ms: crate::store::DEFAULT_OPERATION_TIMEOUT.as_millis() as u64,
            allow_unsafe_store: false,
            extension: DEFAULT_DATASTORE_EXTENSION.to_owned(),
            local_dir: None,
            retain_versions: None,
            hydration: Hydration::Full,
            background: Background::Off,
            background_concurrency: DEFAULT_BACKGROUND_CONCURRENCY,
        }
    }
}

/// Concurrent transfers of the background hydrator unless `silt.toml` says.
pub const DEFAULT_BACKGROUND_CONCURRENCY: usize = 4;

/// The extension that implements the datastore unless `silt.toml` names another.
pub const DEFAULT_DATASTORE_EXTENSION: &str = "partitioned-datastore";

/// `[extensions]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExtensionsConfig {
    /// Directory of installed extensions. Default: `.silt/extensions` beside
    /// `silt.toml`, or the user data directory when there is no `silt.toml`.
    /// Overridden by `SILT_EXTENSIONS_DIR`.
    pub dir: Option<PathBuf>,
    /// `[extensions.require]`: the extensions this project needs, by name
    /// (see [`crate::supply_chain::requirement`]); `silt.lock` pins them.
    pub require: std::collections::BTreeMap<String, crate::supply_chain::Requirement>,
    /// `[extensions.config.<name>]`: the project's settings for extension
    /// `<name>`, handed to it through its `config` import (see
    /// [`ExtensionsConfig::settings`]). Nested tables are dotted keys.
    pub config: std::collections::BTreeMap<String, toml::Table>,
}

impl ExtensionsConfig {
    /// The settings of extension `name` as its `config` import answers
    /// them: every value as text, nested tables as dotted keys (`[x.journal]
    /// full-check-minutes = 5` is `journal.full-check-minutes` = `"5"`).
    ///
    /// # Errors
    /// An array or a date, a key that is no setting name or names a
    /// credential, too many or too long settings: what and where.
    pub fn settings(&self, name: &str) -> Result<crate::capabilities::Settings, String> {
        let mut flat = std::collections::BTreeMap::new();
        if let Some(table) = self.config.get(name) {
            flatten("", table, &mut flat)?;
        }
        crate::capabilities::Settings::new(flat)
            .map_err(|why| format!("[extensions.config.{name}] {why}"))
    }
}

/// `table`'s values as text under dotted keys starting with `prefix`.
fn flatten(
    prefix: &str,
    table: &toml::Table,
    into: &mut std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    for (key, value) in table {
        let key = format!("{prefix}{key}");
        let text = match value {
            toml::Value::String(text) => text.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(x) => x.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Table(inner) => {
                flatten(&format!("{key}."), inner, into)?;
                continue;
            }
            toml::Value::Array(_) | toml::Value::Datetime(_) => {
                return Err(format!(
                    "{key:?} is an {}; a setting is text, a number or true/false \
                     (write a list as one string the extension splits)",
                    value.type_str()
                ));
            }
        };
        // `"a.b" = 1` beside `[x.a] b = 2` flatten to the same key.
        if into.insert(key.clone(), text).is_some() {
            return Err(format!("{key:?} is set twice (a dotted key and a table)"));
        }
    }
    Ok(())
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("cannot read {}: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema.
    /// The message carries the line and column.
    #[error("invalid configuration in {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message, with line, column and a caret under the problem.
        message: String,
    },
    /// A value parsed but makes no sense.
    #[error("invalid configuration in {}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A command that works on a datastore was run outside any project:
    /// without this error it would lay a datastore down wherever it ran.
    #[error(
        "there is no silt.toml in {} or any directory above it: run `silt init` to make a project here \
         (a local-directory datastore under .silt/), or point SILT_CONFIG at a silt.toml",
        cwd.display()
    )]
    NoProject {
        /// Where the command ran.
        cwd: PathBuf,
    },
}

impl Config {
    /// Parses configuration text; `path` is used only in error messages.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] with line and column when the text is not valid
    /// TOML or has unknown or mistyped fields; [`ConfigError::Invalid`] when a
    /// value is out of range.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: path.to_owned(),
            message: err.to_string().trim_end().to_owned(),
        })?;
        config.check(path)?;
        Ok(config)
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: &str| ConfigError::Invalid {
            path: path.to_owned(),
            message: message.to_owned(),
        };
        for (name, requirement) in &self.extensions.require {
            if !crate::runtime::metadata::is_valid_name(name) {
                return Err(invalid(&format!(
                    "[extensions.require] {name:?} is not an extension name (lowercase letters, digits, '-')"
                )));
            }
            requirement
                .source()
                .map_err(|why| invalid(&format!("[extensions.require] {name}: {why}")))?;
        }
        for name in self.extensions.config.keys() {
            if !crate::runtime::metadata::is_valid_name(name) {
                return Err(invalid(&format!(
                    "[extensions.config] {name:?} is not an extension name (lowercase letters, digits, '-')"
                )));
            }
            self.extensions
                .settings(name)
                .map_err(|why| invalid(&why))?;
        }
        if self.runtime.deadline_ms == 0 {
            return Err(invalid("runtime.deadline_ms must be greater than 0"));
        }
        let extension = &self.datastore.extension;
        if extension.contains('/') || extension.ends_with(".wasm") {
            return Err(invalid(&format!(
                "datastore.extension = {extension:?} looks like a file; it names an installed extension: \
                 run `silt extension add {extension}` and set datastore.extension to the name it prints"
            )));
        }
        if self.datastore.backend == Backend::S3 && self.datastore.s3.is_none() {
            return Err(invalid(
                "datastore.backend = \"s3\" needs a [datastore.s3] table with at least `bucket`",
            ));
        }
        if self.datastore.backend == Backend::Azure && self.datastore.azure.is_none() {
            return Err(invalid(
                "datastore.backend = \"azure\" needs a [datastore.azure] table with at least `container`",
            ));
        }
        if self.datastore.backend == Backend::Gcs && self.datastore.gcs.is_none() {
            return Err(invalid(
                "datastore.backend = \"gcs\" needs a [datastore.gcs] table with at least `bucket`",
            ));
        }
        if self.datastore.request_timeout_ms == 0 || self.datastore.operation_timeout_ms == 0 {
            return Err(invalid(
                "datastore.request_timeout_ms and operation_timeout_ms must be greater than 0",
            ));
        }
        if !(1..=1024).contains(&self.datastore.transfer_concurrency) {
            return Err(invalid(
                "datastore.transfer_concurrency must be between 1 and 1024",
            ));
        }
        if !(1..=1024).contains(&self.datastore.background_concurrency) {
            return Err(invalid(
                "datastore.background_concurrency must be between 1 and 1024",
            ));
        }
        if let Some(namespace) = &self.datastore.namespace
            && crate::store::ObjectKey::new(namespace).is_err()
        {
            return Err(invalid(
                "datastore.namespace must be a relative key such as `team/project` (no `..`, no leading `/`)",
            ));
        }
        if let Some(namespace) = &self.datastore.namespace
            && crate::store::is_host_reserved(&format!("{namespace}/"))
        {
            return Err(invalid(
                "datastore.namespace must not start with `_silt`: that is where silt keeps its own records",
            ));
        }
        if self.locks.ttl_ms < 300 {
            return Err(invalid(
                "locks.ttl_ms must be at least 300 (milliseconds); the default is 30000",
            ));
        }
        if self.datastore.retain_versions == Some(0) {
            return Err(invalid("datastore.retain_versions must be at least 1"));
        }
        if !(8..=4096).contains(&self.sandbox.pids_limit) {
            return Err(invalid(
                "sandbox.pids_limit must be between 8 and 4096 (a worker needs a few threads)",
            ));
        }
        if self
            .sandbox
            .memory_limit_mib
            .is_some_and(|mib| !(16..=1 << 20).contains(&mib))
        {
            return Err(invalid(
                "sandbox.memory_limit_mib must be between 16 and 1048576 (MiB)",
            ));
        }
        if !(1..=65_536).contains(&self.runtime.memory_limit_mib) {
            return Err(invalid(
                "runtime.memory_limit_mib must be between 1 and 65536 (MiB)",
            ));
        }
        Ok(())
    }

    /// Reads and parses a configuration file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read, else as [`Config::parse`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_owned(),
            cause,
        })?;
        let mut config = Self::parse(&text, path)?;
        // Relative paths in the file are relative to the file, not to the
        // directory silt happens to run in.
        let base = path.parent().unwrap_or(Path::new("."));
        for dir in [
            &mut config.extensions.dir,
            &mut config.cache.dir,
            &mut config.datastore.dir,
            &mut config.datastore.local_dir,
        ] {
            if let Some(dir) = dir.as_mut().filter(|d| d.is_relative()) {
                *dir = base.join(&*dir);
            }
        }
        for requirement in config.extensions.require.values_mut() {
            if let Some(file) = requirement.path.as_mut().filter(|p| p.is_relative()) {
                *file = base.join(&*file);
            }
        }
        Ok(config)
    }
}

/// Finds `silt.toml` in `start` or the nearest parent that has one, never
/// inside a `.silt` directory: the working copy lives there and holds
/// whatever the datastore's writers (and its extension) put in it, a file
/// named `silt.toml` included — run from a model's directory, silt must
/// find the project's configuration, not a data file.
pub fn find_config_file(start: &Path) -> Option<PathBuf> {
    let inside_silt_data = |dir: &Path| {
        dir.components()
            .any(|component| component.as_os_str() == PROJECT_DATA_DIR)
    };
    start
        .ancestors()
        .filter(|dir| !inside_silt_data(dir))
        .map(|dir| dir.join(CONFIG_FILE_NAME))
        .find(|candidate| candidate.is_file())
}

/// The directory beside `silt.toml` that holds a project's data (the store,
/// the working copy, the extensions): never searched for configuration.
pub const PROJECT_DATA_DIR: &str = ".silt";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silt_toml_in_the_working_copy_is_never_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        let model = project.join(".silt/local/data/t/m");
        std::fs::create_dir_all(&model).unwrap();
        std::fs::write(project.join(CONFIG_FILE_NAME), "").unwrap();
        std::fs::write(
            model.join(CONFIG_FILE_NAME),
            "[datastore]\nlocal_dir = \"/\"\n",
        )
        .unwrap();
        std::fs::write(project.join(".silt").join(CONFIG_FILE_NAME), "").unwrap();
        assert_eq!(
            find_config_file(&model),
            Some(project.join(CONFIG_FILE_NAME))
        );
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = Config::parse("", Path::new("silt.toml")).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.runtime.deadline_ms, 30_000);
        assert_eq!(config.runtime.memory_limit_mib, 256);
        assert_eq!(config.cache.max_size_mib, 1024);
        // A stalled store is reported within 30 s (tests/stalls.rs runs
        // the same path with a smaller budget).
        assert_eq!(config.datastore.request_timeout_ms, 10_000);
        assert_eq!(config.datastore.operation_timeout_ms, 25_000);
    }

    #[test]
    fn malformed_file_names_line_and_column() {
        let text = "[runtime]\ndeadline_ms = 10\nmemory_limit_mib = \"lots\"\n";
        let err = Config::parse(text, Path::new("/repo/silt.toml")).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("/repo/silt.toml"), "{message}");
        assert!(message.contains("line 3, column 20"), "{message}");
    }

    #[test]
    fn sandbox_settings_parse_per_extension_and_are_checked() {
        use crate::sandbox::{Driver, Execution, Isolation};
        let text = "[sandbox]\nisolation = \"strict\"\ndriver = \"process\"\npool_size = 0\n\
                    [sandbox.extension.partitioned-datastore]\nexecution = \"out-of-process\"\n";
        let config = Config::parse(text, Path::new("silt.toml")).unwrap();
        let sandbox = &config.sandbox;
        assert_eq!(sandbox.isolation, Isolation::Strict);
        assert_eq!(sandbox.driver(), Driver::Process);
        assert_eq!(
            sandbox.execution_of("partitioned-datastore"),
            Execution::OutOfProcess
        );
        assert_eq!(
            sandbox.execution_of("monolith-datastore"),
            Execution::InProcess
        );
        assert_eq!(sandbox.worker_memory_bytes(256), (256 + 256) << 20);

        let mut forced = sandbox.clone();
        forced.force_execution(Execution::InProcess);
        assert_eq!(
            forced.execution_of("partitioned-datastore"),
            Execution::InProcess
        );

        let err =
            Config::parse("[sandbox]\ndriver = \"jail\"\n", Path::new("silt.toml")).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = Config::parse("[sandbox]\npids_limit = 1\n", Path::new("silt.toml")).unwrap_err();
        assert!(err.to_string().contains("pids_limit"), "{err}");
    }

    #[test]
    fn unknown_field_is_an_error() {
        let err = Config::parse("[runtime]\ndeadline = 5\n", Path::new("silt.toml")).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("unknown field `deadline`"), "{message}");
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn background_hydration_parses_and_is_checked() {
        let text = "[datastore]\nhydration = \"lazy\"\nbackground = \"after-command\"\n";
        let config = Config::parse(text, Path::new("silt.toml")).unwrap();
        assert_eq!(config.datastore.background, Background::AfterCommand);
        assert_eq!(config.datastore.background_concurrency, 4);
        let err = Config::parse(
            "[datastore]\nbackground = \"always\"\n",
            Path::new("silt.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("after-command"), "{err}");
        let err = Config::parse(
            "[datastore]\nbackground_concurrency = 0\n",
            Path::new("silt.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("background_concurrency"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let err =
            Config::parse("[runtime]\ndeadline_ms = 0\n", Path::new("silt.toml")).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
    }

    #[test]
    fn datastore_tables_parse_and_are_checked() {
        let text = "[datastore]\nbackend = \"s3\"\nnamespace = \"team/ml\"\n[datastore.s3]\nbucket = \"b\"\nendpoint = \"http://127.0.0.1:9000\"\n";
        let config = Config::parse(text, Path::new("silt.toml")).unwrap();
        assert_eq!(config.datastore.backend, Backend::S3);
        assert_eq!(config.datastore.s3.unwrap().bucket, "b");
        let missing =
            Config::parse("[datastore]\nbackend = \"s3\"\n", Path::new("silt.toml")).unwrap_err();
        assert!(missing.to_string().contains("[datastore.s3]"), "{missing}");
        let bad = Config::parse(
            "[datastore]\nnamespace = \"../x\"\n",
            Path::new("silt.toml"),
        )
        .unwrap_err();
        assert!(matches!(bad, ConfigError::Invalid { .. }), "{bad}");
        let reserved = Config::parse(
            "[datastore]\nnamespace = \"_SILT/x\"\n",
            Path::new("silt.toml"),
        )
        .unwrap_err();
        assert!(
            reserved.to_string().contains("its own records"),
            "{reserved}"
        );
        let typo =
            Config::parse("[datastore]\nbackend = \"gcp\"\n", Path::new("silt.toml")).unwrap_err();
        let gcs =
            Config::parse("[datastore]\nbackend = \"gcs\"\n", Path::new("silt.toml")).unwrap_err();
        assert!(gcs.to_string().contains("[datastore.gcs]"), "{gcs}");
        let azure = Config::parse("[datastore]\nbackend = \"azure\"\n", Path::new("silt.toml"))
            .unwrap_err();
        assert!(azure.to_string().contains("[datastore.azure]"), "{azure}");
        assert!(typo.to_string().contains("line 2"), "{typo}");
    }

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE_NAME);
        std::fs::write(&path, "[cache]\ndir = \"artifacts\"\n").unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.cache.dir, Some(dir.path().join("artifacts")));
        let nested = dir.path().join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        assert_eq!(find_config_file(&nested), Some(path));
    }
}
