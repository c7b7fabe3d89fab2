//! The bytes of a request: a header, then argv and the environment as
//! length-prefixed fields. Plain and bounded, so a reader never trusts a
//! length it was sent.
//!
//! ```text
//! request: "siltreq1"  u32le payload length  (descriptors on its first byte)
//! payload: u32le argc  (u32le len, bytes) × argc
//!          u32le envc  (u32le len, "KEY=VALUE" bytes) × envc
//! answer:  "siltrun1"  0                 the command starts (then:)
//!          "siltend1"  u8 exit code      the command ran
//!          "siltnot1"  0                 it was not started
//! cancel:  "siltcan1"  u8 signal number  client → resident, while it waits
//! ```

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};

use crate::error::WireError;

/// First bytes of a request; the digit is the wire's version.
pub(crate) const REQUEST_MAGIC: [u8; 8] = *b"siltreq1";
/// Sent just before the command starts: a resident gone before it had not
/// started the command, one gone after may have run it in part.
pub(crate) const STARTED_MAGIC: [u8; 8] = *b"siltrun1";
/// First bytes of an answer, followed by the exit code.
pub(crate) const ANSWER_MAGIC: [u8; 8] = *b"siltend1";
/// First bytes of the answer "not run" (then a zero byte).
pub(crate) const NOT_RUN_MAGIC: [u8; 8] = *b"siltnot1";
/// First bytes of a cancel, followed by the signal the client received.
pub(crate) const CANCEL_MAGIC: [u8; 8] = *b"siltcan1";
/// The header's size: magic and payload length.
pub(crate) const HEADER_LEN: usize = 12;
/// Largest payload sent or read. Linux caps a process's argv and
/// environment together at a quarter of its stack limit, at most 6 MiB
/// (2 MiB with the usual 8 MiB stack); anything the client was started
/// with fits.
pub(crate) const MAX_PAYLOAD: usize = 8 << 20;
/// Most arguments or variables in one request.
const MAX_FIELDS: usize = 1 << 16;

/// The header for a payload of `len` bytes.
pub(crate) fn header(len: usize) -> Result<[u8; HEADER_LEN], WireError> {
    if len > MAX_PAYLOAD {
        return Err(WireError::Malformed("arguments and environment over 8 MiB"));
    }
    let mut header = [0; HEADER_LEN];
    header[..8].copy_from_slice(&REQUEST_MAGIC);
    header[8..].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    Ok(header)
}

/// The payload length a header announces.
pub(crate) fn payload_len(header: &[u8; HEADER_LEN]) -> Result<usize, WireError> {
    if header[..8] != REQUEST_MAGIC {
        return Err(WireError::NotThisProtocol);
    }
    let len = u32::from_le_bytes(header[8..].try_into().expect("4 bytes")) as usize;
    if len > MAX_PAYLOAD {
        return Err(WireError::Malformed("payload over 8 MiB"));
    }
    Ok(len)
}

/// An environment, as `(KEY, VALUE)` pairs in the client's order.
pub type Environment = Vec<(OsString, OsString)>;

/// argv and the environment as a payload, checked as [`decode`] will check
/// it: a request the resident would refuse is never sent (the client then
/// runs the command itself, rather than report a command lost).
pub(crate) fn encode(
    argv: &[OsString],
    env: &[(OsString, OsString)],
) -> Result<Vec<u8>, WireError> {
    if argv.len() > MAX_FIELDS || env.len() > MAX_FIELDS {
        return Err(WireError::Malformed(
            "more than 65,536 arguments or variables",
        ));
    }
    if env.iter().any(|(key, _)| !is_key(key.as_bytes())) {
        return Err(WireError::Malformed(
            "an environment variable with an empty name or an `=` in it",
        ));
    }
    let mut out = Vec::new();
    push_count(&mut out, argv.len());
    for arg in argv {
        push_field(&mut out, arg.as_bytes());
    }
    push_count(&mut out, env.len());
    for (key, value) in env {
        let mut field = Vec::with_capacity(key.len() + 1 + value.len());
        field.extend_from_slice(key.as_bytes());
        field.push(b'=');
        field.extend_from_slice(value.as_bytes());
        push_field(&mut out, &field);
    }
    if out.len() > MAX_PAYLOAD {
        return Err(WireError::Malformed("arguments and environment over 8 MiB"));
    }
    Ok(out)
}

/// True when `KEY=VALUE` splits back into this key: not empty, and no `=`
/// but a leading one (std and glibc split an entry at the first `=` after
/// its first byte, so `=C:=x` is the key `=C:`).
fn is_key(key: &[u8]) -> bool {
    !key.is_empty() && !key[1..].contains(&b'=')
}

