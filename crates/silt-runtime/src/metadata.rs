//! Extension metadata: the `silt-extension` custom section.
//!
//! Every extension embeds a small TOML document in a custom section named
//! [`SECTION_NAME`], so the host can list, install and validate it without
//! compiling it:
//!
//! ```toml
//! api = "silt:datastore@0.7.4"
//! name = "hello-extension"
//! version = "0.1.0"
//! description = "The smallest complete silt extension"
//! capabilities = ["scoped-sync"]
//! layout = "hello/1"            # optional: the datastore layout it writes
//! ```
//!
//! A Rust guest writes it with a `#[link_section = "silt-extension"]` static
//! (see `examples/hello-extension`); the section ends up inside the
//! component's core module, where [`crate::inspect`] finds it.

use super::bindings::{Description, FEATURES, Features};
use serde::{Deserialize, Serialize};

/// Name of the custom section holding the metadata.
pub const SECTION_NAME: &str = "silt-extension";

/// The one API this host speaks.
pub const API_PACKAGE: &str = "silt:datastore";
/// The API version this host speaks.
pub const API_VERSION: &str = "0.7.4";

/// `silt:datastore@0.7.4`.
pub fn api_id() -> String {
    format!("{API_PACKAGE}@{API_VERSION}")
}

/// Earlier patches of this host's minor version. A patch only adds to what
/// the host provides (never an export, never a changed type), so an
/// extension built for one runs on this version's bindings unchanged:
/// wasmtime links its `@0.7.0` to `@0.7.3` imports and exports to this
/// version's `@0.7.4` (semver-compatible names); it does not call what the
/// later patches added (`object-store.download-landed` in 0.7.1,
/// `object-store.upload-hashed` in 0.7.2, `object-store.deliver` in 0.7.3),
/// and is never handed what they hand only to their own (a sending, 0.7.4).
///
/// The patch is checked by interface names only: a hand-made component
/// that says 0.7.0 yet declares `download-landed` in its `object-store`
/// import links too (wasmtime checks that what it imports exists). It gains
/// nothing a component of the later patch does not have.
pub const EARLIER_PATCHES: [&str; 4] = ["0.7.3", "0.7.2", "0.7.1", "0.7.0"];

/// The contract versions this host runs: its own and its earlier patches
/// (on this version's bindings), and the minor version before it
/// (`crate::since_v0_6`).
pub const SUPPORTED_API_VERSIONS: [&str; 6] = [
    API_VERSION,
    EARLIER_PATCHES[0],
    EARLIER_PATCHES[1],
    EARLIER_PATCHES[2],
    EARLIER_PATCHES[3],
    PREVIOUS_MINOR,
];

/// The minor version before this one, which `crate::since_v0_6` runs.
pub const PREVIOUS_MINOR: &str = "0.6.0";

/// True when `version` runs on this version's bindings: this version or an
/// earlier patch of it (which has the `config` import too).
pub fn is_current_minor(version: &str) -> bool {
    version == API_VERSION || EARLIER_PATCHES.contains(&version)
}

/// The contract version `api` names (`silt:datastore@0.6.0` → `0.6.0`);
/// `None` for another package.
pub fn api_version(api: &str) -> Option<&str> {
    api.strip_prefix(API_PACKAGE)?.strip_prefix('@')
}

/// The supported contracts in words: `silt:datastore@0.7.4 or …@0.7.3 or …@0.7.2 or …@0.7.1 or …@0.7.0 or …@0.6.0`.
pub fn supported_api_ids() -> String {
    SUPPORTED_API_VERSIONS
        .iter()
        .map(|version| format!("{API_PACKAGE}@{version}"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// What an extension says about itself, read without compiling it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// The API the extension was built against, e.g. `silt:datastore@0.7.4`.
    pub api: String,
    /// Short lowercase name; also the name it is installed under.
    pub name: String,
    /// The extension's own version.
    pub version: String,
    /// One line saying what it is.
    #[serde(default)]
    pub description: String,
    /// Feature names from [`known_capabilities`].
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The datastore layout it reads and writes (e.g. `silt-partitioned/2`),
    /// when it declares one: the host refuses it on a datastore set up with
    /// another layout (`datastore/identity.rs` in the `silt` crate). Change
    /// it whenever a build can no longer read what the previous one wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
}

/// Guest-supplied text in an error: escaped and short (a name is refused
/// whatever its length; 80 characters say enough).
fn shown(text: &str) -> String {
    super::guest_text_limited(text, 80)
}

/// Why a metadata section is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// Not UTF-8 TOML of the expected shape.
    #[error("the `{SECTION_NAME}` section is not valid: {0}")]
    Malformed(String),
    /// The name is not a lowercase identifier.
    #[error(
        "extension name `{0}` is not valid: use 1-64 lowercase letters, digits and `-`, starting with a letter"
    )]
    BadName(String),
    /// A layout name that is not short printable text.
    #[error("layout `{0}` is not valid: use 1-64 lowercase letters, digits and `-`, `.`, `/`, `_`")]
    BadLayout(String),
    /// A capability name is not one the API defines.
    #[error("unknown capability `{0}`; known: {known}", known = known_capabilities().join(", "))]
    UnknownCapability(String),
}

