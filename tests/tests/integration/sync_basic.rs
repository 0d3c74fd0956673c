//! The sync engine end to end on the real control plane: a fake store, an ExternalSecret, the Secret.
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use syncret_crds::{ExternalSecret, SecretStore};
use syncret_tests::operator::Operator;
use syncret_tests::{ControlPlane, apply_yaml as apply, eventually};

#[tokio::test]
async fn fake_store_to_secret() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("basic").await?;
    let op = Operator::start(&ns).await?;
    let stores: Api<SecretStore> = ns.api();
    apply(
        &stores,
        &format!(
            r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: fake}}
spec:
  controller: {class}
  provider:
    fake:
      data:
      - {{key: db, value: '{{"user":"admin","password":"p4ss"}}'}}
      - {{key: token, value: t0k3n}}
"#,
            class = op.class
        ),
    )
    .await?;
    let ess: Api<ExternalSecret> = ns.api();
    apply(
        &ess,
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: fake, kind: SecretStore}
  target: {name: app-secret}
  data:
  - {secretKey: password, remoteRef: {key: db, property: password}}
  - {secretKey: token, remoteRef: {key: token}}
"#,
    )
    .await?;
    let secrets: Api<Secret> = ns.api();
    let secret = eventually(Duration::from_secs(30), "the target Secret", || async {
        secrets.get_opt("app-secret").await.ok().flatten()
    })
    .await?;
    let data = secret.data.clone().unwrap_or_default();
    assert_eq!(data["password"].0, b"p4ss");
    assert_eq!(data["token"].0, b"t0k3n");
    let es = eventually(Duration::from_secs(30), "Ready condition", || async {
        let es = ess.get("app").await.ok()?;
        let ready = es
            .status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.status == "True")?
            .clone();
        Some((es, ready))
    })
    .await?;
    assert_eq!(es.1.reason.as_deref(), Some("SecretSynced"));
    op.stop().await;
    Ok(())
}
