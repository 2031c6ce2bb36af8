//! Filesystem helpers that keep builds deterministic, and `std::fs` with
//! errors that name the path.
//!
//! The functions and types of `std::fs` are here under the same names
//! (from the `fs-err` crate): `cascade_sdk::fs::read_to_string(path)?`
//! fails with "failed to read from file `/workspace/go.mod`: …" where
//! `std::fs` would say only "No such file or directory", so the app
//! developer sees which file.

use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

pub use fs_err::{
    DirEntry, File, OpenOptions, ReadDir, canonicalize, copy, create_dir, create_dir_all,
    hard_link, metadata, read, read_dir, read_link, read_to_string, remove_dir, remove_dir_all,
    remove_file, rename, set_permissions, symlink_metadata, write,
};

/// The entries of `dir`, sorted by file name (bytewise).
///
/// WASI hands out directory entries in the host filesystem's order, which
/// differs between machines; anything whose order reaches a layer or a
/// process list must be sorted.
pub fn read_dir_sorted(dir: impl AsRef<Path>) -> io::Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

/// A fingerprint of named contents (FNV-1a, 64 bits, hex), for layer
/// metadata that must change when built files do: a buildpack keeps its
/// binaries' layer, blob and all, while this stays the same.
pub fn fingerprint(files: &[(String, Vec<u8>)]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, bytes) in files {
        for b in name.bytes().chain([0]).chain(bytes.iter().copied()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The sha256 of `bytes`, as 64 lowercase hex digits: what a lockfile's
/// digest in layer metadata, or a download's pin, is written as.
pub fn sha256(bytes: impl AsRef<[u8]>) -> String {
    hex(&Sha256::digest(bytes.as_ref()))
}

/// The sha256 of the file at `path` (read in pieces, not whole), as 64
/// lowercase hex digits; the error names the file.
pub fn sha256_file(path: impl AsRef<Path>) -> io::Result<String> {
    let mut file = File::open(path.as_ref())?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Move what lies `depth` directories down in `from` into `to` (created if
/// missing), as `tar --strip-components=depth` would have unpacked it, then
/// remove `from`. Files and links above that depth are dropped, as tar
/// drops them; two entries that land on one name are an error naming it.
/// Links are moved as links, never followed.
pub fn strip_components(from: &Path, to: &Path, depth: usize) -> io::Result<()> {
    fn collect(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> io::Result<()> {
        for entry in read_dir_sorted(dir)? {
            if depth == 0 {
                out.push(entry);
            } else if symlink_metadata(&entry)?.is_dir() {
                collect(&entry, depth - 1, out)?;
            }
        }
        Ok(())
    }
    let mut entries = Vec::new();
    collect(from, depth, &mut entries)?;
    create_dir_all(to)?;
    for entry in entries {
        let dest = to.join(entry.file_name().unwrap_or_default());
        if symlink_metadata(&dest).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{}: more than one entry of the archive lands here once {depth} leading directories are stripped",
                    dest.display()
                ),
            ));
        }
        rename(&entry, &dest)?;
    }
    remove_dir_all(from)
}

/// Copy the tree `from` into `to` (created if missing), in sorted order.
/// Symbolic links are copied as links (see [`symlink`]). Returns the number of bytes copied.
pub fn copy_tree(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (from.as_ref(), to.as_ref());
    std::fs::create_dir_all(to)?;
    let mut bytes = 0;
    for entry in read_dir_sorted(from)? {
        let target = to.join(entry.file_name().unwrap_or_default());
        let meta = std::fs::symlink_metadata(&entry)?;
        if meta.is_dir() {
            bytes += copy_tree(&entry, &target)?;
        } else if meta.is_file() {
            bytes += std::fs::copy(&entry, &target)?;
        } else if meta.file_type().is_symlink() {
            symlink(std::fs::read_link(&entry)?, &target)?;
        }
    }
    Ok(bytes)
}

/// What [`copy_tree_filtered`] asks about each entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir,
    File,
    /// A symbolic link, with its target as stored.
    Link(PathBuf),
}

