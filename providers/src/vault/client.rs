//! The [`SecretsClient`] for one Vault/OpenBao store: KV reads, find, push, and the token it holds.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};
use syncret_crds::provider::vault::VaultKVStoreVersion;
use vaultrs::api::kv1::requests as kv1;
use vaultrs::api::kv2::requests as kv2;

use super::auth::{self, Action, CloudLogins, Origin, Token};
use super::http::{CallError, Envelope, Http, Options};
use super::keeper::TokenKeeper;
use super::paths::{self, KvPath};
use super::{Flavor, Settings};
use crate::client::{CallObserver, Capabilities, FindQuery, PushRef, RemoteKey, SecretsClient, Validation, observed};
use crate::credentials::Credentials;
use crate::error::{ProviderError, Result};
use crate::value::{RemoteValue, SecretValue};

/// The `custom_metadata` key and value that mark a secret as pushed by syncret (ESO's, so either operator may
/// manage what the other pushed).
const MANAGED_BY: &str = "managed-by";
const MANAGED_BY_VALUE: &str = "external-secrets";
/// KV v2 metadata fields `metadataPolicy: Fetch` returns besides `custom_metadata` (ESO).
const SYSTEM_METADATA: [&str; 3] = ["created_time", "current_version", "delete_version_after"];

pub struct VaultClient {
    s: Settings,
    creds: Credentials,
    http: Arc<Http>,
    observer: Arc<dyn CallObserver>,
    label: &'static str,
    /// The `iam` / `gcp` login's credentials, when the store uses one.
    cloud: CloudLogins,
    /// `None` once closed.
    token: tokio::sync::Mutex<Option<Token>>,
    /// When the values last read for these keys expire (reads that came with a lease).
    leases: Mutex<HashMap<RemoteKey, Instant>>,
    /// Where a token that created leases goes when this client lets go of it (never revoked: see [`TokenKeeper`]).
    keeper: Arc<TokenKeeper>,
}

/// A KV v2 read: the data (absent for a deleted or destroyed version) and the version's metadata.
#[derive(Deserialize, Default)]
struct Kv2Read {
    #[serde(default)]
    data: Option<Map<String, Value>>,
    #[serde(default)]
    metadata: Option<Kv2VersionMeta>,
}

#[derive(Deserialize, Default)]
struct Kv2VersionMeta {
    #[serde(default)]
    version: u64,
    #[serde(default)]
    custom_metadata: Option<Map<String, Value>>,
}

#[derive(Deserialize, Default)]
struct Keys {
    #[serde(default)]
    keys: Vec<String>,
}

/// One secret as read: its data, the KV v2 version and custom metadata, and the lease that came with it.
struct Read {
    data: Map<String, Value>,
    version: u64,
    custom_metadata: Map<String, Value>,
    lease: Duration,
}

fn built<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| ProviderError::Transport(format!("building a Vault request: {e}")))
}

/// Maps a failed data call. 401/403: Vault says `permission denied` both for a bad token and a policy denial.
fn map_err(e: CallError, key: &str) -> ProviderError {
    if let Some(refused) = e.refusal() {
        return refused;
    }
    match e.status {
        None => ProviderError::Transport(e.message),
        Some(404) => ProviderError::NotFound { key: key.to_string() },
        Some(401 | 403) => ProviderError::AccessDenied(format!("{key:?}: {}", e.message)),
        Some(429) => ProviderError::Throttled { retry_after: None },
        Some(s) => ProviderError::Transport(format!("{key:?}: HTTP {s}: {}", e.message)),
    }
}

/// The longest lease honoured: a `lease_duration` beyond it (the server's number, up to 2^64-1 seconds) is read as
/// this, so the expiry computed from it cannot overflow.
pub(crate) const MAX_LEASE: Duration = Duration::from_secs(366 * 24 * 3600);

/// When a value read at `now` with `lease` expires; `None` for no lease.
fn lease_end(now: Instant, lease: Duration) -> Option<Instant> {
    if lease.is_zero() {
        return None;
    }
    now.checked_add(lease.min(MAX_LEASE))
}

/// JSON text as Go's `json.Marshal` writes it (ESO's rendering of a whole secret): keys sorted, `<`, `>`, `&`,
/// U+2028 and U+2029 escaped. Those characters only occur inside strings, so replacing them is safe.
pub(crate) fn go_json(map: &Map<String, Value>) -> String {
    let text = Value::Object(map.clone()).to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// A metadata value as ESO renders it (`fmt.Sprintf("%v")`): strings as they are, others as JSON.
fn meta_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_managed(custom: &Map<String, Value>) -> bool {
    custom.get(MANAGED_BY).and_then(Value::as_str) == Some(MANAGED_BY_VALUE)
}

/// The data a push writes: `value` as one property merged into `existing`, or (no property) `value` as the
/// whole JSON object.
fn pushed_data(existing: &Map<String, Value>, to: &PushRef, value: &SecretValue) -> Result<Map<String, Value>> {
    match to.property.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => {
            let mut data = existing.clone();
            data.insert(
                p.to_string(),
                Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            );
            Ok(data)
        }
        None => match serde_json::from_slice::<Value>(value.as_bytes()) {
            Ok(Value::Object(m)) => Ok(m),
            // The parse error is not shown: it can quote the value.
            _ => Err(ProviderError::InvalidValue {
                key: to.remote_key.clone(),
                message: "pushing without a property needs a JSON object (the whole secret)".into(),
            }),
        },
    }
}

