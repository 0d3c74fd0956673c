//! A hostile HTTP/1.1 server on loopback whose answer is chosen by the request path (one server, many behaviours),
//! for tests that try the operator the way an attacker would. What it does
//! depends on the first segment of the request path:
//!
//! - `/ratelimit/…`: `429 Too Many Requests` with `Retry-After: 18446744073709551615` (u64::MAX seconds);
//! - `/hang/…`: reads the request and never answers; the connection stays open until the server is dropped;
//! - `/huge-headers/…`: an endless header section (one 1 KiB header line after another);
//! - `/endless/…`: `200 OK` and a body that never ends;
//! - `/ok/<value>`: `200 OK` with `{"value": "<value>"}` (a well-behaved answer).
//!
//! Every request is recorded (method, path, headers, body) so a test can assert what reached the server.
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// One request as received (head and up to 64 KiB of body).
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub head: String,
    pub body: Vec<u8>,
}

/// See the module docs. Stops (and closes every held connection) when dropped.
pub struct PathServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: CancellationToken,
}

impl PathServer {
    pub async fn start() -> anyhow::Result<PathServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (rec, stop2) = (received.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let conn = tokio::select! { c = listener.accept() => c, _ = stop2.cancelled() => return };
                let Ok((stream, _)) = conn else { continue };
                let (rec, stop) = (rec.clone(), stop2.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = serve(stream, rec) => {}
                        _ = stop.cancelled() => {}
                    }
                });
            }
        });
        Ok(PathServer { addr, received, stop })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Requests whose path starts with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.received().iter().filter(|r| r.path.starts_with(prefix)).count()
    }
}

impl Drop for PathServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(mut stream: TcpStream, received: Arc<Mutex<Vec<Received>>>) {
    // Keep-alive: one request after another on the connection.
    loop {
        let Some(req) = read_request(&mut stream).await else {
            return;
        };
        let first = req
            .path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let value = req.path.rsplit('/').next().unwrap_or_default().to_string();
        if let Ok(mut r) = received.lock() {
            r.push(req);
        }
        let ok =
            match first.as_str() {
                "ratelimit" => write(
                    &mut stream,
                    "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 18446744073709551615\r\nContent-Length: 0\r\n\r\n",
                )
                .await,
                "hang" => {
                    // Never answer; hold the connection open.
                    std::future::pending::<()>().await;
                    false
                }
                "huge-headers" => {
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n").await;
                    let line = format!("X-Filler: {}\r\n", "a".repeat(1024));
                    while stream.write_all(line.as_bytes()).await.is_ok() {}
                    false
                }
                "endless" => {
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"value\": \"")
                        .await;
                    let chunk = vec![b'a'; 64 * 1024];
                    while stream.write_all(&chunk).await.is_ok() {}
                    false
                }
                "ok" => {
                    let body = serde_json::json!({ "value": value }).to_string();
                    write(
                        &mut stream,
                        &format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        ),
                    )
                    .await
                }
                _ => write(&mut stream, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").await,
            };
        if !ok {
            return;
        }
    }
}

async fn write(stream: &mut TcpStream, text: &str) -> bool {
    stream.write_all(text.as_bytes()).await.is_ok()
}

/// Reads one request: the head, then `Content-Length` bytes of body (at most 64 KiB kept).
async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        if buf.len() > 1 << 20 {
            return None;
        }
        let n = stream.read(&mut byte).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut body = buf[end + 4..].to_vec();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while body.len() < len.min(64 * 1024) {
        let n = stream.read(&mut byte).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&byte[..n]);
    }
    let mut first = head.lines().next().unwrap_or_default().split_whitespace();
    Some(Received {
        method: first.next().unwrap_or_default().to_string(),
        path: first.next().unwrap_or_default().to_string(),
        head,
        body,
    })
}
