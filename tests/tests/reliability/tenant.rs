//! The tenant boundary (issue 23) and hostile provider answers (issue 22's provider side), tried as a tenant would
//! with nothing but Secrets, SecretStores and ExternalSecrets in their own namespace, on the real control plane,
//! against hostile HTTP servers on loopback that record every byte they receive. Each case asserts the condition
//! names the refused field or the cause, the server received nothing of the operator's, a marker file for `exec`
//! stays absent, the user's Secret stays byte-identical, nothing panics, and a canary ExternalSecret in another
//! namespace keeps following its store (within 10 s of a change).
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, PostParams};
use syncret_crds::{ClusterSecretStore, ExternalSecret, SecretStore};
use syncret_tests::hostile::{Behaviour, HostileServer};
use syncret_tests::operator::Operator;
use syncret_tests::{ControlPlane, TestNamespace, apply_yaml, eventually};

use crate::common::leaks::{self, Values};
use crate::common::{es, fake_store, secret_value, wait_es};

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics anywhere in the process outside the tests' own code (a failed assertion of another test running
/// beside is not the operator's panic), chained to the hook installed before.
fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.location().is_none_or(|l| !l.file().contains("tests/")) {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// A tenant's namespace, a canary namespace with a fake store and an ExternalSecret syncing from it, and one
/// operator (all namespaces, its own controller class) under `tenant`.
struct World {
    ns: TestNamespace,
    canary: TestNamespace,
    op: Operator,
    class: String,
    values: Values,
    generation: usize,
}

impl World {
    async fn new(prefix: &str, tenant: syncret_providers::TenantPolicy) -> anyhow::Result<World> {
        crate::common::init();
        count_panics();
        let cp = ControlPlane::shared().await?;
        let ns = cp.namespace(prefix).await?;
        let canary = cp.namespace(&format!("{prefix}-canary")).await?;
        let op = Operator::start_with(ns.client.clone(), |o| {
            o.settings.namespace = None; // both namespaces (and ClusterSecretStores); the class scopes it
            o.settings.tenant = std::sync::Arc::new(tenant);
        })
        .await?;
        let class = op.class.clone();
        let mut w = World {
            ns,
            canary,
            op,
            class,
            values: Values::default(),
            generation: 0,
        };
        w.canary_value().await?;
        apply_yaml(
            &w.canary.api::<ExternalSecret>(),
            &es(
                "canary",
                "  refreshInterval: 1h\n  secretStoreRef: {name: canary}\n  data:\n  - {secretKey: v, remoteRef: {key: v}}\n",
            ),
        )
        .await?;
        // The first sync (store validation included) under load: up to a minute. The 10 s bound is for changes.
        let v = w.canary_value().await?;
        let secrets = w.canary.api::<Secret>();
        eventually(Duration::from_secs(60), "the canary's first sync", || async {
            let s = secrets.get_opt("canary").await.ok()??;
            (s.data?.get("v")?.0 == v.as_bytes()).then_some(())
        })
        .await?;
        w.canary_follows().await?;
        Ok(w)
    }

    /// Writes a new value into the canary's store; returns it.
    async fn canary_value(&mut self) -> anyhow::Result<String> {
        self.generation += 1;
        let v = format!("canary-{}", self.generation);
        apply_yaml(
            &self.canary.api::<SecretStore>(),
            &fake_store("canary", &self.class, &[("v".into(), v.clone())]),
        )
        .await?;
        Ok(v)
    }

    /// Changes the canary's store and waits (at most 10 s) for its Secret to follow; returns how long it took.
    async fn canary_follows(&mut self) -> anyhow::Result<Duration> {
        let v = self.canary_value().await?;
        let t = Instant::now();
        let secrets = self.canary.api::<Secret>();
        eventually(
            Duration::from_secs(10),
            "the canary follows its store within 10 s",
            || async {
                let s = secrets.get_opt("canary").await.ok()??;
                (s.data?.get("v")?.0 == v.as_bytes()).then_some(())
            },
        )
        .await?;
        Ok(t.elapsed())
    }

    async fn apply_ss(&self, yaml: &str) -> anyhow::Result<()> {
        apply_yaml(&self.ns.api::<SecretStore>(), yaml).await.map(|_| ())
    }

    async fn apply_secret(&self, json: serde_json::Value) -> anyhow::Result<()> {
        apply_yaml(&self.ns.api::<Secret>(), &json.to_string())
            .await
            .map(|_| ())
    }

    /// A ConfigMap `name` with a GCP credential configuration under `config.json`.
    async fn cred_config(&self, name: &str, config: &str) -> anyhow::Result<()> {
        apply_yaml(
            &self.ns.api::<ConfigMap>(),
            &serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                "data": {"config.json": config}})
            .to_string(),
        )
        .await
        .map(|_| ())
    }

    async fn apply_es(&self, name: &str, spec: &str) -> anyhow::Result<()> {
        apply_yaml(&self.ns.api::<ExternalSecret>(), &es(name, spec))
            .await
            .map(|_| ())
    }

    /// Waits until the SecretStore's Ready condition is False; returns its message.
    async fn store_refused(&self, name: &str) -> anyhow::Result<String> {
        let api = self.ns.api::<SecretStore>();
        eventually(
            Duration::from_secs(60),
            &format!("SecretStore {name} not ready"),
            || async {
                let s = api.get(name).await.ok()?;
                let c = s.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
                (c.status == "False").then(|| c.message.unwrap_or_default())
            },
        )
        .await
    }

    /// Waits until the ExternalSecret's Ready condition is False with a message containing every part.
    async fn es_refused(&self, name: &str, parts: &[&str]) -> anyhow::Result<String> {
        let api = self.ns.api::<ExternalSecret>();
        match wait_es(&api, name, Duration::from_secs(60), "refused", |s, _, m| {
            s == "False" && parts.iter().all(|p| m.contains(p))
        })
        .await
        {
            Ok((_, _, m)) => Ok(m),
            Err(e) => anyhow::bail!(
                "{e}; last condition: {:?}; stores the operator sees: {:?}; stores: {:?}; logs: {}",
                crate::common::es_condition(&api, name).await,
                self.op
                    .ctx()
                    .stores
                    .secret_stores
                    .state()
                    .iter()
                    .map(|s| format!(
                        "{}/{}",
                        s.metadata.namespace.clone().unwrap_or_default(),
                        s.metadata.name.clone().unwrap_or_default()
                    ))
                    .collect::<Vec<_>>(),
                self.ns.api::<SecretStore>().list(&Default::default()).await.map(|l| l
                    .items
                    .into_iter()
                    .map(|s| (s.metadata.name, s.status))
                    .collect::<Vec<_>>()),
                watch_errors()
            ),
        }
    }

    /// The closing checks: no panic, the canary follows, no secret value anywhere.
    async fn finish(mut self) -> anyhow::Result<()> {
        let took = self.canary_follows().await?;
        println!("canary followed its store {:.1}s after the change", took.as_secs_f64());
        let logs = String::from_utf8_lossy(&leaks::logs()).into_owned();
        assert!(!logs.contains("panicked at"), "a panic in the logs");
        assert_eq!(PANICS.load(Ordering::SeqCst), 0, "no panic anywhere in the process");
        let metrics = self.op.ctx().metrics.render().unwrap_or_default();
        leaks::check(
            &self.values,
            &self.ns.client,
            &[&self.ns.name, &self.canary.name],
            &metrics,
        )
        .await?;
        self.op.stop().await;
        Ok(())
    }
}

