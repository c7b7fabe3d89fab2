//! An HTTP proxy on 127.0.0.1 in front of the SeaweedFS test server that
//! misbehaves the way some S3-compatible servers do with uploads, so the
//! tests can show silt never acknowledges bytes that did not land as sent.
//!
//! Only uploads at least [`Proxy::min_body`] long are touched (so a test can
//! leave small index writes alone and spoil bulk data); everything else
//! passes through. Each connection carries one request (`Connection: close`
//! is added, an unsigned header), which keeps the proxy a plain byte pipe
//! after the heads.

use std::io::{BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::http_head::{forward, header, listen, read_head, read_request};

/// How uploads are spoiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mangle {
    /// The body's first byte is flipped on its way to the server (the
    /// length stays): a server that checks the SHA-256 silt sends refuses it.
    FlipBody,
    /// The server stores what it was sent, but its answer to the upload
    /// echoes another SHA-256 than silt sent (as a server that stored
    /// other bytes and says so).
    EchoOtherChecksum,
    /// The server stores what it was sent, but answers as a server that
    /// kept the aws-chunked framing would: the upload's answer carries no
    /// checksum, and a `HEAD` reports the object 293 bytes longer, with no
    /// checksum (a 9-byte file stored as 302 bytes).
    ForgeStoredSize,
}

/// A running proxy; it serves until the test binary exits.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// Uploads shorter than this pass untouched.
    pub min_body: usize,
    /// `HEAD` requests relayed so far (what checking an upload cost).
    pub heads: Arc<AtomicUsize>,
}

impl Proxy {
    /// `HEAD` requests relayed so far.
    pub fn heads(&self) -> usize {
        self.heads.load(Ordering::SeqCst)
    }
}

/// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`).
pub fn start(upstream: &str, mangle: Mangle, min_body: usize) -> Proxy {
    let heads = Arc::new(AtomicUsize::new(0));
    let counted = heads.clone();
    let endpoint = listen(upstream, move |client, upstream| {
        serve(client, upstream, mangle, min_body, &counted)
    });
    Proxy {
        endpoint,
        min_body,
        heads,
    }
}

/// Relays one request and its answer.
fn serve(
    client: std::net::TcpStream,
    upstream: &str,
    mangle: Mangle,
    min_body: usize,
    heads: &AtomicUsize,
) -> std::io::Result<()> {
    let (head, mut body) = read_request(&mut BufReader::new(client.try_clone()?))?;
    let method = head[0].split(' ').next().unwrap_or("").to_owned();
    if method == "HEAD" {
        heads.fetch_add(1, Ordering::SeqCst);
    }
    let length = body.len();
    let spoil = method == "PUT" && length >= min_body && length > 0;
    if spoil && mangle == Mangle::FlipBody {
        body[0] ^= 0xff;
    }

    let server = forward(upstream, &head, &body)?;

    let mut from_server = BufReader::new(server);
    let mut answer = read_head(&mut from_server)?;
    let forge = mangle == Mangle::ForgeStoredSize
        && ((method == "PUT" && spoil) || (method == "HEAD" && forged_object(&answer, min_body)));
    if mangle == Mangle::EchoOtherChecksum && method == "PUT" && spoil {
        for line in &mut answer {
            if line
                .to_ascii_lowercase()
                .starts_with("x-amz-checksum-sha256:")
            {
                // The SHA-256 of nothing: never that of a spoiled upload.
                *line = "x-amz-checksum-sha256: 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
                    .to_owned();
            }
        }
    }
    if forge {
        answer.retain(|line| !line.to_ascii_lowercase().starts_with("x-amz-checksum-"));
        if method == "HEAD" {
            for line in &mut answer {
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    let stored: u64 = value.trim().parse().unwrap_or(0);
                    *line = format!("Content-Length: {}", stored + 293);
                }
            }
        }
    }
    let mut client = client;
    client.write_all(format!("{}\r\n\r\n", answer.join("\r\n")).as_bytes())?;
    std::io::copy(&mut from_server, &mut client)?;
    client.flush()
}

/// A `HEAD` answer about an object large enough to have been spoiled.
fn forged_object(answer: &[String], min_body: usize) -> bool {
    answer[0].contains(" 200")
        && header(answer, "content-length")
            .and_then(|value| value.parse::<usize>().ok())
            .is_some_and(|size| size >= min_body)
}
