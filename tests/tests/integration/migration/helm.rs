//! CRD ownership with Helm, on a control plane of its own (there the CRDs are installed by Helm, not by the test
//! harness): the steps of docs/migration.md, run as written (helm, kubectl).
//!
//! ESO's chart installs its CRDs as templates of the release (`installCRDs: true`), so `helm uninstall` of ESO
//! deletes them, and with them every ExternalSecret and store, and (garbage collection, owner references) every
//! Secret an ExternalSecret owns. syncret's chart ships its CRDs in `crds/`, which Helm creates when missing and
//! otherwise leaves alone. A stand-in for ESO's chart (a chart named `external-secrets` whose templates are the
//! CRDs) has the same ownership metadata ESO's would.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use syncret::check::{self, Verdict};
use syncret::cli::{CheckArgs, CheckFormat};
use syncret_crds::{ExternalSecret, SecretStore};
use syncret_tests::{ControlPlane, TestNamespace, apply_yaml, eventually, repo_root};

use super::eso;
use crate::chart::{helm, run};

/// `kubectl` of the control-plane build.
fn kubectl() -> anyhow::Result<PathBuf> {
    let out = run(Command::new("bash").arg(repo_root().join("e2e/build-controlplane.sh")))?;
    Ok(PathBuf::from(out.trim()).join("kubectl"))
}

/// A chart named `external-secrets` whose templates are the CRDs, with ESO's `crds.annotations` value (its
/// `hack/helm.generate.sh` puts that into every CRD's annotations).
fn eso_stand_in(dir: &Path) -> anyhow::Result<PathBuf> {
    let chart = dir.join("external-secrets");
    std::fs::create_dir_all(chart.join("templates"))?;
    std::fs::create_dir_all(chart.join("files"))?;
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: external-secrets\nversion: 2.9.0\nappVersion: v2.9.0\n",
    )?;
    std::fs::write(
        chart.join("values.yaml"),
        "installCRDs: true\ncrds:\n  annotations: {}\n",
    )?;
    std::fs::write(
        chart.join("templates/crds.yaml"),
        r#"{{- if .Values.installCRDs }}
{{- range $path, $_ := .Files.Glob "files/*.yaml" }}
---
{{- $crd := $.Files.Get $path | fromYaml }}
{{- $_ := set $crd.metadata "annotations" (deepCopy $.Values.crds.annotations) }}
{{ toYaml $crd }}
{{- end }}
{{- end }}
"#,
    )?;
    for e in std::fs::read_dir(repo_root().join("deploy/crds"))? {
        let p = e?.path();
        if let Some(name) = p.file_name() {
            std::fs::copy(&p, chart.join("files").join(name))?;
        }
    }
    Ok(chart)
}

async fn crd_names(client: &kube::Client) -> anyhow::Result<Vec<String>> {
    Ok(Api::<CustomResourceDefinition>::all(client.clone())
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|c| c.spec.group == syncret_crds::GROUP)
        .map(|c| c.name_any())
        .collect())
}

async fn established(client: &kube::Client, n: usize) -> anyhow::Result<()> {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    eventually(Duration::from_secs(60), "CRDs established", || async {
        let list = api.list(&Default::default()).await.ok()?;
        let ok = list
            .items
            .iter()
            .filter(|c| c.spec.group == syncret_crds::GROUP)
            .filter(|c| {
                c.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
            })
            .count();
        (ok == n).then_some(())
    })
    .await
}

/// `syncret check` against this cluster: the CRD reports.
async fn crd_reports(kubeconfig: &Path) -> anyhow::Result<Vec<check::ObjectReport>> {
    let args = CheckArgs {
        files: vec![],
        cluster: true,
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: None,
        namespace: String::new(),
        controller_class: "default".into(),
        output: CheckFormat::Json,
        all: false,
    };
    let read = check::cluster::read(&args).await?;
    let report = check::check(&read.inputs, &read.facts, &Default::default());
    Ok(report
        .objects
        .into_iter()
        .filter(|o| o.kind == "CustomResourceDefinition")
        .collect())
}

