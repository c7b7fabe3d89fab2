//! What identifies this process among those that share files with it, and
//! the temporary names that carry it.
//!
//! - [`identity`]: where its pids mean something (the machine's boot and
//!   the pid namespace) and a random nonce, drawn once;
//! - [`temp_name`]: names of the host's temporary files, from which a
//!   later process tells whether their writer is gone.
//!
//! No dependencies: the store, the sandbox and the file access beneath a
//! root all name things by it.

pub mod identity;
mod temp_name;

pub use identity::{boot_id, nonce, pid_namespace};
pub use temp_name::{TEMP_MARKER, TempOwner, is_temp_name_for, temp_name, temp_owner};
