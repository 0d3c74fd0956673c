//! Generators (`generators.external-secrets.io`) end to end on the real control plane: every kind syncret runs
//! feeding an ExternalSecret (and a PushSecret), new values per refresh and none under `CreatedOnce`, a
//! ClusterGenerator used from a namespace, bad specs reported on the ExternalSecret with the Secret kept, STS and
//! ECR against moto, and VaultDynamicSecret against OpenBao: the PKI issue endpoint with leases, the lease
//! surviving a generator-client rebuild and an operator restart, renewal seen in OpenBao's audit log, rotation
//! revoking the superseded lease, and the GeneratorStates of superseded leases cleaned up. MFA against RFC 6238's
//! test vectors; GithubAccessToken against a loopback server speaking GitHub's App API (its expiry as a lease,
//! and a hostile endpoint failing only its own ExternalSecret).
use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use syncret_crds::generator::{
    ClusterGenerator, ECRAuthorizationToken, Fake, GeneratorState, GithubAccessToken, MFA, Password, SSHKey,
    STSSessionToken, UUID, VaultDynamicSecret,
};
use syncret_crds::{ExternalSecret, PushSecret};
use syncret_tests::operator::Operator;
use syncret_tests::servers::{Moto, OpenBao};
use syncret_tests::{ControlPlane, Env, TestNamespace, apply_yaml, eventually, unique_name};
use tokio_util::sync::CancellationToken;

fn text(s: &Secret) -> BTreeMap<String, String> {
    Env::text(s)
}

