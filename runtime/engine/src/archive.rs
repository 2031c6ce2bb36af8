//! Unpacking archives for buildpacks (the `archive` interface), natively and
//! defensively. The destination is a [`GuestTree`]: every entry is created
//! beneath its handle, and a directory on an entry's path must be a real
//! directory the archive (or the buildpack) made, never a link, so no chain
//! of links (`a -> .`, `a/b -> ..`, then `b/x`) can climb out. Beyond that:
//! entry paths are relative and free of `..`; a symbolic link must point
//! inside the destination; a hard link names an earlier regular file of the
//! same archive; modes are normalised (0644, or 0755 with an exec bit; the
//! owner is the host user); only files, directories and links are created;
//! the bytes written and the number of entries are bounded (an archive bomb
//! stops at the limit).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::deadline::Deadline;
use cascade_fs::GuestTree;

/// Why an archive was not unpacked. Guest-visible: a buildpack gets it as
/// the WIT error (host paths rewritten to the guest's).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("entry {0:?}: absolute or climbing out of the destination")]
    Climbs(String),
    #[error("entry {0:?}: an empty name")]
    EmptyName(String),
    #[error("link {link} -> {target}: points outside the destination")]
    LinkOutside { link: String, target: String },
    #[error("link {0} without a target")]
    NoLinkTarget(String),
    #[error("hard link {link} -> {target}: not an earlier file of this archive")]
    HardLinkForeign { link: String, target: String },
    #[error("entry {name}: {kind} entries are not unpacked")]
    Unsupported { name: String, kind: String },
    #[error("more than {0} entries: refused (an archive bomb?)")]
    TooManyEntries(u32),
    #[error("unpacks to more than {0} bytes: refused (an archive bomb?)")]
    TooLarge(u64),
    #[error("{0}")]
    Deadline(String),
    /// Creating `path` in the destination failed.
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The archive itself could not be read (truncated, corrupt).
    #[error("{0}")]
    Read(#[source] std::io::Error),
    #[error("{0}")]
    Zip(#[from] zip::result::ZipError),
    /// Any of the above, in the archive named `name`.
    #[error("{name}: {source}")]
    In {
        name: String,
        #[source]
        source: Box<ArchiveError>,
    },
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Write {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tar,
    TarGz,
    TarXz,
    Zip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_entries: u32,
}

impl Limits {
    /// The tighter of two limits: a buildpack may ask for less than the
    /// host allows, never more.
    #[must_use]
    pub fn min(self, other: Limits) -> Limits {
        Limits {
            max_bytes: self.max_bytes.min(other.max_bytes),
            max_entries: self.max_entries.min(other.max_entries),
        }
    }
}

/// An entry path: relative, no `..` at all (even ones that would stay
/// inside: archives that need them are not ones to trust).
pub fn entry_path(name: &Path) -> Result<PathBuf, ArchiveError> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return Err(ArchiveError::Climbs(name.display().to_string())),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(ArchiveError::EmptyName(name.display().to_string()));
    }
    Ok(out)
}

/// A link at `rel` to `target` must resolve inside the destination,
/// lexically from `rel`'s directory (which [`GuestTree::create_dir_all`]
/// makes sure is a real directory, so lexical is what the kernel will do).
fn link_target_ok(rel: &Path, target: &Path) -> Result<(), ArchiveError> {
    let mut depth: usize = rel.components().count().saturating_sub(1);
    let mut ok = !target.is_absolute() && !target.as_os_str().is_empty();
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => depth -= 1,
            _ => ok = false,
        }
    }
    if ok {
        Ok(())
    } else {
        Err(ArchiveError::LinkOutside {
            link: rel.display().to_string(),
            target: target.display().to_string(),
        })
    }
}

/// The bound on a whole tar stream (headers included) for `limits`: the
/// content plus a generous header allowance per entry.
pub fn stream_bound(limits: Limits) -> u64 {
    limits
        .max_bytes
        .saturating_add(u64::from(limits.max_entries).saturating_mul(4096))
}

/// What an archive has written so far, and what it may still write.
struct Unpacker<'a> {
    dest: &'a GuestTree,
    limits: Limits,
    deadline: Deadline,
    bytes: u64,
    entries: u32,
    /// Regular files this archive wrote: the only targets of its hard links.
    files: HashSet<PathBuf>,
}

