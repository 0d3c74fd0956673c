//! Moving from External Secrets Operator to syncret, and back, on the real control plane.
//!
//! ESO's side is reproduced from ESO v2.9's source (`pkg/controllers/externalsecret/externalsecret_controller.go`
//! and `…_template.go`, read through the search tools; see [`eso`]): what its reconcile writes (the cleanup
//! finalizer; the Secret created by POST or updated by PUT under the field manager
//! `externalsecrets.external-secrets.io/<name>`, with the `managed` and — Owner — `created-by` labels, the
//! `data-hash` annotation, the ExternalSecret's own labels and annotations when there is no template, a controller
//! owner reference for Owner; the status by PUT of the status subresource) and what its reconcile reads to decide
//! that it has nothing to do or must fail (`shouldRefresh`, `isSecretValid`, `applyOwnership`,
//! `getManagedDataKeys`).
//!
//! - [`takeover_of_eso_state_writes_no_secret`]: syncret started over ESO's Secrets and statuses writes no Secret,
//!   whether the statuses are fresh (nothing at all is written) or due (the provider is read and only the status
//!   is refreshed, as ESO itself would); then it owns them (a rotated value is written, ESO's marks kept).
//! - [`back_to_eso_finds_nothing_to_trip_over`]: what syncret wrote passes ESO's own checks, so ESO started again
//!   skips it; ESO's next write (PUT, its field manager) goes through.
//! - [`side_by_side_by_controller_class`]: ESO's stores (class `default`) are left alone; a store moved to
//!   syncret's class is taken over with zero Secret writes; moved back, syncret lets go.
//! - [`helm_crd_ownership_hand_over_and_back`]: ESO's CRDs installed by its Helm release; the steps of
//!   docs/migration.md keep them (and every object) through `helm uninstall`, syncret's chart installs where they
//!   exist, and ESO's chart takes them back; `syncret check` reports the danger before and not after.
//! - [`takeover_at_scale`]: the figures of docs/migration.md (`SYNCRET_TAKEOVER_N=1000`; 40 by default).
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use syncret::sync::{hash, refresh};
use syncret_bench::apimetrics;
use syncret_crds::{ExternalSecret, SecretStore};
use syncret_tests::operator::Operator;
use syncret_tests::{TestNamespace, apply_yaml, eventually};

/// ESO v2.9's externalsecret controller, its writes and its decisions, as its source has them.
mod eso {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
    use syncret_crds::condition::{ExternalSecretConditionType, ExternalSecretStatusCondition};
    use syncret_crds::externalsecret::{
        ExternalSecretCreationPolicy, ExternalSecretRefreshPolicy, ExternalSecretStatus, LocalObjectReference,
    };
    use syncret_crds::labels::{
        ANNOTATION_DATA_HASH, FINALIZER_EXTERNAL_SECRET_CLEANUP, LABEL_CREATED_BY, LABEL_MANAGED,
    };

    /// controller-runtime's field manager for ESO's own (non-Secret) writes: the binary's name.
    pub const MANAGER: &str = "external-secrets";

    /// `fqdnFor(name)`: syncret's, pinned to the values Go computes for ESO's (unit tests of
    /// `sync::secret::field_manager`).
    pub fn fqdn(name: &str) -> String {
        syncret::sync::secret::field_manager(name)
    }

    fn policy(es: &ExternalSecret) -> ExternalSecretCreationPolicy {
        es.spec.target.creation_policy
    }

