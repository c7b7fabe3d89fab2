//! The command line every bench binary takes: `[--quick] [--only=PART]
//! [OUT.json]` (`cargo bench` adds `--bench`, which is ignored).

/// A bench binary's arguments.
pub struct BenchArgs {
    /// Small sizes: check that everything completes, assert nothing about speed.
    pub quick: bool,
    /// Where to write the JSON results, if anywhere.
    pub out: Option<String>,
    /// Run only this part of the benchmark (`--only=PART`; each binary
    /// names its parts), to measure one change without the whole run.
    pub only: Option<String>,
}

impl BenchArgs {
    /// This process's arguments, for a binary without parts.
    pub fn from_env() -> Self {
        Self::with_parts(&[])
    }

    /// This process's arguments; `--only=` must name one of `parts`.
    pub fn with_parts(parts: &[&str]) -> Self {
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .collect();
        let only = args
            .iter()
            .find_map(|a| a.strip_prefix("--only="))
            .map(str::to_owned);
        // A mistyped flag must not start the long full run.
        let known = |a: &String| a == "--quick" || a.starts_with("--only=");
        if let Some(unknown) = args.iter().find(|a| a.starts_with("--") && !known(a)) {
            eprintln!("unknown argument {unknown}: expected [--quick] [--only=PART] [OUT.json]");
            std::process::exit(2);
        }
        if let Some(part) = only.as_deref().filter(|p| !parts.contains(p)) {
            eprintln!("--only={part}: this benchmark's parts are {parts:?}");
            std::process::exit(2);
        }
        Self {
            quick: args.iter().any(|a| a == "--quick"),
            out: args.iter().find(|a| !a.starts_with("--")).cloned(),
            only,
        }
    }
}