/// Log lines about failing watches (for a test that times out waiting for an object).
fn watch_errors() -> String {
    let logs = String::from_utf8_lossy(&leaks::logs()).into_owned();
    logs.lines()
        .filter(|l| {
            let l = l.to_lowercase();
            (l.contains("watch") || l.contains("deserializ") || l.contains("relist"))
                && (l.contains("error") || l.contains("fail"))
        })
        .take(20)
        .collect::<Vec<_>>()
        .join("\n")
}

fn kubeconfig(server: &str, user: serde_json::Value) -> String {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": server}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "users": [{"name": "u", "user": user}],
    })
    .to_string()
}

fn kube_authref_store(name: &str, class: &str, secret: &str) -> String {
    serde_json::json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": name},
        "spec": {"controller": class, "provider": {"kubernetes": {
            "remoteNamespace": "default", "authRef": {"name": secret, "key": "config"}}}}
    })
    .to_string()
}

fn ss(name: &str, class: &str, provider: serde_json::Value) -> String {
    serde_json::json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": name},
        "spec": {"controller": class, "provider": provider}
    })
    .to_string()
}

/// A GCP `external_account` credential configuration reading its subject token from `file`.
fn cred_config_json(file: &str, token_url: &str) -> String {
    serde_json::json!({"type": "external_account", "audience": "//iam.googleapis.com/x",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": token_url,
        "credential_source": {"file": file}})
    .to_string()
}

