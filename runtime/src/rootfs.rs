//! An image's filesystem on this machine: its layers applied in order into
//! a private directory, with OCI whiteouts, for `cascade run`.
//!
//! Layers are hostile input (a run image or an app image from anywhere), so
//! every entry is created through a [`GuestTree`] handle on the root: no
//! entry, and no link an earlier layer made, can lead a write out of it (a
//! directory on an entry's path must be a real one). Links are stored as
//! given, never followed by the host: an absolute target is normal in an
//! image and means the image's own `/` once the root is mounted there. Hard
//! links go only to regular files already in the root. Devices, FIFOs and
//! sockets are skipped, as a rootless unpack must (`umoci unpack
//! --rootless` does the same); modes are normalised to 0644/0755 and every
//! file is the host user's. Each blob is checked against its digest and
//! diff_id in the pass that reads it, and bytes and entries are bounded.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::archive::{Limits, entry_path, link_target, stream_bound};
use crate::guest_tree::GuestTree;
use crate::oci::compress::decoder;
use crate::oci::{Digest, DigestReader};
use crate::tar_guard::TarGuard;

/// The OCI whiteout prefix: `.wh.NAME` removes NAME from lower layers.
const WHITEOUT: &str = ".wh.";
/// `.wh..wh..opq` in a directory hides everything lower layers put there.
const OPAQUE: &str = ".wh..wh..opq";

/// Bound on what an image may unpack to here.
pub const LIMITS: Limits = Limits {
    max_bytes: 64 << 30,
    max_entries: 4_000_000,
};

/// One layer blob on this machine.
pub struct Layer<'a> {
    pub path: &'a Path,
    pub media_type: &'a str,
    pub digest: &'a Digest,
    pub diff_id: &'a Digest,
}

#[derive(Debug, thiserror::Error)]
#[error("layer {digest}: {message}")]
pub struct RootfsError {
    pub digest: String,
    pub message: String,
}

/// What applying the layers did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    pub bytes: u64,
    pub entries: u32,
    /// Devices, FIFOs and sockets not created.
    pub skipped: u32,
}

/// Apply `layers`, lowest first, to `root`.
pub fn unpack(
    layers: &[Layer<'_>],
    root: &GuestTree,
    limits: Limits,
) -> Result<Unpacked, RootfsError> {
    let mut done = Unpacked::default();
    for layer in layers {
        apply(layer, root, limits, &mut done).map_err(|message| RootfsError {
            digest: layer.digest.to_string(),
            message,
        })?;
    }
    Ok(done)
}

fn apply(
    layer: &Layer<'_>,
    root: &GuestTree,
    limits: Limits,
    done: &mut Unpacked,
) -> Result<(), String> {
    let file =
        std::fs::File::open(layer.path).map_err(|e| format!("{}: {e}", layer.path.display()))?;
    let mut blob = DigestReader::new(file);
    // The guard bounds the decoded stream (extension headers, bytes after
    // the end marker that the digest check drains).
    let tar = decoder(layer.media_type, &mut blob).map_err(|e| e.to_string())?;
    let mut diff = DigestReader::new(TarGuard::new(tar, stream_bound(limits)));
    // Paths this layer made: an opaque whiteout hides only lower layers'.
    let mut mine: HashSet<PathBuf> = HashSet::new();
    // Directories this layer made opaque already.
    let mut opaqued: HashSet<PathBuf> = HashSet::new();
    {
        let mut archive = tar::Archive::new(&mut diff);
        for entry in archive.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| e.to_string())?;
            let name = entry.path().map_err(|e| e.to_string())?.into_owned();
            let kind = entry.header().entry_type();
            if matches!(
                kind,
                tar::EntryType::XGlobalHeader
                    | tar::EntryType::XHeader
                    | tar::EntryType::GNULongName
            ) {
                continue;
            }
            let Some(rel) = layer_path(&name)? else {
                continue; // the root itself
            };
            done.entries += 1;
            if done.entries > limits.max_entries {
                return Err(format!(
                    "more than {} entries in the image: refused",
                    limits.max_entries
                ));
            }
            let file_name = rel.file_name().map(OsStr::as_bytes).unwrap_or_default();
            let parent = rel.parent().unwrap_or(Path::new(""));
            if let Some(hidden) = file_name.strip_prefix(WHITEOUT.as_bytes()) {
                if file_name == OPAQUE.as_bytes() {
                    if opaqued.insert(parent.to_path_buf()) {
                        opaque(root, parent, &mine)?;
                    }
                } else if hidden.is_empty()
                    || hidden == b"."
                    || hidden == b".."
                    || hidden.starts_with(WHITEOUT.as_bytes())
                {
                    return Err(format!("a whiteout {}: refused", name.display()));
                } else {
                    remove_beneath(root, parent, OsStr::from_bytes(hidden))?;
                }
                continue;
            }
            // Whatever a lower layer left here that is not what this entry
            // is (a file over a directory, a directory over a link) goes,
            // as containerd does; the parent is opened strictly, so no link
            // on the way is followed.
            let name_here = OsStr::from_bytes(file_name);
            let lower_dir = strict(root, parent).is_some_and(|p| p.is_real_dir(name_here));
            if kind.is_dir() != lower_dir {
                remove_beneath(root, parent, name_here)?;
            }
            let made = if kind.is_dir() {
                root.create_dir_all(&rel).map(|_| ())
            } else if kind.is_file()
                || matches!(kind, tar::EntryType::Continuous | tar::EntryType::GNUSparse)
            {
                let exec = entry.header().mode().unwrap_or(0o644) & 0o111 != 0;
                copy(&mut entry, root, &rel, exec, limits, done)
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = link_target(&entry).map_err(|e| e.to_string())?;
                if kind.is_symlink() {
                    root.symlink(&target, &rel)
                } else {
                    let original = layer_path(&target)?
                        .ok_or_else(|| format!("hard link {} to the root", name.display()))?;
                    root.hard_link(original, &rel)
                }
            } else {
                done.skipped += 1;
                continue;
            };
            made.map_err(|e| format!("{}: {e}", name.display()))?;
            mine.insert(rel);
        }
    }
    for (what, want, got) in [
        (
            "diff_id",
            layer.diff_id,
            diff.finish().map_err(|e| e.to_string())?,
        ),
        (
            "digest",
            layer.digest,
            blob.finish().map_err(|e| e.to_string())?,
        ),
    ] {
        if *want != got {
            return Err(format!("does not match its {what} (the content is {got})"));
        }
    }
    Ok(())
}

