//! The generated ValidatingAdmissionPolicies on a test control plane, bound so they judge only the objects a
//! test labels: other tests sharing the control plane keep testing syncret's reconcile-time checks (a cluster
//! without the policy), and one test can ask "would the apiserver refuse this?" with a server-side dry-run.
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::Value;

use syncret_crds::FieldError;
use syncret_crds::rules::Enforced;

use crate::repo_root;

/// The label a test puts on the objects the policies should judge (its value is the test's key).
pub const LABEL: &str = "syncret.dev/admission-test";

/// The committed policy file (`syncret crds --policy`).
pub const POLICY_FILE: &str = "deploy/admission/validating-admission-policies.yaml";

/// Policies installed for one test key.
pub struct Policies {
    client: Client,
    key: String,
}

fn api(client: &Client, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind);
    let plural = if kind == "ValidatingAdmissionPolicy" {
        "validatingadmissionpolicies"
    } else {
        "validatingadmissionpolicybindings"
    };
    Api::all_with(client.clone(), &ApiResource::from_gvk_with_plural(&gvk, plural))
}

/// The documents of the committed policy file.
pub fn documents() -> anyhow::Result<Vec<Value>> {
    let path = repo_root().join(POLICY_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v: Value = serde::Deserialize::deserialize(doc)?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

impl Policies {
    /// Applies every policy of the committed file and a binding per policy, named `<policy>-<key>`, that
    /// matches only objects labelled `LABEL=key`; returns once the policies refuse an invalid object.
    pub async fn install(client: &Client, key: &str) -> anyhow::Result<Self> {
        let pp = PatchParams::apply("syncret-tests-admission").force();
        for mut doc in documents()? {
            let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
            let name = match kind.as_str() {
                "ValidatingAdmissionPolicy" => doc["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
                "ValidatingAdmissionPolicyBinding" => {
                    let name = format!("{}-{key}", doc["metadata"]["name"].as_str().unwrap_or_default());
                    doc["metadata"]["name"] = Value::String(name.clone());
                    doc["spec"]["matchResources"] = serde_json::json!({
                        "objectSelector": { "matchLabels": { LABEL: key } }
                    });
                    name
                }
                other => bail!("unexpected {other} in {POLICY_FILE}"),
            };
            api(client, &kind)
                .patch(&name, &pp, &Patch::Apply(&doc))
                .await
                .with_context(|| format!("applying {kind} {name}"))?;
        }
        let policies = Self {
            client: client.clone(),
            key: key.to_owned(),
        };
        // Policies and bindings reach the admission plugin asynchronously: wait until each kind's policy
        // refuses a sample of that kind that only a policy (not the schema) refuses.
        let mut probes = Vec::new();
        for kind in syncret_crds::admission::KINDS {
            // A sample of this kind, or (ClusterSecretStore) of a store rule, retargeted.
            let samples: Vec<(syncret_crds::rules::Owner, Value)> = syncret_crds::Rule::ALL
                .iter()
                .map(|r| r.def())
                .filter(|d| matches!(d.enforced, Enforced::Policy { .. }))
                .filter_map(|d| Some((d.owner, serde_yaml::from_str::<Value>(d.sample).ok()?)))
                .collect();
            let mut probe = samples
                .iter()
                .find(|(_, v)| v["kind"] == kind.kind)
                .or_else(|| {
                    samples
                        .iter()
                        .find(|(owner, _)| *owner == syncret_crds::rules::Owner::Store)
                })
                .map(|(_, v)| v.clone())
                .with_context(|| format!("no policy sample of {}", kind.kind))?;
            probe["kind"] = Value::String(kind.kind.to_owned());
            probes.push(probe);
        }
        let deadline = Instant::now() + Duration::from_secs(90);
        for probe in &probes {
            loop {
                if policies.verdict("default", probe).await?.is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("the {} policy did not start refusing within 90s", probe["kind"]);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Ok(policies)
    }

    /// Server-side dry-run apply of `manifest` (strict field validation) in `namespace` (cluster-scoped kinds
    /// get the key as a name prefix), labelled for the policies: `None` when the apiserver accepts it,
    /// otherwise its message.
    pub async fn verdict(&self, namespace: &str, manifest: &Value) -> anyhow::Result<Option<String>> {
        let mut m = manifest.clone();
        let kind = m["kind"].as_str().context("manifest without kind")?.to_owned();
        let info = syncret_crds::admission::kind_info(&kind).with_context(|| format!("unexpected kind {kind}"))?;
        let api_version = m["apiVersion"]
            .as_str()
            .context("manifest without apiVersion")?
            .to_owned();
        let (group, version) = api_version.split_once('/').context("apiVersion without group")?;
        let gvk = GroupVersionKind::gvk(group, version, &kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, info.plural);
        let base = m["metadata"]["name"].as_str().unwrap_or("unnamed").to_owned();
        m["metadata"]["labels"][LABEL] = Value::String(self.key.clone());
        let namespaced = !kind.starts_with("Cluster");
        let (api, name): (Api<DynamicObject>, String) = if namespaced {
            m["metadata"]["namespace"] = Value::String(namespace.to_owned());
            (Api::namespaced_with(self.client.clone(), namespace, &ar), base)
        } else {
            let name = format!("{}-{base}", self.key);
            m["metadata"]["name"] = Value::String(name.clone());
            (Api::all_with(self.client.clone(), &ar), name)
        };
        let pp = PatchParams::apply("syncret-tests-admission")
            .force()
            .validation_strict()
            .dry_run();
        match api.patch(&name, &pp, &Patch::Apply(&m)).await {
            Ok(_) => Ok(None),
            // Strict field validation of a server-side apply answers 500 "failed to create typed patch
            // object" for an unknown field: a refusal too.
            Err(kube::Error::Api(status)) => Ok(Some(format!("{} {:?}", status.message, status.details))),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the bindings of this key (the policies stay: other keys may use them; they are inert unbound).
    pub async fn uninstall(self) {
        for doc in documents().unwrap_or_default() {
            if doc["kind"] == "ValidatingAdmissionPolicyBinding" {
                let name = format!("{}-{}", doc["metadata"]["name"].as_str().unwrap_or_default(), self.key);
                let _ = api(&self.client, "ValidatingAdmissionPolicyBinding")
                    .delete(&name, &Default::default())
                    .await;
            }
        }
    }
}

/// The field an error names, as the apiserver's message may spell it: the whole path; or (for a CRD rule,
/// which the apiserver reports at the rule's scope) the path without the table's field; or, for a regular
/// expression that does not compile (refused by an evaluation error, whose message quotes the expression, not
/// our message), the field in that expression and Go's regexp error.
pub fn names_field(message: &str, e: &FieldError) -> bool {
    if message.contains(&e.path) {
        return true;
    }
    let Some(rule) = e.rule else { return false };
    let def = rule.def();
    if let Enforced::Policy { test, .. } = def.enforced
        && test.contains("REGEX(")
    {
        let last = e.path.rsplit('.').next().unwrap_or_default();
        let last = last.split('[').next().unwrap_or_default();
        return message.contains("error parsing regexp") && message.contains(&format!(".{last}"));
    }
    !def.field.is_empty()
        && e.path
            .strip_suffix(&format!(".{}", def.field))
            .is_some_and(|scope| message.contains(scope))
}
