//! `spec.provider.kubernetes`: Secrets of a namespace of this or another cluster, as ESO's kubernetes provider.
//!
//! - `remoteRef.key` is a Secret name, `property` one of its data keys (binary-safe), or a gjson path into the
//!   Secret rendered as a JSON object of strings; with no property the whole Secret comes back as that JSON.
//! - `metadataPolicy: Fetch` returns `{"labels":…,"annotations":…}`.
//! - `dataFrom.find`: Secrets of the remote namespace by name regexp and by labels (`tags`).
//! - Auth: `auth.token.bearerToken`, `auth.cert` (client certificate), `auth.serviceAccount` (a token minted
//!   with TokenRequest in this cluster, renewed before it expires), or `authRef` (a kubeconfig in a Secret).
//! - Store validation: a SelfSubjectAccessReview for `get secrets` in the remote namespace.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use syncret_crds::provider::kubernetes::KubernetesProvider as KubeSpec;
use tokio::sync::Mutex;

use crate::client::{CallObserver, Capabilities, FindQuery, PushRef, RemoteKey, SecretsClient, Validation, observed};
use crate::credentials::Credentials;
use crate::error::{ProviderError, Result};
use crate::net::body::Budget;
use crate::net::egress::Egress;
use crate::registry::{Provider, ProviderContext, StoreInfo};
use crate::value::{RemoteValue, SecretValue, Unloggable};

mod remote;

const LABEL: &str = "Kubernetes";
/// Lifetime of tokens minted for `auth.serviceAccount`; renewed at 80%.
const SA_TOKEN_SECONDS: i64 = 3600;
/// A remote apiserver that accepts a request and never answers fails it after this long (kube's default is no
/// read timeout at all: one hung connection would hold a sync, and its worker, forever). Counted from the request
/// to the end of the body.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Secrets per page of a `dataFrom.find` listing: with Secrets of up to 1 MiB, a page stays under the response
/// cap ([`crate::net::body::MAX_RESPONSE_BYTES`]).
const LIST_PAGE: u32 = 8;

/// The factory.
pub struct Kubernetes;

fn spec(store: &StoreInfo) -> Result<&KubeSpec> {
    store
        .spec
        .provider
        .kubernetes
        .as_ref()
        .ok_or_else(|| ProviderError::invalid_config("spec.provider.kubernetes", "must be set"))
}

#[async_trait]
impl Provider for Kubernetes {
    fn key(&self) -> &'static str {
        "kubernetes"
    }

    fn is_referent(&self, store: &StoreInfo) -> bool {
        let Ok(s) = spec(store) else { return false };
        let ns_of = |ns: &Option<String>| ns.as_deref().is_none_or(str::is_empty);
        let auth = s.auth.as_ref();
        store.scope == crate::StoreScope::ClusterSecretStore
            && (auth
                .and_then(|a| a.token.as_ref())
                .is_some_and(|t| ns_of(&t.bearer_token.namespace))
                || auth
                    .and_then(|a| a.cert.as_ref())
                    .is_some_and(|c| ns_of(&c.client_cert.namespace))
                || auth
                    .and_then(|a| a.service_account.as_ref())
                    .is_some_and(|sa| ns_of(&sa.namespace))
                || s.auth_ref.as_ref().is_some_and(|r| ns_of(&r.namespace)))
    }

    async fn new_client(&self, store: &StoreInfo, ctx: &ProviderContext) -> Result<Arc<dyn SecretsClient>> {
        let spec = spec(store)?.clone();
        let creds = ctx.credentials(store);
        // A remote apiserver is this provider's legitimate target, even when it is this cluster's own.
        let egress = ctx.egress(store).reaching_apiserver();
        let budget = ctx.responses();
        let remote = connect(&spec, &creds, &egress, &budget).await?;
        Ok(Arc::new(KubeClient {
            server_field: server_field(&spec),
            spec,
            creds,
            egress,
            budget,
            remote: Mutex::new(remote),
            observer: ctx.observer.clone(),
        }))
    }
}

