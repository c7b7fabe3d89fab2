//! Checking that an upload landed as it was sent.
//!
//! Some S3-compatible servers store what they did not understand: one that
//! ignores `Content-Encoding: aws-chunked` keeps the chunk framing with the
//! data (a 9-byte file became 302 bytes) and still answers 200. So every put
//! (a) is sent as a plain body with its SHA-256 in `x-amz-checksum-sha256`,
//! never aws-chunked with a trailer, so a server that checks it refuses
//! other bytes (`BadDigest`), and (b) is compared with what the server says
//! it stored: the checksum it echoes, else the size it answers to a `HEAD`.
//! AWS S3 and SeaweedFS echo the checksum, so the check costs no request
//! there; a server that echoes nothing costs one `HEAD` per put.

use std::io::Read;

use sha2::{Digest as _, Sha256};

/// What one put sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sent {
    /// Bytes in the body.
    pub size: u64,
    /// Base64 of the body's SHA-256, as S3 checksum headers carry it.
    pub sha256_base64: String,
}

impl Sent {
    /// Whether `echoed`, a SHA-256 the store answered for the object, is
    /// this one's. A multipart upload's is composite, the digest of its
    /// parts' digests then `-N`; a store may leave the part count out
    /// (moto does), which the digest of N digests already fixes.
    pub fn checksum_is(&self, echoed: &str) -> bool {
        echoed == self.sha256_base64
            || self
                .sha256_base64
                .rsplit_once('-')
                .is_some_and(|(digest, parts)| {
                    echoed == digest && parts.bytes().all(|b| b.is_ascii_digit())
                })
    }

    /// The digest of an in-memory body.
    pub fn of_bytes(data: &[u8]) -> Self {
        Self {
            size: data.len() as u64,
            sha256_base64: base64(&Sha256::digest(data)),
        }
    }

    /// The digest of a file's contents from where it is read now to its end
    /// (blocking: call off the async threads).
    pub fn of_reader(reader: &mut impl Read) -> std::io::Result<Self> {
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            hasher.update(&buffer[..read]);
            size += read as u64;
        }
        Ok(Self {
            size,
            sha256_base64: base64(&hasher.finalize()),
        })
    }
}

/// What the server says it stored: from the put's answer, or a `HEAD`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Stored {
    /// Its size, when the server said.
    pub size: Option<u64>,
    /// Base64 SHA-256, when the server said.
    pub sha256_base64: Option<String>,
}

impl Stored {
    /// True when the answer says enough to judge the upload (a checksum, or
    /// at least a size); otherwise a `HEAD` must say it.
    pub fn is_conclusive(&self) -> bool {
        self.sha256_base64.is_some() || self.size.is_some()
    }

    /// `None` when what was stored is what was sent, else the difference in
    /// words.
    pub fn differs_from(&self, sent: &Sent) -> Option<String> {
        if let Some(size) = self.size
            && size != sent.size
        {
            return Some(format!(
                "the store kept {size} bytes where {} were sent",
                sent.size
            ));
        }
        if let Some(checksum) = &self.sha256_base64
            && !sent.checksum_is(checksum)
        {
            return Some(format!(
                "the store's SHA-256 of the object ({checksum}) is not that of the {} bytes sent ({})",
                sent.size, sent.sha256_base64
            ));
        }
        None
    }
}

/// Standard base64 with padding (RFC 4648 §4), as S3 checksum headers use.
pub(super) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
        }
    }

    #[test]
    fn the_digest_is_the_one_s3_echoes() {
        // SeaweedFS 4.48 answered this for a put of "hello world".
        let sent = Sent::of_bytes(b"hello world");
        assert_eq!(
            sent.sha256_base64,
            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
        );
        let from_reader = Sent::of_reader(&mut &b"hello world"[..]).unwrap();
        assert_eq!(from_reader, sent);
    }

    #[test]
    fn a_different_size_or_checksum_is_named() {
        let sent = Sent::of_bytes(b"123456789");
        let framed = Stored {
            size: Some(302),
            sha256_base64: None,
        };
        assert!(framed.differs_from(&sent).unwrap().contains("302 bytes"));
        let other = Stored {
            size: Some(9),
            sha256_base64: Some(Sent::of_bytes(b"12345678X").sha256_base64),
        };
        assert!(other.differs_from(&sent).unwrap().contains("SHA-256"));
        let same = Stored {
            size: Some(9),
            sha256_base64: Some(sent.sha256_base64.clone()),
        };
        assert_eq!(same.differs_from(&sent), None);
        assert!(!Stored::default().is_conclusive());
    }

    #[test]
    fn a_composite_checksum_is_taken_with_or_without_its_part_count() {
        let digest = Sent::of_bytes(b"the digests of five parts").sha256_base64;
        let sent = Sent {
            size: 5 << 20,
            sha256_base64: format!("{digest}-5"),
        };
        assert!(sent.checksum_is(&format!("{digest}-5")));
        // moto 5.2.5 echoes the digest alone.
        assert!(sent.checksum_is(&digest));
        assert!(!sent.checksum_is(&format!("{digest}-4")));
        let other = Sent::of_bytes(b"other parts").sha256_base64;
        assert!(!sent.checksum_is(&other));
        assert!(!sent.checksum_is(&format!("{other}-5")));
        // A single put's digest has no count to leave out.
        let whole = Sent::of_bytes(b"one body");
        assert!(whole.checksum_is(&whole.sha256_base64));
        assert!(!whole.checksum_is(&format!("{}-1", whole.sha256_base64)));
    }
}
