//! A `download` stage run by `xp run`, from a pipeline file with the
//! documented syntax.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

use super::{sha256_hex, DATA, PROXY_VARIABLES};

/// Returns the `xp` binary beside `xp-torch`. Cargo builds it for
/// `cargo test --workspace` but not for `cargo test -p xp-torch` alone.
fn xp_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_xp-torch")).with_file_name("xp");
    assert!(
        path.is_file(),
        "{} is missing; run `cargo build --workspace` first",
        path.display()
    );
    path
}

fn xp(workspace: &std::path::Path, args: &[&str]) -> Output {
    let mut command = Command::new(xp_binary());
    command.args(args).current_dir(workspace);
    for variable in PROXY_VARIABLES
        .iter()
        .chain(&["XP_CACHE", "XP_DISTDIR", "RUST_LOG"])
    {
        command.env_remove(variable);
    }
    command.output().expect("start xp")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn pipeline_downloads_and_caches() {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    let workspace = dir.path();
    let source = workspace.join("upstream/data.csv");
    fs::create_dir_all(source.parent().unwrap()).unwrap();
    fs::write(&source, DATA).unwrap();
    let pipeline = format!(
        r#"name = "data"

[stages.fetch]
kind = "download"
params.max_bytes = 1000

[[stages.fetch.params.files]]
name = "data.csv"
sources = [
  {{ url = "file://{}", sha256 = "{}" }},
]
"#,
        source.display(),
        sha256_hex(DATA)
    );
    fs::write(workspace.join("p.toml"), pipeline).unwrap();
    let downloaded = workspace.join("build/data/fetch/data.csv");

    let first = xp(workspace, &["run", "p.toml"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(fs::read(&downloaded).unwrap(), DATA);

    let second = xp(workspace, &["run", "p.toml"]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("cached  data/fetch"),
        "{}",
        stderr(&second)
    );

    // With the source gone, a forced rerun finds the file in the mirror.
    let distdir = workspace.join("mirror");
    fs::create_dir_all(&distdir).unwrap();
    fs::rename(&source, distdir.join("data.csv")).unwrap();
    let mirror = distdir.to_str().expect("a UTF-8 temporary path");
    let third = xp(
        workspace,
        &["run", "p.toml", "--force", "fetch", "--distdir", mirror],
    );
    assert!(third.status.success(), "{}", stderr(&third));
    assert_eq!(fs::read(&downloaded).unwrap(), DATA);
    let log = fs::read_to_string(workspace.join("cache/logs/data/fetch.log")).unwrap();
    assert!(log.contains("copied 12 bytes, sha256 matches"), "{log}");
}