/// A GCP SecretStore of project `p` with this `auth`.
fn gcp_store(name: &str, class: &str, auth: serde_json::Value) -> String {
    ss(
        name,
        class,
        serde_json::json!({"gcpsm": {"projectID": "p", "auth": auth}}),
    )
}

fn assert_untouched(server: &HostileServer, what: &str) {
    assert_eq!(server.connections(), 0, "{what}: the tenant's server was contacted");
    assert!(
        server.received().is_empty(),
        "{what}: the tenant's server received bytes"
    );
}

/// Issue 23's table: a kubeconfig `exec`, a kubeconfig `tokenFile` naming a file only the operator can read, and
/// an `Orphan` ExternalSecret aimed at a user's Secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_run_commands_read_files_or_overwrite_secrets() -> anyhow::Result<()> {
    let mut w = World::new("ten-table", syncret_tests::operator::loopback_allowed()).await?;
    let server = HostileServer::start(Behaviour::json(&serde_json::json!({"kind": "Status"}))).await?;

    // 1. exec: the command would create a marker file.
    let marker = std::env::temp_dir().join(syncret_tests::unique_name("syncret-exec-marker"));
    let exec = kubeconfig(
        &server.url(),
        serde_json::json!({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/sh",
            "args": ["-c", format!("touch {}; echo '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"x\"}}}}'", marker.display())]}}),
    );
    w.apply_secret(
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kc-exec"},
        "stringData": {"config": exec}}),
    )
    .await?;
    w.apply_ss(&kube_authref_store("kc-exec", &w.class, "kc-exec")).await?;

    // 2. tokenFile: a file only the operator can read.
    let token_path = std::env::temp_dir().join(syncret_tests::unique_name("syncret-operator-only"));
    let operator_only = secret_value("operator-only");
    w.values.add(&operator_only);
    std::fs::write(&token_path, &operator_only)?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&token_path, std::fs::Permissions::from_mode(0o600))?;
    }
    let token_file = kubeconfig(
        &server.url(),
        serde_json::json!({"tokenFile": token_path.display().to_string()}),
    );
    w.apply_secret(
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kc-token-file"},
        "stringData": {"config": token_file}}),
    )
    .await?;
    w.apply_ss(&kube_authref_store("kc-token-file", &w.class, "kc-token-file"))
        .await?;
    for store in ["kc-exec", "kc-token-file"] {
        w.apply_es(
            store,
            &format!("  refreshInterval: 1s\n  secretStoreRef: {{name: {store}}}\n  data:\n  - {{secretKey: v, remoteRef: {{key: x, property: y}}}}\n"),
        )
        .await?;
    }

    // 3. Orphan onto a Secret nobody manages.
    let user_secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("app-config".into()),
            ..Default::default()
        },
        string_data: Some([("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string())].into()),
        ..Default::default()
    };
    let before =
        w.ns.api::<Secret>()
            .create(&PostParams::default(), &user_secret)
            .await?;
    apply_yaml(
        &w.ns.api::<SecretStore>(),
        &fake_store("fake", &w.class, &[("k".into(), "tenant-value".into())]),
    )
    .await?;
    w.apply_es(
        "orphan",
        "  refreshInterval: 1s\n  secretStoreRef: {name: fake}\n  target: {name: app-config, creationPolicy: Orphan}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n",
    )
    .await?;

    let m = w.store_refused("kc-exec").await?;
    println!("kc-exec: {m}");
    assert!(
        m.contains("spec.provider.kubernetes.authRef") && m.contains("users[0].user.exec is not allowed"),
        "{m}"
    );
    let m = w.store_refused("kc-token-file").await?;
    println!("kc-token-file: {m}");
    assert!(
        m.contains("spec.provider.kubernetes.authRef") && m.contains("users[0].user.tokenFile is not allowed"),
        "{m}"
    );
    for store in ["kc-exec", "kc-token-file"] {
        w.es_refused(store, &[&format!("SecretStore \"{store}\" is not ready")])
            .await?;
    }
    let m = w
        .es_refused("orphan", &["app-config", "not managed by this ExternalSecret"])
        .await?;
    println!("orphan: {m}");

    // A few refresh intervals of retries: still nothing happened.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!marker.exists(), "the exec command ran: {} exists", marker.display());
    assert_untouched(&server, "kubeconfig exec / tokenFile");
    let after = w.ns.api::<Secret>().get("app-config").await?;
    assert_eq!(after.data, before.data, "the user's Secret data is byte-identical");
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "and was not even rewritten"
    );
    assert_eq!(after.metadata.labels, before.metadata.labels);
    let _ = std::fs::remove_file(&token_path);
    w.finish().await
}