impl VaultClient {
    /// Builds the HTTP client (CA, client certificate) and logs in once.
    pub async fn connect(
        s: Settings,
        creds: Credentials,
        observer: Arc<dyn CallObserver>,
        cloud: CloudLogins,
        keeper: Arc<TokenKeeper>,
        client: crate::net::http::HttpClientBuilder,
    ) -> Result<Self> {
        let base = s.base;
        let inline_ca = s
            .ca_bundle
            .as_ref()
            .map(|b| b.decode())
            .transpose()
            .map_err(|_| ProviderError::invalid_config(format!("{base}.caBundle"), "is not valid base64"))?;
        let ca = creds
            .ca_bundle(inline_ca.as_deref(), s.ca_provider.as_ref(), base)
            .await?;
        // The cert auth method's certificate wins over `tls` (both present a client certificate to the server).
        let identity = if let Some(c) = s.auth.as_ref().and_then(|a| a.cert.as_ref()) {
            let cert = creds
                .secret_key(&c.client_cert, &format!("{base}.auth.cert.clientCert"))
                .await?;
            let key = creds
                .secret_key(&c.secret_ref, &format!("{base}.auth.cert.secretRef"))
                .await?;
            Some((cert, key, format!("{base}.auth.cert")))
        } else if let (Some(c), Some(k)) = (&s.client_tls.cert_secret_ref, &s.client_tls.key_secret_ref) {
            let mut c = c.clone();
            let mut k = k.clone();
            if c.key.is_empty() {
                c.key = "tls.crt".into();
            }
            if k.key.is_empty() {
                k.key = "tls.key".into();
            }
            let cert = creds.secret_key(&c, &format!("{base}.tls.certSecretRef")).await?;
            let key = creds.secret_key(&k, &format!("{base}.tls.keySecretRef")).await?;
            Some((cert, key, format!("{base}.tls")))
        } else {
            None
        };
        let http = Arc::new(Http::new(Options {
            server: &s.server,
            ca_pem: &ca,
            identity: identity.as_ref().map(|(c, k, _)| (c.as_bytes(), k.as_bytes())),
            identity_field: identity.as_ref().map(|(_, _, f)| f.as_str()),
            headers: &s.headers,
            read_your_writes: s.read_your_writes,
            forward_inconsistent: s.forward_inconsistent,
            base,
            client,
        })?);
        let label = s.flavor.label();
        let token = if s.logs_in() {
            observed(&observer, label, "Login", auth::login(&s, &creds, &http, &cloud)).await?
        } else {
            auth::login(&s, &creds, &http, &cloud).await?
        };
        Ok(Self {
            s,
            creds,
            http,
            observer,
            label,
            cloud,
            token: tokio::sync::Mutex::new(Some(token)),
            leases: Mutex::new(HashMap::new()),
            keeper,
        })
    }

    /// Lets go of `token`: one that created leases goes to the keeper (revoking it would revoke them), any other
    /// login of ours is revoked.
    async fn release(&self, token: Token) {
        if token.origin != Origin::Login || !token.is_live(Instant::now()) {
            return;
        }
        if token.owns_leases() {
            self.keeper
                .keep(self.http.clone(), token, self.s.auth_namespace().map(str::to_string));
        } else {
            self.revoke(&token).await;
        }
    }

    /// The token to use now: renewed or replaced (one login for every waiting caller) when due.
    async fn token(&self) -> Result<String> {
        self.token_entry().await.map(|t| t.value.0)
    }

    /// [`Self::token`] with what is known about it (accessor, lifetime, whether it created leases).
    async fn token_entry(&self) -> Result<Token> {
        let mut slot = self.token.lock().await;
        let Some(token) = slot.as_ref() else {
            return Err(ProviderError::Transport(
                "the Vault client was closed (the store changed or was deleted); retrying with a new one".into(),
            ));
        };
        let now = Instant::now();
        match token.plan(now) {
            Action::Use => return Ok(token.clone()),
            Action::Renew => {
                let ns = self.s.auth_namespace();
                let renewed = observed(&self.observer, self.label, "RenewSelf", async {
                    auth::renew(&self.http, token, ns)
                        .await
                        .map_err(|e| ProviderError::Auth(format!("renewing the token: {}", e.message)))
                })
                .await;
                match renewed.map(|(ttl, renewable)| token.renewed(ttl, renewable, Instant::now())) {
                    Ok(Some(t)) => {
                        *slot = Some(t.clone());
                        return Ok(t);
                    }
                    Ok(None) => tracing::debug!(provider = self.label, "token near its max TTL; logging in again"),
                    Err(e) => {
                        tracing::info!(provider = self.label, error = %e, "token renewal failed; logging in again")
                    }
                }
            }
            Action::Login => {}
        }
        let old = slot.take();
        let fresh = observed(
            &self.observer,
            self.label,
            "Login",
            auth::login(&self.s, &self.creds, &self.http, &self.cloud),
        )
        .await;
        match fresh {
            Ok(t) => {
                *slot = Some(t.clone());
                drop(slot);
                // The old token is near its end anyway; revoke it rather than leave it to expire (unless its
                // leases still need it).
                if let Some(old) = old {
                    self.release(old).await;
                }
                Ok(t)
            }
            Err(e) => {
                *slot = old;
                Err(e)
            }
        }
    }

