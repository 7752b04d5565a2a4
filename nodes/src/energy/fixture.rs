//! Fake sysfs trees for tests: one file, its directories made as needed.

use std::path::Path;

pub fn put(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    let dir = path.parent().expect("a file below the root");
    std::fs::create_dir_all(dir).expect("creating fixture directories");
    std::fs::write(&path, text).expect("writing a fixture file");
}