impl Metadata {
    /// Parses and checks the contents of a `silt-extension` section.
    ///
    /// The `api` field is not checked here: a wrong API version is reported
    /// by validation together with the component's exports.
    ///
    /// # Errors
    /// When the bytes are not UTF-8 TOML of the expected shape, the name is
    /// not a valid identifier, or a capability is unknown.
    pub fn parse(bytes: &[u8]) -> Result<Self, MetadataError> {
        let text =
            std::str::from_utf8(bytes).map_err(|err| MetadataError::Malformed(err.to_string()))?;
        let metadata: Metadata =
            toml::from_str(text).map_err(|err| MetadataError::Malformed(shown(err.message())))?;
        if !is_valid_name(&metadata.name) {
            return Err(MetadataError::BadName(shown(&metadata.name)));
        }
        if let Some(layout) = &metadata.layout
            && !(!layout.is_empty()
                && layout.len() <= 64
                && layout
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-./_".contains(&b)))
        {
            return Err(MetadataError::BadLayout(shown(layout)));
        }
        if let Some(unknown) = metadata
            .capabilities
            .iter()
            .find(|cap| !known_capabilities().contains(&cap.as_str()))
        {
            return Err(MetadataError::UnknownCapability(shown(unknown)));
        }
        Ok(metadata)
    }
}

/// Extension names double as directory names: keep them boring.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 64
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
}

/// The feature names an extension may declare, as in the WIT `features` flags.
pub fn known_capabilities() -> Vec<&'static str> {
    FEATURES.iter().map(|(_, name)| *name).collect()
}

/// The WIT `features` flags as the names metadata uses.
pub fn feature_names(features: Features) -> Vec<&'static str> {
    FEATURES
        .into_iter()
        .filter(|(flag, _)| features.contains(*flag))
        .map(|(_, name)| name)
        .collect()
}

/// Where an extension's `describe()` answer disagrees with its metadata
/// section (name, version, capabilities), in words; empty when it agrees.
/// The host relies on the metadata (it is read without running anything).
pub fn description_differences(metadata: &Metadata, description: &Description) -> Vec<String> {
    let mut differences = Vec::new();
    if metadata.name != description.name {
        differences.push(format!(
            "name `{}` vs `{}`",
            metadata.name,
            super::guest_text_limited(&description.name, 80)
        ));
    }
    if metadata.version != description.version {
        differences.push(format!(
            "version `{}` vs `{}`",
            super::guest_text_limited(&metadata.version, 80),
            super::guest_text_limited(&description.version, 80)
        ));
    }
    let mut declared: Vec<&str> = metadata.capabilities.iter().map(String::as_str).collect();
    declared.sort_unstable();
    let mut actual = feature_names(description.features);
    actual.sort_unstable();
    if declared != actual {
        differences.push(format!(
            "capabilities [{}] vs [{}]",
            declared.join(", "),
            actual.join(", ")
        ));
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_section() {
        let text = br#"
            api = "silt:datastore@0.7.1"
            name = "hello-extension"
            version = "0.1.0"
            description = "hi"
            capabilities = ["scoped-sync", "gc"]
        "#;
        let metadata = Metadata::parse(text).unwrap();
        assert_eq!(metadata.name, "hello-extension");
        assert_eq!(metadata.capabilities, ["scoped-sync", "gc"]);
        assert_eq!(metadata.layout, None);
        let with_layout = Metadata::parse(
            b"api = \"x\"\nname = \"ok\"\nversion = \"1\"\nlayout = \"ok-store/2\"\n",
        )
        .unwrap();
        assert_eq!(with_layout.layout.as_deref(), Some("ok-store/2"));
        for bad in ["", "Upper/1", "a b", "x!"] {
            let text = format!("api = \"x\"\nname = \"ok\"\nversion = \"1\"\nlayout = {bad:?}\n");
            assert!(
                matches!(
                    Metadata::parse(text.as_bytes()),
                    Err(MetadataError::BadLayout(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_bad_names_and_capabilities() {
        let bad_name = br#"api = "x"
name = "../evil"
version = "1""#;
        assert!(matches!(
            Metadata::parse(bad_name),
            Err(MetadataError::BadName(_))
        ));
        let bad_cap = br#"api = "x"
name = "ok"
version = "1"
capabilities = ["telepathy"]"#;
        assert!(matches!(
            Metadata::parse(bad_cap),
            Err(MetadataError::UnknownCapability(_))
        ));
        assert!(matches!(
            Metadata::parse(b"\xff"),
            Err(MetadataError::Malformed(_))
        ));
    }

    #[test]
    fn names() {
        assert!(is_valid_name("partitioned-datastore"));
        assert!(!is_valid_name("Upper"));
        assert!(!is_valid_name("9lives"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"a".repeat(65)));
    }

    #[test]
    fn differences_between_describe_and_metadata_are_named() {
        let metadata = Metadata::parse(
            br#"api = "silt:datastore@0.7.1"
name = "ok"
version = "1.0.0"
description = ""
capabilities = ["scoped-sync"]
"#,
        )
        .unwrap();
        let same = Description {
            name: "ok".into(),
            version: "1.0.0".into(),
            features: Features::SCOPED_SYNC,
        };
        assert!(description_differences(&metadata, &same).is_empty());
        let other = Description {
            name: "ok\u{1b}[2J".into(),
            version: "2.0.0".into(),
            features: Features::SCOPED_SYNC | Features::GC,
        };
        let differences = description_differences(&metadata, &other).join("; ");
        assert_eq!(
            differences,
            "name `ok` vs `ok\\u{1b}[2J`; version `1.0.0` vs `2.0.0`; capabilities [scoped-sync] vs [gc, scoped-sync]"
        );
    }
}