#[tokio::test]
async fn helm_crd_ownership_hand_over_and_back() -> anyhow::Result<()> {
    let helm = helm()?;
    let kubectl = kubectl()?;
    let cp = ControlPlane::bare().await?;
    let kc = cp.kubeconfig().to_path_buf();
    let client = cp.client().await?;
    let dir = std::env::temp_dir().join(syncret_tests::unique_name("helm-handover"));
    let eso_chart = eso_stand_in(&dir)?;
    let helm_cmd = |args: &[&str]| {
        let mut c = Command::new(&helm);
        c.args(args).arg("--kubeconfig").arg(&kc);
        c
    };

    // ESO, installed by Helm with its CRDs.
    run(helm_cmd(&["install", "external-secrets"]).arg(&eso_chart).args([
        "--namespace",
        "external-secrets",
        "--create-namespace",
    ]))?;
    let names = crd_names(&client).await?;
    assert_eq!(names.len(), 6, "{names:?}");
    established(&client, names.len()).await?;

    // An application synced by ESO: a store, an ExternalSecret, its Secret (owned by the ExternalSecret).
    let ns = cp.namespace("app").await?;
    let ns = TestNamespace {
        name: ns.name,
        client: client.clone(),
    };
    apply_yaml(
        &ns.api::<SecretStore>(),
        "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {name: fake}\nspec:\n  provider:\n    fake:\n      data: [{key: token, value: t0k3n}]\n",
    )
    .await?;
    apply_yaml(
        &ns.api::<ExternalSecret>(),
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: app}\nspec:\n  secretStoreRef: {name: fake}\n  data: [{secretKey: token, remoteRef: {key: token}}]\n",
    )
    .await?;
    let data = [("token".to_string(), b"t0k3n".to_vec())].into();
    eso::reconcile(&ns, "app", &data, syncret::sync::refresh::to_time(chrono::Utc::now())).await?;
    let secrets: Api<Secret> = ns.api();
    let ess: Api<ExternalSecret> = ns.api();
    let uid = ess.get("app").await?.uid();

    // `syncret check` says what uninstalling ESO's release would do.
    let reports = crd_reports(&kc).await?;
    assert_eq!(reports.len(), 6, "{reports:#?}");
    for r in &reports {
        assert_eq!(r.verdict, Verdict::Difference, "{r:#?}");
        assert!(
            r.findings[0].message.contains("external-secrets/external-secrets"),
            "{r:#?}"
        );
        assert!(
            r.findings[0]
                .action
                .as_deref()
                .unwrap_or_default()
                .contains("resource-policy=keep")
        );
    }

    // docs/migration.md, step 2: keep the CRDs through ESO's uninstall, through ESO's own chart (Helm reads the
    // policy from the release's manifest: annotating the live CRDs is not enough).
    run(helm_cmd(&["upgrade", "external-secrets"])
        .arg(&eso_chart)
        .args(["--namespace", "external-secrets", "--reuse-values"])
        .args(["--set-string", r"crds.annotations.helm\.sh/resource-policy=keep"]))?;
    let kept = crd_reports(&kc).await?;
    assert!(kept.iter().all(|r| r.verdict == Verdict::Supported), "{kept:#?}");

    // Step 3: ESO goes; the CRDs, the objects and the Secret stay.
    run(&mut helm_cmd(&[
        "uninstall",
        "external-secrets",
        "--namespace",
        "external-secrets",
    ]))?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(crd_names(&client).await?.len(), 6);
    assert_eq!(ess.get("app").await?.uid(), uid);
    assert_eq!(
        secrets.get("app").await?.owner_references()[0].uid,
        uid.clone().unwrap_or_default()
    );

    // Step 5: syncret's CRDs replace ESO's schemas (objects are kept), then its chart installs where they exist.
    let mut apply = Command::new(&kubectl);
    apply
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["apply", "--server-side", "--force-conflicts", "-f"])
        .arg(repo_root().join("deploy/crds"));
    run(&mut apply)?;
    run(helm_cmd(&["install", "syncret"])
        .arg(repo_root().join("deploy/charts/syncret"))
        .args(["--namespace", "syncret", "--create-namespace"]))?;
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    for n in &names {
        let crd = crds.get(n).await?;
        // Still kept, still carrying the release metadata that lets ESO's chart take them back.
        assert_eq!(crd.annotations()["helm.sh/resource-policy"], "keep", "{n}");
        assert_eq!(
            crd.annotations()["meta.helm.sh/release-name"],
            "external-secrets",
            "{n}"
        );
    }
    assert_eq!(ess.get("app").await?.uid(), uid);

    // Rollback: syncret's release goes (Helm never deletes CRDs it created from crds/), ESO's chart is installed
    // again and adopts the CRDs; nothing was lost on the way.
    run(&mut helm_cmd(&["uninstall", "syncret", "--namespace", "syncret"]))?;
    run(helm_cmd(&["install", "external-secrets"])
        .arg(&eso_chart)
        .args(["--namespace", "external-secrets"]))?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(crd_names(&client).await?.len(), 6);
    assert_eq!(ess.get("app").await?.uid(), uid);
    assert!(secrets.get_opt("app").await?.is_some());

    // Reinstalled with its default values, ESO's release no longer keeps the CRDs: uninstalling it now takes
    // every object with it, which is what step 2 prevents.
    run(&mut helm_cmd(&[
        "uninstall",
        "external-secrets",
        "--namespace",
        "external-secrets",
    ]))?;
    // The CRDs are being deleted (the ExternalSecret's cleanup finalizer holds them while nothing runs to release
    // it); once it goes, the ExternalSecret and its CRD are gone.
    eventually(
        Duration::from_secs(60),
        "the CRDs deleted with ESO's release",
        || async {
            let list = crds.list(&Default::default()).await.ok()?;
            list.items
                .iter()
                .filter(|c| c.spec.group == syncret_crds::GROUP)
                .all(|c| c.metadata.deletion_timestamp.is_some())
                .then_some(())
        },
    )
    .await?;
    ess.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    eventually(Duration::from_secs(60), "the CRD of ExternalSecrets gone", || async {
        let names = crd_names(&client).await.ok()?;
        (!names.iter().any(|n| n == "externalsecrets.external-secrets.io")).then_some(())
    })
    .await?;
    cp.stop();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
