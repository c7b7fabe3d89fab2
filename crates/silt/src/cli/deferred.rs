//! Command groups whose flags clap builds only when they are used.
//!
//! clap's derive builds the whole command tree, every flag of every
//! command with its help text, before it parses a single argument. For a
//! command that itself takes a few milliseconds, that is a measurable part
//! of the run (profiled: about 5 % of the samples of `silt data list`).
//! `Deferred<T>` hands clap `T`'s flags as a deferred builder
//! ([`clap::Command::defer`]): the group's name and one-line help are
//! built as before (the top-level `--help` lists them), its flags and
//! subcommands only when the parser enters the group, or when `--help`
//! builds the whole tree.
//!
//! The completion script and the manual page also describe `silt help
//! <group> <command>`, a copy clap makes of the tree before it builds the
//! deferred parts; they ask for the whole tree at once ([`build_eagerly`]).

use std::cell::Cell;

use clap::{ArgMatches, Args, Command, Error, FromArgMatches, Subcommand};

thread_local! {
    /// Set once this thread wants whole command trees (see [`build_eagerly`]).
    static EAGER: Cell<bool> = const { Cell::new(false) };
}

/// From now on, every command tree this thread builds is built whole,
/// nothing deferred: for the completion script and the manual page.
pub fn build_eagerly() {
    EAGER.set(true);
}

/// `now` applied to `cmd` at once, or `deferred` when clap needs it.
fn augment(cmd: Command, deferred: fn(Command) -> Command, now: fn(Command) -> Command) -> Command {
    if EAGER.get() {
        now(cmd)
    } else {
        cmd.defer(deferred)
    }
}