    /// What ESO's reconcile writes for `name` whose data (after template) is `data`: finalizer, Secret, status
    /// with `refreshTime` = `refreshed`.
    pub async fn reconcile(
        ns: &TestNamespace,
        name: &str,
        data: &BTreeMap<String, Vec<u8>>,
        refreshed: Time,
    ) -> anyhow::Result<()> {
        let ess: Api<ExternalSecret> = ns.api();
        let secrets: Api<Secret> = ns.api();
        // `controllerutil.AddFinalizer` + `r.Patch(MergeFrom)`.
        let es = ess.get(name).await?;
        if !es.finalizers().iter().any(|f| f == FINALIZER_EXTERNAL_SECRET_CLEANUP) {
            let mut f = es.finalizers().to_vec();
            f.push(FINALIZER_EXTERNAL_SECRET_CLEANUP.into());
            let pp = PatchParams {
                field_manager: Some(MANAGER.into()),
                ..Default::default()
            };
            ess.patch(
                name,
                &pp,
                &Patch::Merge(serde_json::json!({"metadata": {"finalizers": f}})),
            )
            .await?;
        }
        let mut es = ess.get(name).await?;
        let target = es.target_name().unwrap_or_default().to_string();
        let existing = secrets.get_opt(&target).await?;
        let mut secret = existing.clone().unwrap_or_else(|| Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(target.clone()),
                namespace: Some(ns.name.clone()),
                ..Default::default()
            },
            ..Default::default()
        });
        // ApplyTemplate: metadata, then data (existing keys kept for Merge / CreateOrMerge only).
        let labels = secret.metadata.labels.get_or_insert_default();
        let annotations = secret.metadata.annotations.get_or_insert_default();
        match &es.spec.target.template {
            None => {
                labels.extend(es.labels().clone());
                annotations.extend(es.annotations().clone());
            }
            Some(t) => {
                labels.extend(t.metadata.labels.clone());
                annotations.extend(t.metadata.annotations.clone());
                if !t.type_.is_empty() {
                    secret.type_ = Some(t.type_.clone());
                }
            }
        }
        let mut final_data: BTreeMap<String, Vec<u8>> = match policy(&es) {
            ExternalSecretCreationPolicy::Merge | ExternalSecretCreationPolicy::CreateOrMerge => secret
                .data
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
            _ => BTreeMap::new(),
        };
        final_data.extend(data.clone());
        // applyOwnership.
        let labels = secret.metadata.labels.get_or_insert_default();
        if policy(&es) == ExternalSecretCreationPolicy::Owner {
            labels.insert(LABEL_CREATED_BY.into(), hash::owner_label(&ns.name, name));
            secret.metadata.owner_references = Some(vec![OwnerReference {
                api_version: "external-secrets.io/v1".into(),
                kind: "ExternalSecret".into(),
                name: name.into(),
                uid: es.uid().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]);
        }
        labels.insert(LABEL_MANAGED.into(), "true".into());
        secret
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(ANNOTATION_DATA_HASH.into(), hash::data_hash(&final_data));
        secret.data = Some(final_data.into_iter().map(|(k, v)| (k, ByteString(v))).collect());
        if es.spec.target.immutable {
            secret.immutable = Some(true);
        }
        let pp = PostParams {
            field_manager: Some(fqdn(name)),
            ..Default::default()
        };
        match existing {
            // `r.Create(ctx, newSecret, client.FieldOwner(fqdn))`
            None => {
                secrets.create(&pp, &secret).await?;
            }
            // `r.Update(ctx, updatedSecret, client.FieldOwner(fqdn))`
            Some(_) => {
                secrets.replace(&target, &pp, &secret).await?;
            }
        }
        // markAsDone, then `r.Status().Update`.
        es.status = Some(ExternalSecretStatus {
            refresh_time: Some(refreshed.clone()),
            synced_resource_version: refresh::resource_version(&es),
            conditions: vec![ExternalSecretStatusCondition {
                type_: ExternalSecretConditionType::Ready,
                status: "True".into(),
                reason: Some("SecretSynced".into()),
                message: Some("secret synced".into()),
                last_transition_time: Some(refreshed),
            }],
            binding: Some(LocalObjectReference { name: target }),
        });
        let pp = PostParams {
            field_manager: Some(MANAGER.into()),
            ..Default::default()
        };
        ess.replace_status(name, &pp, &es).await?;
        Ok(())
    }

    /// `shouldRefresh(es)` at `now`.
    pub fn should_refresh(es: &ExternalSecret, now: chrono::DateTime<Utc>) -> bool {
        let status = es.status.clone().unwrap_or_default();
        let synced = &status.synced_resource_version;
        let time = status.refresh_time.as_ref().and_then(refresh::from_time);
        match es.spec.refresh_policy() {
            ExternalSecretRefreshPolicy::CreatedOnce => synced.is_empty() || time.is_none(),
            ExternalSecretRefreshPolicy::OnChange => {
                synced.is_empty() || time.is_none() || *synced != refresh::resource_version(es)
            }
            ExternalSecretRefreshPolicy::Periodic => {
                let interval = es.spec.refresh_interval().unwrap_or_default();
                if interval.is_zero() && !synced.is_empty() {
                    return false;
                }
                if *synced != refresh::resource_version(es) {
                    return true;
                }
                let Some(t) = time else { return true };
                if t > now {
                    return true;
                }
                t + chrono::Duration::from_std(interval).unwrap_or_default() < now
            }
        }
    }

    /// `isSecretValid(secret, es)`.
    pub fn is_secret_valid(secret: Option<&Secret>, es: &ExternalSecret) -> bool {
        if policy(es) == ExternalSecretCreationPolicy::Orphan {
            return true;
        }
        let Some(s) = secret else { return false };
        let data: BTreeMap<String, Vec<u8>> = s
            .data
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        s.labels().get(LABEL_MANAGED).map(String::as_str) == Some("true")
            && s.annotations().get(ANNOTATION_DATA_HASH) == Some(&hash::data_hash(&data))
    }

    /// `applyOwnership`'s errors: another ExternalSecret controls the Secret (ErrSecretIsOwned), or another
    /// controller does and ESO cannot become it (ErrSecretSetCtrlRef).
    pub fn ownership_error(secret: &Secret, es: &ExternalSecret) -> Option<String> {
        let c = secret.owner_references().iter().find(|o| o.controller == Some(true))?;
        let es_kind = c.kind == "ExternalSecret" && c.api_version.starts_with("external-secrets.io/");
        if es_kind && c.name != es.name_any() {
            return Some(format!("secret is owned by another ExternalSecret: {}", c.name));
        }
        if !es_kind && policy(es) == ExternalSecretCreationPolicy::Owner {
            return Some(format!(
                "could not set controller reference: owned by {} {}",
                c.kind, c.name
            ));
        }
        None
    }

    /// `getManagedDataKeys(secret, name)`: the data keys of entries of ESO's field manager (any operation).
    pub fn managed_data_keys(secret: &Secret, name: &str) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        for mf in secret.metadata.managed_fields.iter().flatten() {
            if mf.manager.as_deref() != Some(fqdn(name).as_str()) {
                continue;
            }
            if let Some(d) = mf
                .fields_v1
                .as_ref()
                .and_then(|f| f.0.get("f:data"))
                .and_then(|d| d.as_object())
            {
                keys.extend(
                    d.keys()
                        .filter(|k| *k != ".")
                        .map(|k| k.trim_start_matches("f:").to_string()),
                );
            }
        }
        keys
    }
}

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn text(s: &Secret) -> BTreeMap<String, String> {
    syncret_tests::Env::text(s)
}

