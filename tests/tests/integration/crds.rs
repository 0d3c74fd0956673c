//! The CRDs on a real kube-apiserver (installed from `deploy/crds/` by the harness):
//! - every ESO fixture in `tests/fixtures/eso/` applies with server-side apply and strict field validation, reads
//!   back with all its fields, gets ESO's defaults, and deserializes into our types with a clean `validate()`;
//! - every invalid fixture is rejected by the apiserver naming the field (`# expect-apiserver:`), or accepted by
//!   the schema and then reported by `validate()` naming the field (`# expect:`);
//! - the published OpenAPI (what `kubectl explain` reads) has a real schema for `ExternalSecret.spec.target.template`.
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Client, Resource};
use serde_json::Value;
use syncret_crds::{
    ClusterExternalSecret, ClusterPushSecret, ClusterSecretStore, ExternalSecret, FieldError, PushSecret, SecretStore,
};
use syncret_tests::{ControlPlane, TestNamespace, eventually, repo_root};

const MANAGER: &str = "syncret-tests-crds";

/// `(file name, text, manifest)` of every `*.yaml` in `dir`, sorted by name.
pub(crate) fn fixtures(dir: &Path) -> anyhow::Result<Vec<(String, String, Value)>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)?;
            let value: Value = serde_yaml::from_str(&text).with_context(|| p.display().to_string())?;
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((name, text, value))
        })
        .collect()
}

/// The API for a fixture's kind and whether it is namespaced.
fn resource(value: &Value) -> anyhow::Result<(ApiResource, bool)> {
    Ok(match value["kind"].as_str().unwrap_or_default() {
        "ExternalSecret" => (ApiResource::erase::<ExternalSecret>(&()), true),
        "SecretStore" => (ApiResource::erase::<SecretStore>(&()), true),
        "ClusterSecretStore" => (ApiResource::erase::<ClusterSecretStore>(&()), false),
        "ClusterExternalSecret" => (ApiResource::erase::<ClusterExternalSecret>(&()), false),
        "PushSecret" => (ApiResource::erase::<PushSecret>(&()), true),
        "ClusterPushSecret" => (ApiResource::erase::<ClusterPushSecret>(&()), false),
        other => bail!("unexpected kind {other}"),
    })
}

/// Typed view of an object: deserializes and returns `validate()`'s errors (for a SecretStore, with the checks
/// that depend on its `metadata.namespace`).
pub(crate) fn validate(value: &Value) -> anyhow::Result<Vec<FieldError>> {
    let v = value.clone();
    Ok(match value["kind"].as_str().unwrap_or_default() {
        "ExternalSecret" => serde_json::from_value::<ExternalSecret>(v)?.spec.validate(),
        "SecretStore" => {
            let store = serde_json::from_value::<SecretStore>(v)?;
            store.spec.validate_for(
                syncret_crds::StoreKind::SecretStore,
                store.metadata.namespace.as_deref(),
            )
        }
        "ClusterSecretStore" => serde_json::from_value::<ClusterSecretStore>(v)?.spec.validate(),
        "ClusterExternalSecret" => serde_json::from_value::<ClusterExternalSecret>(v)?.spec.validate(),
        "PushSecret" => serde_json::from_value::<PushSecret>(v)?.spec.validate(),
        "ClusterPushSecret" => serde_json::from_value::<ClusterPushSecret>(v)?.spec.validate(),
        other => bail!("unexpected kind {other}"),
    })
}

/// A fixture placed in the test namespace (cluster-scoped names get the namespace as a prefix, so runs and
/// other test binaries sharing the control plane do not collide).
struct Placed {
    api: Api<DynamicObject>,
    name: String,
    manifest: Value,
}

fn place(client: &Client, ns: &TestNamespace, fixture: &Value) -> anyhow::Result<Placed> {
    let (ar, namespaced) = resource(fixture)?;
    let mut manifest = fixture.clone();
    let name = manifest["metadata"]["name"]
        .as_str()
        .context("fixture without metadata.name")?
        .to_owned();
    let (api, name) = if namespaced {
        manifest["metadata"]["namespace"] = Value::String(ns.name.clone());
        (Api::namespaced_with(client.clone(), &ns.name, &ar), name)
    } else {
        let name = format!("{}-{name}", ns.name);
        manifest["metadata"]["name"] = Value::String(name.clone());
        (Api::all_with(client.clone(), &ar), name)
    };
    Ok(Placed { api, name, manifest })
}

async fn apply(p: &Placed) -> Result<DynamicObject, kube::Error> {
    let params = PatchParams::apply(MANAGER).force().validation_strict();
    p.api.patch(&p.name, &params, &Patch::Apply(&p.manifest)).await
}

