//! The `sops` provider end to end: documents encrypted by the real `sops` CLI (and keys made by the real
//! `age-keygen`), both built from their Go modules by `e2e/build-sops.sh`, applied as ConfigMap keys to the test
//! control plane and synced into Secrets through a `sops` SecretStore. age with several recipients, key groups
//! with a Shamir threshold, OpenBao transit and AWS KMS on moto, Azure Key Vault and GCP Cloud KMS on syncret's
//! own wire-protocol servers; YAML, JSON, dotenv and INI; a tampered document (MAC) and a wrong key refused with a
//! condition while the old Secret stays; `syncret seal` output decrypted by the real `sops`.
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde_json::json;
use syncret_crds::{ExternalSecret, SecretStore};
use syncret_providers::sops::Sops;
use syncret_tests::operator::Operator;
use syncret_tests::servers::{AzureKeyVault, GcpEmulator, Moto, OpenBao};
use syncret_tests::{ControlPlane, Env, TestNamespace, eventually, repo_root};

/// The directory holding `sops`, `age` and `age-keygen` (built once per run).
fn tools() -> anyhow::Result<PathBuf> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = std::process::Command::new(repo_root().join("e2e/build-sops.sh"))
            .output()
            .map_err(|e| format!("running e2e/build-sops.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "e2e/build-sops.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

/// A scratch directory for one test's keys and documents.
struct Work {
    dir: PathBuf,
}

impl Work {
    fn new(name: &str) -> anyhow::Result<Work> {
        let dir = std::env::temp_dir().join(syncret_tests::unique_name(&format!("sops-{name}")));
        std::fs::create_dir_all(&dir)?;
        Ok(Work { dir })
    }

    async fn run(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<String> {
        let bin = tools()?;
        let mut cmd = tokio::process::Command::new(bin.join(program));
        cmd.args(args)
            .current_dir(&self.dir)
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env_remove("SOPS_AGE_KEY_FILE")
            .env_remove("SOPS_AGE_KEY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().await.with_context(|| format!("running {program}"))?;
        if !out.status.success() {
            bail!("{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// A new age identity made by the real `age-keygen`: (identity file text, recipient).
    async fn age_key(&self, name: &str) -> anyhow::Result<(String, String)> {
        let file = format!("{name}.txt");
        self.run("age-keygen", &["-o", &file], &[]).await?;
        let recipient = self.run("age-keygen", &["-y", &file], &[]).await?;
        Ok((
            std::fs::read_to_string(self.dir.join(&file))?,
            recipient.trim().to_string(),
        ))
    }

    /// `sops encrypt` of `plaintext` saved as `file` (its extension picks the format); `args` go after
    /// `encrypt`, except `--config FILE`, a global flag, which goes before it.
    async fn encrypt(
        &self,
        file: &str,
        plaintext: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        std::fs::write(self.dir.join(file), plaintext)?;
        let mut all = Vec::new();
        let mut rest = args;
        if let ["--config", config, tail @ ..] = args {
            all.extend(["--config", config]);
            rest = tail;
        }
        all.push("encrypt");
        all.extend_from_slice(rest);
        all.push(file);
        self.run("sops", &all, env).await
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn config_map<V: AsRef<str>>(env_ns: &TestNamespace, name: &str, data: &[(&str, V)]) -> anyhow::Result<()> {
    let data: serde_json::Map<String, serde_json::Value> =
        data.iter().map(|(k, v)| (k.to_string(), json!(v.as_ref()))).collect();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data});
    syncret_tests::apply_yaml(&env_ns.api::<ConfigMap>(), &serde_json::to_string(&cm)?).await?;
    Ok(())
}

async fn identity_secret(ns: &TestNamespace, name: &str, identity: &str) -> anyhow::Result<()> {
    let s =
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"keys.txt": identity}});
    syncret_tests::apply_yaml(&ns.api::<Secret>(), &serde_json::to_string(&s)?).await?;
    Ok(())
}

async fn sops_store(class: &str, ns: &TestNamespace, name: &str, keys: serde_json::Value) -> anyhow::Result<()> {
    let store = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": name},
        "spec": {"controller": class, "provider": {"sops": {"keys": keys}}},
    });
    syncret_tests::apply_yaml(&ns.api::<SecretStore>(), &serde_json::to_string(&store)?).await?;
    Ok(())
}

async fn external_secret(ns: &TestNamespace, name: &str, store: &str, spec: serde_json::Value) -> anyhow::Result<()> {
    let mut spec = spec;
    spec["secretStoreRef"] = json!({"name": store});
    spec["refreshInterval"] = json!("1s");
    let es = json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": name}, "spec": spec});
    syncret_tests::apply_yaml(&ns.api::<ExternalSecret>(), &serde_json::to_string(&es)?).await?;
    Ok(())
}

const YAML_DOC: &str = "# a comment\ndb:\n  user: admin\n  password: s3cr3t\n  port: 5432\nlist:\n  - one\n\
                        tls.crt: |\n  -----BEGIN CERTIFICATE-----\n  MIIB\n  -----END CERTIFICATE-----\nnote_unencrypted: visible\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn age_documents_in_every_format_sync_and_bad_ones_are_refused() -> anyhow::Result<()> {
    let env = Env::new("sops-age").await?;
    let work = Work::new("age")?;
    let (_, r1) = work.age_key("k1").await?;
    let (id2, r2) = work.age_key("k2").await?;
    let (id3, r3) = work.age_key("k3").await?;
    let both = format!("{r1},{r2}");
    let age = ["--age", both.as_str()];
    let yaml = work.encrypt("app.yaml", YAML_DOC, &age, &[]).await?;
    let json_doc = work
        .encrypt("app.json", r#"{"api":{"token":"t0k3n"},"n":5}"#, &age, &[])
        .await?;
    let dotenv = work
        .encrypt("app.env", "API_KEY=k3y\nURL=https://x/?a=b\n", &age, &[])
        .await?;
    let ini = work
        .encrypt("app.ini", "[db]\nuser = ini-user\n[cache]\nttl = 60\n", &age, &[])
        .await?;
    let docs = |yaml: &str| {
        vec![
            ("app.yaml", yaml.to_string()),
            ("app.json", json_doc.clone()),
            ("app.env", dotenv.clone()),
            ("app.ini", ini.clone()),
        ]
    };
    config_map(&env.ns, "docs", &docs(&yaml)).await?;
    // The store holds the second recipient's identity only: any recipient decrypts.
    identity_secret(&env.ns, "sops-age", &id2).await?;
    sops_store(
        env.class(),
        &env.ns,
        "sops",
        json!({"age": [{"secretRef": {"name": "sops-age", "key": "keys.txt"}}]}),
    )
    .await?;
    external_secret(
        &env.ns,
        "app",
        "sops",
        json!({
            "data": [
                {"secretKey": "password", "remoteRef": {"key": "docs/app.yaml", "property": "db.password"}},
                {"secretKey": "port", "remoteRef": {"key": "docs/app.yaml", "property": "db.port"}},
                {"secretKey": "tls.crt", "remoteRef": {"key": "docs/app.yaml", "property": "tls.crt"}},
                {"secretKey": "token", "remoteRef": {"key": "docs/app.json", "property": "api.token"}},
                {"secretKey": "ini-user", "remoteRef": {"key": "docs/app.ini", "property": "db.user"}},
            ],
            "dataFrom": [{"extract": {"key": "docs/app.env"}}],
        }),
    )
    .await?;
    let s = env.secret("app").await?;
    let got = Env::text(&s);
    assert_eq!(got["password"], "s3cr3t");
    assert_eq!(got["port"], "5432");
    assert!(
        got["tls.crt"].starts_with("-----BEGIN CERTIFICATE-----\nMIIB"),
        "{got:?}"
    );
    assert_eq!(got["token"], "t0k3n");
    assert_eq!(got["ini-user"], "ini-user");
    assert_eq!(got["API_KEY"], "k3y");
    assert_eq!(got["URL"], "https://x/?a=b");

    // Key groups: three groups (k1, k2, k3), any two recover the data key; the store holds k2 and k3.
    let config = format!(
        "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [{r1}]\n      - age: [{r2}]\n      - age: [{r3}]\n"
    );
    std::fs::write(work.path("groups.sops.yaml"), config)?;
    let grouped = work
        .encrypt(
            "groups.yaml",
            "password: from-groups\n",
            &["--config", "groups.sops.yaml"],
            &[],
        )
        .await?;
    assert!(grouped.contains("key_groups") && grouped.contains("shamir_threshold: 2"));
    config_map(&env.ns, "grouped", &[("groups.yaml", &grouped)]).await?;
    identity_secret(&env.ns, "sops-age-3", &id3).await?;
    sops_store(
        env.class(),
        &env.ns,
        "sops-groups",
        json!({"age": [
            {"secretRef": {"name": "sops-age", "key": "keys.txt"}},
            {"secretRef": {"name": "sops-age-3", "key": "keys.txt"}},
        ]}),
    )
    .await?;
    external_secret(
        &env.ns,
        "grouped",
        "sops-groups",
        json!({"data": [{"secretKey": "password", "remoteRef": {"key": "grouped/groups.yaml", "property": "password"}}]}),
    )
    .await?;
    assert_eq!(Env::text(&env.secret("grouped").await?)["password"], "from-groups");
    // One group's key alone is below the threshold.
    external_secret(
        &env.ns,
        "below-threshold",
        "sops",
        json!({"data": [{"secretKey": "password", "remoteRef": {"key": "grouped/groups.yaml", "property": "password"}}]}),
    )
    .await?;
    let msg = env.es_ready("below-threshold", "False", "SecretSyncedError").await?;
    assert!(msg.contains("recovered 1 of the 2 key-group shares"), "{msg}");

    // A wrong key: refused with a condition naming the store field.
    identity_secret(&env.ns, "wrong-age", &id3).await?;
    sops_store(
        env.class(),
        &env.ns,
        "sops-wrong",
        json!({"age": [{"secretRef": {"name": "wrong-age", "key": "keys.txt"}}]}),
    )
    .await?;
    external_secret(
        &env.ns,
        "wrong",
        "sops-wrong",
        json!({"dataFrom": [{"extract": {"key": "docs/app.env"}}]}),
    )
    .await?;
    let msg = env.es_ready("wrong", "False", "SecretSyncedError").await?;
    assert!(msg.contains("spec.provider.sops.keys.age[0]"), "{msg}");
    assert!(!msg.contains("k3y"), "{msg}");

    // Tampering (a clear value changed under the MAC) is refused and the Secret keeps its data.
    config_map(&env.ns, "docs", &docs(&yaml.replace("visible", "changed"))).await?;
    let msg = env.es_ready("app", "False", "SecretSyncedError").await?;
    assert!(msg.contains("MAC"), "{msg}");
    assert!(!msg.contains("s3cr3t") && !msg.contains("visible"), "{msg}");
    let after = Env::text(&env.secret("app").await?);
    assert_eq!(after, got, "the Secret is left as it was");
    Ok(())
}

/// A KMS key in moto (region eu-west-1); its ARN.
async fn kms_key(moto: &Moto) -> anyhow::Result<String> {
    let resp: serde_json::Value = reqwest::Client::new()
        .post(moto.endpoint())
        .header("X-Amz-Target", "TrentService.CreateKey")
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20240101/eu-west-1/kms/aws4_request, SignedHeaders=host, Signature=x",
        )
        .body("{}")
        .send()
        .await?
        .json()
        .await?;
    resp["KeyMetadata"]["Arn"]
        .as_str()
        .map(String::from)
        .context("CreateKey returned no ARN")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openbao_transit_and_aws_kms_unwrap_data_keys_once() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("sops-kms").await?;
    let bao = OpenBao::start().await?;
    let moto = Moto::start().await?;
    let work = Work::new("kms")?;
    // Transit at sops/, key app.
    let http = reqwest::Client::new();
    for (path, body) in [
        ("sys/mounts/sops", json!({"type": "transit"})),
        ("sops/keys/app", json!({})),
    ] {
        let r = http
            .post(format!("{}/v1/{path}", bao.addr()))
            .header("X-Vault-Token", bao.root_token())
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "{path}: {}", r.status());
    }
    let transit = format!("{}/v1/sops/keys/app", bao.addr());
    let vault_doc = work
        .encrypt(
            "vault.yaml",
            "password: from-transit\n",
            &["--hc-vault-transit", &transit],
            &[("VAULT_TOKEN", bao.root_token())],
        )
        .await?;
    let arn = kms_key(&moto).await?;
    let aws_env = [
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "eu-west-1"),
    ];
    let kms_doc = work
        .encrypt(
            "kms.env",
            "PASSWORD=from-kms\n",
            &["--kms", &arn, "--encryption-context", "app:billing"],
            &aws_env,
        )
        .await?;
    config_map(&ns, "docs", &[("vault.yaml", &vault_doc), ("kms.env", &kms_doc)]).await?;
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
        "stringData": {"token": bao.root_token(), "id": "test", "key": "test"}});
    syncret_tests::apply_yaml(&ns.api::<Secret>(), &serde_json::to_string(&secret)?).await?;
    let op = Operator::start_with_provider(&ns, Arc::new(Sops::with_aws_endpoint(moto.endpoint()))).await?;
    sops_store(
        &op.class,
        &ns,
        "sops",
        json!({
            "openBao": {"server": bao.addr(), "auth": {"tokenSecretRef": {"name": "creds", "key": "token"}}},
            "aws": {"region": "eu-west-1", "auth": {"secretRef": {
                "accessKeyIDSecretRef": {"name": "creds", "key": "id"},
                "secretAccessKeySecretRef": {"name": "creds", "key": "key"}}}},
        }),
    )
    .await?;
    bao.clear_requests()?;
    moto.clear_requests()?;
    external_secret(
        &ns,
        "app",
        "sops",
        json!({
            "data": [{"secretKey": "transit", "remoteRef": {"key": "docs/vault.yaml", "property": "password"}}],
            "dataFrom": [{"extract": {"key": "docs/kms.env"}}],
        }),
    )
    .await?;
    let secrets = ns.api::<Secret>();
    let s = eventually(Duration::from_secs(30), "Secret app", || async {
        secrets.get_opt("app").await.ok().flatten()
    })
    .await?;
    let got = Env::text(&s);
    assert_eq!(got["transit"], "from-transit");
    assert_eq!(got["PASSWORD"], "from-kms");
    // The refresh runs every second; the recovered data keys are cached, so KMS is asked once per document.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(bao.count("update", "sops/decrypt/app")?, 1, "transit decrypts once");
    assert_eq!(moto.count("Decrypt")?, 1, "KMS decrypts once");
    op.stop().await;
    Ok(())
}

