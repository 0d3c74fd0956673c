//! Test support: a real local Kubernetes control plane (etcd + kube-apiserver + the garbage collector) for
//! integration tests.
//!
//! [`ControlPlane::shared`] starts one control plane per test binary through `e2e/controlplane.sh` (which
//! builds the binaries from Go modules on first use and caches them), or reuses the one named by
//! `SYNCRET_TEST_KUBECONFIG` (set by `e2e/test.sh`, which runs the whole suite against one control plane).
//! The script is given `--watch-pid` of the test process, so etcd and kube-apiserver stop even when the test
//! binary is killed. Each test takes its own namespace from [`ControlPlane::namespace`].

pub mod admission;
pub mod hostile;
pub mod http;
pub mod operator;
pub mod process;
pub mod proxy;
pub mod servers;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// A running (or reused) control plane.
pub struct ControlPlane {
    kubeconfig: PathBuf,
    /// The directory `e2e/controlplane.sh` runs in (logs, `env`), when this process started it.
    dir: Option<PathBuf>,
    /// PID of the `controlplane.sh` process, when this process started it (signals restart apiserver/etcd).
    script_pid: Option<u32>,
}

static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The repository root (where `Cargo.toml` of the workspace lives).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Initialises tracing for tests once (`RUST_LOG` controls it; default warn).
pub fn init_tracing() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
    });
}