async fn store(ns: &TestNamespace, name: &str, class: &str, password: &str) -> anyhow::Result<()> {
    let stores: Api<SecretStore> = ns.api();
    apply_yaml(
        &stores,
        &format!(
            r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: {name}}}
spec:
  controller: "{class}"
  provider:
    fake:
      data:
      - {{key: db, value: '{{"user":"app","password":"{password}"}}'}}
      - {{key: token, value: t0k3n}}
"#
        ),
    )
    .await?;
    Ok(())
}

/// A name whose field manager ESO hashes (`externalsecrets.external-secrets.io/` + name is over 63 characters).
const LONG: &str = "database-credentials-for-payments";
/// ESO's field manager for [`LONG`], computed by ESO's `fqdnFor` in Go.
const LONG_MANAGER: &str =
    "externalsecrets.external-secrets.io/sha3/9443f84ff57513cc186231741cf19665269b45491b7add5e80abcf15";

/// The ExternalSecrets of the takeover tests and the data each produces from [`store`] (password `s3cr3t`).
fn fleet(store: &str) -> Vec<(String, String, BTreeMap<String, Vec<u8>>)> {
    // Over 27 characters: ESO's field manager is the sha3 form.
    let long = LONG;
    let es = |name: &str, meta: &str, spec: &str| {
        format!(
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata:\n  name: {name}\n{meta}spec:\n  refreshInterval: 1h\n  secretStoreRef: {{name: {store}}}\n{spec}"
        )
    };
    vec![
        (
            "plain".into(),
            es(
                "plain",
                "  labels: {team: a}\n  annotations: {note: copied}\n",
                "  data:\n  - {secretKey: password, remoteRef: {key: db, property: password}}\n  - {secretKey: token, remoteRef: {key: token}}\n",
            ),
            data(&[("password", "s3cr3t"), ("token", "t0k3n")]),
        ),
        (
            "templated".into(),
            es(
                "templated",
                "  labels: {not: copied}\n",
                "  target:\n    template:\n      type: kubernetes.io/basic-auth\n      metadata: {labels: {app: web}, annotations: {a: b}}\n      data: {username: '{{ .user }}', password: '{{ .password }}'}\n  dataFrom: [{extract: {key: db}}]\n",
            ),
            data(&[("username", "app"), ("password", "s3cr3t")]),
        ),
        (
            "kubectl-applied".into(),
            es(
                "kubectl-applied",
                "  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{\"kind\":\"ExternalSecret\"}'\n",
                "  data:\n  - {secretKey: token, remoteRef: {key: token}}\n",
            ),
            data(&[("token", "t0k3n")]),
        ),
        (
            "orphan".into(),
            es(
                "orphan",
                "",
                "  target: {creationPolicy: Orphan}\n  data:\n  - {secretKey: token, remoteRef: {key: token}}\n",
            ),
            data(&[("token", "t0k3n")]),
        ),
        (
            "merged".into(),
            es(
                "merged",
                "",
                "  target: {name: shared, creationPolicy: Merge}\n  data:\n  - {secretKey: token, remoteRef: {key: token}}\n",
            ),
            data(&[("token", "t0k3n")]),
        ),
        (
            long.into(),
            es(
                long,
                "",
                "  target: {name: long}\n  data:\n  - {secretKey: user, remoteRef: {key: db, property: user}}\n",
            ),
            data(&[("user", "app")]),
        ),
        (
            "deleting".into(),
            es(
                "deleting",
                "",
                "  target: {deletionPolicy: Delete}\n  data:\n  - {secretKey: token, remoteRef: {key: token}}\n",
            ),
            data(&[("token", "t0k3n")]),
        ),
    ]
}

/// The user's own Secret that `merged` merges into.
async fn shared_secret(ns: &TestNamespace) -> anyhow::Result<()> {
    let secrets: Api<Secret> = ns.api();
    apply_yaml(
        &secrets,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: shared}\nstringData: {own: mine}\n",
    )
    .await?;
    Ok(())
}