async fn cleanup(placed: &[Placed]) {
    for p in placed {
        // Namespaced objects go with the namespace; cluster-scoped ones are deleted here.
        if p.manifest["metadata"].get("namespace").is_none() {
            let _ = p.api.delete(&p.name, &DeleteParams::default()).await;
        }
    }
}

/// Paths in `expected` whose value is missing or different in `actual`.
fn differences(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                match a.get(k) {
                    Some(av) => differences(v, av, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k} is missing")),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                differences(ev, av, &format!("{path}[{i}]"), out);
            }
        }
        (e, a) if e == a => {}
        (e, a) => out.push(format!("{path}: sent {e}, read back {a}")),
    }
}

#[tokio::test]
async fn eso_fixtures_apply_strictly_and_read_back_unchanged() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("crds-fixtures").await?;
    let client = cp.client().await?;
    let all = fixtures(&repo_root().join("tests/fixtures/eso"))?;
    ensure!(all.len() >= 30, "only {} fixtures", all.len());

    let mut placed = Vec::new();
    let mut problems = Vec::new();
    for (file, _, fixture) in &all {
        let p = place(&client, &ns, fixture)?;
        match apply(&p).await {
            Err(e) => problems.push(format!("{file}: rejected: {e}")),
            Ok(_) => {
                let back = serde_json::to_value(p.api.get(&p.name).await?)?;
                let mut diff = Vec::new();
                differences(&fixture["spec"], &back["spec"], "spec", &mut diff);
                for key in ["labels", "annotations"] {
                    differences(
                        &fixture["metadata"][key],
                        &back["metadata"][key],
                        &format!("metadata.{key}"),
                        &mut diff,
                    );
                }
                problems.extend(diff.into_iter().map(|d| format!("{file}: {d}")));
                match validate(&back) {
                    Err(e) => problems.push(format!("{file}: read back but does not deserialize: {e}")),
                    Ok(errs) => problems.extend(errs.iter().map(|e| format!("{file}: validate: {e}"))),
                }
            }
        }
        placed.push(p);
    }

    // ESO's defaults are applied by the apiserver.
    let es: Api<ExternalSecret> = ns.api();
    let ecr = es.get("ecr-secret").await?;
    let generator = ecr.spec.data_from[0]
        .source_ref
        .as_ref()
        .and_then(|s| s.generator_ref.as_ref());
    assert_eq!(
        generator.map(|g| g.api_version.as_str()),
        Some("generators.external-secrets.io/v1alpha1")
    );
    let raw = serde_json::to_value(es.get("multi-store").await?)?;
    assert_eq!(raw["spec"]["target"]["creationPolicy"], "Owner");
    assert_eq!(raw["spec"]["target"]["deletionPolicy"], "Retain");
    assert!(
        raw["spec"]["data"][0]["remoteRef"].get("conversionStrategy").is_none(),
        "ESO v1 sets no default here"
    );
    let raw = serde_json::to_value(es.get("password-generator").await?)?;
    assert_eq!(raw["spec"]["target"]["creationPolicy"], "Owner");
    let stores: Api<SecretStore> = ns.api();
    let vault = serde_json::to_value(stores.get("vault-kubernetes-default").await?)?;
    assert_eq!(vault["spec"]["provider"]["vault"]["version"], "v2");
    assert_eq!(
        vault["spec"]["provider"]["vault"]["auth"]["kubernetes"]["mountPath"],
        "kubernetes"
    );
    let es_default = serde_json::to_value(es.get("on-change").await?)?;
    assert_eq!(es_default["spec"]["refreshInterval"], "1h0m0s");

    cleanup(&placed).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[tokio::test]
