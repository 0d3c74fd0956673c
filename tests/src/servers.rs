//! Provider API servers on loopback: [`Moto`] (AWS Secrets Manager, SSM Parameter Store, STS, IAM), [`OpenBao`]
//! (Vault API), and syncret's own fakes [`AzureKeyVault`] (Key Vault secrets REST, Entra ID and managed-identity
//! token endpoints) and [`GcpEmulator`] (GCP Secret Manager gRPC). What each serves, and what it does not, is in
//! `docs/providers/test-servers.md`.
//!
//! Each `start` runs `e2e/providers/start.sh <name> --watch-pid <this process>` (which installs the server on
//! first use into the cache and starts it on a free port in its own temp dir), waits for its one
//! `export ...` line, and returns a handle. Dropping the handle sends SIGTERM to the script, which stops the
//! server and removes its dir; if the test process dies without dropping it, the script notices within half a
//! second and does the same. So nothing outlives the tests.
//!
//! Start-up costs about half a second to a second (see the doc), so every test starts its own server: that
//! gives each test its own data and its own request counts, which the batching and caching tests need.
//! The two fakes stand in for Lowkey Vault and the upstream GCP emulator, which this machine's registries do not
//! serve.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;

use crate::repo_root;

/// One `e2e/providers/start.sh` process and the variables it printed.
struct ServerProcess {
    name: &'static str,
    child: Child,
    vars: HashMap<String, String>,
    stderr_log: PathBuf,
}

impl ServerProcess {
    /// Blocking: runs the script and waits for its `export` line (the first run installs the server).
    fn spawn(name: &'static str, args: &[&str]) -> anyhow::Result<ServerProcess> {
        crate::init_tracing();
        let script = repo_root().join("e2e/providers/start.sh");
        let stderr_log = std::env::temp_dir().join(format!(
            "syncret-{name}-{}-{}.log",
            std::process::id(),
            crate::unique_name("s").trim_start_matches("s-")
        ));
        let log_file = std::fs::File::create(&stderr_log)?;
        let mut child = Command::new("bash")
            .arg(&script)
            .arg(name)
            .args(args)
            .arg("--watch-pid")
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", script.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout from start.sh"))?;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if let Some(rest) = line.strip_prefix("export ") {
                let vars = rest
                    .split_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                return Ok(ServerProcess {
                    name,
                    child,
                    vars,
                    stderr_log,
                });
            }
        }
        let status = child.wait()?;
        let log = std::fs::read_to_string(&stderr_log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        bail!(
            "e2e/providers/start.sh {name} exited ({status}) before the server was ready:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// Starts on a blocking thread, so it can be awaited from a `#[tokio::test]` of either flavour.
    async fn start(name: &'static str, args: &'static [&'static str]) -> anyhow::Result<ServerProcess> {
        tokio::task::spawn_blocking(move || Self::spawn(name, args))
            .await
            .map_err(|e| anyhow!("start-up task: {e}"))?
    }

    fn var(&self, key: &str) -> anyhow::Result<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("start.sh {} printed no {key}", self.name))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // SIGTERM lets the script stop the server and remove its dir. SIGKILL would end the script without that
        // and orphan the server, so it is only the last resort.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(12);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_file(&self.stderr_log);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!(
            "start.sh {} did not stop within 12s; killing it (log {})",
            self.name,
            self.stderr_log.display()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("a line of {}", path.display())))
        .collect()
}

fn truncate(path: &Path) -> anyhow::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("truncating {}", path.display()))?;
    Ok(())
}

// --- AWS ------------------------------------------------------------------------------------------------------

/// moto's server: Secrets Manager, SSM Parameter Store, STS and IAM at one endpoint, any region, account
/// [`Moto::ACCOUNT_ID`]. By default it accepts any credentials and does not check signatures; see the doc for
/// switching IAM enforcement (and SigV4 signature checks) on through `POST /moto-api/reset-auth`.
pub struct Moto {
    process: ServerProcess,
    endpoint: String,
    request_log: PathBuf,
}

