//! Workspace files: hashing with stat stamps, storing outputs as objects and
//! restoring them.
//!
//! A file's hash is remembered with its size, modification time and inode; while
//! those match, the file is not read again. A folder's hash is the hash of its
//! sorted list of `relative path, file hash` lines.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::index::{Artifact, FileRecord, FileStamp, Index};
use super::objects::{copy_hashing, ObjectStore};

pub struct Workspace<'a> {
    pub root: &'a Path,
    pub index: &'a Index,
    pub objects: &'a ObjectStore,
}

impl Workspace<'_> {
    fn absolute(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Returns the content hash of a file or folder, `None` when it does not exist.
    pub fn hash(&self, rel: &str) -> Result<Option<String>> {
        let path = self.absolute(rel);
        let metadata = match fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(err).with_context(|| format!("failed to read `{}`", path.display()))
            }
        };
        if metadata.is_dir() {
            let files = self.folder_files(rel)?;
            return Ok(Some(folder_hash(files.iter().map(|(p, r)| (p.as_str(), r.hash.as_str())))));
        }
        check_regular(&path, &metadata)?;
        self.file_hash(rel, &metadata).map(Some)
    }

    fn file_hash(&self, rel: &str, metadata: &fs::Metadata) -> Result<String> {
        let fresh = |stamp: &FileStamp| {
            stamp.size == metadata.len()
                && stamp.mtime_ns == mtime_ns(metadata)
                && stamp.inode == metadata.ino()
        };
        if let Some(stamp) = self.index.stamp(rel).filter(fresh) {
            tracing::trace!(path = rel, "file unchanged since last hashed");
            return Ok(stamp.hash);
        }
        tracing::trace!(path = rel, "hashing file");
        let path = self.absolute(rel);
        let mut file =
            fs::File::open(&path).with_context(|| format!("failed to read `{}`", path.display()))?;
        let hash = copy_hashing(&mut file, &mut io::sink())
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        self.remember(rel, metadata, &hash)?;
        Ok(hash)
    }

    fn remember(&self, rel: &str, metadata: &fs::Metadata, hash: &str) -> Result<()> {
        let stamp = FileStamp {
            size: metadata.len(),
            mtime_ns: mtime_ns(metadata),
            inode: metadata.ino(),
            hash: hash.to_string(),
        };
        self.index.set_stamp(rel, &stamp)
    }

    /// Hashes every file under folder `rel`, by path relative to it.
    fn folder_files(&self, rel: &str) -> Result<BTreeMap<String, FileRecord>> {
        let mut files = BTreeMap::new();
        for (inner, metadata) in walk(&self.absolute(rel), Links::Follow)? {
            let file_rel = format!("{rel}/{inner}");
            let hash = self.file_hash(&file_rel, &metadata)?;
            files.insert(inner, record(hash, &metadata));
        }
        Ok(files)
    }

    /// Copies output `rel` (a file or a folder) into the object store and
    /// remembers the stamp of every file stored.
    pub fn store(&self, rel: &str) -> Result<Artifact> {
        store_output(self.objects, &self.absolute(rel), |inner, metadata, hash| {
            let file_rel = if inner.is_empty() { rel.to_string() } else { format!("{rel}/{inner}") };
            self.remember(&file_rel, metadata, hash)
        })
    }

    /// Accepts `artifact` as the stored form of output `rel`, which another
    /// process stored: the workspace copy must hash to it and every object
    /// it names must be in the store with the recorded size. Rehashing
    /// remembers the files' stamps, as [`Workspace::store`] does.
    pub fn adopt(&self, rel: &str, artifact: &Artifact) -> Result<()> {
        let actual = self.hash(rel)?;
        if actual.as_deref() != Some(artifact.hash.as_str()) {
            anyhow::bail!(
                "output `{rel}` in the workspace does not match the result the job reported \
                 (hash {}, reported {})",
                actual.as_deref().unwrap_or("none: missing"),
                artifact.hash
            );
        }
        for (inner, file) in &artifact.files {
            let object = self.objects.path(&file.hash);
            let size = fs::metadata(&object).map(|m| m.len()).ok();
            if size != Some(file.size) {
                anyhow::bail!(
                    "object `{}` of output `{rel}` file `{inner}` is missing or has the wrong size",
                    object.display()
                );
            }
        }
        Ok(())
    }

    /// Returns whether the workspace contains exactly `artifact` at `rel`.
    pub fn matches(&self, rel: &str, artifact: &Artifact) -> Result<bool> {
        Ok(self.hash(rel)?.as_deref() == Some(artifact.hash.as_str()))
    }

    /// Replaces whatever is at `rel` with `artifact`'s files from the store.
    /// Replacing an existing output (one edited by hand, say) is logged as
    /// a warning, because the edit is lost.
    pub fn restore(&self, rel: &str, artifact: &Artifact) -> Result<()> {
        if fs::symlink_metadata(self.absolute(rel)).is_ok() {
            tracing::warn!("output `{rel}` differs from the stored result; replacing it with the cached copy");
        }
        self.remove(rel)?;
        for (inner, file) in &artifact.files {
            let file_rel = if inner.is_empty() { rel.to_string() } else { format!("{rel}/{inner}") };
            let dest = self.absolute(&file_rel);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("failed to create `{}`", parent.display()))?;
            }
            if inner.is_empty() {
                // A folder output's leftovers went with the folder above.
                self.objects.remove_stale_restores(&dest);
            }
            self.objects.restore(&file.hash, &dest, file.executable)?;
            let metadata = fs::metadata(&dest)
                .with_context(|| format!("failed to read `{}`", dest.display()))?;
            self.remember(&file_rel, &metadata, &file.hash)?;
        }
        if artifact.files.is_empty() {
            let dir = self.absolute(rel);
            fs::create_dir_all(&dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
        }
        Ok(())
    }

    /// Deletes `rel` if it exists, file or folder. Fails without deleting
    /// anything when a folder on the way is a symbolic link out of the
    /// workspace. A link at `rel` itself is removed, not followed.
    pub fn remove(&self, rel: &str) -> Result<()> {
        check_components(self.root, rel, Components::Parents)?;
        remove(&self.absolute(rel))
    }
}

