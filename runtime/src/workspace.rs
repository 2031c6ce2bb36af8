//! The build's private copy of the app, and what lets a rebuild skip both
//! copying it and hashing it.
//!
//! Buildpacks write `/workspace` (an `npm run build` writes `dist/`, a tool
//! rewrites a file in place) and the user's tree is never written, so every
//! build runs in a copy. Copying a big app on every build was most of a
//! no-op rebuild, so when the image has a build cache the copy is kept in
//! it and brought back in line with the app before each build: only what
//! differs is copied or removed ([`sync`]). After the build, the app layer
//! is recognised by a [`stamp`] of the tree, taken with `stat` alone, as
//! cache layers are.
//!
//! Both decisions rest on `stat`, never on reading bytes, so they must not
//! be foolable by the guest, who wrote the kept copy during the last build:
//! - A copy is recorded by inode, ctime, size, link count and mode, and is
//!   created with exactly 0644 or 0755. Every change a process can
//!   make to a file (write, truncate, chmod, utimes, replacing it by rename
//!   or by a new file on a reused inode) moves its ctime, which no
//!   unprivileged process can set back. After copying, [`sync`] waits until
//!   the file system's clock has passed the newest copy's ctime, so a guest's
//!   write in the same clock tick as the copy still shows.
//! - A kept directory must have mode 0755, no extended attributes but the
//!   system's `security.*` (a default ACL a tool set would change the modes
//!   of files later created in it) and no case-folding, encryption,
//!   immutable or append-only flag; otherwise it is made again.
//! - An app file is recorded by device, inode, size, mtime, ctime and mode.
//!   One whose ctime is within a second of the sync's start is not trusted
//!   next time (the clock-tick race known from git's index), so it is copied
//!   again.
//! - A stamp counts only if every entry's ctime precedes a clock probe taken
//!   before the walk: a change after the walk then always shows.
//!
//! Why a kept copy and not links: a hard link would share the user's inode,
//! and a tool in the sandbox (same uid) could `chmod` and write it; reflinks
//! need btrfs or XFS (these machines have ext4); an overlay would cover the
//! tools bubblewrap starts but not the wasm guest, which writes through WASI
//! preopens.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::guest_tree::{EntryKind, GuestTree, MetadataExt as _};
use crate::project::Filter;

/// Bump when the record's meaning changes: an old record is then ignored
/// (every file is copied once more).
const RECORD_VERSION: u32 = 1;

/// An app file changed this recently before a sync is copied again next
/// time: a later change within the same timestamp tick would not show.
const RACY: Duration = Duration::from_secs(1);

/// What bringing the workspace in line with the app did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SyncStats {
    /// Files copied from the app (new, changed, or changed by the last build).
    pub copied_files: u64,
    pub copied_bytes: u64,
    /// Files the kept copy already held unchanged.
    pub kept_files: u64,
    /// Entries removed: what the last build added, or the app dropped (a
    /// directory counts once, with what it held).
    pub removed: u64,
}

impl SyncStats {
    /// One line for the build's progress output.
    pub fn summary(&self) -> String {
        format!(
            "workspace: {} files copied ({} bytes), {} kept, {} entries removed",
            self.copied_files, self.copied_bytes, self.kept_files, self.removed
        )
    }
}

/// `workspace.json`: the stamps of each app file and of its copy.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    version: u32,
    files: BTreeMap<String, FileStamps>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FileStamps {
    app: String,
    copy: String,
}

/// A ctime as (seconds, nanoseconds).
type Ctime = (i64, i64);

fn ctime(m: &cap_std::fs::Metadata) -> Ctime {
    (m.ctime(), m.ctime_nsec())
}

fn app_stamp(m: &cap_std::fs::Metadata) -> String {
    format!(
        "{}:{}:{}:{}.{}:{}.{}:{:o}",
        m.dev(),
        m.ino(),
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        m.mode()
    )
}

fn copy_stamp(m: &cap_std::fs::Metadata) -> String {
    format!(
        "{}:{}.{}:{}:{}:{:o}",
        m.ino(),
        m.ctime(),
        m.ctime_nsec(),
        m.len(),
        m.nlink(),
        m.mode()
    )
}

/// What the workspace holds at a path before the sync.
#[derive(Debug)]
enum Held {
    Dir { mode: u32 },
    File { copy: String },
    Symlink(PathBuf),
}