/// `syncret_generator_calls_total{kind,call,status="success"}`.
fn generator_calls(op: &Operator, kind: &str, call: &str) -> u64 {
    let text = op.ctx().metrics.render().unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("syncret_generator_calls_total{"))
        .filter(|l| {
            l.contains(&format!("kind=\"{kind}\""))
                && l.contains(&format!("call=\"{call}\""))
                && l.contains("status=\"success\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The ExternalSecret's status conditions and the namespace's events, for a failing wait's message.
async fn explain(ns: &TestNamespace, es: &str) -> String {
    let status = match ns.api::<ExternalSecret>().get(es).await {
        Ok(e) => serde_json::to_string(&e.status).unwrap_or_default(),
        Err(e) => e.to_string(),
    };
    let events: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    let notes: Vec<String> = events
        .list(&Default::default())
        .await
        .map(|l| l.items.into_iter().filter_map(|e| e.note).collect())
        .unwrap_or_default();
    format!("ExternalSecret {es} status {status}; events {notes:?}")
}

async fn annotate(env: &Env, es: &str, value: &str) -> anyhow::Result<()> {
    let api = env.ns.api::<ExternalSecret>();
    let patch = json!({"metadata": {"annotations": {"force-sync": value}}});
    api.patch(es, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

/// A ClusterGenerator of `kind` wrapping `spec` (one line of YAML: `<kind>Spec: {…}`), with a unique name.
async fn cluster_generator(env: &Env, kind: &str, spec: &str) -> anyhow::Result<(Api<ClusterGenerator>, String)> {
    let name = unique_name("cg");
    let api: Api<ClusterGenerator> = Api::all(env.ns.client.clone());
    apply_yaml(
        &api,
        &format!(
            "apiVersion: generators.external-secrets.io/v1alpha1\nkind: ClusterGenerator\nmetadata: {{name: {name}}}\nspec:\n  kind: {kind}\n  generator:\n    {spec}\n"
        ),
    )
    .await?;
    Ok((api, name))
}

#[tokio::test]
async fn local_generators_feed_external_secrets_with_new_values_per_refresh() -> anyhow::Result<()> {
    let env = Env::new("gen-local").await?;
    env.apply::<Password>(
        r#"
apiVersion: generators.external-secrets.io/v1alpha1
kind: Password
metadata: {name: pw}
spec: {length: 20, digits: 5, symbols: 3, symbolCharacters: "-_", allowRepeat: true, noUpper: true, secretKeys: [a, b]}
"#,
    )
    .await?;
    env.apply::<Password>(
        "apiVersion: generators.external-secrets.io/v1alpha1\nkind: Password\nmetadata: {name: hex}\nspec: {length: 8, encoding: hex}\n",
    )
    .await?;
    env.apply::<UUID>(
        "apiVersion: generators.external-secrets.io/v1alpha1\nkind: UUID\nmetadata: {name: id}\nspec: {}\n",
    )
    .await?;
    env.apply::<SSHKey>(
        "apiVersion: generators.external-secrets.io/v1alpha1\nkind: SSHKey\nmetadata: {name: ed}\nspec: {keyType: ed25519, comment: deploy@ci}\n",
    )
    .await?;
    env.apply::<SSHKey>(
        "apiVersion: generators.external-secrets.io/v1alpha1\nkind: SSHKey\nmetadata: {name: rsa}\nspec: {}\n",
    )
    .await?;
    env.apply::<Fake>(
        "apiVersion: generators.external-secrets.io/v1alpha1\nkind: Fake\nmetadata: {name: fake}\nspec: {data: {user: admin}}\n",
    )
    .await?;
    // A ClusterGenerator is usable from any namespace.
    let (cg_api, cg_name) =
        cluster_generator(&env, "Password", "passwordSpec: {length: 12, symbols: 0, digits: 0}").await?;
    env.apply::<ExternalSecret>(&format!(
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: gen}}
spec:
  refreshInterval: 1h
  target: {{name: gen}}
  dataFrom:
  - sourceRef: {{generatorRef: {{apiVersion: generators.external-secrets.io/v1alpha1, kind: Password, name: pw}}}}
  - sourceRef: {{generatorRef: {{kind: Password, name: hex}}}}
    rewrite: [{{regexp: {{source: "password", target: "hex"}}}}]
  - sourceRef: {{generatorRef: {{kind: UUID, name: id}}}}
  - sourceRef: {{generatorRef: {{kind: SSHKey, name: ed}}}}
    rewrite: [{{regexp: {{source: "(.*)Key", target: "ed_$1"}}}}]
  - sourceRef: {{generatorRef: {{kind: SSHKey, name: rsa}}}}
  - sourceRef: {{generatorRef: {{kind: Fake, name: fake}}}}
  - sourceRef: {{generatorRef: {{kind: ClusterGenerator, name: {cg_name}}}}}
    rewrite: [{{regexp: {{source: "password", target: "cluster"}}}}]
"#
    ))
    .await?;
    let first = match env
        .secret_where("gen", "generated Secret", |s| {
            s.data.as_ref().is_some_and(|d| d.len() >= 9)
        })
        .await
    {
        Ok(s) => text(&s),
        Err(e) => bail!("{e}: {}", explain(&env.ns, "gen").await),
    };
    for k in ["a", "b"] {
        let p = &first[k];
        assert_eq!(p.len(), 20, "{k}");
        assert_eq!(p.chars().filter(char::is_ascii_digit).count(), 5);
        assert_eq!(p.chars().filter(|c| *c == '-' || *c == '_').count(), 3);
        assert!(!p.chars().any(|c| c.is_ascii_uppercase()));
    }
    assert_ne!(first["a"], first["b"]);
    assert_eq!(first["hex"].len(), 16, "8 characters, hex-encoded");
    assert!(first["hex"].chars().all(|c| c.is_ascii_hexdigit()));
    let uuid = &first["uuid"];
    assert_eq!((uuid.len(), &uuid[14..15]), (36, "4"), "{uuid}");
    assert!(first["ed_private"].starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    assert!(first["ed_public"].starts_with("ssh-ed25519 ") && first["ed_public"].ends_with(" deploy@ci\n"));
    assert!(first["privateKey"].starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    assert!(first["publicKey"].starts_with("ssh-rsa "), "ESO's default is rsa");
    assert_eq!(first["user"], "admin");
    assert_eq!(first["cluster"].len(), 12);
    // How many reads the first sync took depends on timing (CI once saw fewer Password calls in all than two
    // reads make; likely a read failed on a generator not yet cached, or one outlived its reconcile and served
    // the next one; not confirmed): count from here.
    let (passwords, uuids) = (
        generator_calls(&env.op, "Password", "Generate"),
        generator_calls(&env.op, "UUID", "Generate"),
    );
    assert!(
        passwords >= 2 && uuids >= 1,
        "{passwords} Password and {uuids} UUID calls"
    );

    // Every refresh makes new values (ESO's semantics).
    annotate(&env, "gen", "1").await?;
    let second = text(
        &env.secret_where("gen", "new values", |s| {
            s.data
                .as_ref()
                .and_then(|d| d.get("uuid"))
                .is_some_and(|u| u.0 != first["uuid"].as_bytes())
        })
        .await?,
    );
    assert_ne!(second["a"], first["a"]);
    assert_ne!(second["ed_private"], first["ed_private"]);
    assert_eq!(second["user"], "admin");
    // The refresh called the generators again: `pw` and `hex` at least (and the ClusterGenerator's Password).
    let after = generator_calls(&env.op, "Password", "Generate");
    assert!(
        after >= passwords + 2,
        "{passwords} Password calls before the refresh, {after} after"
    );
    let after = generator_calls(&env.op, "UUID", "Generate");
    assert!(after > uuids, "{uuids} UUID calls before the refresh, {after} after");

    // CreatedOnce: made once, never again.
    env.apply::<ExternalSecret>(
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: once}
spec:
  refreshPolicy: CreatedOnce
  target: {name: once}
  dataFrom:
  - sourceRef: {generatorRef: {kind: UUID, name: id}}
"#,
    )
    .await?;
    let once = text(&env.secret("once").await?)["uuid"].clone();
    env.es_ready("once", "True", "SecretSynced").await?;
    annotate(&env, "once", "1").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        text(&env.secret("once").await?)["uuid"],
        once,
        "CreatedOnce keeps its values"
    );
    cg_api.delete(&cg_name, &Default::default()).await?;
    Ok(())
}

#[tokio::test]
async fn a_bad_generator_spec_names_the_field_and_keeps_the_secret() -> anyhow::Result<()> {
    let env = Env::new("gen-bad").await?;
    env.apply::<Password>(
        "apiVersion: generators.external-secrets.io/v1alpha1\nkind: Password\nmetadata: {name: pw}\nspec: {length: 10}\n",
    )
    .await?;
    env.apply::<SSHKey>(
        "apiVersion: generators.external-secrets.io/v1alpha1\nkind: SSHKey\nmetadata: {name: key}\nspec: {keyType: ed25519}\n",
    )
    .await?;
    env.apply::<ExternalSecret>(
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app}
spec:
  refreshInterval: 1h
  target: {name: app}
  dataFrom:
  - sourceRef: {generatorRef: {kind: Password, name: pw}}
  - sourceRef: {generatorRef: {kind: SSHKey, name: key}}
"#,
    )
    .await?;
    // The first sync done (Secret written and status recorded): any later write would be a new generation.
    env.es_ready("app", "True", "SecretSynced").await?;
    let before = env.secret("app").await?;
    // length 0: the schema lets it through; syncret refuses it, naming the field (ESO silently uses 24).
    env.apply::<Password>(
        "apiVersion: generators.external-secrets.io/v1alpha1\nkind: Password\nmetadata: {name: pw}\nspec: {length: 0}\n",
    )
    .await?;
    annotate(&env, "app", "1").await?;
    let msg = env.es_ready("app", "False", "SecretSyncedError").await?;
    assert!(
        msg.contains("spec.dataFrom[0].sourceRef.generatorRef") && msg.contains("spec.length"),
        "{msg}"
    );
    // A key size the key type cannot have.
    env.apply::<Password>(
        "apiVersion: generators.external-secrets.io/v1alpha1\nkind: Password\nmetadata: {name: pw}\nspec: {length: 10}\n",
    )
    .await?;
    env.apply::<SSHKey>(
        "apiVersion: generators.external-secrets.io/v1alpha1\nkind: SSHKey\nmetadata: {name: key}\nspec: {keyType: ecdsa, keySize: 1024}\n",
    )
    .await?;
    annotate(&env, "app", "2").await?;
    let msg = eventually(Duration::from_secs(30), "keySize condition", || async {
        let m = env.es_ready("app", "False", "SecretSyncedError").await.ok()?;
        m.contains("spec.keySize").then_some(m)
    })
    .await?;
    assert!(msg.contains("spec.dataFrom[1].sourceRef.generatorRef"), "{msg}");
    // An unknown key type never gets past the apiserver (ESO's enum).
    let bad = apply_yaml(
        &env.ns.api::<SSHKey>(),
        "apiVersion: generators.external-secrets.io/v1alpha1\nkind: SSHKey\nmetadata: {name: dsa}\nspec: {keyType: dsa}\n",
    )
    .await;
    assert!(bad.is_err_and(|e| e.to_string().contains("keyType")));
    // A kind syncret does not run: refused at planning, naming the field.
    env.apply::<ExternalSecret>(
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: grafana}
spec:
  target: {name: grafana}
  dataFrom:
  - sourceRef: {generatorRef: {kind: Grafana, name: g}}
"#,
    )
    .await?;
    let msg = env.es_ready("grafana", "False", "SecretSyncedError").await?;
    assert!(msg.contains("spec.dataFrom[0].sourceRef.generatorRef.kind"), "{msg}");
    let after = env.secret("app").await?;
    assert_eq!(after.data, before.data, "the Secret is left intact");
    assert_eq!(after.metadata.resource_version, before.metadata.resource_version);
    Ok(())
}

#[tokio::test]
async fn a_push_secret_pushes_generated_values() -> anyhow::Result<()> {
    let env = Env::new("gen-push").await?;
    env.fake_store("fake", &[]).await?;
    env.apply::<Fake>(
        "apiVersion: generators.external-secrets.io/v1alpha1\nkind: Fake\nmetadata: {name: fake}\nspec: {data: {token: t0k3n}}\n",
    )
    .await?;
    env.apply::<PushSecret>(
        r#"
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata: {name: push}
spec:
  refreshInterval: 1h
  secretStoreRefs: [{name: fake, kind: SecretStore}]
  selector: {generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: Fake, name: fake}}
  data:
  - match: {secretKey: token, remoteRef: {remoteKey: pushed-token}}
"#,
    )
    .await?;
    let api = env.ns.api::<PushSecret>();
    let ps = eventually(Duration::from_secs(30), "PushSecret Synced", || async {
        let ps = api.get("push").await.ok()?;
        let st = ps.status.clone()?;
        st.conditions
            .iter()
            .any(|c| c.reason.as_deref() == Some("Synced") && c.status == "True")
            .then_some(ps)
    })
    .await?;
    let synced = serde_json::to_value(&ps.status.unwrap_or_default().synced_push_secrets)?;
    assert!(synced.to_string().contains("pushed-token"), "{synced}");
    assert!(generator_calls(&env.op, "Fake", "Generate") >= 1);
    Ok(())
}

