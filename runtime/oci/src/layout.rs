//! An OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`).
//!
//! Blobs are content-addressed and written by rename, so a half-written one
//! never has a digest name; a tag moves only by an atomic rewrite of
//! `index.json`, under a lock, after every blob of its image is in place.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::ANNOTATION_REF_NAME;
use super::digest::Digest;
use super::document::{self, Descriptor, ImageIndex, MediaType};

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{dir}: not an OCI image layout (no oci-layout file)")]
    NotALayout { dir: PathBuf },
    #[error("{path}: invalid JSON: {message}")]
    Json { path: PathBuf, message: String },
    #[error("{dir}: no image tagged {tag:?} (tags: {available})")]
    NoSuchTag {
        dir: PathBuf,
        tag: String,
        available: String,
    },
    #[error("{dir}: holds {count} images; name one with oci:{}:TAG", dir.display())]
    Ambiguous { dir: PathBuf, count: usize },
    #[error("{dir}: blob {digest} is missing")]
    MissingBlob { dir: PathBuf, digest: Digest },
    #[error("{dir}: blob {digest} is corrupt (its content hashes to {actual})")]
    CorruptBlob {
        dir: PathBuf,
        digest: Digest,
        actual: Digest,
    },
    #[error("{dir}: {message}")]
    Invalid { dir: PathBuf, message: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LayoutError + '_ {
    move |source| LayoutError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

/// A manifest found in a layout.
#[derive(Debug, Clone)]
pub struct Found {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// What the tag names: `digest` itself, or the image index it was
    /// picked from (what a lock pins, so every platform stays pinned).
    pub named: Digest,
    /// The manifests of that index, one per platform (empty without one).
    pub platforms: Vec<Digest>,
}

impl Layout {
    /// Open an existing layout.
    pub fn open(dir: &Path) -> Result<Self, LayoutError> {
        if !dir.join("oci-layout").is_file() {
            return Err(LayoutError::NotALayout { dir: dir.into() });
        }
        Ok(Self { dir: dir.into() })
    }

    /// Open a layout, creating an empty one if `dir` does not exist or is an
    /// empty directory. Safe against another process creating the same
    /// layout at the same time (files are created no-clobber, index.json
    /// last-but-one so a half-made layout is never taken for a full one).
    pub fn open_or_create(dir: &Path) -> Result<Self, LayoutError> {
        if dir.join("oci-layout").is_file() {
            return Ok(Self { dir: dir.into() });
        }
        if dir.exists() {
            let foreign = fs::read_dir(dir)
                .map_err(io_err(dir))?
                .filter_map(Result::ok)
                .any(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    !matches!(name.as_ref(), "blobs" | "index.json" | "oci-layout")
                        && !name.starts_with(".tmp")
                });
            if foreign {
                return Err(LayoutError::NotALayout { dir: dir.into() });
            }
        }
        fs::create_dir_all(dir.join("blobs/sha256")).map_err(io_err(dir))?;
        write_new(
            &dir.join("index.json"),
            br#"{"manifests":[],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}"#,
        )?;
        write_new(
            &dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        Ok(Self { dir: dir.into() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.dir.join("blobs/sha256")
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Read a (small) blob and check its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, LayoutError> {
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => LayoutError::MissingBlob {
                dir: self.dir.clone(),
                digest: digest.clone(),
            },
            _ => LayoutError::Io {
                path: path.clone(),
                source: e,
            },
        })?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(LayoutError::CorruptBlob {
                dir: self.dir.clone(),
                digest: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Store bytes as a blob; returns its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, LayoutError> {
        let digest = Digest::of(bytes);
        let path = self.blob_path(&digest);
        if !path.is_file() {
            fs::create_dir_all(self.blobs_dir()).map_err(io_err(&self.dir))?;
            write_atomic(&path, bytes)?;
        }
        Ok(digest)
    }

    /// Make blob `digest` of `from` present here: a hard link when both are
    /// on one filesystem, else a copy.
    pub fn copy_blob_from(&self, from: &Layout, digest: &Digest) -> Result<(), LayoutError> {
        let dest = self.blob_path(digest);
        if dest.is_file() {
            return Ok(());
        }
        let src = from.blob_path(digest);
        if !src.is_file() {
            return Err(LayoutError::MissingBlob {
                dir: from.dir.clone(),
                digest: digest.clone(),
            });
        }
        // A fresh name per call: threads of one process (a fleet rebasing
        // into one layout) must not share, and remove, each other's.
        let dir = self.blobs_dir();
        let tmp = tempfile::Builder::new()
            .prefix(".link-")
            .make_in(&dir, |p| fs::hard_link(&src, p))
            .or_else(|_| {
                tempfile::Builder::new()
                    .prefix(".copy-")
                    .make_in(&dir, |p| fs::copy(&src, p).map(drop))
            })
            .map_err(io_err(&src))?;
        tmp.persist(&dest).map_err(|e| LayoutError::Io {
            path: dest,
            source: e.error,
        })?;
        Ok(())
    }

    fn read_index(&self) -> Result<ImageIndex, LayoutError> {
        let path = self.dir.join("index.json");
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        document::parse(&bytes, "index.json").map_err(|e| LayoutError::Json {
            path,
            message: e.to_string(),
        })
    }

    /// The tags (`ref.name` annotations) of the layout's index.
    pub fn tags(&self) -> Result<Vec<String>, LayoutError> {
        let index = self.read_index()?;
        Ok(index
            .manifests()
            .iter()
            .filter_map(|m| ref_name(m).map(str::to_owned))
            .collect())
    }

    /// Find the image tagged `tag` (or the only image), descending into an
    /// image index to the entry for `platform` (`os`, `arch`).
    pub fn resolve(
        &self,
        tag: Option<&str>,
        platform: Option<(&str, &str)>,
    ) -> Result<Found, LayoutError> {
        let index = self.read_index()?;
        let entries = index.manifests();
        let entry = match tag {
            Some(tag) => entries
                .iter()
                .find(|m| ref_name(m) == Some(tag))
                .ok_or_else(|| LayoutError::NoSuchTag {
                    dir: self.dir.clone(),
                    tag: tag.into(),
                    available: self.tags().map(|t| t.join(", ")).unwrap_or_default(),
                })?,
            None if entries.len() == 1 => &entries[0],
            None => {
                return Err(LayoutError::Ambiguous {
                    dir: self.dir.clone(),
                    count: entries.len(),
                });
            }
        };
        let mut found = self.follow(entry, platform, 0)?;
        if let Ok(named) = document::digest_of(entry, "index entry") {
            found.named = named;
        }
        Ok(found)
    }

    fn follow(
        &self,
        entry: &Descriptor,
        platform: Option<(&str, &str)>,
        depth: usize,
    ) -> Result<Found, LayoutError> {
        let invalid = |message: String| LayoutError::Invalid {
            dir: self.dir.clone(),
            message,
        };
        let digest =
            document::digest_of(entry, "index entry").map_err(|e| invalid(e.to_string()))?;
        let bytes = self.read_blob(&digest)?;
        if crate::store::is_index(&bytes) {
            if depth > 4 {
                return Err(invalid("image indexes nested too deep".into()));
            }
            let index: ImageIndex = document::parse(&bytes, &format!("image index {digest}"))
                .map_err(|e| invalid(e.to_string()))?;
            let children = index.manifests();
            let chosen = super::platform_entry(children, platform).ok_or_else(|| {
                invalid(format!(
                    "image index {digest} has no image for the requested platform"
                ))
            })?;
            let mut found = self.follow(chosen, platform, depth + 1)?;
            if found.platforms.is_empty() {
                found.platforms = super::entry_digests(children);
            }
            return Ok(found);
        }
        Ok(Found {
            named: digest.clone(),
            digest,
            media_type: document::media_type_of(entry),
            bytes,
            platforms: Vec::new(),
        })
    }

    /// Point `tag` at a manifest, replacing any image with that tag. The
    /// manifest and every blob it names must already be stored.
    pub fn set_tag(&self, tag: &str, descriptor: Descriptor) -> Result<(), LayoutError> {
        let lock_path = self.dir.join(".index.lock");
        let lock = File::create(&lock_path).map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        let mut index = self.read_index()?;
        let mut entries: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|m| ref_name(m) != Some(tag))
            .cloned()
            .collect();
        let mut descriptor = descriptor;
        descriptor.set_annotations(Some(
            [(ANNOTATION_REF_NAME.to_owned(), tag.to_owned())].into(),
        ));
        entries.push(descriptor);
        index.set_manifests(entries);
        index.set_schema_version(2);
        index.set_media_type(Some(MediaType::ImageIndex));
        write_atomic(&self.dir.join("index.json"), &document::to_bytes(&index))?;
        drop(lock);
        Ok(())
    }
}

/// The tag an index entry carries.
fn ref_name(entry: &Descriptor) -> Option<&str> {
    entry
        .annotations()
        .as_ref()?
        .get(ANNOTATION_REF_NAME)
        .map(String::as_str)
}

/// Create `path` with `bytes` unless it exists (then leave it be).
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = blob_tempfile(dir).map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(path))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(()),
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(LayoutError::Io {
            path: path.into(),
            source: e.error,
        }),
    }
}

/// A temporary file in `dir`, readable by all like any file of an image
/// layout (tempfile's default is 0600).
pub fn blob_tempfile(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
}

/// Write a file by rename: readers see the old content or the new, never a
/// mix, and a crash leaves the old.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = blob_tempfile(dir).map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(path))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| LayoutError::Io {
        path: path.into(),
        source: e.error,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_replace_and_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(&dir.path().join("l")).unwrap();
        let m1 = layout
            .write_blob(br#"{"schemaVersion":2,"layers":[]}"#)
            .unwrap();
        let m2 = layout
            .write_blob(br#"{"schemaVersion":2,"layers":[],"x":1}"#)
            .unwrap();
        let desc = |d: &Digest| document::descriptor(crate::MEDIA_MANIFEST, d, 1);
        layout.set_tag("a", desc(&m1)).unwrap();
        layout.set_tag("b", desc(&m1)).unwrap();
        layout.set_tag("a", desc(&m2)).unwrap();
        assert_eq!(layout.tags().unwrap(), ["b", "a"]);
        assert_eq!(layout.resolve(Some("a"), None).unwrap().digest, m2);
        assert!(matches!(
            layout.resolve(None, None),
            Err(LayoutError::Ambiguous { .. })
        ));
        assert!(matches!(
            layout.resolve(Some("zz"), None),
            Err(LayoutError::NoSuchTag { .. })
        ));
    }

    #[test]
    fn a_corrupt_blob_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();
        let d = layout.write_blob(b"hello").unwrap();
        fs::write(layout.blob_path(&d), b"jello").unwrap();
        assert!(matches!(
            layout.read_blob(&d),
            Err(LayoutError::CorruptBlob { .. })
        ));
    }
}
