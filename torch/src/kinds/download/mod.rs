//! The `download` stage kind: fetches files, each verified against a checksum
//! before it takes its name in the output folder.
//!
//! ```toml
//! [stages.download]
//! kind = "download"
//! params.max_bytes = 100_000_000   # optional; the default is 2 GiB
//! params.timeout_s = 30            # optional; the default is 60
//!
//! [[stages.download.params.files]]
//! name = "boston_housing.csv"
//! sources = [
//!   { url = "https://raw.githubusercontent.com/rasbt/mlxtend/master/mlxtend/data/data/boston_housing.csv", sha256 = "8594f084258ead302f20a7479463f7a7584d33fe00042d442a7101530c8b46de" },
//!   { url = "file:///srv/mirror/boston_housing.csv", sha256 = "8594f084258ead302f20a7479463f7a7584d33fe00042d442a7101530c8b46de" },
//! ]
//! ```
//!
//! `files` may also be written inline, `files = [{ name = ..., sources = [...] }]`.
//! Each file is written to `OUTPUT/NAME`, where `OUTPUT` is the stage's one
//! output folder (by default `build/PIPELINE/STAGE`). A source is an https://, http:// or
//! file:// URL with its own checksum, `sha256` or, for publishers that only
//! give one, `md5`. A name must be one path component, without `/` or `..`.
//!
//! For each file, the stage first looks in the local mirror (`xp run
//! --distdir DIR` or `XP_DISTDIR`) for a file of the same name whose content
//! matches the checksum of any source. A mirror file that matches none is
//! logged and ignored. Then it tries the sources in order. An HTTP 5xx
//! status, a timeout or a failed or dropped connection is tried again, up to
//! [`ATTEMPTS`] attempts in all, after 0.2 s and then 0.4 s. A 4xx status, a checksum
//! mismatch, a body over `max_bytes` or a redirect that is invalid moves on to
//! the next source at once. At most [`http::MAX_REDIRECTS`] redirects are
//! followed, and never to a non-http(s) URL. When every source of a file
//! fails, the stage fails with each source's error.
//!
//! Bytes are streamed into `OUTPUT/.NAME.part` and hashed on the way. Only a
//! file whose checksum matched is renamed to `NAME`, and the partial file is
//! removed on every error path. Every attempt logs one line to stderr, which
//! xp stores in the stage's log. The mirror is not part of the cache key,
//! because a file from it has the same checksum as one from its source.
//!
//! `timeout_s` limits connecting, waiting for the response headers and each
//! read of the body, in seconds. No limit applies to a whole download.

mod http;
mod local;
mod params;
mod verify;

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use xp::stages::StageJob;

use params::{FileSpec, Settings, Source};
use verify::{Hashers, Partial};

/// Attempts per source when the failure may be transient.
const ATTEMPTS: u32 = 3;
/// The delay before the first retry. It doubles for each later retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// The failure of one attempt at a source, and whether a retry may succeed.
#[derive(Debug)]
pub struct AttemptError {
    message: String,
    retry: bool,
}

impl AttemptError {
    fn retry(message: String) -> AttemptError {
        AttemptError {
            message,
            retry: true,
        }
    }

    fn fatal(message: String) -> AttemptError {
        AttemptError {
            message,
            retry: false,
        }
    }
}

/// Downloads every file in the `files` parameter into `job.output`.
pub fn run(job: &StageJob) -> Result<()> {
    let settings = Settings::from_job(job)?;
    let client = http::Client::new(settings.timeout);
    for file in &settings.files {
        let destination = job.output.join(&file.name);
        if let Some(distdir) = &job.distdir {
            if local::copy_from_distdir(distdir, &job.output, file, settings.max_bytes)? {
                continue;
            }
        }
        fetch_from_sources(&client, &job.output, file, settings.max_bytes)
            .with_context(|| format!("failed to download `{}`", destination.display()))?;
    }
    Ok(())
}

/// Tries each source of `file` in order until one gives verified bytes.
fn fetch_from_sources(
    client: &http::Client,
    output: &Path,
    file: &FileSpec,
    max_bytes: u64,
) -> Result<()> {
    let mut failures = Vec::new();
    for source in &file.sources {
        match fetch_source(client, output, file, source, max_bytes) {
            Ok(()) => return Ok(()),
            Err(err) => failures.push(format!("  {}: {err:#}", source.url)),
        }
    }
    bail!("every source failed:\n{}", failures.join("\n"))
}

/// Fetches one source, retrying failures that may be transient.
fn fetch_source(
    client: &http::Client,
    output: &Path,
    file: &FileSpec,
    source: &Source,
    max_bytes: u64,
) -> Result<()> {
    let name = &file.name;
    let mut attempt = 1;
    loop {
        let mut partial = create_partial(output, name)?;
        let result = receive_source(client, source, &mut partial, max_bytes);
        let prefix = format!(
            "download {name}: attempt {attempt}/{ATTEMPTS} {}",
            source.url
        );
        match result {
            Ok(bytes) => {
                persist(partial, output, name)?;
                eprintln!(
                    "{prefix}: ok, {bytes} bytes, {} matches",
                    source.checksum.algorithm.name()
                );
                return Ok(());
            }
            Err(err) if err.retry && attempt < ATTEMPTS => {
                let delay = FIRST_BACKOFF * 2u32.pow(attempt - 1);
                eprintln!(
                    "{prefix}: {}; retrying in {:.1} s",
                    err.message,
                    delay.as_secs_f64()
                );
                drop(partial);
                std::thread::sleep(delay);
                attempt += 1;
            }
            Err(err) => {
                eprintln!("{prefix}: {}", err.message);
                bail!("{}", err.message);
            }
        }
    }
}

/// Receives the bytes of `source` into `partial`, checks their checksum and
/// returns the byte count.
fn receive_source(
    client: &http::Client,
    source: &Source,
    partial: &mut Partial,
    max_bytes: u64,
) -> Result<u64, AttemptError> {
    let hashers = Hashers::new([source.checksum.algorithm]);
    let is_file_url = source
        .url
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("file://"));
    let (bytes, digests) = if is_file_url {
        local::read_file_url(&source.url, partial, max_bytes, hashers)?
    } else {
        client.fetch(&source.url, partial, max_bytes, hashers)?
    };
    if !digests.matches(&source.checksum) {
        let algorithm = source.checksum.algorithm;
        let actual = digests.of(algorithm).unwrap_or("none");
        return Err(AttemptError::fatal(format!(
            "checksum mismatch: expected {}, got {} {actual}",
            source.checksum,
            algorithm.name()
        )));
    }
    Ok(bytes)
}

fn create_partial(output: &Path, name: &str) -> Result<Partial> {
    Partial::create(output, name).with_context(|| {
        format!(
            "failed to create a partial file for `{name}` in `{}`",
            output.display()
        )
    })
}

fn persist(partial: Partial, output: &Path, name: &str) -> Result<()> {
    let destination = output.join(name);
    partial.persist(&destination).with_context(|| {
        format!(
            "failed to rename the verified file to `{}`",
            destination.display()
        )
    })
}
