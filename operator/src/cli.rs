//! Command-line interface of the `syncret` binary. Running the controller takes ESO's flag names where they mean
//! the same thing (`--concurrent`, `--controller-class`, `--namespace`, `--metrics-addr`, `--client-qps`, …);
//! every flag also reads an environment variable `SYNCRET_<FLAG>`.
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use syncret_providers::TenantPolicy;
use syncret_providers::net::egress::{EgressPolicy, IpNet};

use crate::context::Settings;
use crate::leader::{self, LeaseConfig};
use crate::runtime::Options;
use syncret_template::Delims;

/// Keeps Kubernetes Secrets in sync with external secret stores (External Secrets Operator v1 compatible).
///
/// Without a subcommand, runs the controller.
#[derive(Debug, Parser)]
#[command(name = "syncret", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller (the default).
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions as multi-document YAML, or write one file per CRD with --dir (and the
    /// admission policies with --policy).
    Crds {
        /// Write `<plural>.external-secrets.io.yaml` files into this directory instead of printing (repeatable:
        /// `--dir deploy/crds --dir deploy/charts/syncret/crds`).
        #[arg(long)]
        dir: Vec<PathBuf>,
        /// Also write the ValidatingAdmissionPolicies and bindings (apply-time validation) to this file
        /// (repeatable: `--policy deploy/admission/validating-admission-policies.yaml --policy
        /// deploy/charts/syncret/files/validating-admission-policies.yaml`).
        #[arg(long)]
        policy: Vec<PathBuf>,
    },
    /// Render what ExternalSecrets (the Secret) and PushSecrets (what is pushed where) would produce, without a
    /// cluster.
    Render(RenderArgs),
    /// Check External Secrets Operator objects (from files or a cluster) against what syncret supports: each is
    /// supported, supported with a difference, or not supported (with what to do). Exit status 1 when anything
    /// is not supported.
    Check(CheckArgs),
    /// Encrypt a Secret manifest for the cluster's age public key into a SOPS-encrypted ConfigMap manifest (safe
    /// to commit) plus the ExternalSecret that turns it back into the Secret through a `sops` store.
    Seal(SealArgs),
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn duration(s: &str) -> Result<Duration, String> {
    syncret_crds::duration::parse(s).map_err(|e| e.to_string())
}

/// Flags of the controller. Boolean flags take Go's forms, as ESO's do: `--flag`, `--flag=true`, `--flag=false`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Number of ExternalSecrets synced concurrently.
    #[arg(long, env = "SYNCRET_CONCURRENT", default_value_t = 4)]
    pub concurrent: usize,
    /// Stores whose `spec.controller` is set to another class are ignored (and ExternalSecrets using them).
    #[arg(long, env = "SYNCRET_CONTROLLER_CLASS", default_value = "default")]
    pub controller_class: String,
    /// Watch only this namespace (ExternalSecrets, SecretStores, Secrets); empty: all namespaces.
    #[arg(long, env = "SYNCRET_NAMESPACE", default_value = "")]
    pub namespace: String,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "SYNCRET_METRICS_ADDR", default_value = ":8080")]
    pub metrics_addr: String,
    /// Address of /healthz and /readyz (also served on --metrics-addr); empty: only on --metrics-addr.
    #[arg(long, env = "SYNCRET_LIVE_ADDR", default_value = ":8082")]
    pub live_addr: String,
    /// Use a Lease so only one replica syncs at a time.
    #[arg(long, env = "SYNCRET_ENABLE_LEADER_ELECTION", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_leader_election: bool,
    /// Name of the Lease.
    #[arg(
        long,
        env = "SYNCRET_LEADER_ELECTION_ID",
        default_value = "external-secrets-controller"
    )]
    pub leader_election_id: String,
    /// Namespace of the Lease (default: the namespace of the in-cluster service account or kubeconfig context).
    #[arg(long, env = "SYNCRET_LEADER_ELECTION_NAMESPACE", default_value = "")]
    pub leader_election_namespace: String,
    /// How long standbys wait, after last seeing the Lease renewed, before taking it over.
    #[arg(long, env = "SYNCRET_LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = duration)]
    pub leader_election_lease_duration: Duration,
    /// How long the leader keeps working without renewing the Lease; then it stops and exits.
    #[arg(long, env = "SYNCRET_LEADER_ELECTION_RENEW_DEADLINE", default_value = "10s", value_parser = duration)]
    pub leader_election_renew_deadline: Duration,
    /// Pause between attempts to acquire or renew the Lease.
    #[arg(long, env = "SYNCRET_LEADER_ELECTION_RETRY_PERIOD", default_value = "2s", value_parser = duration)]
    pub leader_election_retry_period: Duration,
    /// Split the namespaces into this many shards, held by the running replicas through Leases (named after
    /// --leader-election-id, with its timings): every replica works on its shards at once (active-active). The
    /// number of replicas is discovered. 0: not sharded (with --enable-leader-election, only the leader works).
    #[arg(long, env = "SYNCRET_SHARDS", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=crate::shard::MAX_SHARDS as i64))]
    pub shards: u32,
    /// Client-side limit on requests to the apiserver per second (watches excluded), one bucket per kind as in
    /// ESO: Secrets, Events, and everything else each have a bucket of this size.
    #[arg(long, env = "SYNCRET_CLIENT_QPS", default_value_t = 50.0)]
    pub client_qps: f64,
    /// Burst of --client-qps.
    #[arg(long, env = "SYNCRET_CLIENT_BURST", default_value_t = 100)]
    pub client_burst: u32,
    /// How often stores are re-validated when their spec sets no refreshInterval.
    #[arg(long, env = "SYNCRET_STORE_REQUEUE_INTERVAL", default_value = "5m", value_parser = duration)]
    pub store_requeue_interval: Duration,
    /// Refuse to use stores that are not Ready.
    #[arg(long, env = "SYNCRET_ENABLE_FLOOD_GATE", default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_flood_gate: bool,
    /// Reconcile ClusterSecretStores; when false, ExternalSecrets cannot use them either (ESO's semantics).
    #[arg(long, env = "SYNCRET_ENABLE_CLUSTER_STORE_RECONCILER", default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_cluster_store_reconciler: bool,
    /// Validate SecretStores and report their status.
    #[arg(long, env = "SYNCRET_ENABLE_SECRET_STORE_RECONCILER", default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_secret_store_reconciler: bool,
    /// Run the ClusterExternalSecret controller (only when watching all namespaces).
    #[arg(long, env = "SYNCRET_ENABLE_CLUSTER_EXTERNAL_SECRET_RECONCILER", default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_cluster_external_secret_reconciler: bool,
    /// Run the PushSecret controller.
    #[arg(long, env = "SYNCRET_ENABLE_PUSH_SECRET_RECONCILER", default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_push_secret_reconciler: bool,
    /// Run the ClusterPushSecret controller (only when watching all namespaces).
    #[arg(long, env = "SYNCRET_ENABLE_CLUSTER_PUSH_SECRET_RECONCILER", default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_cluster_push_secret_reconciler: bool,
    /// Accepted for ESO compatibility; syncret never caches Secret data (it watches Secret metadata only).
    #[arg(long, env = "SYNCRET_ENABLE_SECRETS_CACHING", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_secrets_caching: bool,
    /// Accepted for ESO compatibility; ConfigMaps are read on demand.
    #[arg(long, env = "SYNCRET_ENABLE_CONFIGMAPS_CACHING", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_configmaps_caching: bool,
    /// Accepted for ESO compatibility; the managed-Secret index is always on.
    #[arg(long, env = "SYNCRET_ENABLE_MANAGED_SECRETS_CACHING", default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_managed_secrets_caching: bool,
    /// Log level: debug, info, warn, error.
    #[arg(long, env = "SYNCRET_LOGLEVEL", default_value = "info")]
    pub loglevel: String,
    /// Accepted for ESO compatibility (overrides --loglevel when set).
    #[arg(long, env = "SYNCRET_ZAP_LOG_LEVEL")]
    pub zap_log_level: Option<String>,
    /// Accepted for ESO compatibility; ignored.
    #[arg(long, env = "SYNCRET_ZAP_TIME_ENCODING", default_value = "epoch")]
    pub zap_time_encoding: String,
    /// Log format.
    #[arg(long, env = "SYNCRET_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Left delimiter of templates (ESO's flag).
    #[arg(long, env = "SYNCRET_TEMPLATE_LEFT_DELIMITER", default_value = "{{")]
    pub template_left_delimiter: String,
    /// Right delimiter of templates (ESO's flag).
    #[arg(long, env = "SYNCRET_TEMPLATE_RIGHT_DELIMITER", default_value = "}}")]
    pub template_right_delimiter: String,
    /// Spread each periodic refresh over this share of its interval (0 disables jitter).
    #[arg(long, env = "SYNCRET_REFRESH_JITTER", default_value_t = 0.1)]
    pub refresh_jitter: f64,
    /// Per-store limit on provider calls per second (0: unlimited).
    #[arg(long, env = "SYNCRET_STORE_RATE_LIMIT", default_value_t = 0.0)]
    pub store_rate_limit: f64,
    /// Burst of --store-rate-limit.
    #[arg(long, env = "SYNCRET_STORE_RATE_BURST", default_value_t = 100)]
    pub store_rate_burst: u32,
    /// How long a finished remote read answers identical reads of other ExternalSecrets (0 disables).
    #[arg(long, env = "SYNCRET_READ_COALESCE_WINDOW", default_value = "2s", value_parser = duration)]
    pub read_coalesce_window: Duration,
    /// Rebuild authenticated provider clients after this long.
    #[arg(long, env = "SYNCRET_PROVIDER_CLIENT_MAX_AGE", default_value = "1h", value_parser = duration)]
    pub provider_client_max_age: Duration,
    /// Cap of the error backoff.
    #[arg(long, env = "SYNCRET_MAX_BACKOFF", default_value = "5m", value_parser = duration)]
    pub max_backoff: Duration,
    /// Every reconcile ends by this deadline: one that runs longer is stopped (its in-flight requests dropped),
    /// marked `Ready=False` and retried with backoff. Provider timeouts above it are clamped to it. `/healthz`
    /// fails when work waits and no reconcile finished for twice this long.
    #[arg(long, env = "SYNCRET_RECONCILE_TIMEOUT", default_value = "60s", value_parser = duration)]
    pub reconcile_timeout: Duration,
    /// At most this many reconciles of one namespace at once while other namespaces have work waiting, per
    /// controller (0: half of --concurrent, at least 1). Namespaces also take turns in each queue, so one
    /// namespace cannot hold every worker.
    #[arg(long, env = "SYNCRET_MAX_CONCURRENT_PER_NAMESPACE", default_value_t = 0)]
    pub max_concurrent_per_namespace: usize,
    /// At most this many reads of one store in flight at once (0: --concurrent); a store gets one until a call
    /// of it has answered quickly, and again while its calls are slow. The others wait without holding a worker.
    #[arg(long, env = "SYNCRET_MAX_CONCURRENT_PER_STORE", default_value_t = 0)]
    pub max_concurrent_per_store: usize,
    /// Memory one ExternalSecret's template render may build, all keys together (MiB): lists, maps, strings and
    /// parsed JSON/YAML are charged before they are allocated; a render over it fails with a condition naming the
    /// key. Keep it well below the pod's memory limit divided by --concurrent.
    #[arg(long, env = "SYNCRET_TEMPLATE_MEMORY_BUDGET_MIB", default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub template_memory_budget_mib: u32,
    /// Let ExternalSecrets write a ConfigMap or custom resource instead of a Secret (`spec.target.manifest`),
    /// ESO's flag. Only the resources of --generic-target-resources, in the ExternalSecret's own namespace.
    #[arg(long, env = "SYNCRET_UNSAFE_ALLOW_GENERIC_TARGETS", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub unsafe_allow_generic_targets: bool,
    /// The resources generic targets may be, comma-separated: `configmaps`, `<plural>.<group>` for others
    /// (`applications.argoproj.io`). RBAC, Pods, ServiceAccounts, leases, syncret's own API and cluster-scoped kinds
    /// are refused whatever this says (docs/generic-targets.md).
    #[arg(
        long,
        env = "SYNCRET_GENERIC_TARGET_RESOURCES",
        default_value = "configmaps",
        value_delimiter = ','
    )]
    pub generic_target_resources: Vec<String>,
    /// How long a superseded GeneratorState (a generated credential replaced by a newer one) lives before its
    /// lease is revoked and it is deleted (ESO's flag).
    #[arg(long, env = "SYNCRET_GENERATOR_GC_GRACE_PERIOD", default_value = "2m", value_parser = duration)]
    pub generator_gc_grace_period: Duration,
    /// Let namespaced SecretStores use the operator's own identity (its service-account token, the pod's cloud
    /// credentials, workload identity token files, the metadata server). Off: only ClusterSecretStores may.
    #[arg(long, env = "SYNCRET_ALLOW_NAMESPACED_OPERATOR_IDENTITY", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub allow_namespaced_operator_identity: bool,
    /// Addresses (CIDRs, comma-separated) namespaced SecretStores may reach although the egress deny list
    /// (loopback, link-local, cloud metadata, the apiserver) refuses them, e.g. `10.96.0.0/12` for in-cluster
    /// endpoints on a refused range, `127.0.0.0/8` for a sidecar.
    #[arg(long, env = "SYNCRET_EGRESS_ALLOW", value_delimiter = ',', value_parser = net)]
    pub egress_allow: Vec<IpNet>,
    /// Addresses (CIDRs, comma-separated) namespaced SecretStores may not reach, besides the built-in deny list
    /// (e.g. `10.0.0.0/8` to keep tenants off every cluster-internal address).
    #[arg(long, env = "SYNCRET_EGRESS_DENY", value_delimiter = ',', value_parser = net)]
    pub egress_deny: Vec<IpNet>,
    /// Directories (comma-separated) whose files a ClusterSecretStore may name (GCP `credential_source.file`);
    /// paths are canonicalized first. Namespaced SecretStores may name no file at all.
    #[arg(
        long,
        env = "SYNCRET_CREDENTIAL_FILE_ALLOWLIST",
        value_delimiter = ',',
        default_value = "/var/run/secrets"
    )]
    pub credential_file_allowlist: Vec<PathBuf>,
}

