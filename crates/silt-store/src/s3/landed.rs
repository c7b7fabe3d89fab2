//! Checking that an upload landed as it was sent.
//!
//! Some S3-compatible servers store what they did not understand: one that
//! ignores `Content-Encoding: aws-chunked` keeps the chunk framing with the
//! data (a 9-byte file became 302 bytes) and still answers 200. So every put
//! (a) is sent as a plain body with its checksum in a header, never
//! aws-chunked with a trailer, so a server that checks it refuses other
//! bytes (`BadDigest`), and (b) is compared with what the server says it
//! stored: the checksum it echoes, else the size it answers to a `HEAD`.
//! AWS S3 and SeaweedFS echo the checksum, so the check costs no request
//! there; a server that echoes nothing costs one `HEAD` per put.
//!
//! One put's body carries its SHA-256 (`x-amz-checksum-sha256`), taken in
//! a pass before the send and answered as the upload's digest. A multipart
//! upload's parts carry CRC32C (`x-amz-checksum-crc32c`): the server checks
//! each part as well, at a tenth of a SHA-256's CPU on either side, which
//! on a machine the server shares is the upload's speed; the file's
//! SHA-256 is taken from the parts as they are read (`parts.rs`).

use std::io::Read;

use sha2::{Digest as _, Sha256};

/// The checksum an upload's body (or parts) carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Algorithm {
    /// SHA-256 (`x-amz-checksum-sha256`).
    Sha256,
    /// CRC32C (`x-amz-checksum-crc32c`).
    Crc32c,
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sha256 => "SHA-256",
            Self::Crc32c => "CRC32C",
        })
    }
}

/// What one put sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sent {
    /// Bytes in the body.
    pub size: u64,
    /// The algorithm of [`Self::checksum_base64`].
    pub algorithm: Algorithm,
    /// Base64 of the checksum the store answers for the object, as S3
    /// checksum headers carry it: the body's for one put, the composite
    /// of the parts' for a multipart upload.
    pub checksum_base64: String,
}

impl Sent {
    /// Whether `echoed`, a checksum of [`Self::algorithm`] the store
    /// answered for the object, is this one's. A multipart upload's is
    /// composite, the checksum of its parts' checksums then `-N`; a store
    /// may leave the part count out (moto does), which the checksum of N
    /// checksums already fixes.
    pub fn checksum_is(&self, echoed: &str) -> bool {
        echoed == self.checksum_base64
            || self
                .checksum_base64
                .rsplit_once('-')
                .is_some_and(|(digest, parts)| {
                    echoed == digest && parts.bytes().all(|b| b.is_ascii_digit())
                })
    }

    /// The SHA-256 the body carried, when its checksum is one.
    pub fn sha256(&self) -> Option<[u8; 32]> {
        use base64::Engine as _;
        if self.algorithm != Algorithm::Sha256 {
            return None;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.checksum_base64)
            .ok()?;
        bytes.try_into().ok()
    }

