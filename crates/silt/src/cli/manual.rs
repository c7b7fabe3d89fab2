//! `silt completions SHELL` and `silt man`: generated from the same clap
//! definition as the parser, so they can never describe another command
//! line than the one silt accepts.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::CommandFactory as _;

/// `silt completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell. Install, e.g.:
    /// `silt completions bash > ~/.local/share/bash-completion/completions/silt`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `silt man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write one page per command (silt.1, silt-data.1, silt-data-put.1, …)
    /// into this directory instead of printing silt.1.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell`.
///
/// # Errors
/// When stdout fails for a reason other than a closed pipe.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    super::deferred::build_eagerly();
    let mut command = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "silt", &mut script);
    write_stdout(&script)
}

/// Prints the manual page, or writes every command's page to `--out-dir`.
///
/// # Errors
/// When the directory or stdout cannot be written.
pub fn man(args: ManArgs) -> anyhow::Result<()> {
    super::deferred::build_eagerly();
    let command = super::Cli::command();
    match args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(command, &dir)
                .with_context(|| format!("cannot write the manual pages into {}", dir.display()))
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .context("cannot render the manual page")?;
            write_stdout(&page)
        }
    }
}

/// Writes `bytes` to stdout; a closed pipe (`silt man | head`) is no error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}
