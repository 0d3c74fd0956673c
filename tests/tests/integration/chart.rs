//! The Helm chart `deploy/charts/syncret`: its CRDs are the generated ones; `helm lint --strict` passes with
//! every values file; every flag of the binary has a value and the rendered arguments parse; the rendered
//! manifests pass a server-side dry-run on the real apiserver; and its RBAC is enough for syncret to sync
//! (run as the chart's ServiceAccount, by impersonation) and denies what syncret does not need.
//!
//! helm is built from a pinned Go module by `e2e/build-controlplane.sh helm` (cached like the control plane).
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::{CommandFactory as _, Parser as _};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use syncret_tests::operator::Operator;
use syncret_tests::{ControlPlane, TestNamespace, apply_yaml, eventually, repo_root, unique_name};

fn chart() -> PathBuf {
    repo_root().join("deploy/charts/syncret")
}

fn values(file: &str) -> PathBuf {
    chart().join("ci").join(file)
}

/// The helm binary (built on first use).
pub(crate) fn helm() -> anyhow::Result<PathBuf> {
    static HELM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    HELM.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo_root().join("e2e/build-controlplane.sh"))
            .arg("helm")
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "e2e/build-controlplane.sh helm failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `helm template <release> <chart> --namespace <ns> [-f values] [--set k=v...]`, as parsed documents.
fn render(
    release: &str,
    namespace: &str,
    values_file: Option<&str>,
    set: &[&str],
) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut cmd = Command::new(helm()?);
    cmd.args(["template", release]).arg(chart()).args([
        "--namespace",
        namespace,
        "--include-crds",
        "--kube-version",
        "1.37.0",
    ]);
    if let Some(f) = values_file {
        cmd.arg("-f").arg(values(f));
    }
    for s in set {
        cmd.args(["--set", s]);
    }
    let text = run(&mut cmd)?;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v: serde_json::Value = serde::Deserialize::deserialize(doc)?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

fn kinds(docs: &[serde_json::Value]) -> BTreeSet<String> {
    docs.iter()
        .filter_map(|d| d["kind"].as_str().map(String::from))
        .collect()
}

