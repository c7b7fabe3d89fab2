//! The HTTP/1.1 the test proxies speak: reading a request's head and body,
//! and forwarding it upstream on a connection of its own.

use std::io::{BufRead, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// Listens on 127.0.0.1 for a proxy to `upstream` (`http://127.0.0.1:PORT`)
/// and hands each connection to `serve` on a thread of its own, with the
/// upstream as `HOST:PORT`, until the process exits. Answers the proxy's
/// endpoint (`http://127.0.0.1:PORT`). A broken connection only fails the
/// request it carried.
pub fn listen(
    upstream: &str,
    serve: impl Fn(TcpStream, &str) -> std::io::Result<()> + Send + Sync + 'static,
) -> String {
    let upstream = upstream
        .strip_prefix("http://")
        .expect("an http endpoint")
        .trim_end_matches('/')
        .to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let (serve, upstream) = (serve.clone(), upstream.clone());
            std::thread::spawn(move || {
                let _ = serve(client, &upstream);
            });
        }
    });
    endpoint
}

/// Reads one request from `client`: its head (request line first) and body.
pub fn read_request(client: &mut impl BufRead) -> std::io::Result<(Vec<String>, Vec<u8>)> {
    let head = read_head(client)?;
    let length: usize = header(&head, "content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    client.read_exact(&mut body)?;
    Ok((head, body))
}

/// Sends `head` and `body` to `upstream` (`HOST:PORT`) with `Connection:
/// close` (one request per connection: the answer ends with the stream).
pub fn forward(upstream: &str, head: &[String], body: &[u8]) -> std::io::Result<TcpStream> {
    let mut server = TcpStream::connect(upstream)?;
    let mut request: Vec<&str> = head
        .iter()
        .map(String::as_str)
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    request.push("Connection: close");
    server.write_all(format!("{}\r\n\r\n", request.join("\r\n")).as_bytes())?;
    // A server may answer and close before it has read the body (a refused
    // precondition): its answer is still there to read.
    let _ = server.write_all(body);
    Ok(server)
}

/// The request or status line and the header lines, without the blank line.
pub fn read_head(reader: &mut impl BufRead) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

/// The value of header `name` (case-insensitive), if present.
pub fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}