struct Remote {
    client: kube::Client,
    renew_at: Option<Instant>,
}

const BASE: &str = "spec.provider.kubernetes";

/// The store field that chose the remote server (a refused connection names it).
fn server_field(spec: &KubeSpec) -> String {
    if spec.auth_ref.is_some() {
        format!("{BASE}.authRef")
    } else {
        format!("{BASE}.server.url")
    }
}

async fn connect(spec: &KubeSpec, creds: &Credentials, egress: &Egress, budget: &Budget) -> Result<Remote> {
    if let Some(auth_ref) = &spec.auth_ref {
        let field = format!("{BASE}.authRef");
        let text = creds.secret_key(auth_ref, &field).await?;
        let text = text
            .as_str()
            .ok_or_else(|| ProviderError::invalid_config(&field, "kubeconfig is not UTF-8"))?;
        // Parsed into kube's typed kubeconfig only to be inspected; the client is built from the allowed inline
        // fields ([`remote::from_kubeconfig`]), never by kube's kubeconfig loader.
        let kc = Kubeconfig::from_yaml(text).map_err(|_| {
            ProviderError::invalid_config(&field, "invalid kubeconfig: it is not a kubeconfig YAML document")
        })?;
        let settings = remote::from_kubeconfig(&kc, &field)?;
        let client = remote::client(settings, &spec.remote_namespace, (egress, budget), &field)?;
        return Ok(Remote { client, renew_at: None });
    }
    let Some(auth) = &spec.auth else {
        return Err(ProviderError::invalid_config(
            format!("{BASE}.auth"),
            "one of auth or authRef must be set",
        ));
    };
    let mut settings = remote::Settings::default();
    let mut renew_at = None;
    if let Some(token) = &auth.token {
        let t = creds
            .secret_key(&token.bearer_token, &format!("{BASE}.auth.token.bearerToken"))
            .await?;
        let t = t.as_str().ok_or_else(|| {
            ProviderError::invalid_config(format!("{BASE}.auth.token.bearerToken"), "token is not UTF-8")
        })?;
        settings.token = Some(Unloggable(t.trim().to_string()));
    } else if let Some(cert) = &auth.cert {
        let c = creds
            .secret_key(&cert.client_cert, &format!("{BASE}.auth.cert.clientCert"))
            .await?;
        let k = creds
            .secret_key(&cert.client_key, &format!("{BASE}.auth.cert.clientKey"))
            .await?;
        settings.client_cert_pem = Some(c.to_vec());
        settings.client_key_pem = Some(Unloggable(k.to_vec()));
    } else if let Some(sa) = &auth.service_account {
        let t = creds
            .service_account_token(sa, &[], SA_TOKEN_SECONDS, &format!("{BASE}.auth.serviceAccount"))
            .await?;
        settings.token = Some(t);
        let lifetime = Duration::from_secs(SA_TOKEN_SECONDS.unsigned_abs()).mul_f64(0.8);
        renew_at = Instant::now().checked_add(lifetime);
    } else {
        return Err(ProviderError::invalid_config(
            format!("{BASE}.auth"),
            "exactly one of cert, token or serviceAccount must be set",
        ));
    }
    let server = spec.server();
    settings.ca_pem = creds
        .ca_bundle(
            server
                .ca_bundle
                .as_ref()
                .map(|b| b.decode())
                .transpose()
                .map_err(|_| ProviderError::invalid_config(format!("{BASE}.server.caBundle"), "is not valid base64"))?
                .as_deref(),
            server.ca_provider.as_ref(),
            &format!("{BASE}.server"),
        )
        .await?;
    settings.server = if server.url.contains("://") {
        server.url.clone()
    } else {
        format!("https://{}", server.url)
    };
    let client = remote::client(
        settings,
        &spec.remote_namespace,
        (egress, budget),
        &format!("{BASE}.server"),
    )?;
    Ok(Remote { client, renew_at })
}

