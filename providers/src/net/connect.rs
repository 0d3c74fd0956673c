//! The TCP connector of the hyper-based clients (the Azure transport, the kubernetes provider's remote apiserver
//! client): hyper-util's `HttpConnector` resolving names through the egress policy, behind a check of IP-literal
//! hosts, which the `HttpConnector` connects to without resolving.
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;

use super::egress::{Egress, EgressResolver};

/// An `HttpConnector` (plain TCP; TLS goes on top) applying `egress` to every connection.
pub fn http_connector(egress: &Egress, connect_timeout: Duration) -> EgressConnector {
    let mut http = HttpConnector::new_with_resolver(egress.resolver());
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    EgressConnector {
        inner: http,
        egress: egress.clone(),
    }
}

/// See [`http_connector`].
#[derive(Clone, Debug)]
pub struct EgressConnector {
    inner: HttpConnector<EgressResolver>,
    egress: Egress,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<http::Uri> for EgressConnector {
    type Response = <HttpConnector<EgressResolver> as tower_service::Service<http::Uri>>::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let checked = self.egress.check_host(uri.host().unwrap_or_default());
        // The connector that was polled ready serves this call; a fresh clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            checked?;
            inner.call(uri).await.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tower_service::Service as _;

    #[tokio::test]
    async fn literals_and_names_are_both_checked() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let restricted = Egress::restricted(Arc::new(super::super::egress::EgressPolicy::default()));
        let mut c = http_connector(&restricted, Duration::from_secs(2));
        for host in ["127.0.0.1", "localhost"] {
            let uri: http::Uri = format!("http://{host}:{port}/").parse().unwrap();
            let err = c.call(uri).await.unwrap_err();
            let mut chain = err.to_string();
            let mut src = err.source();
            while let Some(s) = src {
                chain.push_str(&format!(": {s}"));
                src = s.source();
            }
            assert!(
                chain.contains("refused by syncret's egress policy: loopback"),
                "{host}: {chain}"
            );
        }
        let mut open = http_connector(&Egress::unrestricted(), Duration::from_secs(2));
        let uri: http::Uri = format!("http://127.0.0.1:{port}/").parse().unwrap();
        assert!(open.call(uri).await.is_ok());
    }
}
