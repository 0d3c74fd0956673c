//! `syncret check`: External Secrets Operator objects (from files or a cluster) against what this build of
//! syncret supports. Each object is **supported** as it is, **supported with a difference** (syncret behaves
//! differently on purpose: the tenant boundary, adoption of existing Secrets, …), or **not supported** (a
//! provider, generator, field or value syncret does not have), with what to do.
//!
//! What is supported is derived from the code wherever it can be, so providers and fields added by others are
//! known here without a second list:
//! - kinds, versions, fields and enum values from syncret's own CRD schemas ([`syncret_crds::generate::crds`]),
//!   [`schema`];
//! - providers from the schema and the provider registry compiled into this binary;
//! - the same validation, read plan and template parser the controllers use (`validate()`,
//!   [`crate::sync::fetch::plan`], [`syncret_template::Template::parse`]);
//! - ownership of existing Secrets with [`crate::sync::secret::check_ownership`];
//! - the rest (accepted by the CRDs but refused when a provider builds its client, and the deliberate
//!   differences) from the table in [`rules`], which `docs/design.md` and `docs/migration.md` print.
//!
//! [`check`] is pure (objects and facts in, report out); [`cluster`] reads a cluster; [`main`] is the command.
pub mod cluster;
mod objects;
mod output;
pub mod rules;
pub mod schema;

use std::collections::BTreeMap;
use std::process::ExitCode;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

use crate::cli::{CheckArgs, CheckFormat};

/// How much a finding matters.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Worth knowing; nothing changes.
    Note,
    /// Works, but not exactly as under ESO.
    Difference,
    /// Does not work under syncret as it is.
    Unsupported,
}

/// An object's overall result.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Supported,
    Difference,
    Unsupported,
}

/// One thing to say about one field of an object.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    /// Path of the field (`spec.provider.aws.auth`), or the object's own kind for object-wide findings.
    pub field: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// The result for one object.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReport {
    pub kind: String,
    pub api_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// `file#document` or `cluster`.
    pub source: String,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
}

/// Counts per verdict.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub objects: usize,
    pub supported: usize,
    pub difference: usize,
    pub unsupported: usize,
}

/// A document that could not be checked.
#[derive(Serialize, Clone, Debug)]
pub struct Skipped {
    pub source: String,
    pub reason: String,
}

/// The whole report.
#[derive(Serialize, Clone, Debug, Default)]
pub struct Report {
    pub summary: Summary,
    pub objects: Vec<ObjectReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

impl Report {
    /// Whether anything is not supported (the command then exits with status 1).
    pub fn has_unsupported(&self) -> bool {
        self.summary.unsupported > 0
    }
}

/// One object to check: where it came from and its JSON.
#[derive(Clone, Debug)]
pub struct Input {
    pub source: String,
    pub value: Value,
}

impl From<crate::manifests::Manifest> for Input {
    fn from(m: crate::manifests::Manifest) -> Self {
        Input {
            source: m.source.to_string(),
            value: m.value,
        }
    }
}

/// What is known about the cluster beyond the objects themselves (empty when checking files).
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// Metadata of the Secrets in the namespaces of the ExternalSecrets, by (namespace, name); `None` when not
    /// read (files), so adoption of existing Secrets is not judged.
    pub secrets: Option<BTreeMap<(String, String), ObjectMeta>>,
    /// Namespaces (metadata), for ESO's finalizers on them.
    pub namespaces: Vec<ObjectMeta>,
    /// The CustomResourceDefinitions of `external-secrets.io` present.
    pub crds: Vec<CustomResourceDefinition>,
}

/// How syncret will run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `--controller-class` of the syncret that takes over.
    pub controller_class: String,
    /// Namespace of objects from files that do not name one.
    pub default_namespace: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            controller_class: "default".into(),
            default_namespace: "default".into(),
        }
    }
}

