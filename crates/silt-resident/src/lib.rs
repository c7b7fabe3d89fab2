//! The wire between `silt-client` and a resident `silt` process (issue 21,
//! goal 5; design in `docs/resident-process.md`).
//!
//! A fresh `silt` process spends most of a short command starting up: the
//! loader relocating a 50 MB binary, the engine, the artifact's mapping.
//! A resident process per user keeps those; a small client hands it each
//! command over a Unix socket and waits for the exit code. What a command
//! reads from its process travels with it ([`Request`]): argv, the whole
//! environment, the working directory as a descriptor (not a path that
//! could be swapped) and descriptors 0–2, passed with `SCM_RIGHTS`.
//!
//! Trust runs both ways and rests on the kernel, not on names:
//! - the socket lives in a directory of the user's own, mode 0700, checked
//!   with `lstat` (the directory itself is not a link; [`socket_dir`]);
//! - each side checks the other's uid with `SO_PEERCRED` ([`peer`]) before
//!   anything is handed over: the request carries credentials.
//!
//! The resident is `silt __resident` (`crates/silt/src/cli/resident.rs`),
//! over [`serve`]; which resident serves a client is [`route`]'s. After its
//! request the client may send a [`cancel`] (its SIGINT, SIGTERM or
//! SIGHUP); the resident says [`started`] just before the command runs, so
//! a client whose resident went away knows whether it may run the command
//! itself.

pub mod client;
mod descriptors;
mod error;
pub mod peer;
mod request;
pub mod route;
pub mod serve;
mod signals;
pub mod socket_dir;
mod wire;

pub use error::WireError;
pub use request::{Answer, NoAnswer, Request, answer, cancel, read_answer, read_cancel, started};
pub use wire::Environment;
