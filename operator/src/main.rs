use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use syncret::cli::{Cli, Command, LogFormat, RunArgs};
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crds { dir: Some(dir) }) => {
            for path in syncret_crds::generate::write_dir(&dir)? {
                eprintln!("wrote {}", path.display());
            }
            Ok(())
        }
        Some(Command::Crds { dir: None }) => {
            std::io::stdout().write_all(syncret_crds::generate::multi_document()?.as_bytes())?;
            Ok(())
        }
        Some(Command::Render(args)) => {
            let out = syncret::render::run(&args)?;
            std::io::stdout().write_all(out.as_bytes())?;
            Ok(())
        }
        Some(Command::Run(args)) => run(*args),
        None => run(cli.run),
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(&args);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let client = kube::Client::try_default()
            .await
            .context("connecting to the Kubernetes API")?;
        let shutdown = CancellationToken::new();
        let started = syncret::runtime::start(client, args.options(), shutdown.clone()).await?;
        tracing::info!(addr = ?started.admin_addr, class = %args.controller_class, "syncret started");
        wait_for_signal().await;
        tracing::info!("shutting down: finishing in-flight syncs");
        shutdown.cancel();
        if tokio::time::timeout(Duration::from_secs(30), started.join())
            .await
            .is_err()
        {
            tracing::warn!("in-flight syncs did not finish within 30s");
        }
        Ok(())
    })
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
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