/// [`copy_tree`], keeping only the entries `keep` says yes to; it gets the
/// path relative to `from` and what the entry is. A directory said no to is
/// not entered.
pub fn copy_tree_filtered(
    from: impl AsRef<Path>,
    to: impl AsRef<Path>,
    keep: &mut dyn FnMut(&Path, &Entry) -> bool,
) -> io::Result<u64> {
    fn walk(
        from: &Path,
        to: &Path,
        rel: &Path,
        keep: &mut dyn FnMut(&Path, &Entry) -> bool,
    ) -> io::Result<u64> {
        std::fs::create_dir_all(to)?;
        let mut bytes = 0;
        for entry in read_dir_sorted(from)? {
            let name = entry.file_name().unwrap_or_default();
            let (target, rel) = (to.join(name), rel.join(name));
            let meta = std::fs::symlink_metadata(&entry)?;
            if meta.is_dir() {
                if keep(&rel, &Entry::Dir) {
                    bytes += walk(&entry, &target, &rel, keep)?;
                }
            } else if meta.is_file() {
                if keep(&rel, &Entry::File) {
                    bytes += std::fs::copy(&entry, &target)?;
                }
            } else if meta.file_type().is_symlink() {
                let link = std::fs::read_link(&entry)?;
                if keep(&rel, &Entry::Link(link.clone())) {
                    symlink(link, &target)?;
                }
            }
        }
        Ok(bytes)
    }
    walk(from.as_ref(), to.as_ref(), Path::new(""), keep)
}

/// Create the symbolic link `link` pointing at `target`.
///
/// `target` must be relative: the sandbox refuses absolute targets, which
/// would point somewhere else on every machine that unpacks the image. A
/// link may cross from the app to a layer (`/workspace/node_modules` ->
/// `../layers/<id>/modules/node_modules`) because the image lays them out
/// as the sandbox does. Rust's std has no stable symlink API on WASI, so
/// this calls `wasi:filesystem` on the preopened directory holding `link`.
pub fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (target, link) = (target.as_ref(), link.as_ref());
    if target.has_root() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "symlink {} -> {}: the target must be relative",
                link.display(),
                target.display()
            ),
        ));
    }
    symlink_impl(target, link)
}

#[cfg(target_os = "wasi")]
fn symlink_impl(target: &Path, link: &Path) -> io::Result<()> {
    let unsupported = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("symlink {}: {what}", link.display()),
        )
    };
    let target = target.to_str().ok_or_else(|| unsupported("not UTF-8"))?;
    let dirs = wasip2::filesystem::preopens::get_directories();
    let (dir, rel) = dirs
        .iter()
        .filter_map(|(d, root)| link.strip_prefix(root).ok().map(|rel| (d, rel)))
        .min_by_key(|(_, rel)| rel.components().count())
        .ok_or_else(|| unsupported("not under a directory this buildpack may write"))?;
    let rel = rel.to_str().ok_or_else(|| unsupported("not UTF-8"))?;
    dir.symlink_at(target, rel)
        .map_err(|e| io::Error::other(format!("symlink {}: {e}", link.display())))
}

/// Natively (the SDK's own unit tests).
#[cfg(all(not(target_os = "wasi"), unix))]
fn symlink_impl(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(any(target_os = "wasi", unix)))]
fn symlink_impl(_: &Path, link: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("symlink {}: not on this platform", link.display()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_bytes_and_of_a_file_agree() {
        let dir = tempfile_dir();
        let file = dir.join("lock");
        std::fs::write(&file, b"abc").unwrap();
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256(b"abc"), expected);
        assert_eq!(sha256_file(&file).unwrap(), expected);
        let err = sha256_file(dir.join("gone")).unwrap_err();
        assert!(err.to_string().contains("gone"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn strip_components_moves_the_inner_tree_up() {
        let dir = tempfile_dir();
        let from = dir.join("unpacked");
        std::fs::create_dir_all(from.join("node-v22/bin")).unwrap();
        std::fs::write(from.join("node-v22/bin/node"), "elf").unwrap();
        std::fs::write(from.join("node-v22/LICENSE"), "mit").unwrap();
        std::fs::write(from.join("top-level-file"), "dropped").unwrap();
        symlink("node-v22/bin", from.join("link-above")).unwrap();
        let to = dir.join("layer");
        strip_components(&from, &to, 1).unwrap();
        assert_eq!(std::fs::read_to_string(to.join("bin/node")).unwrap(), "elf");
        assert!(to.join("LICENSE").is_file());
        assert!(!to.join("top-level-file").exists() && !to.join("link-above").exists());
        assert!(!from.exists());
        // Two top directories with the same inner name collide, by name.
        std::fs::create_dir_all(from.join("a/bin")).unwrap();
        std::fs::create_dir_all(from.join("b/bin")).unwrap();
        let err = strip_components(&from, &dir.join("twice"), 1).unwrap_err();
        assert!(err.to_string().contains("twice/bin"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cascade-sdk-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn fingerprints_change_with_names_and_bytes() {
        let a = fingerprint(&[("a".into(), vec![1])]);
        assert_eq!(a, fingerprint(&[("a".into(), vec![1])]));
        assert_ne!(a, fingerprint(&[("a".into(), vec![2])]));
        assert_ne!(a, fingerprint(&[("b".into(), vec![1])]));
        // The name ends where the bytes begin.
        assert_ne!(
            fingerprint(&[("ab".into(), vec![])]),
            fingerprint(&[("a".into(), b"b".to_vec())])
        );
    }
}
