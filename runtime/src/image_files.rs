//! What files an image will hold, from its layers' tar headers (OCI
//! whiteouts applied), so a build can tell before anyone runs the image
//! that a process's program is not there: `/bin/sh` on `scratch`, `python`
//! on a run image without it. Nothing is unpacked and nothing is followed
//! on the host: links are resolved inside this map, the way the kernel
//! will once the image's root is `/`.
//!
//! Each file also carries what [`crate::bloat`] and the stack contract need
//! to know of it without the image being unpacked: an ELF file's loader
//! facts, a script's `#!` interpreter, the text of the package database and
//! the loader's configuration. A layer's listing is cached by diff_id, so a
//! rebuild that reuses its layers reads none of them again.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::elf::ElfFacts;
use crate::oci::compress::decoder;
use crate::oci::{Digest, DigestReader};
use crate::tar_guard::TarGuard;

/// What is at a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Dir,
    File {
        exec: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        facts: Option<Box<Facts>>,
    },
    Link {
        target: String,
    },
    Other,
}

/// What a file is, beyond its bytes, for the loader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Facts {
    Elf(ElfFacts),
    /// A `#!` script: the program that runs it, and its one argument.
    Script {
        interpreter: String,
        arg: Option<String>,
    },
    /// The text of a package-database or loader-configuration file.
    Text(String),
    /// An ELF file whose headers could not be read (truncated, hostile,
    /// or over [`MAX_READ`]): what it loads is unknown.
    UnreadableElf,
}

/// ELF files read whole at most this large (CUDA's libraries are this
/// big; a larger one is listed as [`Facts::UnreadableElf`]).
const MAX_READ: u64 = 1 << 30;
/// Text kept of one dpkg `status` file (10,000 packages are about 10 MiB)
/// and of any other kept file (a file list, a loader configuration).
const MAX_STATUS: u64 = 32 << 20;
const MAX_TEXT: u64 = 4 << 20;
/// Text kept of one layer in all: past it, files are listed without it.
const MAX_LAYER_TEXT: u64 = 128 << 20;

/// Whether the text of the file at `path` is kept: the dpkg database
/// (`status`, distroless `status.d/`, the `info/*.list` file lists) and the
/// loader's search-path configuration.
fn keeps_text(path: &str) -> bool {
    path == "var/lib/dpkg/status"
        || path.starts_with("var/lib/dpkg/status.d/")
        || (path.starts_with("var/lib/dpkg/info/")
            && Path::new(path).extension().is_some_and(|e| e == "list"))
        || path == "etc/ld.so.conf"
        || path == "etc/ld.so.preload"
        || path.starts_with("etc/ld.so.conf.d/")
}