impl ControlPlane {
    /// The control plane shared by every test of this binary, started on first use with the CRDs installed.
    pub async fn shared() -> anyhow::Result<&'static ControlPlane> {
        init_tracing();
        // Start-up blocks (it waits for processes), so it runs on its own thread with its own runtime: the
        // per-test tokio runtimes come and go, the control plane outlives them.
        let res = SHARED.get_or_init(|| {
            std::thread::spawn(|| Self::start().map_err(|e| format!("{e:#}")))
                .join()
                .unwrap_or_else(|_| Err("control-plane start-up panicked".into()))
        });
        res.as_ref().map_err(|e| anyhow!("control plane unavailable: {e}"))
    }

    /// A control plane of this test binary alone, started on first use (CRDs installed), even when
    /// `SYNCRET_TEST_KUBECONFIG` names a shared one: tests that restart kube-apiserver or etcd use it, so the
    /// restarts never disturb other test binaries. Stopped when the test process exits.
    pub async fn private() -> anyhow::Result<&'static ControlPlane> {
        static PRIVATE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
        init_tracing();
        let res = PRIVATE.get_or_init(|| {
            std::thread::spawn(|| {
                let cp = Self::spawn_script()?;
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                rt.block_on(cp.install_crds())?;
                Ok::<_, anyhow::Error>(cp)
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow!("control-plane start-up panicked")))
            .map_err(|e| format!("{e:#}"))
        });
        res.as_ref()
            .map_err(|e| anyhow!("private control plane unavailable: {e}"))
    }

    /// A new control plane without syncret's CRDs, for tests that install CRDs their own way (Helm). Stop it with
    /// [`ControlPlane::stop`]; it stops with the test process anyway.
    pub async fn bare() -> anyhow::Result<ControlPlane> {
        init_tracing();
        tokio::task::spawn_blocking(Self::spawn_script).await?
    }

    /// Stops a control plane this process started (its script stops etcd, kube-apiserver and the controller
    /// manager and removes its directory).
    pub fn stop(&self) {
        if let Some(pid) = self.script_pid {
            let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        }
    }

    fn start() -> anyhow::Result<ControlPlane> {
        let cp = match std::env::var_os("SYNCRET_TEST_KUBECONFIG") {
            Some(path) if !path.is_empty() => ControlPlane {
                kubeconfig: PathBuf::from(path),
                dir: None,
                script_pid: None,
            },
            _ => Self::spawn_script()?,
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(cp.install_crds())?;
        Ok(cp)
    }

    fn spawn_script() -> anyhow::Result<ControlPlane> {
        let script = repo_root().join("e2e/controlplane.sh");
        let log = std::env::temp_dir().join(format!("syncret-controlplane-{}.log", std::process::id()));
        let log_file = std::fs::File::create(&log)?;
        let mut child = Command::new("bash")
            .arg(&script)
            .arg("--watch-pid")
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", script.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout from controlplane.sh"))?;
        // The build on a cold machine takes minutes; the script fails loudly if it cannot finish.
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if let Some(path) = line.strip_prefix("export KUBECONFIG=") {
                let kubeconfig = PathBuf::from(path);
                let dir = kubeconfig.parent().map(Path::to_path_buf);
                return Ok(ControlPlane {
                    kubeconfig,
                    dir,
                    script_pid: Some(child.id()),
                });
            }
        }
        let status = child.wait()?;
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(40).collect();
        bail!(
            "e2e/controlplane.sh exited ({status}) before the control plane was ready:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// Path of the admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The control plane's working directory (logs), when this process started it.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The apiserver URL and its CA certificate (PEM), for stores that talk to "a remote cluster".
    pub fn server_and_ca(&self) -> anyhow::Result<(String, Vec<u8>)> {
        use base64::Engine as _;
        let kc = Kubeconfig::read_from(&self.kubeconfig)?;
        let cluster = kc
            .clusters
            .first()
            .and_then(|c| c.cluster.clone())
            .ok_or_else(|| anyhow!("no cluster in kubeconfig"))?;
        let server = cluster.server.ok_or_else(|| anyhow!("no server in kubeconfig"))?;
        let ca = cluster
            .certificate_authority_data
            .ok_or_else(|| anyhow!("no CA in kubeconfig"))?;
        Ok((server, base64::engine::general_purpose::STANDARD.decode(ca)?))
    }

    /// The control plane's PKI directory (`ca.crt`, `ca.key`: the client CA, to issue client certificates).
    pub fn pki_dir(&self) -> PathBuf {
        self.kubeconfig.parent().map(|p| p.join("pki")).unwrap_or_default()
    }

    /// A `kube::Config` for the admin user.
    pub async fn config(&self) -> anyhow::Result<Config> {
        let kc = Kubeconfig::read_from(&self.kubeconfig)?;
        Ok(Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?)
    }

    /// A new admin client bound to the calling runtime.
    pub async fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::try_from(self.config().await?)?)
    }

    /// Creates a fresh namespace `<prefix>-<random>` for one test.
    pub async fn namespace(&self, prefix: &str) -> anyhow::Result<TestNamespace> {
        let client = self.client().await?;
        let name = unique_name(prefix);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        Ok(TestNamespace { name, client })
    }

    /// Restarts kube-apiserver (same port, same etcd) and waits until it is ready again.
    pub async fn restart_apiserver(&self) -> anyhow::Result<()> {
        self.signal_and_wait("-USR1").await
    }

    /// Restarts etcd (same port, same data) and waits until the apiserver answers again.
    pub async fn restart_etcd(&self) -> anyhow::Result<()> {
        self.signal_and_wait("-USR2").await
    }

    async fn signal_and_wait(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .script_pid
            .ok_or_else(|| anyhow!("this test process did not start the control plane"))?;
        let status = Command::new("kill").arg(signal).arg(pid.to_string()).status()?;
        if !status.success() {
            bail!("kill {signal} {pid} failed");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(client) = self.client().await
                && client.apiserver_version().await.is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("apiserver not back within 60s after {signal}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Applies every CRD in `deploy/crds/` (server-side apply) and waits until all are Established.
    pub async fn install_crds(&self) -> anyhow::Result<()> {
        let client = self.client().await?;
        let api = Api::<CustomResourceDefinition>::all(client);
        let dir = repo_root().join("deploy/crds");
        let mut names = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        entries.sort();
        for path in entries {
            let text = std::fs::read_to_string(&path)?;
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let value: serde_yaml::Value = serde::Deserialize::deserialize(doc)?;
                if value.is_null() {
                    continue;
                }
                let crd: CustomResourceDefinition =
                    serde_yaml::from_value(value).with_context(|| format!("parsing {}", path.display()))?;
                let name = crd.metadata.name.clone().ok_or_else(|| anyhow!("CRD without name"))?;
                api.patch(&name, &PatchParams::apply("syncret-tests").force(), &Patch::Apply(&crd))
                    .await
                    .with_context(|| format!("applying {}", path.display()))?;
                names.push(name);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        for name in names {
            loop {
                let crd = api.get(&name).await?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if established {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("CRD {name} not Established within 60s");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }
}

/// A namespace owned by one test.
pub struct TestNamespace {
    pub name: String,
    pub client: Client,
}

impl TestNamespace {
    /// A typed API in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

/// Refuses a cluster-wide operator (in-process or a process) in the `integration` test binary, whose tests each
/// run a namespace-scoped one beside each other: a cluster-wide operator would also sync their ExternalSecrets that
/// no store of another class claims (generator-only ones, ESO's rule). Such tests live in `tests/tests/cluster_wide`.
pub fn ensure_cluster_wide_allowed(what: &str) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let binary = exe.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    anyhow::ensure!(
        !binary.starts_with("integration-"),
        "{what} watches every namespace: move this test to tests/tests/cluster_wide (see its main.rs), or scope the \
         operator to the test's namespace"
    );
    Ok(())
}

/// `<prefix>-<8 random lowercase alphanumerics>`, a valid DNS-1123 label for prefixes up to 54 chars.
pub fn unique_name(prefix: &str) -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.write_u32(std::process::id());
    let mut n = h.finish();
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let suffix: String = (0..8)
        .map(|_| {
            let c = alphabet[(n % alphabet.len() as u64) as usize] as char;
            n /= alphabet.len() as u64;
            c
        })
        .collect();
    format!("{prefix}-{suffix}")
}

/// Polls `f` every 100 ms until it returns `Some`, or fails after `timeout` with `what` in the message.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Server-side applies a YAML manifest (field manager `syncret-tests`) and returns the stored object.
pub async fn apply_yaml<K>(api: &Api<K>, yaml: &str) -> anyhow::Result<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: serde_json::Value = serde_yaml::from_str(yaml)?;
    let name = obj["metadata"]["name"]
        .as_str()
        .ok_or_else(|| anyhow!("manifest without metadata.name"))?
        .to_string();
    Ok(api
        .patch(&name, &PatchParams::apply("syncret-tests").force(), &Patch::Apply(&obj))
        .await?)
}

/// One test's world: a namespace, an in-process operator scoped to it, and helpers.
pub struct Env {
    pub ns: TestNamespace,
    pub op: operator::Operator,
}

impl Env {
    /// A fresh namespace and an operator watching it.
    pub async fn new(prefix: &str) -> anyhow::Result<Env> {
        let cp = ControlPlane::shared().await?;
        let ns = cp.namespace(prefix).await?;
        let op = operator::Operator::start(&ns).await?;
        Ok(Env { ns, op })
    }

    /// The operator's controller class (set it as `spec.controller` of stores).
    pub fn class(&self) -> &str {
        &self.op.class
    }

    /// Applies a namespaced manifest (any kind with a typed API) in this namespace.
    pub async fn apply<K>(&self, yaml: &str) -> anyhow::Result<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        apply_yaml(&self.ns.api::<K>(), yaml).await
    }

    /// A fake SecretStore named `name` with these key/value pairs (values are used verbatim).
    pub async fn fake_store(&self, name: &str, pairs: &[(&str, &str)]) -> anyhow::Result<()> {
        let data: Vec<serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
            .collect();
        let store = serde_json::json!({
            "apiVersion": "external-secrets.io/v1",
            "kind": "SecretStore",
            "metadata": {"name": name},
            "spec": {"controller": self.class(), "provider": {"fake": {"data": data}}},
        });
        self.apply::<syncret_crds::SecretStore>(&serde_json::to_string(&store)?)
            .await?;
        Ok(())
    }

    /// Waits until Secret `name` exists and `pred` holds for it.
    pub async fn secret_where(
        &self,
        name: &str,
        what: &str,
        pred: impl Fn(&k8s_openapi::api::core::v1::Secret) -> bool,
    ) -> anyhow::Result<k8s_openapi::api::core::v1::Secret> {
        let api = self.ns.api::<k8s_openapi::api::core::v1::Secret>();
        eventually(Duration::from_secs(30), what, || async {
            api.get_opt(name).await.ok().flatten().filter(|s| pred(s))
        })
        .await
    }

    /// Waits until Secret `name` exists.
    pub async fn secret(&self, name: &str) -> anyhow::Result<k8s_openapi::api::core::v1::Secret> {
        self.secret_where(name, &format!("Secret {name}"), |_| true).await
    }

    /// Waits until the ExternalSecret's Ready condition has this status and reason; returns its message.
    pub async fn es_ready(&self, name: &str, status: &str, reason: &str) -> anyhow::Result<String> {
        let api = self.ns.api::<syncret_crds::ExternalSecret>();
        eventually(
            Duration::from_secs(30),
            &format!("ExternalSecret {name} Ready={status} ({reason})"),
            || async {
                let es = api.get(name).await.ok()?;
                let c = es
                    .status?
                    .conditions
                    .into_iter()
                    .find(|c| c.type_ == syncret_crds::condition::ExternalSecretConditionType::Ready)?;
                (c.status == status && c.reason.as_deref() == Some(reason)).then(|| c.message.unwrap_or_default())
            },
        )
        .await
    }

    /// The Secret's data as text (lossy), sorted.
    pub fn text(secret: &k8s_openapi::api::core::v1::Secret) -> std::collections::BTreeMap<String, String> {
        secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
            .collect()
    }
}
