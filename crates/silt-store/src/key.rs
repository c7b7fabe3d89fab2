//! Object keys an extension may name, validated once at the boundary.

use std::fmt::Display;

/// The longest key accepted, in bytes (S3's own limit).
pub const MAX_KEY_LEN: usize = 1024;

/// Longest segment (between `/`s) of a key, in bytes, counting `%` and `~`
/// as 3: the directory store writes each segment as a file name, escaped
/// and with a suffix of up to 30 bytes, and file names stop at 255 bytes.
/// Every backend accepts exactly the same keys.
pub const MAX_SEGMENT_LEN: usize = 200;

/// A segment's length as the directory store writes it.
fn stored_segment_len(segment: &str) -> usize {
    segment.len() + 2 * segment.bytes().filter(|b| matches!(b, b'%' | b'~')).count()
}

/// The first segment of the keys the host keeps its own records under, at
/// a datastore's root (which extension set it up, a store allowed despite
/// failing its checks, `doctor`'s scratch objects). No extension may read,
/// write or list them: see [`ObjectKey::is_host_reserved`].
pub const HOST_SEGMENT: &str = "_silt";

/// A key relative to a store's root that cannot escape it: no absolute
/// path, no `.`/`..`/empty segments, no NUL or control characters, at most
/// [`MAX_KEY_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey(String);

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid object key {key:?}: {reason}")]
pub struct InvalidKey {
    /// The key as given (possibly shortened).
    pub key: String,
    /// Why it was refused.
    pub reason: &'static str,
}

impl ObjectKey {
    /// Validates `key`.
    ///
    /// # Errors
    /// [`InvalidKey`] saying which rule the key breaks.
    pub fn new(key: &str) -> Result<Self, InvalidKey> {
        let refuse = |reason| {
            let shown: String = key.chars().take(80).collect();
            Err(InvalidKey { key: shown, reason })
        };
        if key.is_empty() {
            return refuse("empty key");
        }
        if key.len() > MAX_KEY_LEN {
            return refuse("longer than 1024 bytes");
        }
        if key.starts_with('/') || key.starts_with('\\') {
            return refuse("absolute keys are not allowed");
        }
        if key.chars().any(|c| c.is_control()) {
            return refuse("NUL and control characters are not allowed");
        }
        if key.contains('\\') {
            return refuse("backslashes are not allowed");
        }
        // A trailing slash would make a "directory" key; refuse it too.
        for segment in key.split('/') {
            match segment {
                "" => return refuse("empty path segments are not allowed"),
                "." | ".." => return refuse("`.` and `..` segments are not allowed"),
                _ if stored_segment_len(segment) > MAX_SEGMENT_LEN => {
                    return refuse(
                        "a path segment is longer than 200 bytes (`%` and `~` count as 3)",
                    );
                }
                _ => {}
            }
        }
        Ok(Self(key.to_owned()))
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for a key in the host's own key space ([`HOST_SEGMENT`]), its
    /// case ignored, Unicode's too (a case-insensitive file system takes
    /// `_SILT/`, and may take `_ſilt/` or `_sılt/`, for `_silt/`).
    pub fn is_host_reserved(&self) -> bool {
        is_host_reserved(&self.0)
    }
}

/// [`ObjectKey::is_host_reserved`] of a key or listing prefix as text: the
/// prefix `_silt` alone (or shorter) is not reserved, as it also matches
/// keys outside the host's space.
pub fn is_host_reserved(key: &str) -> bool {
    // Every key an extension names passes here: compared a character at a
    // time, allocating nothing.
    let same_letter = |given: char, host: char| {
        given.to_lowercase().eq(host.to_lowercase()) || given.to_uppercase().eq(host.to_uppercase())
    };
    key.split_once('/').is_some_and(|(first, _)| {
        first.chars().count() == HOST_SEGMENT.len()
            && first
                .chars()
                .zip(HOST_SEGMENT.chars())
                .all(|(a, b)| same_letter(a, b))
    })
}

impl Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_key_space_is_reserved_in_any_case() {
        for key in [
            "_silt/datastore.json",
            "_SILT/x",
            "_Silt/a/b",
            "_\u{17f}ilt/x",
            "_s\u{131}lt/x",
        ] {
            assert!(is_host_reserved(key), "{key}");
        }
        for key in [
            "_silt",
            "_silty/x",
            "a/_silt/x",
            "silt/x",
            "_sil/x",
            "_meta/x",
        ] {
            assert!(!is_host_reserved(key), "{key}");
        }
    }

    #[test]
    fn accepts_ordinary_keys() {
        let longest = "s".repeat(MAX_SEGMENT_LEN);
        for key in [
            "a",
            "data/vision/detector/m-1/weights/3",
            "_index/p.json",
            "a b/c",
            longest.as_str(),
        ] {
            assert_eq!(ObjectKey::new(key).unwrap().as_str(), key);
        }
    }

    #[test]
    fn refuses_escapes_and_junk() {
        let long = "a".repeat(MAX_KEY_LEN + 1);
        let long_segment = format!("d/{}", "s".repeat(MAX_SEGMENT_LEN + 1));
        let escaped_segment = format!("d/{}", "~".repeat(MAX_SEGMENT_LEN / 3 + 1));
        for key in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a/./b",
            "a//b",
            "a/",
            "a\0b",
            "a\nb",
            "a\\b",
            long.as_str(),
            long_segment.as_str(),
            escaped_segment.as_str(),
        ] {
            assert!(ObjectKey::new(key).is_err(), "{key:?} was accepted");
        }
    }
}
