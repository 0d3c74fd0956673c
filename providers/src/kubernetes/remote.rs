//! The client of a remote apiserver, built from inline data only, and bounded.
//!
//! A kubeconfig in `authRef` is a tenant's document: kube's kubeconfig loader would run its `exec` command, call
//! its `auth-provider`, read its `tokenFile`, `client-certificate`, `client-key` and `certificate-authority`
//! paths, send `username`/`password`, impersonate, and go through its `proxy-url`. [`from_kubeconfig`] accepts
//! only `server`, `certificate-authority-data`, `tls-server-name`, `insecure-skip-tls-verify`, `token`,
//! `client-certificate-data` and `client-key-data`, refuses every other field it finds with a condition naming
//! it, and [`client`] builds the kube client from those values alone: our own tower stack over an
//! egress-checked connector, whose every answer is read within [`crate::net::body::Limits`] and a timeout.
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use kube::client::ConfigExt as _;
use kube::config::{Kubeconfig, NamedAuthInfo, NamedCluster};

use super::{CONNECT_TIMEOUT, REQUEST_TIMEOUT};
use crate::error::{ProviderError, Result};
use crate::net::body::{Budget, Limits};
use crate::net::egress::Egress;
use crate::value::Unloggable;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the client is built from.
#[derive(Default)]
pub(super) struct Settings {
    pub server: String,
    /// PEM roots (empty: the platform's).
    pub ca_pem: Vec<u8>,
    pub tls_server_name: Option<String>,
    pub insecure: bool,
    pub token: Option<Unloggable<String>>,
    pub client_cert_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Unloggable<Vec<u8>>>,
}

/// The fields a kubeconfig may use, for the refusal message.
const ALLOWED: &str = "server, certificate-authority-data, tls-server-name, insecure-skip-tls-verify, token, \
                       client-certificate-data, client-key-data";

fn refuse(field: &str, what: String) -> ProviderError {
    ProviderError::Policy {
        field: field.to_string(),
        message: format!(
            "kubeconfig {what} is not allowed: syncret builds the remote client from inline data only ({ALLOWED})"
        ),
    }
}

/// Refuses any cluster field that reads a file or changes where connections go.
fn check_cluster(i: usize, c: &NamedCluster, field: &str) -> Result<()> {
    let Some(cluster) = &c.cluster else { return Ok(()) };
    let at = |name: &str| format!("clusters[{i}].cluster.{name}");
    if cluster.certificate_authority.is_some() {
        return Err(refuse(field, at("certificate-authority")));
    }
    if cluster.proxy_url.is_some() {
        return Err(refuse(field, at("proxy-url")));
    }
    Ok(())
}

/// Refuses any user field that runs a command, reads a file, sends a password, or impersonates.
fn check_user(i: usize, u: &NamedAuthInfo, field: &str) -> Result<()> {
    let Some(user) = &u.auth_info else { return Ok(()) };
    let at = |name: &str| format!("users[{i}].user.{name}");
    let refused = [
        (user.exec.is_some(), "exec"),
        (user.auth_provider.is_some(), "auth-provider"),
        (user.token_file.is_some(), "tokenFile"),
        (user.client_certificate.is_some(), "client-certificate"),
        (user.client_key.is_some(), "client-key"),
        (user.username.is_some(), "username"),
        (user.password.is_some(), "password"),
        (user.impersonate.is_some(), "as"),
        (user.impersonate_groups.is_some(), "as-groups"),
    ];
    match refused.iter().find(|(set, _)| *set) {
        Some((_, name)) => Err(refuse(field, at(name))),
        None => Ok(()),
    }
}

fn b64(field: &str, what: &str, data: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| ProviderError::invalid_config(field, format!("kubeconfig {what} is not valid base64")))
}