/// `syncret seal --kms`: the data key wrapped by an AWS KMS key (moto) with the sealer's own credentials, in the
/// format `sops --kms` writes: the real `sops` decrypts the document, and a sops store with `aws` auth syncs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_for_an_aws_kms_key_decrypts_with_the_real_sops_and_syncs() -> anyhow::Result<()> {
    use syncret_providers::sops::{seal, tree::Node};
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("sops-seal-kms").await?;
    let moto = Moto::start().await?;
    let work = Work::new("seal-kms")?;
    let arn = kms_key(&moto).await?;
    // The sealer's credentials (what `syncret seal` loads from the user's environment).
    let config = seal::user_aws_config()
        .await
        .into_builder()
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(moto.endpoint())
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("test", "test", None, None, "test"),
        ))
        .build();
    let key = seal::new_data_key();
    let now = "2026-01-01T00:00:00Z";
    let wrapped = seal::wrap_aws_kms(&config, &arn, &key, now).await?;
    let tree = Node::Map(
        vec![("password".into(), Node::Str("from-seal".into()))]
            .into_iter()
            .collect(),
    );
    let document = seal::seal_yaml(&tree, &key, &[wrapped], now)?;
    assert!(!document.contains("from-seal"));
    assert_eq!(moto.count("Encrypt")?, 1);

    // The real sops decrypts it through KMS.
    std::fs::write(work.path("db.sops.yaml"), &document)?;
    let aws_env = [
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "eu-west-1"),
    ];
    let plain = work.run("sops", &["decrypt", "db.sops.yaml"], &aws_env).await?;
    let plain: serde_yaml::Value = serde_yaml::from_str(&plain)?;
    assert_eq!(plain["password"], "from-seal");

    // In the cluster, a sops store with aws auth turns it back into the Secret.
    config_map(&ns, "docs", &[("db.sops.yaml", &document)]).await?;
    let creds = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
        "stringData": {"id": "test", "key": "test"}});
    syncret_tests::apply_yaml(&ns.api::<Secret>(), &serde_json::to_string(&creds)?).await?;
    let op = Operator::start_with_provider(&ns, Arc::new(Sops::with_aws_endpoint(moto.endpoint()))).await?;
    sops_store(
        &op.class,
        &ns,
        "sops",
        json!({"aws": {"region": "eu-west-1", "auth": {"secretRef": {
            "accessKeyIDSecretRef": {"name": "creds", "key": "id"},
            "secretAccessKeySecretRef": {"name": "creds", "key": "key"}}}}}),
    )
    .await?;
    external_secret(
        &ns,
        "db",
        "sops",
        json!({"dataFrom": [{"extract": {"key": "docs/db.sops.yaml"}}]}),
    )
    .await?;
    let secrets = ns.api::<Secret>();
    let s = eventually(Duration::from_secs(30), "Secret db", || async {
        secrets.get_opt("db").await.ok().flatten()
    })
    .await?;
    assert_eq!(Env::text(&s)["password"], "from-seal");
    op.stop().await;
    Ok(())
}

