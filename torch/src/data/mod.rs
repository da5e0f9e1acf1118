//! Readers for the dataset files that the `normalise` kind turns into tensors,
//! and the steps between reading and writing: the seeded train/test split and
//! feature standardisation.
//!
//! Each reader returns a plain struct with the values and their shape, and
//! names the file and the byte, line or member in every error:
//!
//! - [`csv`]: numeric CSV through polars, plain or gzip, as an f32 table;
//! - [`idx`]: the IDX format of MNIST and Fashion-MNIST, plain or gzip;
//! - [`npz`]: zip archives of uint8 `.npy` arrays, such as Keras' `mnist.npz`.
//!
//! The build script counts this folder in the code fingerprint of every
//! `xp-torch` kind, so changing a reader reruns the stages that use it.

pub mod csv;
pub mod idx;
pub mod npz;
pub mod split;
pub mod standardise;

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;

/// An n-dimensional array of bytes in C order, as stored by IDX and `.npy`
/// files of type uint8.
#[derive(Debug, Clone, PartialEq)]
pub struct U8Array {
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl U8Array {
    /// Returns the length of the first axis, which is the number of samples.
    pub fn len(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }
}

/// The first two bytes of every gzip stream (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads a whole file into memory, decompressing it when it starts with the
/// gzip magic bytes, whatever its extension.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw =
        std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    gunzip(&raw).with_context(|| format!("`{}` is not a valid gzip file", path.display()))
}

/// Decompresses a gzip stream, saying how many bytes came out before an error.
fn gunzip(compressed: &[u8]) -> Result<Vec<u8>> {
    let mut data = Vec::with_capacity(compressed.len() * 4);
    // `read_to_end` keeps the bytes it read before an error in `data`, which
    // locates the damage in the decompressed stream.
    MultiGzDecoder::new(compressed)
        .read_to_end(&mut data)
        .with_context(|| {
            format!(
                "the stream is truncated or corrupt after {} decompressed bytes \
                 ({} compressed bytes in the file)",
                data.len(),
                compressed.len()
            )
        })?;
    Ok(data)
}

/// Returns the file name of `path` for messages, or the whole path if it has none.
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
pub mod testing {
    //! Helpers that write small dataset files for the tests.

    use std::io::Write;
    use std::path::{Path, PathBuf};

    use flate2::write::GzEncoder;
    use flate2::Compression;

    /// Writes `bytes` to `dir/name` and returns the path.
    pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("writing into a temp dir succeeds");
        path
    }

    pub fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder
            .write_all(bytes)
            .expect("writing into a Vec succeeds");
        encoder.finish().expect("writing into a Vec succeeds")
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{gzip, write};
    use super::*;

    #[test]
    fn plain_file_read_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.bin", b"\x00\x01plain");
        assert_eq!(read_maybe_gzip(&path).unwrap(), b"\x00\x01plain");
    }

    #[test]
    fn gzip_file_decompressed() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.gz", &gzip(b"hello gzip"));
        assert_eq!(read_maybe_gzip(&path).unwrap(), b"hello gzip");
    }

    #[test]
    fn truncated_gzip_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let payload: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let compressed = gzip(&payload);
        let path = write(dir.path(), "cut.gz", &compressed[..compressed.len() / 2]);
        let message = format!("{:#}", read_maybe_gzip(&path).unwrap_err());
        assert!(
            message.contains("`") && message.contains("cut.gz"),
            "{message}"
        );
        assert!(message.contains("truncated or corrupt after"), "{message}");
    }

    #[test]
    fn missing_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let message = format!(
            "{:#}",
            read_maybe_gzip(&dir.path().join("nope.gz")).unwrap_err()
        );
        assert!(
            message.contains("failed to read") && message.contains("nope.gz"),
            "{message}"
        );
    }
}
