//! Reproducible layer tars (../shared/REFERENCE.md "Reproducible tar recipe").
//!
//! Entries are sorted bytewise with parents first; mode is normalised to
//! 0755/0644 (the exec bit is kept), owner is the build user, names are
//! empty, mtime is [`crate::NORMALIZED_EPOCH`]; links are stored as links and
//! hard links by (dev, inode). One pass hashes the tar (diff_id) and the
//! compressed stream (blob digest) while writing the blob.
//!
//! The tree is read through a [`GuestTree`] handle: a buildpack wrote it, so
//! no link in it is ever followed, and a FIFO, device or socket is refused.

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::compress::{Compression, ParallelCompress};
use super::digest::{Digest, DigestWriter};
use cascade_fs::{EntryKind, GuestTree, MetadataExt};

/// Owner of every entry (CNB's conventional build user).
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub uid: u64,
    pub gid: u64,
}

impl Default for Owner {
    fn default() -> Self {
        Self {
            uid: 1000,
            gid: 1000,
        }
    }
}

/// A directory tree to put in a layer at `prefix` (e.g.
/// `layers/cascade_static-site/site`, or `workspace`).
#[derive(Debug, Clone, Copy)]
pub struct LayerSource<'a> {
    pub root: &'a GuestTree,
    pub prefix: &'a str,
    /// Export regular files directly under the tree's `bin/` as executable.
    /// Buildpacks write their layers through WASI, which has no permission
    /// bits; `bin/` is on `PATH`, so what is there is meant to run.
    pub bin_exec: bool,
}

/// A layer written to a layout's blob store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerBlob {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub compression: Compression,
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LayerError + '_ {
    move |source| LayerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Write `source` as a layer into `blobs_dir` (the layout's `blobs/sha256`),
/// named by its digest once complete, compressing on every core.
pub fn write_layer(
    source: &LayerSource<'_>,
    blobs_dir: &Path,
    owner: Owner,
    compression: Compression,
) -> Result<LayerBlob, LayerError> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    write_layer_with(source, blobs_dir, owner, compression, threads)
}

/// The diff_id `source` would have as a layer, without writing or
/// compressing anything: the tar stream goes straight into sha256. This is
/// how an unchanged tree is recognised at a fraction of the cost of export.
pub fn diff_id(source: &LayerSource<'_>, owner: Owner) -> Result<Digest, LayerError> {
    let sink = DigestWriter::new(BufWriter::with_capacity(1 << 16, io::sink()));
    let mut tar = tar::Builder::new(sink);
    tar.follow_symlinks(false);
    tar.sparse(false);
    append_tree(&mut tar, source, owner)?;
    let sink = tar.into_inner().map_err(io_err(source.root.path()))?;
    Ok(sink.finish().1)
}

/// [`write_layer`] on `threads` threads; the bytes do not depend on it.
pub fn write_layer_with(
    source: &LayerSource<'_>,
    blobs_dir: &Path,
    owner: Owner,
    compression: Compression,
    threads: usize,
) -> Result<LayerBlob, LayerError> {
    let tmp = super::layout::blob_tempfile(blobs_dir).map_err(io_err(blobs_dir))?;
    let file = tmp.as_file().try_clone().map_err(io_err(blobs_dir))?;
    let blob = DigestWriter::new(BufWriter::with_capacity(1 << 20, file));
    let gz = ParallelCompress::new(blob, compression, threads);
    let diff = DigestWriter::new(gz);
    let mut tar = tar::Builder::new(diff);
    tar.follow_symlinks(false);
    tar.sparse(false);
    append_tree(&mut tar, source, owner)?;
    let diff = tar.into_inner().map_err(io_err(source.root.path()))?;
    let (gz, diff_id, _) = diff.finish();
    let blob = gz.finish().map_err(io_err(blobs_dir))?;
    let (mut buf, digest, size) = blob.finish();
    buf.flush().map_err(io_err(blobs_dir))?;
    let dest = blobs_dir.join(digest.hex());
    tmp.persist(&dest).map_err(|e| LayerError::Io {
        path: dest.clone(),
        source: e.error,
    })?;
    Ok(LayerBlob {
        digest,
        diff_id,
        size,
        compression,
    })
}

fn header(kind: tar::EntryType, mode: u32, size: u64, owner: Owner) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(owner.uid);
    h.set_gid(owner.gid);
    h.set_mtime(crate::NORMALIZED_EPOCH);
    h
}

fn append_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    source: &LayerSource<'_>,
    owner: Owner,
) -> Result<(), LayerError> {
    let root = source.root.path();
    // Parents of the prefix, then the prefix itself.
    let mut acc = String::new();
    for part in source.prefix.split('/').filter(|p| !p.is_empty()) {
        acc.push_str(part);
        acc.push('/');
        let mut h = header(tar::EntryType::Directory, 0o755, 0, owner);
        tar.append_data(&mut h, &acc, io::empty())
            .map_err(io_err(root))?;
    }
    let mut hardlinks: HashMap<(u64, u64), String> = HashMap::new();
    let mut append = |e: &cascade_fs::Entry<'_>| -> io::Result<()> {
        let name = format!("{acc}{}", e.rel.to_string_lossy());
        match &e.kind {
            EntryKind::Dir => {
                let mut h = header(tar::EntryType::Directory, 0o755, 0, owner);
                tar.append_data(&mut h, format!("{name}/"), io::empty())
            }
            EntryKind::Symlink(target) => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0, owner);
                tar.append_link(&mut h, &name, target)
            }
            EntryKind::File => {
                let meta = e.meta;
                if meta.nlink() > 1 {
                    let key = (meta.dev(), meta.ino());
                    if let Some(first) = hardlinks.get(&key) {
                        let mut h = header(tar::EntryType::Link, 0o644, 0, owner);
                        return tar.append_link(&mut h, &name, first);
                    }
                    hardlinks.insert(key, name.clone());
                }
                let in_bin = source.bin_exec && e.rel.parent() == Some(Path::new("bin"));
                let mode = if meta.mode() & 0o111 != 0 || in_bin {
                    0o755
                } else {
                    0o644
                };
                let file = e.open()?;
                // The size the tar header promises is the size of the file
                // opened, not of whatever the walk saw before.
                let len = file.metadata()?.len();
                let mut h = header(tar::EntryType::Regular, mode, len, owner);
                tar.append_data(&mut h, &name, io::Read::take(file, len))
            }
        }
        .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", root.join(e.rel).display())))
    };
    source.root.walk(&mut append).map_err(io_err(root))
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // test data: wrapping is the point
mod tests {
    use super::*;