/// The data key of a document the real `sops` encrypted for one age recipient, recovered with its identity.
fn age_data_key(doc: &serde_yaml::Value, identity: &str) -> anyhow::Result<Vec<u8>> {
    use syncret_providers::sops::agekey;
    let enc = doc["sops"]["age"][0]["enc"].as_str().context("no age entry")?;
    let ids = agekey::parse_identities(identity.as_bytes())?;
    match agekey::unwrap(enc, &ids) {
        agekey::Unwrapped::Key(k) => Ok(k.to_vec()),
        _ => bail!("the identity does not open the document"),
    }
}

/// `doc` with its age entry replaced by `kind: [entry]` (the MAC covers the values, not the master keys).
fn rewrap(doc: &serde_yaml::Value, kind: &str, entry: serde_json::Value) -> anyhow::Result<String> {
    let mut doc = doc.clone();
    let sops = doc
        .get_mut("sops")
        .and_then(serde_yaml::Value::as_mapping_mut)
        .context("no sops metadata")?;
    sops.remove("age");
    sops.insert(kind.into(), serde_yaml::to_value(vec![entry])?);
    Ok(serde_yaml::to_string(&doc)?)
}

/// Issue 30 item 2's cloud key kinds: documents encrypted by the real `sops` whose data keys are wrapped by an
/// Azure Key Vault RSA key (`azure_kv`, RSA-OAEP-256) and a GCP Cloud KMS key (`gcp_kms`), unwrapped through the
/// azurekv and gcpsm providers' auth (a service principal's client secret; a service-account key) and cached.
///
/// The real `sops` cannot be pointed at these loopback servers (its Key Vault client checks that the vault's
/// challenge names a `*.vault.azure.net` resource, and its Cloud KMS client has no endpoint setting), so the test
/// encrypts with `sops --age`, recovers the data key, wraps it through each server's own `encrypt` endpoint (as
/// SOPS does: Key Vault `encrypt` RSA-OAEP-256 stored base64url, Cloud KMS `encrypt` stored base64) and writes the
/// entry SOPS writes in place of the age one. A wrong answer (a ciphertext the KMS refuses) and a key in another
/// vault fail the document with a condition naming the store field and the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_key_vault_and_gcp_kms_unwrap_data_keys() -> anyhow::Result<()> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let cp = ControlPlane::shared().await?;
    let ns = cp.namespace("sops-cloud").await?;
    let work = Work::new("cloud")?;
    let (identity, recipient) = work.age_key("k").await?;
    let age = ["--age", recipient.as_str()];
    let az_doc: serde_yaml::Value =
        serde_yaml::from_str(&work.encrypt("az.yaml", "password: from-key-vault\n", &age, &[]).await?)?;
    let gcp_doc: serde_yaml::Value = serde_yaml::from_str(
        &work
            .encrypt("gcp.yaml", "db:\n  password: from-cloud-kms\n", &age, &[])
            .await?,
    )?;

    // Azure: an RSA key in the vault; the data key encrypted with it.
    let az = AzureKeyVault::start().await?;
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(az.ca_cert_pem()?.as_bytes())?)
        .build()?;
    let kv = |path: &str| format!("{}/keys/{path}?api-version=7.6", az.vault_url());
    let created: serde_json::Value = http
        .post(kv("sops/create"))
        .bearer_auth("seed")
        .json(&json!({"kty": "RSA", "key_size": 2048}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let version = created["key"]["kid"]
        .as_str()
        .and_then(|k| k.rsplit('/').next())
        .context("CreateKey returned no kid")?
        .to_string();
    let az_key = age_data_key(&az_doc, &identity)?;
    let wrapped: serde_json::Value = http
        .post(kv(&format!("sops/{version}/encrypt")))
        .bearer_auth("seed")
        .json(&json!({"alg": "RSA-OAEP-256", "value": URL_SAFE_NO_PAD.encode(&az_key)}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let az_entry = |vault: &str, enc: &str| json!({"vault_url": vault, "name": "sops", "version": version, "created_at": "2026-01-01T00:00:00Z", "enc": enc});
    let az_enc = wrapped["value"].as_str().context("no value")?;
    let az_text = rewrap(&az_doc, "azure_kv", az_entry(az.vault_url(), az_enc))?;
    // The same key said to be in another vault: never sent anywhere.
    let elsewhere = rewrap(&az_doc, "azure_kv", az_entry("https://other.vault.azure.net", az_enc))?;
    // A ciphertext the key cannot decrypt: Key Vault answers 400.
    let mut bad = URL_SAFE_NO_PAD.decode(az_enc)?;
    if let Some(b) = bad.first_mut() {
        *b ^= 1;
    }
    let az_refused = rewrap(
        &az_doc,
        "azure_kv",
        az_entry(az.vault_url(), &URL_SAFE_NO_PAD.encode(&bad)),
    )?;

    // GCP: a key ring and key in Cloud KMS; the data key encrypted with it.
    let key = crate::provider_gcp::sa_key()?;
    let auth = crate::provider_gcp::google_auth::GoogleAuth::start(
        crate::provider_gcp::google_auth::Config {
            sa_public_key: key.public_der.clone(),
            ..crate::provider_gcp::auth_config()
        },
        ns.client.clone(),
    )
    .await?;
    let gcp = GcpEmulator::start().await?;
    let kms = |path: &str| format!("http://{}/v1/projects/p/locations/global/{path}", gcp.endpoint());
    let plain = reqwest::Client::new();
    for (url, body) in [
        (kms("keyRings?keyRingId=sops"), json!({})),
        (
            kms("keyRings/sops/cryptoKeys?cryptoKeyId=app"),
            json!({"purpose": "ENCRYPT_DECRYPT"}),
        ),
    ] {
        plain.post(url).json(&body).send().await?.error_for_status()?;
    }
    let resource = "projects/p/locations/global/keyRings/sops/cryptoKeys/app";
    let gcp_key = age_data_key(&gcp_doc, &identity)?;
    let encrypt = |data: Vec<u8>| {
        let req = plain
            .post(kms("keyRings/sops/cryptoKeys/app:encrypt"))
            .json(&json!({"plaintext": STANDARD.encode(data)}));
        async move {
            let sealed: serde_json::Value = req.send().await?.error_for_status()?.json().await?;
            sealed["ciphertext"].as_str().map(String::from).context("no ciphertext")
        }
    };
    let gcp_enc = &encrypt(gcp_key.clone()).await?;
    // An answer that cannot be a data key (100 bytes): what a hostile key service would send.
    let oversized = rewrap(
        &gcp_doc,
        "gcp_kms",
        json!({"resource_id": resource, "enc": encrypt(vec![7; 100]).await?}),
    )?;
    let gcp_entry = |enc: &str| json!({"resource_id": resource, "created_at": "2026-01-01T00:00:00Z", "enc": enc});
    let gcp_text = rewrap(&gcp_doc, "gcp_kms", gcp_entry(gcp_enc))?;
    // A ciphertext Cloud KMS refuses (another key's): a wrong answer for this document.
    let mut other = STANDARD.decode(gcp_enc)?;
    if let Some(b) = other.last_mut() {
        *b ^= 1;
    }
    let refused = rewrap(&gcp_doc, "gcp_kms", gcp_entry(&STANDARD.encode(&other)))?;

    config_map(
        &ns,
        "docs",
        &[
            ("az.yaml", &az_text),
            ("gcp.yaml", &gcp_text),
            ("elsewhere.yaml", &elsewhere),
            ("refused.yaml", &refused),
            ("az-refused.yaml", &az_refused),
            ("oversized.yaml", &oversized),
        ],
    )
    .await?;
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
        "stringData": {"client-id": "sops-reader", "client-secret": "s3cret", "key.json": key.json}});
    syncret_tests::apply_yaml(&ns.api::<Secret>(), &serde_json::to_string(&secret)?).await?;
    let sops = Sops::default()
        .with_azure(syncret_providers::azure::Settings {
            imds_endpoint: az.imds_endpoint().to_string(),
            extra_ca_pem: az.ca_cert_pem()?.into_bytes(),
            env: Default::default(),
        })
        .with_gcp_endpoints(
            crate::provider_gcp::endpoints(&gcp, &auth)
                .with_host("cloudkms.googleapis.com", format!("http://{}", gcp.endpoint())),
        );
    let op = Operator::start_with_provider(&ns, Arc::new(sops)).await?;
    sops_store(
        &op.class,
        &ns,
        "sops",
        json!({
            "azure": {
                "vaultUrl": az.vault_url(), "tenantId": "tenant-1", "useAzureSDK": true,
                "customCloudConfig": {"activeDirectoryEndpoint": az.vault_url()},
                "authSecretRef": {"clientId": {"name": "creds", "key": "client-id"},
                                  "clientSecret": {"name": "creds", "key": "client-secret"}},
            },
            "gcp": {"auth": {"secretRef": {"secretAccessKeySecretRef": {"name": "creds", "key": "key.json"}}}},
        }),
    )
    .await?;
    az.clear_requests()?;
    gcp.clear_requests()?;
    external_secret(
        &ns,
        "app",
        "sops",
        json!({"data": [
            {"secretKey": "azure", "remoteRef": {"key": "docs/az.yaml", "property": "password"}},
            {"secretKey": "gcp", "remoteRef": {"key": "docs/gcp.yaml", "property": "db.password"}},
        ]}),
    )
    .await?;
    let env = Env { ns, op };
    let got = Env::text(&env.secret("app").await?);
    assert_eq!(got["azure"], "from-key-vault");
    assert_eq!(got["gcp"], "from-cloud-kms");
    // Refreshed every second; the recovered data keys are cached, so each key service decrypts once.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let decrypts = az
        .requests()?
        .iter()
        .filter(|r| r.op == "Decrypt" && r.status == 200)
        .count();
    assert_eq!(decrypts, 1, "Key Vault decrypts once");
    assert_eq!(gcp.count("Decrypt")?, 1, "Cloud KMS decrypts once");
    let calls = gcp.requests()?;
    assert!(
        calls
            .iter()
            .all(|r| r.authorization == format!("Bearer {}", crate::provider_gcp::auth_config().oauth_token)),
        "Cloud KMS is called with the service account's token: {calls:?}"
    );

    for (name, doc, field, key) in [
        (
            "refused",
            "docs/refused.yaml",
            "spec.provider.sops.keys.gcp",
            format!("GCP KMS {resource}"),
        ),
        (
            "elsewhere",
            "docs/elsewhere.yaml",
            "spec.provider.sops.keys.azure",
            "https://other.vault.azure.net".into(),
        ),
        (
            "az-refused",
            "docs/az-refused.yaml",
            "spec.provider.sops.keys.azure",
            format!("key sops/{version}"),
        ),
        (
            "oversized",
            "docs/oversized.yaml",
            "spec.provider.sops.keys.gcp",
            "larger than a data key".into(),
        ),
    ] {
        external_secret(
            &env.ns,
            name,
            "sops",
            json!({"data": [{"secretKey": "x", "remoteRef": {"key": doc, "property": "password"}}]}),
        )
        .await?;
        let msg = env.es_ready(name, "False", "SecretSyncedError").await?;
        assert!(msg.contains(field) && msg.contains(&key), "{name}: {msg}");
        assert!(!msg.contains("from-"), "{msg}");
    }
    assert!(
        az.requests()?.iter().all(|r| !r.path.contains("other")),
        "a key of another vault is never asked for"
    );
    env.op.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seal_output_decrypts_with_the_real_sops_and_syncs() -> anyhow::Result<()> {
    let env = Env::new("sops-seal").await?;
    let work = Work::new("seal")?;
    let (identity, recipient) = work.age_key("cluster").await?;
    let input = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: {ns}\n  labels: {{app: billing}}\n\
         type: kubernetes.io/basic-auth\nstringData:\n  username: admin\n  password: s3cr3t\n",
        ns = env.ns.name
    );
    let args = syncret::cli::SealArgs {
        file: None,
        age: vec![recipient],
        kms: vec![],
        store: "sops".into(),
        store_kind: "SecretStore".into(),
        configmap: None,
        namespace: None,
        refresh_interval: "1h".into(),
    };
    let now = "2026-01-01T00:00:00Z";
    let out = syncret::seal::seal(&args, &input, now)?;
    assert!(!out.contains("s3cr3t"), "{out}");
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&out)
        .map(serde::Deserialize::deserialize)
        .collect::<Result<_, _>>()?;
    let document = docs[0]["data"]["db.sops.yaml"].as_str().context("no document")?;

    // The real sops decrypts it with the cluster's identity.
    std::fs::write(work.path("db.sops.yaml"), document)?;
    let key_file = work.path("cluster.txt");
    let plain = work
        .run(
            "sops",
            &["decrypt", "db.sops.yaml"],
            &[("SOPS_AGE_KEY_FILE", key_file.to_str().unwrap_or_default())],
        )
        .await?;
    let plain: serde_yaml::Value = serde_yaml::from_str(&plain)?;
    assert_eq!(plain["password"], "s3cr3t");
    assert_eq!(plain["username"], "admin");

    // Applied with a store holding the identity, the ExternalSecret recreates the Secret.
    identity_secret(&env.ns, "sops-age", &identity).await?;
    sops_store(
        env.class(),
        &env.ns,
        "sops",
        json!({"age": [{"secretRef": {"name": "sops-age", "key": "keys.txt"}}]}),
    )
    .await?;
    syncret_tests::apply_yaml(&env.ns.api::<ConfigMap>(), &serde_yaml::to_string(&docs[0])?).await?;
    syncret_tests::apply_yaml(&env.ns.api::<ExternalSecret>(), &serde_yaml::to_string(&docs[1])?).await?;
    let s = env.secret("db").await?;
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    assert_eq!(
        s.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app"))
            .map(String::as_str),
        Some("billing")
    );
    let got = Env::text(&s);
    assert_eq!(
        (got["username"].as_str(), got["password"].as_str()),
        ("admin", "s3cr3t")
    );
    Ok(())
}

