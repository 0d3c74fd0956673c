//! An operator under test, run as a separate process: syncret's release binary, or any other implementation of
//! the same API given as a command line (`--other-operator "/path/to/external-secrets --foo"`). Both get the
//! same budget flags (ESO's names: `--concurrent`, `--client-qps`, `--client-burst`) and private metrics and
//! health ports.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// How to start one operator.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OperatorSpec {
    /// Short name for tables (`syncret`, `eso`).
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Free text for the report: version, commit, build.
    pub version: String,
}

impl OperatorSpec {
    /// `"<program> [args…]"`, split on whitespace (single or double quotes group words).
    pub fn parse(name: Option<&str>, command: &str) -> anyhow::Result<OperatorSpec> {
        let words = split_words(command);
        let Some((program, args)) = words.split_first() else {
            bail!("empty operator command");
        };
        let program = PathBuf::from(program);
        let name = name.map(str::to_string).unwrap_or_else(|| {
            program
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| "operator".into())
        });
        Ok(OperatorSpec {
            name,
            program,
            args: args.to_vec(),
            version: String::new(),
        })
    }

    /// The budget and address flags, unless the command already sets them.
    pub fn full_args(&self, budget: &Budget, metrics: u16, live: u16, class: &str) -> Vec<String> {
        let mut args = self.args.clone();
        let mut add = |flag: &str, value: String| {
            if !self
                .args
                .iter()
                .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
            {
                args.push(format!("{flag}={value}"));
            }
        };
        add("--concurrent", budget.concurrent.to_string());
        add("--client-qps", budget.qps.to_string());
        add("--client-burst", budget.burst.to_string());
        add("--metrics-addr", format!("127.0.0.1:{metrics}"));
        add("--live-addr", format!("127.0.0.1:{live}"));
        add("--controller-class", class.to_string());
        args
    }
}

fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The client-side budget shared by the direct-write client and every operator.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Budget {
    pub qps: f64,
    pub burst: u32,
    pub concurrent: usize,
}

/// A running operator process.
pub struct Running {
    pub child: tokio::process::Child,
    pub pid: u32,
    pub started: Instant,
    pub log: PathBuf,
    pub metrics_port: u16,
    pub command: String,
}

/// A free loopback port (bound and released; good enough on a quiet machine).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Starts `spec` with `KUBECONFIG`, logging to `log_dir/<name>-<tag>.log`.
pub fn spawn(
    spec: &OperatorSpec,
    budget: &Budget,
    class: &str,
    kubeconfig: &Path,
    log_dir: &Path,
    tag: &str,
) -> anyhow::Result<Running> {
    let (metrics, live) = (free_port()?, free_port()?);
    let args = spec.full_args(budget, metrics, live, class);
    std::fs::create_dir_all(log_dir)?;
    let log = log_dir.join(format!("{}-{tag}.log", spec.name));
    let out = std::fs::File::create(&log)?;
    let err = out.try_clone()?;
    let started = Instant::now();
    let child = tokio::process::Command::new(&spec.program)
        .args(&args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", spec.program.display()))?;
    let pid = child.id().context("operator exited at once")?;
    Ok(Running {
        child,
        pid,
        started,
        log,
        metrics_port: metrics,
        command: format!("{} {}", spec.program.display(), args.join(" ")),
    })
}

impl Running {
    /// Whether the process is still alive.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(mut self, grace: Duration) {
        let _ = tokio::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await;
        if tokio::time::timeout(grace, self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let v: Vec<&str> = text.lines().collect();
        v[v.len().saturating_sub(lines)..].join("\n")
    }

    /// The operator's own `/metrics` (whatever it exposes), or empty.
    pub async fn scrape(&self) -> String {
        let url = format!("127.0.0.1:{}", self.metrics_port);
        let Ok(Ok(mut s)) = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(&url)).await
        else {
            return String::new();
        };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let req = format!("GET /metrics HTTP/1.0\r\nHost: {url}\r\n\r\n");
        if s.write_all(req.as_bytes()).await.is_err() {
            return String::new();
        }
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// `<program> --version`, first line, or empty.
pub fn version_of(program: &Path) -> String {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            let s = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&s)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_and_keeps_explicit_flags() {
        let s = OperatorSpec::parse(None, "/opt/eso/external-secrets --concurrent=8 --loglevel 'error'").unwrap();
        assert_eq!(s.name, "external-secrets");
        assert_eq!(s.args, ["--concurrent=8", "--loglevel", "error"]);
        let b = Budget {
            qps: 50.0,
            burst: 100,
            concurrent: 4,
        };
        let a = s.full_args(&b, 1, 2, "c");
        assert!(a.contains(&"--concurrent=8".to_string()));
        assert!(!a.contains(&"--concurrent=4".to_string()));
        assert!(a.contains(&"--client-qps=50".to_string()));
        assert!(a.contains(&"--metrics-addr=127.0.0.1:1".to_string()));
    }
}
