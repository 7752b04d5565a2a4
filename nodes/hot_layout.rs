//! When the release build gets the hot-first code layout (`build.rs` says why). Used by the
//! build script; the node's tests check it (`main.rs`).

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
