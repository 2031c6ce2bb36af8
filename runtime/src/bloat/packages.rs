//! The run image's installed packages and which files each owns, from the
//! package database in its layers: dpkg's `var/lib/dpkg/status` with the
//! `info/<package>[:<arch>].list` file lists, or a distroless image's
//! `var/lib/dpkg/status.d/<package>` paragraphs with their `.md5sums`.
//! An image with neither has no package to name: its reached files are
//! reported by path.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::image_files::{Facts, Files, Kind};

/// Packages read at most, and files of one package's list.
const MAX_PACKAGES: usize = 100_000;
const MAX_FILES: usize = 1_000_000;

/// Where the package database came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `var/lib/dpkg/status` and `info/*.list`.
    Dpkg,
    /// `var/lib/dpkg/status.d/` (distroless).
    StatusD,
    /// No package database.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// `Installed-Size`, in bytes.
    pub installed_size: Option<u64>,
}

/// The packages and who owns which path.
#[derive(Debug, Clone)]
pub struct PackageDb {
    pub source: Source,
    pub packages: Vec<Package>,
    /// Owners (indexes into `packages`) by path as the image holds it:
    /// the listed path with its directories resolved (see
    /// [`Files::parent_resolved`]), so `/lib/x` of a merged-/usr image is
    /// found at `/usr/lib/x`. Every package that lists a path owns it
    /// (diversions, `Replaces`, a /usr move leave two).
    owners: BTreeMap<String, Vec<usize>>,
}

impl PackageDb {
    /// The database of the image `files` holds.
    pub fn read(files: &Files) -> Self {
        if let Some((_, Facts::Text(status))) = files.facts("/var/lib/dpkg/status") {
            return Self::from_dpkg(files, status);
        }
        let dir = "/var/lib/dpkg/status.d";
        let names = files.names_in(dir);
        if !names.is_empty() {
            return Self::from_status_d(files, dir, &names);
        }
        Self {
            source: Source::None,
            packages: Vec::new(),
            owners: BTreeMap::new(),
        }
    }

    fn from_dpkg(files: &Files, status: &str) -> Self {
        // Each (name, arch) once, however often a status file repeats it.
        let mut seen = std::collections::BTreeSet::new();
        let mut db = Self {
            source: Source::Dpkg,
            packages: paragraphs(status)
                .filter(|p| seen.insert((p.name.clone(), p.arch.clone())))
                .take(MAX_PACKAGES)
                .collect(),
            owners: BTreeMap::new(),
        };
        for i in 0..db.packages.len() {
            let p = &db.packages[i];
            let lists = [
                format!("/var/lib/dpkg/info/{}:{}.list", p.name, p.arch),
                format!("/var/lib/dpkg/info/{}.list", p.name),
            ];
            if let Some(text) = lists.iter().find_map(|l| text_of(files, l)) {
                let paths: Vec<String> = text.lines().map(str::to_owned).collect();
                db.own(files, i, paths);
            }
        }
        db
    }

    fn from_status_d(files: &Files, dir: &str, names: &[String]) -> Self {
        let mut db = Self {
            source: Source::StatusD,
            packages: Vec::new(),
            owners: BTreeMap::new(),
        };
        for name in names
            .iter()
            .filter(|n| !n.ends_with(".md5sums"))
            .take(MAX_PACKAGES)
        {
            let Some(text) = text_of(files, &format!("{dir}/{name}")) else {
                continue;
            };
            let Some(p) = paragraphs(text).next() else {
                continue;
            };
            let sums = text_of(files, &format!("{dir}/{name}.md5sums")).unwrap_or_default();
            let paths: Vec<String> = sums
                .lines()
                .filter_map(|l| l.split_once("  ").map(|(_, p)| format!("/{p}")))
                .collect();
            db.packages.push(p);
            db.own(files, db.packages.len() - 1, paths);
        }
        db.packages.sort_by(|a, b| a.name.cmp(&b.name));
        db
    }

