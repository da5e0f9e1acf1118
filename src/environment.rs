//! The machine and software a result was computed with, as recorded in lock
//! files and audit reports.

use std::fs;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The parts of the environment that can change a stage's outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub xp_version: String,
    /// `None` when no stage uses libtorch, or `xp-torch` could not report it.
    pub libtorch_version: Option<String>,
    pub cpu_model: String,
    /// Logical CPUs available to `xp`.
    pub cpus: usize,
    /// Distribution name and kernel release.
    pub os: String,
}

impl Environment {
    /// Reads the environment of this process. It runs `xp-torch info` for
    /// libtorch's version only when `uses_torch` is set, because that loads libtorch.
    pub fn current(uses_torch: bool) -> Self {
        Environment {
            xp_version: env!("CARGO_PKG_VERSION").to_string(),
            libtorch_version: if uses_torch { libtorch_version() } else { None },
            cpu_model: cpu_model(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: os_name(),
        }
    }

    /// Lists the fields that differ in `newer`, as `name: old -> new`.
    pub fn differences(&self, newer: &Environment) -> Vec<String> {
        let mut found = Vec::new();
        let mut compare = |name: &str, old: String, new: String| {
            if old != new {
                found.push(format!("{name}: {old} -> {new}"));
            }
        };
        compare("xp version", self.xp_version.clone(), newer.xp_version.clone());
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        compare("libtorch version", show(&self.libtorch_version), show(&newer.libtorch_version));
        compare("CPU model", self.cpu_model.clone(), newer.cpu_model.clone());
        compare("CPUs", self.cpus.to_string(), newer.cpus.to_string());
        compare("OS", self.os.clone(), newer.os.clone());
        found
    }
}

fn cpu_model() -> String {
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            (name.trim() == "model name").then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn os_name() -> String {
    let release = fs::read_to_string("/etc/os-release").unwrap_or_default();
    let distribution = release
        .lines()
        .find_map(|line| line.strip_prefix("PRETTY_NAME="))
        .map(|name| name.trim_matches('"').to_string())
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    match fs::read_to_string("/proc/sys/kernel/osrelease") {
        Ok(kernel) => format!("{distribution}, kernel {}", kernel.trim()),
        Err(_) => distribution,
    }
}

/// Returns the libtorch version that `xp-torch`, installed next to `xp`, was built with.
fn libtorch_version() -> Option<String> {
    let path = crate::stages::xp_torch_path().ok().filter(|p| p.exists())?;
    let output = Command::new(path).arg("info").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().find_map(|line| line.strip_prefix("libtorch: ").map(str::to_string))
}
