//! The log of a process that runs many commands one after another (the
//! resident, `docs/resident-process.md`): each command's `-q` and `-v` set
//! the level of the lines it prints, on the stderr it was handed.

use std::sync::atomic::{AtomicU8, Ordering};

use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{EnvFilter, FilterExt as _};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The running command's level, as [`encode`] writes it; `u8::MAX` before
/// any command set one.
static LEVEL: AtomicU8 = AtomicU8::new(u8::MAX);

/// Installs the log for commands run one after another in this process:
/// events only, on stderr (whatever descriptor 2 is when a line is
/// written), without colours, at the level [`set_level`] last set, or at
/// `RUST_LOG`'s when the process was started with one (then it is the same
/// for every command, as the environment is). Does nothing when a
/// subscriber is installed already.
pub fn init_per_command_log() {
    let from_env = EnvFilter::try_from_default_env().ok();
    let level = tracing_subscriber::filter::filter_fn(move |meta| {
        meta.is_event() && meta.target() != crate::METRICS_TARGET && {
            let level = LEVEL.load(Ordering::Relaxed);
            level != u8::MAX && decode(level) >= *meta.level()
        }
    })
    .with_max_level_hint(LevelFilter::TRACE);
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    let _ = match from_env {
        Some(env) => tracing_subscriber::registry()
            .with(
                log.with_filter(env.and(tracing_subscriber::filter::filter_fn(|meta| {
                    meta.is_event() && meta.target() != crate::METRICS_TARGET
                }))),
            )
            .try_init(),
        None => tracing_subscriber::registry()
            .with(log.with_filter(level))
            .try_init(),
    };
}

/// The level of the log from now on (the next command's `-q`/`-v`).
pub fn set_level(level: LevelFilter) {
    LEVEL.store(encode(level), Ordering::Relaxed);
}

fn encode(level: LevelFilter) -> u8 {
    match level.into_level() {
        None => 0,
        Some(tracing::Level::ERROR) => 1,
        Some(tracing::Level::WARN) => 2,
        Some(tracing::Level::INFO) => 3,
        Some(tracing::Level::DEBUG) => 4,
        Some(tracing::Level::TRACE) => 5,
    }
}

fn decode(level: u8) -> LevelFilter {
    match level {
        0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_comes_back_as_it_went() {
        for level in [
            LevelFilter::OFF,
            LevelFilter::ERROR,
            LevelFilter::WARN,
            LevelFilter::INFO,
            LevelFilter::DEBUG,
            LevelFilter::TRACE,
        ] {
            assert_eq!(decode(encode(level)), level);
        }
    }
}