impl Unpacker<'_> {
    fn entry(&mut self) -> Result<(), ArchiveError> {
        self.deadline
            .check("unpack")
            .map_err(ArchiveError::Deadline)?;
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(ArchiveError::TooManyEntries(self.limits.max_entries));
        }
        Ok(())
    }

    fn dir(&mut self, rel: &Path) -> Result<(), ArchiveError> {
        self.files.remove(rel);
        self.dest.create_dir_all(rel).map_err(write_err(rel))?;
        Ok(())
    }

    /// Copy `from` into a new file at `rel`, counting against the budget.
    fn file(&mut self, from: &mut dyn Read, rel: &Path, exec: bool) -> Result<(), ArchiveError> {
        let mut out = self.dest.create_file(rel, exec).map_err(write_err(rel))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            self.deadline
                .check("unpack")
                .map_err(ArchiveError::Deadline)?;
            let n = from.read(&mut buf).map_err(ArchiveError::Read)?;
            if n == 0 {
                break;
            }
            self.bytes += n as u64;
            if self.bytes > self.limits.max_bytes {
                return Err(ArchiveError::TooLarge(self.limits.max_bytes));
            }
            out.write_all(&buf[..n]).map_err(write_err(rel))?;
        }
        self.files.insert(rel.to_path_buf());
        Ok(())
    }

    fn symlink(&mut self, rel: &Path, target: &Path) -> Result<(), ArchiveError> {
        link_target_ok(rel, target)?;
        self.files.remove(rel);
        self.dest.symlink(target, rel).map_err(write_err(rel))
    }

    fn hard_link(&mut self, rel: &Path, target: &Path) -> Result<(), ArchiveError> {
        let original = entry_path(target)?;
        if !self.files.contains(&original) {
            return Err(ArchiveError::HardLinkForeign {
                link: rel.display().to_string(),
                target: target.display().to_string(),
            });
        }
        self.dest
            .hard_link(&original, rel)
            .map_err(write_err(rel))?;
        self.files.insert(rel.to_path_buf());
        Ok(())
    }
}

/// Unpack `archive` (named `name` in messages) into `dest`; the bytes
/// written.
pub fn unpack(
    archive: std::fs::File,
    name: &str,
    dest: &GuestTree,
    format: Format,
    limits: Limits,
    deadline: Deadline,
) -> Result<u64, ArchiveError> {
    let mut u = Unpacker {
        dest,
        limits,
        deadline,
        bytes: 0,
        entries: 0,
        files: HashSet::new(),
    };
    let result = match format {
        // The decoded stream is checked too: a tar of headers only never
        // reaches a file's copy loop.
        Format::Tar => unpack_tar(Box::new(deadline.reader(archive)), &mut u),
        Format::TarGz => unpack_tar(
            Box::new(deadline.reader(flate2::read::MultiGzDecoder::new(archive))),
            &mut u,
        ),
        Format::TarXz => unpack_tar(
            Box::new(deadline.reader(xz2::read::XzDecoder::new(archive))),
            &mut u,
        ),
        Format::Zip => unpack_zip(archive, &mut u),
    };
    result.map_err(|e| ArchiveError::In {
        name: name.to_owned(),
        source: Box::new(e),
    })?;
    Ok(u.bytes)
}

/// A link entry's target, as stored.
pub fn link_target<R: Read>(entry: &tar::Entry<'_, R>) -> Result<PathBuf, ArchiveError> {
    entry
        .link_name()
        .map_err(ArchiveError::Read)?
        .map(std::borrow::Cow::into_owned)
        .ok_or_else(|| {
            let name = entry
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            ArchiveError::NoLinkTarget(name)
        })
}

fn unpack_tar(reader: Box<dyn Read>, u: &mut Unpacker<'_>) -> Result<(), ArchiveError> {
    let stream = stream_bound(u.limits);
    let mut archive = tar::Archive::new(crate::tar_guard::TarGuard::new(reader, stream));
    for entry in archive.entries().map_err(ArchiveError::Read)? {
        let mut entry = entry.map_err(ArchiveError::Read)?;
        u.entry()?;
        let name = entry.path().map_err(ArchiveError::Read)?.into_owned();
        let rel = entry_path(&name)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            u.dir(&rel)?;
        } else if kind.is_file() {
            let exec = entry.header().mode().unwrap_or(0o644) & 0o111 != 0;
            u.file(&mut entry, &rel, exec)?;
        } else if kind.is_symlink() || kind.is_hard_link() {
            let target = link_target(&entry)?;
            if kind.is_symlink() {
                u.symlink(&rel, &target)?;
            } else {
                u.hard_link(&rel, &target)?;
            }
        } else if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName
        ) {
            // Metadata the tar crate already applied to the next entry.
        } else {
            return Err(ArchiveError::Unsupported {
                name: name.display().to_string(),
                kind: format!("{kind:?}"),
            });
        }
    }
    Ok(())
}

