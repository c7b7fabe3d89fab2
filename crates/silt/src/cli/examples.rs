//! The EXAMPLES of every command's `--help` (and manual page), one
//! constant per command. A unit test parses every `silt …` line here with
//! the real command line, so an example cannot drift from what silt takes.

/// `silt init`.
pub const INIT: &str = "Examples:
  # A project whose datastore is a directory under .silt/ (no server)
  silt init
  # A datastore in an S3 bucket, shared by every clone of the project
  silt init --backend s3 --bucket my-team-data --prefix models --region eu-west-1
  # An S3-compatible server (MinIO, SeaweedFS, ...)
  silt init --backend s3 --bucket data --endpoint http://127.0.0.1:9000";

/// `silt run`.
pub const RUN: &str = "Examples:
  # Train on a model's files and commit what the command wrote
  silt run --model vision/detector -- python train.py --out \"$SILT_MODEL_DIR\"
  # Two models at once: SILT_MODEL_DIRS lists both directories
  silt run --model vision/detector --model vision/labels -- make eval
  # A script's view of the run: its report as JSON on stdout
  silt --json run --model vision/detector -- ./check.sh";

/// `silt completions`.
pub const COMPLETIONS: &str = "Examples:
  silt completions bash > ~/.local/share/bash-completion/completions/silt
  silt completions zsh > ~/.zfunc/_silt";

/// `silt man`.
pub const MAN: &str = "Examples:
  silt man | man -l -
  silt man --out-dir ~/.local/share/man/man1";

/// `silt data put`.
pub const DATA_PUT: &str = "Examples:
  # Commit a file as the model's `weights.bin`
  silt data put vision/detector weights.bin ./weights.bin
  # From stdin
  echo '{\"lr\": 0.01}' | silt data put vision/detector params.json -
  # Only if nobody committed another version since the one you read
  silt data put vision/detector weights.bin ./weights.bin --base 1795970555172-88bdc46734d5cbbb";

/// `silt data get`.
pub const DATA_GET: &str = "Examples:
  silt data get vision/detector params.json
  silt data get vision/detector weights.bin -o ./weights.bin
  # An older version (`silt data history` lists them)
  silt data get vision/detector weights.bin --version 1795970555172-88bdc46734d5cbbb -o old.bin";

/// `silt data list`.
pub const DATA_LIST: &str = "Examples:
  silt data list vision/detector
  silt --json data list vision/detector";

/// `silt data history`.
pub const DATA_HISTORY: &str = "Examples:
  silt data history vision/detector weights.bin";

/// `silt data rm`.
pub const DATA_RM: &str = "Examples:
  silt data rm vision/detector old.bin
  # Only if its latest version is still the one you saw
  silt data rm vision/detector old.bin --base 1795970555172-88bdc46734d5cbbb";

/// `silt datastore setup`.
pub const DATASTORE_SETUP: &str = "Examples:
  silt datastore setup
  silt datastore setup --retain-versions 20";

/// `silt datastore status`.
pub const DATASTORE_STATUS: &str = "Examples:
  silt datastore status
  silt datastore status --model vision/detector";

/// `silt datastore sync`.
pub const DATASTORE_SYNC: &str = "Examples:
  # Pull what others committed, push what changed here
  silt datastore sync
  silt datastore sync --pull --model vision/detector
  # What a push would do, doing nothing
  silt datastore sync --push --dry-run";

/// `silt datastore gc`.
pub const DATASTORE_GC: &str = "Examples:
  # Delete uploads whose commit never came (older than an hour)
  silt datastore gc
  # What keeping 5 versions of each file would delete
  silt datastore gc --keep 5 --dry-run
  silt datastore gc --keep 5 --model vision/detector";

/// `silt datastore verify`.
pub const DATASTORE_VERIFY: &str = "Examples:
  silt datastore verify
  silt datastore verify --model vision/detector";

/// `silt datastore doctor`.
pub const DATASTORE_DOCTOR: &str = "Examples:
  # Does this store honour conditional writes? (before `setup`)
  silt datastore doctor
  silt --profile ci datastore doctor";

/// `silt datastore hydrate`.
pub const DATASTORE_HYDRATE: &str = "Examples:
  silt datastore hydrate --model vision/detector
  silt datastore hydrate --all
  # Fetch everything in the background; ask how far it got
  silt datastore hydrate --background
  silt datastore hydrate --status";

/// `silt datastore lock status`.
pub const LOCK_STATUS: &str = "Examples:
  silt datastore lock status
  silt datastore lock status --model vision/detector";

/// `silt datastore lock release`.
pub const LOCK_RELEASE: &str = "Examples:
  # A lease whose holder died (it expires by itself too)
  silt datastore lock release --model vision/detector --force";

/// `silt extension list`.
pub const EXTENSION_LIST: &str = "Examples:
  silt extension list";