fn container_args(docs: &[serde_json::Value]) -> Vec<String> {
    docs.iter()
        .find(|d| d["kind"] == "Deployment")
        .and_then(|d| d["spec"]["template"]["spec"]["containers"][0]["args"].as_array())
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

#[test]
fn chart_crds_are_the_generated_ones() {
    let drift = syncret_crds::generate::check_dir(&chart().join("crds")).unwrap();
    assert!(
        drift.is_empty(),
        "deploy/charts/syncret/crds is out of date; run `cargo run -p syncret -- crds --dir deploy/crds --dir \
         deploy/charts/syncret/crds`:\n  {}",
        drift.join("\n  ")
    );
}

#[test]
fn chart_admission_policies_are_the_generated_ones() {
    let file = chart().join("files/validating-admission-policies.yaml");
    let drift = syncret_crds::admission::check(&file).unwrap();
    assert!(
        drift.is_none(),
        "run `cargo run -p syncret -- crds --dir deploy/crds --dir deploy/charts/syncret/crds --policy \
         deploy/admission/validating-admission-policies.yaml --policy \
         deploy/charts/syncret/files/validating-admission-policies.yaml`: {drift:?}"
    );
}

/// The chart installs the generated ValidatingAdmissionPolicies and bindings (on by default), with its labels;
/// a value turns them off, another sets the bindings' actions; a scoped install binds its namespace only.
#[test]
fn chart_renders_the_admission_policies() -> anyhow::Result<()> {
    let generated = syncret_crds::admission::documents();
    let docs = render("rel", "syncret-system", None, &[])?;
    let of = |docs: &[serde_json::Value], kind: &str| -> Vec<serde_json::Value> {
        docs.iter().filter(|d| d["kind"] == kind).cloned().collect()
    };
    let policies = of(&docs, "ValidatingAdmissionPolicy");
    let bindings = of(&docs, "ValidatingAdmissionPolicyBinding");
    assert_eq!(policies.len(), 6);
    assert_eq!(bindings.len(), 6);
    for p in &policies {
        let want = generated
            .iter()
            .find(|g| g["metadata"]["name"] == p["metadata"]["name"])
            .unwrap();
        assert_eq!(
            p["spec"], want["spec"],
            "the chart renders the generated policy unchanged"
        );
        assert_eq!(p["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm");
        assert_eq!(
            p["metadata"]["labels"]["app.kubernetes.io/component"],
            "admission-policy"
        );
    }
    for b in &bindings {
        assert_eq!(b["spec"]["validationActions"], serde_json::json!(["Deny"]));
        assert!(b["spec"].get("matchResources").is_none(), "cluster-wide by default");
    }
    let off = render("rel", "syncret-system", None, &["admissionPolicy.enabled=false"])?;
    assert!(of(&off, "ValidatingAdmissionPolicy").is_empty());
    assert!(of(&off, "ValidatingAdmissionPolicyBinding").is_empty());
    let warn = render(
        "rel",
        "syncret-system",
        None,
        &["admissionPolicy.validationActions={Warn,Audit}"],
    )?;
    for b in of(&warn, "ValidatingAdmissionPolicyBinding") {
        assert_eq!(b["spec"]["validationActions"], serde_json::json!(["Warn", "Audit"]));
    }
    let scoped = render("rel", "syncret-system", Some("scoped-values.yaml"), &[])?;
    for b in of(&scoped, "ValidatingAdmissionPolicyBinding") {
        assert!(
            b["spec"]["matchResources"]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"].is_string(),
            "{b}"
        );
    }
    Ok(())
}

#[test]
fn helm_lint_passes_with_every_values_file() -> anyhow::Result<()> {
    for v in [None, Some("all-values.yaml"), Some("scoped-values.yaml")] {
        let mut cmd = Command::new(helm()?);
        cmd.args(["lint", "--strict"]).arg(chart());
        if let Some(f) = v {
            cmd.arg("-f").arg(values(f));
        }
        run(&mut cmd).with_context(|| format!("helm lint with {v:?}"))?;
    }
    // Two replicas without leader election would both write: the chart refuses to render.
    let err = render("r", "ns", None, &["replicaCount=2"]).unwrap_err();
    assert!(format!("{err:#}").contains("needs leaderElect"), "{err:#}");
    // Sharded replicas are active-active: any number renders, with the Lease permissions sharding needs.
    let docs = render(
        "r",
        "ns",
        None,
        &["replicaCount=3", "sharding.enabled=true", "sharding.shards=12"],
    )?;
    assert!(container_args(&docs).contains(&"--shards=12".to_string()));
    let role = docs
        .iter()
        .find(|d| d["kind"] == "Role" && d["rules"][0]["resources"][0] == "leases")
        .expect("a Role for the Leases");
    assert_eq!(
        role["rules"][0]["verbs"],
        serde_json::json!(["get", "list", "create", "update", "delete"])
    );
    let err = render("r", "ns", None, &["sharding.enabled=true", "sharding.shards=0"]).unwrap_err();
    assert!(format!("{err:#}").contains("between 1 and 256"), "{err:#}");
    Ok(())
}

#[test]
fn default_render_is_locked_down() -> anyhow::Result<()> {
    let docs = render("rel", "syncret-system", None, &[])?;
    let k = kinds(&docs);
    for want in [
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Service",
        "Deployment",
    ] {
        assert!(k.contains(want), "{want} in {k:?}");
    }
    for absent in ["ServiceMonitor", "PodDisruptionBudget", "ConfigMap", "Role"] {
        assert!(!k.contains(absent), "{absent} is off by default");
    }
    let dep = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let pod = &dep["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let ports: Vec<(&str, i64)> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["containerPort"].as_i64().unwrap()))
        .collect();
    assert_eq!(ports, [("metrics", 8080), ("live", 8082)]);
    let args = container_args(&docs);
    assert!(args.contains(&"--metrics-addr=:8080".to_string()));
    assert!(args.contains(&"--live-addr=:8082".to_string()));
    // No Lease permissions without leader election.
    assert!(!serde_json::to_string(&docs)?.contains("leases"));
    Ok(())
}

/// Generic targets are off by default; `genericTargets.enabled` passes ESO's flag and grants writes on ConfigMaps,
/// each listed resource gets its verbs (a full set by default) and is the only other kind syncret writes.
#[test]
fn generic_targets_get_rbac_and_flags_only_when_enabled() -> anyhow::Result<()> {
    let rules = |docs: &[serde_json::Value]| -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for role in docs.iter().filter(|d| d["kind"] == "ClusterRole") {
            for r in role["rules"].as_array().into_iter().flatten() {
                for g in r["apiGroups"].as_array().into_iter().flatten() {
                    for res in r["resources"].as_array().into_iter().flatten() {
                        for v in r["verbs"].as_array().into_iter().flatten() {
                            out.push((
                                v.as_str().unwrap_or_default().to_string(),
                                g.as_str().unwrap_or_default().to_string(),
                                res.as_str().unwrap_or_default().to_string(),
                            ));
                        }
                    }
                }
            }
        }
        out
    };
    let has = |rules: &[(String, String, String)], verb: &str, group: &str, res: &str| {
        rules.iter().any(|(v, g, r)| v == verb && g == group && r == res)
    };
    let off = render("rel", "syncret-system", None, &[])?;
    let r = rules(&off);
    assert!(has(&r, "watch", "", "configmaps"), "templateFrom sources are watched");
    assert!(!has(&r, "create", "", "configmaps") && !has(&r, "patch", "", "configmaps"));
    assert!(!container_args(&off).iter().any(|a| a.contains("generic-target")));
    let on = render(
        "rel",
        "syncret-system",
        None,
        &[
            "genericTargets.enabled=true",
            "genericTargets.resources[0].apiGroup=config.example.com",
            "genericTargets.resources[0].resources={appconfigs,appsettings}",
            "genericTargets.resources[1].apiGroup=argoproj.io",
            "genericTargets.resources[1].resources={applications}",
            "genericTargets.resources[1].verbs={get,patch}",
        ],
    )?;
    let r = rules(&on);
    for verb in ["create", "patch", "delete"] {
        assert!(has(&r, verb, "", "configmaps"), "{verb} configmaps");
    }
    for verb in ["get", "list", "watch", "create", "patch", "delete"] {
        assert!(has(&r, verb, "config.example.com", "appsettings"), "{verb} appsettings");
    }
    assert!(has(&r, "patch", "argoproj.io", "applications"));
    assert!(!has(&r, "delete", "argoproj.io", "applications"));
    let args = container_args(&on);
    assert!(
        args.contains(&"--unsafe-allow-generic-targets=true".to_string()),
        "{args:?}"
    );
    assert!(
        args.contains(
            &"--generic-target-resources=configmaps,appconfigs.config.example.com,appsettings.config.example.com,\
              applications.argoproj.io"
                .to_string()
        ),
        "{args:?}"
    );
    Ok(())
}

/// Flags deliberately without a chart value (set them with `extraArgs`).
const FLAGS_WITHOUT_VALUES: &[(&str, &str)] = &[
    ("help", "not a setting"),
    ("version", "not a setting"),
    (
        "leader-election-namespace",
        "the Lease lives in the release namespace (the ServiceAccount's)",
    ),
    ("zap-log-level", "an alias of --loglevel"),
    ("enable-secrets-caching", "accepted for ESO compatibility; no effect"),
    ("enable-configmaps-caching", "accepted for ESO compatibility; no effect"),
    (
        "enable-managed-secrets-caching",
        "accepted for ESO compatibility; no effect",
    ),
];

#[test]
fn every_flag_has_a_value_and_the_rendered_arguments_parse() -> anyhow::Result<()> {
    let docs = render("rel", "syncret-system", Some("all-values.yaml"), &[])?;
    let args = container_args(&docs);
    let rendered: BTreeSet<String> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_string())
        .collect();
    let mut missing = Vec::new();
    for arg in syncret::cli::Cli::command().get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if !rendered.contains(long) && !FLAGS_WITHOUT_VALUES.iter().any(|(f, _)| *f == long) {
            missing.push(long.to_string());
        }
    }
    assert!(missing.is_empty(), "flags without a chart value: {missing:?}");
    // The binary accepts what the chart renders, with the values' meaning.
    let cli = syncret::cli::Cli::try_parse_from(std::iter::once("syncret".to_string()).chain(args.iter().cloned()))?;
    let o = cli.run.options();
    let le = o.leader_election.as_ref().expect("leader election on");
    assert_eq!(le.name, "syncret-leader");
    assert_eq!(le.lease_duration, Duration::from_secs(20));
    assert_eq!(le.renew_deadline, Duration::from_secs(15));
    assert_eq!(le.retry_period, Duration::from_secs(3));
    assert_eq!(o.shards, 32);
    assert_eq!(o.settings.concurrent, 8);
    assert_eq!(o.settings.controller_class, "team-a");
    assert_eq!(o.settings.namespace.as_deref(), Some("team-a-secrets"));
    assert_eq!(o.settings.store_requeue_interval, Duration::from_secs(600));
    assert!(!o.settings.enable_flood_gate && !o.settings.enable_cluster_stores && !o.settings.enable_secret_stores);
    assert_eq!((o.client_qps, o.client_burst), (20.0, 40));
    assert_eq!((o.store_qps, o.store_burst), (5.0, 10));
    assert_eq!(o.read_coalesce_window, Duration::from_secs(5));
    assert_eq!(o.client_max_age, Duration::from_secs(1800));
    assert_eq!(o.settings.backoff_max, Duration::from_secs(120));
    assert_eq!(o.settings.template_budget, 32 << 20);
    assert_eq!(o.settings.generator_gc_grace, Duration::from_secs(300));
    assert_eq!(o.settings.refresh_jitter, 0.2);
    assert_eq!(
        (o.settings.delims.left.as_str(), o.settings.delims.right.as_str()),
        ("<<", ">>")
    );
    let t = &o.settings.tenant;
    assert!(t.namespaced_operator_identity);
    assert_eq!(t.egress.allow.len(), 2);
    assert_eq!(t.egress.deny[0].to_string(), "10.0.0.0/8");
    assert_eq!(t.file_allowlist.len(), 2);
    assert_eq!(cli.run.log_format, syncret::cli::LogFormat::Text);
    assert!(cli.run.log_filter().starts_with("debug"));
    let g = &o.settings.generic_targets;
    assert!(g.enabled);
    assert_eq!(g.resources, ["configmaps", "applications.argoproj.io"]);
    // Everything optional is rendered.
    let k = kinds(&docs);
    for want in [
        "ServiceMonitor",
        "PodDisruptionBudget",
        "ConfigMap",
        "Role",
        "RoleBinding",
    ] {
        assert!(k.contains(want), "{want} in {k:?}");
    }
    let dashboard = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let json = dashboard["data"]["syncret.json"].as_str().unwrap();
    assert_eq!(
        json,
        std::fs::read_to_string(repo_root().join("deploy/grafana/syncret.json"))?
    );
    Ok(())
}

