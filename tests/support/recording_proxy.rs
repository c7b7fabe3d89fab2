//! An HTTP proxy on 127.0.0.1 that relays every request to one server and
//! records what credentials each carried: the access key its signature
//! names and its session token, and for STS calls the action and the
//! answer (the credentials STS issued). Each connection carries one
//! request (`Connection: close` is added, an unsigned header).

use std::io::{BufReader, Read as _, Write as _};
use std::sync::{Arc, Mutex};

use super::http_head::{forward, header, listen, read_request};

/// One request relayed.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The request line.
    pub line: String,
    /// The access key the signature names (`Credential=KEY/…`); empty
    /// for an unsigned request.
    pub key: String,
    /// `x-amz-security-token`, or empty.
    pub token: String,
    /// `x-amz-content-sha256`: the payload's hash the signature covers,
    /// or `UNSIGNED-PAYLOAD`; empty when absent.
    pub content_sha256: String,
    /// The STS action of a form-encoded call (`AssumeRole`, …), or empty
    /// for an S3 request.
    pub action: String,
    /// The form an STS call sent (its parameters), or empty.
    pub form: String,
    /// The answer's body, for STS calls.
    pub answer: String,
}

/// Credentials STS issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The access key.
    pub key: String,
    /// The session token.
    pub token: String,
}

/// A running proxy; it serves until the test binary exits.
pub struct RecordingProxy {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
}

impl RecordingProxy {
    /// Every request relayed so far, in the order their answers came.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }

    /// The S3 requests relayed so far.
    pub fn s3_requests(&self) -> Vec<Exchange> {
        let mut exchanges = self.exchanges();
        exchanges.retain(|exchange| exchange.action.is_empty());
        exchanges
    }

    /// The STS calls of `action` so far, with the credentials each issued.
    pub fn issued_by(&self, action: &str) -> Vec<(Exchange, Issued)> {
        self.exchanges()
            .into_iter()
            .filter(|exchange| exchange.action == action)
            .map(|exchange| {
                let issued = Issued {
                    key: between(&exchange.answer, "<AccessKeyId>", "</AccessKeyId>"),
                    token: between(&exchange.answer, "<SessionToken>", "</SessionToken>"),
                };
                (exchange, issued)
            })
            .collect()
    }
}

/// The text between `start` and `end` in `text`, or empty.
fn between(text: &str, start: &str, end: &str) -> String {
    text.split_once(start)
        .and_then(|(_, rest)| rest.split_once(end))
        .map(|(inside, _)| inside.to_owned())
        .unwrap_or_default()
}

/// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`).
pub fn start(upstream: &str) -> RecordingProxy {
    let exchanges = Arc::new(Mutex::new(Vec::new()));
    let recorded = exchanges.clone();
    let endpoint = listen(upstream, move |client, upstream| {
        relay(client, upstream, &recorded)
    });
    RecordingProxy {
        endpoint,
        exchanges,
    }
}

fn relay(
    client: std::net::TcpStream,
    upstream: &str,
    recorded: &Mutex<Vec<Exchange>>,
) -> std::io::Result<()> {
    let (head, body) = read_request(&mut BufReader::new(client.try_clone()?))?;
    let key = header(&head, "authorization")
        .and_then(|value| value.split_once("Credential="))
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(key, _)| key.to_owned())
        .unwrap_or_default();
    let token = header(&head, "x-amz-security-token")
        .unwrap_or_default()
        .to_owned();
    let content_sha256 = header(&head, "x-amz-content-sha256")
        .unwrap_or_default()
        .to_owned();
    let form = header(&head, "content-type")
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let form = if form {
        String::from_utf8_lossy(&body).into_owned()
    } else {
        String::new()
    };
    let action = between(&format!("&{form}&"), "&Action=", "&");
    let mut server = forward(upstream, &head, &body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    let answer_body = if action.is_empty() {
        String::new()
    } else {
        let text = String::from_utf8_lossy(&answer);
        text.split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default()
    };
    recorded.lock().unwrap().push(Exchange {
        line: head[0].clone(),
        key,
        token,
        content_sha256,
        action,
        form,
        answer: answer_body,
    });
    let mut client = client;
    client.write_all(&answer)?;
    client.flush()
}
