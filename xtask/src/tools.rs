//! What every step of the automation uses: its error type, running a
//! command, and a Debian tool installed when missing.

use std::path::PathBuf;
use std::process::Command;

/// A boxed error with a message for the user.
pub type Result<T> = std::result::Result<T, String>;

/// Runs a command, failing with its description if it fails.
pub fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .map_err(|err| format!("cannot run {command:?}: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}

/// `binary` on PATH (or in /usr/sbin, /usr/bin), else Debian's `package`
/// installed without its recommendations (as root).
pub fn debian_tool(binary: &str, package: &str) -> Result<PathBuf> {
    let find = || {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
            .map(|dir| dir.join(binary))
            .find(|path| path.is_file())
    };
    if let Some(path) = find() {
        return Ok(path);
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    if !root {
        return Err(format!(
            "the tests need {binary}: install it (e.g. `apt-get install {package}`)"
        ));
    }
    eprintln!("xtask: installing {binary} (apt-get install {package})");
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    find().ok_or_else(|| format!("apt-get install {package} did not install {binary}"))
}