/// A minimal ServiceMonitor CRD, so the optional ServiceMonitor can be dry-run (prometheus-operator's own CRD
/// is not available here; this checks group, version, kind and scope only).
async fn install_servicemonitor_crd(client: &Client) -> anyhow::Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    apply_yaml(
        &api,
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {plural: servicemonitors, singular: servicemonitor, kind: ServiceMonitor, listKind: ServiceMonitorList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#,
    )
    .await?;
    eventually(Duration::from_secs(30), "the ServiceMonitor CRD", || async {
        let gvk = GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor");
        kube::discovery::pinned_kind(client, &gvk).await.ok().map(|_| ())
    })
    .await
}

/// Server-side applies `docs` (dry-run only when `dry_run`), each in its own namespace or cluster-wide.
async fn apply_all(client: &Client, docs: &[serde_json::Value], dry_run: bool) -> anyhow::Result<()> {
    for doc in docs {
        let obj: DynamicObject = serde_json::from_value(doc.clone())?;
        let types = obj
            .types
            .clone()
            .ok_or_else(|| anyhow!("document without apiVersion/kind"))?;
        let gvk = GroupVersionKind::try_from(&types)?;
        let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .with_context(|| format!("discovering {gvk:?}"))?;
        let name = obj
            .metadata
            .name
            .clone()
            .ok_or_else(|| anyhow!("{gvk:?} without a name"))?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => {
                let ns = obj
                    .metadata
                    .namespace
                    .clone()
                    .ok_or_else(|| anyhow!("{} {name} has no namespace", types.kind))?;
                Api::namespaced_with(client.clone(), &ns, &ar)
            }
            Scope::Cluster => Api::all_with(client.clone(), &ar),
        };
        let mut pp = PatchParams::apply("syncret-chart-test").force();
        if dry_run {
            pp = pp.dry_run();
        }
        api.patch(&name, &pp, &Patch::Apply(doc))
            .await
            .with_context(|| format!("applying {} {name}", types.kind))?;
    }
    Ok(())
}

