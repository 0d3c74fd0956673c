//! A small HTTP(S) server for the webhook provider's tests: plain HTTP/1.1 on loopback (TLS with a certificate from
//! a CA made with openssl when asked), every request recorded (method, path, decoded query, headers, body), and the
//! answer computed by the test's handler (status, body, optional delay).
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string, as sent.
    pub raw_query: String,
    /// The query, decoded (`+` and `%XX`).
    pub query: BTreeMap<String, String>,
    /// Header names lower-case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or_default()
    }

    pub fn q(&self, name: &str) -> &str {
        self.query.get(name).map(String::as_str).unwrap_or_default()
    }
}

/// What to answer.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, v: serde_json::Value) -> Reply {
        Reply {
            status,
            body: v.to_string().into_bytes(),
            delay: Duration::ZERO,
        }
    }

    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }
}

pub type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// A running server; stops when dropped.
pub struct Server {
    addr: SocketAddr,
    tls: bool,
    records: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Plain HTTP.
    pub async fn start(handler: Handler) -> anyhow::Result<Server> {
        Self::start_with(handler, None).await
    }

    /// HTTPS with `cert`'s certificate and key.
    pub async fn start_tls(handler: Handler, cert: &TestPki) -> anyhow::Result<Server> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(cert.dir.join("server.crt"))?.collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(cert.dir.join("server.key"))?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Self::start_with(handler, Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_with(handler: Handler, tls: Option<tokio_rustls::TlsAcceptor>) -> anyhow::Result<Server> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let records: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let is_tls = tls.is_some();
        let recs = records.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = handler.clone();
                let recs = recs.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let handler = handler.clone();
                        let recs = recs.clone();
                        async move { Ok::<_, Infallible>(handle(req, &handler, &recs).await) }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        // A failed handshake (an untrusted certificate on the client's side) just ends here.
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
            records,
            task,
        })
    }

    /// `http(s)://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.records.lock().unwrap().clone()
    }
}

async fn handle(req: Request<Incoming>, handler: &Handler, recs: &Mutex<Vec<Recorded>>) -> Response<Full<Bytes>> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or_default().to_string();
    let query = url::form_urlencoded::parse(raw_query.as_bytes())
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
    let rec = Recorded {
        method,
        path,
        raw_query,
        query,
        headers,
        body,
    };
    recs.lock().unwrap().push(rec.clone());
    let reply = handler(&rec);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    Response::builder()
        .status(reply.status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap()
}

/// A CA and a server certificate for `127.0.0.1`/`localhost`, made with the openssl CLI in a temp dir (removed on
/// drop): `ca.crt`, `server.crt`, `server.key`.
pub struct TestPki {
    pub dir: PathBuf,
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl").args(args).current_dir(dir).output()?;
    anyhow::ensure!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl TestPki {
    pub fn new() -> anyhow::Result<TestPki> {
        let dir = std::env::temp_dir().join(syncret_tests::unique_name("webhook-pki"));
        std::fs::create_dir_all(&dir)?;
        let pki = TestPki { dir };
        let d = pki.dir.as_path();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=syncret webhook test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(d, &ca)?;
        let mut csr = vec!["req"];
        csr.extend(ec);
        csr.extend(["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
        openssl(d, &csr)?;
        std::fs::write(
            d.join("ext.cnf"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )?;
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        )?;
        Ok(pki)
    }

    pub fn ca_pem(&self) -> anyhow::Result<String> {
        Ok(std::fs::read_to_string(self.dir.join("ca.crt"))?)
    }
}