    async fn revoke(&self, token: &Token) {
        let ns = self.s.auth_namespace();
        let res = observed(&self.observer, self.label, "RevokeSelf", async {
            auth::revoke(&self.http, &token.value, ns)
                .await
                .map_err(|e| map_err(e, "auth/token/revoke-self"))
        })
        .await;
        if let Err(e) = res {
            tracing::info!(provider = self.label, error = %e, "revoking the Vault token failed");
        }
    }

    fn v2(&self) -> bool {
        self.s.version == VaultKVStoreVersion::V2
    }

    fn locate(&self, key: &str) -> Result<KvPath> {
        paths::locate(self.s.mount.as_deref(), self.s.version, key, self.s.base)
    }

    /// One observed call with the current token in the provider namespace.
    async fn call<E: rustify::endpoint::Endpoint, T: serde::de::DeserializeOwned>(
        &self,
        call: &'static str,
        endpoint: &E,
        key: &str,
    ) -> Result<Envelope<T>> {
        let entry = self.token_entry().await?;
        let token = entry.value.0.as_str();
        let ns = self.s.namespace.as_deref();
        let res = observed(&self.observer, self.label, call, async {
            self.http
                .call(endpoint, Some(token), ns)
                .await
                .map_err(|e| map_err(e, key))
        })
        .await;
        match res {
            Ok(env) => {
                if !env.lease_id.is_empty() {
                    // Vault revokes this lease with the token: the token must outlive it.
                    entry.mark_lease_owner();
                }
                Ok(env)
            }
            Err(ProviderError::AccessDenied(m)) => Err(self.denied(token, m).await),
            other => other,
        }
    }

    /// Vault answers 403 `permission denied` both for a token that no longer works and for a path its policies
    /// do not allow. The first must replace the client (a new login), the second must not: a key the policy
    /// forbids would otherwise cost a login per retry. One `LookupSelf` tells them apart.
    async fn denied(&self, token: &str, message: String) -> ProviderError {
        let ns = self.s.auth_namespace();
        let looked = observed(&self.observer, self.label, "LookupSelf", async {
            auth::lookup(&self.http, token, ns)
                .await
                .map_err(|e| map_err(e, "auth/token/lookup-self"))
        })
        .await;
        match looked {
            Ok(_) => ProviderError::invalid_config(
                format!("{}.auth", self.s.base),
                format!("the token's policies do not allow this: {message}"),
            ),
            Err(ProviderError::AccessDenied(m)) => ProviderError::Auth(format!("the Vault token no longer works: {m}")),
            Err(_) => ProviderError::AccessDenied(message),
        }
    }

