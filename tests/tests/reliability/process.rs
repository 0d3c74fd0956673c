//! Resource use of processes (from `/proc`) and metric samples from a text exposition. The operator as a real
//! process is `syncret_tests::process::SyncretProcess`.

/// Resource use of the running process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// user + system CPU seconds.
    pub cpu_seconds: f64,
    /// Peak resident set size (VmHWM), KiB.
    pub peak_rss_kib: u64,
    /// Current resident set size, KiB.
    pub rss_kib: u64,
}

/// CPU and memory of any process.
pub fn usage(pid: u32) -> anyhow::Result<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = 100.0; // USER_HZ on Linux
    Ok(Usage {
        cpu_seconds: (ticks(14) + ticks(15)) / hz,
        peak_rss_kib: kib("VmHWM:"),
        rss_kib: kib("VmRSS:"),
    })
}

/// The value of the first sample of `name` whose labels contain every `labels` pair, from a text exposition.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metric_sum(text, name, labels, false)
}

/// The sum over every sample of `name` whose labels contain every `labels` pair.
pub fn metric_total(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metric_sum(text, name, labels, true).unwrap_or(0.0)
}

fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)], all: bool) -> Option<f64> {
    let mut sum = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else { continue };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if !labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))) {
            continue;
        }
        let v: f64 = rest.rsplit(' ').next()?.parse().ok()?;
        if !all {
            return Some(v);
        }
        sum = Some(sum.unwrap_or(0.0) + v);
    }
    sum
}