// --- AWS (moto) ------------------------------------------------------------------------------------------------

/// An operator whose AWS provider and generators reach moto.
async fn aws_operator(ns: &TestNamespace, moto: &Moto) -> anyhow::Result<Operator> {
    let mut opts = syncret::runtime::Options::default();
    opts.settings.controller_class = unique_name("class");
    opts.settings.namespace = Some(ns.name.clone());
    opts.settings.backoff_base = Duration::from_millis(200);
    opts.settings.backoff_max = Duration::from_secs(5);
    opts.admin_addr = None;
    opts.client_qps = 0.0;
    let class = opts.settings.controller_class.clone();
    let mut registry = syncret_providers::Registry::with_default_providers();
    registry.generators.aws = syncret_providers::aws::Aws::with_endpoint(moto.endpoint());
    let shutdown = CancellationToken::new();
    let started = syncret::runtime::start_with_registry(ns.client.clone(), opts, registry, shutdown.clone()).await?;
    Ok(Operator {
        started: Some(started),
        shutdown,
        class,
    })
}

#[tokio::test]
async fn sts_session_tokens_and_ecr_authorization_tokens_from_moto() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("gen-aws").await?;
    let moto = Moto::start().await?;
    let op = aws_operator(&ns, &moto).await?;
    let secrets: Api<Secret> = ns.api();
    let creds: Secret = serde_json::from_value(json!({
        "metadata": {"name": "aws"},
        "stringData": {"id": "AKIAIOSFODNN7EXAMPLE", "secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
    }))?;
    secrets.create(&PostParams::default(), &creds).await?;
    let auth = "  auth:\n    secretRef:\n      accessKeyIDSecretRef: {name: aws, key: id}\n      secretAccessKeySecretRef: {name: aws, key: secret}\n";
    apply_yaml(
        &ns.api::<STSSessionToken>(),
        &format!(
            "apiVersion: generators.external-secrets.io/v1alpha1\nkind: STSSessionToken\nmetadata: {{name: sts}}\nspec:\n  region: eu-west-1\n  requestParameters: {{sessionDuration: 900}}\n{auth}"
        ),
    )
    .await?;
    apply_yaml(
        &ns.api::<ECRAuthorizationToken>(),
        &format!(
            "apiVersion: generators.external-secrets.io/v1alpha1\nkind: ECRAuthorizationToken\nmetadata: {{name: ecr}}\nspec:\n  region: eu-west-1\n{auth}"
        ),
    )
    .await?;
    apply_yaml(
        &ns.api::<ExternalSecret>(),
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: tokens}
spec:
  refreshInterval: 1h
  target: {name: tokens}
  dataFrom:
  - sourceRef: {generatorRef: {kind: STSSessionToken, name: sts}}
  - sourceRef: {generatorRef: {kind: ECRAuthorizationToken, name: ecr}}
"#,
    )
    .await?;
    let data = eventually(Duration::from_secs(60), "Secret aws", || async {
        secrets.get_opt("tokens").await.ok().flatten().map(|s| text(&s))
    })
    .await?;
    for k in ["access_key_id", "secret_access_key", "session_token", "expiration"] {
        assert!(data.get(k).is_some_and(|v| !v.is_empty()), "{k} in {:?}", data.keys());
    }
    assert!(data["expiration"].parse::<i64>().is_ok());
    assert_eq!(data["username"], "AWS");
    assert!(!data["password"].is_empty());
    assert!(
        data["proxy_endpoint"].starts_with("https://"),
        "{}",
        data["proxy_endpoint"]
    );
    assert!(data["expires_at"].parse::<i64>().is_ok());
    assert!(moto.count("GetSessionToken")? >= 1);
    assert!(moto.count("GetAuthorizationToken")? >= 1);
    op.stop().await;
    Ok(())
}

// --- VaultDynamicSecret (OpenBao) ------------------------------------------------------------------------------

/// OpenBao with PKI (`pki/issue/web` makes leased certificates) and an AppRole whose tokens may issue, renew,
/// look up and revoke leases.
struct Pki {
    bao: OpenBao,
    http: reqwest::Client,
    role_id: String,
    secret_id: String,
}

