//! The hot-first code layout of the release binaries. A settled process runs a small part of
//! its 20 MB of code, spread over the whole binary; the kernel maps 64 KiB of file around each
//! page a process touches, so scattered hot code keeps most of the binary resident. Placing the
//! functions a workload runs (`hot-symbols.txt` beside each crate's manifest, recorded by
//! `scripts/hot-symbols.sh`) next to each other lets those 64 KiB windows hold only hot code.
//!
//! Included by the build scripts of `swarm-node` and `swarm-bridge` (`#[path]`, so that neither
//! crate gains a build dependency: that would change every mangled name the files hold). The
//! node's tests check the rule (`nodes/src/main.rs`).
//!
//! Names in the file that a build no longer has are skipped, so a stale file costs memory,
//! never a build. `SWARM_HOT_SYMBOLS=none` turns it off; `SWARM_HOT_SYMBOLS=<path>` links with
//! another file (the recording script's rounds).

use std::path::PathBuf;
use std::process::Command;

/// Tells cargo to link the binary `bin` with the crate's `hot-symbols.txt` as its function
/// order, where the linker is known to take one (`applies`).
pub fn link_hot_first(bin: &str) {
    println!("cargo:rerun-if-changed=hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=SWARM_HOT_SYMBOLS");
    let file = match std::env::var("SWARM_HOT_SYMBOLS") {
        Ok(v) if v == "none" => return,
        Ok(v) => PathBuf::from(v),
        Err(_) => PathBuf::from(env("CARGO_MANIFEST_DIR")).join("hot-symbols.txt"),
    };
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if !applies(
        &env("TARGET"),
        &env("PROFILE"),
        &env("CARGO_ENCODED_RUSTFLAGS"),
        &version_of(&rustc),
    ) {
        return;
    }
    let Some(file) = file.to_str() else {
        println!("cargo:warning=hot code layout skipped: path {file:?} is not UTF-8");
        return;
    };
    println!("cargo:rerun-if-changed={file}");
    println!("cargo:rustc-link-arg-bin={bin}=-Wl,--symbol-ordering-file={file}");
    println!("cargo:rustc-link-arg-bin={bin}=-Wl,--no-warn-symbol-ordering");
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// What `<rustc> --version` prints; empty if it cannot be run.
fn version_of(rustc: &str) -> String {
    Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .unwrap_or_default()
}

/// Whether a build for `target` and `profile` (cargo's `PROFILE`), with the encoded RUSTFLAGS
/// `rustflags`, by the compiler whose `rustc --version` printed `rustc_version`, links with
/// rust-lld, the linker that takes the ordering file: rustc's default for x86_64 Linux since
/// 1.90, unless RUSTFLAGS choose another (`-C linker`, `-C link-arg=-fuse-ld=…`; GNU ld
/// refuses the file). A linker set in a cargo config (`target.<triple>.linker`) is not
/// visible to a build script: `SWARM_HOT_SYMBOLS=none` is the way out if it does not take
/// `--symbol-ordering-file`.
pub fn applies(target: &str, profile: &str, rustflags: &str, rustc_version: &str) -> bool {
    target == "x86_64-unknown-linux-gnu"
        && profile == "release"
        && !["linker", "link-self-contained", "fuse-ld"]
            .iter()
            .any(|flag| rustflags.contains(flag))
        && rustc_minor(rustc_version).is_some_and(|minor| minor >= 90)
}

/// 95 from "rustc 1.95.0 (59807616e 2026-04-14)".
fn rustc_minor(version: &str) -> Option<u32> {
    let mut parts = version.split_whitespace().nth(1)?.split('.');
    (parts.next()? == "1").then_some(())?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::applies;

    const X86: &str = "x86_64-unknown-linux-gnu";
    const RUSTC: &str = "rustc 1.95.0 (59807616e 2026-04-14)";

    #[test]
    fn a_release_build_for_x86_64_linux_with_a_recent_rustc_gets_the_layout() {
        assert!(applies(X86, "release", "", RUSTC));
        assert!(applies(
            X86,
            "release",
            "-Ctarget-cpu=native",
            "rustc 1.90.0-beta.3"
        ));
    }

    #[test]
    fn other_targets_profiles_linkers_and_old_or_unreadable_compilers_do_not() {
        assert!(!applies("aarch64-unknown-linux-gnu", "release", "", RUSTC));
        assert!(!applies(X86, "debug", "", RUSTC));
        assert!(!applies(X86, "release", "-Clink-arg=-fuse-ld=bfd", RUSTC));
        assert!(!applies(X86, "release", "-Clinker=clang", RUSTC));
        assert!(!applies(
            X86,
            "release",
            "-Clink-self-contained=-linker",
            RUSTC
        ));
        assert!(!applies(
            X86,
            "release",
            "",
            "rustc 1.89.0 (29483883e 2025-08-04)"
        ));
        assert!(!applies(X86, "release", "", "rustc 2.0.0"));
        assert!(!applies(X86, "release", "", "rustc"));
        assert!(!applies(X86, "release", "", ""));
    }
}
