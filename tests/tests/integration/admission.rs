//! Apply-time validation on the real kube-apiserver: the generated ValidatingAdmissionPolicies
//! (`deploy/admission/`), bound to this test's labelled objects only, judge every rule sample of
//! `crds/src/rules.rs` and every ESO fixture by server-side dry-run:
//! - each rule's sample is refused, and the message names the field `validate()` names;
//! - every valid fixture is still accepted;
//! - every invalid fixture whose problem the rule table enforces at apply is refused naming the field, and so
//!   is every fixture ESO v2.9's validating webhook refuses (the list below); the figures are printed for
//!   docs/validation.md.
use std::collections::BTreeMap;

use anyhow::ensure;
use serde_json::Value;
use syncret_crds::rules::Rule;
use syncret_crds::{ExternalSecret, FieldError};
use syncret_tests::admission::{Policies, names_field};
use syncret_tests::{ControlPlane, repo_root};

use crate::crds::{fixtures, validate};

/// The manifest with the namespace the dry-run puts it in (what a SecretStore's own-namespace check needs).
fn placed(manifest: &Value, namespace: &str) -> Value {
    let mut m = manifest.clone();
    m["metadata"]["namespace"] = Value::String(namespace.to_owned());
    m
}

/// The invalid fixtures ESO v2.9 refuses at apply beyond its CRD schema: its validating webhook
/// (`apis/externalsecrets/v1/*_validator.go`, the providers' `ValidateStore`) or the webhook's decoding of
/// `metav1.Duration` fields. ESO has no webhook for ClusterExternalSecret or PushSecret.
const ESO_WEBHOOK_REFUSES: &[&str] = &[
    "css-bad-namespace-regex.yaml",
    "es-bad-refresh-interval.yaml",
    "es-bad-sync-window-duration.yaml",
    "es-bootstrap-token-type.yaml",
    "es-datafrom-extract-and-find.yaml",
    "es-datafrom-extract-and-generator.yaml",
    "es-datafrom-nothing.yaml",
    "es-delete-without-owner.yaml",
    "es-duplicate-secret-key.yaml",
    "es-merge-deletion-with-none.yaml",
    "es-no-data.yaml",
    "es-service-account-token.yaml",
    "es-templatefrom-privileged-target.yaml",
    "ss-azurekv-custom-cloud-without-sdk.yaml",
    "ss-bad-refresh-interval.yaml",
    "ss-fake-empty-value.yaml",
    "ss-vault-approle-without-role.yaml",
    "ss-vault-cas-with-kv-v1.yaml",
    "ss-webhook-bad-timeout.yaml",
];