/// The facts of a regular file of `size` bytes being read from `entry`;
/// `text_left` is what the layer may still keep of texts.
fn file_facts(
    name: &str,
    size: u64,
    entry: &mut impl io::Read,
    text_left: &mut u64,
) -> io::Result<Option<Box<Facts>>> {
    let cap = if name == "var/lib/dpkg/status" {
        MAX_STATUS
    } else {
        MAX_TEXT
    };
    let text = keeps_text(name) && size <= cap.min(*text_left);
    let mut head = [0u8; 512];
    let mut got = 0;
    while got < head.len() {
        let n = entry.read(&mut head[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let head = &head[..got];
    let whole = |entry: &mut dyn io::Read, max: u64| -> io::Result<Option<Vec<u8>>> {
        if size > max {
            return Ok(None);
        }
        let mut bytes = head.to_vec();
        entry.take(max).read_to_end(&mut bytes)?;
        Ok(Some(bytes))
    };
    let facts = if crate::elf::is_elf(head) {
        Some(
            whole(entry, MAX_READ)?
                .and_then(|b| crate::elf::facts(&b))
                .map_or(Facts::UnreadableElf, Facts::Elf),
        )
    } else if text {
        *text_left -= size;
        whole(entry, cap)?.map(|b| Facts::Text(String::from_utf8_lossy(&b).into_owned()))
    } else {
        crate::elf::shebang(head).map(|(interpreter, arg)| Facts::Script { interpreter, arg })
    };
    Ok(facts.map(Box::new))
}

/// One layer's entries, in order, as its tar has them (whiteouts as
/// `.wh.` names).
pub type Listing = Vec<(String, Kind)>;

/// Read the listing of the layer blob at `path`, checked against its
/// `digest` and `diff_id` in the same pass (a listing is cached by diff_id,
/// so it must be the listing of that content).
pub fn list(
    path: &Path,
    media_type: &str,
    digest: &Digest,
    diff_id: &Digest,
) -> io::Result<Listing> {
    let limits = crate::rootfs::LIMITS;
    let mut blob = DigestReader::new(std::fs::File::open(path)?);
    let tar = decoder(media_type, &mut blob)?;
    let mut diff = DigestReader::new(TarGuard::new(tar, crate::archive::stream_bound(limits)));
    let mut out = Vec::new();
    let mut text_left = MAX_LAYER_TEXT;
    let mut archive = tar::Archive::new(&mut diff);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if out.len() >= limits.max_entries as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "more than {} entries in a layer: refused",
                    limits.max_entries
                ),
            ));
        }
        let header = entry.header();
        let kind = header.entry_type();
        let Some(name) = normal(&entry.path()?) else {
            continue;
        };
        let kind = if kind.is_dir() {
            Kind::Dir
        } else if kind.is_file() {
            let exec = header.mode().unwrap_or(0) & 0o111 != 0;
            // The entry's size (PAX's when it has one), not the header's.
            let size = entry.size();
            Kind::File {
                exec,
                facts: file_facts(&name, size, &mut entry, &mut text_left)?,
            }
        } else if kind.is_symlink() {
            let target = entry.link_name()?.unwrap_or_default();
            Kind::Link {
                target: target.to_string_lossy().into_owned(),
            }
        } else if kind.is_hard_link() {
            // A hard link is the file it names; the map resolves it.
            let target = entry.link_name()?.unwrap_or_default();
            match normal(&target) {
                Some(t) => Kind::Link {
                    target: format!("/{t}"),
                },
                None => Kind::Other,
            }
        } else if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName
        ) {
            continue;
        } else {
            Kind::Other
        };
        out.push((name, kind));
    }
    for (what, want, got) in [
        ("diff_id", diff_id, diff.finish()?),
        ("digest", digest, blob.finish()?),
    ] {
        if *want != got {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("layer {digest} does not match its {what} (the content is {got})"),
            ));
        }
    }
    Ok(out)
}

/// The cache directory of listings of this reader.
const LISTING_VERSION: &str = "files-v3";

/// The listing of a layer, from the cache under `cache_dir` when an
/// earlier build read it.
pub fn list_cached(
    path: &Path,
    media_type: &str,
    (digest, diff_id): (&Digest, &Digest),
    cache_dir: &Path,
) -> io::Result<Listing> {
    // Versioned by what a listing holds and how it was read: a listing of
    // an older reader would hide facts this one finds.
    let cached = cache_dir
        .join(LISTING_VERSION)
        .join(format!("{}.json", diff_id.hex()));
    if let Ok(bytes) = std::fs::read(&cached)
        && let Ok(listing) = serde_json::from_slice(&bytes)
    {
        return Ok(listing);
    }
    let listing = list(path, media_type, digest, diff_id)?;
    if let Some(dir) = cached.parent() {
        std::fs::create_dir_all(dir)?;
        let bytes = serde_json::to_vec(&listing).map_err(io::Error::other)?;
        crate::oci::layout::write_atomic(&cached, &bytes).map_err(io::Error::other)?;
    }
    Ok(listing)
}

/// A tar path as the image will have it ([`crate::rootfs::layer_path`]'s
/// rules, so the check sees what `cascade run` unpacks); `None` for the
/// root or a path it refuses.
fn normal(path: &Path) -> Option<String> {
    let rel = crate::rootfs::layer_path(path).ok().flatten()?;
    Some(rel.to_string_lossy().into_owned())
}

/// The image's filesystem, as paths.
#[derive(Debug, Default)]
pub struct Files {
    entries: BTreeMap<String, Kind>,
}

/// Links followed before giving up, as Linux's `MAXSYMLINKS`.
const MAX_LINKS: u32 = 40;

impl Files {
    /// Put `layer` on top of what is there.
    pub fn apply(&mut self, layer: &Listing) {
        // An opaque directory hides lower layers only: clear those first,
        // then put this layer's entries (beneath it too) on top.
        let opaque: BTreeSet<&str> = layer
            .iter()
            .filter_map(|(name, _)| {
                let (dir, file) = name.rsplit_once('/').unwrap_or(("", name));
                (file == ".wh..wh..opq").then_some(dir)
            })
            .collect();
        for dir in &opaque {
            self.remove_below(dir);
        }
        for (name, kind) in layer {
            let (dir, file) = name.rsplit_once('/').unwrap_or(("", name));
            if file == ".wh..wh..opq" {
                continue;
            }
            if let Some(hidden) = file.strip_prefix(".wh.") {
                let gone = if dir.is_empty() {
                    hidden.to_owned()
                } else {
                    format!("{dir}/{hidden}")
                };
                self.remove(&gone);
                continue;
            }
            if *kind != Kind::Dir {
                self.remove(name);
            }
            self.entries.insert(name.clone(), kind.clone());
        }
    }