fn unpack_zip(file: std::fs::File, u: &mut Unpacker<'_>) -> Result<(), ArchiveError> {
    let mut zip = zip::ZipArchive::new(file)?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        u.entry()?;
        let raw = PathBuf::from(entry.name());
        let rel = entry_path(&raw)?;
        let mode = entry.unix_mode().unwrap_or(0o644);
        if entry.is_dir() {
            u.dir(&rel)?;
        } else if mode & 0o170_000 == 0o120_000 {
            let mut target = String::new();
            entry
                .by_ref()
                .take(4096)
                .read_to_string(&mut target)
                .map_err(ArchiveError::Read)?;
            u.symlink(&rel, Path::new(&target))?;
        } else {
            u.file(&mut entry, &rel, mode & 0o111 != 0)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const LIMITS: Limits = Limits {
        max_bytes: 1 << 20,
        max_entries: 100,
    };

    /// A tar whose entries are (name bytes, kind, link target, data); names
    /// are written raw, so hostile ones get through to the reader.
    fn tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(0o755);
            h.set_size(data.len() as u64);
            if !link.is_empty() {
                h.as_gnu_mut().unwrap().linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn unpack_file(archive: &Path, dest: &Path, format: Format) -> Result<u64, String> {
        let tree = GuestTree::create(dest).unwrap();
        let file = std::fs::File::open(archive).unwrap();
        unpack(
            file,
            "a",
            &tree,
            format,
            LIMITS,
            Deadline::after(Duration::from_mins(1)),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn an_unpack_past_the_call_deadline_stops() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = GuestTree::create(&tmp.path().join("dest")).unwrap();
        let archive = tmp.path().join("a.tar");
        std::fs::write(&archive, tar(&[("f", tar::EntryType::Regular, "", b"x")])).unwrap();
        let file = std::fs::File::open(&archive).unwrap();
        let e = unpack(
            file,
            "a.tar",
            &tree,
            Format::Tar,
            LIMITS,
            Deadline::after(Duration::ZERO),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("deadline"), "{e}");
        assert!(!tree.exists(Path::new("f")));
    }

    fn run(bytes: &[u8]) -> (tempfile::TempDir, Result<u64, String>) {
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path().join("a.tar");
        std::fs::write(&archive, bytes).unwrap();
        let r = unpack_file(&archive, &tmp.path().join("dest"), Format::Tar);
        (tmp, r)
    }

    #[test]
    fn a_plain_archive_unpacks_with_links_inside() {
        use tar::EntryType as T;
        let (tmp, r) = run(&tar(&[
            ("bin/", T::Directory, "", b""),
            ("bin/tool", T::Regular, "", b"#!/bin/sh\n"),
            ("lib/x.js", T::Regular, "", b"x"),
            ("bin/npm", T::Symlink, "../lib/x.js", b""),
            ("bin/again", T::Link, "bin/tool", b""),
        ]));
        assert_eq!(r.unwrap(), 11);
        let dest = tmp.path().join("dest");
        assert_eq!(std::fs::read(dest.join("bin/npm")).unwrap(), b"x");
        assert_eq!(
            std::fs::read(dest.join("bin/again")).unwrap(),
            b"#!/bin/sh\n"
        );
    }

    #[test]
    fn hostile_entries_are_refused() {
        use tar::EntryType as T;
        for (entries, says) in [
            (vec![("../evil", T::Regular, "", &b"x"[..])], "climbing out"),
            (vec![("/etc/evil", T::Regular, "", &b"x"[..])], "absolute"),
            (
                vec![("a/../../evil", T::Regular, "", &b"x"[..])],
                "climbing out",
            ),
            (vec![("link", T::Symlink, "/etc", &b""[..])], "outside"),
            (
                vec![("d/link", T::Symlink, "../../..", &b""[..])],
                "outside",
            ),
            (
                vec![("hard", T::Link, "../../etc/passwd", &b""[..])],
                "climbing out",
            ),
            (vec![("fifo", T::Fifo, "", &b""[..])], "not unpacked"),
            (vec![("dev", T::Char, "", &b""[..])], "not unpacked"),
            // A chain of links, each harmless alone: `a -> .`, `a/b -> ..`
            // would make `b` the parent of the destination.
            (
                vec![
                    ("a", T::Symlink, ".", &b""[..]),
                    ("a/b", T::Symlink, "..", &b""[..]),
                    ("b/evil", T::Regular, "", &b"x"[..]),
                ],
                "symbolic link",
            ),
            // A link to a directory outside, then a file through it.
            (
                vec![
                    ("d/", T::Directory, "", &b""[..]),
                    ("d/up", T::Symlink, "..", &b""[..]),
                    ("d/up/evil", T::Regular, "", &b"x"[..]),
                ],
                "symbolic link",
            ),
            // A hard link to a file the archive did not write.
            (
                vec![("h", T::Link, "a.tar", &b""[..])],
                "not an earlier file",
            ),
        ] {
            let (tmp, r) = run(&tar(&entries));
            let e = r.unwrap_err();
            assert!(e.contains(says), "{entries:?}: {e}");
            assert!(!tmp.path().join("evil").exists());
        }
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&tar(&[(
            "zeros",
            tar::EntryType::Regular,
            "",
            &vec![0u8; 8 << 20],
        )]))
        .unwrap();
        let archive = tmp.path().join("bomb.tar.gz");
        std::fs::write(&archive, gz.finish().unwrap()).unwrap();
        let e = unpack_file(&archive, &tmp.path().join("d"), Format::TarGz).unwrap_err();
        assert!(e.contains("archive bomb"), "{e}");
        let many: Vec<(String, tar::EntryType, &str, &[u8])> = (0..200)
            .map(|i| (format!("f{i}"), tar::EntryType::Regular, "", &b""[..]))
            .collect();
        let entries: Vec<(&str, tar::EntryType, &str, &[u8])> = many
            .iter()
            .map(|(n, k, l, d)| (n.as_str(), *k, *l, *d))
            .collect();
        let (_t, r) = run(&tar(&entries));
        assert!(r.unwrap_err().contains("entries"));
    }

    /// Everything under `root` except `skip`: path, kind, bytes or target.
    fn snapshot(root: &Path, skip: &Path) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        let walk = walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.path() != skip);
        for e in walk {
            let e = e.unwrap();
            let ft = e.file_type();
            let what = if ft.is_symlink() {
                format!("l {}", std::fs::read_link(e.path()).unwrap().display())
            } else if ft.is_file() {
                format!("f {:?}", std::fs::read(e.path()).unwrap())
            } else {
                "d".into()
            };
            out.push((e.path().to_path_buf(), what));
        }
        out
    }

    mod generated {
        use proptest::prelude::*;

        use super::*;

        /// Names made of the parts that make trouble.
        fn name() -> impl Strategy<Value = String> {
            let part = prop::sample::select(vec!["a", "b", "..", ".", "", "dest", "outside"]);
            (any::<bool>(), prop::collection::vec(part, 1..4)).prop_map(|(abs, parts)| {
                let joined = parts.join("/");
                if abs { format!("/{joined}") } else { joined }
            })
        }

        fn entry() -> impl Strategy<Value = (String, u8, String)> {
            (name(), 0u8..4, name())
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: std::env::var("CASCADE_UNPACK_CASES")
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(256),
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            /// Whatever the entries, nothing outside the destination is
            /// created, changed or removed.
            #[test]
            fn nothing_is_created_outside_the_destination(
                entries in prop::collection::vec(entry(), 1..8)
            ) {
                use tar::EntryType as T;
                let tmp = tempfile::tempdir().unwrap();
                let root = tmp.path().join("root");
                let dest = root.join("dest");
                std::fs::create_dir_all(root.join("outside")).unwrap();
                std::fs::write(root.join("outside/canary"), "canary").unwrap();
                std::fs::write(root.join("a"), "sibling").unwrap();
                let entries: Vec<(&str, T, &str, &[u8])> = entries
                    .iter()
                    .filter(|(n, _, l)| n.len() < 100 && l.len() < 100)
                    .map(|(n, k, l)| {
                        let kind = [T::Regular, T::Directory, T::Symlink, T::Link][*k as usize];
                        let data: &[u8] = if kind == T::Regular { b"x" } else { b"" };
                        (n.as_str(), kind, l.as_str(), data)
                    })
                    .collect();
                let archive = tmp.path().join("a.tar");
                std::fs::write(&archive, tar(&entries)).unwrap();
                let before = snapshot(tmp.path(), &dest);
                let _ = unpack_file(&archive, &dest, Format::Tar);
                prop_assert_eq!(before, snapshot(tmp.path(), &dest));
            }
        }
    }
}