fn net(s: &str) -> Result<IpNet, String> {
    syncret_providers::net::egress::parse_net(s)
}

impl RunArgs {
    /// The operator options these flags describe.
    pub fn options(&self) -> Options {
        Options {
            settings: Settings {
                controller_class: self.controller_class.clone(),
                namespace: Some(self.namespace.clone()).filter(|n| !n.is_empty()),
                concurrent: self.concurrent.max(1),
                store_requeue_interval: self.store_requeue_interval,
                enable_flood_gate: self.enable_flood_gate,
                enable_cluster_stores: self.enable_cluster_store_reconciler,
                enable_secret_stores: self.enable_secret_store_reconciler,
                enable_cluster_external_secrets: self.enable_cluster_external_secret_reconciler,
                enable_push_secrets: self.enable_push_secret_reconciler,
                enable_cluster_push_secrets: self.enable_cluster_push_secret_reconciler,
                refresh_jitter: self.refresh_jitter.clamp(0.0, 1.0),
                backoff_base: Duration::from_secs(1),
                backoff_max: self.max_backoff.max(Duration::from_secs(1)),
                delims: Delims {
                    left: self.template_left_delimiter.clone(),
                    right: self.template_right_delimiter.clone(),
                },
                template_budget: usize::try_from(self.template_memory_budget_mib)
                    .unwrap_or(usize::MAX >> 20)
                    .saturating_mul(1 << 20),
                reconcile_timeout: self.reconcile_timeout.max(Duration::from_secs(1)),
                namespace_concurrency: self.max_concurrent_per_namespace,
                store_concurrency: self.max_concurrent_per_store,
                generic_targets: crate::sync::manifest::GenericTargets {
                    enabled: self.unsafe_allow_generic_targets,
                    resources: (self.generic_target_resources.iter())
                        .map(|r| r.trim().to_ascii_lowercase())
                        .filter(|r| !r.is_empty())
                        .collect(),
                },
                generator_gc_grace: self.generator_gc_grace_period,
                tenant: std::sync::Arc::new(self.tenant_policy()),
            },
            client_qps: self.client_qps,
            client_burst: self.client_burst,
            store_qps: self.store_rate_limit,
            store_burst: self.store_rate_burst,
            read_coalesce_window: self.read_coalesce_window,
            client_max_age: self.provider_client_max_age,
            admin_addr: Some(self.metrics_addr.clone()).filter(|a| !a.is_empty()),
            live_addr: Some(self.live_addr.clone()).filter(|a| !a.is_empty()),
            leader_election: (self.enable_leader_election || self.shards > 0).then(|| LeaseConfig {
                // Empty: the client's default namespace (filled in by `runtime::start`).
                namespace: self.leader_election_namespace.clone(),
                name: self.leader_election_id.clone(),
                identity: leader::default_identity(),
                lease_duration: self.leader_election_lease_duration,
                renew_deadline: self.leader_election_renew_deadline,
                retry_period: self.leader_election_retry_period,
            }),
            shards: self.shards,
            instance: std::env::var("POD_NAME").unwrap_or_else(|_| "syncret".into()),
        }
    }

