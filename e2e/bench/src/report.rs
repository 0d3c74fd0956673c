//! The report: a markdown section (tables with ratios to the direct-write limit, targets, request breakdowns,
//! where the CPU went) printed and, with `--write-doc`, placed into `docs/benchmarks.md` between markers of
//! its own so runs at different N each keep their section.
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use crate::run::{Report, ScenarioResult, Window};

fn mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

fn f1(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}", x + 0.0)
    } else {
        "–".into()
    }
}

fn f2(x: f64) -> String {
    if x.is_finite() {
        format!("{:.2}", x + 0.0)
    } else {
        "–".into()
    }
}

fn opt(x: Option<f64>, f: fn(f64) -> String) -> String {
    x.map(f).unwrap_or_else(|| "–".into())
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Goals of issue 28 for sharded replicas against one process: time to all synced, and each replica's peak RSS
/// as a share of the single process's.
pub const TARGET_SPEEDUP: f64 = 2.7;
pub const TARGET_REPLICA_RSS_SHARE: f64 = 0.40;

/// Targets of issue 13.
pub const TARGET_RATIO: f64 = 1.2;
pub const TARGET_PEAK_MB: f64 = 60.0;
pub const TARGET_P99_MS: f64 = 2000.0;

fn col(s: &ScenarioResult) -> String {
    format!("{} · {}", s.operator, s.provider)
}

fn cpu_line(w: &Window) -> String {
    format!(
        "{} / {} / {} / {}",
        opt(w.apiserver_cpu_s, f1),
        opt(w.etcd_cpu_s, f1),
        opt(w.operator_cpu_s, f1),
        f1(w.bench_cpu_s)
    )
}

/// The markdown section for this report. `command`: how it was produced.
pub fn markdown(r: &Report, command: &str) -> String {
    let mut o = String::new();
    let m = &r.machine;
    let _ = writeln!(o, "### N = {} ({})\n", thousands(r.n), m.date);
    let _ = writeln!(o, "Command: `{command}`\n");
    let _ = writeln!(
        o,
        "Machine: {} cores ({}), {:.1} GiB, Linux {}. Load average at start {} (busy neighbours: {}), at end {} ({}).",
        m.cores,
        m.cpu_model,
        m.mem_gib,
        m.kernel,
        m.load_start,
        if m.busy_start.is_empty() {
            "none".to_string()
        } else {
            m.busy_start.join(" ")
        },
        m.load_end,
        if m.busy_end.is_empty() {
            "none".to_string()
        } else {
            m.busy_end.join(" ")
        },
    );
    if let Some(b) = &r.budget {
        let _ = writeln!(
            o,
            "Budget (direct-write client and every operator): `--client-qps {} --client-burst {} --concurrent {}`. \
             {} namespaces, one {}-byte value per Secret, refreshInterval {} s. Total run {:.0} s.",
            b.qps, b.burst, b.concurrent, r.namespaces, r.value_size, r.refresh_interval_s, r.total_s
        );
    }
    if let Some(h) = r.scenarios.iter().map(|s| s.hung).max().filter(|h| *h > 0) {
        let _ = writeln!(
            o,
            "A hostile tenant beside every scenario: {h} ExternalSecrets (refreshed on the same interval) on a \
             SecretStore whose server accepts connections and never answers (`--hung {h}`)."
        );
    }
    for op in &r.operators {
        let _ = writeln!(o, "- `{}`: `{}` {}", op.name, op.program.display(), op.version);
    }
    let _ = writeln!(o);
    let d = &r.direct;
    // Main table.
    let mut head = vec!["".to_string(), "direct write".to_string()];
    if r.floor.is_some() {
        head.push("floor (Secret + status)".into());
    }
    head.extend(r.scenarios.iter().map(col));
    let _ = writeln!(o, "| {} |", head.join(" | "));
    let _ = writeln!(o, "|{}", " --- |".repeat(head.len()));
    let floor = r.floor.as_ref();
    let row = |o: &mut String, name: &str, direct: String, fl: String, f: &dyn Fn(&ScenarioResult) -> String| {
        let mut cells = vec![name.to_string(), direct];
        if floor.is_some() {
            cells.push(fl);
        }
        cells.extend(r.scenarios.iter().map(f));
        let _ = writeln!(o, "| {} |", cells.join(" | "));
    };
    row(
        &mut o,
        "time to all synced (s)",
        f2(d.wall_s),
        floor.map(|f| f2(f.wall_s)).unwrap_or_default(),
        &|s| match (&s.error, s.sync_s) {
            (_, Some(t)) => f2(t),
            (Some(_), None) => "failed".into(),
            _ => "–".into(),
        },
    );
    row(
        &mut o,
        "ratio to direct write (target ≤ 1.2)",
        "1.00".into(),
        floor.map(|f| f2(f.wall_s / d.wall_s)).unwrap_or_default(),
        &|s| opt(s.sync_s.map(|t| t / d.wall_s), f2),
    );
    if let Some(f) = floor {
        row(&mut o, "ratio to floor", f2(d.wall_s / f.wall_s), "1.00".into(), &|s| {
            opt(s.sync_s.map(|t| t / f.wall_s), f2)
        });
    }
    row(
        &mut o,
        "throughput (ES/s)",
        format!("{:.0}", d.n as f64 / d.wall_s),
        floor
            .map(|f| format!("{:.0}", f.n as f64 / f.wall_s))
            .unwrap_or_default(),
        &|s| opt(s.sync_s.map(|t| s.n as f64 / t), |x| format!("{x:.0}")),
    );
    row(&mut o, "peak RSS (MB, VmHWM)", "".into(), "".into(), &|s| {
        if s.peak_rss_kib > 0 {
            f1(mb(s.peak_rss_kib))
        } else {
            "–".into()
        }
    });
    row(&mut o, "steady RSS after sync (MB)", "".into(), "".into(), &|s| {
        if s.steady_rss_kib > 0 {
            f1(mb(s.steady_rss_kib))
        } else {
            "–".into()
        }
    });
    row(
        &mut o,
        "operator CPU s (sync / whole scenario)",
        "".into(),
        "".into(),
        &|s| format!("{} / {}", f1(s.cpu_sync_s), f1(s.cpu_total_s)),
    );
    row(
        &mut o,
        "apiserver requests per ES (sync)",
        f2(d.window.requests_total / d.n as f64),
        floor
            .map(|f| f2(f.window.requests_total / f.n as f64))
            .unwrap_or_default(),
        &|s| {
            if s.sync_s.is_some() {
                f2(s.sync_window.requests_total / s.n as f64)
            } else {
                "–".into()
            }
        },
    );
    row(
        &mut o,
        "apiserver requests per ES per refresh",
        "".into(),
        "".into(),
        &|s| {
            s.wave
                .as_ref()
                .map(|w| f2(w.window.requests_total / s.n as f64))
                .unwrap_or_else(|| "–".into())
        },
    );
    row(
        &mut o,
        "Secret writes during unchanged refresh (target 0)",
        "".into(),
        "".into(),
        &|s| {
            s.wave
                .as_ref()
                .map(|w| {
                    format!(
                        "{} ({} refreshed{})",
                        w.secret_writes_api.abs().round(),
                        w.refreshed,
                        if w.complete { "" } else { ", incomplete" }
                    )
                })
                .unwrap_or_else(|| "–".into())
        },
    );
    row(&mut o, "refresh wave: duration (s)", "".into(), "".into(), &|s| {
        s.wave.as_ref().map(|w| f1(w.duration_s)).unwrap_or_else(|| "–".into())
    });
    row(
        &mut o,
        "new ES create→Ready during wave p50 / p99 / max (ms, target p99 ≤ 2000)",
        "".into(),
        "".into(),
        &|s| {
            s.new_es
                .as_ref()
                .map(|l| {
                    format!(
                        "{} / {} / {} (n={}, {} during wave)",
                        opt(l.p50_ms, |x| format!("{x:.0}")),
                        opt(l.p99_ms, |x| format!("{x:.0}")),
                        opt(l.max_ms, |x| format!("{x:.0}")),
                        l.ready,
                        l.created_during_wave
                    )
                })
                .unwrap_or_else(|| "–".into())
        },
    );
    row(
        &mut o,
        "machine CPU busy during sync",
        format!("{:.0}%", d.window.machine_util() * 100.0),
        floor
            .map(|f| format!("{:.0}%", f.window.machine_util() * 100.0))
            .unwrap_or_default(),
        &|s| {
            if s.sync_s.is_some() {
                format!("{:.0}%", s.sync_window.machine_util() * 100.0)
            } else {
                "–".into()
            }
        },
    );
    row(
        &mut o,
        "CPU s during sync: apiserver / etcd / operator / bench",
        cpu_line(&d.window),
        floor.map(|f| cpu_line(&f.window)).unwrap_or_default(),
        &|s| {
            if s.sync_s.is_some() {
                cpu_line(&s.sync_window)
            } else {
                "–".into()
            }
        },
    );
    row(
        &mut o,
        "CPU s during refresh wave: apiserver / etcd / operator",
        "".into(),
        "".into(),
        &|s| {
            s.wave
                .as_ref()
                .map(|w| {
                    format!(
                        "{} / {} / {}",
                        opt(w.window.apiserver_cpu_s, f1),
                        opt(w.window.etcd_cpu_s, f1),
                        opt(w.window.operator_cpu_s, f1)
                    )
                })
                .unwrap_or_else(|| "–".into())
        },
    );
    let _ = writeln!(o);
    // Targets.
    let _ = writeln!(o, "Targets:\n");
    for s in &r.scenarios {
        let mut parts = Vec::new();
        if let Some(t) = s.sync_s {
            let ratio = t / d.wall_s;
            parts.push(format!(
                "sync {:.2}× direct write {}",
                ratio,
                if ratio <= TARGET_RATIO { "✅" } else { "❌" }
            ));
        }
        if s.peak_rss_kib > 0 {
            let p = mb(s.peak_rss_kib);
            parts.push(format!(
                "peak RSS {:.1} MB {}",
                p,
                if p <= TARGET_PEAK_MB { "✅" } else { "❌" }
            ));
        }
        if let Some(l) = &s.new_es
            && let Some(p99) = l.p99_ms
        {
            parts.push(format!(
                "new-ES p99 {:.0} ms {}",
                p99,
                if p99 <= TARGET_P99_MS { "✅" } else { "❌" }
            ));
        }
        if let Some(w) = &s.wave {
            parts.push(format!(
                "{} Secret writes on unchanged refresh {}",
                w.secret_writes_api.abs().round(),
                if w.secret_writes_api == 0.0 && w.secret_writes_watch == 0 && w.complete {
                    "✅"
                } else {
                    "❌"
                }
            ));
        }
        if let Some(e) = &s.error {
            parts.push(format!("error: {}", e.lines().next().unwrap_or_default()));
        }
        let _ = writeln!(o, "- {}: {}", col(s), parts.join("; "));
    }
    let _ = writeln!(o);
    replicas(&mut o, r);
    // Breakdowns.
    breakdown(
        &mut o,
        "Apiserver requests per ES during the sync (operator start → all synced + 5 s), by verb and resource",
        r,
        Some((&r.direct.window, r.floor.as_ref().map(|f| &f.window))),
        |s| s.sync_s.map(|_| &s.sync_window),
    );
    breakdown(
        &mut o,
        "Apiserver requests per ES during one refresh wave (unchanged values)",
        r,
        None,
        |s| s.wave.as_ref().map(|w| &w.window),
    );
    o
}

/// Sharded replicas against the single process of the same operator and provider.
fn replicas(o: &mut String, r: &Report) {
    for multi in r.scenarios.iter().filter(|s| !s.replicas.is_empty()) {
        let Some(single) = r.scenarios.iter().find(|s| {
            s.replicas.is_empty()
                && s.provider == multi.provider
                && multi.operator.starts_with(&format!("{} ×", s.operator))
        }) else {
            continue;
        };
        let n = multi.replicas.len();
        let _ = writeln!(
            o,
            "Sharded replicas, {} (`{}`, {n} processes with `--shards {}`, each with the budget above; cold start, \
             no refresh waves):\n",
            multi.provider, multi.operator, r.shards
        );
        let _ = writeln!(o, "|  | {} (1 process) | {} |", single.operator, multi.operator);
        let _ = writeln!(o, "| --- | --- | --- |");
        let t = |s: &ScenarioResult| opt(s.sync_s, f2);
        let _ = writeln!(o, "| time to all synced (s) | {} | {} |", t(single), t(multi));
        let speedup = match (single.sync_s, multi.sync_s) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let _ = writeln!(
            o,
            "| speed-up (goal ≥ {TARGET_SPEEDUP}×) |  | {} |",
            speedup
                .map(|x| format!("{x:.2}× {}", if x >= TARGET_SPEEDUP { "✅" } else { "❌" }))
                .unwrap_or_else(|| "–".into())
        );
        let peaks: Vec<String> = multi.replicas.iter().map(|x| f1(mb(x.peak_rss_kib))).collect();
        let _ = writeln!(
            o,
            "| peak RSS per process (MB, VmHWM) | {} | {} |",
            f1(mb(single.peak_rss_kib)),
            peaks.join(" / ")
        );
        let share = (single.peak_rss_kib > 0).then(|| multi.peak_rss_kib as f64 / single.peak_rss_kib as f64);
        let _ = writeln!(
            o,
            "| largest replica peak / single process (goal ≤ {:.0}%) |  | {} |",
            TARGET_REPLICA_RSS_SHARE * 100.0,
            share
                .map(|x| format!(
                    "{:.0}% {}",
                    x * 100.0,
                    if x <= TARGET_REPLICA_RSS_SHARE { "✅" } else { "❌" }
                ))
                .unwrap_or_else(|| "–".into())
        );
        let held: Vec<String> = multi
            .replicas
            .iter()
            .map(|x| format!("{} / {}", x.units, thousands(x.external_secrets)))
            .collect();
        let _ = writeln!(
            o,
            "| units held / ExternalSecrets cached, per replica |  | {} |",
            held.join(" · ")
        );
        let cpu: Vec<String> = multi.replicas.iter().map(|x| f1(x.cpu_sync_s)).collect();
        let _ = writeln!(
            o,
            "| operator CPU s during sync, per process | {} | {} |",
            f1(single.cpu_sync_s),
            cpu.join(" / ")
        );
        let _ = writeln!(
            o,
            "| machine CPU busy during sync | {:.0}% | {:.0}% |\n",
            single.sync_window.machine_util() * 100.0,
            multi.sync_window.machine_util() * 100.0
        );
    }
}

fn breakdown<'a>(
    o: &mut String,
    title: &str,
    r: &'a Report,
    baselines: Option<(&'a Window, Option<&'a Window>)>,
    pick: impl Fn(&'a ScenarioResult) -> Option<&'a Window>,
) {
    let mut cols: Vec<(String, &Window, f64)> = Vec::new();
    if let Some((d, f)) = baselines {
        cols.push(("direct write".into(), d, r.direct.n as f64));
        if let Some(f) = f {
            cols.push(("floor".into(), f, r.n as f64));
        }
    }
    for s in &r.scenarios {
        if let Some(w) = pick(s) {
            cols.push((col(s), w, s.n as f64));
        }
    }
    if cols.iter().all(|c| c.1.requests.is_empty()) {
        return;
    }
    let mut keys: BTreeSet<String> = BTreeSet::new();
    for c in &cols {
        for (k, v) in &c.1.requests {
            if *v / c.2 >= 0.005 {
                keys.insert(k.clone());
            }
        }
    }
    let _ = writeln!(o, "{title}:\n");
    let _ = writeln!(
        o,
        "| request | {} |",
        cols.iter().map(|c| c.0.clone()).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(o, "| --- |{}", " --- |".repeat(cols.len()));
    for k in keys {
        let cells: Vec<String> = cols
            .iter()
            .map(|c| {
                c.1.requests
                    .iter()
                    .find(|(kk, _)| *kk == k)
                    .map(|(_, v)| format!("{:.2}", v / c.2))
                    .unwrap_or_else(|| "".into())
            })
            .collect();
        let _ = writeln!(o, "| `{k}` | {} |", cells.join(" | "));
    }
    let totals: Vec<String> = cols
        .iter()
        .map(|c| format!("**{:.2}**", c.1.requests_total / c.2))
        .collect();
    let _ = writeln!(o, "| total | {} |\n", totals.join(" | "));
}

/// Replaces (or appends) the section between `<!-- bench:KEY -->` and `<!-- /bench:KEY -->` in `doc`.
pub fn write_section(doc: &Path, key: &str, body: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(doc).unwrap_or_default();
    let open = format!("<!-- bench:{key} -->");
    let close = format!("<!-- /bench:{key} -->");
    let section = format!("{open}\n{body}\n{close}");
    let out = match (text.find(&open), text.find(&close)) {
        (Some(a), Some(b)) if b > a => format!("{}{}{}", &text[..a], section, &text[b + close.len()..]),
        _ => {
            let mut t = text;
            if !t.is_empty() && !t.ends_with("\n\n") {
                t.push('\n');
            }
            t.push_str(&section);
            t.push('\n');
            t
        }
    };
    std::fs::write(doc, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_replaced_in_place() {
        let dir = std::env::temp_dir().join(format!("bench-doc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let doc = dir.join("b.md");
        std::fs::write(&doc, "# B\n\nintro\n").unwrap();
        write_section(&doc, "n=10", "one").unwrap();
        write_section(&doc, "n=20", "two").unwrap();
        write_section(&doc, "n=10", "three").unwrap();
        let t = std::fs::read_to_string(&doc).unwrap();
        assert!(t.starts_with("# B\n\nintro\n"));
        assert!(t.contains("<!-- bench:n=10 -->\nthree\n<!-- /bench:n=10 -->"));
        assert!(t.contains("two"));
        assert!(!t.contains("one"));
        assert!(t.find("three") < t.find("two"), "kept its place");
        assert_eq!(thousands(10000), "10,000");
    }
}
