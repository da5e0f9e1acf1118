//! Built-in stage kinds and the fingerprints of their code.
//!
//! Each kind lives in `src/stages/<kind>.rs`; the build script hashes that file,
//! and the hash is part of every key of that kind, so changing a kind's code
//! reruns its stages and no others.

pub mod shell;

/// Stage kinds this build of `xp` can run.
pub const KINDS: &[&str] = &["shell"];

/// Returns the fingerprint of the code that implements `kind`.
pub fn fingerprint(kind: &str) -> &'static str {
    env!("XP_CODE_FINGERPRINTS")
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == kind)
        .map_or("unknown", |(_, hash)| hash)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kind_has_fingerprint() {
        for kind in super::KINDS {
            assert_eq!(super::fingerprint(kind).len(), 64, "kind {kind}");
        }
    }
}
