//! Tests of the `download` stage kind through the `xp-torch` binary, against
//! a loopback HTTP server that each test starts for itself, and one test
//! through `xp run`. No test reaches any other address.

mod pipeline;
mod server;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use md5::Md5;
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};
use xp::stages::StageJob;

use server::{Reply, Server};

const DATA: &[u8] = b"x,y\n1,2\n3,4\n";

/// Proxy variables that would send loopback requests elsewhere.
const PROXY_VARIABLES: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Returns a source with the sha256 of [`DATA`].
fn source(url: &str) -> Json {
    json!({ "url": url, "sha256": sha256_hex(DATA) })
}

/// Returns a `files` parameter with one file, `data.csv`, from `sources`.
fn one_file(sources: Vec<Json>) -> Json {
    json!({ "files": [{ "name": "data.csv", "sources": sources }] })
}

/// A temporary folder with the stage's output folder and room for fixtures.
struct Scratch {
    dir: tempfile::TempDir,
}

/// The result of one `xp-torch stage` run.
struct Outcome {
    success: bool,
    stderr: String,
    /// The names in the output folder afterwards, sorted.
    files: Vec<String>,
    /// The content of each file in the output folder, read before the
    /// temporary folder is removed.
    contents: BTreeMap<String, Vec<u8>>,
    elapsed: Duration,
}

impl Outcome {
    fn read(&self, name: &str) -> &[u8] {
        self.contents
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in the output"))
    }
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("create a temporary folder"),
        }
    }

    /// Writes `bytes` to `rel` and returns its absolute path.
    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(rel);
        fs::create_dir_all(path.parent().expect("a joined path has a parent")).unwrap();
        fs::write(&path, bytes).unwrap();
        path
    }

    fn run(&self, params: Json, distdir: Option<&Path>) -> Outcome {
        let output = self.dir.path().join("out");
        fs::create_dir_all(&output).unwrap();
        let job = StageJob {
            stage: "test/download".to_string(),
            kind: "download".to_string(),
            workspace: self.dir.path().to_path_buf(),
            params: serde_json::from_value(params).expect("params are xp values"),
            output: output.clone(),
            upstream: Vec::new(),
            threads: 1,
            distdir: distdir.map(Path::to_path_buf),
        };

        let job_path = self.dir.path().join("job.json");
        fs::write(&job_path, serde_json::to_string(&job).unwrap()).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_xp-torch"));
        command.arg("stage").arg(&job_path);
        for variable in PROXY_VARIABLES {
            command.env_remove(variable);
        }

        let start = Instant::now();
        let result = command.output().expect("start xp-torch");
        let elapsed = start.elapsed();

        let mut contents = BTreeMap::new();
        for entry in fs::read_dir(&output).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            contents.insert(name, fs::read(&path).unwrap());
        }
        Outcome {
            success: result.status.success(),
            stderr: String::from_utf8_lossy(&result.stderr).into_owned(),
            files: contents.keys().cloned().collect(),
            contents,
            elapsed,
        }
    }
}

/// Asserts that the run succeeded and left exactly `data.csv` with [`DATA`].
fn assert_downloaded(outcome: &Outcome) {
    assert!(outcome.success, "the stage failed:\n{}", outcome.stderr);
    assert_eq!(outcome.files, ["data.csv"], "{}", outcome.stderr);
    assert_eq!(outcome.read("data.csv"), DATA);
}

/// Asserts that the run failed and left the output folder empty.
fn assert_failed_clean(outcome: &Outcome) {
    assert!(!outcome.success, "the stage succeeded:\n{}", outcome.stderr);
    assert!(
        outcome.files.is_empty(),
        "left {:?}\n{}",
        outcome.files,
        outcome.stderr
    );
}