struct KubeClient {
    spec: KubeSpec,
    creds: Credentials,
    egress: Egress,
    budget: Budget,
    /// The field a refusal by the egress policy names.
    server_field: String,
    remote: Mutex<Remote>,
    observer: Arc<dyn CallObserver>,
}

fn map_err(e: kube::Error, key: &str) -> ProviderError {
    match &e {
        kube::Error::Api(s) if s.code == 404 => ProviderError::NotFound { key: key.to_string() },
        kube::Error::Api(s) if s.code == 401 => ProviderError::Auth(s.message.clone()),
        kube::Error::Api(s) if s.code == 403 => ProviderError::AccessDenied(s.message.clone()),
        kube::Error::Api(s) if s.code == 429 => ProviderError::Throttled { retry_after: None },
        _ => ProviderError::Transport(crate::error::error_chain(&e)),
    }
}

impl KubeClient {
    /// The remote client, with a fresh ServiceAccount token when the old one is near expiry.
    async fn client(&self) -> Result<kube::Client> {
        let mut remote = self.remote.lock().await;
        if remote.renew_at.is_some_and(|at| Instant::now() >= at) {
            *remote = connect(&self.spec, &self.creds, &self.egress, &self.budget).await?;
        }
        Ok(remote.client.clone())
    }

    /// A failed call as a provider error; a refusal by the egress policy names the field that chose the server.
    fn err(&self, e: kube::Error, key: &str) -> ProviderError {
        match crate::net::egress::find_denied(&e) {
            Some(denied) => ProviderError::Policy {
                field: self.server_field.clone(),
                message: denied.to_string(),
            },
            None => map_err(e, key),
        }
    }

    fn ignore_404(&self, e: kube::Error) -> Result<()> {
        match e {
            kube::Error::Api(s) if s.code == 404 => Ok(()),
            e => Err(self.err(e, "")),
        }
    }

    async fn secrets(&self) -> Result<Api<Secret>> {
        Ok(Api::namespaced(self.client().await?, &self.spec.remote_namespace))
    }
}

fn data_map(secret: &Secret) -> BTreeMap<String, SecretValue> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), SecretValue::from(v.0.clone())))
        .collect()
}

fn metadata_json(meta: &ObjectMeta) -> SecretValue {
    let v = serde_json::json!({
        "labels": meta.labels.clone().unwrap_or_default(),
        "annotations": meta.annotations.clone().unwrap_or_default(),
    });
    SecretValue::from(v.to_string())
}