/// One request moto received, from its recorder.
#[derive(Debug, Clone)]
pub struct MotoRequest {
    pub method: String,
    /// Path and query, e.g. `/`.
    pub url: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl MotoRequest {
    /// The API operation: the part after the dot of `X-Amz-Target` (JSON protocols: Secrets Manager, SSM), or
    /// the `Action` parameter of the query protocol (STS, IAM), e.g. `GetSecretValue`, `AssumeRoleWithWebIdentity`.
    pub fn operation(&self) -> Option<String> {
        let target = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target"))
            .map(|(_, v)| v);
        if let Some(t) = target {
            return Some(t.rsplit('.').next().unwrap_or(t).to_string());
        }
        let body = String::from_utf8_lossy(&self.body);
        let query = self.url.split_once('?').map(|(_, q)| q).unwrap_or("");
        body.split('&')
            .chain(query.split('&'))
            .find_map(|kv| kv.strip_prefix("Action="))
            .map(str::to_string)
    }

    /// The service, from `X-Amz-Target` (`secretsmanager`, `AmazonSSM`) or else the credential scope of the
    /// `Authorization` header (`sts`, `iam`, ...).
    pub fn service(&self) -> Option<String> {
        let header = |name: &str| {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        if let Some(t) = header("x-amz-target") {
            return t.split_once('.').map(|(s, _)| s.to_string());
        }
        // Credential=AKID/20260101/us-east-1/sts/aws4_request
        let auth = header("authorization")?;
        let scope = auth.split("Credential=").nth(1)?.split([',', ' ']).next()?;
        scope.split('/').nth(3).map(str::to_string)
    }
}

impl Moto {
    /// The account every moto resource lives in.
    pub const ACCOUNT_ID: &'static str = "123456789012";

    /// Starts a fresh moto server for this test.
    pub async fn start() -> anyhow::Result<Moto> {
        let process = ServerProcess::start("aws", &[]).await?;
        let endpoint = process.var("SYNCRET_AWS_ENDPOINT")?.to_string();
        let request_log = PathBuf::from(process.var("SYNCRET_AWS_REQUEST_LOG")?);
        Ok(Moto {
            process,
            endpoint,
            request_log,
        })
    }

    /// `http://127.0.0.1:PORT`, the endpoint for every service.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The server's directory (`server.log`, `requests.jsonl`).
    pub fn dir(&self) -> anyhow::Result<&Path> {
        self.process.var("SYNCRET_AWS_DIR").map(Path::new)
    }

    /// Every request received since start (or the last [`Moto::clear_requests`]), oldest first.
    pub fn requests(&self) -> anyhow::Result<Vec<MotoRequest>> {
        read_lines(&self.request_log)?
            .into_iter()
            .map(|v| {
                let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
                let headers = v
                    .get("headers")
                    .and_then(|h| h.as_object())
                    .map(|h| {
                        h.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                let raw_body = s("body");
                let body = if v.get("body_encoded").and_then(|b| b.as_bool()).unwrap_or(false) {
                    base64::engine::general_purpose::STANDARD
                        .decode(raw_body.as_bytes())
                        .context("recorded body")?
                } else {
                    raw_body.into_bytes()
                };
                Ok(MotoRequest {
                    method: s("method"),
                    url: s("url"),
                    headers,
                    body,
                })
            })
            .collect()
    }

    /// How many requests of `operation` (e.g. `"GetSecretValue"`, `"BatchGetSecretValue"`,
    /// `"AssumeRoleWithWebIdentity"`) moto received.
    pub fn count(&self, operation: &str) -> anyhow::Result<usize> {
        Ok(self
            .requests()?
            .iter()
            .filter(|r| r.operation().as_deref() == Some(operation))
            .count())
    }

    /// Request counts by operation.
    pub fn counts(&self) -> anyhow::Result<HashMap<String, usize>> {
        let mut m = HashMap::new();
        for r in self.requests()? {
            *m.entry(r.operation().unwrap_or_else(|| format!("{} {}", r.method, r.url)))
                .or_insert(0) += 1;
        }
        Ok(m)
    }

    /// Forgets the requests recorded so far (e.g. after a test's set-up calls).
    pub fn clear_requests(&self) -> anyhow::Result<()> {
        truncate(&self.request_log)
    }
}

// --- Vault ----------------------------------------------------------------------------------------------------

/// OpenBao in dev mode: in memory, unsealed, KV v2 mounted at `secret/`, a random root token, and a file audit
/// device that logs every request (used to count them). Auth methods (kubernetes, jwt, approle, userpass, cert)
/// can be enabled with the root token.
pub struct OpenBao {
    process: ServerProcess,
    addr: String,
    token: String,
    audit_log: PathBuf,
    ca_cert: Option<PathBuf>,
    redis: Option<(String, String)>,
}

/// One request OpenBao audited.
#[derive(Debug, Clone)]
pub struct BaoRequest {
    /// `read`, `update` (POST/PUT), `list`, `delete`, ...
    pub operation: String,
    /// Path without `/v1/`, e.g. `secret/data/app` or `auth/kubernetes/login`.
    pub path: String,
    /// The mount type, e.g. `kv`, `kubernetes`, `system`.
    pub mount_type: String,
}

impl OpenBao {
    /// Starts a fresh OpenBao dev server on plain HTTP.
    pub async fn start() -> anyhow::Result<OpenBao> {
        Self::from_process(ServerProcess::start("vault", &[]).await?)
    }

    /// Starts a fresh OpenBao dev server on HTTPS with a generated CA ([`OpenBao::ca_cert_pem`]); the cert auth
    /// method needs this.
    pub async fn start_tls() -> anyhow::Result<OpenBao> {
        Self::from_process(ServerProcess::start("vault", &["--tls"]).await?)
    }

    /// Starts a fresh OpenBao dev server with a Redis server beside it ([`OpenBao::redis`]): a database for the
    /// database secrets engine, whose credentials have renewable leases.
    pub async fn start_with_redis() -> anyhow::Result<OpenBao> {
        Self::from_process(ServerProcess::start("vault", &["--redis"]).await?)
    }

    /// The Redis server of [`OpenBao::start_with_redis`]: (`127.0.0.1:PORT`, password of user `default`).
    pub fn redis(&self) -> Option<(&str, &str)> {
        self.redis.as_ref().map(|(a, p)| (a.as_str(), p.as_str()))
    }

    fn from_process(process: ServerProcess) -> anyhow::Result<OpenBao> {
        Ok(OpenBao {
            addr: process.var("SYNCRET_VAULT_ENDPOINT")?.to_string(),
            token: process.var("SYNCRET_VAULT_TOKEN")?.to_string(),
            audit_log: PathBuf::from(process.var("SYNCRET_VAULT_AUDIT_LOG")?),
            ca_cert: process.vars.get("SYNCRET_VAULT_CACERT").map(PathBuf::from),
            redis: match (
                process.vars.get("SYNCRET_VAULT_REDIS_ADDR"),
                process.vars.get("SYNCRET_VAULT_REDIS_PASSWORD"),
            ) {
                (Some(a), Some(p)) => Some((a.to_string(), p.to_string())),
                _ => None,
            },
            process,
        })
    }

    /// `http://127.0.0.1:PORT` (or `https://` from [`OpenBao::start_tls`]): the `server` of a Vault SecretStore.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The root token.
    pub fn root_token(&self) -> &str {
        &self.token
    }

    /// A root-token call to `/v1/<path>` (`LIST` too) through `http`; fails on a non-2xx answer. Returns the JSON
    /// answer (`null` for an empty body).
    pub async fn call(
        &self,
        http: &reqwest::Client,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut req = http
            .request(
                reqwest::Method::from_bytes(method.as_bytes())?,
                format!("{}/v1/{path}", self.addr),
            )
            .header("X-Vault-Token", &self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {text}");
        }
        Ok(if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    /// The CA that signed the server certificate (PEM), when started with [`OpenBao::start_tls`].
    pub fn ca_cert_pem(&self) -> anyhow::Result<Option<String>> {
        self.ca_cert
            .as_ref()
            .map(std::fs::read_to_string)
            .transpose()
            .context("reading the OpenBao CA")
    }

    /// The server's directory (`server.log`, `audit.log`, `tls/`).
    pub fn dir(&self) -> anyhow::Result<&Path> {
        self.process.var("SYNCRET_VAULT_DIR").map(Path::new)
    }

    /// Every request audited since start (or the last [`OpenBao::clear_requests`]), oldest first. Dev-mode
    /// set-up (mounting `secret/`) is among them; `sys/health` is not audited.
    pub fn requests(&self) -> anyhow::Result<Vec<BaoRequest>> {
        Ok(read_lines(&self.audit_log)?
            .into_iter()
            .filter(|v| v.get("type").and_then(|t| t.as_str()) == Some("request"))
            .map(|v| {
                let r = &v["request"];
                let s = |k: &str| r.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
                BaoRequest {
                    operation: s("operation"),
                    path: s("path"),
                    mount_type: s("mount_type"),
                }
            })
            .collect())
    }

    /// How many requests with this operation (`read`, `update`, `list`, ...) hit exactly this path.
    pub fn count(&self, operation: &str, path: &str) -> anyhow::Result<usize> {
        Ok(self
            .requests()?
            .iter()
            .filter(|r| r.operation == operation && r.path == path)
            .count())
    }

    /// Forgets the requests audited so far.
    pub fn clear_requests(&self) -> anyhow::Result<()> {
        truncate(&self.audit_log)
    }
}

// --- Azure ----------------------------------------------------------------------------------------------------

/// syncret's own Azure Key Vault secrets fake (e2e/providers/azkv) on HTTPS with a CA made for this run, with the
/// Entra ID token endpoint on the same port and a managed-identity (IMDS) endpoint on plain HTTP.
pub struct AzureKeyVault {
    process: ServerProcess,
    vault_url: String,
    ca_cert: PathBuf,
    imds: String,
    request_log: PathBuf,
}

/// One request the Azure fake received.
#[derive(Debug, Clone)]
pub struct AzureRequest {
    /// `SetSecret`, `GetSecret`, `GetSecrets`, `GetSecretVersions`, `UpdateSecret`, `DeleteSecret`,
    /// `GetDeletedSecret(s)`, `PurgeDeletedSecret`, `RecoverDeletedSecret`, `Challenge` (no bearer token),
    /// `InvalidToken`, `TokenClientSecret`, `TokenClientAssertion`, `TokenManagedIdentity`, ...
    pub op: String,
    pub method: String,
    pub path: String,
    /// The raw query string (`api-version=7.6&maxresults=25`).
    pub query: String,
    pub status: u16,
    /// The `Authorization` header as sent (empty if none).
    pub authorization: String,
    /// For token requests: the form fields (without `client_secret`), e.g. `client_id`, `client_assertion`, `scope`.
    pub form: HashMap<String, String>,
}

impl AzureKeyVault {
    /// Starts a fresh fake that accepts any bearer token.
    pub async fn start() -> anyhow::Result<AzureKeyVault> {
        Self::from_process(ServerProcess::start("azure", &[]).await?)
    }

    /// Starts a fresh fake whose Key Vault accepts only tokens its own token endpoints issued, so a test sees that
    /// the client really fetched one.
    pub async fn start_requiring_issued_tokens() -> anyhow::Result<AzureKeyVault> {
        Self::from_process(ServerProcess::start("azure", &["--require-issued-tokens"]).await?)
    }

    fn from_process(process: ServerProcess) -> anyhow::Result<AzureKeyVault> {
        Ok(AzureKeyVault {
            vault_url: process.var("SYNCRET_AZURE_ENDPOINT")?.to_string(),
            ca_cert: PathBuf::from(process.var("SYNCRET_AZURE_CACERT")?),
            imds: process.var("SYNCRET_AZURE_IMDS_ENDPOINT")?.to_string(),
            request_log: PathBuf::from(process.var("SYNCRET_AZURE_REQUEST_LOG")?),
            process,
        })
    }

    /// `https://127.0.0.1:PORT`: the `vaultUrl` of an Azure Key Vault SecretStore.
    pub fn vault_url(&self) -> &str {
        &self.vault_url
    }

    /// The Entra ID authority host (same server): tokens at `{this}/{tenant}/oauth2/v2.0/token`.
    pub fn token_endpoint(&self) -> &str {
        &self.vault_url
    }

    /// `http://127.0.0.1:PORT`: the managed-identity endpoint, tokens at
    /// `{this}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=...` with `Metadata: true`.
    pub fn imds_endpoint(&self) -> &str {
        &self.imds
    }

    /// The CA (PEM) that signed the server certificate (SANs 127.0.0.1 and localhost).
    pub fn ca_cert_pem(&self) -> anyhow::Result<String> {
        std::fs::read_to_string(&self.ca_cert).context("reading the Azure fake's CA")
    }

    /// The server's directory (`server.log`, `requests.jsonl`, certificates).
    pub fn dir(&self) -> anyhow::Result<&Path> {
        self.process.var("SYNCRET_AZURE_DIR").map(Path::new)
    }

    /// Every request received since start (or the last [`AzureKeyVault::clear_requests`]), oldest first.
    pub fn requests(&self) -> anyhow::Result<Vec<AzureRequest>> {
        Ok(read_lines(&self.request_log)?
            .into_iter()
            .map(|v| {
                let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
                let form = v
                    .get("form")
                    .and_then(|f| f.as_object())
                    .map(|f| {
                        f.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                AzureRequest {
                    op: s("op"),
                    method: s("method"),
                    path: s("path"),
                    query: s("query"),
                    status: v
                        .get("status")
                        .and_then(|x| x.as_u64())
                        .and_then(|x| u16::try_from(x).ok())
                        .unwrap_or(0),
                    authorization: s("authorization"),
                    form,
                }
            })
            .collect())
    }

    /// How many requests of `op` (e.g. `"GetSecret"`, `"TokenClientAssertion"`) the fake received.
    pub fn count(&self, op: &str) -> anyhow::Result<usize> {
        Ok(self.requests()?.iter().filter(|r| r.op == op).count())
    }

    /// Forgets the requests recorded so far.
    pub fn clear_requests(&self) -> anyhow::Result<()> {
        truncate(&self.request_log)
    }
}

// --- GCP ------------------------------------------------------------------------------------------------------

/// syncret's own in-memory `google.cloud.secretmanager.v1.SecretManagerService` (e2e/providers/gcpsm), on
/// plaintext gRPC (h2c). The upstream emulator could not be installed here; the doc lists what the fake serves.
pub struct GcpEmulator {
    process: ServerProcess,
    endpoint: String,
    request_log: PathBuf,
}

/// One call the GCP fake received.
#[derive(Debug, Clone)]
pub struct GcpRequest {
    /// The RPC, e.g. `AccessSecretVersion`.
    pub method: String,
    /// The resource named by the request (`name`, or `parent` for Create/Add/List).
    pub name: String,
    /// The `authorization` metadata as sent (empty if none).
    pub authorization: String,
    /// The gRPC status code name, e.g. `OK`, `NotFound`.
    pub code: String,
}

impl GcpEmulator {
    /// Starts a fresh fake that accepts any (or no) credentials.
    pub async fn start() -> anyhow::Result<GcpEmulator> {
        Self::from_process(ServerProcess::start("gcp", &[]).await?)
    }

    /// Starts a fresh fake that answers UNAUTHENTICATED unless a call carries `authorization: Bearer <token>`.
    pub async fn start_requiring_token(token: &str) -> anyhow::Result<GcpEmulator> {
        anyhow::ensure!(
            !token.is_empty() && !token.contains(char::is_whitespace),
            "a token without spaces"
        );
        let token = token.to_string();
        let process = tokio::task::spawn_blocking(move || ServerProcess::spawn("gcp", &["--require-token", &token]))
            .await
            .map_err(|e| anyhow!("start-up task: {e}"))??;
        Self::from_process(process)
    }

    fn from_process(process: ServerProcess) -> anyhow::Result<GcpEmulator> {
        Ok(GcpEmulator {
            endpoint: process.var("SYNCRET_GCP_ENDPOINT")?.to_string(),
            request_log: PathBuf::from(process.var("SYNCRET_GCP_REQUEST_LOG")?),
            process,
        })
    }

    /// `127.0.0.1:PORT` (plaintext gRPC; a client connects to `http://` + this).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The server's directory (`server.log`, `requests.jsonl`).
    pub fn dir(&self) -> anyhow::Result<&Path> {
        self.process.var("SYNCRET_GCP_DIR").map(Path::new)
    }

    /// Every call received since start (or the last [`GcpEmulator::clear_requests`]), oldest first.
    pub fn requests(&self) -> anyhow::Result<Vec<GcpRequest>> {
        Ok(read_lines(&self.request_log)?
            .into_iter()
            .map(|v| {
                let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
                GcpRequest {
                    method: s("method"),
                    name: s("name"),
                    authorization: s("authorization"),
                    code: s("code"),
                }
            })
            .collect())
    }

    /// How many calls of `method` (e.g. `"AccessSecretVersion"`) the fake received.
    pub fn count(&self, method: &str) -> anyhow::Result<usize> {
        Ok(self.requests()?.iter().filter(|r| r.method == method).count())
    }

    /// Forgets the calls recorded so far.
    pub fn clear_requests(&self) -> anyhow::Result<()> {
        truncate(&self.request_log)
    }
}
