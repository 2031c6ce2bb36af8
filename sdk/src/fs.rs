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