/// ESO's status on a store (`Ready`, `Valid`), written as its store controller does.
async fn eso_store_status(ns: &TestNamespace, name: &str) -> anyhow::Result<()> {
    let stores: Api<SecretStore> = ns.api();
    let mut s = stores.get(name).await?;
    s.status = Some(serde_json::from_value(serde_json::json!({
        "capabilities": "ReadWrite",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Valid", "message": "store validated",
                         "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    }))?);
    let pp = PostParams {
        field_manager: Some(eso::MANAGER.into()),
        ..Default::default()
    };
    stores.replace_status(name, &pp, &s).await?;
    Ok(())
}

async fn versions<K>(api: &Api<K>) -> anyhow::Result<BTreeMap<String, String>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    Ok(api
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .map(|o| (o.name_any(), o.resource_version().unwrap_or_default()))
        .collect())
}

/// Sum of a metric over every sample with these labels, from the operator's `/metrics`.
async fn metric_sum(op: &Operator, name: &str, labels: &[(&str, &str)]) -> anyhow::Result<f64> {
    let scrape = syncret_tests::http::scrape(op.admin_addr()).await?;
    Ok(scrape.find(name, labels).map(|s| s.value).sum())
}

/// Waits until syncret has reconciled each of the `n` ExternalSecrets of `ns` at least once.
async fn all_reconciled(op: &Operator, ns: &str, n: usize, timeout: Duration) -> anyhow::Result<()> {
    eventually(timeout, &format!("{n} ExternalSecrets reconciled"), || async {
        let scrape = syncret_tests::http::scrape(op.admin_addr()).await.ok()?;
        let done = scrape
            .find("externalsecret_sync_calls_total", &[("namespace", ns)])
            .filter(|s| s.value >= 1.0)
            .count();
        (done >= n).then_some(())
    })
    .await
}

/// syncret in `ns` with controller class `class` (the one ESO's stores had, or were given for the move).
async fn start_in(client: &kube::Client, ns: &str, class: String) -> anyhow::Result<Operator> {
    let ns = ns.to_string();
    Operator::start_with(client.clone(), |o| {
        o.settings.namespace = Some(ns);
        o.settings.controller_class = class;
    })
    .await
}

fn time_of(es: &ExternalSecret) -> Option<chrono::DateTime<Utc>> {
    es.status.as_ref()?.refresh_time.as_ref().and_then(refresh::from_time)
}

#[tokio::test]
async fn takeover_of_eso_state_writes_no_secret() -> anyhow::Result<()> {
    let cp = syncret_tests::ControlPlane::shared().await?;
    let ns = cp.namespace("takeover").await?;
    let ess: Api<ExternalSecret> = ns.api();
    let secrets: Api<Secret> = ns.api();
    // syncret will run with this class; under ESO the store had it too (or none: both work alike).
    let class = syncret_tests::unique_name("class");
    store(&ns, "fake", &class, "s3cr3t").await?;
    eso_store_status(&ns, "fake").await?;
    shared_secret(&ns).await?;
    let fleet = fleet("fake");
    let now = refresh::to_time(Utc::now());
    for (name, yaml, d) in &fleet {
        apply_yaml(&ess, yaml).await?;
        eso::reconcile(&ns, name, d, now.clone()).await?;
    }
    let n = fleet.len();

    // 1. ESO's statuses are fresh: nothing is due, nothing is written (no Secret, no status, no finalizer).
    let secrets_before = versions(&secrets).await?;
    let es_before = versions(&ess).await?;
    let client = cp.client().await?;
    let start = |class: String| start_in(&client, &ns.name, class);
    let long = secrets.get("long").await?;
    assert!(
        long.metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some(LONG_MANAGER)),
        "ESO's writes are not reproduced with ESO's field manager"
    );
    let op = start(class.clone()).await?;
    all_reconciled(&op, &ns.name, n, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(versions(&secrets).await?, secrets_before, "a Secret was written");
    assert_eq!(versions(&ess).await?, es_before, "an ExternalSecret was written");
    assert_eq!(metric_sum(&op, "syncret_secret_writes_total", &[]).await?, 0.0);
    op.stop().await;

    // 2. ESO last synced two hours ago: every ExternalSecret is due. syncret reads the store and refreshes the
    //    status (as ESO would) but writes no Secret: the values are unchanged.
    let two_hours_ago = refresh::to_time(Utc::now() - chrono::Duration::hours(2));
    for (name, _, d) in &fleet {
        eso::reconcile(&ns, name, d, two_hours_ago.clone()).await?;
    }
    let secrets_before = versions(&secrets).await?;
    let before: BTreeMap<String, ExternalSecret> = ess
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .map(|e| (e.name_any(), e))
        .collect();
    let t0 = Utc::now() - chrono::Duration::seconds(1);
    let op = start(class.clone()).await?;
    eventually(Duration::from_secs(30), "every status refreshed by syncret", || async {
        let list = ess.list(&Default::default()).await.ok()?;
        list.items
            .iter()
            .all(|e| time_of(e).is_some_and(|t| t >= t0))
            .then_some(())
    })
    .await?;
    assert_eq!(versions(&secrets).await?, secrets_before, "a Secret was written");
    assert_eq!(metric_sum(&op, "syncret_secret_writes_total", &[]).await?, 0.0);
    for e in ess.list(&Default::default()).await?.items {
        let old = &before[&e.name_any()];
        let (new_c, old_c) = (
            &e.status.as_ref().unwrap().conditions,
            &old.status.as_ref().unwrap().conditions,
        );
        assert_eq!(
            new_c,
            old_c,
            "{}: the Ready condition is ESO's, unchanged",
            e.name_any()
        );
        assert_eq!(e.finalizers(), old.finalizers(), "{}", e.name_any());
        assert_eq!(
            e.status.as_ref().unwrap().synced_resource_version,
            old.status.as_ref().unwrap().synced_resource_version
        );
    }

    // 3. syncret owns them now: a rotated password is written, and the Secrets keep ESO's marks, so ESO could
    //    take them back.
    store(&ns, "fake", &class, "r0tated").await?;
    let plain = eventually(Duration::from_secs(30), "rotated password in plain", || async {
        secrets
            .get("plain")
            .await
            .ok()
            .filter(|s| text(s).get("password").map(String::as_str) == Some("r0tated"))
    })
    .await?;
    let es = ess.get("plain").await?;
    assert_eq!(eso::ownership_error(&plain, &es), None);
    assert!(eso::is_secret_valid(Some(&plain), &es));
    assert_eq!(plain.labels()["team"], "a");
    assert_eq!(plain.annotations()["note"], "copied");
    assert_eq!(plain.owner_references()[0].uid, es.uid().unwrap());
    assert_eq!(
        eso::managed_data_keys(&plain, "plain"),
        ["password", "token"].map(String::from).into()
    );
    let templated = eventually(Duration::from_secs(30), "rotated password in templated", || async {
        secrets
            .get("templated")
            .await
            .ok()
            .filter(|s| text(s).get("password").map(String::as_str) == Some("r0tated"))
    })
    .await?;
    assert_eq!(templated.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    assert_eq!(text(&secrets.get("shared").await?)["own"], "mine");

    // 4. ESO's cleanup finalizer does not hold an ExternalSecret syncret runs: deletionPolicy Delete removes the
    //    Secret it controls, Retain keeps it.
    ess.delete("deleting", &DeleteParams::default()).await?;
    ess.delete("orphan", &DeleteParams::default()).await?;
    eventually(Duration::from_secs(30), "deleted ExternalSecrets gone", || async {
        let a = ess.get_opt("deleting").await.ok()?;
        let b = ess.get_opt("orphan").await.ok()?;
        (a.is_none() && b.is_none()).then_some(())
    })
    .await?;
    eventually(
        Duration::from_secs(30),
        "Secret of deletionPolicy Delete removed",
        || async { secrets.get_opt("deleting").await.ok()?.is_none().then_some(()) },
    )
    .await?;
    assert!(secrets.get_opt("orphan").await?.is_some());
    op.stop().await;
    Ok(())
}

#[tokio::test]
async fn back_to_eso_finds_nothing_to_trip_over() -> anyhow::Result<()> {
    let cp = syncret_tests::ControlPlane::shared().await?;
    let ns = cp.namespace("back-to-eso").await?;
    let op = Operator::start(&ns).await?;
    let ess: Api<ExternalSecret> = ns.api();
    let secrets: Api<Secret> = ns.api();
    store(&ns, "fake", &op.class, "s3cr3t").await?;
    shared_secret(&ns).await?;
    let fleet = fleet("fake");
    for (_, yaml, _) in &fleet {
        apply_yaml(&ess, yaml).await?;
    }
    for (name, _, want) in &fleet {
        let target = ess.get(name).await?.target_name().unwrap_or_default().to_string();
        eventually(Duration::from_secs(30), &format!("Secret of {name}"), || async {
            let s = secrets.get_opt(&target).await.ok()??;
            let got: BTreeMap<String, Vec<u8>> = s.data.clone()?.into_iter().map(|(k, v)| (k, v.0)).collect();
            want.iter().all(|(k, v)| got.get(k) == Some(v)).then_some(())
        })
        .await?;
    }
    // A key dropped by a spec change: syncret removes it, and ESO must see the rest as its own.
    let (_, plain_yaml, _) = &fleet[0];
    apply_yaml(
        &ess,
        &plain_yaml.replace("  - {secretKey: token, remoteRef: {key: token}}\n", ""),
    )
    .await?;
    eventually(Duration::from_secs(30), "token dropped from plain", || async {
        (!text(&secrets.get("plain").await.ok()?).contains_key("token")).then_some(())
    })
    .await?;
    eventually(Duration::from_secs(30), "statuses synced", || async {
        let list = ess.list(&Default::default()).await.ok()?;
        list.items
            .iter()
            .all(|e| {
                e.status
                    .as_ref()
                    .is_some_and(|s| s.synced_resource_version == refresh::resource_version(e))
            })
            .then_some(())
    })
    .await?;
    op.stop().await;

    // ESO starts again: for every ExternalSecret its reconcile would skip (refresh not due, Secret valid), and
    // nothing would make it fail.
    let now = Utc::now();
    for es in ess.list(&Default::default()).await?.items {
        let name = es.name_any();
        let target = es.target_name().unwrap_or_default().to_string();
        let secret = secrets.get_opt(&target).await?;
        assert!(!eso::should_refresh(&es, now), "{name}: ESO would refresh at once");
        assert!(
            eso::is_secret_valid(secret.as_ref(), &es),
            "{name}: ESO would find its Secret invalid"
        );
        let secret = secret.unwrap();
        assert_eq!(eso::ownership_error(&secret, &es), None, "{name}");
        // ESO's condition, as ESO writes it.
        let ready = &es.status.as_ref().unwrap().conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref(), ready.message.as_deref()),
            ("True", Some("SecretSynced"), Some("secret synced")),
            "{name}"
        );
        assert_eq!(es.status.as_ref().unwrap().binding.as_ref().unwrap().name, target);
        // Nothing foreign to ESO on the ExternalSecret or the Secret.
        for f in es.finalizers() {
            assert_eq!(
                f, "externalsecrets.external-secrets.io/externalsecret-cleanup",
                "{name}"
            );
        }
        for k in secret.labels().keys().chain(secret.annotations().keys()) {
            assert!(!k.contains("syncret"), "{name}: {k}");
        }
        // ESO removes the data keys it manages before re-adding its own: every key syncret wrote is one.
        let ours: BTreeSet<String> = match es.spec.target.creation_policy {
            syncret_crds::ExternalSecretCreationPolicy::Merge => ["token".to_string()].into(),
            _ => secret.data.clone().unwrap_or_default().into_keys().collect(),
        };
        let managed = eso::managed_data_keys(&secret, &name);
        assert!(
            ours.is_subset(&managed),
            "{name}: ESO manages {managed:?}, not all of {ours:?}"
        );
    }
    // ESO's next write (its PUT, its field manager) goes through over syncret's server-side apply, and the
    // user's own key of the merged Secret is still there.
    eso::reconcile(
        &ns,
        "plain",
        &data(&[("password", "from-eso")]),
        refresh::to_time(Utc::now()),
    )
    .await?;
    let plain = secrets.get("plain").await?;
    assert_eq!(text(&plain)["password"], "from-eso");
    assert!(eso::is_secret_valid(Some(&plain), &ess.get("plain").await?));
    assert_eq!(text(&secrets.get("shared").await?)["own"], "mine");
    Ok(())
}

#[tokio::test]
async fn side_by_side_by_controller_class() -> anyhow::Result<()> {
    let cp = syncret_tests::ControlPlane::shared().await?;
    let ns = cp.namespace("side-by-side").await?;
    let op = Operator::start(&ns).await?;
    let ess: Api<ExternalSecret> = ns.api();
    let secrets: Api<Secret> = ns.api();
    let stores: Api<SecretStore> = ns.api();
    // ESO runs with its default class; its stores say so (a store without a class is processed by both).
    store(&ns, "eso-store", "default", "s3cr3t").await?;
    eso_store_status(&ns, "eso-store").await?;
    store(&ns, "moved", &op.class, "s3cr3t").await?;
    let yaml = |name: &str, store: &str| {
        format!(
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {name}}}\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {{name: {store}}}\n  data:\n  - {{secretKey: password, remoteRef: {{key: db, property: password}}}}\n"
        )
    };
    apply_yaml(&ess, &yaml("on-eso", "eso-store")).await?;
    // Synced by ESO two hours ago: due, if it were syncret's.
    eso::reconcile(
        &ns,
        "on-eso",
        &data(&[("password", "s3cr3t")]),
        refresh::to_time(Utc::now() - chrono::Duration::hours(2)),
    )
    .await?;
    apply_yaml(&ess, &yaml("on-syncret", "moved")).await?;
    eventually(Duration::from_secs(30), "on-syncret synced", || async {
        secrets.get_opt("on-syncret").await.ok()?.map(|_| ())
    })
    .await?;
    let secret_rv = secrets.get("on-eso").await?.resource_version();
    let es_rv = ess.get("on-eso").await?.resource_version();
    let store_rv = stores.get("eso-store").await?.resource_version();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        secrets.get("on-eso").await?.resource_version(),
        secret_rv,
        "ESO's Secret touched"
    );
    assert_eq!(
        ess.get("on-eso").await?.resource_version(),
        es_rv,
        "ESO's ExternalSecret touched"
    );
    assert_eq!(
        stores.get("eso-store").await?.resource_version(),
        store_rv,
        "ESO's store touched"
    );

    // The move: the store changes class. Its ExternalSecrets are taken over with zero Secret writes.
    let t0 = Utc::now() - chrono::Duration::seconds(1);
    stores
        .patch(
            "eso-store",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"controller": op.class}})),
        )
        .await?;
    eventually(Duration::from_secs(30), "on-eso refreshed by syncret", || async {
        time_of(&ess.get("on-eso").await.ok()?).filter(|t| *t >= t0).map(|_| ())
    })
    .await?;
    assert_eq!(
        secrets.get("on-eso").await?.resource_version(),
        secret_rv,
        "a Secret write on takeover"
    );
    assert_eq!(
        metric_sum(&op, "syncret_secret_writes_total", &[("operation", "apply")]).await?,
        0.0
    );

    // Back: the store returns to ESO's class; syncret lets go (a rotated value is not written by it).
    stores
        .patch(
            "eso-store",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"controller": "default"}})),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    store(&ns, "eso-store", "default", "r0tated").await?;
    ess.patch(
        "on-eso",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"force-sync": "1"}}})),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(text(&secrets.get("on-eso").await?)["password"], "s3cr3t");
    op.stop().await;
    Ok(())
}

