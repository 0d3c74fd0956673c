//! The HTTP transport the Azure SDK pipelines send through: hyper + rustls with the ring provider (the TLS stack
//! kube already compiles), instead of azure_core's default reqwest 0.13 client, which would pull aws-lc-rs. The
//! trusted roots are the system's (`rustls-native-certs`, which honours `SSL_CERT_FILE`), falling back to the
//! Mozilla roots when the system has none, plus any extra PEM CAs the factory was given (tests: the fake's CA).
//! Connections go through the store's egress rules ([`crate::net::connect`]) and answers are read up to
//! [`crate::net::body::MAX_RESPONSE_BYTES`]: Key Vault, Entra ID (`customCloudConfig.activeDirectoryEndpoint`, a
//! tenant's choice for a SecretStore) and IMDS are all read through here.
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::error::{Error, ErrorKind};
use azure_core::http::headers::{HeaderName, HeaderValue, Headers};
use azure_core::http::{AsyncRawResponse, Body, HttpClient, Method, Request};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// How long one request may take end to end (connect, TLS, response body).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An [`HttpClient`] over hyper-rustls; cheap to clone (one connection pool).
#[derive(Clone)]
pub(crate) struct HyperTransport {
    client: Client<hyper_rustls::HttpsConnector<crate::net::connect::EgressConnector>, Full<bytes::Bytes>>,
    budget: crate::net::body::Budget,
}

impl std::fmt::Debug for HyperTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HyperTransport")
    }
}

/// The root store: system roots (or Mozilla's when there are none) plus `extra_pem`.
pub(crate) fn root_store(extra_pem: &[u8]) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if !extra_pem.is_empty() {
        for cert in CertificateDer::pem_slice_iter(extra_pem) {
            let cert = cert.map_err(|e| format!("invalid CA certificate PEM: {e}"))?;
            roots.add(cert).map_err(|e| format!("invalid CA certificate: {e}"))?;
        }
    }
    Ok(roots)
}

impl HyperTransport {
    pub(crate) fn new(
        extra_ca_pem: &[u8],
        egress: &crate::net::egress::Egress,
        budget: crate::net::body::Budget,
    ) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_root_certificates(root_store(extra_ca_pem)?)
            .with_no_client_auth();
        let http = crate::net::connect::http_connector(egress, Duration::from_secs(10));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Ok(Self { client, budget })
    }
}

fn method(m: Method) -> azure_core::Result<http::Method> {
    http::Method::from_bytes(m.as_str().as_bytes())
        .map_err(|e| Error::with_error(ErrorKind::Other, e, "unsupported HTTP method"))
}

#[async_trait]
impl HttpClient for HyperTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let body = match request.body() {
            Body::Bytes(b) => b.clone(),
            #[allow(unreachable_patterns)]
            _ => {
                return Err(Error::with_message(
                    ErrorKind::Other,
                    "streaming request bodies are not supported by syncret's transport",
                ));
            }
        };
        let mut builder = http::Request::builder()
            .method(method(request.method())?)
            .uri(request.url().as_str());
        for (name, value) in request.headers().iter() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let req = builder
            .body(Full::new(body))
            .map_err(|e| Error::with_error(ErrorKind::Other, e, "building the HTTP request"))?;
        let send = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| Error::with_error(ErrorKind::Connection, e, "sending the HTTP request"))?;
            let (parts, body) = resp.into_parts();
            let bytes = crate::net::body::read(body, crate::net::body::MAX_RESPONSE_BYTES, &self.budget)
                .await
                .map_err(|e| Error::with_error(ErrorKind::Io, e, "reading the HTTP response"))?;
            // The SDK parses JSON answers into its models: their values are counted first.
            let json = parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("json"));
            if json {
                crate::net::body::check_json(&bytes, crate::net::body::MAX_JSON_VALUES)
                    .map_err(|e| Error::with_error(ErrorKind::Io, e, "reading the HTTP response"))?;
            }
            Ok::<_, Error>((parts, bytes))
        };
        let (parts, bytes) = tokio::time::timeout(REQUEST_TIMEOUT, send)
            .await
            .map_err(|_| Error::with_message(ErrorKind::Io, "the request timed out"))??;
        let mut headers = Headers::new();
        for (name, value) in &parts.headers {
            if let Ok(v) = value.to_str() {
                headers.insert(
                    HeaderName::from(name.as_str().to_owned()),
                    HeaderValue::from(v.to_owned()),
                );
            }
        }
        Ok(AsyncRawResponse::from_bytes(
            parts.status.as_u16().into(),
            headers,
            bytes,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every connection with a chunked body that never ends.
    async fn endless() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    let _ = conn
                        .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                        .await;
                    let chunk = format!("{:x}\r\n{}\r\n", 65536, "0".repeat(65536));
                    while conn.write_all(chunk.as_bytes()).await.is_ok() {}
                });
            }
        });
        format!("http://{addr}/token")
    }

    /// The error of a GET to the endless server through a transport with these egress rules.
    async fn failure(egress: crate::net::egress::Egress) -> String {
        let t = HyperTransport::new(&[], &egress, crate::net::body::Budget::default()).unwrap();
        let url = azure_core::http::Url::parse(&endless().await).unwrap();
        let err = t
            .execute_request(&Request::new(url, Method::Get))
            .await
            .expect_err("refused");
        crate::error::error_chain(&err)
    }

    #[tokio::test]
    async fn an_endless_answer_ends_at_the_cap() {
        let chain = failure(crate::net::egress::Egress::unrestricted()).await;
        assert!(chain.contains("larger than the limit of 16 MiB"), "{chain}");
    }

    #[tokio::test]
    async fn a_namespaced_stores_transport_does_not_reach_loopback() {
        let policy = std::sync::Arc::new(crate::net::egress::EgressPolicy::default());
        let chain = failure(crate::net::egress::Egress::restricted(policy)).await;
        assert!(
            chain.contains("refused by syncret's egress policy: loopback"),
            "{chain}"
        );
    }
}
