//! The command line every bench binary takes: `[--quick] [OUT.json]`
//! (`cargo bench` adds `--bench`, which is ignored).

/// A bench binary's arguments.
pub struct BenchArgs {
    /// Small sizes: check that everything completes, assert nothing about speed.
    pub quick: bool,
    /// Where to write the JSON results, if anywhere.
    pub out: Option<String>,
}

impl BenchArgs {
    /// This process's arguments.
    pub fn from_env() -> Self {
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .collect();
        // A mistyped flag must not start the long full run.
        if let Some(unknown) = args
            .iter()
            .find(|a| a.starts_with("--") && a.as_str() != "--quick")
        {
            eprintln!("unknown argument {unknown}: expected [--quick] [OUT.json]");
            std::process::exit(2);
        }
        Self {
            quick: args.iter().any(|a| a == "--quick"),
            out: args.iter().find(|a| !a.starts_with("--")).cloned(),
        }
    }
}
