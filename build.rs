//! Build script: fingerprints the source of every built-in stage kind.
//!
//! A stage's cache key contains the fingerprint of the code that implements its
//! kind, so editing a kind's source invalidates exactly the results of that
//! kind. Kinds live in `src/stages/<kind>.rs` (run by `xp` itself) or
//! `torch/src/kinds/<kind>.rs` (run by `xp-torch`); a kind may also be a folder
//! of that name. The fingerprints reach the crate as `XP_CODE_FINGERPRINTS`, a
//! `kind=hash;...` list.

use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let mut fingerprints = Vec::new();
    for dir in [Path::new("src/stages"), Path::new("torch/src/kinds")] {
        fingerprint_kinds(dir, &mut fingerprints);
    }
    println!("cargo:rustc-env=XP_CODE_FINGERPRINTS={}", fingerprints.join(";"));
}

fn fingerprint_kinds(dir: &Path, fingerprints: &mut Vec<String>) {
    println!("cargo:rerun-if-changed={}", dir.display());
    for path in sorted_children(dir) {
        let kind = match path.file_stem().and_then(|stem| stem.to_str()) {
            Some(kind) if kind != "mod" => kind.to_string(),
            _ => continue,
        };
        let mut hasher = blake3::Hasher::new();
        hash_path(&path, &mut hasher);
        fingerprints.push(format!("{kind}={}", hasher.finalize().to_hex()));
    }
}

fn sorted_children(dir: &Path) -> Vec<PathBuf> {
    let mut children: Vec<PathBuf> = fs::read_dir(dir)
        .map(|read| read.filter_map(|entry| entry.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    children.sort();
    children
}

fn hash_path(path: &Path, hasher: &mut blake3::Hasher) {
    println!("cargo:rerun-if-changed={}", path.display());
    if path.is_dir() {
        for child in sorted_children(path) {
            hash_path(&child, hasher);
        }
    } else if let Ok(bytes) = fs::read(path) {
        hasher.update(path.to_string_lossy().as_bytes());
        hasher.update(&bytes);
    }
}