    /// The tenant boundary these flags describe (the apiserver's addresses are added at start-up).
    pub fn tenant_policy(&self) -> TenantPolicy {
        TenantPolicy {
            namespaced_operator_identity: self.allow_namespaced_operator_identity,
            egress: std::sync::Arc::new(EgressPolicy {
                allow: self.egress_allow.clone(),
                deny: self.egress_deny.clone(),
                apiserver: Vec::new(),
            }),
            file_allowlist: self.credential_file_allowlist.clone(),
            responses: Default::default(),
        }
    }

    /// The effective log filter.
    pub fn log_filter(&self) -> String {
        let level = self.zap_log_level.as_deref().unwrap_or(&self.loglevel);
        let level = match level {
            "debug" | "info" | "warn" | "error" | "trace" => level,
            "warning" => "warn",
            _ => "info",
        };
        format!("{level},kube_runtime=warn,kube_client=warn,hyper=warn,tower=warn")
    }
}

/// Flags of `syncret render`.
#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// Manifests: files (several YAML documents allowed), directories (read recursively) or `-` for stdin. Every
    /// ExternalSecret and PushSecret found is rendered; the stores, ConfigMaps and Secrets found are used.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Remote values as JSON: `{"<remote key>": <value>, …}` (objects are stored as JSON text), for every store.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// More SecretStores/ClusterSecretStores (files or directories); the fake provider's data are the values.
    #[arg(long = "store")]
    pub stores: Vec<PathBuf>,
    /// More ConfigMaps/Secrets (files or directories), for templateFrom and as PushSecret sources.
    #[arg(long = "template-from")]
    pub template_from: Vec<PathBuf>,
    /// Print values as text (`stringData`) instead of base64 `data` as stored.
    #[arg(long)]
    pub decode: bool,
    /// Namespace of objects that do not name one.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// With a `sops` store: the ConfigMaps/Secrets holding the encrypted documents (YAML, several documents
    /// allowed; e.g. `syncret seal` output).
    #[arg(long = "sops-documents")]
    pub sops_documents: Vec<PathBuf>,
    /// With a `sops` store: an age identity file to decrypt with (repeatable; default: `$SOPS_AGE_KEY_FILE`).
    #[arg(long = "age-identity", env = "SOPS_AGE_KEY_FILE")]
    pub age_identity: Vec<PathBuf>,
}

