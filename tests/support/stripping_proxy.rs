//! An HTTP proxy on 127.0.0.1 that drops every precondition on its way to
//! the store: the `If-Match` and `If-None-Match` headers (S3, Azure) and
//! the `ifGenerationMatch` and `ifGenerationNotMatch` parameters (GCS). In
//! front of a store it makes one that accepts conditional writes and
//! ignores them, which `silt datastore doctor` must refuse.

use std::io::BufReader;

use super::http_head::{forward, listen, read_request};

/// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`); answers its
/// endpoint. It serves until the test binary exits.
pub fn start(upstream: &str) -> String {
    listen(upstream, |client, upstream| {
        let (mut head, body) = read_request(&mut BufReader::new(client.try_clone()?))?;
        head.retain(|line| {
            let line = line.to_ascii_lowercase();
            !line.starts_with("if-match:") && !line.starts_with("if-none-match:")
        });
        head[0] = without_conditions(&head[0]);
        let mut server = forward(upstream, &head, &body)?;
        let mut client = client;
        std::io::copy(&mut server, &mut client)?;
        Ok(())
    })
}

/// A request line with its condition parameters removed.
fn without_conditions(line: &str) -> String {
    let mut parts = line.splitn(3, ' ');
    let (method, target, version) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let Some((path, query)) = target.split_once('?') else {
        return line.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            !pair.starts_with("ifGenerationMatch=") && !pair.starts_with("ifGenerationNotMatch=")
        })
        .collect();
    format!("{method} {path}?{} {version}", kept.join("&"))
}
