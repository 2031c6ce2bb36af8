//! The one way the host reaches a tree a guest can write.
//!
//! A buildpack writes its layers dir and `/workspace` through WASI, and the
//! tools it execs write them too; both may leave symbolic links that point
//! anywhere (`out -> ../../../../home/me`), replace a layer dir by a link, or
//! chain links (`a -> .`, `a/b -> ..`) so that a path that looks inside
//! resolves outside. The host reads and writes those trees afterwards
//! (unpack, fetch, export, cache, SBOM, size accounting), so every such
//! access goes through a [`GuestTree`]: a directory handle (cap-std's
//! [`Dir`], the crate wasmtime-wasi's own preopens stand on) under which
//! every path is resolved *beneath* the handle. A link that would climb out
//! is an error, never followed; walks never follow links at all and report
//! them as links; FIFOs, devices and sockets are refused.
//!
//! Code outside this module holds a `GuestTree`, not a path: [`GuestTree::path`]
//! is for messages and tests only. Where another program must see the tree
//! (wasmtime-wasi's preopens, bubblewrap's binds), it gets the handle itself
//! ([`GuestTree::proc_path`], [`GuestTree::inheritable_fd`]), so a path
//! swapped after the check cannot redirect it (docs/security.md).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use cap_fs_ext::{DirExt, OpenOptionsFollowExt};
use cap_std::fs::{Dir, FileType, Metadata, OpenOptions, OpenOptionsExt};

pub use cap_std::fs::MetadataExt;

/// Directories deeper than this are refused: a walk holds one handle per
/// level, and no real dependency tree comes near it.
pub const MAX_DEPTH: usize = 256;

/// A directory a guest may have written, held open.
#[derive(Debug)]
pub struct GuestTree {
    dir: Dir,
    /// Where it is, for messages; never resolved again.
    path: PathBuf,
}

/// What a walk finds (links are never followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    /// A symbolic link and its target, as stored.
    Symlink(PathBuf),
}

/// One entry of a walk.
pub struct Entry<'a> {
    /// Path relative to the tree's root.
    pub rel: &'a Path,
    pub kind: EntryKind,
    pub meta: &'a Metadata,
    parent: &'a Dir,
    name: &'a OsStr,
}

impl Entry<'_> {
    /// Open this regular file for reading, without following a link that
    /// may have replaced it since the walk saw it.
    pub fn open(&self) -> io::Result<std::fs::File> {
        let file = self
            .parent
            .open_with(self.name, &read_nofollow())?
            .into_std();
        if !file.metadata()?.is_file() {
            return Err(io::Error::other(format!(
                "{}: no longer a regular file",
                self.rel.display()
            )));
        }
        Ok(file)
    }
}

/// Read-only, no link followed, and non-blocking, so that a FIFO swapped
/// in after a walk saw a file cannot hang the open (reads of a regular file
/// are unaffected); callers check what they opened is a regular file.
fn read_nofollow() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true)
        .follow(cap_fs_ext::FollowSymlinks::No)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits().cast_signed());
    o
}

fn other(path: &Path, what: &str) -> io::Error {
    io::Error::other(format!("{}: {what}", path.display()))
}

fn with_path(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// `rel` as plain names only: no root, no `..`, not empty.
fn plain(rel: &Path) -> io::Result<Vec<&OsStr>> {
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{}: a path inside the tree must be relative, without ..",
                        rel.display()
                    ),
                ));
            }
        }
    }
    Ok(parts)
}

/// What kind of entry `ft` is, or an error for the kinds a tree may not hold.
fn kind_of(ft: FileType, path: &Path) -> io::Result<Option<()>> {
    use cap_fs_ext::FileTypeExt;
    if ft.is_dir() || ft.is_file() || ft.is_symlink() {
        return Ok(Some(()));
    }
    let what = if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else {
        "of an unknown type"
    };
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "{}: is {what}; only files, directories and symbolic links are allowed",
            path.display()
        ),
    ))
}

