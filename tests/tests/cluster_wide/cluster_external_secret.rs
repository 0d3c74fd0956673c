//! ClusterExternalSecret on the real control plane, with a cluster-wide operator (the only one with the
//! ClusterExternalSecret controller on: the other cluster-wide operators of this binary switch it off, so none
//! of them sees these ClusterExternalSecrets): fan-out to selected namespaces, reacting to
//! namespaces appearing and disappearing, refusing foreign ExternalSecrets, cleanup — and one provider read per
//! refresh for N namespaces (ESO #6133).
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use syncret_crds::{ClusterExternalSecret, ClusterSecretStore, ExternalSecret};
use syncret_tests::operator::Operator;
use syncret_tests::{ControlPlane, apply_yaml, eventually, unique_name};

async fn labelled_namespace(cp: &ControlPlane, label: &str) -> anyhow::Result<String> {
    let ns = cp.namespace("ces").await?;
    let patch = serde_json::json!({"metadata": {"labels": {"ces-test": label}}});
    Api::<Namespace>::all(ns.client.clone())
        .patch(&ns.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(ns.name)
}

fn fake_reads(op: &Operator) -> u64 {
    op.ctx()
        .metrics
        .provider_calls
        .with_label_values(&["Fake", "GetSecret", "success"])
        .get()
}

#[tokio::test]
async fn fan_out_follows_namespaces_and_reads_once_per_refresh() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let client = cp.client().await?;
    let op = Operator::start_with(client.clone(), |o| o.settings.enable_cluster_push_secrets = false).await?;
    let label = unique_name("fan");
    let mut namespaces = Vec::new();
    for _ in 0..20 {
        namespaces.push(labelled_namespace(cp, &label).await?);
    }
    let store = unique_name("css");
    apply_yaml(
        &Api::<ClusterSecretStore>::all(client.clone()),
        &format!(
            "apiVersion: external-secrets.io/v1\nkind: ClusterSecretStore\nmetadata: {{name: {store}}}\nspec:\n  controller: {}\n  provider:\n    fake:\n      data:\n      - {{key: shared, value: s3cr3t}}\n",
            op.class
        ),
    )
    .await?;
    let ces_name = unique_name("ces");
    let ceses = Api::<ClusterExternalSecret>::all(client.clone());
    apply_yaml(
        &ceses,
        &format!(
            "apiVersion: external-secrets.io/v1\nkind: ClusterExternalSecret\nmetadata: {{name: {ces_name}}}\nspec:\n  externalSecretName: app\n  externalSecretMetadata: {{labels: {{from: ces}}}}\n  namespaceSelectors:\n  - matchLabels: {{ces-test: {label}}}\n  refreshTime: 1m\n  externalSecretSpec:\n    refreshInterval: 2s\n    secretStoreRef: {{name: {store}, kind: ClusterSecretStore}}\n    data:\n    - {{secretKey: k, remoteRef: {{key: shared}}}}\n"
        ),
    )
    .await?;
    for ns in &namespaces {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        eventually(Duration::from_secs(60), &format!("Secret in {ns}"), || async {
            secrets.get_opt("app").await.ok().flatten()
        })
        .await?;
    }
    let status = eventually(Duration::from_secs(30), "status lists 20 namespaces", || async {
        let c = ceses.get(&ces_name).await.ok()?;
        c.status.filter(|s| s.provisioned_namespaces.len() == 20)
    })
    .await?;
    assert_eq!(status.external_secret_name, "app");
    assert!(status.failed_namespaces.is_empty());
    let child = Api::<ExternalSecret>::namespaced(client.clone(), &namespaces[0])
        .get("app")
        .await?;
    assert_eq!(child.metadata.labels.unwrap_or_default()["from"], "ces");

    // One provider read per refresh for all 20 namespaces (ESO reads 20 times).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = fake_reads(&op);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let reads = fake_reads(&op) - before;
    let refreshes = 10 / 2;
    assert!(reads >= 2, "refreshes happened: {reads} reads");
    assert!(
        reads <= refreshes + 2,
        "{reads} provider reads in ~{refreshes} refreshes of 20 namespaces"
    );

    // A namespace stops matching: its ExternalSecret goes; a foreign one blocks a namespace.
    let gone = namespaces.pop().unwrap_or_default();
    let patch = serde_json::json!({"metadata": {"labels": {"ces-test": null}}});
    Api::<Namespace>::all(client.clone())
        .patch(&gone, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), &gone);
    eventually(
        Duration::from_secs(30),
        "child removed from the unselected namespace",
        || async { ess.get_opt("app").await.ok().flatten().is_none().then_some(()) },
    )
    .await?;
    let blocked = cp.namespace("ces-foreign").await?;
    apply_yaml(
        &Api::<ExternalSecret>::namespaced(client.clone(), &blocked.name),
        &format!("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: app}}\nspec:\n  secretStoreRef: {{name: {store}, kind: ClusterSecretStore}}\n  data:\n  - {{secretKey: mine, remoteRef: {{key: shared}}}}\n"),
    )
    .await?;
    let patch = serde_json::json!({"metadata": {"labels": {"ces-test": label}}});
    Api::<Namespace>::all(client.clone())
        .patch(&blocked.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let status = eventually(
        Duration::from_secs(30),
        "the foreign ExternalSecret is reported",
        || async {
            let c = ceses.get(&ces_name).await.ok()?;
            c.status
                .filter(|s| s.failed_namespaces.iter().any(|f| f.namespace == blocked.name))
        },
    )
    .await?;
    assert_eq!(status.provisioned_namespaces.len(), 19);
    let f = status
        .failed_namespaces
        .iter()
        .find(|f| f.namespace == blocked.name)
        .cloned()
        .unwrap_or_default();
    assert!(f.reason.contains("already exists"), "{}", f.reason);
    let foreign = Api::<ExternalSecret>::namespaced(client.clone(), &blocked.name)
        .get("app")
        .await?;
    assert!(foreign.metadata.owner_references.is_none(), "not adopted");

    // Deleting the ClusterExternalSecret removes its children.
    ceses.delete(&ces_name, &DeleteParams::default()).await?;
    let first: Api<ExternalSecret> = Api::namespaced(client.clone(), &namespaces[0]);
    eventually(
        Duration::from_secs(30),
        "children deleted with the ClusterExternalSecret",
        || async { first.get_opt("app").await.ok().flatten().is_none().then_some(()) },
    )
    .await?;
    op.stop().await;
    Ok(())
}
