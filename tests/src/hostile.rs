//! A hostile HTTP/1.1 server on loopback for tenant-boundary tests: it records every connection and every byte it
//! receives (so a test can assert that nothing of the operator's reached it), and answers the way an attacker
//! would — an endless body, a huge `Content-Length`, endless headers, a `429` with an absurd `Retry-After`, a
//! redirect, or a plain answer. Raw TCP, no HTTP library: it must be able to say things a well-behaved server
//! never would.

pub mod by_path;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the server answers every request.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// `status`, extra header lines (each ending in `\r\n`), and a body sent with its `Content-Length`.
    Respond {
        status: u16,
        headers: String,
        body: Vec<u8>,
    },
    /// `200` with a chunked body that never ends (64 KiB chunks of `0`, as fast as the client reads).
    EndlessBody,
    /// `200` announcing `Content-Length: <n>` and then sending `0` bytes until the client hangs up.
    HugeContentLength(u64),
    /// `200` followed by header lines forever.
    EndlessHeaders,
    /// Accepts, reads the request, never answers.
    Silent,
}

impl Behaviour {
    /// `200` with a JSON body.
    pub fn json(body: &serde_json::Value) -> Self {
        Behaviour::Respond {
            status: 200,
            headers: "content-type: application/json\r\n".into(),
            body: body.to_string().into_bytes(),
        }
    }

    /// `429 Too Many Requests` with this `Retry-After`.
    pub fn throttle(retry_after: &str) -> Self {
        Behaviour::Respond {
            status: 429,
            headers: format!("retry-after: {retry_after}\r\n"),
            body: Vec::new(),
        }
    }

    /// A `302` to `location`.
    pub fn redirect(location: &str) -> Self {
        Behaviour::Respond {
            status: 302,
            headers: format!("location: {location}\r\n"),
            body: Vec::new(),
        }
    }
}

#[derive(Default)]
struct Log {
    connections: usize,
    received: Vec<u8>,
    requests: Vec<String>,
}

/// A running hostile server; stops when dropped.
pub struct HostileServer {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HostileServer {
    /// Listens on `127.0.0.1:<free port>`.
    pub async fn start(behaviour: Behaviour) -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0", behaviour).await
    }

    /// Listens on `bind` (e.g. `127.0.0.2:0`: another loopback address, which an allowlist can single out).
    pub async fn start_on(bind: &str, behaviour: Behaviour) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Log::default()));
        let l = log.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                l.lock().unwrap().connections += 1;
                tokio::spawn(serve(conn, behaviour.clone(), l.clone()));
            }
        });
        Ok(Self { addr, log, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many TCP connections it accepted.
    pub fn connections(&self) -> usize {
        self.log.lock().unwrap().connections
    }

    /// Every byte received, all connections together.
    pub fn received(&self) -> Vec<u8> {
        self.log.lock().unwrap().received.clone()
    }

    /// The request lines (`GET /path HTTP/1.1`) received.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().requests.clone()
    }
}

async fn serve(mut conn: TcpStream, behaviour: Behaviour, log: Arc<Mutex<Log>>) {
    let mut buf = Vec::new();
    loop {
        // One request: the head, then a Content-Length body.
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            match tokio::time::timeout(Duration::from_secs(60), conn.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => {
                    log.lock().unwrap().received.extend_from_slice(&chunk[..n]);
                    buf.extend_from_slice(&chunk[..n]);
                }
                _ => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + 4 + len {
            match conn.read(&mut chunk).await {
                Ok(n) if n > 0 => {
                    log.lock().unwrap().received.extend_from_slice(&chunk[..n]);
                    buf.extend_from_slice(&chunk[..n]);
                }
                _ => return,
            }
        }
        buf.drain(..head_end + 4 + len);
        log.lock()
            .unwrap()
            .requests
            .push(head.lines().next().unwrap_or_default().to_string());
        let ok = match &behaviour {
            Behaviour::Respond { status, headers, body } => {
                let resp = format!(
                    "HTTP/1.1 {status} Hostile\r\n{headers}content-length: {}\r\n\r\n",
                    body.len()
                );
                conn.write_all(resp.as_bytes()).await.is_ok() && conn.write_all(body).await.is_ok()
            }
            Behaviour::EndlessBody => {
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
                    )
                    .await;
                let zeros = vec![b'0'; 64 << 10];
                let mut frame = format!("{:x}\r\n", zeros.len()).into_bytes();
                frame.extend_from_slice(&zeros);
                frame.extend_from_slice(b"\r\n");
                while conn.write_all(&frame).await.is_ok() {}
                false
            }
            Behaviour::HugeContentLength(n) => {
                let _ = conn
                    .write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n\r\n").as_bytes())
                    .await;
                let zeros = vec![b'0'; 64 << 10];
                while conn.write_all(&zeros).await.is_ok() {}
                false
            }
            Behaviour::EndlessHeaders => {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\n").await;
                let mut i = 0u64;
                loop {
                    i += 1;
                    let line = format!("x-hostile-{i}: {}\r\n", "h".repeat(1000));
                    if conn.write_all(line.as_bytes()).await.is_err() {
                        break;
                    }
                }
                false
            }
            Behaviour::Silent => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                false
            }
        };
        if !ok {
            return;
        }
    }
}