impl Pki {
    /// OpenBao with a Redis server and the database secrets engine: `database/creds/app` makes Redis users with
    /// renewable leases of `ttl`, renewable up to `max_ttl`.
    async fn start_database(ttl: &str, max_ttl: &str) -> anyhow::Result<Pki> {
        let bao = OpenBao::start_with_redis().await?;
        let (addr, password) = bao.redis().context("no redis")?;
        let (host, port) = addr.split_once(':').context("redis address")?;
        let (host, port, password) = (host.to_string(), port.parse::<u16>()?, password.to_string());
        let p = Pki::setup(bao, "5m", "1h").await?;
        p.call("POST", "sys/mounts/database", Some(json!({"type": "database"})))
            .await?;
        p.call(
            "POST",
            "database/config/redis",
            Some(
                json!({"plugin_name": "redis-database-plugin", "host": host, "port": port,
                        "username": "default", "password": password, "allowed_roles": "app", "tls": false}),
            ),
        )
        .await?;
        p.call(
            "POST",
            "database/roles/app",
            Some(json!({"db_name": "redis", "creation_statements": "[\"+@read\"]",
                        "default_ttl": ttl, "max_ttl": max_ttl})),
        )
        .await?;
        Ok(p)
    }

    async fn start(lease_ttl: &str, lease_max_ttl: &str) -> anyhow::Result<Pki> {
        Pki::setup(OpenBao::start().await?, lease_ttl, lease_max_ttl).await
    }

    async fn setup(bao: OpenBao, lease_ttl: &str, lease_max_ttl: &str) -> anyhow::Result<Pki> {
        let mut p = Pki {
            bao,
            http: reqwest::Client::new(),
            role_id: String::new(),
            secret_id: String::new(),
        };
        p.call(
            "POST",
            "sys/mounts/pki",
            Some(json!({"type": "pki", "config": {"max_lease_ttl": "24h"}})),
        )
        .await?;
        p.call(
            "POST",
            "pki/root/generate/internal",
            Some(json!({"common_name": "test-ca", "ttl": "24h"})),
        )
        .await?;
        p.call(
            "POST",
            "pki/roles/web",
            Some(
                json!({"allowed_domains": "example.com", "allow_subdomains": true, "generate_lease": true,
                        "ttl": lease_ttl, "max_ttl": lease_max_ttl}),
            ),
        )
        .await?;
        let policy = r#"
path "pki/issue/web" { capabilities = ["update"] }
path "database/creds/app" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/lookup" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
"#;
        p.call("PUT", "sys/policies/acl/gen", Some(json!({"policy": policy})))
            .await?;
        p.call("POST", "sys/auth/approle", Some(json!({"type": "approle"})))
            .await?;
        p.call(
            "POST",
            "auth/approle/role/gen",
            Some(json!({"token_policies": ["gen"], "token_ttl": "10m", "token_max_ttl": "1h"})),
        )
        .await?;
        let r = p.call("GET", "auth/approle/role/gen/role-id", None).await?;
        p.role_id = r["data"]["role_id"].as_str().context("role_id")?.to_string();
        let s = p
            .call("POST", "auth/approle/role/gen/secret-id", Some(json!({})))
            .await?;
        p.secret_id = s["data"]["secret_id"].as_str().context("secret_id")?.to_string();
        Ok(p)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        self.bao.call(&self.http, method, path, body).await
    }

    /// Whether the lease is still alive (`sys/leases/lookup`).
    async fn alive(&self, lease_id: &str) -> bool {
        self.call("PUT", "sys/leases/lookup", Some(json!({"lease_id": lease_id})))
            .await
            .is_ok()
    }

    /// The generator (PKI certificates) and the AppRole secret it logs in with, in `ns`.
    async fn generator(&self, ns: &TestNamespace) -> anyhow::Result<()> {
        self.generator_for(ns, "POST", "pki/issue/web", "{common_name: app.example.com}")
            .await
    }

    /// A generator `cert` calling `method path` with `parameters`, and the AppRole secret it logs in with.
    async fn generator_for(
        &self,
        ns: &TestNamespace,
        method: &str,
        path: &str,
        parameters: &str,
    ) -> anyhow::Result<()> {
        let secrets: Api<Secret> = ns.api();
        let s: Secret = serde_json::from_value(
            json!({"metadata": {"name": "approle"}, "stringData": {"secret_id": self.secret_id}}),
        )?;
        secrets.create(&PostParams::default(), &s).await?;
        apply_yaml(
            &ns.api::<VaultDynamicSecret>(),
            &format!(
                r#"
apiVersion: generators.external-secrets.io/v1alpha1
kind: VaultDynamicSecret
metadata: {{name: cert}}
spec:
  method: {method}
  path: {path}
  parameters: {parameters}
  provider:
    server: {}
    auth:
      appRole: {{path: approle, roleId: {}, secretRef: {{name: approle, key: secret_id}}}}
"#,
                self.bao.addr(),
                self.role_id
            ),
        )
        .await?;
        Ok(())
    }
}

const CERT_ES: &str = r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: cert}
spec:
  refreshInterval: 1h
  target: {name: cert}
  dataFrom:
  - sourceRef: {generatorRef: {kind: VaultDynamicSecret, name: cert}}
"#;

/// An operator scoped to `ns` with the given generator-client max age and GC grace.
async fn vault_operator(ns: &TestNamespace, client_max_age: Duration, grace: Duration) -> anyhow::Result<Operator> {
    Operator::start_with(ns.client.clone(), |o| {
        o.settings.namespace = Some(ns.name.clone());
        o.settings.generator_gc_grace = grace;
        o.client_max_age = client_max_age;
    })
    .await
}

/// The GeneratorStates in `ns` (name, lease id, superseded).
async fn states(ns: &TestNamespace) -> anyhow::Result<Vec<(String, String, bool)>> {
    let api: Api<GeneratorState> = ns.api();
    Ok(api
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .map(|s| {
            let lease = s.spec.state["lease"]["leaseId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (
                s.metadata.name.unwrap_or_default(),
                lease,
                s.spec.garbage_collection_deadline.is_some() || s.metadata.deletion_timestamp.is_some(),
            )
        })
        .collect())
}

/// The lease of the one current state.
async fn current_lease(ns: &TestNamespace) -> anyhow::Result<String> {
    eventually(Duration::from_secs(30), "a current GeneratorState", || async {
        let s = states(ns).await.ok()?;
        let current: Vec<_> = s.into_iter().filter(|(_, _, gc)| !gc).collect();
        (current.len() == 1 && !current[0].1.is_empty()).then(|| current[0].1.clone())
    })
    .await
}