    /// The digest of an in-memory body.
    pub fn of_bytes(data: &[u8]) -> Self {
        Self {
            size: data.len() as u64,
            algorithm: Algorithm::Sha256,
            checksum_base64: base64(&Sha256::digest(data)),
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
            algorithm: Algorithm::Sha256,
            checksum_base64: base64(&hasher.finalize()),
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
    /// Base64 CRC32C, when the server said.
    pub crc32c_base64: Option<String>,
}

impl Stored {
    /// The server's checksum of `algorithm`, when it said.
    fn checksum(&self, algorithm: Algorithm) -> Option<&str> {
        match algorithm {
            Algorithm::Sha256 => self.sha256_base64.as_deref(),
            Algorithm::Crc32c => self.crc32c_base64.as_deref(),
        }
    }

    /// True when the answer says enough to judge an upload that carried
    /// `algorithm` (its checksum, or at least a size); otherwise a `HEAD`
    /// must say it.
    pub fn is_conclusive(&self, algorithm: Algorithm) -> bool {
        self.checksum(algorithm).is_some() || self.size.is_some()
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
        if let Some(checksum) = self.checksum(sent.algorithm)
            && !sent.checksum_is(checksum)
        {
            return Some(format!(
                "the store's {} of the object ({checksum}) is not that of the {} bytes sent ({})",
                sent.algorithm, sent.size, sent.checksum_base64
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

/// The CRC32C of `data`, as S3 checksums it.
pub(super) fn crc32c(data: &[u8]) -> u32 {
    let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data);
    u32::try_from(crc).expect("a CRC32C fits in 32 bits")
}

/// `base64(crc32c(c1 ‖ c2 ‖ …))-N`, each part's CRC32C big-endian: the
/// composite checksum S3 answers for a multipart upload whose parts
/// carried CRC32C checksums (in part order).
pub(super) fn crc32c_composite(parts: &[u32]) -> String {
    let joined: Vec<u8> = parts.iter().flat_map(|crc| crc.to_be_bytes()).collect();
    format!("{}-{}", base64(&crc32c(&joined).to_be_bytes()), parts.len())
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
            sent.checksum_base64,
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
            ..Stored::default()
        };
        assert!(framed.differs_from(&sent).unwrap().contains("302 bytes"));
        let other = Stored {
            size: Some(9),
            sha256_base64: Some(Sent::of_bytes(b"12345678X").checksum_base64),
            ..Stored::default()
        };
        assert!(other.differs_from(&sent).unwrap().contains("SHA-256"));
        let same = Stored {
            size: Some(9),
            sha256_base64: Some(sent.checksum_base64.clone()),
            ..Stored::default()
        };
        assert_eq!(same.differs_from(&sent), None);
        assert!(!Stored::default().is_conclusive(Algorithm::Sha256));
        // A CRC32C is no answer about an upload that carried SHA-256.
        let other_algorithm = Stored {
            crc32c_base64: Some("4waSgw==".to_owned()),
            ..Stored::default()
        };
        assert!(!other_algorithm.is_conclusive(Algorithm::Sha256));
        assert_eq!(other_algorithm.differs_from(&sent), None);
    }

    #[test]
    fn a_composite_checksum_is_taken_with_or_without_its_part_count() {
        let digest = Sent::of_bytes(b"the digests of five parts").checksum_base64;
        let sent = Sent {
            size: 5 << 20,
            algorithm: Algorithm::Sha256,
            checksum_base64: format!("{digest}-5"),
        };
        assert!(sent.checksum_is(&format!("{digest}-5")));
        // moto 5.2.5 echoes the digest alone.
        assert!(sent.checksum_is(&digest));
        assert!(!sent.checksum_is(&format!("{digest}-4")));
        let other = Sent::of_bytes(b"other parts").checksum_base64;
        assert!(!sent.checksum_is(&other));
        assert!(!sent.checksum_is(&format!("{other}-5")));
        // A single put's digest has no count to leave out.
        let whole = Sent::of_bytes(b"one body");
        assert!(whole.checksum_is(&whole.checksum_base64));
        assert!(!whole.checksum_is(&format!("{}-1", whole.checksum_base64)));
    }

    #[test]
    fn crc32c_is_s3s_and_its_composite_is_the_one_s3_answers() {
        // The check value of CRC-32C (iSCSI).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(base64(&crc32c(b"123456789").to_be_bytes()), "4waSgw==");
        // Computed apart (a table-driven CRC32C in Python) the way S3
        // documents a composite: the CRC32C of the parts' big-endian CRCs.
        let parts = [crc32c(b"the first part"), crc32c(b"the second part")];
        assert_eq!(base64(&parts[0].to_be_bytes()), "VHlkWw==");
        assert_eq!(base64(&parts[1].to_be_bytes()), "cjt6Vg==");
        assert_eq!(crc32c_composite(&parts), "2W0sgA==-2");
        let sent = Sent {
            size: 29,
            algorithm: Algorithm::Crc32c,
            checksum_base64: crc32c_composite(&parts),
        };
        let stored = |crc32c: &str| Stored {
            size: Some(29),
            crc32c_base64: Some(crc32c.to_owned()),
            ..Stored::default()
        };
        assert_eq!(stored("2W0sgA==-2").differs_from(&sent), None);
        let wrong = stored("VHlkWw==-2").differs_from(&sent).unwrap();
        assert!(wrong.contains("CRC32C"), "{wrong}");
    }
}
