//! ClusterPushSecret on the real control plane, with a cluster-wide operator (the only one with the
//! ClusterPushSecret controller on: the other cluster-wide operators of this binary switch it off, so none of
//! them sees these ClusterPushSecrets): one PushSecret per selected namespace, each pushing its own
//! namespace's Secret; namespaces that stop matching lose theirs (and with `deletionPolicy: Delete` its pushed
//! value), a foreign PushSecret of the same name is reported and left alone, and deleting the ClusterPushSecret
//! deletes its children through their owner references.
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use syncret_crds::pushsecret::{ClusterPushSecret, PushSecret};
use syncret_crds::{ClusterSecretStore, secretstore::StoreKind};
use syncret_providers::RemoteKey;
use syncret_tests::operator::Operator;
use syncret_tests::{ControlPlane, apply_yaml, eventually, unique_name};

async fn labelled_namespace(cp: &ControlPlane, label: &str) -> anyhow::Result<String> {
    let ns = cp.namespace("cps").await?;
    let patch = serde_json::json!({"metadata": {"labels": {"cps-test": label}}});
    Api::<Namespace>::all(ns.client.clone())
        .patch(&ns.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    // Each namespace's source Secret holds one key named after the namespace.
    apply_yaml(
        &Api::<Secret>::namespaced(ns.client.clone(), &ns.name),
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: src}}\nstringData: {{key-{}: value-of-{}}}\n",
            ns.name, ns.name
        ),
    )
    .await?;
    Ok(ns.name)
}

/// The value at `key` in the fake ClusterSecretStore `store`, read through the operator's client.
async fn remote(op: &Operator, store: &str, key: &str) -> Option<String> {
    let ctx = op.ctx();
    let id = syncret::sync::fetch::StoreId {
        kind: StoreKind::ClusterSecretStore,
        name: store.into(),
    };
    let info = ctx.stores.resolve("default", &id).ok()?.info;
    let (_, client) = ctx.reads.client_for(&info, "default").await.ok()?;
    let v = client.get_secret(&RemoteKey::new(key)).await.ok()?;
    Some(String::from_utf8_lossy(v.select(key, None).ok()?.as_bytes()).into_owned())
}