/// Fails on main (generatorRef refused); with the fix the credential written into the Secret stays valid while
/// the generator's client is rebuilt (its login token, which the lease depends on, is kept, not revoked) and
/// across an operator restart, where the new operator takes the lease over from the GeneratorState (PKI leases are
/// not renewable: it is neither re-issued nor revoked; it is rotated before it ends, see the next test).
#[tokio::test]
async fn a_vault_dynamic_secret_survives_client_rebuilds_and_restarts() -> anyhow::Result<()> {
    let pki = Pki::start("90s", "1h").await?;
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("gen-vault-life").await?;
    pki.generator(&ns).await?;
    // The harness's own set-up revokes its bootstrap token: count from here.
    let revoked_tokens = pki.bao.count("update", "auth/token/revoke-self")?;
    let op = vault_operator(&ns, Duration::from_secs(2), Duration::from_secs(1)).await?;
    apply_yaml(&ns.api::<ExternalSecret>(), CERT_ES).await?;
    let secrets: Api<Secret> = ns.api();
    let cert = eventually(Duration::from_secs(60), "Secret cert", || async {
        secrets.get_opt("cert").await.ok().flatten().map(|s| text(&s))
    })
    .await?;
    assert!(cert["certificate"].starts_with("-----BEGIN CERTIFICATE-----"));
    let lease = current_lease(&ns).await?;
    assert!(lease.starts_with("pki/issue/web/"), "{lease}");
    assert!(pki.alive(&lease).await);

    // A second ExternalSecret after the client aged out: a new client (a new login); the old one is closed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let logins = pki.bao.count("update", "auth/approle/login")?;
    apply_yaml(
        &ns.api::<ExternalSecret>(),
        &CERT_ES
            .replace("metadata: {name: cert}", "metadata: {name: cert2}")
            .replace("target: {name: cert}", "target: {name: cert2}"),
    )
    .await?;
    if let Err(e) = eventually(Duration::from_secs(60), "Secret cert2", || async {
        secrets.get_opt("cert2").await.ok().flatten()
    })
    .await
    {
        bail!("{e}: {}", explain(&ns, "cert2").await);
    }
    assert!(
        pki.bao.count("update", "auth/approle/login")? > logins,
        "the client was rebuilt"
    );
    assert_eq!(
        pki.bao.count("update", "auth/token/revoke-self")?,
        revoked_tokens,
        "no token with leases revoked"
    );
    assert!(pki.alive(&lease).await, "the lease outlives the client that made it");

    // Restart: the new operator finds the lease in the GeneratorState; the credential stays as it is.
    op.stop().await;
    assert!(pki.alive(&lease).await, "a shutdown revokes nothing");
    pki.bao.clear_requests()?;
    let op = vault_operator(&ns, Duration::from_secs(3600), Duration::from_secs(1)).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(pki.alive(&lease).await, "alive after the restart");
    let after = text(&secrets.get("cert").await?);
    assert_eq!(
        after["serial_number"], cert["serial_number"],
        "not re-issued by the restart"
    );
    assert_eq!(pki.bao.count("update", "pki/issue/web")?, 0, "nothing made anew");
    op.stop().await;
    Ok(())
}

/// A lease renewals cannot extend (PKI leases are not renewable) is rotated before it ends: a new certificate is
/// written first, then the superseded lease is revoked (before its own end); a superseded lease (here: values made
/// anew by a refresh) is revoked after the grace period and its GeneratorState deleted; deleting the
/// ExternalSecret revokes the last one.
#[tokio::test]
async fn leases_are_rotated_before_they_end_and_superseded_ones_revoked() -> anyhow::Result<()> {
    let pki = Pki::start("20s", "1h").await?;
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("gen-vault-rotate").await?;
    pki.generator(&ns).await?;
    let op = vault_operator(&ns, Duration::from_secs(3600), Duration::from_secs(1)).await?;
    apply_yaml(&ns.api::<ExternalSecret>(), CERT_ES).await?;
    let secrets: Api<Secret> = ns.api();
    let first = eventually(Duration::from_secs(60), "Secret cert", || async {
        secrets.get_opt("cert").await.ok().flatten().map(|s| text(&s))
    })
    .await?;
    let first_lease = current_lease(&ns).await?;
    // Not renewable: rotated at two thirds of its 20s, a new certificate in the Secret.
    let second = eventually(Duration::from_secs(45), "a rotated certificate", || async {
        let s = text(&secrets.get("cert").await.ok()?);
        (s["serial_number"] != first["serial_number"]).then_some(s)
    })
    .await?;
    assert!(second["certificate"].starts_with("-----BEGIN CERTIFICATE-----"));
    // The rotated lease is revoked once superseded (the grace period is 1s), before its 20s are over.
    eventually(Duration::from_secs(5), "the rotated lease revoked", || async {
        (!pki.alive(&first_lease).await).then_some(())
    })
    .await?;
    let paths: Vec<String> = pki
        .bao
        .requests()?
        .into_iter()
        .map(|r| format!("{} {}", r.operation, r.path))
        .collect();
    assert!(
        pki.bao.count("update", "sys/leases/revoke")? >= 1,
        "revoked, not expired: {paths:?}"
    );

    // A refresh makes new values; the lease they replace is revoked after the grace period, its state deleted.
    let lease = current_lease(&ns).await?;
    assert!(pki.alive(&lease).await);
    let revokes = pki.bao.count("update", "sys/leases/revoke")?;
    ns.api::<ExternalSecret>()
        .patch(
            "cert",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"force-sync": "1"}}})),
        )
        .await?;
    eventually(Duration::from_secs(10), "the superseded lease revoked", || async {
        (!pki.alive(&lease).await).then_some(())
    })
    .await?;
    assert!(
        pki.bao.count("update", "sys/leases/revoke")? > revokes,
        "revoked, not expired"
    );
    eventually(
        Duration::from_secs(30),
        "superseded GeneratorStates deleted",
        || async {
            let s = states(&ns).await.ok()?;
            (s.len() == 1 && s.iter().all(|(_, l, gc)| !gc && l != &lease)).then_some(())
        },
    )
    .await?;
    // Deleting the ExternalSecret deletes its state (owner reference), whose lease is revoked.
    let current = current_lease(&ns).await?;
    ns.api::<ExternalSecret>().delete("cert", &Default::default()).await?;
    eventually(Duration::from_secs(60), "the last lease revoked", || async {
        (!pki.alive(&current).await).then_some(())
    })
    .await?;
    op.stop().await;
    Ok(())
}