/// Issue 30 item 4 through the watch of issue 27: an ExternalSecret refreshing hourly re-syncs within seconds
/// when the ConfigMap holding its encrypted document changes (the sops store's documents are watched, metadata
/// only, like template sources), and one reading another document of the same store is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_encrypted_document_re_syncs_its_external_secrets_within_seconds() -> anyhow::Result<()> {
    let env = Env::new("sops-watch").await?;
    let work = Work::new("watch")?;
    let (id, r) = work.age_key("k").await?;
    let age = ["--age", r.as_str()];
    let v1 = work.encrypt("app.yaml", "password: one\n", &age, &[]).await?;
    let other = work.encrypt("other.yaml", "password: other\n", &age, &[]).await?;
    config_map(&env.ns, "docs", &[("app.yaml", &v1)]).await?;
    config_map(&env.ns, "elsewhere", &[("other.yaml", &other)]).await?;
    identity_secret(&env.ns, "sops-age", &id).await?;
    sops_store(
        env.class(),
        &env.ns,
        "sops",
        json!({"age": [{"secretRef": {"name": "sops-age", "key": "keys.txt"}}]}),
    )
    .await?;
    for (name, key) in [("app", "docs/app.yaml"), ("other", "elsewhere/other.yaml")] {
        let es = json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": name},
            "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "sops"},
                     "data": [{"secretKey": "password", "remoteRef": {"key": key, "property": "password"}}]}});
        syncret_tests::apply_yaml(&env.ns.api::<ExternalSecret>(), &serde_json::to_string(&es)?).await?;
    }
    env.secret_where("app", "app = one", |s| {
        Env::text(s).get("password").map(String::as_str) == Some("one")
    })
    .await?;
    env.secret_where("other", "other synced", |s| !Env::text(s).is_empty())
        .await?;
    let other_before = env.ns.api::<Secret>().get("other").await?.metadata.resource_version;
    // The document is re-encrypted with a new value: the Secret follows long before the hourly refresh.
    let v2 = work.encrypt("app.yaml", "password: two\n", &age, &[]).await?;
    config_map(&env.ns, "docs", &[("app.yaml", &v2)]).await?;
    let api = env.ns.api::<Secret>();
    eventually(Duration::from_secs(10), "app = two", || async {
        let s = api.get_opt("app").await.ok().flatten()?;
        (Env::text(&s).get("password").map(String::as_str) == Some("two")).then_some(())
    })
    .await?;
    env.es_ready("app", "True", "SecretSynced").await?;
    let other_after = api.get("other").await?.metadata.resource_version;
    assert_eq!(
        other_before, other_after,
        "an ExternalSecret reading another document is not rewritten"
    );
    Ok(())
}
