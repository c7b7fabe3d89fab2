//! What can go wrong between the client and the resident.

/// A request or answer that is not what this wire expects.
#[derive(Debug)]
pub enum WireError {
    /// The first bytes are not a request or answer of this version.
    NotThisProtocol,
    /// A length or count beyond the wire's bounds, or past the payload's end.
    Malformed(&'static str),
    /// The descriptors that come with a request are missing or too many.
    Descriptors {
        /// How many arrived.
        received: usize,
    },
    /// The peer is another user (its uid).
    OtherUser(u32),
    /// The socket or its directory failed the checks of [`crate::socket_dir`].
    Unsafe(String),
    /// The resident answered that it did not start the command.
    NotRun,
    /// The socket failed.
    Io(std::io::Error),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotThisProtocol => write!(f, "the peer does not speak silt-resident/1"),
            Self::Malformed(what) => write!(f, "malformed request: {what}"),
            Self::Descriptors { received } => write!(
                f,
                "a request carries {} descriptors (working directory, stdin, stdout, stderr); {received} arrived",
                crate::descriptors::COUNT
            ),
            Self::OtherUser(uid) => write!(f, "the peer runs as uid {uid}, not as this user"),
            Self::Unsafe(why) => write!(f, "{why}"),
            Self::NotRun => write!(f, "the resident did not start the command"),
            Self::Io(err) => write!(f, "the socket failed: {err}"),
        }
    }
}

impl std::error::Error for WireError {}

impl From<std::io::Error> for WireError {
    fn from(err: std::io::Error) -> Self {
        Self::Io(err)
    }
}
