//! Build script: links `xp` to libtorch with an rpath, records libtorch's
//! version, and fingerprints the source of every built-in stage kind.
//!
//! A stage's cache key contains the fingerprint of the code that implements its
//! kind, so editing `src/stages/<kind>.rs` invalidates exactly the results of
//! that kind. The fingerprints reach the crate as `XP_CODE_FINGERPRINTS`, a
//! `kind=hash;...` list.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    link_libtorch();
    fingerprint_stage_kinds(Path::new("src/stages"));
}

/// Adds an rpath to libtorch's `lib/` so `xp` starts without `LD_LIBRARY_PATH`,
/// and exports `XP_LIBTORCH_VERSION` read from libtorch's `version.h`.
fn link_libtorch() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let version = match env::var_os("LIBTORCH").map(PathBuf::from) {
        Some(root) => {
            let lib = root.join("lib");
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
            read_torch_version(&root).unwrap_or_else(|| "unknown".to_string())
        }
        None => "unknown (LIBTORCH was not set at build time)".to_string(),
    };
    println!("cargo:rustc-env=XP_LIBTORCH_VERSION={version}");
}

fn read_torch_version(root: &Path) -> Option<String> {
    // PyTorch 2.13 keeps the numbers in `headeronly/version.h`; older
    // releases had them in the C++ API's `version.h`.
    let candidates = ["include/torch/headeronly/version.h", "include/torch/csrc/api/include/torch/version.h"];
    let text = candidates.iter().find_map(|c| fs::read_to_string(root.join(c)).ok().filter(|t| t.contains("TORCH_VERSION_MAJOR")))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(&format!("#define TORCH_VERSION_{name} ")))
            .map(|value| value.trim().to_string())
    };
    Some(format!("{}.{}.{}", field("MAJOR")?, field("MINOR")?, field("PATCH")?))
}

/// Hashes each `src/stages/<kind>.rs` (or `src/stages/<kind>/` folder) into a
/// fingerprint for that kind.
fn fingerprint_stage_kinds(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map(|read| read.filter_map(|entry| entry.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    let mut fingerprints = Vec::new();
    for path in entries {
        let kind = match path.file_stem().and_then(|stem| stem.to_str()) {
            Some(kind) if kind != "mod" => kind.to_string(),
            _ => continue,
        };
        let mut hasher = blake3::Hasher::new();
        hash_path(&path, &mut hasher);
        fingerprints.push(format!("{kind}={}", hasher.finalize().to_hex()));
    }
    println!("cargo:rustc-env=XP_CODE_FINGERPRINTS={}", fingerprints.join(";"));
}

fn hash_path(path: &Path, hasher: &mut blake3::Hasher) {
    println!("cargo:rerun-if-changed={}", path.display());
    if path.is_dir() {
        let mut children: Vec<PathBuf> = fs::read_dir(path)
            .map(|read| read.filter_map(|entry| entry.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        children.sort();
        for child in children {
            hash_path(&child, hasher);
        }
    } else if let Ok(bytes) = fs::read(path) {
        hasher.update(path.to_string_lossy().as_bytes());
        hasher.update(&bytes);
    }
}