/// Hashes the file or folder at `path` as [`Workspace::store`] would, without
/// storing it or reading or writing stat stamps; `None` when it does not
/// exist. With `follow_links`, symbolic links are hashed as what they point
/// to, as for inputs; otherwise they are an error, as for outputs.
pub fn hash_artifact(path: &Path, follow_links: bool) -> Result<Option<Artifact>> {
    let metadata = if follow_links { fs::metadata(path) } else { fs::symlink_metadata(path) };
    let metadata = match metadata {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("failed to read `{}`", path.display())),
    };
    let hash_file = |file: &Path| -> Result<String> {
        let mut reader =
            fs::File::open(file).with_context(|| format!("failed to read `{}`", file.display()))?;
        copy_hashing(&mut reader, &mut io::sink()).with_context(|| format!("failed to read `{}`", file.display()))
    };
    if !metadata.is_dir() {
        check_regular(path, &metadata)?;
        let hash = hash_file(path)?;
        let files = BTreeMap::from([(String::new(), record(hash.clone(), &metadata))]);
        return Ok(Some(Artifact { hash, files }));
    }
    let links = if follow_links { Links::Follow } else { Links::Reject };
    let mut files = BTreeMap::new();
    for (inner, metadata) in walk(path, links)? {
        let hash = hash_file(&path.join(&inner))?;
        files.insert(inner, record(hash, &metadata));
    }
    let hash = folder_hash(files.iter().map(|(p, r)| (p.as_str(), r.hash.as_str())));
    Ok(Some(Artifact { hash, files }))
}