impl GuestTree {
    /// Open the directory at `path`, which the host made (its parents are the
    /// host's), refusing a link in its place.
    pub fn open(path: &Path) -> io::Result<Self> {
        let (parent, name) = match (path.parent(), path.file_name()) {
            (Some(p), Some(n)) => (
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                },
                n,
            ),
            _ => return Err(other(path, "not a directory path")),
        };
        let parent = Dir::open_ambient_dir(parent, cap_std::ambient_authority())
            .map_err(with_path(parent))?;
        let dir = open_dir_strict(&parent, Path::new(name), path)?;
        Ok(Self {
            dir,
            path: path.to_path_buf(),
        })
    }

    /// Open a directory the user named (the app), following links to it as
    /// the user's shell would; what is beneath is then treated as any
    /// guest tree.
    pub fn open_named(path: &Path) -> io::Result<Self> {
        let dir =
            Dir::open_ambient_dir(path, cap_std::ambient_authority()).map_err(with_path(path))?;
        Ok(Self {
            dir,
            path: path.to_path_buf(),
        })
    }

    /// Create the directory at `path` (a host path, see [`Self::open`]) and
    /// open it.
    pub fn create(path: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(path).map_err(with_path(path))?;
        Self::open(path)
    }

    /// Where the tree is, for messages (and tests): the host never opens it
    /// by this path again.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Another handle to the same directory.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            dir: self.dir.try_clone()?,
            path: self.path.clone(),
        })
    }

    /// The real directory at `rel`: every component a directory, none a link.
    pub fn subtree(&self, rel: impl AsRef<Path>) -> io::Result<GuestTree> {
        let rel = rel.as_ref();
        let path = self.path.join(rel);
        let mut dir = self.dir.try_clone()?;
        for part in plain(rel)? {
            dir = open_dir_strict(&dir, Path::new(part), &path)?;
        }
        Ok(GuestTree { dir, path })
    }

    /// Whether `rel` is a real directory (not a link to one).
    pub fn is_real_dir(&self, rel: impl AsRef<Path>) -> bool {
        self.dir
            .symlink_metadata(rel.as_ref())
            .is_ok_and(|m| m.file_type().is_dir())
    }

    /// The names in the real directory `rel`, sorted bytewise.
    pub fn children(&self, rel: impl AsRef<Path>) -> io::Result<Vec<OsString>> {
        let sub = self.subtree(rel)?;
        let mut names = Vec::new();
        for entry in sub.dir.entries().map_err(with_path(&sub.path))? {
            names.push(entry.map_err(with_path(&sub.path))?.file_name());
        }
        names.sort();
        Ok(names)
    }

    /// Make the root and every directory beneath it owner-`rwx`, through
    /// handles (each directory opened strictly, links never followed), so
    /// a tree whose guest made directories unreadable (`chmod 000`) can be
    /// removed. Best effort below the root: what cannot be opened stays.
    pub fn open_up(&self) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let rwx = || std::fs::Permissions::from_mode(0o700);
        // Through /proc/self/fd: the handles may be O_PATH, which fchmod
        // refuses; the magic link names the directory itself.
        std::fs::set_permissions(self.proc_path(), rwx()).map_err(with_path(&self.path))?;
        let mut todo: Vec<PathBuf> = vec![PathBuf::new()];
        while let Some(rel) = todo.pop() {
            let Ok(sub) = self.subtree(&rel) else {
                continue;
            };
            let Ok(names) = sub.children("") else {
                continue;
            };
            for name in names {
                let is_dir = sub
                    .dir
                    .symlink_metadata(&name)
                    .is_ok_and(|m| m.file_type().is_dir());
                if !is_dir {
                    continue;
                }
                if let Ok(child) = sub.dir.open_dir_nofollow(&name) {
                    let fd = std::os::fd::AsRawFd::as_raw_fd(&child.as_fd());
                    let _ = std::fs::set_permissions(format!("/proc/self/fd/{fd}"), rwx());
                }
                if rel.components().count() < MAX_DEPTH {
                    todo.push(rel.join(&name));
                }
            }
        }
        Ok(())
    }

    /// Whether anything (a link included) is at `rel`.
    pub fn exists(&self, rel: impl AsRef<Path>) -> bool {
        self.dir.symlink_metadata(rel.as_ref()).is_ok()
    }

    /// Make `rel` a directory, creating what is missing; an existing
    /// component must be a real directory, not a link to one.
    pub fn create_dir_all(&self, rel: impl AsRef<Path>) -> io::Result<GuestTree> {
        let rel = rel.as_ref();
        let path = self.path.join(rel);
        let mut dir = self.dir.try_clone()?;
        for part in plain(rel)? {
            match dir.create_dir(part) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                    return Err(with_path(&path)(e));
                }
                _ => {}
            }
            dir = open_dir_strict(&dir, Path::new(part), &path)?;
        }
        Ok(GuestTree { dir, path })
    }

    /// The parent directory of `rel` (created, real) and `rel`'s last name.
    fn parent_of<'r>(&self, rel: &'r Path) -> io::Result<(GuestTree, &'r OsStr)> {
        let parts = plain(rel)?;
        let Some((name, parents)) = parts.split_last() else {
            return Err(other(rel, "an empty path"));
        };
        let parent: PathBuf = parents.iter().collect();
        Ok((self.create_dir_all(parent)?, name))
    }

    /// Remove what is at `name` in this directory unless it is a directory:
    /// a new entry never goes through an old link.
    fn clear(&self, name: &OsStr) -> io::Result<()> {
        match self.dir.symlink_metadata(name) {
            Ok(m) if m.file_type().is_dir() => {
                Err(other(&self.path.join(name), "a directory is in the way"))
            }
            Ok(_) => self
                .dir
                .remove_file_or_symlink(name)
                .map_err(with_path(&self.path.join(name))),
            Err(_) => Ok(()),
        }
    }

    /// A new regular file at `rel` (mode 0644 or 0755), replacing a file or
    /// link there; its parent directories must be real ones.
    pub fn create_file(&self, rel: impl AsRef<Path>, exec: bool) -> io::Result<std::fs::File> {
        let rel = rel.as_ref();
        let (parent, name) = self.parent_of(rel)?;
        parent.clear(name)?;
        let mut o = OpenOptions::new();
        o.write(true)
            .create_new(true)
            .follow(cap_fs_ext::FollowSymlinks::No)
            .mode(if exec { 0o755 } else { 0o644 });
        let file = parent
            .dir
            .open_with(name, &o)
            .map_err(with_path(&self.path.join(rel)))?;
        Ok(file.into_std())
    }

    /// Open the regular file at `rel` for reading. Links inside the tree are
    /// followed; one that leads out is an error, and so is anything but a
    /// regular file.
    pub fn open_file(&self, rel: impl AsRef<Path>) -> io::Result<std::fs::File> {
        let rel = rel.as_ref();
        plain(rel)?;
        let path = self.path.join(rel);
        let file = self.dir.open(rel).map_err(with_path(&path))?.into_std();
        if !file.metadata().map_err(with_path(&path))?.is_file() {
            return Err(other(&path, "not a regular file"));
        }
        Ok(file)
    }

    /// Open the regular file at `rel` only if no link is anywhere on its
    /// path: for files the host reads as configuration (project.toml).
    pub fn open_file_nofollow(&self, rel: impl AsRef<Path>) -> io::Result<std::fs::File> {
        let rel = rel.as_ref();
        let (parent, name) = {
            let parts = plain(rel)?;
            let Some((name, parents)) = parts.split_last() else {
                return Err(other(rel, "an empty path"));
            };
            (self.subtree(parents.iter().collect::<PathBuf>())?, *name)
        };
        let path = self.path.join(rel);
        if parent
            .dir
            .symlink_metadata(name)
            .map_err(with_path(&path))?
            .file_type()
            .is_symlink()
        {
            return Err(other(&path, "is a symbolic link: refused"));
        }
        let file = parent
            .dir
            .open_with(name, &read_nofollow())
            .map_err(with_path(&path))?
            .into_std();
        if !file.metadata().map_err(with_path(&path))?.is_file() {
            return Err(other(&path, "not a regular file"));
        }
        Ok(file)
    }

    /// Metadata of `rel`, links inside the tree followed, none out of it.
    pub fn metadata(&self, rel: impl AsRef<Path>) -> io::Result<Metadata> {
        let rel = rel.as_ref();
        plain(rel)?;
        self.dir
            .metadata(rel)
            .map_err(with_path(&self.path.join(rel)))
    }

    /// `rel` with every link resolved beneath the root, as a path relative to
    /// it; an error if resolving it would leave the tree.
    pub fn canonical(&self, rel: impl AsRef<Path>) -> io::Result<PathBuf> {
        let rel = rel.as_ref();
        if plain(rel)?.is_empty() {
            return Ok(PathBuf::new());
        }
        self.dir
            .canonicalize(rel)
            .map_err(with_path(&self.path.join(rel)))
    }

    /// `rel` resolved as the kernel resolves it for a process whose root is
    /// this tree (an image's filesystem): an absolute link target means the
    /// tree's root, `..` stops there. Each step is a lookup beneath the
    /// handle that follows nothing, so no link reaches outside; the result
    /// holds no link. At most 40 links, as Linux allows.
    pub fn resolve_rooted(&self, rel: impl AsRef<Path>) -> io::Result<PathBuf> {
        use std::collections::VecDeque;
        let rel = rel.as_ref();
        let parts = |p: &Path| -> VecDeque<OsString> {
            p.components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n.to_os_string()),
                    Component::ParentDir => Some(OsString::from("..")),
                    _ => None,
                })
                .collect()
        };
        let mut todo = parts(rel);
        let mut done = PathBuf::new();
        let mut hops = 0;
        while let Some(part) = todo.pop_front() {
            if part == ".." {
                done.pop();
                continue;
            }
            let next = done.join(&part);
            let meta = self
                .dir
                .symlink_metadata(&next)
                .map_err(with_path(&self.path.join(&next)))?;
            if !meta.file_type().is_symlink() {
                done = next;
                continue;
            }
            hops += 1;
            if hops > 40 {
                return Err(other(&self.path.join(rel), "too many levels of links"));
            }
            let target = self
                .dir
                .read_link_contents(&next)
                .map_err(with_path(&self.path.join(&next)))?;
            if target.is_absolute() {
                done = PathBuf::new();
            }
            let mut ahead = parts(&target);
            ahead.extend(todo);
            todo = ahead;
        }
        Ok(done)
    }

    /// A symbolic link at `rel` to `target`, stored as given (the caller
    /// decides which targets it allows; the host never follows it out).
    pub fn symlink(&self, target: impl AsRef<Path>, rel: impl AsRef<Path>) -> io::Result<()> {
        let rel = rel.as_ref();
        let (parent, name) = self.parent_of(rel)?;
        parent.clear(name)?;
        parent
            .dir
            .symlink_contents(target.as_ref(), name)
            .map_err(with_path(&self.path.join(rel)))
    }

    /// A hard link at `rel` to the existing regular file `existing` (both in
    /// this tree; a link at `existing` is not followed).
    pub fn hard_link(&self, existing: impl AsRef<Path>, rel: impl AsRef<Path>) -> io::Result<()> {
        let (existing, rel) = (existing.as_ref(), rel.as_ref());
        let (src_parent, src_name) = self.parent_of(existing)?;
        let meta = src_parent
            .dir
            .symlink_metadata(src_name)
            .map_err(with_path(&self.path.join(existing)))?;
        if !meta.is_file() {
            return Err(other(&self.path.join(existing), "not a regular file"));
        }
        let (parent, name) = self.parent_of(rel)?;
        parent.clear(name)?;
        src_parent
            .dir
            .hard_link(src_name, &parent.dir, name)
            .map_err(with_path(&self.path.join(rel)))
    }

    /// Move `rel` (whatever it is; a link is moved as a link) to `to_rel`
    /// under `to`, replacing nothing.
    pub fn rename(
        &self,
        rel: impl AsRef<Path>,
        to: &GuestTree,
        to_rel: impl AsRef<Path>,
    ) -> io::Result<()> {
        let (rel, to_rel) = (rel.as_ref(), to_rel.as_ref());
        let (from_parent, from_name) = self.parent_of(rel)?;
        let (to_parent, to_name) = to.parent_of(to_rel)?;
        if to_parent.exists(to_name) {
            return Err(other(&to.path.join(to_rel), "already exists"));
        }
        from_parent
            .dir
            .rename(from_name, &to_parent.dir, to_name)
            .map_err(with_path(&self.path.join(rel)))
    }

    /// Remove `rel` and everything beneath it, links as links.
    pub fn remove_all(&self, rel: impl AsRef<Path>) -> io::Result<()> {
        let rel = rel.as_ref();
        let path = self.path.join(rel);
        match self.dir.symlink_metadata(rel) {
            Ok(m) if m.file_type().is_dir() => {
                self.dir.remove_dir_all(rel).map_err(with_path(&path))
            }
            Ok(_) => self
                .dir
                .remove_file_or_symlink(rel)
                .map_err(with_path(&path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(with_path(&path)(e)),
        }
    }

    /// Visit every entry beneath the root, depth first, names sorted
    /// bytewise, a directory before what it holds. Links are reported, not
    /// followed; a FIFO, device or socket ends the walk with an error.
    pub fn walk(&self, visit: &mut dyn FnMut(&Entry<'_>) -> io::Result<()>) -> io::Result<()> {
        self.walk_filtered(&mut |_, _| true, visit)
    }

    /// [`Self::walk`], skipping each entry for which `keep(rel, is_dir)`
    /// is false (a skipped directory is not entered).
    pub fn walk_filtered(
        &self,
        keep: &mut dyn FnMut(&Path, bool) -> bool,
        visit: &mut dyn FnMut(&Entry<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        walk_dir(&self.dir, &self.path, &mut PathBuf::new(), 0, keep, visit)
    }

    /// Bytes of the regular files beneath the root.
    pub fn bytes(&self) -> io::Result<u64> {
        let mut total = 0u64;
        self.walk(&mut |e| {
            if e.kind == EntryKind::File {
                total = total.saturating_add(e.meta.len());
            }
            Ok(())
        })?;
        Ok(total)
    }

    /// A path by which this very directory (not whatever is at
    /// [`Self::path`] now) can be opened by this process while the handle
    /// lives: for wasmtime-wasi's preopens, which take a path.
    pub fn proc_path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_fd().as_raw_fd()))
    }

    /// A duplicate of the handle that a child process inherits (no
    /// close-on-exec), for `bwrap --bind-fd`, which closes it after
    /// mounting: drop it once the child is started.
    pub fn inheritable_fd(&self) -> io::Result<OwnedFd> {
        Ok(rustix::io::dup(self.dir.as_fd())?)
    }
}

