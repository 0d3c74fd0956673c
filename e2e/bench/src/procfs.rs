//! Process and machine figures from `/proc`: resident memory (VmRSS, and the kernel's own peak VmHWM), CPU time
//! (utime + stime), whole-machine CPU use. Operators are measured as processes, from the outside.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One reading of a process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcSample {
    pub rss_kib: u64,
    /// Peak resident set since the process started (kernel-tracked, exact).
    pub hwm_kib: u64,
    /// utime + stime, seconds.
    pub cpu_s: f64,
}

fn clk_tck() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// Reads `/proc/<pid>/status` and `/proc/<pid>/stat`; `None` when the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces and parentheses): state is field 3, utime 14, stime 15.
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ProcSample {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        cpu_s: ticks as f64 / clk_tck(),
    })
}

/// CPU seconds of this process's children that have been waited for are not ours; this is the bench itself.
pub fn self_sample() -> Option<ProcSample> {
    sample(std::process::id())
}

/// Whole-machine CPU counters (`/proc/stat`, first line): (busy seconds, total seconds) over all cores.
pub fn machine_cpu() -> (f64, f64) {
    let Ok(text) = std::fs::read_to_string("/proc/stat") else {
        return (0.0, 0.0);
    };
    let Some(line) = text.lines().next() else {
        return (0.0, 0.0);
    };
    let v: Vec<f64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal guest guest_nice (guest is counted in user already).
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    let t = clk_tck();
    ((total - idle) / t, total / t)
}

/// `/proc/loadavg`'s first three numbers.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Other heavy processes on the machine right now (compilers, linkers, other benchmarks), for the record.
pub fn busy_neighbours() -> Vec<String> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{name}/comm")).unwrap_or_default();
        let comm = comm.trim();
        if matches!(
            comm,
            "rustc" | "cargo" | "cc1" | "cc1plus" | "ld" | "lld" | "go" | "compile" | "link" | "clippy-driver"
        ) {
            out.push(format!("{comm}({name})"));
        }
    }
    out.sort();
    out
}

/// Samples a process every `every` for a timeline and the highest RSS seen (VmHWM is the exact peak; the
/// timeline shows when it happened).
#[derive(Clone)]
pub struct Sampler {
    inner: Arc<Mutex<SamplerState>>,
    stop: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct SamplerState {
    timeline: Vec<(f64, u64)>,
    last: Option<ProcSample>,
}

impl Sampler {
    pub fn start(pid: u32, origin: Instant, every: Duration) -> Self {
        let inner: Arc<Mutex<SamplerState>> = Arc::default();
        let stop = Arc::new(tokio::sync::Notify::new());
        let (i, s) = (inner.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                match sample(pid) {
                    Some(p) => {
                        let mut g = i.lock().unwrap_or_else(|e| e.into_inner());
                        g.timeline.push((origin.elapsed().as_secs_f64(), p.rss_kib));
                        g.last = Some(p);
                    }
                    None => return,
                }
                tokio::select! { _ = tokio::time::sleep(every) => {}, _ = s.notified() => return }
            }
        });
        Self { inner, stop }
    }

    /// The last reading taken while the process was alive.
    pub fn last(&self) -> Option<ProcSample> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).last
    }

    /// (seconds since origin, RSS KiB) readings.
    pub fn timeline(&self) -> Vec<(f64, u64)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).timeline.clone()
    }

    pub fn stop(&self) {
        self.stop.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = self_sample();
        assert!(s.is_some_and(|s| s.rss_kib > 0 && s.hwm_kib >= s.rss_kib));
        let (busy, total) = machine_cpu();
        assert!(total >= busy && total > 0.0);
    }
}