/// What the app asks for at a path.
enum Wanted {
    Dir,
    File { exec: bool, app: Option<String> },
    Symlink(PathBuf),
}

/// Bring the kept workspace under `cache_dir` in line with `app` (as
/// `filter` keeps it) and return it. A workspace that cannot be brought in
/// line (a directory a tool locked) is removed and copied afresh.
pub fn sync(
    app: &GuestTree,
    cache_dir: &Path,
    filter: &Filter,
) -> io::Result<(GuestTree, SyncStats)> {
    sync_at(app, cache_dir, filter, trusted_before())
}

fn sync_at(
    app: &GuestTree,
    cache_dir: &Path,
    filter: &Filter,
    trusted_before: SystemTime,
) -> io::Result<(GuestTree, SyncStats)> {
    let dir = cache_dir.join("workspace");
    let record_path = cache_dir.join("workspace.json");
    remove_trash(cache_dir);
    // The app first: an app the walk refuses (a FIFO in it) fails the build
    // and leaves the kept copy as it is.
    let wanted = wanted(app, filter, trusted_before)?;
    let record = std::fs::read(&record_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        .filter(|r| r.version == RECORD_VERSION)
        .unwrap_or_default();
    let attempt = GuestTree::create(&dir).and_then(|ws| {
        if !dir_is_plain(&ws) {
            return Err(io::Error::other("the workspace root has attributes set"));
        }
        chmod_755(&ws)?;
        let done = sync_into(&wanted, app, &ws, &record.files)?;
        Ok((ws, done))
    });
    let (workspace, mut synced) = if let Ok(done) = attempt {
        done
    } else {
        // A copy that cannot be brought in line (a directory a tool locked,
        // a FIFO, a tree too deep to walk) is set aside whole.
        discard(cache_dir)?;
        let ws = GuestTree::create(&dir)?;
        chmod_755(&ws)?;
        let done = sync_into(&wanted, app, &ws, &BTreeMap::new())?;
        (ws, done)
    };
    if let Some(newest) = synced.newest_copy
        && wait_past(cache_dir, newest).is_err()
    {
        // A clock that does not move (a file system with coarse ctimes):
        // this build's copies are not trusted next time.
        synced.stamps.retain(|k, _| !synced.copied.contains(k));
    }
    let record = Record {
        version: RECORD_VERSION,
        files: synced.stamps,
    };
    let bytes = serde_json::to_vec(&record).map_err(io::Error::other)?;
    crate::oci::layout::write_atomic(&record_path, &bytes).map_err(io::Error::other)?;
    Ok((workspace, synced.stats))
}

/// Forget the kept workspace under `cache_dir` (`--clear-cache`, or one
/// that cannot be brought in line): its record goes, and the copy is moved
/// aside by one rename (however deep it is) and removed as far as it can be.
pub fn discard(cache_dir: &Path) -> io::Result<()> {
    let record = cache_dir.join("workspace.json");
    match std::fs::remove_file(&record) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(with_path(&record, &e)),
        _ => {}
    }
    let dir = cache_dir.join("workspace");
    let trash = cache_dir.join(format!(
        "{TRASH}{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    match std::fs::rename(&dir, &trash) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(with_path(&dir, &e)),
        _ => {}
    }
    remove_trash(cache_dir);
    Ok(())
}

/// Where set-aside workspaces wait to be removed.
const TRASH: &str = "workspace.old-";

/// Remove set-aside workspaces, as far as they can be: what cannot be
/// (a tree a tool made unremovable) stays and is tried again next build.
fn remove_trash(cache_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(TRASH) {
            if let Ok(t) = GuestTree::open(&e.path()) {
                let _ = t.open_up();
            }
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A fresh copy of `app` in the new directory `dir` (a build without a
/// cache).
pub fn copy(app: &GuestTree, dir: &Path, filter: &Filter) -> io::Result<(GuestTree, SyncStats)> {
    let wanted = wanted(app, filter, trusted_before())?;
    let workspace = GuestTree::create(dir)?;
    let synced = sync_into(&wanted, app, &workspace, &BTreeMap::new())?;
    Ok((workspace, synced.stats))
}

/// What a sync did and leaves to record.
struct Synced {
    stats: SyncStats,
    stamps: BTreeMap<String, FileStamps>,
    /// The record keys of the files copied now.
    copied: BTreeSet<String>,
    /// The ctime of the newest copy made, if any was.
    newest_copy: Option<Ctime>,
}

/// App files whose timestamps are before this are trusted next time.
fn trusted_before() -> SystemTime {
    SystemTime::now()
        .checked_sub(RACY)
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn sync_into(
    wanted: &BTreeMap<PathBuf, Wanted>,
    app: &GuestTree,
    workspace: &GuestTree,
    record: &BTreeMap<String, FileStamps>,
) -> io::Result<Synced> {
    let held = held(workspace)?;
    let mut stats = SyncStats::default();

    // What already matches stays; a file only while both its app file and
    // its copy are what the record says they were.
    let mut keep = BTreeSet::new();
    // Kept directories that carry attributes (a default ACL would change
    // the modes of files created in them): removed and made again.
    let mut dirty: BTreeSet<PathBuf> = BTreeSet::new();
    let mut last_dirty: Option<&PathBuf> = None;
    for (rel, want) in wanted {
        // What a dirty directory holds goes with it (parents sort first).
        if last_dirty.is_some_and(|d| rel.starts_with(d)) {
            continue;
        }
        let ok = match (want, held.get(rel)) {
            (Wanted::Dir, Some(Held::Dir { mode })) => {
                if workspace.subtree(rel).is_ok_and(|d| dir_is_plain(&d)) {
                    mode & 0o7777 == 0o755
                } else {
                    dirty.insert(rel.clone());
                    last_dirty = Some(rel);
                    false
                }
            }
            (Wanted::Symlink(t), Some(Held::Symlink(h))) => t == h,
            (Wanted::File { app: Some(app), .. }, Some(Held::File { copy })) => key(rel)
                .and_then(|k| record.get(&k))
                .is_some_and(|r| &r.app == app && &r.copy == copy),
            _ => false,
        };
        if ok {
            keep.insert(rel.clone());
        }
    }

    // Remove the rest of what is held, parents first (a removed directory
    // takes what it holds), except the directories wanted as such.
    // (Paths sort by component, so what a directory holds follows it.)
    let mut removed_dir: Option<&PathBuf> = None;
    for (rel, h) in &held {
        if removed_dir.is_some_and(|d| rel.starts_with(d)) || keep.contains(rel) {
            continue;
        }
        match (h, wanted.get(rel)) {
            (Held::Dir { .. }, Some(Wanted::Dir)) if !dirty.contains(rel) => {
                // A dir with the wrong mode: set it, keep what it holds.
                set_dir_mode(workspace, rel)?;
                keep.insert(rel.clone());
                continue;
            }
            // Replaced below by a new file or link (never written through).
            (
                Held::File { .. } | Held::Symlink(_),
                Some(Wanted::File { .. } | Wanted::Symlink(_)),
            ) => {
                continue;
            }
            _ => {}
        }
        workspace.remove_all(rel)?;
        stats.removed += 1;
        if matches!(h, Held::Dir { .. }) {
            removed_dir = Some(rel);
        }
    }

    // Create what is missing, in walk order (a directory before what it
    // holds), and record every file's stamps.
    let mut out = Synced {
        stats,
        stamps: BTreeMap::new(),
        copied: BTreeSet::new(),
        newest_copy: None,
    };
    let stats = &mut out.stats;
    for (rel, want) in wanted {
        let kept = keep.contains(rel);
        match want {
            Wanted::Dir if !kept => {
                workspace.create_dir_all(rel)?;
                set_dir_mode(workspace, rel)?;
            }
            Wanted::Symlink(target) if !kept => workspace.symlink(target, rel)?,
            Wanted::File { app: stamp, .. } if kept => {
                stats.kept_files += 1;
                if let (Some(k), Some(_)) = (key(rel), stamp) {
                    out.stamps.insert(k.clone(), record[&k].clone());
                }
            }
            Wanted::File { exec, app: stamp } => {
                let (bytes, copied) = copy_file(app, workspace, rel, *exec)?;
                stats.copied_files += 1;
                stats.copied_bytes += bytes;
                let c = ctime(&copied);
                out.newest_copy = Some(out.newest_copy.map_or(c, |n| n.max(c)));
                if let (Some(k), Some(stamp)) = (key(rel), stamp) {
                    out.copied.insert(k.clone());
                    out.stamps.insert(
                        k,
                        FileStamps {
                            app: stamp.clone(),
                            copy: copy_stamp(&copied),
                        },
                    );
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A record key: the path as UTF-8 (a file whose path is not is simply
/// copied every time).
fn key(rel: &Path) -> Option<String> {
    rel.to_str().map(str::to_owned)
}

/// Every entry of the app the filter keeps, and the directories that hold
/// them. A file's stamp is `None` when it changed too recently to trust.
fn wanted(
    app: &GuestTree,
    filter: &Filter,
    trusted_before: SystemTime,
) -> io::Result<BTreeMap<PathBuf, Wanted>> {
    let limit = trusted_before
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut wanted = BTreeMap::new();
    app.walk_filtered(&mut |rel, is_dir| filter.keeps(rel, is_dir), &mut |e| {
        let want = match &e.kind {
            EntryKind::Dir if filter.keeps_dir_itself(e.rel) => Wanted::Dir,
            EntryKind::Dir => return Ok(()),
            EntryKind::Symlink(target) => Wanted::Symlink(target.clone()),
            EntryKind::File => Wanted::File {
                exec: e.meta.mode() & 0o111 != 0,
                app: (e.meta.ctime() < limit && e.meta.mtime() < limit).then(|| app_stamp(e.meta)),
            },
        };
        wanted.insert(e.rel.to_path_buf(), want);
        Ok(())
    })?;
    // The directories that hold what is kept, kept or not themselves.
    let parents: Vec<PathBuf> = wanted
        .keys()
        .flat_map(|rel| rel.ancestors().skip(1))
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .collect();
    for p in parents {
        wanted.entry(p).or_insert(Wanted::Dir);
    }
    Ok(wanted)
}

/// Everything the workspace holds now.
fn held(workspace: &GuestTree) -> io::Result<BTreeMap<PathBuf, Held>> {
    let mut held = BTreeMap::new();
    workspace.walk(&mut |e| {
        let h = match &e.kind {
            EntryKind::Dir => Held::Dir {
                mode: e.meta.mode(),
            },
            EntryKind::Symlink(t) => Held::Symlink(t.clone()),
            EntryKind::File => Held::File {
                copy: copy_stamp(e.meta),
            },
        };
        held.insert(e.rel.to_path_buf(), h);
        Ok(())
    })?;
    Ok(held)
}

/// Whether a directory of the workspace is as this module makes them: no
/// extended attributes beyond the `security.*` ones the system sets (a
/// default ACL or a `user.*` attribute a tool added is not), and none of the
/// inode flags that change what happens inside it (case folding,
/// encryption, immutable, append-only).
fn dir_is_plain(dir: &GuestTree) -> bool {
    let Ok(f) = std::fs::File::open(dir.proc_path()) else {
        return false;
    };
    // An error: the file system has no extended attributes to set either.
    let names = match rustix::fs::flistxattr_query(&f) {
        Ok(n) if n > 0 => {
            let mut names = vec![0u8; n];
            match rustix::fs::flistxattr(&f, &mut names[..]) {
                Ok(len) => {
                    names.truncate(len);
                    names
                }
                Err(_) => return false,
            }
        }
        _ => Vec::new(),
    };
    if names
        .split(|b| *b == 0)
        .any(|n| !n.is_empty() && !n.starts_with(b"security."))
    {
        return false;
    }
    let odd = rustix::fs::IFlags::IMMUTABLE
        | rustix::fs::IFlags::APPEND
        | rustix::fs::IFlags::from_bits_retain(FS_ENCRYPT_FL | FS_CASEFOLD_FL);
    rustix::fs::ioctl_getflags(&f).map_or(true, |flags| !flags.intersects(odd))
}

/// `linux/fs.h` flags rustix does not name.
const FS_ENCRYPT_FL: u32 = 0x0000_0800;
const FS_CASEFOLD_FL: u32 = 0x4000_0000;

/// Mode 0755 on the directory `dir` is a handle to (through the handle).
fn chmod_755(dir: &GuestTree) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.proc_path(), std::fs::Permissions::from_mode(0o755))
        .map_err(|e| with_path(dir.path(), &e))
}

fn set_dir_mode(workspace: &GuestTree, rel: &Path) -> io::Result<()> {
    chmod_755(&workspace.subtree(rel)?)
}

/// Copy one app file: its bytes, exec bit and mtime. Returns the bytes
/// copied and the copy's metadata once complete.
fn copy_file(
    app: &GuestTree,
    workspace: &GuestTree,
    rel: &Path,
    exec: bool,
) -> io::Result<(u64, cap_std::fs::Metadata)> {
    let mut src = app.open_file_nofollow(rel)?;
    let modified = src.metadata()?.modified()?;
    let mut dest = workspace.create_file(rel, exec)?;
    let bytes = io::copy(&mut src, &mut dest)?;
    // Exactly this mode, whatever a default ACL or umask would make of it.
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = if exec { 0o755 } else { 0o644 };
        dest.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    // Keep the mtime: tools a buildpack runs (cargo, make) decide what to
    // rebuild by it. Layers normalise mtimes.
    dest.set_modified(modified)?;
    Ok((bytes, cap_std::fs::Metadata::from_file(&dest)?))
}

/// Wait until a file created under `dir` gets a ctime later than `t`, so
/// that any change after this returns moves a copy's ctime past its record.
fn wait_past(dir: &Path, t: Ctime) -> io::Result<()> {
    for _ in 0..2000 {
        let probe = tempfile::Builder::new()
            .prefix(".clock-")
            .tempfile_in(dir)?;
        let m = cap_std::fs::Metadata::from_file(probe.as_file())?;
        if ctime(&m) > t {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(io::Error::other(format!(
        "{}: the file system clock did not move past a copy's ctime in 2 s",
        dir.display()
    )))
}

fn with_path(path: &Path, e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// A fingerprint of `tree` from `stat` alone (path, type, mode, size,
/// inode, ctime, link count; a link's target), or `None` when an entry
/// changed so recently that a later change might not show.
pub fn stamp(tree: &GuestTree, clock_dir: &Path) -> io::Result<Option<String>> {
    let probe = tempfile::Builder::new()
        .prefix(".clock-")
        .tempfile_in(clock_dir)?;
    let now = ctime(&cap_std::fs::Metadata::from_file(probe.as_file())?);
    drop(probe);
    let mut racy = false;
    let mut h = sha2::Sha256::new();
    // A new Cascade may lay the app layer out otherwise: its stamps differ.
    h.update(concat!("cascade ", env!("CARGO_PKG_VERSION"), "\0"));
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    tree.walk(&mut |e| {
        racy |= ctime(e.meta) >= now;
        field(e.rel.as_os_str().as_encoded_bytes());
        match &e.kind {
            EntryKind::Dir => field(b"d"),
            EntryKind::Symlink(target) => {
                field(b"l");
                field(target.as_os_str().as_encoded_bytes());
            }
            EntryKind::File => field(b"f"),
        }
        field(copy_stamp(e.meta).as_bytes());
        Ok(())
    })?;
    Ok((!racy).then(|| hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sync that trusts every app file, however new.
    fn sync_now(app: &Path, cache: &Path) -> (GuestTree, SyncStats) {
        let later = SystemTime::now() + Duration::from_hours(1);
        sync_at(&GuestTree::open(app).unwrap(), cache, &Filter::All, later).unwrap()
    }

    fn app(tmp: &Path) -> PathBuf {
        let app = tmp.join("app");
        std::fs::create_dir_all(app.join("d/e")).unwrap();
        std::fs::write(app.join("a.txt"), "alpha\n").unwrap();
        std::fs::write(app.join("d/b.txt"), "beta\n").unwrap();
        std::os::unix::fs::symlink("d/b.txt", app.join("link")).unwrap();
        app
    }

    fn rewrite_same_size(path: &Path) {
        let before = std::fs::metadata(path).unwrap();
        let len = usize::try_from(before.len()).unwrap();
        std::fs::write(path, "X".repeat(len)).unwrap();
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(before.modified().unwrap()).unwrap();
    }

    #[test]
    fn a_second_sync_copies_nothing_and_what_a_build_changed_is_undone() {
        let tmp = tempfile::tempdir().unwrap();
        let (app, cache) = (app(tmp.path()), tmp.path().join("cache"));
        std::fs::create_dir_all(&cache).unwrap();
        let (_, first) = sync_now(&app, &cache);
        assert_eq!((first.copied_files, first.kept_files), (2, 0));
        let (ws, again) = sync_now(&app, &cache);
        assert_eq!(
            again,
            SyncStats {
                kept_files: 2,
                ..SyncStats::default()
            }
        );

        // What a build may do to its copy: rewrite a file in place (size
        // and mtime kept), plant files, replace a directory by a file.
        let root = ws.path().to_path_buf();
        rewrite_same_size(&root.join("a.txt"));
        std::fs::write(root.join("planted"), "x").unwrap();
        std::fs::create_dir_all(root.join("d/new/deeper")).unwrap();
        std::fs::remove_dir_all(root.join("d/e")).unwrap();
        std::fs::write(root.join("d/e"), "not a dir").unwrap();
        std::fs::remove_file(root.join("link")).unwrap();
        std::fs::write(root.join("link"), "not a link").unwrap();
        let (_, undone) = sync_now(&app, &cache);
        assert_eq!(
            (undone.copied_files, undone.kept_files),
            (1, 1),
            "{undone:?}"
        );
        assert_eq!(undone.removed, 3, "planted, d/new, the file at d/e");
        assert_eq!(
            std::fs::read_to_string(root.join("a.txt")).unwrap(),
            "alpha\n"
        );
        assert!(!root.join("planted").exists() && !root.join("d/new").exists());
        assert!(root.join("d/e").is_dir());
        assert_eq!(
            std::fs::read_link(root.join("link")).unwrap(),
            Path::new("d/b.txt")
        );

        // The app changes: a new file, a changed one, a removed one.
        std::fs::write(app.join("a.txt"), "alpha two\n").unwrap();
        std::fs::write(app.join("d/c.txt"), "gamma\n").unwrap();
        std::fs::remove_file(app.join("d/b.txt")).unwrap();
        let (_, changed) = sync_now(&app, &cache);
        assert_eq!(
            (changed.copied_files, changed.kept_files, changed.removed),
            (2, 0, 1)
        );
        assert_eq!(
            std::fs::read_to_string(root.join("a.txt")).unwrap(),
            "alpha two\n"
        );
    }

    #[test]
    fn a_copy_a_tool_locked_is_brought_back_and_new_app_files_are_copied_each_time() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let (app, cache) = (app(tmp.path()), tmp.path().join("cache"));
        std::fs::create_dir_all(&cache).unwrap();
        let (ws, _) = sync_now(&app, &cache);
        let d = ws.path().join("d");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o000)).unwrap();
        // Copied afresh, or (as root, whom modes do not stop) kept with the
        // mode put back.
        let (ws, _) = sync_now(&app, &cache);
        assert_eq!(
            std::fs::read_to_string(ws.path().join("d/b.txt")).unwrap(),
            "beta\n"
        );
        let mode = std::fs::metadata(ws.path().join("d"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);

        // A directory a tool gave an attribute (a default ACL is one) is
        // made again, and what it held copied again.
        let tagged = rustix::fs::setxattr(
            ws.path().join("d"),
            "user.cascade-test",
            b"x",
            rustix::fs::XattrFlags::empty(),
        );
        if tagged.is_ok() {
            let (ws2, again) = sync_now(&app, &cache);
            assert_eq!((again.copied_files, again.removed), (1, 1), "{again:?}");
            assert_eq!(
                rustix::fs::listxattr(ws2.path().join("d"), &mut [0u8; 64][..]).unwrap(),
                0
            );
        }

        // A copy the walk refuses (a FIFO a tool made) is copied afresh.
        let fifo = ws.path().join("d/fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let (ws, again) = sync_now(&app, &cache);
        assert_eq!(again.copied_files, 2, "copied afresh: {again:?}");
        assert!(!fifo.exists());
        assert_eq!(
            std::fs::read_to_string(ws.path().join("a.txt")).unwrap(),
            "alpha\n"
        );

        // Files that changed within the last second are never trusted.
        let tree = GuestTree::open(&app).unwrap();
        for _ in 0..2 {
            let (_, s) = sync(&tree, &cache, &Filter::All).unwrap();
            assert_eq!(s.copied_files, 2, "{s:?}");
        }
    }

    #[test]
    fn the_stamp_moves_with_any_write_even_one_that_keeps_size_and_mtime() {
        let tmp = tempfile::tempdir().unwrap();
        let app = app(tmp.path());
        let tree = GuestTree::open(&app).unwrap();
        let settled = || {
            std::thread::sleep(Duration::from_millis(30));
            stamp(&tree, tmp.path()).unwrap().expect("settled")
        };
        let first = settled();
        assert_eq!(settled(), first);
        rewrite_same_size(&app.join("d/b.txt"));
        let second = settled();
        assert_ne!(second, first);
        std::fs::write(app.join("d/e/new"), "").unwrap();
        assert_ne!(settled(), second);
    }
}
