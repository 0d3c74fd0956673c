//! The fence in the client: every mutating request (POST, PUT, PATCH, DELETE) of a sharded replica passes
//! [`Ownership::check`] for the unit it writes for, at the moment it is sent, and is refused when that unit is
//! not held or its renew deadline has passed. It sits under every code path that writes (reconciles, status
//! patches, finalizers, rollout restarts), so a replica that lost a unit cannot write for it even from a
//! reconcile that has not noticed yet.
//!
//! Kubernetes has no write conditional on another object (here: the Lease), so the epoch cannot be checked by
//! the apiserver. What the API does allow: every fenced write carries its unit and epoch in its `User-Agent`,
//! which the apiserver's audit log records with the request (`syncret/<version> (<identity>; shard 3 epoch 7)`),
//! so a write can be traced to the tenure it was made in.
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Method, Request, Response};
use kube::client::Body;

use super::{Ownership, Unit};

/// Why the fence refused a write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fenced {
    #[error("this replica does not hold {0}: write refused (fenced)")]
    NotHeld(Unit),
    #[error("the lease of {0} was not renewed within the renew deadline: write refused (fenced)")]
    Expired(Unit),
}

/// Which unit a client's writes need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A write to a namespaced object needs its namespace's shard (the ExternalSecret and PushSecret
    /// controllers); a cluster-scoped write needs the cluster unit.
    Namespace,
    /// Every write needs the cluster unit (store validation, ClusterExternalSecret, ClusterPushSecret: they
    /// write into namespaces of every shard).
    Cluster,
}

/// `inner` with the fence in front (see the module docs). Reads and watches pass untouched.
pub fn client(inner: kube::Client, own: Arc<Ownership>, scope: Scope, identity: &str) -> kube::Client {
    let ns = inner.default_namespace().to_string();
    let agent = format!("syncret/{} ({identity}", env!("CARGO_PKG_VERSION"));
    kube::Client::new(
        FenceService {
            inner,
            own,
            scope,
            agent: agent.into(),
        },
        ns,
    )
}

#[derive(Clone)]
struct FenceService {
    inner: kube::Client,
    own: Arc<Ownership>,
    scope: Scope,
    /// `User-Agent` up to the identity; the unit and epoch are appended per request.
    agent: Arc<str>,
}

