//! Release builds lay out the functions a running operator uses together at the start of `.text`, in the order of
//! `link-order.txt` (written by `e2e/bench/link-order.sh` from a profiled benchmark run). Resident code is counted
//! in 64 KB windows (the kernel maps a code fault's whole neighbourhood), so grouping the hot functions keeps the
//! provider and generator code a deployment never calls out of memory. docs/benchmarks.md has the figures.
//!
//! On by default for release builds of x86_64-unknown-linux-gnu, whose default linker is lld (Rust 1.90 on). The names
//! carry hashes of how cargo built each crate, so the file matches the host build it was profiled from (what
//! `cargo build --release`, `cargo install` and the bench produce), not a `--target` build such as the musl image.
//! `SYNCRET_LINK_ORDER=1` turns it on for other builds whose linker understands `--symbol-ordering-file` (lld,
//! mold), `SYNCRET_LINK_ORDER=0` turns it off.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=SYNCRET_LINK_ORDER");
    let profile = env::var("PROFILE").unwrap_or_default();
    let target = env::var("TARGET").unwrap_or_default();
    let wanted = match env::var("SYNCRET_LINK_ORDER").as_deref() {
        Ok("0") => false,
        Ok("1") => true,
        _ => profile == "release" && target == "x86_64-unknown-linux-gnu",
    };
    let file = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("link-order.txt");
    if wanted && file.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=syncret=-Wl,--symbol-ordering-file={}",
            file.display()
        );
        // Symbols of an older profile that no longer exist are expected, not worth a warning.
        println!("cargo:rustc-link-arg-bin=syncret=-Wl,--no-warn-symbol-ordering");
    }
}