async fn invalid_fixtures_are_rejected_naming_the_field() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("crds-invalid").await?;
    let client = cp.client().await?;
    let all = fixtures(&repo_root().join("tests/fixtures/eso/invalid"))?;
    ensure!(all.len() >= 20, "only {} invalid fixtures", all.len());

    let mut placed = Vec::new();
    let mut problems = Vec::new();
    for (file, text, fixture) in &all {
        let first = text.lines().next().unwrap_or_default();
        let p = place(&client, &ns, fixture)?;
        let result = apply(&p).await;
        if let Some(expected) = first.strip_prefix("# expect-apiserver:").map(str::trim) {
            match result {
                Ok(_) => problems.push(format!("{file}: the apiserver accepted it")),
                Err(kube::Error::Api(status)) => {
                    let detail = format!("{} {:?}", status.message, status.details);
                    if !detail.contains(expected) {
                        problems.push(format!(
                            "{file}: rejected without naming {expected:?}: {}",
                            status.message
                        ));
                    }
                }
                Err(e) => problems.push(format!("{file}: unexpected error {e}")),
            }
        } else if let Some(expected) = first.strip_prefix("# expect:").map(str::trim) {
            match result {
                Err(e) => problems.push(format!(
                    "{file}: the schema rejects it, expected only validate() to: {e}"
                )),
                Ok(obj) => match validate(&serde_json::to_value(obj)?) {
                    Err(e) => problems.push(format!("{file}: accepted but does not deserialize: {e}")),
                    Ok(errs) if errs.iter().any(|e| e.to_string().contains(expected)) => {}
                    Ok(errs) => problems.push(format!("{file}: validate() does not name {expected:?}: {errs:?}")),
                },
            }
        } else {
            problems.push(format!("{file}: no `# expect` line"));
        }
        placed.push(p);
    }
    // Without strict field validation the unknown provider key is pruned, which leaves `provider: {}`, and
    // `minProperties: 1` still rejects the store.
    let (_, _, unknown) = all
        .iter()
        .find(|(f, _, _)| f == "ss-unknown-provider.yaml")
        .context("fixture")?;
    let p = place(&client, &ns, unknown)?;
    let lax = PatchParams::apply(MANAGER).force().validation_ignore();
    match p.api.patch(&p.name, &lax, &Patch::Apply(&p.manifest)).await {
        Err(kube::Error::Api(status)) if status.message.contains("spec.provider") => {}
        other => problems.push(format!("unknown provider without strict validation: {other:?}")),
    }

    cleanup(&placed).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// `kubectl explain externalsecrets.spec.target.template` reads the OpenAPI v3 the apiserver publishes.
#[tokio::test]
async fn openapi_has_the_template_schema() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let client = cp.client().await?;
    let doc: Value = eventually(
        Duration::from_secs(60),
        "the external-secrets.io/v1 OpenAPI document",
        || {
            let client = client.clone();
            async move {
                let req = http::Request::get("/openapi/v3/apis/external-secrets.io/v1")
                    .body(Vec::new())
                    .ok()?;
                let doc: Value = client.request(req).await.ok()?;
                doc.pointer("/components/schemas/io.external-secrets.v1.ExternalSecret")
                    .is_some()
                    .then_some(doc)
            }
        },
    )
    .await?;
    let schemas = &doc["components"]["schemas"];
    let es = &schemas["io.external-secrets.v1.ExternalSecret"];
    let template = es
        .pointer("/properties/spec/properties/target/properties/template")
        .context("no spec.target.template in the published schema")?;
    assert!(
        template.get("x-kubernetes-preserve-unknown-fields").is_none(),
        "{template}"
    );
    let props = template["properties"]
        .as_object()
        .context("template has no properties")?;
    for field in [
        "type",
        "engineVersion",
        "metadata",
        "mergePolicy",
        "data",
        "templateFrom",
    ] {
        assert!(props.contains_key(field), "template.{field} missing from {template}");
    }
    assert_eq!(props["engineVersion"]["default"], "v2");
    assert_eq!(props["mergePolicy"]["enum"], serde_json::json!(["Replace", "Merge"]));
    let from = &props["templateFrom"]["items"]["properties"];
    assert_eq!(from["target"]["default"], "Data");
    assert!(from["configMap"]["properties"]["items"]["items"]["properties"]["templateAs"].is_object());
    // The other kinds are published too (PushSecret at v1alpha1).
    for kind in ["ClusterExternalSecret", "SecretStore", "ClusterSecretStore"] {
        ensure!(
            schemas.get(format!("io.external-secrets.v1.{kind}")).is_some(),
            "{kind} not published"
        );
    }
    let alpha: Value = {
        let req = http::Request::get("/openapi/v3/apis/external-secrets.io/v1alpha1").body(Vec::new())?;
        client.request(req).await?
    };
    for kind in ["PushSecret", "ClusterPushSecret"] {
        ensure!(
            alpha["components"]["schemas"]
                .get(format!("io.external-secrets.v1alpha1.{kind}"))
                .is_some(),
            "{kind} not published"
        );
    }
    Ok(())
}

/// Short names, categories and printer columns work for `kubectl get` (through discovery and the table API).
#[tokio::test]
async fn discovery_lists_short_names_and_categories() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let client = cp.client().await?;
    let req = http::Request::get("/apis/external-secrets.io/v1").body(Vec::new())?;
    let list: k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList = client.request(req).await?;
    let find = |plural: &str| list.resources.iter().find(|r| r.name == plural).cloned();
    let es = find("externalsecrets").context("externalsecrets not discovered")?;
    assert_eq!(es.short_names, Some(vec!["es".to_owned()]));
    assert_eq!(es.categories, Some(vec!["external-secrets".to_owned()]));
    assert!(es.namespaced);
    let css = find("clustersecretstores").context("clustersecretstores not discovered")?;
    assert_eq!(css.short_names, Some(vec!["css".to_owned()]));
    assert!(!css.namespaced);
    assert!(find("externalsecrets/status").is_some(), "status subresource");
    assert_eq!(ExternalSecret::plural(&()), "externalsecrets");
    Ok(())
}
