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

/// Copy the tree `from` into `to` (created if missing), in sorted order.
/// Symbolic links are copied as links. Returns the number of bytes copied.
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
            // wasip2 has no portable symlink API in std; refuse rather than
            // silently drop the link.
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{} is a symbolic link, which the SDK cannot copy",
                    entry.display()
                ),
            ));
        }
    }
    Ok(bytes)
}
