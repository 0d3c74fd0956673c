//! Peak memory of the template bombs of issue 22, rendered by the engine alone with no render budget (the engine
//! before the budget: only the per-template [`Limits`]) and with the default one ([`DEFAULT_BUDGET`]). Each
//! render runs in a child process of its own (this program again, under `prlimit --as` so that a bomb cannot take
//! the machine), which reports its peak RSS (`VmHWM`).
//!
//! ```sh
//! cargo run --release -p syncret-template --example bombs
//! ```
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]
use std::collections::BTreeMap;

use syncret_template::{Budget, DEFAULT_BUDGET, Delims, Template, Value};

/// (name, the keys of one render: all share one budget).
const BOMBS: &[(&str, &[&str])] = &[
    ("until 16777216", &["{{ len (until 16777216) }}"]),
    (
        "four keys repeat 16000000",
        &[
            r#"{{ repeat 16000000 "A" }}"#,
            r#"{{ repeat 16000000 "A" }}"#,
            r#"{{ repeat 16000000 "A" }}"#,
            r#"{{ repeat 16000000 "A" }}"#,
        ],
    ),
    (
        "list doubled 40 times, toJson",
        &["{{ $a := list 1 }}{{ range until 40 }}{{ $a = list $a $a }}{{ end }}{{ $a | toJson }}"],
    ),
    (
        "a small legitimate template",
        &[r#"{{ printf "%s:%s" .user .password | b64enc }}"#],
    ),
];

/// The address-space cap of a child (3 GiB): a bomb that passes it fails to allocate instead of taking the machine.
const CHILD_AS_LIMIT: &str = "3221225472";

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// In the child: render bomb `index` with a budget of `budget` bytes; print peak RSS (KiB) and the outcome.
fn child(index: usize, budget: usize) {
    let data = BTreeMap::from([
        ("user".to_string(), b"app".to_vec()),
        ("password".to_string(), b"s3cr3t".to_vec()),
    ]);
    let budget = Budget::new(budget);
    let dot = Value::from_data_in(&data, &budget).unwrap();
    let mut outcome = String::from("renders");
    let mut kept = Vec::new();
    for (i, src) in BOMBS[index].1.iter().enumerate() {
        let key = format!("k{i}");
        match Template::parse(&key, src, &Delims::default())
            .unwrap()
            .execute_in(&dot, &budget)
        {
            // The rendered values stay alive until the Secret is built, as in the operator.
            Ok(out) => kept.push(out),
            Err(e) => {
                let msg = e.message;
                let at = msg.find(" at <").map_or(0, |i| i + 1);
                outcome = format!("key {i}: {}", &msg[at..]);
                break;
            }
        }
    }
    println!("{} {outcome}", peak_rss_kib());
    std::hint::black_box(kept);
}

fn run(index: usize, budget: usize) -> (f64, String) {
    let me = std::env::current_exe().unwrap();
    let mut cmd = if std::path::Path::new("/usr/bin/prlimit").exists() {
        let mut c = std::process::Command::new("/usr/bin/prlimit");
        c.arg(format!("--as={CHILD_AS_LIMIT}")).arg("--").arg(&me);
        c
    } else {
        std::process::Command::new(&me)
    };
    let out = cmd
        .args(["--child", &index.to_string(), &budget.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().split_once(' ') {
        Some((kib, outcome)) if out.status.success() => {
            (kib.parse::<f64>().unwrap_or(0.0) / 1024.0, outcome.to_string())
        }
        _ => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why = match stderr.lines().find(|l| l.contains("memory allocation of")) {
                Some(line) => format!("aborted at the 3 GiB cap: {line}"),
                None => format!("child failed ({}): {}", out.status, stderr.lines().last().unwrap_or("")),
            };
            (f64::NAN, why)
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child(args[1].parse().unwrap(), args[2].parse().unwrap());
        return;
    }
    println!(
        "| bomb | peak RSS, no budget (MiB) | outcome | peak RSS, budget {} MiB (MiB) | outcome |",
        DEFAULT_BUDGET >> 20
    );
    println!("|---|---:|---|---:|---|");
    for (i, (name, _)) in BOMBS.iter().enumerate() {
        let (free_rss, free_outcome) = run(i, usize::MAX);
        let (rss, outcome) = run(i, DEFAULT_BUDGET);
        println!("| `{name}` | {free_rss:.1} | {free_outcome} | {rss:.1} | {outcome} |");
    }
}