#[tokio::test]
async fn rendered_manifests_pass_a_server_side_dry_run() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("chart").await?;
    install_servicemonitor_crd(&ns.client).await?;
    for v in [None, Some("all-values.yaml"), Some("scoped-values.yaml")] {
        let docs = render(&unique_name("rel"), &ns.name, v, &[])?;
        apply_all(&ns.client, &docs, true)
            .await
            .with_context(|| format!("dry-run with values {v:?}"))?;
    }
    Ok(())
}

async fn can(client: &Client, verb: &str, group: &str, resource: &str, namespace: &str) -> anyhow::Result<bool> {
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s.to_string())),
        None => (resource, None),
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                subresource,
                namespace: Some(namespace.into()).filter(|n: &String| !n.is_empty()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let r = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(r.status.is_some_and(|s| s.allowed))
}

/// Everything `client` may do in `namespace` (cluster-wide grants included), from a SelfSubjectRulesReview, as
/// `verb group/resource` lines; non-resource URLs as `verb URL`.
async fn rules(client: &Client, namespace: &str) -> anyhow::Result<BTreeSet<String>> {
    use k8s_openapi::api::authorization::v1::{SelfSubjectRulesReview, SelfSubjectRulesReviewSpec};
    let review = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec {
            namespace: Some(namespace.into()),
        },
        ..Default::default()
    };
    let r = Api::<SelfSubjectRulesReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    let status = r
        .status
        .ok_or_else(|| anyhow!("SelfSubjectRulesReview without status"))?;
    anyhow::ensure!(
        !status.incomplete,
        "SelfSubjectRulesReview incomplete: {:?}",
        status.evaluation_error
    );
    let mut out = BTreeSet::new();
    for rule in status.resource_rules {
        for verb in &rule.verbs {
            for group in rule.api_groups.as_deref().unwrap_or_default() {
                for resource in rule.resources.as_deref().unwrap_or_default() {
                    let names = rule.resource_names.as_deref().unwrap_or_default();
                    let suffix = if names.is_empty() {
                        String::new()
                    } else {
                        format!(" {names:?}")
                    };
                    let group = if group.is_empty() { "core" } else { group.as_str() };
                    out.insert(format!("{verb} {group}/{resource}{suffix}"));
                }
            }
        }
    }
    for rule in status.non_resource_rules {
        for verb in &rule.verbs {
            for url in rule.non_resource_urls.as_deref().unwrap_or_default() {
                out.insert(format!("{verb} {url}"));
            }
        }
    }
    Ok(out)
}