/// Copies the file or folder at `path` into `objects` and returns its
/// artifact. Calls `stored` with each file's path inside the folder ("" for
/// a single file), its metadata and hash. Symbolic links and special files are
/// rejected, because a link could point outside the workspace and reading a
/// FIFO can block forever.
pub fn store_output(
    objects: &ObjectStore,
    path: &Path,
    mut stored: impl FnMut(&str, &fs::Metadata, &str) -> Result<()>,
) -> Result<Artifact> {
    let metadata =
        fs::symlink_metadata(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    if !metadata.is_dir() {
        check_regular(path, &metadata)?;
        let hash = objects.insert_file(path)?;
        stored("", &metadata, &hash)?;
        let files = BTreeMap::from([(String::new(), record(hash.clone(), &metadata))]);
        return Ok(Artifact { hash, files });
    }
    let mut files = BTreeMap::new();
    for (inner, metadata) in walk(path, Links::Reject)? {
        let hash = objects.insert_file(&path.join(&inner))?;
        stored(&inner, &metadata, &hash)?;
        files.insert(inner, record(hash, &metadata));
    }
    let hash = folder_hash(files.iter().map(|(p, r)| (p.as_str(), r.hash.as_str())));
    Ok(Artifact { hash, files })
}

/// A workspace path that a symbolic link leads out of the workspace.
#[derive(Debug, thiserror::Error)]
#[error("`{path}` leads outside the workspace through the symbolic link `{link}` (to `{target}`)")]
pub struct OutsideWorkspace {
    pub path: String,
    pub link: String,
    pub target: String,
}

/// Checks that no existing component of the workspace-relative path `rel`,
/// itself included, is a symbolic link that resolves outside `root`. A
/// dangling link is judged by its target as written. `rel` is already free
/// of `..` and absolute parts, which the pipeline loader rejects.
pub fn check_inside(root: &Path, rel: &str) -> Result<(), OutsideWorkspace> {
    check_components(root, rel, Components::All)
}

/// The components of a path that [`check_components`] checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Components {
    All,
    /// All but the last, for a removal, which does not follow a link.
    Parents,
}

fn check_components(root: &Path, rel: &str, which: Components) -> Result<(), OutsideWorkspace> {
    let outside = |link: &Path, target: String| OutsideWorkspace {
        path: rel.to_string(),
        link: link.strip_prefix(root).unwrap_or(link).display().to_string(),
        target,
    };
    let mut current = root.to_path_buf();
    let mut canonical_root: Option<PathBuf> = None;
    let mut components: Vec<_> = Path::new(rel).components().collect();
    if which == Components::Parents {
        components.pop();
    }
    for component in components {
        current.push(component);
        match fs::symlink_metadata(&current) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                let canonical = canonical_root
                    .get_or_insert_with(|| fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()));
                let resolved = match fs::canonicalize(&current) {
                    Ok(resolved) => resolved,
                    Err(_) => dangling_target(&current).unwrap_or_default(),
                };
                if !resolved.starts_with(canonical.as_path()) {
                    return Err(outside(&current, resolved.display().to_string()));
                }
            }
            Ok(_) => {}
            // Nothing exists below a missing component.
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

fn remove(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    };
    result.with_context(|| format!("failed to remove `{}`", path.display()))
}

fn record(hash: String, metadata: &fs::Metadata) -> FileRecord {
    let executable = metadata.permissions().mode() & 0o111 != 0;
    FileRecord { hash, size: metadata.len(), executable }
}

fn mtime_ns(metadata: &fs::Metadata) -> i128 {
    metadata.mtime() as i128 * 1_000_000_000 + metadata.mtime_nsec() as i128
}

/// Files under this top-level subfolder of an output folder are stored and
/// restored but left out of the folder's hash, like Bazel's volatile status:
/// timings and other values that differ between identical runs. Dependants
/// are not rerun when only they change, and early cutoff still works.
pub const VOLATILE: &str = "volatile/";