    /// Remove `path` and what is below it: a range of the sorted map, so a
    /// layer of N entries costs N log N, not N².
    fn remove(&mut self, path: &str) {
        self.entries.remove(path);
        self.remove_below(path);
    }

    fn remove_below(&mut self, dir: &str) {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let doomed: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .map(|(p, _)| p.clone())
            .collect();
        for p in doomed {
            self.entries.remove(&p);
        }
    }

    /// What `path` (absolute, or relative to `/`) is once every link on
    /// it is followed, and the path it resolved to; `None` when nothing is
    /// there.
    pub fn resolve(&self, path: &str) -> Option<(String, &Kind)> {
        let mut hops = 0;
        let mut done: Vec<String> = Vec::new();
        let mut todo: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
        while let Some(part) = todo.pop() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            done.push(part);
            let here = done.join("/");
            let Some(kind) = self.entries.get(&here) else {
                // Layers need not list a directory to put files in it.
                if self.has_children(&here) {
                    continue;
                }
                return None;
            };
            match kind {
                Kind::Link { target } => {
                    hops += 1;
                    if hops > MAX_LINKS {
                        return None;
                    }
                    done.pop();
                    if target.starts_with('/') {
                        done.clear();
                    }
                    todo.extend(target.split('/').rev().map(str::to_owned));
                }
                Kind::Dir => {}
                _ if !todo.iter().all(|p| p.is_empty() || p == ".") => return None,
                _ => {}
            }
        }
        let here = done.join("/");
        if here.is_empty() {
            return None;
        }
        self.entries
            .get(&here)
            .map(|k| (format!("/{here}"), k))
            .or_else(|| {
                self.has_children(&here)
                    .then(|| (format!("/{here}"), &Kind::Dir))
            })
    }

    fn has_children(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.entries
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(&prefix))
    }

    /// The facts of the file `path` resolves to, with its resolved path.
    pub fn facts(&self, path: &str) -> Option<(String, &Facts)> {
        match self.resolve(path)? {
            (at, Kind::File { facts: Some(f), .. }) => Some((at, f)),
            _ => None,
        }
    }

    /// The entries below the directory `dir` (a resolved path), in order.
    pub fn under(&self, dir: &str) -> impl Iterator<Item = (&str, &Kind)> {
        let prefix = format!("{}/", dir.trim_start_matches('/'));
        self.entries
            .range(prefix.clone()..)
            .take_while(move |(p, _)| p.starts_with(&prefix))
            .map(|(p, k)| (p.as_str(), k))
    }

    /// Every entry, by path (no leading `/`), in path order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Kind)> {
        self.entries.iter().map(|(p, k)| (p.as_str(), k))
    }

    /// The names directly in the directory `dir` (resolved), sorted.
    pub fn names_in(&self, dir: &str) -> Vec<String> {
        let Some((dir, Kind::Dir)) = self.resolve(dir) else {
            return Vec::new();
        };
        let prefix = format!("{}/", dir.trim_start_matches('/'));
        self.entries
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter_map(|(p, _)| p[prefix.len()..].split('/').next())
            .map(str::to_owned)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// `path` with the directories above it resolved and its last part
    /// kept as it is: where a link itself lives (a package's file list names
    /// `/lib/x`, which a merged-/usr image holds at `/usr/lib/x`).
    pub fn parent_resolved(&self, path: &str) -> String {
        let path = path.trim_end_matches('/');
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        match self.resolve(dir) {
            Some((dir, _)) => format!("{dir}/{name}"),
            None => format!("/{}", path.trim_start_matches('/')),
        }
    }

    /// Whether `path` resolves to a regular file with an exec bit.
    pub fn is_program(&self, path: &str) -> bool {
        matches!(self.resolve(path), Some((_, Kind::File { exec: true, .. })))
    }
}

/// Where a process's program is looked for, as `execvp` would.
#[derive(Debug, Clone)]
pub struct Lookup<'a> {
    /// `PATH` from the image config's `Env` (the image's default when it
    /// has none).
    pub path: &'a str,
    pub working_dir: &'a str,
}

/// The default `PATH` of container runtimes when an image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Shell words a `sh -c` script may start with that are not files.
pub(crate) const BUILTINS: &[&str] = &[
    ".", ":", "[", "alias", "break", "cd", "command", "continue", "echo", "eval", "exec", "exit",
    "export", "false", "printf", "read", "return", "set", "shift", "test", "times", "trap", "true",
    "type", "ulimit", "umask", "unset", "wait", "if", "for", "while", "case", "{", "(",
];

