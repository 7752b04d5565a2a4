//! Whole-file replacement that neither a crash, a power cut nor a second writer can leave
//! half-written: every state file (votes, the pinned cadence, energy totals, the config, the
//! certificates and the roster) is written through here.
//!
//! The bytes go to a temporary file of a name no other writer uses, `.<name>.<pid>.<n>.tmp`
//! in the same directory, which is flushed to disk and then renamed over the file; the
//! directory is flushed too, so the rename itself survives a power cut. A reader sees the old
//! file or the new one, never a mix, and of two writers at once the last rename wins whole.
//! On an error the temporary file is removed and the old file is left as it was.
//!
//! A file that exists keeps its permission bits and, where the writer may set them, its owner
//! and group: an operator's `chmod 600 roster` or `chgrp swarm-node swarm.toml` outlives the
//! next rewrite.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The permission bits a file is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A file that exists keeps its bits; a new one gets these, less the umask.
    KeepOr(u32),
    /// Exactly these bits, whatever the file had before (private keys).
    Exact(u32),
}

/// State and config files: a new one is readable by all (less the umask), as `fs::write`
/// would make it; an existing one keeps its mode.
pub const STATE: Mode = Mode::KeepOr(0o644);

/// Private keys: the owner only, always.
pub const SECRET: Mode = Mode::Exact(0o600);

/// Replaces `path` with `bytes` durably, creating its directory if need be; see [`STATE`].
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, bytes, STATE)
}

/// Replaces `path` with `bytes` durably, creating its directory if need be, with `mode`.
pub fn write_with(path: &Path, bytes: &[u8], mode: Mode) -> std::io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{}: not a file name", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let old = match std::fs::metadata(path) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    // Private until its final mode is set: the bytes may be a secret.
    let create_mode = match (mode, &old) {
        (Mode::KeepOr(new), None) => new,
        _ => 0o600,
    };
    let (file, tmp) = create_unique(dir, name, create_mode)?;
    let written = fill(&file, bytes, mode, old.as_ref());
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

/// Writes, sets owner and mode, and flushes the temporary file.
fn fill(
    mut file: &File,
    bytes: &[u8],
    mode: Mode,
    old: Option<&std::fs::Metadata>,
) -> std::io::Result<()> {
    file.write_all(bytes)?;
    if let Some(old) = old {
        let now = file.metadata()?;
        if (now.uid(), now.gid()) != (old.uid(), old.gid()) {
            // Only root may give a file away, and a user may pick only among their own
            // groups: where that fails, the file is the writer's, as any new file would be.
            if std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid())).is_err() {
                let _ = std::os::unix::fs::fchown(file, None, Some(old.gid()));
            }
        }
    }
    let bits = match (mode, old) {
        (Mode::Exact(bits), _) => Some(bits),
        (Mode::KeepOr(_), Some(old)) => Some(old.permissions().mode() & 0o7777),
        (Mode::KeepOr(_), None) => None,
    };
    if let Some(bits) = bits {
        file.set_permissions(Permissions::from_mode(bits))?;
    }
    file.sync_all()
}

/// Tells temporary files of this process apart.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new file `.<name>.<pid>.<n>.tmp` in `dir`: the pid sets processes apart and the counter
/// threads; a name taken anyway (another pid namespace, a crashed run) is skipped.
fn create_unique(
    dir: &Path,
    name: &std::ffi::OsStr,
    mode: u32,
) -> std::io::Result<(File, PathBuf)> {
    let pid = std::process::id();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{pid}.{n}.tmp"));
        let tmp = dir.join(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(file) => return Ok((file, tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn names(dir: &Path) -> Vec<std::ffi::OsString> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    }

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn atomic_write_replaces_the_whole_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        write(&path, b"first, longer").unwrap();
        write(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(names(path.parent().unwrap()), ["state.json"]);
    }

    #[test]
    fn atomic_write_keeps_an_existing_files_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roster");
        write(&path, b"a").unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o600)).unwrap();
        write(&path, b"b").unwrap();
        assert_eq!(mode_of(&path), 0o600);
        std::fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        write_with(&path, b"c", Mode::KeepOr(0o600)).unwrap();
        assert_eq!(mode_of(&path), 0o640);
        assert_eq!(std::fs::read(&path).unwrap(), b"c");
    }

    #[test]
    fn atomic_write_secret_is_owner_only_new_or_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.key");
        write_with(&path, b"k1", SECRET).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        write_with(&path, b"k2", SECRET).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        // A new state file is never more open than 0644.
        let state = dir.path().join("energy.json");
        write(&state, b"{}").unwrap();
        assert_eq!(mode_of(&state) & !0o644, 0);
    }

    #[test]
    fn atomic_write_by_many_threads_at_once_leaves_one_whole_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("votes.json");
        let contents: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 64 * 1024]).collect();
        std::thread::scope(|s| {
            for content in &contents {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..5 {
                        write(path, content).unwrap();
                    }
                });
            }
        });
        let written = std::fs::read(&path).unwrap();
        assert!(contents.contains(&written), "a mix of writers' bytes");
        assert_eq!(names(dir.path()), ["votes.json"]);
    }

    #[test]
    fn atomic_write_that_fails_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        write(&path, b"old").unwrap();
        // A directory in the way: the temporary file is written, the rename fails.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("inside"), b"x").unwrap();
        assert!(write(&blocked, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["blocked", "pin"]);
        assert!(write(Path::new("/"), b"x").is_err());
    }
}
