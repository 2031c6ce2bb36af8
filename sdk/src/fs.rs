//! Filesystem helpers that keep builds deterministic.

use std::io;
use std::path::{Path, PathBuf};

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
