//! HTTP/1.1 spoken by hand over a TCP socket, for what a well-behaved client library will not
//! do: send headers and stop, declare a body and stall, or read the answer before sending the
//! body at all.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

/// How long a test waits for an answer that must come.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// A connection to the app.
pub async fn connect(app: &TestApp) -> TcpStream {
    let addr = app.address.trim_start_matches("http://");
    TcpStream::connect(addr).await.unwrap()
}

/// Sends `head` (request line and headers, without the blank line) and the blank line.
pub async fn send_head(stream: &mut TcpStream, head: &str) {
    stream
        .write_all(format!("{head}\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
}

/// An answer: status, headers (lowercased names) and the JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one answer with a `Content-Length` body (what the gateway sends), within
/// [`ANSWER_WITHIN`].
pub async fn read_answer(stream: &mut (impl AsyncRead + Unpin)) -> Answer {
    tokio::time::timeout(ANSWER_WITHIN, async {
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 4096];
            let n = stream
                .read(&mut chunk)
                .await
                .expect("the answer is readable");
            assert!(
                n > 0,
                "closed before an answer: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < len {
            let mut chunk = vec![0u8; len - body.len()];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed in the middle of the answer's body");
            body.extend_from_slice(&chunk[..n]);
        }
        Answer {
            status,
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        }
    })
    .await
    .expect("an answer within the time bound")
}

/// Waits until the server closes `stream` (a read gives end of file or a reset), within
/// [`ANSWER_WITHIN`]; returns what it sent before closing.
pub async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    tokio::time::timeout(ANSWER_WITHIN, async {
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection within the time bound")
}

/// The value of a metric line of the app's `/metrics` (0 when absent).
pub async fn metric(app: &TestApp, line_prefix: &str) -> f64 {
    app.metrics_text()
        .await
        .lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}