/// Orphan cleanup deletes only Secrets carrying the ExternalSecret's own marker: a `Merge` ExternalSecret's
/// template writes the `created-by` label of an `Owner` ExternalSecret onto a user's Secret; when the Owner one
/// changes its target, its own old Secret goes, the user's Secret stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_cleanup_deletes_only_secrets_with_the_externalsecrets_own_marker() -> anyhow::Result<()> {
    let w = World::new("ten-orphan", syncret_tests::operator::loopback_allowed()).await?;
    apply_yaml(
        &w.ns.api::<SecretStore>(),
        &fake_store("fake", &w.class, &[("k".into(), "v".into())]),
    )
    .await?;
    let secrets = w.ns.api::<Secret>();
    let user = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("users".into()),
            ..Default::default()
        },
        string_data: Some([("mine".to_string(), "keep-me".to_string())].into()),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &user).await?;
    let created_by = syncret::sync::hash::owner_label(&w.ns.name, "owner");
    w.apply_es(
        "merger",
        &format!("  refreshInterval: 1h\n  secretStoreRef: {{name: fake}}\n  target:\n    name: users\n    creationPolicy: Merge\n    template:\n      mergePolicy: Merge\n      metadata:\n        labels: {{reconcile.external-secrets.io/created-by: {created_by}}}\n  data:\n  - {{secretKey: merged, remoteRef: {{key: k}}}}\n"),
    )
    .await?;
    w.apply_es(
        "owner",
        "  refreshInterval: 1h\n  secretStoreRef: {name: fake}\n  target: {name: first}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n",
    )
    .await?;
    eventually(
        Duration::from_secs(30),
        "the label is on the user's Secret and first exists",
        || async {
            let u = secrets.get_opt("users").await.ok()??;
            let labelled = u.metadata.labels?.get("reconcile.external-secrets.io/created-by") == Some(&created_by);
            (labelled && secrets.get_opt("first").await.ok()?.is_some()).then_some(())
        },
    )
    .await?;
    w.apply_es(
        "owner",
        "  refreshInterval: 1h\n  secretStoreRef: {name: fake}\n  target: {name: second}\n  data:\n  - {secretKey: k, remoteRef: {key: k}}\n",
    )
    .await?;
    eventually(
        Duration::from_secs(30),
        "second created, first deleted as an orphan",
        || async {
            (secrets.get_opt("second").await.ok()?.is_some() && secrets.get_opt("first").await.ok()?.is_none())
                .then_some(())
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let u = secrets.get("users").await?;
    let data = u.data.unwrap_or_default();
    assert_eq!(
        data.get("mine").map(|v| v.0.as_slice()),
        Some(&b"keep-me"[..]),
        "the user's Secret survives"
    );
    assert_eq!(data.get("merged").map(|v| v.0.as_slice()), Some(&b"v"[..]));

    // A key another writer adds to the Secret "owner" fully owns is removed — by an apply conditional on the version
    // read and a removal conditional on the version applied (the real apiserver accepts both preconditions).
    let removals = || {
        w.op.ctx()
            .metrics
            .secret_writes
            .with_label_values(&["remove-keys"])
            .get()
    };
    let before = removals();
    secrets
        .patch(
            "second",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"stringData": {"added-by-hand": "x"}})),
        )
        .await?;
    eventually(Duration::from_secs(30), "the foreign key removed", || async {
        let s = secrets.get_opt("second").await.ok()??;
        let d = s.data?;
        (!d.contains_key("added-by-hand") && d.get("k")?.0 == b"v").then_some(())
    })
    .await?;
    assert!(removals() > before, "removed by the conditional patch");
    w.finish().await
}