/// `build`, keeping the help the command already has. The variant's doc
/// comment is set before the deferred part runs, and the inner type's own
/// doc comment ("Data commands.") must not replace it.
fn keeping_help(cmd: Command, build: fn(Command) -> Command) -> Command {
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let cmd = build(cmd);
    let cmd = match about {
        Some(about) => cmd.about(about),
        None => cmd.about(None::<&'static str>),
    };
    match long_about {
        Some(long_about) => cmd.long_about(long_about),
        None => cmd.long_about(None::<&'static str>),
    }
}

fn args_later<T: Args>(cmd: Command) -> Command {
    listing_globals_once(keeping_help(cmd, T::augment_args))
}

fn subcommands_later<T: Subcommand>(cmd: Command) -> Command {
    listing_globals_once(keeping_help(cmd, T::augment_subcommands))
}

/// The group's copies of silt's global options (clap put them there before
/// building the group) hidden from its help and its commands', which name
/// them in one line instead: `silt --help` lists them once. They are still
/// parsed everywhere. (A tree built whole, for the completion script and
/// the manual, has no copies yet when this runs, and keeps them visible.)
fn listing_globals_once(cmd: Command) -> Command {
    let globals: Vec<(clap::Id, String)> = cmd
        .get_arguments()
        .filter(|arg| arg.is_global_set() && !arg.is_hide_set())
        .map(|arg| {
            let flag = match (arg.get_long(), arg.get_short()) {
                (Some(long), _) => format!("--{long}"),
                (None, Some(short)) => format!("-{short}"),
                (None, None) => arg.get_id().to_string(),
            };
            (arg.get_id().clone(), flag)
        })
        .collect();
    if globals.is_empty() {
        return cmd;
    }
    let line = globals
        .iter()
        .map(|(_, flag)| flag.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let template = format!(
        "{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{{all-args}}\n\n\
         {GLOBAL_OPTIONS_LINE} {line} (`silt --help` says what each does){{after-help}}"
    );
    let mut cmd = cmd;
    for (id, _) in globals {
        cmd = cmd.mut_arg(id, |arg| arg.hide(true));
    }
    with_template(cmd, &template)
}

/// How a command's help names the global options it does not list.
pub const GLOBAL_OPTIONS_LINE: &str = "Global options:";

/// `template` for `cmd`'s help and every command under it.
fn with_template(cmd: Command, template: &str) -> Command {
    cmd.help_template(template.to_owned())
        .mut_subcommands(|sub| with_template(sub, template))
}

/// `T`, with its flags (or subcommands) built only when clap needs them.
#[derive(Debug)]
pub struct Deferred<T>(pub T);

impl<T: FromArgMatches> FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, Error> {
        T::from_arg_matches(matches).map(Self)
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, Error> {
        T::from_arg_matches_mut(matches).map(Self)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), Error> {
        self.0.update_from_arg_matches(matches)
    }

    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

impl<T: Args> Args for Deferred<T> {
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }

    fn augment_args(cmd: Command) -> Command {
        augment(cmd, args_later::<T>, T::augment_args)
    }

    /// Not deferred: silt never updates parsed arguments.
    fn augment_args_for_update(cmd: Command) -> Command {
        T::augment_args_for_update(cmd)
    }
}

impl<T: Subcommand> Subcommand for Deferred<T> {
    fn augment_subcommands(cmd: Command) -> Command {
        augment(cmd, subcommands_later::<T>, T::augment_subcommands)
    }

    /// Not deferred: silt never updates parsed arguments.
    fn augment_subcommands_for_update(cmd: Command) -> Command {
        T::augment_subcommands_for_update(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        T::has_subcommand(name)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;
    use clap::Parser as _;

    /// Every command's help and usage, as `silt <path> --help` prints them.
    fn every_help(command: &mut clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        for sub in command.get_subcommands_mut() {
            if sub.get_name() == "help" {
                continue;
            }
            let path = format!("{path} {}", sub.get_name());
            out.push((path.clone(), sub.render_long_help().to_string()));
            out.push((path.clone(), sub.render_usage().to_string()));
            every_help(sub, &path, out);
        }
    }

    fn helps() -> Vec<(String, String)> {
        let mut command = super::super::Cli::command();
        command.build();
        let mut out = Vec::new();
        every_help(&mut command, "silt", &mut out);
        out
    }

    /// A help text without its global options: the section listing them
    /// (a tree built whole) or the line naming them (built as parsed), and
    /// what they change elsewhere (`[OPTIONS]` in the usage of a command
    /// with no options of its own; the pointer between short and long help).
    fn without_globals(help: &str) -> String {
        let help = help
            .replace(" [OPTIONS]", "")
            .replace(" (see a summary with '-h')", "")
            .replace(" (see more with '--help')", "");
        let mut kept = Vec::new();
        let mut in_section = false;
        for line in help.lines() {
            if line.starts_with(super::GLOBAL_OPTIONS_LINE) {
                // The section's heading is the line alone.
                in_section = line.trim_end() == super::GLOBAL_OPTIONS_LINE;
                continue;
            }
            if in_section && !line.is_empty() && !line.starts_with(' ') {
                in_section = false;
            }
            if !in_section {
                kept.push(line);
            }
        }
        let mut text = kept.join("\n");
        while text.contains("\n\n\n") {
            text = text.replace("\n\n\n", "\n\n");
        }
        text.trim_end().to_owned()
    }

    #[test]
    fn deferring_changes_no_help_text_but_where_the_global_options_are() {
        let deferred = helps();
        // Each test runs on a thread of its own: this changes only it.
        super::build_eagerly();
        let eager = helps();
        assert!(eager.len() > 40, "only {} help texts", eager.len());
        assert_eq!(deferred.len(), eager.len());
        for ((path, deferred), (_, eager)) in deferred.iter().zip(&eager) {
            assert_eq!(
                without_globals(deferred),
                without_globals(eager),
                "help of `{path}` differs"
            );
        }
    }

    #[test]
    fn the_global_options_are_listed_once_and_named_in_every_commands_help() {
        let help_of = |args: &[&str]| {
            super::super::Cli::command()
                .try_get_matches_from(args)
                .expect_err("help is an early exit")
                .to_string()
        };
        let top = help_of(&["silt", "--help"]);
        assert!(top.contains("--trace-file <PATH>"), "{top}");
        for args in [
            &["silt", "data", "put", "--help"][..],
            &["silt", "data", "--help"],
            &["silt", "datastore", "lock", "status", "--help"],
            &["silt", "run", "-h"],
        ] {
            let help = help_of(args);
            assert!(!help.contains("--trace-file <PATH>"), "{args:?}: {help}");
            assert!(
                help.contains("Global options: --json, --verbose, --quiet"),
                "{args:?}: {help}"
            );
        }
        // Still taken after a command.
        let cli = super::super::Cli::try_parse_from([
            "silt",
            "data",
            "list",
            "a/b",
            "--json",
            "-vv",
            "--trace-file",
            "t.json",
        ])
        .unwrap();
        assert!(cli.json);
        assert_eq!(cli.verbose, 2);
    }

    #[test]
    fn help_subcommand_reaches_deferred_commands() {
        let help_of = |args: &[&str]| {
            let err = super::super::Cli::command()
                .try_get_matches_from(args)
                .expect_err("help is an early exit");
            assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp, "{args:?}");
            err.to_string()
        };
        assert_eq!(
            help_of(&["silt", "help", "data", "list"]),
            help_of(&["silt", "data", "list", "--help"])
        );
        assert_eq!(
            help_of(&["silt", "help", "run"]),
            help_of(&["silt", "run", "--help"])
        );
    }

    #[test]
    fn flags_of_the_whole_line_reach_deferred_commands() {
        let cli =
            super::super::Cli::try_parse_from(["silt", "data", "list", "a/b", "--json", "-q"])
                .expect("parses");
        assert!(cli.json && cli.quiet);
        let cli = super::super::Cli::try_parse_from([
            "silt", "--json", "run", "--model", "a/b", "--", "true",
        ])
        .expect("parses");
        assert!(cli.json);
        assert!(matches!(cli.command, super::super::Command::Run(_)));
    }
}
