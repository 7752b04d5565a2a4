//! Lays out the release binary's code hot first. A settled node runs about 2 MB of its 20 MB
//! of code, spread over the whole binary; the kernel maps 64 KiB of file around each page a
//! process touches, so scattered hot code keeps most of the binary resident. Placing the
//! functions a settled node runs (`hot-symbols.txt`, recorded by `scripts/hot-symbols.sh`)
//! next to each other lets those 64 KiB windows hold only hot code.
//!
//! Only where the linker is known to take an ordering file (`hot_layout.rs`). Names in the
//! file that a build no longer has are skipped, so a stale file costs memory, never a build.
//! `SWARM_HOT_SYMBOLS=none` turns it off; `SWARM_HOT_SYMBOLS=<path>` links with another file
//! (the recording script's rounds).

use std::path::PathBuf;
use std::process::Command;

#[path = "hot_layout.rs"]
mod hot_layout;

fn main() {
    println!("cargo:rerun-if-changed=hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=SWARM_HOT_SYMBOLS");
    let file = match std::env::var("SWARM_HOT_SYMBOLS") {
        Ok(v) if v == "none" => return,
        Ok(v) => PathBuf::from(v),
        Err(_) => PathBuf::from(env("CARGO_MANIFEST_DIR")).join("hot-symbols.txt"),
    };
    let applies = hot_layout::applies(
        &env("TARGET"),
        &env("PROFILE"),
        &env("CARGO_ENCODED_RUSTFLAGS"),
        &rustc_version(),
    );
    if !applies {
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

/// What `rustc --version` prints; empty if it cannot be run.
fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .unwrap_or_default()
}