/// Checks every object of the `external-secrets.io` and `generators.external-secrets.io` groups among `inputs`
/// (ConfigMaps among them are used as `templateFrom` sources), and the cluster facts.
pub fn check(inputs: &[Input], facts: &Facts, settings: &Settings) -> Report {
    let mut report = Report {
        objects: objects::check_all(inputs, facts, settings),
        ..Default::default()
    };
    report.objects.extend(objects::check_facts(facts));
    report.summary = summarize(&report.objects);
    report
}

fn summarize(objects: &[ObjectReport]) -> Summary {
    let mut s = Summary {
        objects: objects.len(),
        ..Default::default()
    };
    for o in objects {
        match o.verdict {
            Verdict::Supported => s.supported += 1,
            Verdict::Difference => s.difference += 1,
            Verdict::Unsupported => s.unsupported += 1,
        }
    }
    s
}

/// The verdict the findings add up to.
pub fn verdict(findings: &[Finding]) -> Verdict {
    match findings.iter().map(|f| f.level).max() {
        Some(Level::Unsupported) => Verdict::Unsupported,
        Some(Level::Difference) => Verdict::Difference,
        _ => Verdict::Supported,
    }
}

/// `syncret check`: reads files and/or the cluster, prints the report, exits 1 when anything is not supported.
pub fn main(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let settings = Settings {
        controller_class: args.controller_class.clone(),
        default_namespace: if args.namespace.is_empty() {
            "default".into()
        } else {
            args.namespace.clone()
        },
    };
    let mut inputs = Vec::new();
    let mut skipped = Vec::new();
    if !args.files.is_empty() {
        let m = crate::manifests::load(&args.files)?;
        skipped.extend(m.skipped.into_iter().map(|s| Skipped {
            source: s.source.to_string(),
            reason: s.reason,
        }));
        inputs.extend(m.objects.into_iter().map(Input::from));
    }
    let mut facts = Facts::default();
    if args.files.is_empty() || args.cluster {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let read = rt.block_on(cluster::read(args))?;
        inputs.extend(read.inputs);
        facts = read.facts;
        skipped.extend(read.skipped);
    }
    let mut report = check(&inputs, &facts, &settings);
    report.skipped = skipped;
    let text = match args.output {
        CheckFormat::Json => {
            let mut s = serde_json::to_string_pretty(&report)?;
            s.push('\n');
            s
        }
        CheckFormat::Text => output::text(&report, args.all),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(if report.has_unsupported() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, OwnerReference};

    use super::*;

    /// A cluster's worth of ESO objects, as `kubectl get -o yaml` or a GitOps repository has them.
    const MANIFESTS: &str = r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: fake, namespace: team-a}
spec:
  provider:
    fake:
      data: [{key: db, value: '{"user":"u"}'}]
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: op, namespace: team-a}
spec:
  provider:
    akeyless:
      akeylessGWApiURL: https://akl.example
      authSecretRef: {secretRef: {accessID: {name: a, key: id}, accessType: {name: a, key: t}, accessTypeParam: {name: a, key: p}}}
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: aws, namespace: team-a}
spec:
  provider:
    aws: {service: SecretsManager, region: eu-west-1}
---
apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata: {name: params}
spec:
  controller: other
  provider:
    aws: {service: CertificateManager, region: eu-west-1}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: fine, namespace: team-a}
spec:
  secretStoreRef: {name: fake}
  target:
    template:
      data: {dsn: "user={{ .user | upper }}"}
  dataFrom: [{extract: {key: db}}]
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: on-op, namespace: team-a}
spec:
  secretStoreRef: {name: op}
  data: [{secretKey: a, remoteRef: {key: a}}]
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: odd, namespace: team-a}
spec:
  secretStoreRef: {name: fake}
  refreshPolicy: Sometimes
  shinyNewField: true
  target:
    template:
      data: {cert: "{{ env \"HOME\" }}"}
      templateFrom: [{configMap: {name: tpl, items: [{key: conf}]}}]
  data: [{secretKey: a, remoteRef: {key: db}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: tpl, namespace: team-a}
data: {conf: "{{ .user "}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: generated, namespace: team-a}
spec:
  dataFrom: [{sourceRef: {generatorRef: {kind: Password, name: pw}}}]
