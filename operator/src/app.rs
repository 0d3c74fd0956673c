//! The `syncret` binary's body (`main.rs` only calls [`main`]): argument parsing, logging, the runtime, signals
//! and exit codes. It lives in the library so the integration tests can run it as real processes (the leader
//! election tests start two and kill one).
use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, LogFormat, RunArgs};

/// How long a graceful shutdown (SIGTERM) waits for in-flight syncs.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `syncret` with these arguments (the first is the program name) and returns its exit code.
pub fn main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "syncret failed");
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Crds { dir, policy }) if !dir.is_empty() || !policy.is_empty() => {
            for d in dir {
                for path in syncret_crds::generate::write_dir(&d)? {
                    eprintln!("wrote {}", path.display());
                }
            }
            for p in policy {
                eprintln!("wrote {}", syncret_crds::admission::write(&p)?.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Crds { .. }) => {
            std::io::stdout().write_all(syncret_crds::generate::multi_document()?.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Render(args)) => crate::render::main(&args),
        Some(Command::Check(args)) => crate::check::main(&args),
        Some(Command::Seal(args)) => {
            let out = crate::seal::run(&args)?;
            std::io::stdout().write_all(out.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Run(args)) => run(*args).map(|()| ExitCode::SUCCESS),
        None => run(cli.run).map(|()| ExitCode::SUCCESS),
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(&args);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let config = kube::Config::infer()
            .await
            .context("connecting to the Kubernetes API")?;
        let mut opts = args.options();
        opts.settings.tenant = std::sync::Arc::new(with_apiserver(opts.settings.tenant.as_ref(), &config).await);
        let client = kube::Client::try_from(config).context("connecting to the Kubernetes API")?;
        let election = opts.leader_election.clone();
        let shutdown = CancellationToken::new();
        let started = crate::runtime::start(client, opts, shutdown.clone()).await?;
        tracing::info!(
            metrics = ?started.admin_addr,
            live = ?started.live_addr,
            class = %args.controller_class,
            leader_election = election.is_some(),
            identity = election.as_ref().map(|e| e.identity.as_str()),
            "syncret started"
        );
        let leadership = started.leadership.clone();
        tokio::select! {
            _ = wait_for_signal() => {
                tracing::info!("shutting down: finishing in-flight syncs");
                shutdown.cancel();
                if tokio::time::timeout(SHUTDOWN_TIMEOUT, started.join()).await.is_err() {
                    tracing::warn!("in-flight syncs did not finish within {SHUTDOWN_TIMEOUT:?}");
                }
                Ok(())
            }
            _ = leadership.lost() => {
                // Workers were told to stop when the renew deadline passed; another replica may take over once
                // the lease duration has passed, so in-flight work gets half the margin, then the process exits
                // (controller-runtime exits too: a restarted pod comes back as a candidate).
                let margin = election
                    .map(|e| e.lease_duration.saturating_sub(e.renew_deadline) / 2)
                    .unwrap_or_default();
                shutdown.cancel();
                let _ = tokio::time::timeout(margin, started.join()).await;
                anyhow::bail!("leader election lost")
            }
        }
    })
}

/// The tenant policy with the apiserver's own addresses on the egress deny list: the address this process reaches
/// it at, and the `kubernetes` Service's cluster IP.
async fn with_apiserver(
    policy: &syncret_providers::TenantPolicy,
    config: &kube::Config,
) -> syncret_providers::TenantPolicy {
    let mut hosts: Vec<String> = config.cluster_url.host().map(str::to_string).into_iter().collect();
    hosts.extend(std::env::var("KUBERNETES_SERVICE_HOST").ok().filter(|h| !h.is_empty()));
    let mut addrs = Vec::new();
    for host in hosts {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        match tokio::net::lookup_host((host.as_str(), 443)).await {
            Ok(found) => addrs.extend(found.map(|a| a.ip())),
            Err(e) => tracing::warn!(host, error = %e, "could not resolve the apiserver for the egress deny list"),
        }
    }
    addrs.sort();
    addrs.dedup();
    let mut egress = (*policy.egress).clone();
    egress.apiserver = addrs;
    syncret_providers::TenantPolicy {
        egress: std::sync::Arc::new(egress),
        ..policy.clone()
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn init_logging(args: &RunArgs) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SYNCRET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(args.log_filter()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // try_init: a second call in one process (tests) keeps the first subscriber.
    let _ = match args.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