/// `silt extension inspect`.
pub const EXTENSION_INSPECT: &str = "Examples:
  silt extension inspect partitioned-datastore
  silt extension inspect ./target/wasm32-wasip2/release/my_datastore.wasm";

/// `silt extension add`.
pub const EXTENSION_ADD: &str = "Examples:
  silt extension add ./partitioned-datastore.wasm
  silt extension add oci://registry.example.com/silt/partitioned-datastore:1.0.0";

/// `silt extension publish`.
pub const EXTENSION_PUBLISH: &str = "Examples:
  silt extension publish ./my-datastore.wasm oci://registry.example.com/team/my-datastore:0.1.0";

/// `silt extension install`.
pub const EXTENSION_INSTALL: &str = "Examples:
  # What silt.lock pins, on a fresh clone
  silt extension install";

/// `silt extension update`.
pub const EXTENSION_UPDATE: &str = "Examples:
  silt extension update
  silt extension update partitioned-datastore";

/// `silt extension remove`.
pub const EXTENSION_REMOVE: &str = "Examples:
  silt extension remove my-datastore";

/// `silt extension verify`.
pub const EXTENSION_VERIFY: &str = "Examples:
  silt extension verify partitioned-datastore";

/// `silt extension test`.
pub const EXTENSION_TEST: &str = "Examples:
  # The contract suite on a local directory store
  silt extension test ./target/wasm32-wasip2/release/my_datastore.wasm
  silt extension test ./my-datastore.wasm --store s3 --bucket scratch --endpoint http://127.0.0.1:9000";

/// `silt extension new`.
pub const EXTENSION_NEW: &str = "Examples:
  silt extension new my-datastore
  silt extension new my-datastore --lang ts";

/// `silt extension test-runner`.
pub const EXTENSION_TEST_RUNNER: &str = "Examples:
  # What `cargo test` runs (the project's .cargo/config.toml names it)
  silt extension test-runner target/wasm32-wasip2/debug/deps/my_datastore-0123abcd.wasm --nocapture";

/// `silt cache show`.
pub const CACHE_SHOW: &str = "Examples:
  silt cache show";

/// `silt cache prune`.
pub const CACHE_PRUNE: &str = "Examples:
  silt cache prune --max-size-mib 512
  silt cache prune --all";

/// `silt sandbox check`.
pub const SANDBOX_CHECK: &str = "Examples:
  silt sandbox check";

/// `silt sandbox image build`.
pub const SANDBOX_IMAGE_BUILD: &str = "Examples:
  silt sandbox image build --runtime podman";

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// Every visible command without subcommands, by its words after `silt`.
    fn leaves(
        command: &clap::Command,
        path: &mut Vec<String>,
        out: &mut Vec<(String, clap::Command)>,
    ) {
        let subcommands: Vec<_> = command
            .get_subcommands()
            .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
            .collect();
        if subcommands.is_empty() {
            out.push((path.join(" "), command.clone()));
        }
        for sub in subcommands {
            path.push(sub.get_name().to_owned());
            leaves(sub, path, out);
            path.pop();
        }
    }

    /// The words of a `silt …` example line, up to a pipe or a
    /// redirection, quotes removed.
    fn words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut quote = None;
        for ch in line.chars() {
            match (quote, ch) {
                (None, '|' | '>') => break,
                (None, '\'' | '"') => quote = Some(ch),
                (Some(open), _) if ch == open => quote = None,
                (None, ' ') => {
                    if !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                }
                _ => word.push(ch),
            }
        }
        if !word.is_empty() {
            words.push(word);
        }
        words
    }

    #[test]
    fn every_command_has_examples_and_each_parses() {
        crate::cli::deferred::build_eagerly();
        let mut root = crate::cli::Cli::command();
        root.build();
        let mut all = Vec::new();
        leaves(&root, &mut Vec::new(), &mut all);
        assert!(all.len() > 25, "{} commands", all.len());
        for (name, command) in all {
            let examples = command
                .get_after_help()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(
                examples.starts_with("Examples:\n"),
                "`silt {name}` has no examples"
            );
            let lines: Vec<&str> = examples
                .lines()
                .map(str::trim)
                .filter(|line| line.starts_with("silt ") || line.contains("| silt "))
                .collect();
            assert!(!lines.is_empty(), "`silt {name}`: no example runs silt");
            for line in lines {
                let line = line
                    .rsplit_once("| silt ")
                    .map_or(line.to_owned(), |(_, rest)| format!("silt {rest}"));
                let args = words(&line);
                let parsed = crate::cli::Cli::command().try_get_matches_from(&args);
                assert!(
                    parsed.is_ok(),
                    "`silt {name}`: `{line}` does not parse: {parsed:?}"
                );
                assert!(
                    line.contains(&format!(" {name}")),
                    "`silt {name}`: `{line}` is an example of another command"
                );
            }
        }
    }
}
