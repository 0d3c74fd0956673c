//! The loopback HTTP(S) server under the SaaS test servers: each service (`onepassword.rs`, `doppler.rs`, …) is an
//! [`Api`] holding its state; this server records every request (so tests count calls), and can be told to fail
//! like a real service does: an outage (`503` to everything) or rate limiting (`429` with `Retry-After` for the
//! next N requests).
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The decoded query (`+` and `%XX`); repeated names keep the last value.
    pub query: BTreeMap<String, String>,
    /// Header names lower-case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or_default()
    }

    pub fn q(&self, name: &str) -> &str {
        self.query.get(name).map(String::as_str).unwrap_or_default()
    }

    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The path split at `/` (percent-decoded), without the empty first segment.
    pub fn segments(&self) -> Vec<String> {
        self.path
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect()
    }

    /// `"GET /v1/vaults"`: method and path, for counting.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// `%XX` decoded (a path segment: `+` stays `+`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(status: u16, v: serde_json::Value) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: v.to_string().into_bytes(),
        }
    }

    pub fn text(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// A service's behaviour.
pub trait Api: Send + Sync + 'static {
    fn handle(&self, req: &Request) -> Answer;
}

#[derive(Default)]
struct Control {
    outage: AtomicBool,
    /// The next this many requests answer 429.
    throttle: AtomicUsize,
    retry_after: Mutex<String>,
}

/// A running server; stops when dropped.
pub struct Server {
    addr: SocketAddr,
    tls: bool,
    log: Arc<Mutex<Vec<Request>>>,
    control: Arc<Control>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Plain HTTP on a free loopback port.
    pub async fn start(api: Arc<dyn Api>) -> anyhow::Result<Server> {
        Self::start_with(api, None).await
    }

    /// HTTPS with the certificate and key in `dir` (`server.crt`, `server.key`).
    pub async fn start_tls(api: Arc<dyn Api>, dir: &std::path::Path) -> anyhow::Result<Server> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(dir.join("server.crt"))?.collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key"))?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Self::start_with(api, Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_with(api: Arc<dyn Api>, tls: Option<tokio_rustls::TlsAcceptor>) -> anyhow::Result<Server> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log: Arc<Mutex<Vec<Request>>> = Arc::default();
        let control: Arc<Control> = Arc::default();
        let is_tls = tls.is_some();
        let (log2, control2) = (log.clone(), control.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (api, log, control, tls) = (api.clone(), log2.clone(), control2.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let (api, log, control) = (api.clone(), log.clone(), control.clone());
                        async move { Ok::<_, Infallible>(serve(req, &*api, &log, &control).await) }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(s), service).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        Ok(Server {
            addr,
            tls: is_tls,
            log,
            control,
            task,
        })
    }

    /// `http(s)://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    /// How many requests `pred` accepts.
    pub fn count(&self, pred: impl Fn(&Request) -> bool) -> usize {
        self.log.lock().unwrap().iter().filter(|r| pred(r)).count()
    }

    /// Requests by `"METHOD /path"`.
    pub fn lines(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in self.log.lock().unwrap().iter() {
            *out.entry(r.line()).or_default() += 1;
        }
        out
    }

    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
    }

    /// While on, every request answers `503 Service Unavailable` (and is still recorded).
    pub fn outage(&self, on: bool) {
        self.control.outage.store(on, Ordering::SeqCst);
    }

    /// The next `n` requests answer `429 Too Many Requests` with `Retry-After: retry_after`.
    pub fn throttle(&self, n: usize, retry_after: &str) {
        *self.control.retry_after.lock().unwrap() = retry_after.to_string();
        self.control.throttle.store(n, Ordering::SeqCst);
    }
}

async fn serve(
    req: hyper::Request<Incoming>,
    api: &dyn Api,
    log: &Mutex<Vec<Request>>,
    control: &Control,
) -> hyper::Response<Full<Bytes>> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let rec = Request {
        method,
        path,
        query,
        headers,
        body,
    };
    log.lock().unwrap().push(rec.clone());
    let answer = if control.outage.load(Ordering::SeqCst) {
        Answer::text(503, "service unavailable")
    } else if control
        .throttle
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        let after = control.retry_after.lock().unwrap().clone();
        Answer::json(429, serde_json::json!({"message": "rate limit exceeded"})).with_header("retry-after", &after)
    } else {
        api.handle(&rec)
    };
    let mut resp = hyper::Response::builder().status(answer.status);
    for (k, v) in &answer.headers {
        resp = resp.header(k, v);
    }
    resp.body(Full::new(Bytes::from(answer.body))).unwrap()
}
