//! syncret as real OS processes, for tests that kill one (leader election).
//!
//! A test binary cannot run cargo's `syncret` binary reliably (cargo builds other packages' binaries only in
//! some invocations, and a stale one would test old code), so the test binary runs *itself* in child mode:
//! [`SyncretProcess::spawn`] starts `<this test binary> syncret_process --ignored` with the arguments in
//! `SYNCRET_CHILD_ARGS`, and that ignored test calls [`run_child`], which runs [`syncret::app::main`] — the
//! whole body of the `syncret` binary (flags, logging, signals, exit codes). Children die with the test: they
//! are killed on drop, and a watchdog thread in each child exits it if its parent goes away.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use anyhow::{Context as _, anyhow};

const ARGS_ENV: &str = "SYNCRET_CHILD_ARGS";
const PARENT_ENV: &str = "SYNCRET_CHILD_PARENT";

/// Runs syncret when this process was started by [`SyncretProcess::spawn`]; returns at once otherwise. Call it
/// from an `#[ignore]`d test named `syncret_process` (in any module: the child selects it by that name, not by
/// its full path) in every test binary that spawns processes, and from no other ignored test of that name.
pub fn run_child() {
    let Ok(args) = std::env::var(ARGS_ENV) else {
        return;
    };
    let args: Vec<String> = serde_json::from_str(&args).expect("SYNCRET_CHILD_ARGS is a JSON array");
    if let Some(parent) = std::env::var(PARENT_ENV).ok().and_then(|p| p.parse::<u32>().ok()) {
        std::thread::spawn(move || {
            loop {
                if std::os::unix::process::parent_id() != parent {
                    eprintln!("syncret child: parent {parent} is gone, exiting");
                    std::process::exit(3);
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
    }
    let code = syncret::app::main(std::iter::once("syncret".to_string()).chain(args));
    std::process::exit(if code == std::process::ExitCode::SUCCESS { 0 } else { 1 });
}

/// A running syncret process; killed (SIGKILL) when dropped.
pub struct SyncretProcess {
    pub name: String,
    pub metrics: SocketAddr,
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

/// A free loopback port (bound, then released).
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

impl SyncretProcess {
    /// Starts `syncret <args> --egress-allow=127.0.0.0/8,::1/128 --metrics-addr=127.0.0.1:<free> --live-addr=` (the
    /// allowlist unless `args` set one) with `KUBECONFIG=kubeconfig` and
    /// `POD_NAME=name` (the Lease identity is `<name>_<random>`). Logs go to a temporary file ([`Self::log`]).
    pub fn spawn(name: &str, kubeconfig: &Path, args: &[String]) -> anyhow::Result<SyncretProcess> {
        if !args.iter().any(|a| a == "--namespace" || a.starts_with("--namespace=")) {
            crate::ensure_cluster_wide_allowed("a syncret process without --namespace")?;
        }
        let metrics = free_addr()?;
        let mut all = args.to_vec();
        // The test provider servers listen on loopback, which the egress policy refuses by default.
        if !all.iter().any(|a| a.starts_with("--egress-allow")) {
            all.push(format!("--egress-allow={}", crate::operator::LOOPBACK.join(",")));
        }
        all.push(format!("--metrics-addr={metrics}"));
        all.push("--live-addr=".into());
        let log = std::env::temp_dir().join(format!("{}-{}.log", crate::unique_name("syncret"), name));
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let exe = std::env::current_exe()?;
        let child = Command::new(exe)
            .args(["syncret_process", "--ignored", "--nocapture", "--test-threads=1"])
            .env(ARGS_ENV, serde_json::to_string(&all)?)
            .env(PARENT_ENV, std::process::id().to_string())
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", name)
            .env_remove("SYNCRET_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .context("spawning a syncret process")?;
        Ok(SyncretProcess {
            name: name.to_string(),
            metrics,
            child,
            log,
            exited: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if self.exited.is_none() {
            self.child.kill()?;
            self.exited = Some(self.child.wait()?);
        }
        Ok(())
    }

    /// SIGTERM (graceful shutdown).
    pub fn terminate(&self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM {} failed", self.child.id());
        Ok(())
    }

    /// The exit status, if the process has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Path of the log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `GET /metrics`, parsed.
    pub async fn scrape(&self) -> anyhow::Result<crate::http::Scrape> {
        crate::http::scrape(self.metrics).await
    }

    /// Waits until `/readyz` answers 200 (or the process exits).
    pub async fn wait_ready(&mut self, timeout: std::time::Duration) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return Err(anyhow!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    self.log()
                ));
            }
            if let Ok((200, _)) = crate::http::get(self.metrics, "/readyz").await {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(anyhow!("{} not ready within {timeout:?}:\n{}", self.name, self.log()));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SyncretProcess {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A copy of `kubeconfig` whose clusters point at `server` (e.g. a [`crate::proxy::Proxy`]).
pub fn kubeconfig_via(kubeconfig: &Path, server: &str) -> anyhow::Result<PathBuf> {
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(kubeconfig)?)?;
    let clusters = doc
        .get_mut("clusters")
        .and_then(|c| c.as_sequence_mut())
        .ok_or_else(|| anyhow!("kubeconfig without clusters"))?;
    for c in clusters {
        if let Some(cluster) = c.get_mut("cluster").and_then(|c| c.as_mapping_mut()) {
            cluster.insert("server".into(), server.into());
        }
    }
    let path = std::env::temp_dir().join(format!("{}.kubeconfig", crate::unique_name("proxied")));
    std::fs::write(&path, serde_yaml::to_string(&doc)?)?;
    Ok(path)
}
