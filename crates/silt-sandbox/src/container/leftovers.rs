//! Containers of hosts that died before removing them.
//!
//! A host removes its workers' containers when it drops them, and a host
//! killed with SIGKILL cannot: its runtime CLI gets `SIGTERM` (its
//! parent-death signal), forwards it to the worker, which exits, and then
//! removes the container itself (`runc run` without `--keep`, `run --rm`).
//! What a runtime killed too leaves (a stopped container, runc's bundle)
//! is removed here, by the next host that uses the same runtime: once per
//! process and runtime, before its first container.
//!
//! A container is a leftover when its name says which host made it
//! (`silt-<kind>-<host pid>-<sequence>`) and that host is gone. A pid
//! means something only on one machine, in one pid namespace, since one
//! boot: podman and docker containers carry the label `silt.host` with
//! those ([`host_label`]), and only containers with this process's label
//! are considered (a daemon shared by several machines or containers keeps
//! the others' workers). runc's state is this machine's own.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

use super::Flavor;

/// Removes the leftovers of dead hosts under `runtime` (and, for runc,
/// their bundles in `bundles`), the first time this process asks for
/// `runtime`. Failures are ignored: a leftover that cannot be removed now
/// is tried again by the next host.
pub fn remove_once(runtime: &Path, flavor: Flavor, bundles: Option<&Path>) {
    static SWEPT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
        if !swept
            .get_or_insert_with(HashSet::new)
            .insert(runtime.to_path_buf())
        {
            return;
        }
    }
    for id in list(runtime, flavor) {
        if let Some(name) = id.strip_prefix("silt-")
            && crate::host_is_gone(name)
        {
            let remove: &[&str] = match flavor {
                Flavor::Runc => &["delete", "--force"],
                Flavor::Docker | Flavor::Podman => &["rm", "--force"],
            };
            tracing::debug!("removing container {id}: its host is gone");
            let _ = quiet(runtime).args(remove).arg(&id).status();
        }
    }
    if let Some(bundles) = bundles {
        remove_bundles(bundles);
    }
}

/// The names of every container `runtime` knows of whose name starts
/// with `silt-`.
fn list(runtime: &Path, flavor: Flavor) -> Vec<String> {
    let mut command = quiet(runtime);
    match flavor {
        Flavor::Runc => command.args(["list", "--quiet"]),
        Flavor::Docker | Flavor::Podman => command
            .args(["ps", "--all", "--filter"])
            .arg(format!("label={}", host_label()))
            .args(["--format", "{{.Names}}"]),
    };
    let Ok(output) = command.stdout(Stdio::piped()).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|id| id.starts_with("silt-"))
        .map(str::to_owned)
        .collect()
}

/// `silt.host=<boot id>.<pid namespace>`: where this process's pids mean
/// something. Given to every podman and docker container it starts.
pub fn host_label() -> String {
    format!(
        "silt.host={}.{}",
        silt_process::boot_id(),
        silt_process::pid_namespace()
    )
}

/// The directories of dead hosts' containers: runc bundles (`config.json`
/// and a rootfs of mount points, written by silt), the mount points of a
/// root host's idmapped binds; `remove_dir_all` follows no link.
fn remove_bundles(bundles: &Path) {
    let Ok(entries) = std::fs::read_dir(bundles) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if let Some(name) = name.to_str().and_then(|name| name.strip_prefix("silt-"))
            && crate::host_is_gone(name)
        {
            // Detaches a killed docker host's binds first: never removes
            // through a mount.
            #[cfg(target_os = "linux")]
            super::idmapped_binds::remove_container_dir(&entry.path());
            #[cfg(not(target_os = "linux"))]
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn quiet(runtime: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(runtime);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_of_dead_hosts_go_and_the_living_stay() {
        let dir = tempfile::tempdir().unwrap();
        // No process has pid 0 in /proc; this process is alive.
        let dead = dir.path().join("silt-worker-0-3");
        let alive = dir
            .path()
            .join(format!("silt-worker-{}-4", std::process::id()));
        let foreign = dir.path().join("other-0-1");
        for bundle in [&dead, &alive, &foreign] {
            std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
        }
        remove_bundles(dir.path());
        assert!(!dead.exists());
        assert!(alive.exists());
        assert!(foreign.exists(), "only silt's bundles are touched");
    }
}
