//! Shared by the two reliability test binaries (`reliability`, `reliability_process`): fault injection in front
//! of provider servers ([`proxy`]), process resource use and metric samples ([`process`]), the leak grep
//! ([`leaks`]) and small helpers. Each binary uses part of it.
#![allow(dead_code)]

pub mod leaks;
pub mod process;
pub mod proxy;

use std::time::Duration;

use kube::api::Api;
use syncret_tests::eventually;

/// Called first by every test: the debug-level log capture for the leak checks.
pub fn init() {
    leaks::capture_logs();
}

/// `SYNCRET_LONG=1`: the long variants (more kill cycles, more objects) recorded in `docs/reliability.md`.
pub fn long() -> bool {
    std::env::var("SYNCRET_LONG").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A random value that cannot occur by accident anywhere else: `<prefix>-<32 hex digits>`.
pub fn secret_value(prefix: &str) -> String {
    let mut b = [0u8; 16];
    getrandom(&mut b);
    format!("{prefix}-{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

fn getrandom(buf: &mut [u8]) {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    for chunk in buf.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        let n = h.finish().to_le_bytes();
        chunk.copy_from_slice(&n[..chunk.len()]);
    }
}

/// An ExternalSecret manifest.
pub fn es(name: &str, spec: &str) -> String {
    format!("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {name}}}\nspec:\n{spec}")
}

/// A fake SecretStore manifest with these pairs (JSON, so any value is safe).
pub fn fake_store(name: &str, class: &str, pairs: &[(String, String)]) -> String {
    let data: Vec<serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
        .collect();
    serde_json::json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": name},
        "spec": {"controller": class, "provider": {"fake": {"data": data}}},
    })
    .to_string()
}

/// The Ready condition of an ExternalSecret: (status, reason, message).
pub async fn es_condition(api: &Api<syncret_crds::ExternalSecret>, name: &str) -> Option<(String, String, String)> {
    let es = api.get_opt(name).await.ok()??;
    let c = es
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == syncret_crds::condition::ExternalSecretConditionType::Ready)?;
    Some((c.status, c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
}

/// Waits until the ExternalSecret's Ready condition satisfies `pred`; returns (status, reason, message).
pub async fn wait_es(
    api: &Api<syncret_crds::ExternalSecret>,
    name: &str,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&str, &str, &str) -> bool,
) -> anyhow::Result<(String, String, String)> {
    eventually(timeout, &format!("ExternalSecret {name}: {what}"), || async {
        es_condition(api, name).await.filter(|(s, r, m)| pred(s, r, m))
    })
    .await
}

/// Writes a KV v2 secret into OpenBao/Vault at `secret/data/<path>`.
pub async fn vault_put(addr: &str, token: &str, path: &str, data: serde_json::Value) -> anyhow::Result<()> {
    let r = reqwest::Client::new()
        .post(format!("{addr}/v1/secret/data/{path}"))
        .header("X-Vault-Token", token)
        .json(&serde_json::json!({ "data": data }))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "vault write {path}: {}", r.status());
    Ok(())
}

/// An ExternalSecret reading `key` from store `store` into Secret `name` under `value`.
pub fn reader(name: &str, store: &str, key: &str, refresh: &str) -> String {
    es(
        name,
        &format!(
            "  refreshInterval: {refresh}\n  secretStoreRef: {{name: {store}}}\n  target: {{name: {name}}}\n  data:\n  - {{secretKey: value, remoteRef: {{key: {key}}}}}\n"
        ),
    )
}

pub async fn secret_value_of(api: &Api<k8s_openapi::api::core::v1::Secret>, name: &str) -> Option<String> {
    let s = api.get_opt(name).await.ok()??;
    let v = s.data?.get("value")?.0.clone();
    String::from_utf8(v).ok()
}

/// Sets the value of the canary's (fake) store.
pub async fn canary_store(ns: &syncret_tests::TestNamespace, class: &str, value: &str) -> anyhow::Result<()> {
    syncret_tests::apply_yaml(
        &ns.api::<syncret_crds::SecretStore>(),
        &fake_store("canary", class, &[("k".into(), value.into())]),
    )
    .await?;
    Ok(())
}

/// Changes the canary's store value and returns how long until its Secret shows it.
pub async fn canary_follows(ns: &syncret_tests::TestNamespace, class: &str, value: &str) -> anyhow::Result<Duration> {
    let start = std::time::Instant::now();
    canary_store(ns, class, value).await?;
    let secrets = ns.api::<k8s_openapi::api::core::v1::Secret>();
    eventually(
        Duration::from_secs(60),
        "the canary Secret to follow its store",
        || async { (secret_value_of(&secrets, "canary").await.as_deref() == Some(value)).then_some(()) },
    )
    .await?;
    Ok(start.elapsed())
}