#[tokio::test]
async fn one_push_secret_per_selected_namespace() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let client = cp.client().await?;
    let op = Operator::start_with(client.clone(), |o| o.settings.enable_cluster_external_secrets = false).await?;
    let label = unique_name("sel");
    let mut namespaces = Vec::new();
    for _ in 0..3 {
        namespaces.push(labelled_namespace(cp, &label).await?);
    }
    let store = unique_name("css");
    apply_yaml(
        &Api::<ClusterSecretStore>::all(client.clone()),
        &format!(
            "apiVersion: external-secrets.io/v1\nkind: ClusterSecretStore\nmetadata: {{name: {store}}}\nspec:\n  controller: {}\n  provider: {{fake: {{data: []}}}}\n",
            op.class
        ),
    )
    .await?;
    let name = unique_name("cps");
    let cpses = Api::<ClusterPushSecret>::all(client.clone());
    apply_yaml(
        &cpses,
        &format!(
            "apiVersion: external-secrets.io/v1alpha1\nkind: ClusterPushSecret\nmetadata: {{name: {name}}}\nspec:\n  pushSecretName: pusher\n  pushSecretMetadata: {{labels: {{from: cps}}}}\n  refreshTime: 1m\n  namespaceSelectors:\n  - matchLabels: {{cps-test: {label}}}\n  pushSecretSpec:\n    deletionPolicy: Delete\n    secretStoreRefs: [{{name: {store}, kind: ClusterSecretStore}}]\n    selector: {{secret: {{name: src}}}}\n    dataTo:\n    - storeRef: {{name: {store}, kind: ClusterSecretStore}}\n"
        ),
    )
    .await?;
    for ns in &namespaces {
        let key = format!("key-{ns}");
        let want = format!("value-of-{ns}");
        eventually(Duration::from_secs(60), &format!("{key} pushed"), || async {
            (remote(&op, &store, &key).await? == want).then_some(())
        })
        .await?;
        let child = Api::<PushSecret>::namespaced(client.clone(), ns).get("pusher").await?;
        assert_eq!(child.labels()["from"], "cps");
        let owner = &child.owner_references()[0];
        assert!(owner.controller == Some(true) && owner.kind == "ClusterPushSecret" && owner.name == name);
    }
    let status = eventually(Duration::from_secs(30), "status lists 3 namespaces", || async {
        let c = cpses.get(&name).await.ok()?;
        c.status.filter(|s| s.provisioned_namespaces.len() == 3)
    })
    .await?;
    assert_eq!(status.push_secret_name, "pusher");
    let mut sorted = namespaces.clone();
    sorted.sort();
    assert_eq!(status.provisioned_namespaces, sorted);
    assert!(status.failed_namespaces.is_empty());
    assert_eq!(status.conditions[0].status, "True");

    // A namespace stops matching: its PushSecret goes, and (deletionPolicy Delete) so does what it pushed.
    let gone = namespaces.pop().unwrap_or_default();
    Api::<Namespace>::all(client.clone())
        .patch(
            &gone,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"cps-test": null}}})),
        )
        .await?;
    let gone_ps: Api<PushSecret> = Api::namespaced(client.clone(), &gone);
    eventually(
        Duration::from_secs(30),
        "child removed from the unselected namespace",
        || async { gone_ps.get_opt("pusher").await.ok()?.is_none().then_some(()) },
    )
    .await?;
    let gone_key = format!("key-{gone}");
    eventually(Duration::from_secs(30), "its pushed value deleted", || async {
        remote(&op, &store, &gone_key).await.is_none().then_some(())
    })
    .await?;

    // A foreign PushSecret of the same name blocks a namespace and is left alone.
    let foreign = cp.namespace("cps-foreign").await?;
    apply_yaml(
        &Api::<PushSecret>::namespaced(client.clone(), &foreign.name),
        &format!("apiVersion: external-secrets.io/v1alpha1\nkind: PushSecret\nmetadata: {{name: pusher}}\nspec:\n  secretStoreRefs: [{{name: {store}, kind: ClusterSecretStore}}]\n  selector: {{secret: {{name: absent}}}}\n"),
    )
    .await?;
    Api::<Namespace>::all(client.clone())
        .patch(
            &foreign.name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"cps-test": label}}})),
        )
        .await?;
    let status = eventually(
        Duration::from_secs(30),
        "the foreign PushSecret is reported",
        || async {
            let c = cpses.get(&name).await.ok()?;
            c.status
                .filter(|s| s.failed_namespaces.iter().any(|f| f.namespace == foreign.name))
        },
    )
    .await?;
    assert_eq!(status.provisioned_namespaces.len(), 2);
    let f = status
        .failed_namespaces
        .iter()
        .find(|f| f.namespace == foreign.name)
        .cloned()
        .unwrap_or_default();
    assert!(f.reason.contains("already exists"), "{}", f.reason);
    assert_eq!(status.conditions[0].status, "False");
    let untouched = Api::<PushSecret>::namespaced(client.clone(), &foreign.name)
        .get("pusher")
        .await?;
    assert!(untouched.owner_references().is_empty(), "not adopted");

    // Deleting the ClusterPushSecret deletes its children (owner references), which clean up after themselves.
    cpses.delete(&name, &DeleteParams::default()).await?;
    for ns in &namespaces {
        let pss: Api<PushSecret> = Api::namespaced(client.clone(), ns);
        eventually(Duration::from_secs(60), &format!("child in {ns} deleted"), || async {
            pss.get_opt("pusher").await.ok()?.is_none().then_some(())
        })
        .await?;
        let key = format!("key-{ns}");
        assert!(
            remote(&op, &store, &key).await.is_none(),
            "{key} deleted with its PushSecret"
        );
    }
    op.stop().await;
    Ok(())
}