/// Whether a request changes state.
fn mutating(m: &Method) -> bool {
    matches!(*m, Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
}

/// The namespace a request path writes into, and whether the request creates nothing that lasts (a
/// TokenRequest or an access review: allowed to anyone, they are reads in a POST's clothes).
fn target(path: &str) -> (Option<&str>, bool) {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let transient = segs.last().is_some_and(|s| *s == "token")
        || segs
            .iter()
            .any(|s| s.ends_with("accessreviews") || s.ends_with("rulesreviews") || *s == "tokenreviews");
    // /api/v1/namespaces/<ns>/<resource>… or /apis/<group>/<version>/namespaces/<ns>/<resource>…; a path that
    // ends at the namespace is the Namespace object itself (cluster-scoped).
    let ns = segs
        .iter()
        .position(|s| *s == "namespaces")
        .filter(|i| segs.len() > i + 2)
        .and_then(|i| segs.get(i + 1).copied());
    (ns, transient)
}

impl FenceService {
    /// The unit a request writes for, or `None` when it is not a write the fence looks at.
    fn unit(&self, req: &Request<Body>) -> Option<Unit> {
        if !mutating(req.method()) {
            return None;
        }
        let (ns, transient) = target(req.uri().path());
        if transient {
            return None;
        }
        Some(match (self.scope, ns) {
            (Scope::Namespace, Some(ns)) => self.own.unit_of(ns),
            _ => Unit::Cluster,
        })
    }
}

impl tower_service::Service<Request<Body>> for FenceService {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, kube::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        if let Some(unit) = self.unit(&req) {
            match self.own.check(unit) {
                Ok(epoch) => {
                    let agent = format!("{}; {unit} epoch {epoch})", self.agent);
                    if let Ok(v) = HeaderValue::from_str(&agent) {
                        req.headers_mut().insert(http::header::USER_AGENT, v);
                    }
                }
                Err(fenced) => {
                    tracing::debug!(method = %req.method(), path = req.uri().path(), %fenced, "write refused");
                    return Box::pin(std::future::ready(Err(kube::Error::Service(Box::new(fenced)))));
                }
            }
        }
        let inner = self.inner.clone();
        Box::pin(async move { inner.send(req).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_namespace_a_request_writes_into() {
        assert_eq!(target("/api/v1/namespaces/app/secrets/db"), (Some("app"), false));
        assert_eq!(target("/api/v1/namespaces/app/secrets"), (Some("app"), false));
        assert_eq!(
            target("/apis/external-secrets.io/v1/namespaces/app/externalsecrets/db/status"),
            (Some("app"), false)
        );
        assert_eq!(target("/api/v1/namespaces/app"), (None, false), "the Namespace object");
        assert_eq!(
            target("/apis/external-secrets.io/v1/clustersecretstores/vault/status"),
            (None, false)
        );
        assert_eq!(
            target("/api/v1/namespaces/app/serviceaccounts/sa/token"),
            (Some("app"), true)
        );
        assert_eq!(
            target("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
            (None, true)
        );
    }

    /// Answers 200 to everything and remembers each request's method, path and `User-Agent`.
    #[derive(Clone, Default)]
    struct Recorder(Arc<std::sync::Mutex<Vec<(Method, String, String)>>>);

    impl tower_service::Service<Request<Body>> for Recorder {
        type Response = Response<Body>;
        type Error = kube::Error;
        type Future = std::future::Ready<Result<Response<Body>, kube::Error>>;
        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, req: Request<Body>) -> Self::Future {
            let agent = req
                .headers()
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            self.0
                .lock()
                .unwrap()
                .push((req.method().clone(), req.uri().path().to_string(), agent));
            std::future::ready(Ok(Response::new(Body::empty())))
        }
    }

    fn req(m: Method, p: &str) -> Request<Body> {
        Request::builder().method(m).uri(p).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn writes_need_their_unit_and_carry_its_epoch_and_reads_pass() {
        let own = Arc::new(Ownership::sharded(8));
        let seen = Recorder::default();
        let inner = kube::Client::new(seen.clone(), "default");
        let shard_client = client(inner.clone(), own.clone(), Scope::Namespace, "me_1");
        let cluster_client = client(inner, own.clone(), Scope::Cluster, "me_1");
        let app = own.unit_of("app");
        let secret = "/api/v1/namespaces/app/secrets/db";

        // Nothing held: reads pass, writes are refused before they are sent.
        assert!(shard_client.send(req(Method::GET, secret)).await.is_ok());
        let refused = shard_client.send(req(Method::PATCH, secret)).await;
        assert!(
            matches!(&refused, Err(kube::Error::Service(e)) if e.to_string().contains("does not hold")),
            "{refused:?}"
        );
        assert!(
            shard_client
                .send(req(Method::POST, "/api/v1/namespaces/app/serviceaccounts/a/token"))
                .await
                .is_ok()
        );
        assert_eq!(seen.0.lock().unwrap().len(), 2, "the refused write never left");

        // The shard held: its writes pass with the epoch in the User-Agent; the cluster client still needs the
        // cluster unit for the same path.
        own.grant(app, 7, std::time::Instant::now() + std::time::Duration::from_secs(60));
        assert!(shard_client.send(req(Method::PATCH, secret)).await.is_ok());
        assert!(cluster_client.send(req(Method::PATCH, secret)).await.is_err());
        let last = seen.0.lock().unwrap().last().cloned().unwrap();
        assert_eq!(last.0, Method::PATCH);
        assert!(
            last.2.starts_with("syncret/") && last.2.ends_with(&format!("(me_1; {app} epoch 7)")),
            "{}",
            last.2
        );

        // Past the fence: refused again.
        own.grant(app, 8, std::time::Instant::now());
        assert!(shard_client.send(req(Method::DELETE, secret)).await.is_err());
        own.grant(
            Unit::Cluster,
            1,
            std::time::Instant::now() + std::time::Duration::from_secs(60),
        );
        assert!(cluster_client.send(req(Method::PATCH, secret)).await.is_ok());
        assert!(
            shard_client
                .send(req(
                    Method::PATCH,
                    "/apis/external-secrets.io/v1/clustersecretstores/x/status"
                ))
                .await
                .is_ok(),
            "a cluster-scoped write needs the cluster unit"
        );
    }
}