/// Scale: N ExternalSecrets in ESO's state, then syncret started over them (fresh statuses, then due ones).
/// Prints the figures of docs/migration.md. `SYNCRET_TAKEOVER_N` sets N (default 40).
#[tokio::test]
async fn takeover_at_scale() -> anyhow::Result<()> {
    let n: usize = std::env::var("SYNCRET_TAKEOVER_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let cp = syncret_tests::ControlPlane::shared().await?;
    let ns = cp.namespace("takeover-scale").await?;
    let ess: Api<ExternalSecret> = ns.api();
    let secrets: Api<Secret> = ns.api();
    let class = syncret_tests::unique_name("class");
    store(&ns, "fake", &class, "s3cr3t").await?;
    eso_store_status(&ns, "fake").await?;
    let setup = Instant::now();
    let fresh = refresh::to_time(Utc::now());
    let names: Vec<String> = (0..n).map(|i| format!("es-{i:05}")).collect();
    let d = data(&[("password", "s3cr3t"), ("token", "t0k3n")]);
    futures::stream::iter(names.iter().map(|name| {
        let (ess, ns, d, fresh) = (ess.clone(), &ns, &d, fresh.clone());
        async move {
            apply_yaml(
                &ess,
                &format!(
                    "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {name}, labels: {{app: scale}}}}\nspec:\n  refreshInterval: 1h\n  secretStoreRef: {{name: fake}}\n  data:\n  - {{secretKey: password, remoteRef: {{key: db, property: password}}}}\n  - {{secretKey: token, remoteRef: {{key: token}}}}\n"
                ),
            )
            .await?;
            eso::reconcile(ns, name, d, fresh).await
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<anyhow::Result<()>>>()
    .await
    .into_iter()
    .collect::<anyhow::Result<Vec<()>>>()?;
    let setup = setup.elapsed();
    let client = cp.client().await?;
    let start = |class: String| start_in(&client, &ns.name, class);

    // Fresh statuses. The apiserver's own request counter says what syncret did (this test's requests in the
    // window subtracted; other tests of the binary should not run at the same time for a clean figure).
    let secrets_before = versions(&secrets).await?;
    let es_before = versions(&ess).await?;
    let api_before = apimetrics::scrape(&client).await?;
    let t = Instant::now();
    let op = start(class.clone()).await?;
    all_reconciled(&op, &ns.name, n, Duration::from_secs(600)).await?;
    let fresh_time = t.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fresh_api = apimetrics::scrape(&client).await?.since(&api_before).work();
    let fresh_secret_writes = changed(&secrets_before, &versions(&secrets).await?);
    let fresh_es_writes = changed(&es_before, &versions(&ess).await?);
    let fresh_metric = metric_sum(&op, "syncret_secret_writes_total", &[]).await?.abs();
    op.stop().await;

    // Due statuses (ESO stopped two hours ago).
    let old = refresh::to_time(Utc::now() - chrono::Duration::hours(2));
    futures::stream::iter(names.iter().map(|name| {
        let (ess, old) = (ess.clone(), old.clone());
        async move {
            let mut es = ess.get(name).await?;
            if let Some(s) = es.status.as_mut() {
                s.refresh_time = Some(old.clone());
                if let Some(c) = s.conditions.first_mut() {
                    c.last_transition_time = Some(old);
                }
            }
            let pp = PostParams {
                field_manager: Some(eso::MANAGER.into()),
                ..Default::default()
            };
            ess.replace_status(name, &pp, &es).await?;
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<anyhow::Result<Vec<()>>>()?;
    let secrets_before = versions(&secrets).await?;
    let es_before = versions(&ess).await?;
    let t0 = Utc::now() - chrono::Duration::seconds(1);
    let api_before = apimetrics::scrape(&client).await?;
    let polls = std::sync::atomic::AtomicUsize::new(0);
    let t = Instant::now();
    let op = start(class.clone()).await?;
    eventually(Duration::from_secs(900), "every status refreshed", || async {
        polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let list = ess.list(&Default::default()).await.ok()?;
        list.items
            .iter()
            .all(|e| time_of(e).is_some_and(|t| t >= t0))
            .then_some(())
    })
    .await?;
    let due_time = t.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut own = apimetrics::Counts::default();
    own.add(
        "LIST",
        "externalsecrets",
        polls.load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    let due_api = apimetrics::scrape(&client).await?.since(&api_before).work().minus(&own);
    let due_secret_writes = changed(&secrets_before, &versions(&secrets).await?);
    let due_es_writes = changed(&es_before, &versions(&ess).await?);
    let due_metric = metric_sum(&op, "syncret_secret_writes_total", &[]).await?.abs();
    op.stop().await;
    println!(
        "takeover of {n} ExternalSecrets (ESO state set up in {:.1} s): fresh statuses: all reconciled {:.2} s after \
         start, {fresh_secret_writes} Secrets and {fresh_es_writes} ExternalSecrets changed, {fresh_metric:.0} Secret \
         writes; due statuses: all refreshed {:.2} s after start, {due_secret_writes} Secrets and {due_es_writes} \
         ExternalSecrets changed, {due_metric:.0} Secret writes",
        setup.as_secs_f64(),
        fresh_time.as_secs_f64(),
        due_time.as_secs_f64()
    );
    let show = |c: &apimetrics::Counts| {
        c.breakdown()
            .iter()
            .map(|(k, v)| format!("{k}: {v:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // The apiserver's counters are the whole control plane's, shared with the tests running beside this one: printed
    // for the figures (run this test alone for clean ones), not asserted. The Secrets' resourceVersions and the
    // operator's own write counter are this test's.
    println!("apiserver requests (all tests), fresh statuses: {}", show(&fresh_api));
    println!("apiserver requests (all tests), due statuses: {}", show(&due_api));
    assert_eq!((fresh_secret_writes, fresh_es_writes, fresh_metric), (0, 0, 0.0));
    assert_eq!((due_secret_writes, due_metric), (0, 0.0));
    assert_eq!(due_es_writes, n, "one status write per ExternalSecret, as ESO would");
    Ok(())
}

fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> usize {
    after.iter().filter(|(k, v)| before.get(*k) != Some(*v)).count()
}

use futures::StreamExt as _;

mod helm;

/// `syncret check` against a cluster: ExternalSecrets judged with what exists (a Secret nobody manages, a store
/// of another class), ESO's finalizers on a Namespace, and the exit status of the command.
#[tokio::test]
async fn check_reads_the_cluster() -> anyhow::Result<()> {
    use syncret::check::{self, Verdict};
    let cp = syncret_tests::ControlPlane::shared().await?;
    let ns = cp.namespace("check").await?;
    let ess: Api<ExternalSecret> = ns.api();
    let secrets: Api<Secret> = ns.api();
    store(&ns, "fake", "", "s3cr3t").await?;
    store(&ns, "elsewhere", "eso", "s3cr3t").await?;
    apply_yaml(
        &secrets,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: hand-made}\nstringData: {a: b}\n",
    )
    .await?;
    let es = |name: &str, spec: &str| {
        format!("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {name}}}\nspec:\n{spec}")
    };
    for (name, spec) in [
        (
            "fine",
            "  secretStoreRef: {name: fake}\n  data: [{secretKey: a, remoteRef: {key: token}}]\n",
        ),
        (
            "hand-made",
            "  secretStoreRef: {name: fake}\n  target: {creationPolicy: Orphan}\n  data: [{secretKey: a, remoteRef: {key: token}}]\n",
        ),
        (
            "other-class",
            "  secretStoreRef: {name: elsewhere}\n  data: [{secretKey: a, remoteRef: {key: token}}]\n",
        ),
        (
            // A generator kind syncret does not run (docs/generators.md).
            "generated",
            "  dataFrom: [{sourceRef: {generatorRef: {kind: QuayAccessToken, name: quay}}}]\n",
        ),
    ] {
        apply_yaml(&ess, &es(name, spec)).await?;
    }
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(ns.client.clone());
    let finalizer = "externalsecrets.external-secrets.io/ces-shared";
    namespaces
        .patch(
            &ns.name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"finalizers": [finalizer]}})),
        )
        .await?;

    let args = syncret::cli::CheckArgs {
        files: vec![],
        cluster: false,
        kubeconfig: Some(cp.kubeconfig().to_path_buf()),
        context: None,
        namespace: ns.name.clone(),
        controller_class: "default".into(),
        output: syncret::cli::CheckFormat::Json,
        all: false,
    };
    let read = check::cluster::read(&args).await?;
    let report = check::check(&read.inputs, &read.facts, &Default::default());
    let find = |kind: &str, name: &str| {
        report
            .objects
            .iter()
            .find(|o| o.kind == kind && o.name == name && o.namespace.as_deref().is_none_or(|n| n == ns.name))
            .unwrap_or_else(|| panic!("no {kind} {name}: {report:#?}"))
            .clone()
    };
    assert_eq!(find("ExternalSecret", "fine").verdict, Verdict::Supported);
    assert_eq!(find("SecretStore", "fake").verdict, Verdict::Supported);
    let hand = find("ExternalSecret", "hand-made");
    assert_eq!(hand.verdict, Verdict::Difference, "{hand:#?}");
    assert!(hand.findings[0].message.contains("\"hand-made\" exists"), "{hand:#?}");
    let other = find("ExternalSecret", "other-class");
    assert_eq!(
        (other.verdict, other.findings[0].field.as_str()),
        (Verdict::Supported, "spec.secretStoreRef")
    );
    assert_eq!(find("ExternalSecret", "generated").verdict, Verdict::Unsupported);
    let namespace = find("Namespace", &ns.name);
    assert_eq!(namespace.verdict, Verdict::Difference);
    assert!(namespace.findings[0].message.contains(finalizer));

    // The command: exit status 1 (something is not supported), 0 once it is gone.
    let run = |args: Vec<String>| async move { tokio::task::spawn_blocking(move || syncret::app::main(args)).await };
    let cmd: Vec<String> = ["syncret", "check", "-o", "json", "--kubeconfig"]
        .iter()
        .map(|s| s.to_string())
        .chain([cp.kubeconfig().display().to_string(), "-n".into(), ns.name.clone()])
        .collect();
    assert_eq!(run(cmd.clone()).await?, std::process::ExitCode::FAILURE);
    ess.delete("generated", &DeleteParams::default()).await?;
    assert_eq!(run(cmd).await?, std::process::ExitCode::SUCCESS);

    namespaces
        .patch(
            &ns.name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    Ok(())
}