/// The settings of a kubeconfig's current context (or its only one), after refusing every field outside the
/// allowed inline set in *any* of its clusters and users. `field` names the store field (`…authRef`).
pub(super) fn from_kubeconfig(kc: &Kubeconfig, field: &str) -> Result<Settings> {
    for (i, c) in kc.clusters.iter().enumerate() {
        check_cluster(i, c, field)?;
    }
    for (i, u) in kc.auth_infos.iter().enumerate() {
        check_user(i, u, field)?;
    }
    let invalid = |m: &str| ProviderError::invalid_config(field, format!("invalid kubeconfig: {m}"));
    let context = match kc.current_context.as_deref().filter(|c| !c.is_empty()) {
        Some(name) => kc
            .contexts
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| invalid("current-context names no context"))?,
        None => match kc.contexts.as_slice() {
            [only] => only,
            _ => return Err(invalid("no current-context")),
        },
    };
    let context = context
        .context
        .as_ref()
        .ok_or_else(|| invalid("the context is empty"))?;
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| invalid("the context's cluster is missing"))?;
    let mut s = Settings {
        server: cluster
            .server
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("the cluster has no server"))?,
        tls_server_name: cluster.tls_server_name.clone(),
        insecure: cluster.insecure_skip_tls_verify.unwrap_or(false),
        ..Default::default()
    };
    if let Some(ca) = &cluster.certificate_authority_data {
        s.ca_pem = b64(field, "certificate-authority-data", ca)?;
    }
    let user = context
        .user
        .as_deref()
        .and_then(|name| kc.auth_infos.iter().find(|u| u.name == name))
        .and_then(|u| u.auth_info.as_ref());
    if let Some(user) = user {
        // kube keeps `token` and `client-key-data` as `secrecy` strings, which its kubeconfig serializer writes out:
        // read them back from that (no dependency on `secrecy`).
        let json = Unloggable(serde_json::to_value(user).map_err(|_| invalid("unreadable user"))?);
        let text = |name: &str| json.0.get(name).and_then(|v| v.as_str()).filter(|v| !v.is_empty());
        if let Some(token) = text("token") {
            s.token = Some(Unloggable(token.trim().to_string()));
        }
        if let Some(cert) = text("client-certificate-data") {
            s.client_cert_pem = Some(b64(field, "client-certificate-data", cert)?);
        }
        if let Some(key) = text("client-key-data") {
            s.client_key_pem = Some(Unloggable(b64(field, "client-key-data", key)?));
        }
    }
    Ok(s)
}

/// The remote client for `s`, defaulting to `namespace`, connecting under `egress` and charging answers to
/// `budget`. `field` names the store field for errors.
pub(super) fn client(
    s: Settings,
    namespace: &str,
    (egress, budget): (&Egress, &Budget),
    field: &str,
) -> Result<kube::Client> {
    let invalid = |m: String| ProviderError::invalid_config(field, m);
    let uri: http::Uri = s
        .server
        .trim()
        .parse()
        .map_err(|_| invalid("the server is not a valid URL".into()))?;
    if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.host().is_none() {
        return Err(invalid(
            "the server must be an https:// (or http://) URL with a host".into(),
        ));
    }
    let mut config = kube::Config::new(uri);
    config.default_namespace = namespace.to_string();
    config.accept_invalid_certs = s.insecure;
    config.tls_server_name = s.tls_server_name;
    config.default_retry = false;
    if !s.ca_pem.iter().all(u8::is_ascii_whitespace) {
        use rustls_pki_types::pem::PemObject as _;
        let ders = rustls_pki_types::CertificateDer::pem_slice_iter(&s.ca_pem)
            .map(|c| c.map(|c| c.as_ref().to_vec()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("invalid CA certificate PEM: {e}")))?;
        if ders.is_empty() {
            return Err(invalid("no PEM certificate in the CA bundle".into()));
        }
        config.root_cert = Some(ders);
    }
    // AuthInfo's secrets are `secrecy` strings: built through its own (de)serialization, inline fields only.
    let enc = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut user = serde_json::Map::new();
    if let Some(t) = &s.token {
        user.insert("token".into(), t.0.clone().into());
    }
    if let Some(c) = &s.client_cert_pem {
        user.insert("client-certificate-data".into(), enc(c).into());
    }
    if let Some(k) = &s.client_key_pem {
        user.insert("client-key-data".into(), enc(&k.0).into());
    }
    config.auth_info =
        serde_json::from_value(serde_json::Value::Object(user)).map_err(|_| invalid("invalid credentials".into()))?;
    let https = config
        .rustls_https_connector_with_connector(crate::net::connect::http_connector(egress, CONNECT_TIMEOUT))
        .map_err(|e| invalid(format!("TLS setup: {}", crate::error::error_chain(&e))))?;
    let hyper = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
    let auth = config
        .auth_layer()
        .map_err(|e| invalid(format!("credentials: {}", crate::error::error_chain(&e))))?;
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(auth)
        .map_err(BoxError::from)
        .service(hyper);
    let bounded = Bounded {
        inner: service,
        limits: Limits::default(),
        budget: budget.clone(),
        timeout: REQUEST_TIMEOUT,
    };
    Ok(kube::Client::new(bounded, namespace.to_string()))
}

