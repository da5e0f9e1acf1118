//! Build script: fingerprints the source of every stage kind.
//!
//! A stage's cache key contains the fingerprint of the code that implements its
//! kind, so editing that code invalidates the results of that kind and no
//! others. The fingerprints reach the crate as `XP_CODE_FINGERPRINTS`, a
//! `kind=hash;...` list:
//! - `shell`: `src/stages/shell.rs` and the process runner it uses;
//! - each kind built in to `xp-torch`: its `torch/src/kinds/<kind>.rs` (or a
//!   folder of that name) together with every `xp-torch` source outside
//!   `torch/src/kinds/`, which the kinds share (models, data, plots).

use std::fs;
use std::path::{Path, PathBuf};

const TORCH_SOURCES: &str = "torch/src";
const TORCH_KINDS: &str = "torch/src/kinds";

fn main() {
    let mut fingerprints = Vec::new();
    let shell = [Path::new("src/stages/shell.rs"), Path::new("src/exec/process.rs")];
    fingerprints.push(format!("shell={}", hash_all(&shell)));

    let shared: Vec<PathBuf> = files_under(Path::new(TORCH_SOURCES))
        .into_iter()
        .filter(|path| !path.starts_with(TORCH_KINDS))
        .collect();
    for kind_path in sorted_children(Path::new(TORCH_KINDS)) {
        let kind = match kind_path.file_stem().and_then(|stem| stem.to_str()) {
            Some(kind) if kind != "mod" => kind.to_string(),
            _ => continue,
        };
        let mut paths = files_under(&kind_path);
        paths.extend(shared.iter().cloned());
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        fingerprints.push(format!("{kind}={}", hash_all(&refs)));
    }
    println!("cargo:rustc-env=XP_CODE_FINGERPRINTS={}", fingerprints.join(";"));
}

/// Hashes the paths and contents of `paths`; each is declared as a build input.
fn hash_all(paths: &[&Path]) -> String {
    let mut hasher = blake3::Hasher::new();
    for path in paths {
        println!("cargo:rerun-if-changed={}", path.display());
        hasher.update(path.to_string_lossy().as_bytes());
        hasher.update(b"\0");
        hasher.update(&fs::read(path).unwrap_or_default());
    }
    hasher.finalize().to_hex().to_string()
}

/// Every file under `path` (or `path` itself when it is a file), sorted.
fn files_under(path: &Path) -> Vec<PathBuf> {
    println!("cargo:rerun-if-changed={}", path.display());
    if !path.is_dir() {
        return vec![path.to_path_buf()];
    }
    sorted_children(path).iter().flat_map(|child| files_under(child)).collect()
}

fn sorted_children(dir: &Path) -> Vec<PathBuf> {
    let mut children: Vec<PathBuf> = fs::read_dir(dir)
        .map(|read| read.filter_map(|entry| entry.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    children.sort();
    children
}
