//! Memory and pids limits of a worker through cgroups, v1 or v2.
//!
//! Machines differ: some mount the memory and pids controllers on cgroup v1
//! hierarchies (a "hybrid" machine whose v2 tree holds almost nothing),
//! others have one v2 tree. [`Hierarchies::detect`] reads
//! `/proc/self/mountinfo` to find where each controller lives; a [`Group`]
//! is one worker's cgroup in each, created by the host before the worker
//! starts (the sandbox init joins it) and removed when it is dropped.

use std::path::{Path, PathBuf};

/// A cgroup version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    /// Legacy per-controller hierarchies.
    V1,
    /// The unified hierarchy.
    V2,
}

/// Where the memory and pids controllers are mounted.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Hierarchies {
    /// The memory controller's hierarchy.
    pub memory: Option<(PathBuf, Version)>,
    /// The pids controller's hierarchy.
    pub pids: Option<(PathBuf, Version)>,
}

impl Hierarchies {
    /// Reads this process's mount table.
    pub fn detect() -> Self {
        let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return Self::default();
        };
        Self::parse(&mountinfo)
    }

    fn parse(mountinfo: &str) -> Self {
        let mut found = Self::default();
        for line in mountinfo.lines() {
            // `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS`
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mount_point) = left.split(' ').nth(4) else {
                continue;
            };
            let mut right = right.split(' ');
            let fstype = right.next().unwrap_or("");
            let super_options = right.nth(1).unwrap_or("");
            let mount_point = PathBuf::from(unescape(mount_point));
            match fstype {
                "cgroup" => {
                    for option in super_options.split(',') {
                        match option {
                            "memory" if found.memory.is_none() => {
                                found.memory = Some((mount_point.clone(), Version::V1));
                            }
                            "pids" if found.pids.is_none() => {
                                found.pids = Some((mount_point.clone(), Version::V1));
                            }
                            _ => {}
                        }
                    }
                }
                "cgroup2" => {
                    let controllers =
                        std::fs::read_to_string(mount_point.join("cgroup.controllers"))
                            .unwrap_or_default();
                    for controller in controllers.split_whitespace() {
                        match controller {
                            "memory" if found.memory.is_none() => {
                                found.memory = Some((mount_point.clone(), Version::V2));
                            }
                            "pids" if found.pids.is_none() => {
                                found.pids = Some((mount_point.clone(), Version::V2));
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        found
    }
}

/// Mount points in mountinfo escape space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&code, 8) {
                Ok(byte) => out.push(byte as char),
                Err(_) => {
                    out.push('\\');
                    out.push_str(&code);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One worker's cgroups. Removed on drop.
#[derive(Debug, Default)]
pub struct Group {
    /// The directories created, deepest first for removal.
    dirs: Vec<PathBuf>,
    /// `cgroup.procs` files the worker joins.
    procs: Vec<PathBuf>,
    /// The memory cgroup and its version, to read its OOM count.
    memory: Option<(PathBuf, Version)>,
    /// Which limits could not be set, and why.
    missing: Vec<String>,
}

impl Group {
    /// Creates `silt/<name>` under each controller's hierarchy with these
    /// limits. A controller that is absent or not writable is recorded in
    /// [`Group::missing`], not an error: the caller decides (step down or
    /// refuse).
    pub fn create(hierarchies: &Hierarchies, name: &str, memory_bytes: u64, pids: u64) -> Self {
        let mut group = Self::default();
        if let Some((root, version)) = &hierarchies.memory {
            match make(root, *version, name, &["memory"]) {
                Ok(dir) => {
                    let limit = match version {
                        Version::V1 => {
                            write(&dir, "memory.limit_in_bytes", &memory_bytes.to_string())
                        }
                        Version::V2 => {
                            write(&dir, "memory.max", &memory_bytes.to_string()).map(|()| {
                                // No swap: the limit is the limit. Absent without swap accounting.
                                let _ = write(&dir, "memory.swap.max", "0");
                            })
                        }
                    };
                    match limit {
                        Ok(()) => group.memory = Some((dir.clone(), *version)),
                        Err(err) => group.missing.push(format!("memory cgroup limit: {err}")),
                    }
                    group.procs.push(dir.join("cgroup.procs"));
                    group.dirs.push(dir);
                }
                Err(err) => group.missing.push(format!("memory cgroup: {err}")),
            }
        } else {
            group
                .missing
                .push("memory cgroup: no memory controller is mounted".to_owned());
        }
        if let Some((root, version)) = &hierarchies.pids {
            // On v2 both controllers share one group.
            let existing = group.dirs.iter().find(|dir| dir.starts_with(root)).cloned();
            let same_dir = existing.is_some();
            let dir = match existing {
                Some(dir) => Ok(dir),
                None => make(root, *version, name, &["pids"]),
            };
            match dir.and_then(|dir| write(&dir, "pids.max", &pids.to_string()).map(|()| dir)) {
                Ok(dir) => {
                    if !same_dir {
                        group.procs.push(dir.join("cgroup.procs"));
                        group.dirs.push(dir);
                    }
                }
                Err(err) => group.missing.push(format!("pids cgroup: {err}")),
            }
        } else {
            group
                .missing
                .push("pids cgroup: no pids controller is mounted".to_owned());
        }
        group
    }

    /// The `cgroup.procs` files a worker writes its pid into.
    pub fn procs(&self) -> &[PathBuf] {
        &self.procs
    }

    /// True when the memory limit is in force.
    pub fn limits_memory(&self) -> bool {
        self.memory.is_some()
    }

    /// Limits that could not be set, and why.
    pub fn missing(&self) -> &[String] {
        &self.missing
    }

    /// True when the kernel killed a process of this group for memory.
    pub fn oom_killed(&self) -> bool {
        let Some((dir, version)) = &self.memory else {
            return false;
        };
        let (file, key) = match version {
            Version::V1 => ("memory.oom_control", "oom_kill"),
            Version::V2 => ("memory.events", "oom_kill"),
        };
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        let counted = text.lines().any(|line| {
            line.strip_prefix(key)
                .and_then(|rest| rest.trim().parse::<u64>().ok())
                .is_some_and(|n| n > 0)
        });
        // Kernels before 4.13 have no v1 oom_kill counter: fall back to the failure count.
        counted
            || (*version == Version::V1
                && !text.contains("oom_kill ")
                && std::fs::read_to_string(dir.join("memory.failcnt"))
                    .ok()
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for dir in &self.dirs {
            // The worker's processes may take a moment to leave the group.
            for attempt in 0..50 {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => break,
                    Err(_) if attempt < 49 => {
                        std::thread::sleep(std::time::Duration::from_millis(2))
                    }
                    Err(err) => tracing::debug!("cannot remove cgroup {}: {err}", dir.display()),
                }
            }
        }
    }
}

fn write(dir: &Path, file: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(dir.join(file), value).map_err(|err| {
        std::io::Error::new(err.kind(), format!("{}: {err}", dir.join(file).display()))
    })
}

/// Creates `<root>/silt/<name>`, enabling `controllers` for the children of
/// `<root>/silt` on v2. Also removes leftovers of killed hosts (empty
/// `silt/*` groups).
fn make(
    root: &Path,
    version: Version,
    name: &str,
    controllers: &[&str],
) -> std::io::Result<PathBuf> {
    let parent = root.join("silt");
    match std::fs::create_dir(&parent) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => {
            return Err(std::io::Error::new(
                err.kind(),
                format!("cannot create {}: {err}", parent.display()),
            ));
        }
    }
    if version == Version::V2 {
        for controller in controllers {
            // Needed once; fails harmlessly when already enabled.
            let _ = std::fs::write(
                root.join("cgroup.subtree_control"),
                format!("+{controller}"),
            );
            let _ = std::fs::write(
                parent.join("cgroup.subtree_control"),
                format!("+{controller}"),
            );
        }
    }
    remove_leftovers(&parent);
    let dir = parent.join(name);
    std::fs::create_dir(&dir).map_err(|err| {
        std::io::Error::new(
            err.kind(),
            format!("cannot create {}: {err}", dir.display()),
        )
    })?;
    Ok(dir)
}

/// Groups of workers whose host was killed before it removed them: empty
/// ones can go (rmdir of a group with processes fails, which is right).
fn remove_leftovers(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if crate::host_is_gone(name) {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_mountinfo_finds_v1_controllers() {
        let mountinfo = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
40 30 0:36 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:20 - cgroup cgroup rw,pids
";
        let found = Hierarchies::parse(mountinfo);
        assert_eq!(
            found.memory,
            Some((PathBuf::from("/sys/fs/cgroup/memory"), Version::V1))
        );
        assert_eq!(
            found.pids,
            Some((PathBuf::from("/sys/fs/cgroup/pids"), Version::V1))
        );
    }

    #[test]
    fn escaped_mount_points_are_unescaped() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/plain"), "/plain");
    }
}