/// Flags of `syncret seal`.
#[derive(Debug, Clone, Args)]
pub struct SealArgs {
    /// The Secret manifest (YAML); stdin when absent or `-`.
    #[arg(short = 'f', long = "filename")]
    pub file: Option<PathBuf>,
    /// An age recipient (`age1…`, the cluster's public key) the document is encrypted for (repeatable).
    #[arg(long, required_unless_present = "kms")]
    pub age: Vec<String>,
    /// An AWS KMS key ARN the data key is also (or only) wrapped with, as `sops --kms` does (repeatable). The call
    /// uses your own AWS credentials (environment, profile, SSO); the cluster's sops store unwraps it with its
    /// `aws` auth.
    #[arg(long)]
    pub kms: Vec<String>,
    /// The name of the `sops` store the ExternalSecret reads through.
    #[arg(long, default_value = "sops")]
    pub store: String,
    /// `SecretStore` or `ClusterSecretStore`.
    #[arg(long, default_value = "SecretStore", value_parser = ["SecretStore", "ClusterSecretStore"])]
    pub store_kind: String,
    /// The ConfigMap's name (default `<secret>-sops`).
    #[arg(long)]
    pub configmap: Option<String>,
    /// The namespace of the manifests (default: the Secret's, else `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// The ExternalSecret's refreshInterval.
    #[arg(long, default_value = "1h")]
    pub refresh_interval: String,
}