/// Issue 23's "found by reading": the operator's own identity (Vault kubernetes auth without a ref, Azure workload
/// identity without a ServiceAccount and managed identity, AWS and GCP without auth), files named by a namespaced
/// store (GCP `credential_source.file`, including `…/serviceaccount/./token` and `/dev/zero`), an STS
/// `token_url` on any host, and the webhook reaching loopback, link-local and metadata addresses — under the
/// operator's default flags (no allowlist, no opt-in).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaced_stores_get_no_operator_identity_no_files_and_no_internal_endpoints() -> anyhow::Result<()> {
    let mut w = World::new("ten-reading", syncret_providers::TenantPolicy::default()).await?;
    let server = HostileServer::start(Behaviour::json(&serde_json::json!({"value": "stolen"}))).await?;
    let class = w.class.clone();

    let vault = ss(
        "vault-k8s",
        &class,
        serde_json::json!({"vault": {"server": server.url(), "path": "secret", "version": "v2",
            "auth": {"kubernetes": {"role": "r", "mountPath": "kubernetes"}}}}),
    );
    let azure_wi = ss(
        "azure-wi",
        &class,
        serde_json::json!({"azurekv": {"vaultUrl": "https://v.vault.azure.net", "authType": "WorkloadIdentity",
            "tenantId": "t", "environmentType": "AzureStackCloud", "useAzureSDK": true,
            "customCloudConfig": {"activeDirectoryEndpoint": server.url(), "keyVaultEndpoint": "https://vault.azure.net"}}}),
    );
    let azure_mi = ss(
        "azure-mi",
        &class,
        serde_json::json!({"azurekv": {"vaultUrl": "https://v.vault.azure.net", "authType": "ManagedIdentity"}}),
    );
    let aws = ss(
        "aws-ambient",
        &class,
        serde_json::json!({"aws": {"service": "SecretsManager", "region": "eu-west-1"}}),
    );
    let gcp = ss("gcp-ambient", &class, serde_json::json!({"gcpsm": {"projectID": "p"}}));
    for s in [&vault, &azure_wi, &azure_mi, &aws, &gcp] {
        w.apply_ss(s).await?;
    }
    // GCP workload identity federation: credential configurations naming files, and one with a foreign STS.
    let cred = cred_config_json;
    let sts = "https://sts.googleapis.com/v1/token";
    let configs = [
        (
            "gcp-own-token",
            cred("/var/run/secrets/kubernetes.io/serviceaccount/./token", sts),
        ),
        ("gcp-dev-zero", cred("/dev/zero", sts)),
        (
            "gcp-foreign-sts",
            cred("/var/run/secrets/tokens/t", "https://sts.evil.example/v1/token"),
        ),
    ];
    for (name, config) in &configs {
        w.cred_config(name, config).await?;
        w.apply_ss(&gcp_store(
            name,
            &class,
            serde_json::json!({"workloadIdentityFederation": {"credConfig": {"name": name, "key": "config.json"}}}),
        ))
        .await?;
    }
    // The webhook: the hostile server on loopback, the cloud metadata address, and a name resolving to loopback.
    let hook = |name: &str, url: &str| {
        ss(
            name,
            &class,
            serde_json::json!({"webhook": {"url": url, "result": {"jsonPath": "$.value"}, "timeout": "5s"}}),
        )
    };
    let port = server.addr().port();
    w.apply_ss(&hook(
        "hook-loopback",
        &format!("{}/{{{{ .remoteRef.key }}}}", server.url()),
    ))
    .await?;
    w.apply_ss(&hook(
        "hook-metadata",
        "http://169.254.169.254/latest/meta-data/{{ .remoteRef.key }}",
    ))
    .await?;
    w.apply_ss(&hook(
        "hook-name",
        &format!("http://localhost:{port}/{{{{ .remoteRef.key }}}}"),
    ))
    .await?;
    // The same server from a ClusterSecretStore (cluster admins' object): allowed.
    let css_name = syncret_tests::unique_name("ten-css-hook");
    let allowed =
        HostileServer::start(Behaviour::json(&serde_json::json!({"value": "from-the-cluster-store"}))).await?;
    apply_yaml(
        &Api::<ClusterSecretStore>::all(w.ns.client.clone()),
        &serde_json::json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
            "metadata": {"name": css_name},
            "spec": {"controller": class, "provider": {"webhook": {
                "url": format!("{}/{{{{ .remoteRef.key }}}}", allowed.url()), "result": {"jsonPath": "$.value"}}}}})
        .to_string(),
    )
    .await?;
    w.apply_es(
        "via-css",
        &format!("  refreshInterval: 1h\n  secretStoreRef: {{name: {css_name}, kind: ClusterSecretStore}}\n  data:\n  - {{secretKey: v, remoteRef: {{key: k}}}}\n"),
    )
    .await?;

    let expect: &[(&str, &[&str])] = &[
        (
            "vault-k8s",
            &[
                "spec.provider.vault.auth.kubernetes",
                "operator's own service-account token",
                "--allow-namespaced-operator-identity",
            ],
        ),
        (
            "azure-wi",
            &["spec.provider.azurekv.serviceAccountRef", "AZURE_FEDERATED_TOKEN_FILE"],
        ),
        ("azure-mi", &["spec.provider.azurekv.authType", "managed identity"]),
        (
            "aws-ambient",
            &["spec.provider.aws.auth", "the operator pod's AWS credentials"],
        ),
        (
            "gcp-ambient",
            &["spec.provider.gcpsm.auth", "Application Default Credentials"],
        ),
        (
            "gcp-own-token",
            &["credential_source.file", "may not make syncret read a file"],
        ),
        (
            "gcp-dev-zero",
            &["credential_source.file", "may not make syncret read a file"],
        ),
        (
            "gcp-foreign-sts",
            &[
                "spec.provider.gcpsm.auth.workloadIdentityFederation.credConfig",
                "token_url",
                "sts.evil.example",
            ],
        ),
        (
            "hook-loopback",
            &[
                "spec.provider.webhook.url",
                "refused by syncret's egress policy: loopback",
            ],
        ),
        (
            "hook-metadata",
            &["spec.provider.webhook.url", "169.254.169.254", "link-local"],
        ),
        ("hook-name", &["spec.provider.webhook.url", "localhost", "loopback"]),
    ];
    for (store, parts) in expect {
        let m = w.store_refused(store).await?;
        println!("{store}: {m}");
        assert!(parts.iter().all(|p| m.contains(p)), "{store}: {m}");
    }
    // The webhook's reads (not only its validation) are refused too.
    w.apply_es(
        "hook-read",
        "  refreshInterval: 1s\n  secretStoreRef: {name: hook-loopback}\n  data:\n  - {secretKey: v, remoteRef: {key: k}}\n",
    )
    .await?;
    w.es_refused("hook-read", &["SecretStore \"hook-loopback\" is not ready"])
        .await?;
    eventually(
        Duration::from_secs(30),
        "the ClusterSecretStore's ExternalSecret synced",
        || async {
            let s = w.ns.api::<Secret>().get_opt("via-css").await.ok()??;
            (s.data?.get("v")?.0 == b"from-the-cluster-store").then_some(())
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_untouched(&server, "namespaced stores");
    assert!(allowed.connections() > 0, "the ClusterSecretStore reached its server");
    for name in ["vault-k8s", "hook-read"] {
        assert!(w.ns.api::<Secret>().get_opt(name).await?.is_none(), "{name}: no Secret");
    }
    Api::<ClusterSecretStore>::all(w.ns.client.clone())
        .delete(&css_name, &Default::default())
        .await?;
    w.values.add("stolen-value-never-used");
    w.finish().await
}

/// A ClusterSecretStore may name a credential file, but only under `--credential-file-allowlist`, never the
/// operator's own token, and never a device: `/dev/zero` and a file outside the allowlist are refused before any
/// byte is read or sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_store_files_are_canonicalized_allowlisted_and_capped() -> anyhow::Result<()> {
    let allow = std::env::temp_dir().join(syncret_tests::unique_name("syncret-allowed"));
    std::fs::create_dir_all(&allow)?;
    let outside = std::env::temp_dir().join(syncret_tests::unique_name("syncret-outside"));
    let outside_value = secret_value("outside");
    std::fs::write(&outside, &outside_value)?;
    let tenant = syncret_providers::TenantPolicy {
        file_allowlist: vec![allow.clone()],
        ..syncret_tests::operator::loopback_allowed()
    };
    let mut w = World::new("ten-files", tenant).await?;
    w.values.add(&outside_value);
    let sts = HostileServer::start(Behaviour::json(
        &serde_json::json!({"access_token": "t", "expires_in": 60}),
    ))
    .await?;
    let files = [
        ("dev-zero", "/dev/zero".to_string()),
        ("outside", outside.display().to_string()),
        (
            "dotdot",
            format!(
                "{}/../{}",
                allow.display(),
                outside.file_name().and_then(|f| f.to_str()).unwrap_or_default()
            ),
        ),
    ];
    let css: Api<ClusterSecretStore> = Api::all(w.ns.client.clone());
    let mut names = Vec::new();
    for (what, path) in &files {
        let name = syncret_tests::unique_name(&format!("ten-file-{what}"));
        w.cred_config(&name, &cred_config_json(path, "https://sts.googleapis.com/v1/token"))
            .await?;
        apply_yaml(
            &css,
            &serde_json::json!({"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
                "metadata": {"name": name},
                "spec": {"controller": w.class, "provider": {"gcpsm": {"projectID": "p", "auth": {
                    "workloadIdentityFederation": {"credConfig": {"name": name, "key": "config.json", "namespace": w.ns.name}}}}}}})
            .to_string(),
        )
        .await?;
        names.push((what, name));
    }
    for (what, name) in &names {
        let m = match eventually(Duration::from_secs(60), &format!("{name} not ready"), || async {
            let s = css.get(name).await.ok()?;
            let c = s.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
            (c.status == "False").then(|| c.message.unwrap_or_default())
        })
        .await
        {
            Ok(m) => m,
            Err(e) => anyhow::bail!(
                "{e}; status: {:?}; logs: {}",
                css.get(name).await.map(|s| s.status),
                watch_errors()
            ),
        };
        println!("{what}: {m}");
        assert!(
            m.contains("credential_source.file")
                && m.contains("is not under a directory of --credential-file-allowlist"),
            "{what}: {m}"
        );
        css.delete(name, &Default::default()).await?;
    }
    assert_untouched(&sts, "no token exchange");
    let _ = std::fs::remove_file(&outside);
    let _ = std::fs::remove_dir_all(&allow);
    w.finish().await
}

