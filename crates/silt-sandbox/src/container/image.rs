//! The worker image of the `podman` and `docker` runtimes, built on this
//! machine from nothing (no registry): `FROM scratch`, holding only the
//! shared libraries the `silt` binary loads (its dynamic loader, libc,
//! libm, libgcc_s, as `ldd` names them). The binary itself is bind-mounted
//! read-only at `/silt` by every run, so a rebuilt silt needs no new image;
//! a new C library on this machine does.
//!
//! The recipe, for a runtime silt does not drive (`docker build` reads the
//! same two files):
//!
//! ```text
//! ctx/<each library, at its absolute path>      # from `ldd silt`
//! Containerfile:  FROM scratch
//!                 COPY . /
//! podman build --file Containerfile --tag localhost/silt-worker:latest ctx
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Flavor;

/// The image `[sandbox.container] image` names by default.
pub const DEFAULT_IMAGE: &str = "localhost/silt-worker:latest";

/// What [`build`] made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    /// The tag given.
    pub image: String,
    /// The runtime's id of the image.
    pub id: String,
    /// The files in the image (absolute paths inside it).
    pub files: Vec<PathBuf>,
}

/// Builds the worker image for `binary` with `runtime` (podman or docker)
/// and tags it `image`.
///
/// # Errors
/// When `ldd` cannot list the binary's libraries, a library cannot be
/// copied, or the runtime's build fails (its message is returned).
pub fn build(runtime: &Path, binary: &Path, image: &str) -> Result<Built, String> {
    let files = libraries(binary)?;
    let workdir = std::env::temp_dir().join(format!(
        "silt-image-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.as_nanos())
            .unwrap_or_default()
    ));
    let previous = image_id(runtime, image);
    // Created here, never found: nobody else's directory is built from
    // (or removed).
    std::fs::create_dir(&workdir)
        .map_err(|err| format!("cannot create {}: {err}", workdir.display()))?;
    let result = build_in(&workdir, runtime, &files, image);
    let _ = std::fs::remove_dir_all(&workdir);
    let id = result?;
    // The image the tag named before, now nameless: removed unless a
    // container still uses it (then the runtime refuses, and it stays).
    if let Some(previous) = previous
        && !id.starts_with(&previous)
        && !previous.starts_with(&id)
    {
        let _ = Command::new(runtime)
            .args(["rmi", &previous])
            .stdin(Stdio::null())
            .output();
    }
    Ok(Built {
        image: image.to_owned(),
        id,
        files,
    })
}

/// The id of the image `image` names, if any.
fn image_id(runtime: &Path, image: &str) -> Option<String> {
    let output = Command::new(runtime)
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let id = id.strip_prefix("sha256:").unwrap_or(&id).to_owned();
    (output.status.success() && !id.is_empty()).then_some(id)
}

fn build_in(
    workdir: &Path,
    runtime: &Path,
    files: &[PathBuf],
    image: &str,
) -> Result<String, String> {
    let context = workdir.join("context");
    let io = |what: &str, path: &Path, err: std::io::Error| {
        format!("cannot {what} {}: {err}", path.display())
    };
    std::fs::create_dir(&context).map_err(|err| io("create", &context, err))?;
    for file in files {
        let inside = context.join(file.strip_prefix("/").unwrap_or(file));
        if let Some(parent) = inside.parent() {
            std::fs::create_dir_all(parent).map_err(|err| io("create", parent, err))?;
        }
        // Copies what a link points to: the image holds no links.
        std::fs::copy(file, &inside).map_err(|err| io("copy", file, err))?;
    }
    let containerfile = workdir.join("Containerfile");
    std::fs::write(&containerfile, "FROM scratch\nCOPY . /\n")
        .map_err(|err| io("write", &containerfile, err))?;
    let mut command = Command::new(runtime);
    if runtime.to_string_lossy().contains("podman") {
        // No intermediate image beside the one asked for.
        command.arg("build").arg("--layers=false");
    } else {
        command.arg("build");
    }
    let output = command
        .arg("--quiet")
        .arg("--file")
        .arg(&containerfile)
        .arg("--tag")
        .arg(image)
        // On the image, not as a layer of its own: one step, one image.
        .arg("--label")
        .arg("org.opencontainers.image.title=silt worker")
        .arg(&context)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run {}: {err}", runtime.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} build failed: {}",
            runtime.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let id = String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    // docker prints `sha256:HEX`, podman `HEX`: the same form for both.
    Ok(id.strip_prefix("sha256:").unwrap_or(&id).to_owned())
}

/// Refuses an image this machine does not have, with the command that
/// builds it (a run would try a registry instead). Asked once per process.
pub(super) fn ensure_present(runtime: &Path, flavor: Flavor, image: &str) -> Result<(), String> {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static PRESENT: Mutex<Option<HashSet<(PathBuf, String)>>> = Mutex::new(None);
    let key = (runtime.to_path_buf(), image.to_owned());
    if PRESENT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .contains(&key)
    {
        return Ok(());
    }
    let args: &[&str] = match flavor {
        Flavor::Podman => &["image", "exists"],
        Flavor::Docker | Flavor::Runc => &["image", "inspect"],
    };
    let present = std::process::Command::new(runtime)
        .args(args)
        .arg(image)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !present {
        let name = runtime
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Err(format!(
            "container driver: {name} has no image `{image}` on this machine; build it with `silt sandbox image build --runtime {name} --image {image}`"
        ));
    }
    PRESENT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(key);
    Ok(())
}

/// The shared libraries `binary` loads, with its dynamic loader, as `ldd`
/// resolves them on this machine; none for a static binary.
fn libraries(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let output = Command::new("ldd")
        .arg(binary)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run ldd (it lists the libraries of silt): {err}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // glibc's ldd says so on stderr, others on stdout.
        let said = format!("{text}{}", String::from_utf8_lossy(&output.stderr));
        if said.contains("not a dynamic executable") {
            return Ok(Vec::new());
        }
        return Err(format!(
            "ldd {} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    parse_ldd(&text)
}

/// `ldd`'s lines: `name => /path (address)`, `/loader (address)`, and the
/// vDSO (`linux-vdso.so.1 (address)`, no file).
fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((name, target)) => {
                let target = target.trim();
                if target.starts_with("not found") {
                    return Err(format!("ldd: library {} not found", name.trim()));
                }
                target.split_whitespace().next().unwrap_or_default()
            }
            None => line.split_whitespace().next().unwrap_or_default(),
        };
        if path.starts_with('/') {
            files.push(PathBuf::from(path));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_lines_give_the_libraries_and_the_loader_not_the_vdso() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f22)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f21)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f23)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        let missing = parse_ldd("\tlibfoo.so.1 => not found\n").unwrap_err();
        assert!(missing.contains("libfoo.so.1"), "{missing}");
    }
}