/// A loopback HTTP server answering every request with `{"token": "t-<n>", "user": "svc"}` (n counts requests).
async fn token_server(stop: CancellationToken) -> anyhow::Result<std::net::SocketAddr> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let mut n = 0u32;
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => return,
                a = listener.accept() => a,
            };
            let Ok((mut sock, _)) = accepted else { continue };
            n += 1;
            let body = json!({"token": format!("t-{n}"), "user": "svc"}).to_string();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => seen.extend_from_slice(&buf[..k]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Ok(addr)
}

/// The Webhook generator: the webhook provider's call made on each refresh, the answer's keys as values.
#[tokio::test]
async fn a_webhook_generator_calls_its_endpoint_on_each_refresh() -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let addr = token_server(stop.clone()).await?;
    let env = Env::new("gen-webhook").await?;
    env.apply::<syncret_crds::generator::Webhook>(&format!(
        r#"
apiVersion: generators.external-secrets.io/v1alpha1
kind: Webhook
metadata: {{name: tokens}}
spec:
  method: POST
  url: "http://{addr}/token"
  result: {{jsonPath: "$"}}
"#
    ))
    .await?;
    env.apply::<ExternalSecret>(
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: hook}
spec:
  refreshInterval: 1h
  target: {name: hook}
  dataFrom:
  - sourceRef: {generatorRef: {kind: Webhook, name: tokens}}
"#,
    )
    .await?;
    let first = text(&env.secret("hook").await?);
    assert_eq!(first["user"], "svc");
    assert!(first["token"].starts_with("t-"), "{first:?}");
    annotate(&env, "hook", "1").await?;
    let second = eventually(Duration::from_secs(30), "a new token", || async {
        let s = text(&env.secret("hook").await.ok()?);
        (s["token"] != first["token"]).then_some(s)
    })
    .await?;
    assert_eq!(second["user"], "svc");
    assert!(generator_calls(&env.op, "Webhook", "Generate") >= 2);
    stop.cancel();
    Ok(())
}

/// Renewable leases (Redis users made by the database secrets engine) are renewed in place up to their max TTL
/// (`sys/leases/renew` in OpenBao's audit log, the same user in the Secret, the lease alive past its TTL), then
/// rotated: new credentials written first, the superseded lease revoked afterwards.
#[tokio::test]
async fn renewable_leases_are_renewed_in_place_then_rotated_at_their_max_ttl() -> anyhow::Result<()> {
    // A 12s TTL: rotation comes a third of a period (4s) before the 40s max TTL, which leaves the 1s grace and a
    // loaded 2-core machine room to revoke the superseded lease before Vault ends it (at 6s/20s it had 1s).
    let db = Pki::start_database("12s", "40s").await?;
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("gen-vault-renew").await?;
    db.generator_for(&ns, "GET", "database/creds/app", "{}").await?;
    let op = vault_operator(&ns, Duration::from_secs(3600), Duration::from_secs(1)).await?;
    apply_yaml(&ns.api::<ExternalSecret>(), CERT_ES).await?;
    let secrets: Api<Secret> = ns.api();
    let first = match eventually(Duration::from_secs(60), "Secret cert", || async {
        secrets.get_opt("cert").await.ok().flatten().map(|s| text(&s))
    })
    .await
    {
        Ok(s) => s,
        Err(e) => bail!("{e}: {}", explain(&ns, "cert").await),
    };
    assert!(first["username"].starts_with("V_"), "{:?}", first.keys());
    let lease = current_lease(&ns).await?;
    assert!(lease.starts_with("database/creds/app/"), "{lease}");
    // Past its 12s TTL: renewed in place, the same user.
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert!(db.alive(&lease).await, "renewed past its 12s TTL");
    assert!(
        db.bao.count("update", "sys/leases/renew")? >= 1,
        "renewal in the audit log"
    );
    assert_eq!(
        text(&secrets.get("cert").await?)["username"],
        first["username"],
        "renewed, not re-made"
    );
    assert!(generator_calls(&op, "VaultDynamicSecret", "RenewLease") >= 1);
    // At its 40s max TTL: rotated (a new user), the old lease revoked before it runs out.
    let second = eventually(Duration::from_secs(50), "rotated credentials", || async {
        let s = text(&secrets.get("cert").await.ok()?);
        (s["username"] != first["username"]).then_some(s)
    })
    .await?;
    assert!(second["username"].starts_with("V_"));
    eventually(Duration::from_secs(10), "the superseded lease revoked", || async {
        (!db.alive(&lease).await).then_some(())
    })
    .await?;
    assert!(
        db.bao.count("update", "sys/leases/revoke")? >= 1,
        "revoked, not expired"
    );
    op.stop().await;
    Ok(())
}

// --- MFA ---------------------------------------------------------------------------------------------------------

