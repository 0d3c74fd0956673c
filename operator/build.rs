//! Release builds lay out the functions a running operator uses together at the start of `.text`, in the order of
//! `link-order.txt` (written by `e2e/bench/link-order.sh` from a profiled benchmark run). Resident code is counted
//! in 64 KB windows (the kernel maps a code fault's whole neighbourhood), so grouping the hot functions keeps the
//! provider and generator code a deployment never calls out of memory. docs/benchmarks.md has the figures.
//!
//! On by default for release builds of x86_64-unknown-linux-gnu with a rustup toolchain, whose default linker is the
//! lld it ships (Rust 1.90 on): the toolchain must have `gcc-ld/ld.lld` and RUSTFLAGS must not choose another linker
//! (a distribution's rustc may link with GNU ld, which does not know the option). The names carry hashes of how
//! cargo built each crate, so the file matches the host build it was profiled from (what `cargo build --release`,
//! `cargo install` and the bench produce), not a `--target` build such as the musl image.
//! `SYNCRET_LINK_ORDER=1` turns it on for other builds whose linker understands `--symbol-ordering-file` (lld,
//! mold), `SYNCRET_LINK_ORDER=0` turns it off.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=SYNCRET_LINK_ORDER");
    let wanted = match env::var("SYNCRET_LINK_ORDER").as_deref() {
        Ok("0") => false,
        Ok("1") => true,
        _ => lld_by_default(),
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

/// A release build for x86_64-unknown-linux-gnu that links with the toolchain's own lld.
fn lld_by_default() -> bool {
    let target = env::var("TARGET").unwrap_or_default();
    if env::var("PROFILE").as_deref() != Ok("release") || target != "x86_64-unknown-linux-gnu" {
        return false;
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if ["linker", "fuse-ld", "link-self-contained"]
        .iter()
        .any(|f| flags.contains(f))
    {
        return false;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    sysroot
        .join("lib/rustlib")
        .join(&target)
        .join("bin/gcc-ld/ld.lld")
        .is_file()
}
