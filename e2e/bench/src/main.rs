use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use syncret_bench::{Budget, Config, OperatorSpec, ProviderKind, report};

/// Scale benchmark: N ExternalSecrets against the direct-write limit, operators measured as processes.
///
/// Needs KUBECONFIG (an admin kubeconfig of the control plane; `e2e/bench/run.sh` starts one).
#[derive(Debug, Parser)]
#[command(name = "syncret-bench")]
struct Args {
    /// Number of ExternalSecrets (and of direct-write Secrets).
    #[arg(long, default_value_t = 1000)]
    n: usize,
    #[arg(long, default_value_t = 100)]
    namespaces: usize,
    /// Bytes of the one value in every Secret.
    #[arg(long, default_value_t = 256)]
    value_size: usize,
    /// Distinct keys in the fake store (its spec must fit one etcd request).
    #[arg(long, default_value_t = 1000)]
    fake_keys: usize,
    /// Client budget, the same for the direct-write client and every operator.
    #[arg(long, default_value_t = 50.0)]
    client_qps: f64,
    #[arg(long, default_value_t = 100)]
    client_burst: u32,
    #[arg(long, default_value_t = 4)]
    concurrent: usize,
    /// Providers to run, comma-separated: fake, kubernetes (none: only the baselines).
    #[arg(long, default_value = "fake,kubernetes", value_delimiter = ',')]
    providers: Vec<String>,
    /// The operator command (program and extra arguments).
    #[arg(long, default_value = "target/release/syncret")]
    operator: String,
    #[arg(long, default_value = "syncret")]
    operator_name: String,
    /// Free text recorded for the operator (default: its `--version`).
    #[arg(long, default_value = "")]
    operator_version: String,
    /// A second operator measured side by side on the same apiserver, same CRDs and stores, e.g.
    /// "/path/to/external-secrets --loglevel=error".
    #[arg(long)]
    other_operator: Option<String>,
    #[arg(long)]
    other_name: Option<String>,
    /// Free text recorded for the second operator (version, commit, how it was built).
    #[arg(long, default_value = "")]
    other_version: String,
    /// CRD manifests the second operator needs besides ours (installed only where missing).
    #[arg(long)]
    extra_crds: Vec<PathBuf>,
    /// Our CRDs, installed first.
    #[arg(long, default_value = "deploy/crds")]
    crds: Vec<PathBuf>,
    /// Skip the floor (a plain client writing Secret + ExternalSecret status per item).
    #[arg(long)]
    no_floor: bool,
    /// Skip the refresh waves.
    #[arg(long)]
    no_waves: bool,
    /// refreshInterval of the ExternalSecrets (default: from the measured floor, 60 s at least).
    #[arg(long, value_parser = humantime)]
    refresh_interval: Option<Duration>,
    /// ExternalSecrets created during the second refresh wave.
    #[arg(long, default_value_t = 100)]
    new_es: usize,
    /// A hostile tenant beside every scenario: this many ExternalSecrets on a SecretStore whose server never
    /// answers, in a namespace of their own (0: none).
    #[arg(long, default_value_t = 0)]
    hung: usize,
    #[arg(long, default_value_t = 32)]
    setup_concurrency: usize,
    #[arg(long, default_value = "bench")]
    controller_class: String,
    #[arg(long, value_parser = humantime, default_value = "30m")]
    phase_timeout: Duration,
    /// Pause after each phase before reading counters (late events and status writes).
    #[arg(long, value_parser = humantime, default_value = "5s")]
    settle: Duration,
    /// Output directory (report.json, operator logs and metrics).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Put the markdown section into this file (between markers keyed by N).
    #[arg(long)]
    write_doc: Option<PathBuf>,
    /// The command line to record in the report.
    #[arg(long)]
    command: Option<String>,
    #[arg(long)]
    quiet: bool,
}

fn humantime(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len()));
    let v: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => v,
        "ms" => v / 1000.0,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("bad duration unit in {s:?}")),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let kubeconfig = std::env::var_os("KUBECONFIG")
        .map(PathBuf::from)
        .context("KUBECONFIG must name the control plane's admin kubeconfig (e2e/bench/run.sh sets it)")?;
    let providers = a
        .providers
        .iter()
        .filter(|p| !matches!(p.trim(), "" | "none"))
        .map(|p| ProviderKind::parse(p.trim()).with_context(|| format!("unknown provider {p}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut operators = vec![OperatorSpec::parse(Some(&a.operator_name), &a.operator)?];
    // The hung store's server is the bench's own listener on loopback, which syncret's egress policy refuses to
    // namespaced SecretStores by default (docs/security.md): let the hostile tenant reach it, so it can hang.
    if a.hung > 0 && !operators[0].args.iter().any(|x| x.starts_with("--egress-allow")) {
        operators[0].args.push("--egress-allow=127.0.0.0/8".into());
    }
    if let Some(other) = &a.other_operator {
        operators.push(OperatorSpec::parse(a.other_name.as_deref(), other)?);
    }
    for (i, op) in operators.iter_mut().enumerate() {
        if !op.program.exists() {
            bail!("operator binary {} not found", op.program.display());
        }
        op.version = if i == 1 && !a.other_version.is_empty() {
            a.other_version.clone()
        } else if i == 0 && !a.operator_version.is_empty() {
            a.operator_version.clone()
        } else {
            syncret_bench::operator::version_of(&op.program)
        };
    }
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "target/bench/{}-n{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S"),
            a.n
        ))
    });
    let cfg = Config {
        kubeconfig,
        controlplane_env: std::env::var_os("SYNCRET_CONTROLPLANE_DIR").map(|d| PathBuf::from(d).join("env")),
        n: a.n,
        namespaces: a.namespaces,
        value_size: a.value_size,
        fake_keys: a.fake_keys,
        budget: Budget {
            qps: a.client_qps,
            burst: a.client_burst,
            concurrent: a.concurrent,
        },
        providers,
        operators,
        floor: !a.no_floor,
        waves: !a.no_waves,
        refresh_interval: a.refresh_interval,
        new_es: a.new_es,
        hung: a.hung,
        setup_concurrency: a.setup_concurrency,
        controller_class: a.controller_class.clone(),
        crds: a.crds.clone(),
        extra_crds: a.extra_crds.clone(),
        out_dir: out.clone(),
        phase_timeout: a.phase_timeout,
        settle: a.settle,
        verbose: !a.quiet,
    };
    let report = syncret_bench::run(cfg).await?;
    let command = a
        .command
        .clone()
        .unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" "));
    let md = report::markdown(&report, &command);
    std::fs::write(out.join("report.md"), &md)?;
    println!("{md}");
    if let Some(doc) = &a.write_doc {
        report::write_section(doc, &format!("n={}", a.n), &md)?;
        eprintln!("bench: wrote the N={} section of {}", a.n, doc.display());
    }
    eprintln!("bench: report and logs in {}", out.display());
    Ok(())
}