---
apiVersion: generators.external-secrets.io/v1alpha1
kind: Password
metadata: {name: pw, namespace: team-a}
spec: {length: 32}
---
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata: {name: old, namespace: team-a}
spec:
  secretStoreRef: {name: params, kind: ClusterSecretStore}
  data: [{secretKey: a, remoteRef: {key: a}}]
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: takeover, namespace: team-a}
spec:
  secretStoreRef: {name: fake}
  target: {creationPolicy: Orphan}
  data: [{secretKey: a, remoteRef: {key: db}}]
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: eso-made, namespace: team-a}
spec:
  secretStoreRef: {name: fake}
  data: [{secretKey: a, remoteRef: {key: db}}]
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata: {name: push, namespace: team-a}
spec:
  deletionPolicy: Delete
  secretStoreRefs: [{name: aws}]
  selector: {secret: {name: src}}
  data: [{match: {secretKey: a, remoteRef: {remoteKey: r}}}]
"#;

    fn inputs() -> Vec<Input> {
        let mut m = crate::manifests::Manifests::default();
        crate::manifests::parse_into(Path::new("eso.yaml"), MANIFESTS, &mut m);
        assert!(m.skipped.is_empty(), "{:?}", m.skipped);
        m.objects.into_iter().map(Input::from).collect()
    }

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("team-a".into()),
            ..Default::default()
        }
    }

    /// An existing Secret nobody manages, one ESO wrote for `eso-made`, namespaces and CRDs.
    fn facts() -> Facts {
        let mut eso_made = meta("eso-made");
        eso_made.labels = Some([("reconcile.external-secrets.io/managed".to_string(), "true".to_string())].into());
        eso_made.owner_references = Some(vec![OwnerReference {
            api_version: "external-secrets.io/v1".into(),
            kind: "ExternalSecret".into(),
            name: "eso-made".into(),
            uid: "u".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]);
        eso_made.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some("externalsecrets.external-secrets.io/eso-made".into()),
            operation: Some("Update".into()),
            ..Default::default()
        }]);
        let mut ns = ObjectMeta {
            name: Some("team-a".into()),
            ..Default::default()
        };
        ns.finalizers = Some(vec![
            "externalsecrets.external-secrets.io/ces-shared".into(),
            "example.com/keep".into(),
        ]);
        let crd: CustomResourceDefinition = serde_json::from_value(serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "externalsecrets.external-secrets.io",
                         "labels": {"app.kubernetes.io/managed-by": "Helm"},
                         "annotations": {"meta.helm.sh/release-name": "external-secrets",
                                         "meta.helm.sh/release-namespace": "eso"}},
            "spec": {"group": "external-secrets.io", "scope": "Namespaced",
                     "names": {"kind": "ExternalSecret", "plural": "externalsecrets"},
                     "versions": [{"name": "v1", "served": true, "storage": true}]},
            "status": {"storedVersions": ["v1beta1", "v1"]}
        }))
        .unwrap();
        let mut kept = crd.clone();
        kept.metadata.name = Some("secretstores.external-secrets.io".into());
        kept.spec.names.kind = "SecretStore".into();
        kept.spec.names.plural = "secretstores".into();
        kept.status = None;
        kept.metadata
            .annotations
            .get_or_insert_default()
            .insert("helm.sh/resource-policy".into(), "keep".into());
        Facts {
            secrets: Some(
                [
                    (("team-a".to_string(), "takeover".to_string()), meta("takeover")),
                    (("team-a".to_string(), "eso-made".to_string()), eso_made),
                ]
                .into(),
            ),
            namespaces: vec![ns, meta("quiet")],
            crds: vec![crd, kept],
        }
    }

    fn by_name<'a>(r: &'a Report, kind: &str, name: &str) -> &'a ObjectReport {
        r.objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
            .unwrap_or_else(|| panic!("no {kind} {name} in {r:#?}"))
    }

    fn fields(o: &ObjectReport, level: Level) -> Vec<&str> {
        o.findings
            .iter()
            .filter(|f| f.level == level)
            .map(|f| f.field.as_str())
            .collect()
    }

    #[test]
    fn a_cluster_of_eso_objects() {
        let r = check(&inputs(), &facts(), &Settings::default());
        let v = |kind, name| by_name(&r, kind, name).verdict;

        assert_eq!(v("SecretStore", "fake"), Verdict::Supported);
        assert_eq!(v("ExternalSecret", "fine"), Verdict::Supported);
        assert!(by_name(&r, "ExternalSecret", "fine").findings.is_empty());

        // A provider syncret does not have, and what uses it.
        let op = by_name(&r, "SecretStore", "op");
        assert_eq!(fields(op, Level::Unsupported), ["spec.provider.akeyless"]);
        assert!(op.findings[0].message.contains("akeyless provider is not implemented"));
        assert_eq!(
            fields(by_name(&r, "ExternalSecret", "on-op"), Level::Unsupported),
            ["spec.secretStoreRef"]
        );

        // The tenant boundary: no auth on a namespaced store.
        let aws = by_name(&r, "SecretStore", "aws");
        assert_eq!(aws.verdict, Verdict::Difference);
        assert_eq!(fields(aws, Level::Difference), ["spec.provider.aws.auth"]);

        // Accepted but not supported, on a store of another class.
        let params = by_name(&r, "ClusterSecretStore", "params");
        assert_eq!(fields(params, Level::Unsupported), ["spec.provider.aws.service"]);
        assert_eq!(fields(params, Level::Note), ["spec.controller"]);
        assert_eq!(params.namespace, None);

        // Unknown field, enum value, template functions and templateFrom sources.
        let odd = by_name(&r, "ExternalSecret", "odd");
        let mut unsupported = fields(odd, Level::Unsupported);
        unsupported.sort();
        assert_eq!(
            unsupported,
            [
                "spec.refreshPolicy",
                "spec.shinyNewField",
                "spec.target.template.data[cert]",
                "spec.target.template.templateFrom[0].configMap (ConfigMap tpl, key conf)",
            ],
            "{odd:#?}"
        );
        // A function syncret leaves out (as ESO does: `env`); genCA and the other generators are supported now.
        let env = odd.findings.iter().find(|f| f.field.ends_with("[cert]")).unwrap();
        assert!(env.message.contains(r#"function "env" not defined"#), "{env:?}");
        assert!(env.action.as_deref().unwrap().contains("docs/design.md"));

        // Generators: Password is one syncret runs (docs/generators.md), so neither the object nor the
        // ExternalSecret using it is reported.
        assert!(fields(by_name(&r, "Password", "pw"), Level::Unsupported).is_empty());
        assert!(fields(by_name(&r, "ExternalSecret", "generated"), Level::Unsupported).is_empty());

        // v1beta1: the version; its store belongs to another class (a note).
        let old = by_name(&r, "ExternalSecret", "old");
        assert_eq!(fields(old, Level::Unsupported), ["apiVersion", "spec.secretStoreRef"]);

        // Existing Secrets: one nobody manages (not taken silently), one ESO wrote (taken over).
        let takeover = by_name(&r, "ExternalSecret", "takeover");
        assert_eq!(fields(takeover, Level::Difference), ["spec.target.name"]);
        assert!(
            takeover.findings[0]
                .action
                .as_deref()
                .unwrap()
                .contains("syncret.dev/adopt-existing-secret")
        );
        assert_eq!(v("ExternalSecret", "eso-made"), Verdict::Supported);

        // PushSecret: a note about deletion, and its store's difference does not spread.
        assert_eq!(
            fields(by_name(&r, "PushSecret", "push"), Level::Note),
            ["spec.deletionPolicy"]
        );

        // The cluster: ESO's namespace finalizers, the CRD owned by ESO's release and stored as v1beta1.
        let ns = by_name(&r, "Namespace", "team-a");
        assert_eq!(ns.verdict, Verdict::Difference);
        let fix = ns.findings[0].action.as_deref().unwrap();
        assert!(
            fix.contains(
                r#"kubectl patch namespace team-a --type=merge -p '{"metadata":{"finalizers":["example.com/keep"]}}'"#
            ),
            "{fix}"
        );
        assert!(!r.objects.iter().any(|o| o.name == "quiet"));
        let crd = by_name(&r, "CustomResourceDefinition", "externalsecrets.external-secrets.io");
        assert_eq!(fields(crd, Level::Difference), ["metadata.annotations"]);
        assert_eq!(fields(crd, Level::Unsupported), ["status.storedVersions"]);
        assert!(crd.findings[0].action.as_deref().unwrap().contains("crds.annotations"));
        let kept = by_name(&r, "CustomResourceDefinition", "secretstores.external-secrets.io");
        assert_eq!(
            (kept.verdict, fields(kept, Level::Note)),
            (Verdict::Supported, vec!["metadata.annotations"])
        );

        assert!(r.has_unsupported());
        assert_eq!(r.summary.objects, r.objects.len());
        assert_eq!(
            r.summary.supported + r.summary.difference + r.summary.unsupported,
            r.summary.objects
        );
    }

    #[test]
    fn files_without_cluster_facts_judge_no_existing_secret() {
        let r = check(&inputs(), &Facts::default(), &Settings::default());
        assert_eq!(by_name(&r, "ExternalSecret", "takeover").verdict, Verdict::Supported);
        assert!(!r.objects.iter().any(|o| o.kind == "Namespace"));
    }

    #[test]
    fn side_by_side_class_reports_stores_without_one() {
        let settings = Settings {
            controller_class: "syncret".into(),
            ..Default::default()
        };
        let r = check(&inputs(), &Facts::default(), &settings);
        let fake = by_name(&r, "SecretStore", "fake");
        assert_eq!(fields(fake, Level::Difference), ["spec.controller"]);
        // The store of class "other" is left to it.
        assert_eq!(
            fields(by_name(&r, "ClusterSecretStore", "params"), Level::Note),
            ["spec.controller"]
        );
    }

    #[test]
    fn text_and_json_output() {
        let r = check(&inputs(), &facts(), &Settings::default());
        let text = output::text(&r, false);
        let first_unsupported = text.find("NOT SUPPORTED").unwrap();
        let first_difference = text.find("DIFFERENCE").unwrap();
        assert!(first_unsupported < first_difference, "{text}");
        assert!(!text.contains("ExternalSecret team-a/fine"), "{text}");
        assert!(output::text(&r, true).contains("SUPPORTED      ExternalSecret team-a/fine  (eso.yaml#5)"));
        assert!(text.trim_end().ends_with(&format!(
            "{} objects: {} supported, {} supported with a difference, {} not supported",
            r.summary.objects, r.summary.supported, r.summary.difference, r.summary.unsupported
        )));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["summary"]["objects"], r.objects.len());
        let op = json["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "op")
            .unwrap();
        assert_eq!(op["verdict"], "unsupported");
        assert_eq!(op["apiVersion"], "external-secrets.io/v1");
        assert_eq!(op["findings"][0]["level"], "unsupported");
    }

    #[test]
    fn the_repository_examples_are_supported() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let m = crate::manifests::load(&[root.join("examples")]).unwrap();
        let inputs: Vec<Input> = m.objects.into_iter().map(Input::from).collect();
        let r = check(&inputs, &Facts::default(), &Settings::default());
        assert!(r.summary.objects >= 2);
        assert_eq!(r.summary.supported, r.summary.objects, "{r:#?}");
    }
}