#[test]
fn http_source_succeeds() {
    let server = Server::start(&[("/data.csv", vec![Reply::Body(DATA.to_vec())])]);
    let outcome = Scratch::new().run(one_file(vec![source(&server.url("/data.csv"))]), None);
    assert_downloaded(&outcome);
    assert_eq!(server.requests(), ["/data.csv"]);
    assert!(outcome.stderr.contains("attempt 1/3"), "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("ok, 12 bytes, sha256 matches"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn checksum_mismatch_tries_next_source() {
    let server = Server::start(&[
        ("/bad", vec![Reply::Body(b"tampered".to_vec())]),
        ("/good", vec![Reply::Body(DATA.to_vec())]),
    ]);
    let sources = vec![source(&server.url("/bad")), source(&server.url("/good"))];
    let outcome = Scratch::new().run(one_file(sources), None);
    assert_downloaded(&outcome);
    assert_eq!(server.count("/bad"), 1, "a mismatch must not be retried");
    assert!(
        outcome.stderr.contains("checksum mismatch"),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains(&sha256_hex(b"tampered")),
        "{}",
        outcome.stderr
    );
}

#[test]
fn not_found_is_not_retried() {
    let server = Server::start(&[("/good", vec![Reply::Body(DATA.to_vec())])]);
    let sources = vec![
        source(&server.url("/missing")),
        source(&server.url("/good")),
    ];
    let outcome = Scratch::new().run(one_file(sources), None);
    assert_downloaded(&outcome);
    assert_eq!(server.requests(), ["/missing", "/good"]);
    assert!(
        outcome.stderr.contains("HTTP 404 Not Found"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn server_error_is_retried() {
    let server = Server::start(&[(
        "/flaky",
        vec![
            Reply::Status(500),
            Reply::Status(503),
            Reply::Body(DATA.to_vec()),
        ],
    )]);
    let outcome = Scratch::new().run(one_file(vec![source(&server.url("/flaky"))]), None);
    assert_downloaded(&outcome);
    assert_eq!(server.count("/flaky"), 3);
    assert!(
        outcome
            .stderr
            .contains("HTTP 500 Internal Server Error; retrying in 0.2 s"),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome
            .stderr
            .contains("HTTP 503 Service Unavailable; retrying in 0.4 s"),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.elapsed >= Duration::from_millis(600),
        "no backoff: {:?}",
        outcome.elapsed
    );
}

#[test]
fn dropped_connection_is_retried_then_skipped() {
    let cut = Reply::Truncated {
        declared: 100,
        sent: DATA.to_vec(),
    };
    let server = Server::start(&[
        ("/cut", vec![cut]),
        ("/good", vec![Reply::Body(DATA.to_vec())]),
    ]);
    let sources = vec![source(&server.url("/cut")), source(&server.url("/good"))];
    let outcome = Scratch::new().run(one_file(sources), None);
    assert_downloaded(&outcome);
    assert_eq!(server.count("/cut"), 3, "a dropped connection is retried");
    assert!(
        outcome.stderr.contains("of 100 bytes"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn dropped_connection_keeps_nothing() {
    let cut = Reply::Truncated {
        declared: 100,
        sent: DATA.to_vec(),
    };
    let server = Server::start(&[("/cut", vec![cut])]);
    let outcome = Scratch::new().run(one_file(vec![source(&server.url("/cut"))]), None);
    assert_failed_clean(&outcome);
}

#[test]
fn redirects_are_followed() {
    let server = Server::start(&[
        ("/a/first", vec![Reply::Redirect("second".to_string())]),
        ("/a/second", vec![Reply::Redirect("/data.csv".to_string())]),
        ("/data.csv", vec![Reply::Body(DATA.to_vec())]),
    ]);
    let outcome = Scratch::new().run(one_file(vec![source(&server.url("/a/first"))]), None);
    assert_downloaded(&outcome);
    assert_eq!(server.requests(), ["/a/first", "/a/second", "/data.csv"]);
}

#[test]
fn redirect_loop_fails() {
    let server = Server::start(&[("/loop", vec![Reply::Redirect("/loop".to_string())])]);
    let outcome = Scratch::new().run(one_file(vec![source(&server.url("/loop"))]), None);
    assert_failed_clean(&outcome);
    assert_eq!(
        server.count("/loop"),
        6,
        "the first request and 5 redirects"
    );
    assert!(
        outcome.stderr.contains("more than 5 redirects"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn redirect_to_file_url_is_rejected() {
    let scratch = Scratch::new();
    let local = scratch.write("secret/data.csv", DATA);
    let target = format!("file://{}", local.display());
    let server = Server::start(&[("/escape", vec![Reply::Redirect(target.clone())])]);
    let outcome = scratch.run(one_file(vec![source(&server.url("/escape"))]), None);
    assert_failed_clean(&outcome);
    let expected = format!("redirect to `{target}` rejected");
    assert!(outcome.stderr.contains(&expected), "{}", outcome.stderr);
}

#[test]
fn file_url_source_succeeds() {
    let scratch = Scratch::new();
    let local = scratch.write("mirror dir/data.csv", DATA);
    let url = format!("file://{}", local.display()).replace(' ', "%20");
    let outcome = scratch.run(one_file(vec![source(&url)]), None);
    assert_downloaded(&outcome);
}

#[test]
fn md5_source_succeeds() {
    let server = Server::start(&[("/data.csv", vec![Reply::Body(DATA.to_vec())])]);
    let md5 = json!({ "url": server.url("/data.csv"), "md5": md5_hex(DATA).to_uppercase() });
    let outcome = Scratch::new().run(one_file(vec![md5]), None);
    assert_downloaded(&outcome);
    assert!(outcome.stderr.contains("md5 matches"), "{}", outcome.stderr);
}

#[test]
fn md5_mismatch_is_rejected() {
    let server = Server::start(&[("/data.csv", vec![Reply::Body(b"other".to_vec())])]);
    let md5 = json!({ "url": server.url("/data.csv"), "md5": md5_hex(DATA) });
    let outcome = Scratch::new().run(one_file(vec![md5]), None);
    assert_failed_clean(&outcome);
    let expected = format!("got md5 {}", md5_hex(b"other"));
    assert!(outcome.stderr.contains(&expected), "{}", outcome.stderr);
}

#[test]
fn distdir_hit_makes_no_request() {
    let scratch = Scratch::new();
    let distdir = scratch
        .write("distdir/data.csv", DATA)
        .parent()
        .unwrap()
        .to_path_buf();
    let server = Server::start(&[("/data.csv", vec![Reply::Body(DATA.to_vec())])]);
    let outcome = scratch.run(
        one_file(vec![source(&server.url("/data.csv"))]),
        Some(&distdir),
    );
    assert_downloaded(&outcome);
    assert!(
        server.requests().is_empty(),
        "requests: {:?}",
        server.requests()
    );
    assert!(
        outcome.stderr.contains("copied 12 bytes"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn distdir_matches_any_source() {
    let scratch = Scratch::new();
    let distdir = scratch
        .write("distdir/data.csv", DATA)
        .parent()
        .unwrap()
        .to_path_buf();
    let server = Server::start(&[]);
    let wrong = json!({ "url": server.url("/a"), "sha256": sha256_hex(b"other") });
    let md5 = json!({ "url": server.url("/b"), "md5": md5_hex(DATA) });
    let outcome = scratch.run(one_file(vec![wrong, md5]), Some(&distdir));
    assert_downloaded(&outcome);
    assert!(
        server.requests().is_empty(),
        "requests: {:?}",
        server.requests()
    );
}

#[test]
fn distdir_wrong_checksum_is_ignored() {
    let scratch = Scratch::new();
    let distdir = scratch
        .write("distdir/data.csv", b"stale")
        .parent()
        .unwrap()
        .to_path_buf();
    let server = Server::start(&[("/data.csv", vec![Reply::Body(DATA.to_vec())])]);
    let outcome = scratch.run(
        one_file(vec![source(&server.url("/data.csv"))]),
        Some(&distdir),
    );
    assert_downloaded(&outcome);
    assert_eq!(server.count("/data.csv"), 1);
    assert!(
        outcome
            .stderr
            .contains("ignored, its checksum matches no source"),
        "{}",
        outcome.stderr
    );
    assert_eq!(
        fs::read(distdir.join("data.csv")).unwrap(),
        b"stale",
        "the mirror is read-only"
    );
}

#[test]
fn every_failure_is_listed() {
    let scratch = Scratch::new();
    let server = Server::start(&[
        ("/down", vec![Reply::Status(500)]),
        ("/bad", vec![Reply::Body(b"tampered".to_vec())]),
    ]);
    let missing = format!("file://{}", scratch.dir.path().join("absent.csv").display());
    let urls = [
        server.url("/missing"),
        server.url("/down"),
        server.url("/bad"),
        missing,
    ];
    let outcome = scratch.run(one_file(urls.iter().map(|url| source(url)).collect()), None);

    assert_failed_clean(&outcome);
    let stderr = &outcome.stderr;
    assert!(stderr.contains("every source failed"), "{stderr}");
    assert!(
        stderr.contains(&format!("  {}: HTTP 404 Not Found", urls[0])),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("  {}: HTTP 500 Internal Server Error", urls[1])),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("  {}: checksum mismatch", urls[2])),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("  {}: failed to open", urls[3])),
        "{stderr}"
    );
    assert_eq!(server.count("/down"), 3);
}

#[test]
fn stalled_server_times_out() {
    let server = Server::start(&[("/slow", vec![Reply::Stall(Duration::from_secs(5))])]);
    let mut params = one_file(vec![source(&server.url("/slow"))]);
    params["timeout_s"] = json!(0.3);
    let outcome = Scratch::new().run(params, None);
    assert_failed_clean(&outcome);
    assert!(outcome.stderr.contains("timed out"), "{}", outcome.stderr);
    assert_eq!(server.count("/slow"), 3);
}

#[test]
fn oversized_body_is_rejected() {
    let scratch = Scratch::new();
    let local = scratch.write("big.csv", DATA);
    let server = Server::start(&[("/data.csv", vec![Reply::Body(DATA.to_vec())])]);
    let sources = vec![
        source(&server.url("/data.csv")),
        source(&format!("file://{}", local.display())),
    ];
    let mut params = one_file(sources);
    params["max_bytes"] = json!(5);
    let outcome = scratch.run(params, None);
    assert_failed_clean(&outcome);
    assert_eq!(
        server.count("/data.csv"),
        1,
        "an oversized body is not retried"
    );
    assert!(
        outcome
            .stderr
            .contains("12 bytes, more than `max_bytes` (5)"),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("larger than the limit of 5 bytes"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn oversized_body_without_length_is_cut_off() {
    let scratch = Scratch::new();
    let body = vec![b'x'; 200_000];
    let server = Server::start(&[("/big", vec![Reply::Unsized(body.clone())])]);
    let mut params = one_file(vec![json!({ "url": server.url("/big"), "sha256": sha256_hex(&body) })]);
    params["max_bytes"] = json!(1000);
    let outcome = scratch.run(params, None);
    assert_failed_clean(&outcome);
    assert_eq!(server.count("/big"), 1, "an oversized body is not retried");
    assert!(
        outcome.stderr.contains("larger than the limit of 1000 bytes"),
        "{}",
        outcome.stderr
    );
    // Nothing is written next to the output folder either.
    let mut names: Vec<String> = fs::read_dir(scratch.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["job.json", "out"]);
}

#[test]
fn unsized_body_within_limit_succeeds() {
    let server = Server::start(&[("/data.csv", vec![Reply::Unsized(DATA.to_vec())])]);
    let outcome = Scratch::new().run(one_file(vec![source(&server.url("/data.csv"))]), None);
    assert_downloaded(&outcome);
}

#[test]
fn several_files_are_written() {
    let server = Server::start(&[
        ("/a", vec![Reply::Body(b"alpha".to_vec())]),
        ("/b", vec![Reply::Body(b"beta".to_vec())]),
    ]);
    let file = |name: &str, path: &str, bytes: &[u8]| {
        let source = json!({ "url": server.url(path), "sha256": sha256_hex(bytes) });
        json!({ "name": name, "sources": [source] })
    };
    let params = json!({ "files": [file("a.txt", "/a", b"alpha"), file("b.txt", "/b", b"beta")] });
    let outcome = Scratch::new().run(params, None);
    assert!(outcome.success, "{}", outcome.stderr);
    assert_eq!(outcome.files, ["a.txt", "b.txt"]);
    assert_eq!(outcome.read("b.txt"), b"beta");
}

#[test]
fn unsafe_names_are_rejected() {
    let server = Server::start(&[]);
    for name in [
        "",
        ".",
        "..",
        "../escape.csv",
        "sub/data.csv",
        "/etc/passwd",
        "a..b",
    ] {
        let params = json!({ "files": [{ "name": name, "sources": [source(&server.url("/x"))] }] });
        let outcome = Scratch::new().run(params, None);
        assert_failed_clean(&outcome);
        let expected = format!("invalid file name `{name}`");
        assert!(
            outcome.stderr.contains(&expected),
            "name {name:?}: {}",
            outcome.stderr
        );
    }
    assert!(server.requests().is_empty());
}

#[test]
fn invalid_sources_are_rejected() {
    let server = Server::start(&[]);
    let url = server.url("/x");
    let hash = sha256_hex(DATA);
    let cases = [
        (
            json!({ "url": "ftp://host/x", "sha256": hash }),
            "must start with https://, http:// or file://",
        ),
        (json!({ "url": url }), "missing a checksum"),
        (
            json!({ "url": url, "sha256": hash, "md5": md5_hex(DATA) }),
            "not both",
        ),
        (
            json!({ "url": url, "sha256": "abc" }),
            "must be 64 hex digits",
        ),
        (json!({ "url": url, "sha1": hash }), "unknown key `sha1`"),
        (
            json!({ "url": "file://relative/x", "sha256": hash }),
            "not a local absolute file URL",
        ),
    ];
    for (source, expected) in cases {
        let outcome = Scratch::new().run(one_file(vec![source.clone()]), None);
        assert_failed_clean(&outcome);
        assert!(
            outcome.stderr.contains(expected),
            "{source}: {}",
            outcome.stderr
        );
    }
    assert!(server.requests().is_empty());
}

#[test]
fn duplicate_names_are_rejected() {
    let entry = json!({ "name": "data.csv", "sources": [source("file:///nonexistent")] });
    let outcome = Scratch::new().run(json!({ "files": [entry.clone(), entry] }), None);
    assert_failed_clean(&outcome);
    assert!(
        outcome.stderr.contains("appears more than once"),
        "{}",
        outcome.stderr
    );
}