    fn tree(dir: &Path) {
        std::fs::create_dir_all(dir.join("b/c")).unwrap();
        std::fs::write(dir.join("a.txt"), "a").unwrap();
        std::fs::write(dir.join("b/c/run"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            dir.join("b/c/run"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        std::os::unix::fs::symlink("a.txt", dir.join("link")).unwrap();
    }

    #[test]
    fn same_tree_in_two_places_gives_the_same_digests() {
        let (one, two, blobs) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        tree(one.path());
        tree(two.path());
        // Different mtimes and umask-driven modes must not matter.
        std::fs::set_permissions(
            two.path().join("a.txt"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let (t1, t2) = (
            GuestTree::open(one.path()).unwrap(),
            GuestTree::open(two.path()).unwrap(),
        );
        let src = |root| LayerSource {
            root,
            prefix: "workspace",
            bin_exec: false,
        };
        let a = write_layer(&src(&t1), blobs.path(), Owner::default(), Compression::Gzip).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(two.path().join("a.txt"), "a").unwrap();
        let b = write_layer(&src(&t2), blobs.path(), Owner::default(), Compression::Gzip).unwrap();
        assert_eq!(diff_id(&src(&t2), Owner::default()).unwrap(), b.diff_id);
        assert_eq!(a, b);
        assert!(blobs.path().join(a.digest.hex()).is_file());
    }

    #[test]
    fn entries_are_sorted_with_parents_and_normalised() {
        let (dir, blobs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        tree(dir.path());
        let blob = write_layer(
            &LayerSource {
                root: &GuestTree::open(dir.path()).unwrap(),
                prefix: "layers/bp/l",
                bin_exec: false,
            },
            blobs.path(),
            Owner::default(),
            Compression::Gzip,
        )
        .unwrap();
        let file = std::fs::File::open(blobs.path().join(blob.digest.hex())).unwrap();
        let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(file));
        let entries: Vec<(String, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "layers/",
                "layers/bp/",
                "layers/bp/l/",
                "layers/bp/l/a.txt",
                "layers/bp/l/b/",
                "layers/bp/l/b/c/",
                "layers/bp/l/b/c/run",
                "layers/bp/l/link"
            ]
        );
        assert_eq!(entries[6].1, 0o755);
        assert_eq!(entries[3].1, 0o644);
        assert!(entries.iter().all(|e| e.2 == crate::NORMALIZED_EPOCH));
    }

    /// Golden digest: fails loudly when a dependency change (flate2 backend,
    /// tar header layout, level) alters the bytes of every image.
    #[test]
    fn golden_layer_digest() {
        let (dir, blobs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(
            dir.path().join("hello.txt"),
            "hello, reproducible world\n".repeat(100),
        )
        .unwrap();
        // Big enough for several gzip members.
        let big: Vec<u8> = (0..5_000_000u32)
            .map(|i| (i % 253) as u8 ^ (i >> 12) as u8)
            .collect();
        std::fs::write(dir.path().join("big.bin"), big).unwrap();
        let root = GuestTree::open(dir.path()).unwrap();
        let source = LayerSource {
            root: &root,
            prefix: "workspace",
            bin_exec: false,
        };
        let write = |c, threads| {
            write_layer_with(&source, blobs.path(), Owner::default(), c, threads).unwrap()
        };
        let blob = write(Compression::Gzip, 1);
        assert_eq!(
            blob,
            write(Compression::Gzip, 3),
            "digests depend on the thread count"
        );
        assert_eq!(
            blob.diff_id.to_string(),
            GOLDEN_DIFF_ID,
            "tar bytes changed"
        );
        assert_eq!(
            blob.digest.to_string(),
            GOLDEN_DIGEST,
            "gzip bytes changed (flate2 backend or level?)"
        );
        let zstd = write(Compression::Zstd, 1);
        assert_eq!(
            zstd,
            write(Compression::Zstd, 2),
            "zstd digests depend on the thread count"
        );
        assert_eq!(zstd.diff_id, blob.diff_id);
        assert_eq!(
            zstd.digest.to_string(),
            GOLDEN_ZSTD_DIGEST,
            "zstd bytes changed (zstd version or level?)"
        );
        let plain = write(Compression::None, 2);
        assert_eq!(
            plain.digest, plain.diff_id,
            "an uncompressed layer is its tar"
        );
    }

    const GOLDEN_DIFF_ID: &str =
        "sha256:6e18745fda9b49772aa01190c8b39dd49dce9d1e2251b374a28d4f216667f730";
    const GOLDEN_ZSTD_DIGEST: &str =
        "sha256:7bf7256c571f09fe7ecb36f84ff4c6a8ed6b1a6726bf538f4127d614a1d4e22e";
    const GOLDEN_DIGEST: &str =
        "sha256:3806fdb070586c62a2dd2e45f198bef0fe8d251a6941030a5ec23dde045ba5ed";
}
