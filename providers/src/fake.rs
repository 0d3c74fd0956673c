//! `spec.provider.fake`: values listed in the store spec, as ESO's fake provider. PushSecret writes go to
//! process memory, keyed by store, so an ExternalSecret can read back what a PushSecret pushed.
//!
//! Every read is reported to the [`CallObserver`] as provider `Fake`, so tests can count remote reads
//! (`externalsecret_provider_api_calls_count{provider="Fake"}`).
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use syncret_crds::provider::fake::FakeProvider as FakeSpec;

use crate::client::{CallObserver, Capabilities, FindQuery, PushRef, RemoteKey, SecretsClient, Validation, observed};
use crate::error::{ProviderError, Result};
use crate::registry::{Provider, ProviderContext, StoreInfo};
use crate::value::{RemoteValue, SecretValue};

const LABEL: &str = "Fake";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Origin {
    Spec,
    Pushed,
}

#[derive(Clone, Debug)]
struct Entry {
    value: SecretValue,
    version: String,
    origin: Origin,
}

/// (key, version) → entry, for one store.
type Table = HashMap<(String, String), Entry>;

/// The factory; holds the pushed values of every fake store.
#[derive(Default)]
pub struct Fake {
    tables: Mutex<HashMap<String, Arc<Mutex<Table>>>>,
}

impl Fake {
    fn table(&self, store: &StoreInfo) -> Arc<Mutex<Table>> {
        let key = format!(
            "{}/{}/{}",
            store.scope_name(),
            store.namespace.as_deref().unwrap_or_default(),
            store.name
        );
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.entry(key).or_default().clone()
    }
}

fn spec(store: &StoreInfo) -> Result<&FakeSpec> {
    store
        .spec
        .provider
        .fake
        .as_ref()
        .ok_or_else(|| ProviderError::invalid_config("spec.provider.fake", "must be set"))
}

#[async_trait]
impl Provider for Fake {
    fn key(&self) -> &'static str {
        "fake"
    }

    async fn new_client(&self, store: &StoreInfo, ctx: &ProviderContext) -> Result<Arc<dyn SecretsClient>> {
        let spec = spec(store)?;
        let table = self.table(store);
        {
            let mut t = table.lock().unwrap_or_else(|e| e.into_inner());
            t.retain(|_, e| e.origin == Origin::Pushed);
            for d in &spec.data {
                t.insert(
                    (d.key.clone(), d.version.clone()),
                    Entry {
                        value: SecretValue::from(d.value.as_str()),
                        version: d.version.clone(),
                        origin: Origin::Spec,
                    },
                );
            }
        }
        Ok(Arc::new(FakeClient {
            table,
            validation_result: spec.validation_result,
            observer: ctx.observer.clone(),
        }))
    }
}

struct FakeClient {
    table: Arc<Mutex<Table>>,
    validation_result: Option<i64>,
    observer: Arc<dyn CallObserver>,
}

impl FakeClient {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl SecretsClient for FakeClient {
    fn provider_label(&self) -> &'static str {
        LABEL
    }

    async fn get_secret(&self, key: &RemoteKey) -> Result<RemoteValue> {
        observed(&self.observer, LABEL, "GetSecret", async {
            if key.fetch_metadata {
                return Err(ProviderError::Unsupported(
                    "the fake provider has no metadata (metadataPolicy: Fetch)".into(),
                ));
            }
            let version = key.version.clone().unwrap_or_default();
            self.lock()
                .get(&(key.key.clone(), version))
                .map(|e| RemoteValue::Bytes(e.value.clone()))
                .ok_or_else(|| ProviderError::NotFound { key: key.key.clone() })
        })
        .await
    }

    async fn get_all_secrets(&self, find: &FindQuery) -> Result<BTreeMap<String, SecretValue>> {
        observed(&self.observer, LABEL, "GetAllSecrets", async {
            if find.name.is_none() {
                return Err(ProviderError::Unsupported(
                    "the fake provider supports dataFrom.find by name only".into(),
                ));
            }
            // The newest version (greatest version string) of every matching key, as ESO.
            let mut out: BTreeMap<String, (String, SecretValue)> = BTreeMap::new();
            for ((key, _), entry) in self.lock().iter() {
                if !find.matches_name(key) {
                    continue;
                }
                let newer = out.get(key).is_none_or(|(v, _)| entry.version > *v);
                if newer {
                    out.insert(key.clone(), (entry.version.clone(), entry.value.clone()));
                }
            }
            Ok(out.into_iter().map(|(k, (_, v))| (k, v)).collect())
        })
        .await
    }

    async fn push_secret(&self, to: &PushRef, value: &SecretValue) -> Result<()> {
        observed(&self.observer, LABEL, "PushSecret", async {
            let mut t = self.lock();
            let slot = (to.remote_key.clone(), String::new());
            if let Some(existing) = t.get(&slot)
                && existing.origin != Origin::Pushed
            {
                return Err(ProviderError::AccessDenied(format!(
                    "key {:?} already exists in the store spec and was not pushed by a PushSecret",
                    to.remote_key
                )));
            }
            let value = match &to.property {
                Some(p) if !p.is_empty() => {
                    let mut obj = t
                        .get(&slot)
                        .and_then(|e| {
                            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(e.value.as_bytes())
                                .ok()
                        })
                        .unwrap_or_default();
                    obj.insert(
                        p.clone(),
                        serde_json::Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
                    );
                    SecretValue::from(serde_json::Value::Object(obj).to_string())
                }
                _ => value.clone(),
            };
            t.insert(
                slot,
                Entry {
                    value,
                    version: String::new(),
                    origin: Origin::Pushed,
                },
            );
            Ok(())
        })
        .await
    }

    async fn delete_secret(&self, at: &PushRef) -> Result<()> {
        observed(&self.observer, LABEL, "DeleteSecret", async {
            let mut t = self.lock();
            let slot = (at.remote_key.clone(), String::new());
            if t.get(&slot).is_some_and(|e| e.origin == Origin::Pushed) {
                t.remove(&slot);
            }
            Ok(())
        })
        .await
    }

    async fn secret_exists(&self, at: &PushRef) -> Result<bool> {
        Ok(self.lock().contains_key(&(at.remote_key.clone(), String::new())))
    }

    async fn validate(&self) -> Result<Validation> {
        match self.validation_result {
            None | Some(0) => Ok(Validation::Ready),
            Some(1) => Ok(Validation::Unknown),
            Some(_) => Err(ProviderError::Transport(
                "unable to validate (validationResult: Error)".into(),
            )),
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadWrite
    }
}