impl Files {
    /// Where `program` is found, or `None`.
    pub fn find(&self, program: &str, lookup: &Lookup<'_>) -> Option<String> {
        if program.contains('/') {
            let full = if program.starts_with('/') {
                PathBuf::from(program)
            } else {
                Path::new(lookup.working_dir).join(program)
            };
            let full = full.to_string_lossy().into_owned();
            return self.is_program(&full).then_some(full);
        }
        lookup
            .path
            .split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
            .find(|p| self.is_program(p))
    }

    /// What of `argv` the image lacks: the program, and for `sh -c SCRIPT`
    /// the script's first command. Empty when all is there.
    pub fn missing(&self, argv: &[String], lookup: &Lookup<'_>) -> Vec<String> {
        let Some(program) = argv.first() else {
            return vec!["(an empty command)".into()];
        };
        let mut missing = Vec::new();
        if self.find(program, lookup).is_none() {
            missing.push(program.clone());
            return missing;
        }
        let shell = Path::new(program)
            .file_name()
            .is_some_and(|n| matches!(n.to_str(), Some("sh" | "bash" | "dash" | "ash")));
        if shell
            && argv.get(1).map(String::as_str) == Some("-c")
            && let Some(script) = argv.get(2)
            && let Some(first) = first_command(script)
            && !BUILTINS.contains(&first.as_str())
            && self.find(&first, lookup).is_none()
        {
            missing.push(first);
        }
        missing
    }
}

/// The first command word of a shell script: past variable assignments
/// and `exec`; `None` when it starts with something only the shell can
/// judge (an expansion, a quote).
pub(crate) fn first_command(script: &str) -> Option<String> {
    let words = shlex::split(script.lines().find(|l| !l.trim().is_empty())?)?;
    let word = words
        .into_iter()
        // `NAME=value` assignments and `exec` come before the command.
        .find(|w| (w.starts_with('=') || !w.contains('=')) && w != "exec")?;
    let plain = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c));
    plain.then_some(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(layers: &[&[(&str, Kind)]]) -> Files {
        let mut f = Files::default();
        for l in layers {
            f.apply(
                &l.iter()
                    .map(|(p, k)| ((*p).to_owned(), k.clone()))
                    .collect(),
            );
        }
        f
    }

    fn link(t: &str) -> Kind {
        Kind::Link { target: t.into() }
    }

    const EXEC: Kind = Kind::File {
        exec: true,
        facts: None,
    };

    #[test]
    fn programs_are_found_through_links_and_path() {
        let f = files(&[&[
            ("bin", Kind::Dir),
            ("bin/busybox", EXEC),
            ("bin/sh", link("busybox")),
            ("usr", Kind::Dir),
            ("usr/bin", link("../bin")),
            (
                "etc/passwd",
                Kind::File {
                    exec: false,
                    facts: None,
                },
            ),
            ("loop", link("/loop")),
        ]]);
        let l = Lookup {
            path: "/usr/bin",
            working_dir: "/workspace",
        };
        assert_eq!(f.find("sh", &l).as_deref(), Some("/usr/bin/sh"));
        assert!(f.is_program("/usr/bin/busybox"));
        assert!(!f.is_program("/etc/passwd"), "not executable");
        assert!(!f.is_program("/loop"), "a link loop ends");
        assert_eq!(f.find("python", &l), None);
        let argv = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(
            f.missing(&argv(&["/bin/sh", "-c", "echo hi"]), &l)
                .is_empty()
        );
        assert_eq!(
            f.missing(&argv(&["/bin/sh", "-c", "PORT=1 exec gunicorn app"]), &l),
            ["gunicorn"]
        );
        assert_eq!(
            f.missing(&argv(&["/bin/bash", "-c", "x"]), &l),
            ["/bin/bash"]
        );
    }

    #[test]
    fn whiteouts_and_opaque_dirs_remove_lower_files() {
        let f = files(&[
            &[("bin/a", EXEC), ("bin/b", EXEC), ("opt/x/y", EXEC)],
            &[
                ("bin/.wh.a", Kind::Other),
                ("opt/x/.wh..wh..opq", Kind::Other),
                ("opt/x/z", EXEC),
            ],
        ]);
        assert!(!f.is_program("/bin/a") && f.is_program("/bin/b"));
        assert!(!f.is_program("/opt/x/y") && f.is_program("/opt/x/z"));
    }
}