/// The real directory `rel` of `root` (every component a directory, none
/// a link), if there is one.
fn strict(root: &GuestTree, rel: &Path) -> Option<GuestTree> {
    if rel.as_os_str().is_empty() {
        return root.try_clone().ok();
    }
    root.subtree(rel).ok()
}

/// Remove `name` from the real directory `parent`; nothing when there is
/// no such directory (a whiteout of what no lower layer made).
fn remove_beneath(root: &GuestTree, parent: &Path, name: &OsStr) -> Result<(), String> {
    match strict(root, parent) {
        Some(dir) => dir.remove_all(name).map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

/// Entry paths longer than this, or deeper, are refused (Linux's
/// `PATH_MAX`; [`GuestTree::walk`]'s depth).
const MAX_PATH: usize = 4096;
const MAX_DEPTH: usize = 256;

/// An entry's path in the root: leading `/` and `./` dropped, no `..`;
/// `None` for the root itself.
pub(crate) fn layer_path(name: &Path) -> Result<Option<PathBuf>, String> {
    if name.as_os_str().len() > MAX_PATH || name.components().count() > MAX_DEPTH {
        return Err(format!(
            "an entry path over {MAX_PATH} bytes or {MAX_DEPTH} levels: refused"
        ));
    }
    let relative = name.strip_prefix("/").unwrap_or(name);
    if relative
        .components()
        .all(|c| c == std::path::Component::CurDir)
    {
        return Ok(None);
    }
    entry_path(relative).map(Some).map_err(|e| e.to_string())
}

/// Hide what lower layers put in `dir` (opened strictly: an opaque
/// marker in a link's place hides nothing through it).
fn opaque(root: &GuestTree, dir: &Path, mine: &HashSet<PathBuf>) -> Result<(), String> {
    let Some(sub) = strict(root, dir) else {
        return Ok(());
    };
    for child in sub.children("").map_err(|e| e.to_string())? {
        if !mine.contains(&dir.join(&child)) {
            sub.remove_all(&child).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn copy(
    from: &mut dyn Read,
    root: &GuestTree,
    rel: &Path,
    exec: bool,
    limits: Limits,
    done: &mut Unpacked,
) -> io::Result<()> {
    let mut out = root.create_file(rel, exec)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        done.bytes += n as u64;
        if done.bytes > limits.max_bytes {
            return Err(io::Error::other(format!(
                "the image unpacks to more than {} bytes: refused",
                limits.max_bytes
            )));
        }
        out.write_all(&buf[..n])?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_bytes: 1 << 20,
        max_entries: 100,
    };

    /// A plain tar of `(path, kind, link target or content)`, names written
    /// raw (the tar crate refuses to write the hostile ones).
    fn tar(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, extra) in entries {
            let mut h = tar::Header::new_gnu();
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(0o755);
            let data = if *kind == tar::EntryType::Regular {
                extra.as_bytes()
            } else {
                h.as_gnu_mut().unwrap().linkname[..extra.len()].copy_from_slice(extra.as_bytes());
                b""
            };
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn apply_all(dir: &Path, layers: &[Vec<u8>]) -> Result<GuestTree, RootfsError> {
        let root = GuestTree::create(&dir.join("root")).unwrap();
        let mut paths = Vec::new();
        for (i, bytes) in layers.iter().enumerate() {
            let path = dir.join(format!("layer{i}"));
            std::fs::write(&path, bytes).unwrap();
            paths.push((path, Digest::of(bytes)));
        }
        let layers: Vec<Layer<'_>> = paths
            .iter()
            .map(|(path, digest)| Layer {
                path,
                media_type: crate::oci::MEDIA_LAYER_TAR,
                digest,
                diff_id: digest,
            })
            .collect();
        unpack(&layers, &root, LIMITS)?;
        Ok(root)
    }

    #[test]
    fn whiteouts_remove_and_opaque_dirs_hide_lower_layers() {
        use tar::EntryType::{Directory, Regular, Symlink};
        let tmp = tempfile::tempdir().unwrap();
        let root = apply_all(
            tmp.path(),
            &[
                tar(&[
                    ("bin/", Directory, ""),
                    ("bin/busybox", Regular, "bb"),
                    ("bin/sh", Symlink, "/bin/busybox"),
                    ("etc/old", Regular, "old"),
                    ("etc/keep", Regular, "keep"),
                    ("var/cache/a", Regular, "a"),
                ]),
                tar(&[
                    ("etc/.wh.old", Regular, ""),
                    ("var/cache/b", Regular, "b"),
                    ("var/cache/.wh..wh..opq", Regular, ""),
                ]),
            ],
        )
        .unwrap();
        let p = tmp.path().join("root");
        assert_eq!(
            std::fs::read_link(p.join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        assert!(!p.join("etc/old").exists());
        assert!(p.join("etc/keep").exists());
        assert!(
            !p.join("var/cache/a").exists(),
            "hidden by the opaque whiteout"
        );
        assert!(
            p.join("var/cache/b").exists(),
            "the same layer's entry stays"
        );
        assert!(root.is_real_dir("bin"));
    }

    #[test]
    fn a_layer_cannot_write_through_a_link_out_of_the_root() {
        use tar::EntryType::{Regular, Symlink};
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("outside")).unwrap();
        let outside = tmp.path().join("outside").display().to_string();
        for target in [outside.as_str(), "../outside", "/"] {
            let result = apply_all(
                tmp.path(),
                &[
                    tar(&[("escape", Symlink, target)]),
                    tar(&[("escape/pwned", Regular, "x")]),
                ],
            );
            assert!(result.is_err(), "{target}");
            std::fs::remove_dir_all(tmp.path().join("root")).unwrap();
        }
        assert_eq!(
            std::fs::read_dir(tmp.path().join("outside"))
                .unwrap()
                .count(),
            0
        );
        let climbing = apply_all(tmp.path(), &[tar(&[("a/../../pwned", Regular, "x")])]);
        assert!(climbing.is_err());
        assert!(!tmp.path().join("pwned").exists());
    }

    #[test]
    fn whiteouts_go_through_no_link_and_odd_ones_are_refused() {
        use tar::EntryType::{Directory, Regular, Symlink};
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("root");
        apply_all(
            tmp.path(),
            &[
                tar(&[
                    ("etc/", Directory, ""),
                    ("etc/passwd", Regular, "x"),
                    ("l", Symlink, "etc"),
                ]),
                tar(&[
                    ("l/.wh.passwd", Regular, ""),
                    ("l/.wh..wh..opq", Regular, ""),
                ]),
            ],
        )
        .unwrap();
        assert!(
            p.join("etc/passwd").exists(),
            "a whiteout does not follow l -> etc"
        );
        for odd in ["etc/.wh...", "etc/.wh.", "etc/.wh..", "etc/.wh..wh.x"] {
            std::fs::remove_dir_all(&p).unwrap();
            let r = apply_all(
                tmp.path(),
                &[
                    tar(&[("etc/keep", Regular, "k")]),
                    tar(&[(odd, Regular, "")]),
                ],
            );
            assert!(r.is_err(), "{odd}");
        }
        // A file over a lower directory replaces it, as containerd does.
        std::fs::remove_dir_all(&p).unwrap();
        apply_all(
            tmp.path(),
            &[
                tar(&[("d/x", Regular, "x")]),
                tar(&[("d", Regular, "now a file")]),
            ],
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(p.join("d")).unwrap(), "now a file");
    }

    #[test]
    fn a_layer_whose_content_is_not_its_digest_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = GuestTree::create(&tmp.path().join("root")).unwrap();
        let path = tmp.path().join("layer");
        std::fs::write(&path, tar(&[("a", tar::EntryType::Regular, "a")])).unwrap();
        let wrong = Digest::of(b"something else");
        let layer = Layer {
            path: &path,
            media_type: crate::oci::MEDIA_LAYER_TAR,
            digest: &wrong,
            diff_id: &wrong,
        };
        let err = unpack(&[layer], &root, LIMITS).unwrap_err();
        assert!(err.message.contains("does not match"), "{err}");
    }
}