/// What every authenticated user may do (the apiserver's default `system:basic-user`, `system:discovery` and
/// `system:public-info-viewer` roles), not granted by the chart.
const DEFAULT_GRANTS: &[&str] = &[
    "create authorization.k8s.io/selfsubjectaccessreviews",
    "create authorization.k8s.io/selfsubjectrulesreviews",
    "create authentication.k8s.io/selfsubjectreviews",
    // system:cluster-trust-bundle-discovery (Kubernetes 1.33+): public CA bundles.
    "get certificates.k8s.io/clustertrustbundles",
    "list certificates.k8s.io/clustertrustbundles",
    "watch certificates.k8s.io/clustertrustbundles",
];

/// Installs the chart's ServiceAccount and RBAC for real (release `release` in `ns`), returns a client that
/// impersonates the ServiceAccount, and the cluster-scoped objects to clean up.
async fn install_rbac(
    cp: &ControlPlane,
    ns: &TestNamespace,
    release: &str,
    set: &[&str],
) -> anyhow::Result<(Client, Vec<(String, String)>)> {
    let docs = render(release, &ns.name, None, set)?;
    let rbac: Vec<serde_json::Value> = docs
        .into_iter()
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some("ServiceAccount" | "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding")
            )
        })
        .collect();
    let cluster_scoped = rbac
        .iter()
        .filter(|d| matches!(d["kind"].as_str(), Some("ClusterRole" | "ClusterRoleBinding")))
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or_default().to_string(),
                d["metadata"]["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    apply_all(&ns.client, &rbac, false).await?;
    let sa = rbac
        .iter()
        .find(|d| d["kind"] == "ServiceAccount")
        .and_then(|d| d["metadata"]["name"].as_str())
        .ok_or_else(|| anyhow!("no ServiceAccount rendered"))?;
    let mut cfg = cp.config().await?;
    cfg.auth_info.impersonate = Some(format!("system:serviceaccount:{}:{sa}", ns.name));
    Ok((Client::try_from(cfg)?, cluster_scoped))
}

async fn cleanup(client: &Client, objects: &[(String, String)]) {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    for (kind, name) in objects {
        let _ = match kind.as_str() {
            "ClusterRole" => Api::<ClusterRole>::all(client.clone())
                .delete(name, &DeleteParams::default())
                .await
                .map(|_| ()),
            _ => Api::<ClusterRoleBinding>::all(client.clone())
                .delete(name, &DeleteParams::default())
                .await
                .map(|_| ()),
        };
    }
}

/// What syncret needs, as (verb, group, resource) in a namespace it serves.
const NEEDED: &[(&str, &str, &str)] = &[
    ("get", "external-secrets.io", "externalsecrets"),
    ("list", "external-secrets.io", "externalsecrets"),
    ("watch", "external-secrets.io", "externalsecrets"),
    ("patch", "external-secrets.io", "externalsecrets"),
    ("patch", "external-secrets.io", "externalsecrets/status"),
    ("update", "external-secrets.io", "externalsecrets/finalizers"),
    ("list", "external-secrets.io", "secretstores"),
    ("watch", "external-secrets.io", "secretstores"),
    ("patch", "external-secrets.io", "secretstores/status"),
    ("get", "", "secrets"),
    ("list", "", "secrets"),
    ("watch", "", "secrets"),
    ("create", "", "secrets"),
    ("patch", "", "secrets"),
    ("delete", "", "secrets"),
    ("get", "", "configmaps"),
    ("list", "", "configmaps"),
    ("watch", "", "configmaps"),
    ("create", "events.k8s.io", "events"),
    ("get", "", "serviceaccounts"),
    ("create", "", "serviceaccounts/token"),
    ("watch", "external-secrets.io", "pushsecrets"),
    ("patch", "external-secrets.io", "pushsecrets"),
    ("patch", "external-secrets.io", "pushsecrets/status"),
    ("patch", "external-secrets.io", "secretstores"),
    ("get", "generators.external-secrets.io", "passwords"),
    ("get", "generators.external-secrets.io", "vaultdynamicsecrets"),
    ("list", "generators.external-secrets.io", "generatorstates"),
    ("watch", "generators.external-secrets.io", "generatorstates"),
    ("create", "generators.external-secrets.io", "generatorstates"),
    ("patch", "generators.external-secrets.io", "generatorstates"),
    ("delete", "generators.external-secrets.io", "generatorstates"),
];

