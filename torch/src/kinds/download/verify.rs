//! Checksums, and the partial file that a download streams into while it is
//! hashed, so that only verified bytes ever take a file's final name.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use md5::Md5;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Md5,
}

impl Algorithm {
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Md5];

    /// Returns the parameter key for a checksum of this algorithm.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Md5 => "md5",
        }
    }

    /// Returns the length of a digest of this algorithm in hex digits.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Md5 => 32,
        }
    }
}

/// An expected digest, in lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: Algorithm,
    pub hex: String,
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.algorithm.name(), self.hex)
    }
}

/// Hashers for the algorithms a caller needs, fed with the same bytes.
#[derive(Default)]
pub struct Hashers {
    sha256: Option<Sha256>,
    md5: Option<Md5>,
}

impl Hashers {
    pub fn new(algorithms: impl IntoIterator<Item = Algorithm>) -> Hashers {
        let mut hashers = Hashers::default();
        for algorithm in algorithms {
            match algorithm {
                Algorithm::Sha256 => hashers.sha256 = Some(Sha256::new()),
                Algorithm::Md5 => hashers.md5 = Some(Md5::new()),
            }
        }
        hashers
    }

    fn update(&mut self, bytes: &[u8]) {
        if let Some(hasher) = &mut self.sha256 {
            hasher.update(bytes);
        }
        if let Some(hasher) = &mut self.md5 {
            hasher.update(bytes);
        }
    }

    fn finish(self) -> Digests {
        Digests {
            sha256: self.sha256.map(|hasher| to_hex(&hasher.finalize())),
            md5: self.md5.map(|hasher| to_hex(&hasher.finalize())),
        }
    }
}

/// The digests of a received file, in lowercase hex, for the algorithms that
/// were hashed.
#[derive(Debug)]
pub struct Digests {
    sha256: Option<String>,
    md5: Option<String>,
}

impl Digests {
    pub fn of(&self, algorithm: Algorithm) -> Option<&str> {
        match algorithm {
            Algorithm::Sha256 => self.sha256.as_deref(),
            Algorithm::Md5 => self.md5.as_deref(),
        }
    }

    pub fn matches(&self, expected: &Checksum) -> bool {
        self.of(expected.algorithm) == Some(expected.hex.as_str())
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The failure of streaming into a partial file.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("reading failed after {received} bytes: {source}")]
    Read { received: u64, source: io::Error },
    #[error("failed to write `{path}`: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("larger than the limit of {limit} bytes (parameter `max_bytes`)")]
    TooLarge { limit: u64 },
}

/// A file being received, named `.NAME.part` beside its final place. Dropping
/// it removes the file unless [`Partial::persist`] renamed it.
pub struct Partial {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl Partial {
    /// Creates `.NAME.part` in `folder`, and fails if it already exists.
    pub fn create(folder: &Path, name: &str) -> io::Result<Partial> {
        let path = folder.join(format!(".{name}.part"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Partial {
            path,
            file,
            persisted: false,
        })
    }

    /// Streams `reader` to the end into the file, hashing every byte, and
    /// returns the byte count and the digests. Stops once more than `limit`
    /// bytes arrived.
    pub fn receive(
        &mut self,
        reader: &mut dyn Read,
        limit: u64,
        mut hashers: Hashers,
    ) -> Result<(u64, Digests), CopyError> {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut received = 0u64;
        loop {
            let count = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => count,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(CopyError::Read { received, source }),
            };
            received += count as u64;
            if received > limit {
                return Err(CopyError::TooLarge { limit });
            }
            hashers.update(&buffer[..count]);
            self.file
                .write_all(&buffer[..count])
                .map_err(|source| self.write_error(source))?;
        }
        self.file
            .sync_all()
            .map_err(|source| self.write_error(source))?;
        Ok((received, hashers.finish()))
    }

    fn write_error(&self, source: io::Error) -> CopyError {
        CopyError::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// Renames the file to `destination`.
    pub fn persist(mut self, destination: &Path) -> io::Result<()> {
        fs::rename(&self.path, destination)?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.persisted {
            // The caller reports why the download failed. If removal fails too,
            // xp still removes the output folder of a failed stage.
            let _ = fs::remove_file(&self.path);
        }
    }
}