    /// Record package `i` as the owner of `paths` (directories are shared
    /// by many packages and own nothing here).
    fn own(&mut self, files: &Files, i: usize, paths: Vec<String>) {
        for path in paths.into_iter().take(MAX_FILES) {
            if path.is_empty() || path == "/." {
                continue;
            }
            let at = files.parent_resolved(&path);
            let is_dir = matches!(files.resolve(&at), Some((_, Kind::Dir)));
            if !is_dir {
                let owners = self.owners.entry(at).or_default();
                if !owners.contains(&i) {
                    owners.push(i);
                }
            }
        }
    }

    /// The packages owning `path` (as the image holds it, directories
    /// resolved).
    pub fn owners(&self, path: &str) -> &[usize] {
        self.owners.get(path).map_or(&[], Vec::as_slice)
    }
}

fn text_of<'a>(files: &'a Files, path: &str) -> Option<&'a str> {
    match files.facts(path)? {
        (_, Facts::Text(t)) => Some(t),
        _ => None,
    }
}

/// The installed packages of deb822 paragraphs (`Status: install ok
/// installed`, or no `Status` at all as distroless writes them).
fn paragraphs(text: &str) -> impl Iterator<Item = Package> + '_ {
    text.split("\n\n").filter_map(|para| {
        let field = |key: &str| {
            para.lines().find_map(|l| {
                l.strip_prefix(key)?
                    .strip_prefix(':')
                    .map(|v| v.trim().to_owned())
            })
        };
        if field("Status").is_some_and(|s| !s.ends_with(" installed")) {
            return None;
        }
        Some(Package {
            name: field("Package")?,
            version: field("Version").unwrap_or_default(),
            arch: field("Architecture").unwrap_or_default(),
            installed_size: field("Installed-Size")
                .and_then(|k| k.parse::<u64>().ok())
                .and_then(|k| k.checked_mul(1024)),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_files::Kind;

    fn file(text: Option<&str>) -> Kind {
        Kind::File {
            exec: false,
            facts: text.map(|t| Box::new(Facts::Text(t.into()))),
        }
    }

    #[test]
    fn dpkg_lists_own_files_through_a_merged_usr() {
        let mut files = Files::default();
        files.apply(&vec![
            ("lib".into(), Kind::Link { target: "usr/lib".into() }),
            ("usr/lib/libz.so.1".into(), file(None)),
            ("usr/bin/tool".into(), file(None)),
            (
                "var/lib/dpkg/status".into(),
                file(Some(
                    "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13\nArchitecture: amd64\nInstalled-Size: 164\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: tool\nStatus: install ok installed\nVersion: 2\nArchitecture: amd64\n",
                )),
            ),
            (
                "var/lib/dpkg/info/zlib1g:amd64.list".into(),
                file(Some("/.\n/lib\n/lib/libz.so.1\n")),
            ),
            ("var/lib/dpkg/info/tool.list".into(), file(Some("/usr/bin/tool\n"))),
        ]);
        let db = PackageDb::read(&files);
        assert_eq!(db.source, Source::Dpkg);
        let names: Vec<&str> = db.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["zlib1g", "tool"], "not the deinstalled one");
        assert_eq!(db.packages[0].installed_size, Some(164 * 1024));
        assert_eq!(db.owners("/usr/lib/libz.so.1"), [0]);
        assert_eq!(db.owners("/usr/bin/tool"), [1]);
        assert!(db.owners("/usr/lib").is_empty(), "a directory owns nothing");
    }

    #[test]
    fn distroless_status_d_and_no_database() {
        let mut files = Files::default();
        files.apply(&vec![
            ("usr/lib/libssl.so.3".into(), file(None)),
            (
                "var/lib/dpkg/status.d/libssl3".into(),
                file(Some(
                    "Package: libssl3\nVersion: 3.0.11\nArchitecture: amd64\n",
                )),
            ),
            (
                "var/lib/dpkg/status.d/libssl3.md5sums".into(),
                file(Some("0123  usr/lib/libssl.so.3\n")),
            ),
        ]);
        let db = PackageDb::read(&files);
        assert_eq!(db.source, Source::StatusD);
        assert_eq!(db.packages[0].name, "libssl3");
        assert_eq!(db.owners("/usr/lib/libssl.so.3"), [0]);
        assert_eq!(PackageDb::read(&Files::default()).source, Source::None);
    }
}
