//! Lays out the release binary's code hot first. A settled node runs about 2 MB of its 20 MB
//! of code, spread over the whole binary; the kernel maps 64 KiB of file around each page a
//! process touches, so scattered hot code keeps most of the binary resident. Placing the
//! functions a settled node runs (`hot-symbols.txt`, recorded by `scripts/hot-symbols.sh`)
//! next to each other lets those 64 KiB windows hold only hot code.
//!
//! Only where the linker is known to take an ordering file: rust-lld, rustc's default linker
//! for x86_64 Linux since 1.90. Names in the file that a build no longer has are skipped, so
//! a stale file costs memory, never a build. `SWARM_HOT_SYMBOLS=none` turns it off;
//! `SWARM_HOT_SYMBOLS=<path>` links with another file (the recording script's rounds).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=SWARM_HOT_SYMBOLS");
    let file = match std::env::var("SWARM_HOT_SYMBOLS") {
        Ok(v) if v == "none" => return,
        Ok(v) => PathBuf::from(v),
        Err(_) => PathBuf::from(env("CARGO_MANIFEST_DIR")).join("hot-symbols.txt"),
    };
    if env("PROFILE") != "release" || !links_with_rust_lld() {
        return;
    }
    let Some(file) = file.to_str() else {
        println!("cargo:warning=hot code layout skipped: path {file:?} is not UTF-8");
        return;
    };
    println!("cargo:rerun-if-changed={file}");
    println!("cargo:rustc-link-arg-bin=swarm-node=-Wl,--symbol-ordering-file={file}");
    println!("cargo:rustc-link-arg-bin=swarm-node=-Wl,--no-warn-symbol-ordering");
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// x86_64 Linux with rustc 1.90 or later and no linker chosen in RUSTFLAGS. A linker set in
/// a cargo config (`target.<triple>.linker`) is not visible here: `SWARM_HOT_SYMBOLS=none`
/// is the way out if it does not take `--symbol-ordering-file`.
fn links_with_rust_lld() -> bool {
    let flags = env("CARGO_ENCODED_RUSTFLAGS");
    env("TARGET") == "x86_64-unknown-linux-gnu"
        && !flags.contains("linker")
        && !flags.contains("link-self-contained")
        && rustc_minor().is_some_and(|minor| minor >= 90)
}

fn rustc_minor() -> Option<u32> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().ok()?;
    // "rustc 1.95.0 (…)"
    let version = String::from_utf8(out.stdout).ok()?;
    let mut parts = version.split_whitespace().nth(1)?.split('.');
    (parts.next()? == "1").then_some(())?;
    parts.next()?.parse().ok()
}