/// Issue 22's provider-side rows: a `429` with `Retry-After: 18446744073709551615` (4 ExternalSecrets), a GCP
/// key whose `private_key` is `-----BEGIN X-----END X-----` (2 SecretStores), and answers that never end (an
/// endless body, a huge `Content-Length`, endless headers, a redirect to the metadata address) from the webhook,
/// Vault, a "remote apiserver" of the kubernetes provider and a GCP token endpoint. Each ends in a clear
/// condition; nothing panics; memory stays bounded; stores created afterwards are still validated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_answers_end_in_clear_errors_not_panics_or_memory() -> anyhow::Result<()> {
    let mut w = World::new("ten-answers", syncret_tests::operator::loopback_allowed()).await?;
    let class = w.class.clone();
    let rss_before = rss_kib();
    let throttle = HostileServer::start(Behaviour::throttle("18446744073709551615")).await?;
    let endless = HostileServer::start(Behaviour::EndlessBody).await?;
    let huge_length = HostileServer::start(Behaviour::HugeContentLength(1 << 40)).await?;
    let headers = HostileServer::start(Behaviour::EndlessHeaders).await?;
    let redirect = HostileServer::start(Behaviour::redirect("http://169.254.169.254/latest/meta-data/iam")).await?;
    let hook =
        |url: String| serde_json::json!({"webhook": {"url": url, "result": {"jsonPath": "$.value"}, "timeout": "20s"}});
    w.apply_ss(&ss(
        "throttle",
        &class,
        hook(format!("{}/{{{{ .remoteRef.key }}}}", throttle.url())),
    ))
    .await?;
    w.apply_ss(&ss("endless", &class, hook(format!("{}/x", endless.url()))))
        .await?;
    w.apply_ss(&ss("huge-length", &class, hook(format!("{}/x", huge_length.url()))))
        .await?;
    w.apply_ss(&ss("headers", &class, hook(format!("{}/x", headers.url()))))
        .await?;
    w.apply_ss(&ss("redirect", &class, hook(format!("{}/x", redirect.url()))))
        .await?;
    for i in 0..4 {
        w.apply_es(
            &format!("throttled-{i}"),
            &format!("  refreshInterval: 1s\n  secretStoreRef: {{name: throttle}}\n  data:\n  - {{secretKey: v, remoteRef: {{key: k{i}}}}}\n"),
        )
        .await?;
    }
    for store in ["endless", "huge-length", "headers", "redirect"] {
        w.apply_es(
            store,
            &format!("  refreshInterval: 1s\n  secretStoreRef: {{name: {store}}}\n  data:\n  - {{secretKey: v, remoteRef: {{key: k}}}}\n"),
        )
        .await?;
    }
    // Vault answering its reads with an endless body.
    w.apply_secret(
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vault-token"},
        "stringData": {"token": "hvs.tenant-token"}}),
    )
    .await?;
    w.values.add("hvs.tenant-token");
    let vault = HostileServer::start(Behaviour::EndlessBody).await?;
    w.apply_ss(&ss(
        "vault-endless",
        &class,
        serde_json::json!({"vault": {"server": vault.url(), "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}),
    ))
    .await?;
    // A "remote apiserver" answering with an endless body.
    let apiserver = HostileServer::start(Behaviour::EndlessBody).await?;
    w.apply_secret(
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "remote-token"},
        "stringData": {"token": "t"}}),
    )
    .await?;
    w.apply_ss(&ss(
        "kube-endless",
        &class,
        serde_json::json!({"kubernetes": {"remoteNamespace": "default", "server": {"url": apiserver.url()},
            "auth": {"token": {"bearerToken": {"name": "remote-token", "key": "token"}}}}}),
    ))
    .await?;
    // A GCP service-account key whose token_uri answers endlessly, and two keys with a hostile PEM.
    let token_uri = HostileServer::start(Behaviour::EndlessBody).await?;
    let key = |private_key: &str, token_uri: &str| {
        serde_json::json!({"type": "service_account", "client_email": "a@p.iam.gserviceaccount.com",
            "private_key": private_key, "private_key_id": "k", "token_uri": token_uri})
        .to_string()
    };
    let real_key = rsa_key_pem()?;
    for (name, json) in [
        ("gcp-endless", key(&real_key, &format!("{}/token", token_uri.url()))),
        (
            "gcp-pem-1",
            key("-----BEGIN X-----END X-----", "https://oauth2.googleapis.com/token"),
        ),
        (
            "gcp-pem-2",
            key("-----BEGIN X-----END X-----", "https://oauth2.googleapis.com/token"),
        ),
    ] {
        w.apply_secret(
            serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": {"key.json": json}}),
        )
        .await?;
        w.apply_ss(&gcp_store(
            name,
            &class,
            serde_json::json!({"secretRef": {"secretAccessKeySecretRef": {"name": name, "key": "key.json"}}}),
        ))
        .await?;
    }

    for i in 0..4 {
        let m = w
            .es_refused(
                &format!("throttled-{i}"),
                &["throttled by the provider, retry after 600s"],
            )
            .await?;
        if i == 0 {
            println!("throttled: {m}");
        }
    }
    let bodies: &[(&str, &[&str])] = &[
        (
            "endless",
            &["failed to call endpoint", "larger than the limit of 16 MiB"],
        ),
        (
            "huge-length",
            &["failed to call endpoint", "larger than the limit of 16 MiB"],
        ),
        ("headers", &["failed to call endpoint"]),
        (
            "redirect",
            &["spec.provider.webhook.url", "169.254.169.254", "link-local"],
        ),
    ];
    for (name, parts) in bodies {
        let m = w.es_refused(name, parts).await?;
        println!("{name}: {m}");
    }
    let stores: &[(&str, &[&str])] = &[
        ("vault-endless", &["larger than the limit of 16 MiB"]),
        ("kube-endless", &["larger than the limit of 16 MiB"]),
        ("gcp-endless", &["token_uri", "larger than the limit of 16 MiB"]),
        (
            "gcp-pem-1",
            &[
                "spec.provider.gcpsm.auth.secretRef.secretAccessKeySecretRef",
                "private_key is not a PEM block",
            ],
        ),
        (
            "gcp-pem-2",
            &[
                "spec.provider.gcpsm.auth.secretRef.secretAccessKeySecretRef",
                "private_key is not a PEM block",
            ],
        ),
    ];
    for (name, parts) in stores {
        let m = w.store_refused(name).await?;
        println!("{name}: {m}");
        assert!(parts.iter().all(|p| m.contains(p)), "{name}: {m}");
    }
    // Stores created afterwards are still validated (the GCP panic stopped every later validation).
    apply_yaml(
        &w.ns.api::<SecretStore>(),
        &fake_store("after", &class, &[("k".into(), "v".into())]),
    )
    .await?;
    eventually(
        Duration::from_secs(30),
        "a store created afterwards is validated",
        || async {
            let s = w.ns.api::<SecretStore>().get("after").await.ok()?;
            s.status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Ready" && c.status == "True")
        },
    )
    .await?;
    let took = w.canary_follows().await?;
    println!(
        "canary followed {:.1}s after its store changed, with every hostile store retrying",
        took.as_secs_f64()
    );
    let usage = crate::common::process::usage(std::process::id())?;
    println!(
        "hostile answers: RSS {} MiB before, {} MiB after (peak {} MiB)",
        rss_before / 1024,
        usage.rss_kib / 1024,
        usage.peak_rss_kib / 1024
    );
    assert!(
        usage.rss_kib < rss_before + (100 << 10),
        "RSS grew by more than 100 MiB: {} -> {} KiB",
        rss_before,
        usage.rss_kib
    );
    assert!(endless.connections() > 0 && vault.connections() > 0 && apiserver.connections() > 0);
    assert!(throttle.requests().len() >= 4, "every throttled ExternalSecret asked");
    w.finish().await
}

fn rss_kib() -> u64 {
    crate::common::process::usage(std::process::id())
        .map(|u| u.rss_kib)
        .unwrap_or(0)
}

/// A fresh RSA private key (PKCS#8 PEM), made with openssl as the GCP tests do.
fn rsa_key_pem() -> anyhow::Result<String> {
    let out = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}
