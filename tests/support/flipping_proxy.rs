//! An HTTP proxy on 127.0.0.1 that spoils bodies on their way: one byte
//! flipped in the middle of every upload (`POST`/`PUT`) body, or of every
//! download (`GET`) answer, of at least `min_body` bytes. In front of GCS
//! or Azure emulators it shows that silt never acknowledges an upload that
//! did not land as sent, nor takes a download that did not arrive as
//! stored.

use std::io::{BufReader, Read as _, Write as _};

use super::http_head::{forward, header, listen, read_head, read_request};

/// Which bodies are spoiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spoil {
    /// Upload bodies, on their way to the server.
    Uploads,
    /// Download answers, on their way back.
    Downloads,
}

/// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`); answers its
/// endpoint. It serves until the test binary exits.
pub fn start(upstream: &str, spoil: Spoil, min_body: usize) -> String {
    listen(upstream, move |client, upstream| {
        let (head, mut body) = read_request(&mut BufReader::new(client.try_clone()?))?;
        let method = head[0].split(' ').next().unwrap_or("").to_owned();
        if spoil == Spoil::Uploads
            && matches!(method.as_str(), "POST" | "PUT")
            && body.len() >= min_body
        {
            let middle = body.len() / 2;
            body[middle] ^= 0xff;
        }
        let mut server = BufReader::new(forward(upstream, &head, &body)?);
        let answer = read_head(&mut server)?;
        let mut rest = Vec::new();
        server.read_to_end(&mut rest)?;
        let length: usize = header(&answer, "content-length")
            .and_then(|value| value.parse().ok())
            .unwrap_or(rest.len());
        if spoil == Spoil::Downloads
            && method == "GET"
            && length >= min_body
            && rest.len() >= min_body
        {
            let middle = rest.len() / 2;
            rest[middle] ^= 0xff;
        }
        let mut client = client;
        client.write_all(format!("{}\r\n\r\n", answer.join("\r\n")).as_bytes())?;
        client.write_all(&rest)?;
        client.flush()
    })
}
