//! `builder.lock`: the digests a builder's registry buildpacks resolved to,
//! written beside `builder.toml` the first time a reference is resolved and
//! honoured from then on (tags may move; the lock does not), as Cargo.lock
//! is. Commit it to make a builder reproducible; `cascade build --locked`
//! refuses to resolve anything the lock does not already hold.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config_file::ConfigFileError;
use cascade_digest::Digest;

const HEADER: &str = "# Written by cascade: the digests this builder's registry buildpacks and\n# build image resolved to. Commit it; delete an entry to resolve its reference again.\n";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuilderLock {
    pub version: u32,
    #[serde(default)]
    pub buildpacks: Vec<LockedBuildpack>,
    /// The digest the builder's build image resolved to.
    #[serde(
        default,
        rename = "build-image",
        skip_serializing_if = "Option::is_none"
    )]
    pub build_image: Option<LockedImage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedImage {
    /// The reference as builder.toml writes it.
    pub reference: String,
    /// What it resolved to: its manifest, or the image index naming one per
    /// platform (so the lock holds on any machine).
    pub digest: Digest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedBuildpack {
    /// The `uri` as builder.toml writes it.
    pub uri: String,
    /// The artifact manifest it resolved to.
    pub manifest: Digest,
    /// The component (the `.wasm` layer).
    pub component: Digest,
}

impl BuilderLock {
    /// `builder.toml` → `builder.lock`, beside it.
    pub fn path_for(builder: &Path) -> PathBuf {
        builder.with_extension("lock")
    }

    /// The lock at `path`; an empty one when there is none yet.
    pub fn load(path: &Path) -> Result<Self, ConfigFileError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| ConfigFileError::Parse {
                path: path.into(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self {
                version: 1,
                ..Self::default()
            }),
            Err(source) => Err(ConfigFileError::Read {
                path: path.into(),
                source,
            }),
        }
    }

    pub fn get(&self, uri: &str) -> Option<&LockedBuildpack> {
        self.buildpacks.iter().find(|b| b.uri == uri)
    }

    pub fn set(&mut self, entry: LockedBuildpack) {
        self.buildpacks.retain(|b| b.uri != entry.uri);
        self.buildpacks.push(entry);
        self.buildpacks.sort_by(|a, b| a.uri.cmp(&b.uri));
    }

    /// Write atomically.
    pub fn save(&self, path: &Path) -> Result<(), ConfigFileError> {
        let text = format!(
            "{HEADER}{}",
            toml::to_string(self).expect("the lock serialises")
        );
        cascade_oci::layout::write_atomic(path, text.as_bytes()).map_err(|e| {
            ConfigFileError::Read {
                path: path.into(),
                source: std::io::Error::other(e.to_string()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_sorted_and_replaces_by_uri() {
        let tmp = tempfile::tempdir().unwrap();
        let path = BuilderLock::path_for(&tmp.path().join("builder.toml"));
        assert!(path.ends_with("builder.lock"));
        let mut lock = BuilderLock::load(&path).unwrap();
        let d = |c: char| -> Digest {
            format!("sha256:{}", c.to_string().repeat(64))
                .parse()
                .unwrap()
        };
        for (uri, c) in [
            ("docker://r/b:1", 'b'),
            ("docker://r/a:1", 'a'),
            ("docker://r/b:1", 'c'),
        ] {
            lock.set(LockedBuildpack {
                uri: uri.into(),
                manifest: d(c),
                component: d(c),
            });
        }
        lock.save(&path).unwrap();
        let back = BuilderLock::load(&path).unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.buildpacks.len(), 2);
        assert_eq!(back.buildpacks[0].uri, "docker://r/a:1");
        assert_eq!(back.get("docker://r/b:1").unwrap().manifest, d('c'));
    }
}