/// What it must not be able to do anywhere.
const DENIED: &[(&str, &str, &str)] = &[
    ("update", "", "secrets"),
    ("deletecollection", "", "secrets"),
    ("create", "", "configmaps"),
    ("patch", "", "configmaps"),
    ("delete", "", "configmaps"),
    ("update", "external-secrets.io", "externalsecrets"),
    ("update", "external-secrets.io", "clusterexternalsecrets"),
    ("patch", "apps", "deployments"),
    ("patch", "apps", "statefulsets"),
    ("delete", "external-secrets.io", "secretstores"),
    ("get", "", "pods"),
    ("create", "", "serviceaccounts"),
    ("create", "", "events"),
    ("delete", "coordination.k8s.io", "leases"),
    ("create", "rbac.authorization.k8s.io", "rolebindings"),
    ("escalate", "rbac.authorization.k8s.io", "clusterroles"),
    ("create", "generators.external-secrets.io", "passwords"),
    ("update", "generators.external-secrets.io", "generatorstates"),
];

/// Runs syncret as `client` (the chart's ServiceAccount) against `es_ns`, with leader election in `lease_ns`:
/// a Secret is created, status and events written, then deleted through the finalizer (deletionPolicy Delete).
async fn sync_as(client: Client, es_ns: &TestNamespace, lease_ns: &str, scoped: bool) -> anyhow::Result<()> {
    let lease = syncret::leader::LeaseConfig {
        namespace: lease_ns.to_string(),
        name: unique_name("lease"),
        identity: "chart-test".into(),
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_millis(500),
    };
    let namespace = es_ns.name.clone();
    let op = Operator::start_with(client, move |o| {
        o.settings.namespace = Some(namespace);
        o.settings.enable_cluster_stores = !scoped;
        o.leader_election = Some(lease);
    })
    .await?;
    let class = op.class.clone();
    apply_yaml(
        &es_ns.api::<k8s_openapi::api::core::v1::ConfigMap>(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tpl}\ndata: {greeting: 'hello {{ .token }}'}\n",
    )
    .await?;
    apply_yaml(
        &es_ns.api::<syncret_crds::SecretStore>(),
        &format!(
            r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: fake}}
spec:
  controller: {class}
  provider: {{fake: {{data: [{{key: token, value: t0k3n}}]}}}}
"#
        ),
    )
    .await?;
    let ess = es_ns.api::<syncret_crds::ExternalSecret>();
    apply_yaml(
        &ess,
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: fake, kind: SecretStore}
  target:
    name: app
    deletionPolicy: Delete
    template:
      templateFrom:
      - configMap: {name: tpl, items: [{key: greeting}]}
  data: [{secretKey: token, remoteRef: {key: token}}]
"#,
    )
    .await?;
    let secrets = es_ns.api::<Secret>();
    let s = eventually(Duration::from_secs(30), "Secret app", || async {
        secrets.get_opt("app").await.ok().flatten()
    })
    .await?;
    assert_eq!(s.data.unwrap_or_default()["greeting"].0, b"hello t0k3n");
    eventually(
        Duration::from_secs(30),
        "ExternalSecret Ready and finalized",
        || async {
            let es = ess.get("app").await.ok()?;
            let ready =
                es.status?.conditions.iter().any(|c| {
                    c.type_ == syncret_crds::condition::ExternalSecretConditionType::Ready && c.status == "True"
                });
            (ready && !es.metadata.finalizers.unwrap_or_default().is_empty()).then_some(())
        },
    )
    .await?;
    eventually(Duration::from_secs(30), "an Event about the ExternalSecret", || async {
        let events = es_ns.api::<Event>().list(&ListParams::default()).await.ok()?;
        events
            .items
            .iter()
            .any(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("app"))
            .then_some(())
    })
    .await?;
    let store_ready = eventually(Duration::from_secs(30), "SecretStore status", || async {
        es_ns
            .api::<syncret_crds::SecretStore>()
            .get("fake")
            .await
            .ok()?
            .status
            .map(|s| !s.conditions.is_empty())
            .filter(|b| *b)
    })
    .await?;
    assert!(store_ready);
    ess.delete("app", &DeleteParams::default()).await?;
    eventually(
        Duration::from_secs(30),
        "the ExternalSecret and its Secret deleted",
        || async {
            let es_gone = ess.get_opt("app").await.ok()?.is_none();
            let secret_gone = secrets.get_opt("app").await.ok()?.is_none();
            (es_gone && secret_gone).then_some(())
        },
    )
    .await?;
    op.stop().await;
    Ok(())
}

