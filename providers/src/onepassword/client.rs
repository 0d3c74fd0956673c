//! The Connect API client: vault resolution, item lookup, find, PushSecret.
use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};
use syncret_crds::provider::onepassword::OnePasswordProvider as Spec;
use tokio::sync::Mutex;

use super::item::{DEFAULT_FIELD, Item};
use super::{BASE, LABEL, TOKEN_FIELD};
use crate::client::{Capabilities, FindQuery, PushRef, RemoteKey, SecretsClient, Validation};
use crate::error::{ProviderError, Result};
use crate::rest::{Response, Rest};
use crate::value::{CustomValue, RemoteValue, SecretValue};

/// How long a push waits for Connect to serve the written value, and how often it looks (ESO's values).
const SETTLE_FOR: Duration = Duration::from_secs(5);
const SETTLE_EVERY: Duration = Duration::from_millis(500);
/// Items of one vault listed at most.
const MAX_ITEMS: usize = 50_000;

#[derive(Debug, Deserialize)]
struct Vault {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Summary {
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    content: Option<String>,
}

/// The PushSecret metadata `spec` (ESO's `PushSecretMetadataSpec`).
#[derive(Debug, Default, Deserialize)]
struct PushSpec {
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    vault: String,
}

/// A Connect item ID (ESO's and the SDK's "UUID"): 26 lower-case letters and digits.
fn is_item_id(s: &str) -> bool {
    s.len() == 26 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// An item found: its vault and its full JSON (kept whole so updates lose nothing).
struct Found {
    vault: String,
    raw: Value,
}

impl Found {
    fn id(&self) -> &str {
        self.raw["id"].as_str().unwrap_or_default()
    }
}

/// One store's client.
pub struct OnePasswordClient {
    rest: Rest,
    bearer: HeaderValue,
    /// Vault names or IDs in search order.
    vaults: Vec<String>,
    /// Their IDs, resolved once (and again by each validation).
    vault_ids: Mutex<Option<Vec<String>>>,
    /// One push at a time (Connect creates a second item when two creates of one title overlap).
    push: Mutex<()>,
}

impl OnePasswordClient {
    pub(super) fn new(spec: &Spec, rest: Rest, bearer: HeaderValue) -> Self {
        Self {
            rest,
            bearer,
            vaults: spec.ordered_vaults().into_iter().map(str::to_string).collect(),
            vault_ids: Mutex::new(None),
            push: Mutex::new(()),
        }
    }

    async fn call(
        &self,
        call: &'static str,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Response> {
        let headers = HeaderMap::from_iter([(AUTHORIZATION, self.bearer.clone())]);
        self.rest.call(call, method, segments, query, headers, body).await
    }

    /// A failed answer. A 404 here is a missing vault or file, never a missing item (which [`Self::item`] and
    /// the title lookup report as `None`): a retried error, so it cannot trigger `deletionPolicy: Delete`.
    fn failure(resp: &Response, call: &str, key: &str) -> ProviderError {
        match resp.status.as_u16() {
            404 => ProviderError::Transport(resp.describe(call)),
            _ => resp.error(call, key, TOKEN_FIELD),
        }
    }

    /// The ID of one vault given by name or ID.
    async fn resolve_vault(&self, vault: &str) -> Result<String> {
        let missing = |m: String| ProviderError::invalid_config(format!("{BASE}.vaults[{vault}]"), m);
        if is_item_id(vault) {
            let resp = self
                .call("GetVault", Method::GET, &["v1", "vaults", vault], &[], None)
                .await?;
            return match resp.status.as_u16() {
                200..=299 => Ok(resp.json::<Vault>("GetVault")?.id),
                404 => Err(missing("no such vault".into())),
                _ => Err(Self::failure(&resp, "GetVault", vault)),
            };
        }
        let filter = format!("title eq \"{vault}\"");
        let resp = self
            .call(
                "GetVaultsByTitle",
                Method::GET,
                &["v1", "vaults"],
                &[("filter", &filter)],
                None,
            )
            .await?;
        if !resp.is_success() {
            return Err(Self::failure(&resp, "GetVaultsByTitle", vault));
        }
        let found: Vec<Vault> = resp.json("GetVaultsByTitle")?;
        match found.as_slice() {
            [one] => Ok(one.id.clone()),
            _ => Err(missing(format!("found {} vaults with this title", found.len()))),
        }
    }

    async fn resolve_all(&self) -> Result<Vec<String>> {
        let mut ids = Vec::with_capacity(self.vaults.len());
        for v in &self.vaults {
            ids.push(self.resolve_vault(v).await?);
        }
        Ok(ids)
    }

    /// The vault IDs in search order, resolved on first use.
    async fn vault_ids(&self) -> Result<Vec<String>> {
        let mut cached = self.vault_ids.lock().await;
        if let Some(ids) = cached.as_ref() {
            return Ok(ids.clone());
        }
        let ids = self.resolve_all().await?;
        *cached = Some(ids.clone());
        Ok(ids)
    }

    /// The full item `id` of `vault`; `None` on 404.
    async fn item(&self, vault: &str, id: &str) -> Result<Option<Value>> {
        let resp = self
            .call("GetItem", Method::GET, &["v1", "vaults", vault, "items", id], &[], None)
            .await?;
        match resp.status.as_u16() {
            200..=299 => Ok(Some(resp.json("GetItem")?)),
            404 => Ok(None),
            _ => Err(Self::failure(&resp, "GetItem", id)),
        }
    }

    async fn summaries(&self, vault: &str, filter: Option<&str>) -> Result<Vec<Summary>> {
        let query: Vec<(&str, &str)> = filter.map(|f| vec![("filter", f)]).unwrap_or_default();
        let resp = self
            .call("GetItems", Method::GET, &["v1", "vaults", vault, "items"], &query, None)
            .await?;
        if !resp.is_success() {
            return Err(Self::failure(&resp, "GetItems", vault));
        }
        let items: Vec<Summary> = resp.json("GetItems")?;
        if items.len() > MAX_ITEMS {
            return Err(ProviderError::Transport(format!(
                "GetItems: more than {MAX_ITEMS} items in a vault"
            )));
        }
        Ok(items)
    }

    /// The item titled (or with the ID) `key`, from the first vault that has it (ESO's `findItem`).
    async fn find(&self, key: &str) -> Result<Option<Found>> {
        for vault in self.vault_ids().await? {
            if is_item_id(key)
                && let Some(raw) = self.item(&vault, key).await?
            {
                return Ok(Some(Found { vault, raw }));
            }
            let filter = format!("title eq \"{key}\"");
            let items = self.summaries(&vault, Some(&filter)).await?;
            match items.as_slice() {
                [] => continue,
                [one] => {
                    return Ok(self.item(&vault, &one.id).await?.map(|raw| Found { vault, raw }));
                }
                many => {
                    return Err(ProviderError::InvalidValue {
                        key: key.to_string(),
                        message: format!("expected one 1Password Item matching '{key}', got {}", many.len()),
                    });
                }
            }
        }
        Ok(None)
    }

    /// The item's files with their contents: one call with the contents inline; a file without one is read
    /// on its own.
    async fn files(&self, found: &Found) -> Result<Vec<(String, SecretValue)>> {
        if found.raw["files"].as_array().is_none_or(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let item = found.id().to_string();
        let resp = self
            .call(
                "GetFiles",
                Method::GET,
                &["v1", "vaults", &found.vault, "items", &item, "files"],
                &[("inline_files", "true")],
                None,
            )
            .await?;
        if !resp.is_success() {
            return Err(Self::failure(&resp, "GetFiles", &item));
        }
        let files: Vec<File> = resp.json("GetFiles")?;
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let content = match f.content.as_deref() {
                Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| {
                    ProviderError::Transport(format!("GetFiles: the content of file {:?} is not base64", f.name))
                })?,
                None => {
                    let resp = self
                        .call(
                            "GetFileContent",
                            Method::GET,
                            &["v1", "vaults", &found.vault, "items", &item, "files", &f.id, "content"],
                            &[],
                            None,
                        )
                        .await?;
                    if !resp.is_success() {
                        return Err(Self::failure(&resp, "GetFileContent", &item));
                    }
                    resp.body.to_vec()
                }
            };
            out.push((f.name, SecretValue::from(content)));
        }
        Ok(out)
    }

    fn to_item(raw: &Value, files: Vec<(String, SecretValue)>) -> Item {
        let fields = raw["fields"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .map(|f| {
                        (
                            f["label"].as_str().unwrap_or_default().to_string(),
                            SecretValue::from(f["value"].as_str().unwrap_or_default()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Item {
            title: raw["title"].as_str().unwrap_or_default().to_string(),
            category: raw["category"].as_str().unwrap_or_default().to_string(),
            fields,
            files,
        }
    }

    /// Whether the item titled `title` now has `label` = `value` (pushes wait for it).
    async fn settled(&self, title: &str, label: &str, value: &str) -> Result<bool> {
        Ok(self.find(title).await?.is_some_and(|f| {
            f.raw["fields"].as_array().is_some_and(|fs| {
                fs.iter()
                    .any(|x| x["label"].as_str() == Some(label) && x["value"].as_str() == Some(value))
            })
        }))
    }

    async fn wait_settled(&self, title: &str, label: &str, value: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + SETTLE_FOR;
        loop {
            if self.settled(title, label, value).await? {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProviderError::Transport(format!(
                    "the 1Password item {title:?} did not show the pushed field {label:?} within {}s",
                    SETTLE_FOR.as_secs()
                )));
            }
            tokio::time::sleep(SETTLE_EVERY).await;
        }
    }

    async fn put(&self, found: &Found) -> Result<()> {
        let id = found.id().to_string();
        let resp = self
            .call(
                "UpdateItem",
                Method::PUT,
                &["v1", "vaults", &found.vault, "items", &id],
                &[],
                Some(&found.raw),
            )
            .await?;
        if resp.is_success() {
            Ok(())
        } else {
            Err(Self::failure(&resp, "UpdateItem", &id))
        }
    }
}

/// The `spec` of ESO's PushSecret metadata for 1Password.
fn push_spec(metadata: Option<&str>, key: &str) -> Result<PushSpec> {
    let Some(raw) = metadata.map(str::trim).filter(|m| !m.is_empty() && *m != "null") else {
        return Ok(PushSpec::default());
    };
    let invalid = |m: String| ProviderError::InvalidValue {
        key: key.to_string(),
        message: format!("failed to parse push secret metadata: {m}"),
    };
    let v: Value = serde_json::from_str(raw).map_err(|e| invalid(e.to_string()))?;
    match v.get("spec") {
        None | Some(Value::Null) => Ok(PushSpec::default()),
        Some(spec) => serde_json::from_value(spec.clone()).map_err(|e| invalid(e.to_string())),
    }
}

/// Sets (or adds, concealed) the field `label` of an item's JSON; a label that repeats is refused.
fn set_field(raw: &mut Value, label: &str, value: &str, key: &str) -> Result<()> {
    if !raw["fields"].is_array() {
        raw["fields"] = json!([]);
    }
    let Some(fields) = raw["fields"].as_array_mut() else {
        return Ok(());
    };
    let matching: Vec<usize> = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f["label"].as_str() == Some(label))
        .map(|(i, _)| i)
        .collect();
    match matching.as_slice() {
        [] => fields.push(json!({"label": label, "value": value, "type": "CONCEALED"})),
        [i] => fields[*i]["value"] = Value::String(value.to_string()),
        many => {
            return Err(ProviderError::InvalidValue {
                key: key.to_string(),
                message: format!(
                    "expected one 1Password ItemField matching '{label}', got {}",
                    many.len()
                ),
            });
        }
    }
    Ok(())
}

#[async_trait]
impl SecretsClient for OnePasswordClient {
    fn provider_label(&self) -> &'static str {
        LABEL
    }

    async fn get_secret(&self, key: &RemoteKey) -> Result<RemoteValue> {
        if key.version.as_deref().is_some_and(|v| !v.is_empty()) {
            return Err(ProviderError::Unsupported(
                "'remoteRef.version' is not implemented in the 1Password provider".into(),
            ));
        }
        let Some(found) = self.find(&key.key).await? else {
            return Err(ProviderError::NotFound { key: key.key.clone() });
        };
        let files = self.files(&found).await?;
        Ok(RemoteValue::Custom(CustomValue::new(Self::to_item(&found.raw, files))))
    }

    async fn get_all_secrets(&self, find: &FindQuery) -> Result<BTreeMap<String, SecretValue>> {
        let mut out: BTreeMap<String, SecretValue> = BTreeMap::new();
        for vault in self.vault_ids().await? {
            for s in self.summaries(&vault, None).await? {
                let wanted = if find.tags.is_empty() {
                    find.path.as_deref().is_none_or(|p| p == s.title)
                } else {
                    find.tags.keys().all(|t| s.tags.contains(t))
                };
                if !wanted {
                    continue;
                }
                let Some(raw) = self.item(&vault, &s.id).await? else {
                    continue;
                };
                let item = Self::to_item(&raw, Vec::new());
                for (label, value) in item.field_map(&s.title, None)? {
                    if find.matches_name(&label) {
                        out.entry(label).or_insert(value);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn push_secret(&self, to: &PushRef, value: &SecretValue) -> Result<()> {
        let text = value.as_str().ok_or_else(|| ProviderError::InvalidValue {
            key: to.remote_key.clone(),
            message: "1Password fields hold text: the value is not UTF-8".into(),
        })?;
        let label = to
            .property
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_FIELD);
        let meta = push_spec(to.metadata.as_deref(), &to.remote_key)?;
        let _one_at_a_time = self.push.lock().await;
        match self.find(&to.remote_key).await? {
            Some(mut found) => {
                if let Some(tags) = meta.tags {
                    found.raw["tags"] = json!(tags);
                }
                set_field(&mut found.raw, label, text, &to.remote_key)?;
                self.put(&found).await?;
            }
            None => {
                let ids = self.vault_ids().await?;
                let vault = if meta.vault.is_empty() {
                    ids.first().cloned()
                } else {
                    let at = self.vaults.iter().position(|v| *v == meta.vault).ok_or_else(|| {
                        ProviderError::InvalidValue {
                            key: to.remote_key.clone(),
                            message: format!("metadata vault '{}' not in provider vaults", meta.vault),
                        }
                    })?;
                    ids.get(at).cloned()
                };
                let vault =
                    vault.ok_or_else(|| ProviderError::invalid_config(format!("{BASE}.vaults"), "no vaults found"))?;
                let item = json!({
                    "title": to.remote_key,
                    "category": "SERVER",
                    "vault": {"id": vault},
                    "fields": [{"label": label, "value": text, "type": "CONCEALED"}],
                    "tags": meta.tags.unwrap_or_default(),
                });
                let resp = self
                    .call(
                        "CreateItem",
                        Method::POST,
                        &["v1", "vaults", &vault, "items"],
                        &[],
                        Some(&item),
                    )
                    .await?;
                if !resp.is_success() {
                    return Err(Self::failure(&resp, "CreateItem", &to.remote_key));
                }
            }
        }
        self.wait_settled(&to.remote_key, label, text).await
    }

    async fn delete_secret(&self, at: &PushRef) -> Result<()> {
        let label = at
            .property
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_FIELD);
        let _one_at_a_time = self.push.lock().await;
        let Some(mut found) = self.find(&at.remote_key).await? else {
            return Ok(());
        };
        if let Some(fields) = found.raw["fields"].as_array_mut() {
            let n = fields.iter().filter(|f| f["label"].as_str() == Some(label)).count();
            if n > 1 {
                return Err(ProviderError::InvalidValue {
                    key: at.remote_key.clone(),
                    message: format!("expected one 1Password ItemField matching '{label}', got {n}"),
                });
            }
            fields.retain(|f| f["label"].as_str() != Some(label));
        }
        // One unnamed section is what Connect adds by itself: it does not keep the item alive.
        if let Some(sections) = found.raw["sections"].as_array()
            && sections.len() == 1
            && sections[0]["id"].as_str().unwrap_or_default().is_empty()
            && sections[0]["label"].as_str().unwrap_or_default().is_empty()
        {
            found.raw["sections"] = json!([]);
        }
        let empty = |k: &str| found.raw[k].as_array().is_none_or(Vec::is_empty);
        if empty("fields") && empty("files") && empty("sections") {
            let id = found.id().to_string();
            let resp = self
                .call(
                    "DeleteItem",
                    Method::DELETE,
                    &["v1", "vaults", &found.vault, "items", &id],
                    &[],
                    None,
                )
                .await?;
            return match resp.status.as_u16() {
                200..=299 | 404 => Ok(()),
                _ => Err(Self::failure(&resp, "DeleteItem", &at.remote_key)),
            };
        }
        self.put(&found).await
    }

    async fn secret_exists(&self, at: &PushRef) -> Result<bool> {
        let Some(found) = self.find(&at.remote_key).await? else {
            return Ok(false);
        };
        Ok(match at.property.as_deref().filter(|p| !p.is_empty()) {
            None => true,
            Some(label) => found.raw["fields"]
                .as_array()
                .is_some_and(|fs| fs.iter().any(|f| f["label"].as_str() == Some(label))),
        })
    }

    /// Resolves every vault again (proves the token and the vaults), refreshing the cached IDs.
    async fn validate(&self) -> Result<Validation> {
        let ids = self.resolve_all().await?;
        *self.vault_ids.lock().await = Some(ids);
        Ok(Validation::Ready)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadWrite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_ids_are_26_lower_case_alphanumerics() {
        assert!(is_item_id("p7eflcy7f5mk7vg6zrzf5rjjyu"));
        assert!(!is_item_id("P7eflcy7f5mk7vg6zrzf5rjjyu"));
        assert!(!is_item_id("database"));
    }

    #[test]
    fn fields_are_set_added_and_never_duplicated() {
        let mut raw = json!({"id": "i", "fields": [{"id": "f1", "label": "password", "value": "old", "type": "CONCEALED"}],
            "urls": [{"href": "https://db"}]});
        set_field(&mut raw, "password", "new", "k").unwrap();
        set_field(&mut raw, "user", "u", "k").unwrap();
        assert_eq!(raw["fields"][0]["value"], "new");
        assert_eq!(raw["fields"][0]["id"], "f1", "everything else of the item is kept");
        assert_eq!(
            raw["fields"][1],
            json!({"label": "user", "value": "u", "type": "CONCEALED"})
        );
        assert_eq!(raw["urls"][0]["href"], "https://db");
        raw["fields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"label": "user", "value": "x"}));
        assert!(set_field(&mut raw, "user", "y", "k").is_err());
    }

    #[test]
    fn push_metadata_is_read_from_its_spec() {
        let m = push_spec(
            Some(r#"{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":{"vault":"prod","tags":["a"]}}"#),
            "k",
        )
        .unwrap();
        assert_eq!(m.vault, "prod");
        assert_eq!(m.tags, Some(vec!["a".to_string()]));
        assert!(push_spec(None, "k").unwrap().tags.is_none());
        assert!(push_spec(Some(r#"{"spec":{"tags":"notalist"}}"#), "k").is_err());
    }
}