/// Open `name` under `dir` as a directory, refusing a link in its place.
fn open_dir_strict(dir: &Dir, name: &Path, shown: &Path) -> io::Result<Dir> {
    match dir.symlink_metadata(name) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(other(shown, "is a symbolic link, not a directory: refused"));
        }
        Ok(m) if !m.file_type().is_dir() => {
            return Err(other(shown, "not a directory"));
        }
        Ok(_) => {}
        Err(e) => return Err(with_path(shown)(e)),
    }
    dir.open_dir_nofollow(name).map_err(with_path(shown))
}

fn walk_dir(
    dir: &Dir,
    root: &Path,
    rel: &mut PathBuf,
    depth: usize,
    keep: &mut dyn FnMut(&Path, bool) -> bool,
    visit: &mut dyn FnMut(&Entry<'_>) -> io::Result<()>,
) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(other(
            &root.join(&*rel),
            &format!("nested deeper than {MAX_DEPTH} directories: refused"),
        ));
    }
    let mut names: Vec<OsString> = dir
        .entries()
        .map_err(with_path(&root.join(&*rel)))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(with_path(&root.join(&*rel)))?;
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    for name in &names {
        rel.push(name);
        let shown = root.join(&*rel);
        let meta = dir.symlink_metadata(name).map_err(with_path(&shown))?;
        let ft = meta.file_type();
        kind_of(ft, &shown)?;
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_symlink() {
            EntryKind::Symlink(dir.read_link_contents(name).map_err(with_path(&shown))?)
        } else {
            EntryKind::File
        };
        let is_dir = kind == EntryKind::Dir;
        if !keep(rel, is_dir) {
            rel.pop();
            continue;
        }
        visit(&Entry {
            rel,
            kind,
            meta: &meta,
            parent: dir,
            name,
        })?;
        if is_dir {
            let sub = open_dir_strict(dir, Path::new(name), &shown)?;
            walk_dir(&sub, root, rel, depth + 1, keep, visit)?;
        }
        rel.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn tree() -> (tempfile::TempDir, GuestTree) {
        let tmp = tempfile::tempdir().unwrap();
        let t = GuestTree::create(&tmp.path().join("root")).unwrap();
        (tmp, t)
    }

    #[test]
    fn open_up_makes_locked_dirs_removable_and_follows_no_link() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o500)).unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("a/out")).unwrap();
        let tree = GuestTree::open(&root).unwrap();
        for locked in ["a/b", "a", ""] {
            std::fs::set_permissions(root.join(locked), std::fs::Permissions::from_mode(0o000))
                .unwrap();
        }
        tree.open_up().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root.join("a/b")), 0o700);
        assert_eq!(mode(&outside), 0o500, "a link is not followed");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_link_in_place_of_the_root_or_a_subtree_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        symlink(tmp.path().join("real"), tmp.path().join("link")).unwrap();
        let e = GuestTree::open(&tmp.path().join("link")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let t = GuestTree::open(tmp.path()).unwrap();
        assert!(t.subtree("real").is_ok());
        assert!(t.subtree("link").is_err());
        assert!(!t.is_real_dir("link"));
    }

    #[test]
    fn writes_never_climb_out_through_links() {
        let (tmp, t) = tree();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        symlink(&outside, t.path().join("abs")).unwrap();
        symlink("../outside", t.path().join("rel")).unwrap();
        symlink(".", t.path().join("a")).unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        symlink("..", t.path().join("d/up")).unwrap();
        for rel in [
            "abs/x",
            "rel/x",
            "d/up/outside/x",
            "a/rel/x",
            "../outside/x",
        ] {
            assert!(t.create_file(rel, false).is_err(), "{rel} was written");
            assert!(t.create_dir_all(rel).is_err(), "{rel} was made");
            assert!(t.symlink("y", rel).is_err(), "{rel} was linked");
        }
        assert!(t.open_file("abs").is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn a_new_file_replaces_a_link_instead_of_writing_through_it() {
        let (tmp, t) = tree();
        let secret = tmp.path().join("secret");
        std::fs::write(&secret, "keep").unwrap();
        symlink(&secret, t.path().join("f")).unwrap();
        std::io::Write::write_all(&mut t.create_file("f", false).unwrap(), b"new").unwrap();
        assert_eq!(std::fs::read(&secret).unwrap(), b"keep");
        assert_eq!(std::fs::read(t.path().join("f")).unwrap(), b"new");
    }

    #[test]
    fn reads_follow_links_inside_only() {
        let (tmp, t) = tree();
        std::fs::write(tmp.path().join("secret"), "s").unwrap();
        std::fs::write(t.path().join("f"), "in").unwrap();
        symlink("f", t.path().join("ok")).unwrap();
        symlink("../secret", t.path().join("out")).unwrap();
        assert!(t.open_file("ok").is_ok());
        assert!(t.open_file("out").is_err());
        assert!(
            t.open_file_nofollow("ok").is_err(),
            "config files are not links"
        );
        assert!(t.open_file_nofollow("f").is_ok());
    }

    #[test]
    fn walks_are_sorted_report_links_and_refuse_fifos() {
        let (tmp, t) = tree();
        std::fs::create_dir_all(t.path().join("b/c")).unwrap();
        std::fs::write(t.path().join("b/c/f"), "12345").unwrap();
        std::fs::write(t.path().join("a"), "1").unwrap();
        symlink(tmp.path(), t.path().join("z")).unwrap();
        let mut seen = Vec::new();
        t.walk(&mut |e| {
            seen.push((e.rel.to_path_buf(), e.kind.clone()));
            Ok(())
        })
        .unwrap();
        let names: Vec<_> = seen.iter().map(|(p, _)| p.to_str().unwrap()).collect();
        assert_eq!(names, ["a", "b", "b/c", "b/c/f", "z"]);
        assert_eq!(seen[4].1, EntryKind::Symlink(tmp.path().into()));
        assert_eq!(t.bytes().unwrap(), 6);

        let status = std::process::Command::new("mkfifo")
            .arg(t.path().join("pipe"))
            .status();
        if status.is_ok_and(|s| s.success()) {
            let e = t.walk(&mut |_| Ok(())).unwrap_err();
            assert!(e.to_string().contains("FIFO"), "{e}");
        }
    }

    #[test]
    fn the_proc_path_names_the_handle_not_the_path() {
        let (tmp, t) = tree();
        std::fs::write(t.path().join("mine"), "").unwrap();
        let moved = tmp.path().join("moved");
        std::fs::rename(t.path(), &moved).unwrap();
        std::fs::create_dir(t.path()).unwrap();
        assert!(t.proc_path().join("mine").exists());
        assert!(!t.path().join("mine").exists());
    }
}
