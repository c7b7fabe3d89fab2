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
pub(crate) fn unescape(field: &str) -> String {
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
            // On one v2 tree both controllers share the group: enable both
            // for it at once (the pids branch below makes no group then).
            let mut controllers = vec!["memory"];
            if *version == Version::V2
                && hierarchies.pids.as_ref() == Some(&(root.clone(), Version::V2))
            {
                controllers.push("pids");
            }
            match make(root, *version, name, &controllers) {
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
            // A child has a controller's files only when every ancestor
            // enables it for its children. Each controller is one write
            // (one unavailable must not stop the other); enabling one
            // already enabled succeeds.
            for dir in [root, parent.as_path()] {
                let _ = enable(dir, controller);
            }
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

/// Enables `controller` for the children of the v2 group `dir`.
fn enable(dir: &Path, controller: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    // Appending is a plain write to cgroupfs (it has no file offsets).
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join("cgroup.subtree_control"))?
        .write_all(format!("+{controller}\n").as_bytes())
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
    fn a_v2_mountinfo_finds_both_controllers_in_the_unified_tree() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(
            root.path().join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        )
        .unwrap();
        let mountinfo = format!(
            "25 30 0:23 / {} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
            root.path().display()
        );
        let found = Hierarchies::parse(&mountinfo);
        let expected = Some((root.path().to_path_buf(), Version::V2));
        assert_eq!(found.memory, expected);
        assert_eq!(found.pids, expected);
    }

    /// A v2 tree stood in for by a plain directory: cgroupfs would have
    /// made the interface files; here the writes are read back.
    fn v2_group(memory_bytes: u64, pids: u64) -> (tempfile::TempDir, Group) {
        let root = tempfile::tempdir().unwrap();
        let tree = Some((root.path().to_path_buf(), Version::V2));
        let hierarchies = Hierarchies {
            memory: tree.clone(),
            pids: tree,
        };
        let group = Group::create(&hierarchies, "probe-4242-0", memory_bytes, pids);
        (root, group)
    }

    #[test]
    fn a_v2_group_is_one_directory_with_both_limits_and_both_controllers_enabled() {
        let (root, group) = v2_group(64 << 20, 32);
        assert!(group.missing().is_empty(), "{:?}", group.missing());
        let dir = root.path().join("silt/probe-4242-0");
        assert_eq!(
            group.procs(),
            [dir.join("cgroup.procs")],
            "one group for both"
        );
        let read = |file: &Path| std::fs::read_to_string(file).unwrap();
        assert_eq!(read(&dir.join("memory.max")), (64u64 << 20).to_string());
        assert_eq!(
            read(&dir.join("memory.swap.max")),
            "0",
            "no swap past the limit"
        );
        assert_eq!(read(&dir.join("pids.max")), "32");
        // Every ancestor of the group enables both for its children:
        // without `+pids` in silt/, the group would have no pids.max.
        for parent in [root.path().to_path_buf(), root.path().join("silt")] {
            let enabled = read(&parent.join("cgroup.subtree_control"));
            let enabled: Vec<&str> = enabled.split_whitespace().collect();
            assert_eq!(enabled, ["+memory", "+pids"], "{}", parent.display());
        }
        assert!(group.limits_memory());
        // cgroupfs removes a group with its interface files; a plain
        // directory needs them gone first.
        for file in std::fs::read_dir(&dir).unwrap() {
            std::fs::remove_file(file.unwrap().path()).unwrap();
        }
        drop(group);
        assert!(!dir.exists(), "the group goes with its worker");
    }

    #[test]
    fn a_v2_group_reads_its_oom_kills_from_memory_events() {
        let (root, group) = v2_group(1 << 20, 8);
        let events = root.path().join("silt/probe-4242-0/memory.events");
        std::fs::write(&events, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n").unwrap();
        assert!(!group.oom_killed(), "an OOM without a kill is not one");
        std::fs::write(&events, "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n").unwrap();
        assert!(group.oom_killed());
        // Drop cannot remove a directory with files in it (cgroupfs's can be).
        std::fs::remove_dir_all(root.path().join("silt")).unwrap();
    }

    #[test]
    fn escaped_mount_points_are_unescaped() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/plain"), "/plain");
    }
}
