//! `silt run --model T/ID [--model ...] -- CMD ARGS...` (the workflow:
//! [`crate::ops::run`]). The command's exit code is silt's; its stdout is
//! the command's, so silt's own lines go to stderr. With `--json`, silt's
//! stdout is the run's report alone, and the command's stdout goes to
//! stderr.

use clap::Args;

use super::Context;
use super::output::plural;
use crate::datastore::parse_models;
use crate::ops::run::{self, CommandStdout, RunRequest};

/// `silt run` arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A model to work on (`type/id`); repeat for several.
    #[arg(long = "model", value_name = "TYPE/ID", required = true)]
    models: Vec<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

pub(super) fn run(context: &Context, args: RunArgs) -> anyhow::Result<()> {
    let request = RunRequest {
        models: parse_models(&args.models)?,
        command: args.command,
        command_stdout: if context.output.is_json() {
            CommandStdout::ToStderr
        } else {
            CommandStdout::Inherited
        },
    };
    let report = run::run(&context.project(), &request)?;
    if context.output.is_json() {
        context.output.emit(&report, |_| Ok(()))
    } else {
        // stdout belongs to the command.
        context.output.notice(&format!(
            "fetched {}; committed {}",
            plural(report.downloaded, "file"),
            plural(report.committed.len() as u64, "file")
        ));
        Ok(())
    }
}