/// MFA: RFC 6238 codes from a seed in a Secret. With `when` pinned the code is RFC 6238's own test vector (SHA1,
/// T = 59 s, 8 digits); without it, a fresh code of the default 6 digits. A ClusterGenerator wrapping an MFA spec
/// reads the seed in the namespace of the ExternalSecret using it.
#[tokio::test]
async fn an_mfa_generator_makes_rfc6238_codes() -> anyhow::Result<()> {
    let env = Env::new("gen-mfa").await?;
    // "12345678901234567890" in base32, lower case and spaced as authenticator UIs show seeds.
    env.apply::<Secret>(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: seed}\nstringData: {totp: \"gezd gnbv gy3t qojq gezd gnbv gy3t qojq\"}\n",
    )
    .await?;
    env.apply::<MFA>(
        r#"
apiVersion: generators.external-secrets.io/v1alpha1
kind: MFA
metadata: {name: pinned}
spec: {secret: {name: seed, key: totp}, length: 8, algorithm: sha1, when: "1970-01-01T00:00:59Z"}
"#,
    )
    .await?;
    env.apply::<MFA>(
        "apiVersion: generators.external-secrets.io/v1alpha1\nkind: MFA\nmetadata: {name: now}\nspec: {secret: {name: seed, key: totp}}\n",
    )
    .await?;
    let (cg_api, cg_name) = cluster_generator(
        &env,
        "MFA",
        "mfaSpec: {secret: {name: seed, key: totp}, algorithm: SHA256, timePeriod: 60}",
    )
    .await?;
    env.apply::<ExternalSecret>(&format!(
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: otp}}
spec:
  refreshInterval: 1h
  target: {{name: otp}}
  dataFrom:
  - sourceRef: {{generatorRef: {{apiVersion: generators.external-secrets.io/v1alpha1, kind: MFA, name: pinned}}}}
    rewrite: [{{regexp: {{source: "(.*)", target: "pinned_$1"}}}}]
  - sourceRef: {{generatorRef: {{kind: MFA, name: now}}}}
  - sourceRef: {{generatorRef: {{kind: ClusterGenerator, name: {cg_name}}}}}
    rewrite: [{{regexp: {{source: "(.*)", target: "cluster_$1"}}}}]
"#
    ))
    .await?;
    let s = match env
        .secret_where("otp", "MFA codes", |s| s.data.as_ref().is_some_and(|d| d.len() >= 6))
        .await
    {
        Ok(s) => text(&s),
        Err(e) => bail!("{e}: {}", explain(&env.ns, "otp").await),
    };
    assert_eq!(s["pinned_token"], "94287082", "RFC 6238 appendix B, SHA1 at 59 s");
    assert_eq!(s["pinned_timeLeft"], "1");
    assert_eq!(s["token"].len(), 6);
    assert!(s["token"].chars().all(|c| c.is_ascii_digit()));
    let left: u64 = s["timeLeft"].parse()?;
    assert!((1..=30).contains(&left), "{left}");
    assert_eq!(s["cluster_token"].len(), 6);
    assert!((1..=60).contains(&s["cluster_timeLeft"].parse::<u64>()?));
    assert!(generator_calls(&env.op, "MFA", "Generate") >= 3);

    // A seed that is not base32: a condition naming the field, never the seed; the Secret is kept.
    env.apply::<Secret>(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: seed}\nstringData: {totp: \"not-base32-s3cr3t!\"}\n",
    )
    .await?;
    annotate(&env, "otp", "1").await?;
    let msg = env.es_ready("otp", "False", "SecretSyncedError").await?;
    assert!(
        msg.contains("spec.dataFrom[0].sourceRef.generatorRef") && msg.contains("spec.secret"),
        "{msg}"
    );
    assert!(!msg.contains("s3cr3t"), "{msg}");
    assert_eq!(text(&env.secret("otp").await?)["pinned_token"], "94287082");
    cg_api.delete(&cg_name, &Default::default()).await?;
    Ok(())
}

// --- GithubAccessToken -------------------------------------------------------------------------------------------

/// The test GitHub App's key (the providers crate's unit-test fixture, a throwaway key).
const GITHUB_APP_KEY: &str = include_str!("../../../providers/src/generators/testdata/github-app.pem");

/// How the GitHub test server answers.
#[derive(Clone, Copy)]
enum GithubMode {
    /// `201` with a new token that expires this many seconds from now.
    Tokens(i64),
    /// `201` with a body that never ends.
    Endless,
    /// Reads the request and never answers.
    Silent,
}

/// What the GitHub test server saw: (path, body) of each request with a valid app JWT.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>;

/// A loopback server speaking GitHub's REST API for GitHub Apps as documented at
/// <https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app>:
/// `POST /app/installations/{installation_id}/access_tokens` with `Authorization: Bearer <app JWT>` (RS256, `iss`
/// the app ID, verified here against the app's public key, as GitHub does), an optional JSON body
/// (`repositories`, `permissions`), answered `201` with `{"token": "ghs_…", "expires_at": "<RFC 3339>", …}`;
/// `401` with GitHub's `{"message": …}` for a bad JWT, `404` for another path.
async fn github_server(stop: CancellationToken, mode: GithubMode) -> anyhow::Result<(std::net::SocketAddr, Seen)> {
    use rustls::pki_types::PrivatePkcs1KeyDer;
    use rustls::pki_types::pem::PemObject as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let der = PrivatePkcs1KeyDer::from_pem_slice(GITHUB_APP_KEY.as_bytes())?;
    let pair = ring::signature::RsaKeyPair::from_der(der.secret_pkcs1_der()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let public = std::sync::Arc::new(pair.public().as_ref().to_vec());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let seen: Seen = Default::default();
    let seen_server = seen.clone();
    tokio::spawn(async move {
        let mut n = 0u32;
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => return,
                a = listener.accept() => a,
            };
            let Ok((mut sock, _)) = accepted else { continue };
            n += 1;
            let (public, seen, stop) = (public.clone(), seen_server.clone(), stop.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut req = Vec::new();
                let head_end = loop {
                    if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => req.extend_from_slice(&buf[..k]),
                    }
                };
                let head = String::from_utf8_lossy(&req[..head_end]).to_string();
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)))
                        .map(|(_, v)| v.trim().to_string())
                };
                let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                while req.len() < head_end + len {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => req.extend_from_slice(&buf[..k]),
                    }
                }
                let body: Value = serde_json::from_slice(&req[head_end..]).unwrap_or(Value::Null);
                let path = head.split_whitespace().nth(1).unwrap_or_default().to_string();
                let method = head.split_whitespace().next().unwrap_or_default().to_string();
                let jwt_ok = header("authorization")
                    .and_then(|a| a.strip_prefix("Bearer ").map(str::to_string))
                    .is_some_and(|jwt| verify_app_jwt(&jwt, &public, "4242"));
                let (status, answer) = if method != "POST" || !path.starts_with("/app/installations/") {
                    ("404 Not Found", json!({"message": "Not Found"}).to_string())
                } else if !jwt_ok {
                    (
                        "401 Unauthorized",
                        json!({"message": "A JSON web token could not be decoded"}).to_string(),
                    )
                } else {
                    seen.lock().unwrap().push((path, body));
                    match mode {
                        GithubMode::Tokens(secs) => {
                            let expires = chrono::Utc::now() + chrono::Duration::seconds(secs);
                            let t = json!({
                                "token": format!("ghs_test{n}"),
                                "expires_at": expires.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                                "permissions": {"contents": "read"},
                                "repository_selection": "selected",
                            });
                            ("201 Created", t.to_string())
                        }
                        GithubMode::Endless => {
                            let head = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                            if sock.write_all(head.as_bytes()).await.is_err() {
                                return;
                            }
                            let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "a".repeat(64 * 1024));
                            while !stop.is_cancelled() {
                                if sock.write_all(chunk.as_bytes()).await.is_err() {
                                    return;
                                }
                            }
                            return;
                        }
                        GithubMode::Silent => {
                            stop.cancelled().await;
                            return;
                        }
                    }
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Ok((addr, seen))
}

