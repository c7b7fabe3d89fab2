//! What identifies this process among those that share files with it:
//! where its pids mean something (the machine's boot and the pid
//! namespace) and a random nonce. Temporary names carry them, and so do
//! the labels of the containers silt starts.

use std::sync::OnceLock;

/// The machine's boot id (`/proc/sys/kernel/random/boot_id`), trimmed;
/// empty where it cannot be read. Read once.
pub fn boot_id() -> &'static str {
    static BOOT: OnceLock<String> = OnceLock::new();
    BOOT.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|id| id.trim().to_owned())
            .unwrap_or_default()
    })
}

/// This process's pid namespace, as digits (`pid:[4026531836]` ->
/// `4026531836`, the same number on every machine's first namespace);
/// empty where it cannot be read. Read once: a process never changes pid
/// namespace.
pub fn pid_namespace() -> &'static str {
    static NAMESPACE: OnceLock<String> = OnceLock::new();
    NAMESPACE.get_or_init(|| {
        let namespace = std::fs::read_link("/proc/self/ns/pid")
            .map(|link| link.to_string_lossy().into_owned())
            .unwrap_or_default();
        namespace.chars().filter(char::is_ascii_digit).collect()
    })
}

/// A random number drawn once per process: std's hasher keys come from
/// the operating system's random source; the clock is mixed in as well.
pub fn nonce() -> u64 {
    static NONCE: OnceLock<u64> = OnceLock::new();
    *NONCE.get_or_init(|| {
        use std::hash::BuildHasher as _;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        std::hash::RandomState::new().hash_one((now, std::process::id()))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn the_machine_and_namespace_are_read_and_the_nonce_kept() {
        assert_eq!(super::boot_id().len(), 36, "{}", super::boot_id());
        assert!(!super::pid_namespace().is_empty());
        assert!(super::pid_namespace().bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(super::nonce(), super::nonce());
    }
}