/// Hash of a folder from its `(relative path, file hash)` pairs in sorted
/// order, leaving out files under [`VOLATILE`].
pub fn folder_hash<'a>(files: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"xp folder v1\n");
    for (path, hash) in files.filter(|(path, _)| !path.starts_with(VOLATILE)) {
        hasher.update(path.as_bytes());
        hasher.update(b"\0");
        hasher.update(hash.as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize().to_hex().to_string()
}

/// Rejects anything but a regular file: reading a FIFO or a device can block
/// or never end.
fn check_regular(path: &Path, metadata: &fs::Metadata) -> Result<()> {
    if metadata.file_type().is_symlink() {
        anyhow::bail!("`{}` is a symbolic link; outputs may contain only files and folders", path.display());
    }
    if !metadata.is_file() {
        anyhow::bail!("`{}` is not a regular file (a FIFO, socket or device)", path.display());
    }
    Ok(())
}

/// Returns where the dangling symbolic link `link` points, made absolute and
/// with `.` and `..` resolved as text; `None` when it cannot be read.
fn dangling_target(link: &Path) -> Option<PathBuf> {
    let target = fs::read_link(link).ok()?;
    let joined = fs::canonicalize(link.parent()?).ok()?.join(target);
    let mut normal = PathBuf::new();
    for component in joined.components() {
        match component {
            std::path::Component::ParentDir => {
                normal.pop();
            }
            std::path::Component::CurDir => {}
            other => normal.push(other),
        }
    }
    Some(normal)
}

/// What [`walk`] does with symbolic links.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Links {
    /// Hash what a link points to, as for inputs.
    Follow,
    /// Fail, as for outputs.
    Reject,
}

/// Lists the regular files under `dir`, sorted by relative path.
fn walk(dir: &Path, links: Links) -> Result<Vec<(String, fs::Metadata)>> {
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let folder = dir.join(&relative);
        let listing =
            fs::read_dir(&folder).with_context(|| format!("failed to list `{}`", folder.display()))?;
        for item in listing {
            let item = item.with_context(|| format!("failed to list `{}`", folder.display()))?;
            let path = item.path();
            let mut metadata = item
                .metadata()
                .with_context(|| format!("failed to read `{}`", path.display()))?;
            if links == Links::Follow && metadata.file_type().is_symlink() {
                metadata = fs::metadata(&path)
                    .with_context(|| format!("failed to read `{}`", path.display()))?;
            }
            let child = relative.join(item.file_name());
            if metadata.is_dir() {
                pending.push(child);
            } else {
                check_regular(&path, &metadata)?;
                files.push((child.to_string_lossy().into_owned(), metadata));
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stores `out/` as another process would, through `store_output` alone.
    fn setup() -> (tempfile::TempDir, Index, ObjectStore, Artifact) {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("out/sub")).unwrap();
        fs::write(dir.path().join("out/a.txt"), "a\n").unwrap();
        fs::write(dir.path().join("out/sub/b.txt"), "b\n").unwrap();
        let index = Index::open(&dir.path().join("cache/index")).unwrap();
        let objects = ObjectStore::open(&dir.path().join("cache")).unwrap();
        let artifact = store_output(&objects, &dir.path().join("out"), |_, _, _| Ok(())).unwrap();
        (dir, index, objects, artifact)
    }

    #[test]
    fn adopt_accepts_matching_output() {
        let (dir, index, objects, artifact) = setup();
        let workspace = Workspace { root: dir.path(), index: &index, objects: &objects };
        assert_eq!(artifact.files.len(), 2);
        workspace.adopt("out", &artifact).unwrap();
        // Adopting remembered the stamps, as storing does.
        assert!(index.stamp("out/sub/b.txt").is_some());
        assert_eq!(workspace.store("out").unwrap(), artifact);
    }

    #[test]
    fn adopt_rejects_changed_output() {
        let (dir, index, objects, artifact) = setup();
        let workspace = Workspace { root: dir.path(), index: &index, objects: &objects };
        fs::write(dir.path().join("out/a.txt"), "changed\n").unwrap();
        let message = format!("{:#}", workspace.adopt("out", &artifact).unwrap_err());
        assert!(message.contains("does not match the result the job reported"), "{message}");
    }

    #[test]
    fn adopt_rejects_missing_object() {
        let (dir, index, objects, artifact) = setup();
        let workspace = Workspace { root: dir.path(), index: &index, objects: &objects };
        let hash = &artifact.files["a.txt"].hash;
        fs::remove_file(objects.path(hash)).unwrap();
        let message = format!("{:#}", workspace.adopt("out", &artifact).unwrap_err());
        assert!(message.contains("is missing or has the wrong size"), "{message}");
    }
}