#[async_trait]
impl SecretsClient for KubeClient {
    fn provider_label(&self) -> &'static str {
        LABEL
    }

    async fn get_secret(&self, key: &RemoteKey) -> Result<RemoteValue> {
        observed(&self.observer, LABEL, "GetSecret", async {
            let secret = self
                .secrets()
                .await?
                .get(&key.key)
                .await
                .map_err(|e| self.err(e, &key.key))?;
            Ok(if key.fetch_metadata {
                RemoteValue::Bytes(metadata_json(&secret.metadata))
            } else {
                RemoteValue::Map(data_map(&secret))
            })
        })
        .await
    }

    async fn get_all_secrets(&self, find: &FindQuery) -> Result<BTreeMap<String, SecretValue>> {
        observed(&self.observer, LABEL, "ListSecrets", async {
            let selector: Vec<String> = find.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let mut lp = ListParams::default().limit(LIST_PAGE);
            if !selector.is_empty() {
                lp = lp.labels(&selector.join(","));
            }
            let api = self.secrets().await?;
            let mut out = BTreeMap::new();
            loop {
                let page = api.list(&lp).await.map_err(|e| self.err(e, "*"))?;
                for s in &page.items {
                    let name = s.metadata.name.clone().unwrap_or_default();
                    if find.matches_name(&name) {
                        out.insert(name, crate::property::map_to_json(&data_map(s)));
                    }
                }
                match page.metadata.continue_.filter(|c| !c.is_empty()) {
                    Some(c) => lp = lp.continue_token(&c),
                    None => break,
                }
            }
            Ok(out)
        })
        .await
    }

    async fn push_secret(&self, to: &PushRef, value: &SecretValue) -> Result<()> {
        observed(&self.observer, LABEL, "PushSecret", async {
            let api = self.secrets().await?;
            let mut data = BTreeMap::new();
            match to.property.as_deref().filter(|p| !p.is_empty()) {
                Some(p) => {
                    data.insert(p.to_string(), k8s_openapi::ByteString(value.to_vec()));
                }
                None => {
                    // No property: the value is a JSON object of key → string (a whole Secret), as ESO.
                    let map =
                        crate::property::to_map(&to.remote_key, value).map_err(|_| ProviderError::InvalidValue {
                            key: to.remote_key.clone(),
                            message: "pushing without remoteRef.property needs the whole Secret (a JSON object)".into(),
                        })?;
                    data.extend(map.into_iter().map(|(k, v)| (k, k8s_openapi::ByteString(v.to_vec()))));
                }
            }
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(to.remote_key.clone()),
                    ..Default::default()
                },
                data: Some(data),
                ..Default::default()
            };
            api.patch(
                &to.remote_key,
                &PatchParams::apply("syncret-pushsecret").force(),
                &Patch::Apply(&secret),
            )
            .await
            .map_err(|e| self.err(e, &to.remote_key))?;
            Ok(())
        })
        .await
    }

    async fn delete_secret(&self, at: &PushRef) -> Result<()> {
        observed(&self.observer, LABEL, "DeleteSecret", async {
            let api = self.secrets().await?;
            match at.property.as_deref().filter(|p| !p.is_empty()) {
                Some(p) => {
                    let Some(existing) = api
                        .get_opt(&at.remote_key)
                        .await
                        .map_err(|e| self.err(e, &at.remote_key))?
                    else {
                        return Ok(());
                    };
                    let remaining = existing
                        .data
                        .as_ref()
                        .map(|d| d.keys().filter(|k| *k != p).count())
                        .unwrap_or(0);
                    if remaining == 0 {
                        api.delete(&at.remote_key, &Default::default())
                            .await
                            .map(|_| ())
                            .or_else(|e| self.ignore_404(e))?;
                    } else {
                        let patch = serde_json::json!({"data": {p: null}});
                        api.patch(&at.remote_key, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                            .map_err(|e| self.err(e, &at.remote_key))?;
                    }
                    Ok(())
                }
                None => api
                    .delete(&at.remote_key, &Default::default())
                    .await
                    .map(|_| ())
                    .or_else(|e| self.ignore_404(e)),
            }
        })
        .await
    }

    async fn secret_exists(&self, at: &PushRef) -> Result<bool> {
        let api = self.secrets().await?;
        let existing = api
            .get_opt(&at.remote_key)
            .await
            .map_err(|e| self.err(e, &at.remote_key))?;
        Ok(match (existing, at.property.as_deref().filter(|p| !p.is_empty())) {
            (Some(s), Some(p)) => s.data.is_some_and(|d| d.contains_key(p)),
            (Some(_), None) => true,
            (None, _) => false,
        })
    }

    async fn validate(&self) -> Result<Validation> {
        observed(&self.observer, LABEL, "SelfSubjectAccessReview", async {
            let client = self.client().await?;
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(self.spec.remote_namespace.clone()),
                        verb: Some("get".into()),
                        resource: Some("secrets".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let resp = Api::<SelfSubjectAccessReview>::all(client)
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| self.err(e, "SelfSubjectAccessReview"))?;
            if resp.status.is_some_and(|s| s.allowed) {
                Ok(Validation::Ready)
            } else {
                Err(ProviderError::AccessDenied(format!(
                    "the credentials may not get secrets in namespace {:?}",
                    self.spec.remote_namespace
                )))
            }
        })
        .await
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadWrite
    }
}