/// An RS256 JWT signed by the app's key, issued by `app_id`, valid now.
fn verify_app_jwt(jwt: &str, public_der: &[u8], app_id: &str) -> bool {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, s] = parts.as_slice() else { return false };
    let (Ok(header), Ok(claims), Ok(sig)) = (b64.decode(h), b64.decode(c), b64.decode(s)) else {
        return false;
    };
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, public_der);
    if key.verify(format!("{h}.{c}").as_bytes(), &sig).is_err() {
        return false;
    }
    let header: Value = serde_json::from_slice(&header).unwrap_or(Value::Null);
    let claims: Value = serde_json::from_slice(&claims).unwrap_or(Value::Null);
    let now = chrono::Utc::now().timestamp();
    header["alg"] == "RS256"
        && claims["iss"] == app_id
        && claims["iat"].as_i64().is_some_and(|t| t <= now)
        && claims["exp"].as_i64().is_some_and(|t| t > now && t <= now + 600)
}

async fn github_generator(env: &Env, name: &str, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    env.apply::<GithubAccessToken>(&format!(
        r#"
apiVersion: generators.external-secrets.io/v1alpha1
kind: GithubAccessToken
metadata: {{name: {name}}}
spec:
  url: "http://{addr}"
  appID: "4242"
  installID: "77"
  repositories: [app]
  permissions: {{contents: read}}
  auth: {{privateKey: {{secretRef: {{name: github-app, key: private-key}}}}}}
"#
    ))
    .await?;
    Ok(())
}

async fn github_key(env: &Env) -> anyhow::Result<()> {
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "github-app"},
        "stringData": {"private-key": GITHUB_APP_KEY},
    });
    env.apply::<Secret>(&serde_json::to_string(&secret)?).await?;
    Ok(())
}

/// GithubAccessToken: the app JWT exchanged for an installation token with the repositories and permissions asked
/// for; the token's expiry is its lease, so a new token is made before it ends (here within seconds, with a
/// `refreshInterval` of an hour), recorded in a GeneratorState.
#[tokio::test]
async fn a_github_access_token_is_made_from_the_app_key_and_replaced_before_it_expires() -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let (addr, seen) = github_server(stop.clone(), GithubMode::Tokens(9)).await?;
    let env = Env::new("gen-github").await?;
    github_key(&env).await?;
    github_generator(&env, "gh", addr).await?;
    env.apply::<ExternalSecret>(
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: gh}
spec:
  refreshInterval: 1h
  target: {name: gh}
  dataFrom:
  - sourceRef: {generatorRef: {kind: GithubAccessToken, name: gh}}
"#,
    )
    .await?;
    let first = match env.secret("gh").await {
        Ok(s) => text(&s),
        Err(e) => bail!("{e}: {}", explain(&env.ns, "gh").await),
    };
    assert!(first["token"].starts_with("ghs_test"), "{first:?}");
    assert!(chrono::DateTime::parse_from_rfc3339(&first["expires_at"]).is_ok());
    {
        let seen = seen.lock().unwrap();
        let (path, body) = &seen[0];
        assert_eq!(path, "/app/installations/77/access_tokens");
        assert_eq!(
            body,
            &json!({"repositories": ["app"], "permissions": {"contents": "read"}})
        );
    }
    // The lease is recorded, and the token replaced before it expires, with no refresh asked for.
    let lease = current_lease(&env.ns).await?;
    assert!(
        lease.starts_with("github/installations/77/"),
        "a GeneratorState records the token's lease: {lease}"
    );
    let second = eventually(
        Duration::from_secs(30),
        "a new token before the first expires",
        || async {
            let s = text(&env.secret("gh").await.ok()?);
            (s["token"] != first["token"]).then_some(s)
        },
    )
    .await?;
    let expired_at = chrono::DateTime::parse_from_rfc3339(&first["expires_at"])?;
    assert!(
        chrono::Utc::now() < expired_at + chrono::Duration::seconds(2),
        "replaced in time"
    );
    assert!(second["token"].starts_with("ghs_test"));
    assert!(generator_calls(&env.op, "GithubAccessToken", "Generate") >= 2);
    stop.cancel();
    Ok(())
}

/// A hostile GitHub endpoint (an endless body, then no answer at all) ends in a condition on the ExternalSecret
/// naming its generatorRef, within the generator's deadline; the Secret is kept and the namespace's other
/// ExternalSecret keeps syncing meanwhile.
#[tokio::test]
async fn a_hostile_github_endpoint_fails_the_generator_and_nothing_else() -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let (good, _) = github_server(stop.clone(), GithubMode::Tokens(3600)).await?;
    let (endless, _) = github_server(stop.clone(), GithubMode::Endless).await?;
    let (silent, _) = github_server(stop.clone(), GithubMode::Silent).await?;
    let env = Env::new("gen-github-hostile").await?;
    github_key(&env).await?;
    github_generator(&env, "gh", good).await?;
    env.apply::<UUID>(
        "apiVersion: generators.external-secrets.io/v1alpha1\nkind: UUID\nmetadata: {name: id}\nspec: {}\n",
    )
    .await?;
    for (name, kind) in [("gh", "GithubAccessToken"), ("canary", "UUID")] {
        let gen_name = if kind == "UUID" { "id" } else { "gh" };
        env.apply::<ExternalSecret>(&format!(
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {name}}}\nspec:\n  refreshInterval: 1h\n  target: {{name: {name}}}\n  dataFrom:\n  - sourceRef: {{generatorRef: {{kind: {kind}, name: {gen_name}}}}}\n"
        ))
        .await?;
    }
    let before = env.secret("gh").await?;
    env.es_ready("gh", "True", "SecretSynced").await?;
    for (round, addr, expect) in [(1, endless, "larger than"), (2, silent, "no complete answer")] {
        github_generator(&env, "gh", addr).await?;
        annotate(&env, "gh", &round.to_string()).await?;
        let msg = eventually(Duration::from_secs(60), expect, || async {
            let m = env.es_ready("gh", "False", "SecretSyncedError").await.ok()?;
            m.contains(expect).then_some(m)
        })
        .await?;
        assert!(msg.contains("spec.dataFrom[0].sourceRef.generatorRef"), "{msg}");
        assert!(msg.contains("CreateInstallationAccessToken"), "{msg}");
        let canary = text(&env.secret("canary").await?)["uuid"].clone();
        annotate(&env, "canary", &round.to_string()).await?;
        eventually(Duration::from_secs(30), "the canary keeps syncing", || async {
            let s = text(&env.secret("canary").await.ok()?);
            (s["uuid"] != canary).then_some(())
        })
        .await?;
    }
    let after = env.secret("gh").await?;
    assert_eq!(after.data, before.data, "the Secret is left intact");
    stop.cancel();
    Ok(())
}