    /// Reads a secret's data (and for KV v2 its version and custom metadata).
    async fn read(&self, key: &str, version: Option<&str>) -> Result<Read> {
        let loc = self.locate(key)?;
        if self.v2() {
            let version = version
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|_| ProviderError::InvalidValue {
                        key: key.to_string(),
                        message: format!("version {v:?} is not a KV v2 version number"),
                    })
                })
                .transpose()?;
            let req = built(
                kv2::ReadSecretRequest::builder()
                    .mount(loc.mount.as_str())
                    .path(loc.path.as_str())
                    .version(version)
                    .build(),
            )?;
            let env: Envelope<Kv2Read> = self.call("ReadSecretData", &req, key).await?;
            let r = env.data.unwrap_or_default();
            let meta = r.metadata.unwrap_or_default();
            let data = r.data.ok_or_else(|| ProviderError::NotFound { key: key.to_string() })?;
            Ok(Read {
                data,
                version: meta.version,
                custom_metadata: meta.custom_metadata.unwrap_or_default(),
                lease: Duration::from_secs(env.lease_duration),
            })
        } else {
            if version.is_some_and(|v| !v.is_empty()) && self.s.flavor == Flavor::OpenBao {
                return Err(ProviderError::InvalidValue {
                    key: key.to_string(),
                    message: "OpenBao KV v1 secrets have no versions (use KV v2)".into(),
                });
            }
            let req = built(
                kv1::GetSecretRequest::builder()
                    .mount(loc.mount.as_str())
                    .path(loc.path.as_str())
                    .build(),
            )?;
            let env: Envelope<Map<String, Value>> = self.call("ReadSecretData", &req, key).await?;
            let data = env
                .data
                .ok_or_else(|| ProviderError::NotFound { key: key.to_string() })?;
            // KV v1 answers every read with the mount's default lease (32 days); only a `ttl` key (or a real lease,
            // e.g. dynamic credentials read through a v1 store) makes it meaningful.
            let lease = if !env.lease_id.is_empty() || data.contains_key("ttl") {
                Duration::from_secs(env.lease_duration)
            } else {
                Duration::ZERO
            };
            let custom_metadata = match data.get("custom_metadata") {
                Some(Value::Object(m)) => m.clone(),
                _ => Map::new(),
            };
            Ok(Read {
                data,
                version: 0,
                custom_metadata,
                lease,
            })
        }
    }

    /// Transit `decrypt` with key `name` of the transit engine at `mount` (the sops provider's data keys): the
    /// plaintext as Vault returns it, base64. Reported as the call `TransitDecrypt`.
    pub(crate) async fn transit_decrypt(
        &self,
        mount: &str,
        name: &str,
        ciphertext: &str,
    ) -> Result<crate::value::Unloggable<String>> {
        let req = built(
            vaultrs::api::transit::requests::DecryptDataRequest::builder()
                .mount(mount.trim_matches('/'))
                .name(name)
                .ciphertext(ciphertext)
                .build(),
        )?;
        let at = format!("{}/decrypt/{name}", mount.trim_matches('/'));
        let env: Envelope<vaultrs::api::transit::responses::DecryptDataResponse> =
            self.call("TransitDecrypt", &req, &at).await?;
        env.data
            .map(|d| crate::value::Unloggable(d.plaintext))
            .ok_or_else(|| ProviderError::Transport(format!("{at}: Vault returned no plaintext")))
    }

    /// KV v2 metadata: `None` when the key has none.
    async fn read_metadata(&self, key: &str) -> Result<Option<Map<String, Value>>> {
        let loc = self.locate(key)?;
        let req = built(
            kv2::ReadSecretMetadataRequest::builder()
                .mount(loc.mount.as_str())
                .path(loc.path.as_str())
                .build(),
        )?;
        match self.call::<_, Map<String, Value>>("ReadSecretData", &req, key).await {
            Ok(env) => Ok(env.data),
            Err(ProviderError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `metadataPolicy: Fetch`: custom metadata plus the system fields, as one JSON object of strings.
    async fn metadata_json(&self, key: &str) -> Result<SecretValue> {
        if !self.v2() {
            return Err(ProviderError::Unsupported(
                "metadataPolicy: Fetch needs KV v2 (KV v1 has no metadata)".into(),
            ));
        }
        let meta = self
            .read_metadata(key)
            .await?
            .ok_or_else(|| ProviderError::NotFound { key: key.to_string() })?;
        let mut out = Map::new();
        for k in SYSTEM_METADATA {
            if let Some(v) = meta.get(k).filter(|v| !v.is_null()) {
                out.insert(k.to_string(), Value::String(meta_string(v)));
            }
        }
        if let Some(Value::Object(custom)) = meta.get("custom_metadata") {
            for (k, v) in custom {
                out.insert(k.clone(), Value::String(meta_string(v)));
            }
        }
        Ok(SecretValue::from(go_json(&out)))
    }

    /// Every secret name under `dir`, recursively (names relative to `dir`).
    async fn list_all(&self, dir: &KvPath) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut pending = vec![String::new()];
        while let Some(sub) = pending.pop() {
            let path = format!("{}{sub}", dir.path);
            let env: Result<Envelope<Keys>> = if self.v2() {
                let req = built(
                    kv2::ListSecretsRequest::builder()
                        .mount(dir.mount.as_str())
                        .path(path.as_str())
                        .build(),
                )?;
                self.call("ListSecrets", &req, &path).await
            } else {
                let req = built(
                    kv1::ListSecretRequest::builder()
                        .mount(dir.mount.as_str())
                        .path(path.as_str())
                        .build(),
                )?;
                self.call("ListSecrets", &req, &path).await
            };
            let keys = match env {
                Ok(e) => e.data.unwrap_or_default().keys,
                // An empty directory lists as 404.
                Err(ProviderError::NotFound { .. }) => Vec::new(),
                Err(e) => return Err(e),
            };
            for k in keys {
                let name = format!("{sub}{k}");
                if name.ends_with('/') {
                    pending.push(name);
                } else {
                    out.push(name);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn note_lease(&self, key: &RemoteKey, lease: Duration) {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        match lease_end(Instant::now(), lease) {
            None => {
                leases.remove(key);
            }
            Some(end) => {
                leases.insert(key.clone(), end);
            }
        }
    }

    async fn write(&self, key: &str, data: Map<String, Value>, cas: Option<u64>) -> Result<()> {
        let loc = self.locate(key)?;
        if self.v2() {
            let mut b = kv2::SetSecretRequest::builder();
            b.mount(loc.mount.as_str())
                .path(loc.path.as_str())
                .data(Value::Object(data));
            if let Some(cas) = cas {
                let cas = u32::try_from(cas).map_err(|_| ProviderError::InvalidValue {
                    key: key.to_string(),
                    message: "the secret's version is too large for check-and-set".into(),
                })?;
                b.options(kv2::SetSecretRequestOptions { cas });
            }
            let req = built(b.build())?;
            match self.call::<_, Value>("WriteSecretData", &req, key).await {
                Ok(_) => Ok(()),
                // Retried: the next attempt reads the new version and checks ownership again.
                Err(ProviderError::Transport(m)) if m.contains("check-and-set") => {
                    Err(ProviderError::Transport(format!(
                        "{key:?} was changed by someone else while syncret was writing it (check-and-set \
                         failed); not overwritten, will retry"
                    )))
                }
                Err(e) => Err(e),
            }
        } else {
            let body = serde_json::to_vec(&Value::Object(data))
                .map_err(|e| ProviderError::Transport(format!("encoding the secret: {e}")))?;
            let req = built(
                kv1::SetSecretRequest::builder()
                    .mount(loc.mount.as_str())
                    .path(loc.path.as_str())
                    .data(body)
                    .build(),
            )?;
            self.call::<_, Value>("WriteSecretData", &req, key).await.map(|_| ())
        }
    }

    /// Marks a KV v2 key as ours, keeping its other custom metadata.
    async fn mark_managed(&self, key: &str, custom: &Map<String, Value>) -> Result<()> {
        let loc = self.locate(key)?;
        let mut m: HashMap<String, String> = custom.iter().map(|(k, v)| (k.clone(), meta_string(v))).collect();
        m.insert(MANAGED_BY.into(), MANAGED_BY_VALUE.into());
        let req = built(
            kv2::SetSecretMetadataRequest::builder()
                .mount(loc.mount.as_str())
                .path(loc.path.as_str())
                .custom_metadata(m)
                .build(),
        )?;
        self.call::<_, Value>("WriteSecretData", &req, key).await.map(|_| ())
    }

    async fn read_opt(&self, key: &str) -> Result<Option<Read>> {
        match self.read(key, None).await {
            Ok(r) => Ok(Some(r)),
            Err(ProviderError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A refusal that says nothing about the credentials, so it is not `AccessDenied` (which replaces the client).
    fn not_ours(key: &str) -> ProviderError {
        ProviderError::InvalidValue {
            key: key.to_string(),
            message: format!(
                "exists and was not created by a PushSecret (no custom_metadata {MANAGED_BY}={MANAGED_BY_VALUE}); \
                 not overwritten"
            ),
        }
    }
}

/// A call to any path, as a VaultDynamicSecret makes it (method, query or JSON body).
struct Raw {
    method: rustify::enums::RequestMethod,
    path: String,
    query: Option<String>,
    body: Option<Vec<u8>>,
}

impl rustify::endpoint::Endpoint for Raw {
    type Response = ();
    const REQUEST_BODY_TYPE: rustify::enums::RequestType = rustify::enums::RequestType::JSON;
    const RESPONSE_BODY_TYPE: rustify::enums::ResponseType = rustify::enums::ResponseType::JSON;

    fn path(&self) -> String {
        self.path.clone()
    }

    fn method(&self) -> rustify::enums::RequestMethod {
        self.method.clone()
    }

    fn query(&self) -> std::result::Result<Option<String>, rustify::errors::ClientError> {
        Ok(self.query.clone())
    }

    fn body(&self) -> std::result::Result<Option<Vec<u8>>, rustify::errors::ClientError> {
        Ok(self.body.clone())
    }
}

/// The lease fields of an answer.
#[derive(Deserialize, Default)]
struct LeaseFields {
    #[serde(default)]
    lease_id: String,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

/// `key=value&…` with each part form-encoded (Go's `url.Values.Encode`: keys sorted, values in order).
fn encode_query(params: &BTreeMap<String, Vec<String>>) -> Option<String> {
    let mut q = url_encoded::Serializer::default();
    for (k, vs) in params {
        for v in vs {
            q.append(k, v);
        }
    }
    Some(q.finish()).filter(|s| !s.is_empty())
}

/// A tiny `application/x-www-form-urlencoded` writer (reqwest re-exports none).
mod url_encoded {
    #[derive(Default)]
    pub struct Serializer(String);

    fn push_encoded(out: &mut String, s: &str) {
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
    }

    impl Serializer {
        pub fn append(&mut self, k: &str, v: &str) {
            if !self.0.is_empty() {
                self.0.push('&');
            }
            push_encoded(&mut self.0, k);
            self.0.push('=');
            push_encoded(&mut self.0, v);
        }

        pub fn finish(self) -> String {
            self.0
        }
    }
}

fn lease_expiry(now: chrono::DateTime<chrono::Utc>, seconds: u64) -> chrono::DateTime<chrono::Utc> {
    let secs = i64::try_from(seconds).unwrap_or(i64::MAX).min(10 * 365 * 24 * 3600);
    now.checked_add_signed(chrono::Duration::seconds(secs)).unwrap_or(now)
}

impl VaultClient {
    /// One VaultDynamicSecret call: `method` (GET by default, LIST, DELETE, else a write) at `path`, with `get`
    /// as the query of a GET and `params` as the body of a write. Returns the whole answer and its lease (the
    /// token that made it is then kept alive for it).
    pub(crate) async fn dynamic(
        &self,
        method: &str,
        path: &str,
        params: Option<&Value>,
        get: &BTreeMap<String, Vec<String>>,
        field: &str,
    ) -> Result<(Value, Option<crate::lease::Lease>)> {
        use rustify::enums::RequestMethod as M;
        let (method, query, body) = match method.to_ascii_uppercase().as_str() {
            "" | "GET" => (M::GET, encode_query(get), None),
            "LIST" => (M::LIST, None, None),
            "DELETE" => (M::DELETE, None, None),
            _ => {
                let body = match params {
                    None | Some(Value::Null) => Value::Object(Map::new()),
                    Some(v @ Value::Object(_)) => v.clone(),
                    Some(_) => {
                        return Err(ProviderError::invalid_config(
                            format!("{field}.parameters"),
                            "must be a JSON object",
                        ));
                    }
                };
                (M::PUT, None, Some(body.to_string().into_bytes()))
            }
        };
        let raw = Raw {
            method,
            path: path.trim_matches('/').to_string(),
            query,
            body,
        };
        let entry = self.token_entry().await?;
        let ns = self.s.namespace.as_deref();
        let res = observed(&self.observer, self.label, "GenerateSecret", async {
            self.http
                .call_value(&raw, Some(&entry.value.0), ns)
                .await
                .map_err(|e| map_err(e, path))
        })
        .await;
        let whole = match res {
            Ok(v) => v,
            Err(ProviderError::AccessDenied(m)) => return Err(self.denied(&entry.value.0, m).await),
            Err(e) => return Err(e),
        };
        let fields: LeaseFields = serde_json::from_value(whole.clone()).unwrap_or_default();
        let lease = (!fields.lease_id.is_empty()).then(|| {
            entry.mark_lease_owner();
            let now = chrono::Utc::now();
            crate::lease::Lease {
                lease_id: fields.lease_id,
                renewable: fields.renewable,
                duration_seconds: fields.lease_duration,
                expire_time: lease_expiry(now, fields.lease_duration),
                capped: false,
                token_accessor: entry.accessor.clone(),
                token_expire_time: entry.expires_at(Instant::now()),
            }
        });
        Ok((whole, lease))
    }

    /// Renews `lease` in place (`sys/leases/renew`, asking for its original duration) and the token that created
    /// it when this client or the keeper holds that token; returns the lease as it is now.
    pub(crate) async fn renew_lease(&self, lease: &crate::lease::Lease) -> Result<crate::lease::Lease> {
        let current = self.token_entry().await?;
        let now = Instant::now();
        let token_end = match lease.token_accessor.as_deref() {
            Some(acc) if current.accessor.as_deref() == Some(acc) => current.expires_at(now),
            Some(acc) => match self.keeper.refresh(acc, &self.observer, self.label).await {
                Some(end) => end,
                None => lease.token_expire_time,
            },
            None => lease.token_expire_time,
        };
        let body = serde_json::json!({ "lease_id": lease.lease_id, "increment": lease.duration_seconds });
        let raw = Raw {
            method: rustify::enums::RequestMethod::PUT,
            path: "sys/leases/renew".into(),
            query: None,
            body: Some(body.to_string().into_bytes()),
        };
        let res = observed(&self.observer, self.label, "RenewLease", async {
            self.http
                .call_value(&raw, Some(&current.value.0), self.s.namespace.as_deref())
                .await
                .map_err(|e| map_err(e, &lease.lease_id))
        })
        .await?;
        let fields: LeaseFields = serde_json::from_value(res).unwrap_or_default();
        let at = chrono::Utc::now();
        Ok(crate::lease::Lease {
            renewable: fields.renewable,
            expire_time: lease_expiry(at, fields.lease_duration),
            // Vault grants less than asked only when the lease's max TTL is near.
            capped: fields.lease_duration.saturating_add(2) < lease.duration_seconds,
            token_expire_time: token_end,
            ..lease.clone()
        })
    }

    /// Revokes a lease (`sys/leases/revoke`); one that is already gone is fine.
    pub(crate) async fn revoke_lease(&self, lease_id: &str) -> Result<()> {
        let body = serde_json::json!({ "lease_id": lease_id });
        let raw = Raw {
            method: rustify::enums::RequestMethod::PUT,
            path: "sys/leases/revoke".into(),
            query: None,
            body: Some(body.to_string().into_bytes()),
        };
        let token = self.token().await?;
        let res = observed(&self.observer, self.label, "RevokeLease", async {
            match self
                .http
                .call_value(&raw, Some(&token), self.s.namespace.as_deref())
                .await
            {
                Ok(_) => Ok(()),
                // Expired or revoked already.
                Err(e) if e.status == Some(400) && e.message.contains("invalid lease") => Ok(()),
                Err(e) => Err(map_err(e, lease_id)),
            }
        })
        .await;
        match res {
            Err(ProviderError::NotFound { .. }) => Ok(()),
            other => other,
        }
    }
}

#[async_trait]
impl SecretsClient for VaultClient {
    fn provider_label(&self) -> &'static str {
        self.label
    }

    async fn get_secret(&self, key: &RemoteKey) -> Result<RemoteValue> {
        if key.fetch_metadata {
            return self.metadata_json(&key.key).await.map(RemoteValue::Bytes);
        }
        let r = self.read(&key.key, key.version.as_deref()).await?;
        self.note_lease(key, r.lease);
        Ok(RemoteValue::Bytes(SecretValue::from(go_json(&r.data))))
    }

    async fn get_all_secrets(&self, find: &FindQuery) -> Result<BTreeMap<String, SecretValue>> {
        if !find.tags.is_empty() && !self.v2() {
            return Err(ProviderError::Unsupported(
                "dataFrom.find by tags needs KV v2 (tags are custom_metadata)".into(),
            ));
        }
        let (dir, prefix) = paths::locate_dir(
            self.s.mount.as_deref(),
            self.s.version,
            find.path.as_deref(),
            self.s.base,
        )?;
        let names: Vec<String> = self
            .list_all(&dir)
            .await?
            .into_iter()
            .map(|n| format!("{prefix}{n}"))
            .filter(|n| find.matches_name(n))
            .collect();
        let mut out = BTreeMap::new();
        for chunk in names.chunks(8) {
            let reads = chunk.iter().map(|name| async move {
                if !find.tags.is_empty() {
                    let meta = self.read_metadata(name).await?.unwrap_or_default();
                    let tags: BTreeMap<String, String> = match meta.get("custom_metadata") {
                        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), meta_string(v))).collect(),
                        _ => BTreeMap::new(),
                    };
                    if !find.matches_tags(&tags) {
                        return Ok(None);
                    }
                }
                match self.read(name, None).await {
                    Ok(r) => Ok(Some((name.clone(), SecretValue::from(go_json(&r.data))))),
                    // Deleted between the listing and the read (or its latest version is deleted): skipped, as ESO.
                    Err(ProviderError::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            });
            for r in futures::future::join_all(reads).await {
                if let Some((k, v)) = r? {
                    out.insert(k, v);
                }
            }
        }
        Ok(out)
    }

    async fn push_secret(&self, to: &PushRef, value: &SecretValue) -> Result<()> {
        let key = to.remote_key.as_str();
        let existing = self.read_opt(key).await?;
        if self.v2() {
            // (data, version, custom metadata, already marked) of what is there.
            let (data, version, custom) = match existing {
                Some(r) => (r.data, r.version, r.custom_metadata),
                None => match self.read_metadata(key).await? {
                    // Metadata without readable data: the latest version is deleted or destroyed.
                    Some(meta) => {
                        let custom = match meta.get("custom_metadata") {
                            Some(Value::Object(m)) => m.clone(),
                            _ => Map::new(),
                        };
                        let version = meta.get("current_version").and_then(Value::as_u64).unwrap_or(0);
                        (Map::new(), version, custom)
                    }
                    None => (Map::new(), 0, Map::new()),
                },
            };
            let exists = version > 0;
            if exists && !is_managed(&custom) {
                return Err(Self::not_ours(key));
            }
            let new = pushed_data(&data, to, value)?;
            if exists && new == data {
                return Ok(());
            }
            if !is_managed(&custom) {
                self.mark_managed(key, &custom).await?;
            }
            // Always check-and-set: 0 creates only, N updates only the version we read.
            self.write(key, new, Some(version)).await
        } else {
            let mut data = match &existing {
                Some(r) if !is_managed(&r.custom_metadata) => return Err(Self::not_ours(key)),
                Some(r) => r.data.clone(),
                None => Map::new(),
            };
            data.remove("custom_metadata");
            let mut new = pushed_data(&data, to, value)?;
            if existing.is_some() && new == data {
                return Ok(());
            }
            let mut marker = Map::new();
            marker.insert(MANAGED_BY.into(), Value::String(MANAGED_BY_VALUE.into()));
            new.insert("custom_metadata".into(), Value::Object(marker));
            self.write(key, new, None).await
        }
    }

    async fn delete_secret(&self, at: &PushRef) -> Result<()> {
        let key = at.remote_key.as_str();
        let Some(existing) = self.read_opt(key).await? else {
            return Ok(());
        };
        if !is_managed(&existing.custom_metadata) {
            // Not ours: leave it (ESO does the same).
            return Ok(());
        }
        if let Some(p) = at.property.as_deref().filter(|p| !p.is_empty()) {
            let mut data = existing.data.clone();
            data.remove(p);
            let left = data.keys().filter(|k| self.v2() || *k != "custom_metadata").count();
            if left > 0 {
                if data == existing.data {
                    return Ok(());
                }
                let cas = self.v2().then_some(existing.version);
                return self.write(key, data, cas).await;
            }
        }
        let loc = self.locate(key)?;
        let res = if self.v2() {
            let req = built(
                kv2::DeleteSecretMetadataRequest::builder()
                    .mount(loc.mount.as_str())
                    .path(loc.path.as_str())
                    .build(),
            )?;
            self.call::<_, Value>("DeleteSecret", &req, key).await
        } else {
            let req = built(
                kv1::DeleteSecretRequest::builder()
                    .mount(loc.mount.as_str())
                    .path(loc.path.as_str())
                    .build(),
            )?;
            self.call::<_, Value>("DeleteSecret", &req, key).await
        };
        match res {
            Ok(_) | Err(ProviderError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn secret_exists(&self, at: &PushRef) -> Result<bool> {
        let Some(r) = self.read_opt(&at.remote_key).await? else {
            return Ok(false);
        };
        match at.property.as_deref().filter(|p| !p.is_empty()) {
            None => Ok(true),
            Some(p) => {
                let v = RemoteValue::Bytes(SecretValue::from(go_json(&r.data)));
                match v.select(&at.remote_key, Some(p)) {
                    Ok(_) => Ok(true),
                    Err(ProviderError::PropertyNotFound { .. }) => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn validate(&self) -> Result<Validation> {
        let token = self.token().await?;
        let ns = self.s.auth_namespace();
        observed(&self.observer, self.label, "LookupSelf", async {
            auth::lookup(&self.http, &token, ns).await.map_err(|e| match e.status {
                _ if e.refused_field.is_some() => e.refusal().unwrap_or_else(|| ProviderError::Transport(e.message)),
                None => ProviderError::Transport(e.message),
                Some(s) if s >= 500 => ProviderError::Transport(e.message),
                Some(_) => ProviderError::Auth(format!("the Vault token does not work: {}", e.message)),
            })
        })
        .await?;
        Ok(Validation::Ready)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadWrite
    }

    fn expires_in(&self, key: &RemoteKey) -> Option<Duration> {
        let leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        leases.get(key).map(|at| at.saturating_duration_since(Instant::now()))
    }

    async fn close(&self) {
        let token = self.token.lock().await.take();
        if let Some(t) = token {
            self.release(t).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_secret_json_matches_go() {
        let m: Map<String, Value> =
            serde_json::from_str(r#"{"b":"<x> & y","a":1,"c":{"z":true,"y":null},"d":"\u2028"}"#).unwrap();
        assert_eq!(
            go_json(&m),
            r#"{"a":1,"b":"\u003cx\u003e \u0026 y","c":{"y":null,"z":true},"d":"\u2028"}"#
        );
        // Still JSON that decodes to the same value.
        assert_eq!(serde_json::from_str::<Map<String, Value>>(&go_json(&m)).unwrap(), m);
    }

    #[test]
    fn push_merges_a_property_or_takes_a_whole_object() {
        let existing: Map<String, Value> = serde_json::from_str(r#"{"a":"1","b":"2"}"#).unwrap();
        let to = |p: Option<&str>| PushRef {
            remote_key: "k".into(),
            property: p.map(Into::into),
            metadata: None,
            secret_key: None,
        };
        let got = pushed_data(&existing, &to(Some("b")), &SecretValue::from("3")).unwrap();
        assert_eq!(Value::Object(got), serde_json::json!({"a":"1","b":"3"}));
        let got = pushed_data(&existing, &to(None), &SecretValue::from(r#"{"x":"y"}"#)).unwrap();
        assert_eq!(Value::Object(got), serde_json::json!({"x":"y"}));
        let err = pushed_data(&existing, &to(None), &SecretValue::from("s3cr3t")).unwrap_err();
        assert!(matches!(err, ProviderError::InvalidValue { .. }));
        assert!(!err.to_string().contains("s3cr3t"));
    }

    #[test]
    fn errors_map_to_provider_errors() {
        let e = |status: Option<u16>| CallError {
            status,
            message: "m".into(),
            refused_field: None,
        };
        assert!(map_err(e(Some(404)), "k").is_not_found());
        assert!(matches!(map_err(e(Some(403)), "k"), ProviderError::AccessDenied(_)));
        assert!(matches!(map_err(e(Some(429)), "k"), ProviderError::Throttled { .. }));
        assert!(matches!(map_err(e(Some(500)), "k"), ProviderError::Transport(_)));
        assert!(matches!(map_err(e(None), "k"), ProviderError::Transport(_)));
    }

    #[test]
    fn leases_from_the_server_cannot_overflow() {
        let now = Instant::now();
        assert_eq!(lease_end(now, Duration::ZERO), None);
        assert_eq!(
            lease_end(now, Duration::from_secs(60)),
            Some(now + Duration::from_secs(60))
        );
        // `lease_duration: 18446744073709551615`
        assert_eq!(lease_end(now, Duration::from_secs(u64::MAX)), Some(now + MAX_LEASE));
        let refused = CallError {
            status: None,
            message: "connection to 127.0.0.1 refused".into(),
            refused_field: Some("spec.provider.vault.server".into()),
        };
        let e = map_err(refused, "k");
        assert_eq!(e.reason(), "RefusedByPolicy");
        assert!(
            e.to_string().starts_with("spec.provider.vault.server: connection"),
            "{e}"
        );
    }

    #[test]
    fn managed_marker() {
        let m: Map<String, Value> = serde_json::from_str(r#"{"managed-by":"external-secrets"}"#).unwrap();
        assert!(is_managed(&m));
        assert!(!is_managed(&Map::new()));
        assert_eq!(meta_string(&serde_json::json!(3)), "3");
        assert_eq!(meta_string(&serde_json::json!("0s")), "0s");
    }
}