#[tokio::test]
async fn chart_rbac_is_enough_to_sync_and_denies_the_rest() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let release_ns = cp.namespace("chart-rbac").await?;
    let es_ns = cp.namespace("chart-rbac-es").await?;
    let release = unique_name("rel");
    let (sa, cluster_objects) = install_rbac(cp, &release_ns, &release, &["leaderElect=true"]).await?;
    let result = async {
        let mut wrong = Vec::new();
        for (verb, group, resource) in NEEDED {
            for ns in [es_ns.name.as_str(), release_ns.name.as_str()] {
                if !can(&sa, verb, group, resource, ns).await? {
                    wrong.push(format!("cannot {verb} {group}/{resource} in {ns}"));
                }
            }
        }
        for (verb, group, resource) in [
            ("list", "", "namespaces"),
            ("watch", "", "namespaces"),
            ("list", "external-secrets.io", "clustersecretstores"),
            ("patch", "external-secrets.io", "clustersecretstores/status"),
            ("list", "external-secrets.io", "externalsecrets"),
            // The ClusterExternalSecret controller: its children are created, applied and deleted anywhere.
            ("watch", "external-secrets.io", "clusterexternalsecrets"),
            ("patch", "external-secrets.io", "clusterexternalsecrets"),
            ("patch", "external-secrets.io", "clusterexternalsecrets/status"),
            ("update", "external-secrets.io", "clusterexternalsecrets/finalizers"),
            ("create", "external-secrets.io", "externalsecrets"),
            ("delete", "external-secrets.io", "externalsecrets"),
            // The ClusterPushSecret controller, the same for its PushSecrets.
            ("watch", "external-secrets.io", "clusterpushsecrets"),
            ("patch", "external-secrets.io", "clusterpushsecrets/status"),
            ("update", "external-secrets.io", "clusterpushsecrets/finalizers"),
            ("create", "external-secrets.io", "pushsecrets"),
            ("delete", "external-secrets.io", "pushsecrets"),
            ("patch", "external-secrets.io", "clustersecretstores"),
            ("get", "generators.external-secrets.io", "clustergenerators"),
        ] {
            if !can(&sa, verb, group, resource, "").await? {
                wrong.push(format!("cannot {verb} {group}/{resource} cluster-wide"));
            }
        }
        for (verb, group, resource) in ["get", "create", "update"].map(|v| (v, "coordination.k8s.io", "leases")) {
            if !can(&sa, verb, group, resource, &release_ns.name).await? {
                wrong.push(format!("cannot {verb} leases in the release namespace"));
            }
            if can(&sa, verb, group, resource, &es_ns.name).await? {
                wrong.push(format!("can {verb} leases outside the release namespace"));
            }
        }
        for (verb, group, resource) in DENIED {
            if can(&sa, verb, group, resource, &es_ns.name).await? {
                wrong.push(format!("can {verb} {group}/{resource}"));
            }
        }
        // The complete list of what the ServiceAccount can do in a namespace it serves: no wildcard, nothing
        // beyond what syncret needs (NEEDED, the cluster-wide reads above, the Lease and default grants).
        let granted = rules(&sa, &es_ns.name).await?;
        println!(
            "chart ServiceAccount can, in a served namespace ({} rules):",
            granted.len()
        );
        for r in &granted {
            println!("  {r}");
        }
        let allowed: BTreeSet<String> = NEEDED
            .iter()
            .copied()
            .chain([
                ("list", "", "namespaces"),
                ("watch", "", "namespaces"),
                ("list", "external-secrets.io", "clustersecretstores"),
                ("watch", "external-secrets.io", "clustersecretstores"),
                ("get", "external-secrets.io", "clustersecretstores"),
                ("patch", "external-secrets.io", "clustersecretstores/status"),
                ("get", "external-secrets.io", "secretstores"),
                ("get", "external-secrets.io", "clusterexternalsecrets"),
                ("list", "external-secrets.io", "clusterexternalsecrets"),
                ("watch", "external-secrets.io", "clusterexternalsecrets"),
                ("patch", "external-secrets.io", "clusterexternalsecrets"),
                ("patch", "external-secrets.io", "clusterexternalsecrets/status"),
                ("update", "external-secrets.io", "clusterexternalsecrets/finalizers"),
                ("create", "external-secrets.io", "externalsecrets"),
                ("delete", "external-secrets.io", "externalsecrets"),
                ("get", "external-secrets.io", "pushsecrets"),
                ("list", "external-secrets.io", "pushsecrets"),
                ("watch", "external-secrets.io", "pushsecrets"),
                ("patch", "external-secrets.io", "pushsecrets"),
                ("patch", "external-secrets.io", "pushsecrets/status"),
                ("update", "external-secrets.io", "pushsecrets/finalizers"),
                ("get", "external-secrets.io", "clusterpushsecrets"),
                ("list", "external-secrets.io", "clusterpushsecrets"),
                ("watch", "external-secrets.io", "clusterpushsecrets"),
                ("patch", "external-secrets.io", "clusterpushsecrets"),
                ("patch", "external-secrets.io", "clusterpushsecrets/status"),
                ("update", "external-secrets.io", "clusterpushsecrets/finalizers"),
                ("create", "external-secrets.io", "pushsecrets"),
                ("delete", "external-secrets.io", "pushsecrets"),
                ("update", "external-secrets.io", "secretstores/finalizers"),
                ("update", "external-secrets.io", "clustersecretstores/finalizers"),
                ("patch", "external-secrets.io", "secretstores"),
                ("patch", "external-secrets.io", "clustersecretstores"),
                // Generators: every kind syncret runs is read where an ExternalSecret or PushSecret names it.
                ("get", "generators.external-secrets.io", "clustergenerators"),
                ("get", "generators.external-secrets.io", "ecrauthorizationtokens"),
                ("get", "generators.external-secrets.io", "fakes"),
                ("get", "generators.external-secrets.io", "generatorstates"),
                ("get", "generators.external-secrets.io", "sshkeys"),
                ("get", "generators.external-secrets.io", "stssessiontokens"),
                ("get", "generators.external-secrets.io", "uuids"),
                ("get", "generators.external-secrets.io", "webhooks"),
                ("get", "generators.external-secrets.io", "mfas"),
                ("get", "generators.external-secrets.io", "githubaccesstokens"),
            ])
            .map(|(v, g, r)| format!("{v} {}/{r}", if g.is_empty() { "core" } else { g }))
            .chain(DEFAULT_GRANTS.iter().map(|s| s.to_string()))
            .collect();
        for r in &granted {
            // Non-resource URLs (`get /api/*`, `get /healthz`) are the apiserver's discovery defaults.
            let resource_rule = !r.split_whitespace().nth(1).is_some_and(|u| u.starts_with('/'));
            if resource_rule && r.contains('*') {
                wrong.push(format!("wildcard grant: {r}"));
            } else if resource_rule && !allowed.contains(r) {
                wrong.push(format!("grant beyond what syncret needs: {r}"));
            }
        }
        assert!(wrong.is_empty(), "RBAC of the chart:\n  {}", wrong.join("\n  "));
        sync_as(sa.clone(), &es_ns, &release_ns.name, false).await
    }
    .await;
    cleanup(&release_ns.client, &cluster_objects).await;
    result
}

