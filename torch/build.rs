//! Links `xp-torch` to libtorch with an rpath, so it starts without
//! `LD_LIBRARY_PATH`, and records libtorch's version as `XP_LIBTORCH_VERSION`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let version = match env::var_os("LIBTORCH").map(PathBuf::from) {
        Some(root) => {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", root.join("lib").display());
            read_torch_version(&root).unwrap_or_else(|| "unknown".to_string())
        }
        None => "unknown (LIBTORCH was not set at build time)".to_string(),
    };
    println!("cargo:rustc-env=XP_LIBTORCH_VERSION={version}");
}

fn read_torch_version(root: &Path) -> Option<String> {
    // PyTorch 2.13 keeps the numbers in `headeronly/version.h`; older
    // releases had them in the C++ API's `version.h`.
    let candidates = [
        "include/torch/headeronly/version.h",
        "include/torch/csrc/api/include/torch/version.h",
    ];
    let text = candidates.iter().find_map(|candidate| {
        fs::read_to_string(root.join(candidate))
            .ok()
            .filter(|text| text.contains("TORCH_VERSION_MAJOR"))
    })?;
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(&format!("#define TORCH_VERSION_{name} ")))
            .map(|value| value.trim().to_string())
    };
    Some(format!("{}.{}.{}", field("MAJOR")?, field("MINOR")?, field("PATCH")?))
}