/// Reads every answer whole, within `limits` (bytes, and JSON values before kube parses it) and `timeout`.
#[derive(Clone)]
struct Bounded<S> {
    inner: S,
    limits: Limits,
    budget: Budget,
    timeout: Duration,
}

/// A request that took longer than the timeout.
#[derive(Debug, thiserror::Error)]
#[error("the remote apiserver gave no complete answer within {}s", .0.as_secs())]
struct TimedOut(Duration);

impl<S, B> tower_service::Service<http::Request<kube::client::Body>> for Bounded<S>
where
    S: tower_service::Service<http::Request<kube::client::Body>, Response = http::Response<B>, Error = BoxError>
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    type Response = http::Response<Full<Bytes>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
        let fut = self.inner.call(req);
        let (limits, timeout, budget) = (self.limits, self.timeout, self.budget.clone());
        Box::pin(async move {
            let read = async {
                let resp = fut.await?;
                let (parts, body) = resp.into_parts();
                let bytes = crate::net::body::read(body, limits.bytes, &budget).await?;
                crate::net::body::check_json(&bytes, limits.json_values)?;
                Ok::<_, BoxError>(http::Response::from_parts(parts, Full::new(bytes)))
            };
            match tokio::time::timeout(timeout, read).await {
                Ok(r) => r,
                Err(_) => Err(Box::new(TimedOut(timeout)) as BoxError),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELD: &str = "spec.provider.kubernetes.authRef";

    fn kc(user: &str, cluster_extra: &str) -> Kubeconfig {
        Kubeconfig::from_yaml(&format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://10.0.0.1:6443\n{cluster_extra}contexts:\n- name: c\n  context: {{cluster: k, user: u}}\nusers:\n- name: u\n  user:\n{user}"
        ))
        .unwrap()
    }

    #[test]
    fn only_inline_fields_are_taken() {
        let s = from_kubeconfig(
            &kc(
                "    token: tok\n    client-certificate-data: Y2VydA==\n    client-key-data: a2V5\n",
                "    certificate-authority-data: Y2E=\n    tls-server-name: api\n    insecure-skip-tls-verify: true\n",
            ),
            FIELD,
        )
        .unwrap();
        assert_eq!(s.server, "https://10.0.0.1:6443");
        assert_eq!(s.token.as_ref().unwrap().0, "tok");
        assert_eq!(s.client_cert_pem.as_deref(), Some(&b"cert"[..]));
        assert_eq!(s.client_key_pem.as_ref().unwrap().0, b"key");
        assert_eq!(s.ca_pem, b"ca");
        assert_eq!(s.tls_server_name.as_deref(), Some("api"));
        assert!(s.insecure);
    }

    #[test]
    fn every_other_field_is_refused_by_name() {
        for (user, cluster, named) in [
            (
                "    exec: {command: /bin/sh, args: [-c, 'touch /tmp/x'], apiVersion: client.authentication.k8s.io/v1}\n",
                "",
                "users[0].user.exec",
            ),
            (
                "    auth-provider: {name: oidc, config: {}}\n",
                "",
                "users[0].user.auth-provider",
            ),
            (
                "    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n",
                "",
                "users[0].user.tokenFile",
            ),
            (
                "    client-certificate: /etc/cert\n",
                "",
                "users[0].user.client-certificate",
            ),
            ("    client-key: /etc/key\n", "", "users[0].user.client-key"),
            ("    username: admin\n", "", "users[0].user.username"),
            ("    password: pw\n", "", "users[0].user.password"),
            ("    as: system:admin\n", "", "users[0].user.as"),
            ("    as-groups: [system:masters]\n", "", "users[0].user.as-groups"),
            (
                "    token: t\n",
                "    certificate-authority: /etc/ca\n",
                "clusters[0].cluster.certificate-authority",
            ),
            (
                "    token: t\n",
                "    proxy-url: http://proxy:3128\n",
                "clusters[0].cluster.proxy-url",
            ),
        ] {
            let e = from_kubeconfig(&kc(user, cluster), FIELD).err().unwrap();
            assert_eq!(e.reason(), "RefusedByPolicy");
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("{FIELD}: kubeconfig {named} is not allowed")),
                "{named}: {msg}"
            );
        }
    }

    #[test]
    fn a_context_is_needed() {
        let k = Kubeconfig::from_yaml("apiVersion: v1\nkind: Config\nclusters: []\nusers: []\n").unwrap();
        assert!(
            from_kubeconfig(&k, FIELD)
                .err()
                .unwrap()
                .to_string()
                .contains("no current-context")
        );
    }
}