#[tokio::test]
async fn scoped_chart_rbac_is_enough_in_its_namespace_only() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("chart-scoped").await?;
    let other = cp.namespace("chart-scoped-other").await?;
    let release = unique_name("rel");
    let (sa, cluster_objects) = install_rbac(cp, &ns, &release, &["leaderElect=true", "scopedRBAC=true"]).await?;
    let result = async {
        let mut wrong = Vec::new();
        for (verb, group, resource) in NEEDED {
            if !can(&sa, verb, group, resource, &ns.name).await? {
                wrong.push(format!("cannot {verb} {group}/{resource} in its namespace"));
            }
            if can(&sa, verb, group, resource, &other.name).await? {
                wrong.push(format!("can {verb} {group}/{resource} in another namespace"));
            }
        }
        // No ClusterExternalSecret controller in a namespace-scoped install, and no workload restarts by default.
        for (verb, group, resource, namespace) in [
            ("list", "external-secrets.io", "clusterexternalsecrets", ""),
            ("list", "external-secrets.io", "clusterpushsecrets", ""),
            ("create", "external-secrets.io", "pushsecrets", ns.name.as_str()),
            ("create", "external-secrets.io", "externalsecrets", ns.name.as_str()),
            ("delete", "external-secrets.io", "externalsecrets", ns.name.as_str()),
            ("patch", "apps", "deployments", ns.name.as_str()),
        ] {
            if can(&sa, verb, group, resource, namespace).await? {
                wrong.push(format!("can {verb} {group}/{resource} in {namespace:?}"));
            }
        }
        assert!(wrong.is_empty(), "scoped RBAC of the chart:\n  {}", wrong.join("\n  "));
        sync_as(sa.clone(), &ns, &ns.name, true).await
    }
    .await;
    cleanup(&ns.client, &cluster_objects).await;
    result
}