/// The argv and environment a payload holds.
pub(crate) fn decode(payload: &[u8]) -> Result<(Vec<OsString>, Environment), WireError> {
    let mut reader = Reader(payload);
    let argc = reader.count()?;
    let mut argv = Vec::with_capacity(reader.at_most(argc));
    for _ in 0..argc {
        argv.push(OsString::from_vec(reader.field()?.to_vec()));
    }
    let envc = reader.count()?;
    let mut env = Vec::with_capacity(reader.at_most(envc));
    for _ in 0..envc {
        let field = reader.field()?;
        // The key ends at the first `=` after its first byte, as std and
        // glibc split the environment.
        let Some(split) = field
            .get(1..)
            .and_then(|rest| rest.iter().position(|&b| b == b'='))
            .map(|at| at + 1)
        else {
            return Err(WireError::Malformed("an environment entry without KEY="));
        };
        env.push((
            OsStr::from_bytes(&field[..split]).to_owned(),
            OsStr::from_bytes(&field[split + 1..]).to_owned(),
        ));
    }
    if !reader.0.is_empty() {
        return Err(WireError::Malformed("bytes after the environment"));
    }
    Ok((argv, env))
}

fn push_count(out: &mut Vec<u8>, count: usize) {
    out.extend_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_le_bytes());
}

fn push_field(out: &mut Vec<u8>, bytes: &[u8]) {
    push_count(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Reads fields off the front of a payload.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Result<usize, WireError> {
        let Some((bytes, rest)) = self.0.split_first_chunk::<4>() else {
            return Err(WireError::Malformed("a length past the payload's end"));
        };
        self.0 = rest;
        Ok(u32::from_le_bytes(*bytes) as usize)
    }

    fn count(&mut self) -> Result<usize, WireError> {
        let count = self.u32()?;
        if count > MAX_FIELDS {
            return Err(WireError::Malformed(
                "more than 65,536 arguments or variables",
            ));
        }
        Ok(count)
    }

    /// Room to reserve for `count` fields: no more than the bytes left
    /// could hold (each field has a 4-byte length).
    fn at_most(&self, count: usize) -> usize {
        count.min(self.0.len() / 4)
    }

    fn field(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.u32()?;
        if len > self.0.len() {
            return Err(WireError::Malformed("a field past the payload's end"));
        }
        let (field, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(text: &str) -> OsString {
        text.into()
    }

    #[test]
    fn argv_and_environment_come_back_as_sent() {
        let argv = vec![
            os("silt"),
            os("data"),
            os(""),
            OsString::from_vec(vec![0xff, b'=']),
        ];
        let env = vec![
            (os("A"), os("1=2")),
            (os("EMPTY"), os("")),
            (os("=C:"), os("=x")),
        ];
        let payload = encode(&argv, &env).unwrap();
        assert_eq!(decode(&payload).unwrap(), (argv, env));
    }

    #[test]
    fn lengths_past_the_end_and_trailing_bytes_are_refused() {
        let payload = encode(&[os("silt")], &[]).unwrap();
        for cut in 0..payload.len() {
            assert!(decode(&payload[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = payload.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(WireError::Malformed(_))));
        let mut huge = Vec::new();
        push_count(&mut huge, MAX_FIELDS + 1);
        assert!(matches!(decode(&huge), Err(WireError::Malformed(_))));
    }

    #[test]
    fn an_environment_entry_needs_a_key() {
        for entry in [&b"=value"[..], b"", b"novalue"] {
            let mut payload = Vec::new();
            push_count(&mut payload, 0);
            push_count(&mut payload, 1);
            push_field(&mut payload, entry);
            assert!(
                matches!(decode(&payload), Err(WireError::Malformed(_))),
                "{entry:?}"
            );
        }
    }

    #[test]
    fn what_the_resident_would_refuse_is_not_sent() {
        let many = vec![os("x"); MAX_FIELDS + 1];
        assert!(encode(&many, &[]).is_err());
        for key in ["", "A=B"] {
            assert!(encode(&[], &[(os(key), os("v"))]).is_err(), "{key:?}");
        }
        let huge = OsString::from_vec(vec![b'x'; MAX_PAYLOAD]);
        assert!(encode(&[huge], &[]).is_err());
    }

    #[test]
    fn a_header_is_checked_for_magic_and_bound() {
        let header = header(10).unwrap();
        assert_eq!(payload_len(&header).unwrap(), 10);
        let mut other = header;
        other[0] = b'x';
        assert!(matches!(
            payload_len(&other),
            Err(WireError::NotThisProtocol)
        ));
        let mut big = header;
        big[8..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(payload_len(&big), Err(WireError::Malformed(_))));
        assert!(super::header(MAX_PAYLOAD + 1).is_err());
    }
}
