//! Unpacking archives for buildpacks (the `archive` interface), natively and
//! defensively: every entry's path must be relative and free of `..`; a
//! symbolic or hard link must point inside the destination; only files,
//! directories and links are created; the total size and the number of
//! entries are bounded (an archive bomb stops at the limit).

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

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

/// Where `rel` lands under `dest`, lexically: `None` when it is absolute or
/// climbs out.
fn inside(dest: &Path, rel: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().fold(dest.to_path_buf(), |p, c| p.join(c)))
}

/// An entry path: relative, no `..` at all (even ones that would stay
/// inside: archives that need them are not ones to trust).
fn entry_path(dest: &Path, name: &Path) -> Result<PathBuf, String> {
    let plain = name
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !plain || name.as_os_str().is_empty() {
        return Err(format!(
            "entry {:?}: absolute or climbing out of the destination",
            name.display()
        ));
    }
    Ok(dest.join(name))
}

/// A link at `at` (inside `dest`) to `target` must resolve inside `dest`.
fn link_target_ok(dest: &Path, at: &Path, target: &Path) -> Result<(), String> {
    let rel_dir = at
        .parent()
        .and_then(|p| p.strip_prefix(dest).ok())
        .unwrap_or(Path::new(""));
    if target.is_absolute() || inside(dest, &rel_dir.join(target)).is_none() {
        return Err(format!(
            "link {} -> {}: points outside the destination",
            at.strip_prefix(dest).unwrap_or(at).display(),
            target.display()
        ));
    }
    Ok(())
}

struct Budget {
    limits: Limits,
    bytes: u64,
    entries: u32,
}

impl Budget {
    fn entry(&mut self) -> Result<(), String> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(format!(
                "more than {} entries: refused (an archive bomb?)",
                self.limits.max_entries
            ));
        }
        Ok(())
    }

    /// Copy `from` into a new file at `to`, counting against the budget.
    fn write(&mut self, from: &mut dyn Read, to: &Path, exec: bool) -> Result<(), String> {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        // Never write through a link that is already there.
        if std::fs::symlink_metadata(to).is_ok() {
            std::fs::remove_file(to).map_err(|e| format!("{}: {e}", to.display()))?;
        }
        let mut out = std::fs::File::create(to).map_err(|e| format!("{}: {e}", to.display()))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = from.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            self.bytes += n as u64;
            if self.bytes > self.limits.max_bytes {
                return Err(format!(
                    "unpacks to more than {} bytes: refused (an archive bomb?)",
                    self.limits.max_bytes
                ));
            }
            out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        }
        if exec {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Unpack `archive` into `dest` (created if missing); the bytes written.
pub fn unpack(archive: &Path, dest: &Path, format: Format, limits: Limits) -> Result<u64, String> {
    let file = std::fs::File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    std::fs::create_dir_all(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let mut budget = Budget {
        limits,
        bytes: 0,
        entries: 0,
    };
    let name = archive.display().to_string();
    let result = match format {
        Format::Tar => unpack_tar(Box::new(file), dest, &mut budget),
        Format::TarGz => unpack_tar(
            Box::new(flate2::read::MultiGzDecoder::new(file)),
            dest,
            &mut budget,
        ),
        Format::TarXz => unpack_tar(Box::new(xz2::read::XzDecoder::new(file)), dest, &mut budget),
        Format::Zip => unpack_zip(file, dest, &mut budget),
    };
    result.map_err(|e| format!("{name}: {e}"))?;
    Ok(budget.bytes)
}

fn unpack_tar(reader: Box<dyn Read>, dest: &Path, budget: &mut Budget) -> Result<(), String> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        budget.entry()?;
        let name = entry.path().map_err(|e| e.to_string())?.into_owned();
        let to = entry_path(dest, &name)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&to).map_err(|e| format!("{}: {e}", to.display()))?;
        } else if kind.is_file() {
            let exec = entry.header().mode().unwrap_or(0o644) & 0o111 != 0;
            budget.write(&mut entry, &to, exec)?;
        } else if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("link {} without a target", name.display()))?
                .into_owned();
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            let _ = std::fs::remove_file(&to);
            if kind.is_symlink() {
                link_target_ok(dest, &to, &target)?;
                std::os::unix::fs::symlink(&target, &to).map_err(|e| e.to_string())?;
            } else {
                // A hard link names another entry of the archive.
                let original = entry_path(dest, &target)?;
                std::fs::hard_link(&original, &to).map_err(|e| {
                    format!("hard link {} -> {}: {e}", name.display(), target.display())
                })?;
            }
        } else {
            return Err(format!(
                "entry {}: {kind:?} entries are not unpacked",
                name.display()
            ));
        }
    }
    Ok(())
}

fn unpack_zip(file: std::fs::File, dest: &Path, budget: &mut Budget) -> Result<(), String> {
    let mut zip = zip::ZipArchive::new(file).map_err(|e| e.to_string())?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| e.to_string())?;
        budget.entry()?;
        let raw = PathBuf::from(entry.name());
        let to = entry_path(dest, &raw)?;
        let mode = entry.unix_mode().unwrap_or(0o644);
        if entry.is_dir() {
            std::fs::create_dir_all(&to).map_err(|e| e.to_string())?;
        } else if mode & 0o170_000 == 0o120_000 {
            let mut target = String::new();
            entry
                .read_to_string(&mut target)
                .map_err(|e| e.to_string())?;
            link_target_ok(dest, &to, Path::new(&target))?;
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            let _ = std::fs::remove_file(&to);
            std::os::unix::fs::symlink(&target, &to).map_err(|e| e.to_string())?;
        } else {
            budget.write(&mut entry, &to, mode & 0o111 != 0)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn run(bytes: &[u8]) -> (tempfile::TempDir, Result<u64, String>) {
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path().join("a.tar");
        std::fs::write(&archive, bytes).unwrap();
        let r = unpack(&archive, &tmp.path().join("dest"), Format::Tar, LIMITS);
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
        let e = unpack(&archive, &tmp.path().join("d"), Format::TarGz, LIMITS).unwrap_err();
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
}