#[tokio::test]
async fn every_rule_sample_is_refused_at_apply_naming_the_field() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("admission-rules").await?;
    let client = cp.client().await?;
    let policies = Policies::install(&client, &ns.name).await?;
    let mut problems = Vec::new();
    for &rule in Rule::ALL {
        let def = rule.def();
        let manifest: Value = serde_yaml::from_str(def.sample)?;
        let errs = validate(&placed(&manifest, &ns.name))?;
        match policies.verdict(&ns.name, &manifest).await? {
            None => problems.push(format!("{rule:?}: the apiserver accepts its sample")),
            Some(message) => {
                let mine: Vec<&FieldError> = errs.iter().filter(|e| e.rule == Some(rule)).collect();
                if !mine.iter().any(|e| names_field(&message, e)) {
                    problems.push(format!(
                        "{rule:?}: refused without naming {:?}: {message}",
                        mine.iter().map(|e| &e.path).collect::<Vec<_>>()
                    ));
                }
            }
        }
    }
    policies.uninstall().await;
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[tokio::test]
async fn fixtures_valid_accepted_invalid_refused_at_apply() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("admission-fixtures").await?;
    let client = cp.client().await?;
    let policies = Policies::install(&client, &ns.name).await?;
    let mut problems = Vec::new();

    let valid = fixtures(&repo_root().join("tests/fixtures/eso"))?;
    ensure!(valid.len() >= 30, "only {} valid fixtures", valid.len());
    for (file, _, manifest) in &valid {
        if let Some(message) = policies.verdict(&ns.name, manifest).await? {
            problems.push(format!("{file}: a valid fixture is refused: {message}"));
        }
    }

    // The quick start (`e2e/up.sh` applies it with the policies installed).
    let quickstart = std::fs::read_to_string(repo_root().join("examples/quickstart.yaml"))?;
    for doc in serde_yaml::Deserializer::from_str(&quickstart) {
        let manifest: Value = serde::Deserialize::deserialize(doc)?;
        if manifest["apiVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("external-secrets.io/"))
            && let Some(message) = policies.verdict(&ns.name, &manifest).await?
        {
            problems.push(format!("examples/quickstart.yaml: refused: {message}"));
        }
    }

    let invalid = fixtures(&repo_root().join("tests/fixtures/eso/invalid"))?;
    // How each invalid fixture fared: by the CRD schema (as without the policies), by the policies, or not.
    let mut tally: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (file, text, manifest) in &invalid {
        let first = text.lines().next().unwrap_or_default();
        let by_schema = first.starts_with("# expect-apiserver:");
        let expected_path = first
            .split_once(':')
            .map(|(_, rest)| rest.trim())
            .map(|rest| rest.split(": ").next().unwrap_or(rest).to_owned())
            .unwrap_or_default();
        let errs = validate(&placed(manifest, &ns.name)).unwrap_or_default();
        let enforced = errs.iter().any(|e| e.rule.is_some_and(|r| r.def().refused_at_apply()));
        let verdict = policies.verdict(&ns.name, manifest).await?;
        match &verdict {
            Some(message) => {
                tally
                    .entry(if by_schema { "schema" } else { "policy" })
                    .or_default()
                    .push(file.clone());
                let named = message.contains(&expected_path)
                    || errs
                        .iter()
                        .any(|e| e.path.starts_with(&expected_path) && names_field(message, e));
                if !named {
                    problems.push(format!("{file}: refused without naming {expected_path:?}: {message}"));
                }
            }
            None => {
                tally.entry("accepted").or_default().push(file.clone());
                if by_schema || enforced {
                    problems.push(format!("{file}: accepted at apply; validate() says {errs:?}"));
                }
                if ESO_WEBHOOK_REFUSES.contains(&file.as_str()) {
                    problems.push(format!("{file}: ESO's webhook refuses it, the policies accept it"));
                }
            }
        }
    }
    let count = |k: &str| tally.get(k).map_or(0, Vec::len);
    eprintln!(
        "admission figures: {} valid fixtures accepted of {}; {} invalid fixtures: {} refused by the CRD schema, \
         {} by the admission policies, {} accepted ({:?}); ESO's webhook refuses {} of them",
        valid.len() - problems.iter().filter(|p| p.contains("a valid fixture")).count(),
        valid.len(),
        invalid.len(),
        count("schema"),
        count("policy"),
        count("accepted"),
        tally.get("accepted"),
        ESO_WEBHOOK_REFUSES.len(),
    );
    policies.uninstall().await;
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// An object created before the policies (or by someone allowed to skip them) can still be labelled,
/// annotated and deleted: UPDATEs that leave the spec alone are not judged again.
#[tokio::test]
async fn metadata_updates_of_an_existing_invalid_object_pass() -> anyhow::Result<()> {
    use kube::api::{Api, DeleteParams, Patch, PatchParams};
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("admission-ratchet").await?;
    let client = cp.client().await?;
    let es: Api<ExternalSecret> = Api::namespaced(client.clone(), &ns.name);
    // Created unlabelled: no binding of this test judges it.
    let invalid: Value = serde_yaml::from_str(Rule::EsNoData.def().sample)?;
    es.patch("sample", &PatchParams::apply("syncret-tests"), &Patch::Apply(&invalid))
        .await?;
    let policies = Policies::install(&client, &ns.name).await?;
    // Now labelled for the policies: a metadata-only change passes, a spec change is judged.
    let label = serde_json::json!({"metadata": {"labels": {syncret_tests::admission::LABEL: ns.name.clone()}, "finalizers": ["syncret.dev/test"]}});
    es.patch("sample", &PatchParams::default(), &Patch::Merge(&label))
        .await?;
    let spec = serde_json::json!({"spec": {"refreshInterval": "2h"}});
    let refused = es.patch("sample", &PatchParams::default(), &Patch::Merge(&spec)).await;
    ensure!(
        refused.is_err(),
        "a spec change of an invalid object passes: {refused:?}"
    );
    let unfinalize = serde_json::json!({"metadata": {"finalizers": null}});
    es.delete("sample", &DeleteParams::default()).await?;
    es.patch("sample", &PatchParams::default(), &Patch::Merge(&unfinalize))
        .await?;
    policies.uninstall().await;
    Ok(())
}
