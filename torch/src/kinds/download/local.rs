//! Local sources: the mirror folder searched before the network, and
//! file:// URLs.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::params::FileSpec;
use super::verify::{Digests, Hashers, Partial};
use super::{create_partial, persist, AttemptError};

/// Copies `file` from the mirror when a file there has the checksum of one of
/// its sources, and returns whether it did.
pub fn copy_from_distdir(
    distdir: &Path,
    output: &Path,
    file: &FileSpec,
    max_bytes: u64,
) -> Result<bool> {
    let name = &file.name;
    let mirrored = distdir.join(name);
    let log = |result: &str| eprintln!("download {name}: distdir {}: {result}", mirrored.display());
    if !mirrored.is_file() {
        log("not found");
        return Ok(false);
    }
    let mut partial = create_partial(output, name)?;
    let received = File::open(&mirrored)
        .map_err(|err| err.to_string())
        .and_then(|mut reader| {
            let hashers = Hashers::new(file.algorithms());
            partial
                .receive(&mut reader, max_bytes, hashers)
                .map_err(|err| err.to_string())
        });
    let (bytes, digests) = match received {
        Ok(received) => received,
        Err(err) => {
            log(&format!("ignored, {err}"));
            return Ok(false);
        }
    };
    let Some(source) = file
        .sources
        .iter()
        .find(|source| digests.matches(&source.checksum))
    else {
        log(&format!("ignored, {}", mismatch_summary(file, &digests)));
        return Ok(false);
    };
    persist(partial, output, name)?;
    log(&format!(
        "copied {bytes} bytes, {} matches",
        source.checksum.algorithm.name()
    ));
    Ok(true)
}

/// Describes a mirror file whose digests match no source.
fn mismatch_summary(file: &FileSpec, digests: &Digests) -> String {
    let actual: Vec<String> = file
        .algorithms()
        .into_iter()
        .filter_map(|algorithm| Some(format!("{} {}", algorithm.name(), digests.of(algorithm)?)))
        .collect();
    format!("its checksum matches no source ({})", actual.join(", "))
}

/// Copies the file that a file:// URL names into `partial`.
pub fn read_file_url(
    url: &str,
    partial: &mut Partial,
    max_bytes: u64,
    hashers: Hashers,
) -> Result<(u64, Digests), AttemptError> {
    let path = file_url_path(url).map_err(AttemptError::fatal)?;
    let mut reader = File::open(&path).map_err(|err| {
        AttemptError::fatal(format!("failed to open `{}`: {err}", path.display()))
    })?;
    partial
        .receive(&mut reader, max_bytes, hashers)
        .map_err(|err| AttemptError::fatal(err.to_string()))
}

/// Returns the local path of a `file:///PATH` or `file://localhost/PATH` URL,
/// with `%XX` escapes decoded.
fn file_url_path(url: &str) -> Result<PathBuf, String> {
    let rest = &url["file://".len()..];
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    if !path.starts_with('/') {
        return Err(format!(
            "`{url}` is not a local absolute file URL such as file:///data/x.csv"
        ));
    }
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escape = bytes
            .get(index + 1..index + 3)
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match (bytes[index], escape) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    Ok(PathBuf::from(OsString::from_vec(decoded)))
}