/// Output format of `syncret check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
}

/// Flags of `syncret check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Manifests to check: files, directories (read recursively) or `-` for stdin. Without any, the objects are
    /// read from the cluster of the current kubeconfig context.
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,
    /// Read from the cluster even when files are given (both are checked).
    #[arg(long)]
    pub cluster: bool,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    #[arg(long)]
    pub context: Option<String>,
    /// Only this namespace (cluster-scoped objects are still read); objects in files without a namespace are
    /// taken to be in it.
    #[arg(short = 'n', long, default_value = "")]
    pub namespace: String,
    /// The --controller-class syncret will run with: stores of another class are reported as left to it.
    #[arg(long, default_value = "default")]
    pub controller_class: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = CheckFormat::Text)]
    pub output: CheckFormat,
    /// Text output: list supported objects too (by default only those with something to say).
    #[arg(long)]
    pub all: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed_and_takes_eso_flags() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "syncret",
            "--concurrent=8",
            "--controller-class=dev",
            "--enable-flood-gate=false",
            "--store-requeue-interval=1m",
            "--zap-log-level=debug",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        let o = cli.run.options();
        assert_eq!(o.settings.concurrent, 8);
        assert_eq!(o.settings.controller_class, "dev");
        assert!(!o.settings.enable_flood_gate);
        assert_eq!(o.settings.store_requeue_interval, Duration::from_secs(60));
        assert!(cli.run.log_filter().starts_with("debug"));
        assert!(o.leader_election.is_none());
        assert_eq!(o.shards, 0);
        assert_eq!(o.live_addr.as_deref(), Some(":8082"));
        // Runtime bounds: a minute per reconcile, half the workers per namespace and per store.
        assert_eq!(o.settings.reconcile_timeout, Duration::from_secs(60));
        assert_eq!(o.settings.template_budget, 40 << 20);
        assert_eq!(o.settings.namespace_limit(), 4);
        assert_eq!(o.settings.store_limit(), 8);
        // Generic targets: off, and ConfigMaps only once on.
        assert_eq!(o.settings.generic_targets, Default::default());
        let cli = Cli::try_parse_from([
            "syncret",
            "--unsafe-allow-generic-targets",
            "--generic-target-resources=configmaps, Applications.argoproj.io",
        ])
        .unwrap();
        let g = cli.run.options().settings.generic_targets;
        assert!(g.enabled);
        assert_eq!(g.resources, ["configmaps", "applications.argoproj.io"]);
    }

    #[test]
    fn leader_election_flags() {
        let cli = Cli::try_parse_from([
            "syncret",
            "--enable-leader-election",
            "--leader-election-id=my-lease",
            "--leader-election-lease-duration=4s",
            "--leader-election-renew-deadline=3s",
            "--leader-election-retry-period=500ms",
            "--live-addr=",
            "--enable-secret-store-reconciler=false",
            "--enable-flood-gate",
        ])
        .unwrap();
        let o = cli.run.options();
        let le = o.leader_election.unwrap();
        assert_eq!(le.name, "my-lease");
        assert_eq!(le.namespace, "");
        assert_eq!(le.lease_duration, Duration::from_secs(4));
        assert_eq!(le.renew_deadline, Duration::from_secs(3));
        assert_eq!(le.retry_period, Duration::from_millis(500));
        assert!(!le.identity.is_empty());
        assert!(o.live_addr.is_none());
        assert!(!o.settings.enable_secret_stores);
        assert!(o.settings.enable_flood_gate);
        // ESO's chart passes `--enable-leader-election=true`.
        for (arg, on) in [
            ("--enable-leader-election=true", true),
            ("--enable-leader-election=false", false),
        ] {
            let cli = Cli::try_parse_from(["syncret", arg]).unwrap();
            assert_eq!(cli.run.enable_leader_election, on, "{arg}");
        }
        // Go's bool flags need `=` for a value: a following word is not taken as one.
        let cli = Cli::try_parse_from(["syncret", "--enable-leader-election", "crds"]).unwrap();
        assert!(cli.run.enable_leader_election);
        assert!(matches!(cli.command, Some(Command::Crds { .. })));
    }

    #[test]
    fn shards_use_the_lease_settings() {
        let cli = Cli::try_parse_from(["syncret", "--shards=16", "--leader-election-lease-duration=4s"]).unwrap();
        let o = cli.run.options();
        assert_eq!(o.shards, 16);
        let le = o.leader_election.unwrap();
        assert_eq!(le.name, "external-secrets-controller");
        assert_eq!(le.lease_duration, Duration::from_secs(4));
        assert!(Cli::try_parse_from(["syncret", "--shards=100000"]).is_err());
    }

    #[test]
    fn tenant_boundary_flags() {
        let cli = Cli::try_parse_from(["syncret"]).unwrap();
        let t = cli.run.options().settings.tenant;
        assert!(!t.namespaced_operator_identity, "off by default");
        assert!(t.egress.allow.is_empty() && t.egress.deny.is_empty());
        assert_eq!(t.file_allowlist, vec![PathBuf::from("/var/run/secrets")]);
        let cli = Cli::try_parse_from([
            "syncret",
            "--allow-namespaced-operator-identity",
            "--egress-allow=127.0.0.0/8,::1",
            "--egress-deny=10.0.0.0/8",
            "--credential-file-allowlist=/var/run/secrets/tokens,/etc/gcp",
        ])
        .unwrap();
        let t = cli.run.options().settings.tenant;
        assert!(t.namespaced_operator_identity);
        assert_eq!(t.egress.allow.len(), 2);
        assert_eq!(t.egress.deny[0].to_string(), "10.0.0.0/8");
        assert_eq!(t.file_allowlist.len(), 2);
        let err = Cli::try_parse_from(["syncret", "--egress-allow=nope"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not an IP address or CIDR"), "{err}");
    }

    #[test]
    fn every_flag_has_an_environment_variable() {
        let cmd = Cli::command();
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            let want = format!("SYNCRET_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(env.as_deref(), Some(want.as_str()), "--{long}");
        }
    }
}
