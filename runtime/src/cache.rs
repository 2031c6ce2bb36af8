//! The build cache of one output image: what lets an unchanged rebuild cost
//! next to nothing.
//!
//! CNB keeps two things between builds: a cache (the files of `cache`
//! layers) and the previous image (the metadata and blobs of launch layers).
//! Cascade keeps both under `<cache dir>/images/<key>/`, keyed by the output
//! image name:
//!
//! - `record.json`: each buildpack's layers of the last successful build
//!   (types, metadata, blob, whether they had `bin/` and `lib/`) and the app
//!   layer's blob, wrapped with its own sha256 so a damaged record is noticed;
//! - `layers/<buildpack>/<layer>/`: the files of `cache` layers, each with a
//!   fingerprint in the record (sha256 over every entry's path, type, size,
//!   mtime, mode and link target), checked before the layer is offered back;
//! - `lock`: held for the whole build, so concurrent builds of one image take
//!   turns instead of corrupting each other (builds of other images do not
//!   wait);
//! - `workspace/` and `workspace.json`: the build's private copy of the app,
//!   kept so that the next build copies only what changed, and the stamps
//!   that tell what did (see [`crate::workspace`]);
//! - `work-*/`: the build's layers dirs, on the same file system so that
//!   restoring and saving cache layers are renames, not copies.
//!
//! Blobs themselves stay where export wrote them (the output layout, or the
//! blob cache a registry push is staged in); a launch layer is offered back
//! only while its blob is still there and untouched (same size, inode and
//! mtime as when it was recorded).

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::api::{LayerTypes, RestoredLayer};
use crate::capabilities::{CapabilityUse, Provenance};
use crate::env::LayerDirs;
use crate::guest_tree::{EntryKind, GuestTree, MetadataExt as _};
use crate::ids::{BuildpackId, LayerName};
use crate::oci::Layout;
use crate::oci::layer::LayerBlob;
use crate::phase::{BuiltBuildpack, Exported};
use crate::report::Reporter;

/// Bump when the record's meaning changes: an old record is then ignored.
const RECORD_VERSION: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("build cache {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("build cache: {0}")]
    Record(#[from] crate::oci::LayoutError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A layer of the previous build: what its buildpack is told, and what the
/// host knows to reuse it.
#[derive(Debug, Clone)]
pub struct PreviousLayer {
    pub restored: RestoredLayer,
    /// Its blob, when it was a launch layer and the blob is still present.
    pub blob: Option<LayerBlob>,
    pub dirs: LayerDirs,
    /// The capability calls its contents owe, carried into the image's
    /// record when the layer is kept.
    pub calls: Vec<CapabilityUse>,
}

/// What the cache gave back before a build.
#[derive(Debug, Default)]
pub struct Restored {
    pub layers: BTreeMap<BuildpackId, Vec<PreviousLayer>>,
    /// The previous app layer, when its blob is still present.
    pub app: Option<LayerBlob>,
    /// The stamp of the app tree it was made from (see
    /// [`crate::workspace::stamp`]).
    pub app_stamp: Option<String>,
    /// The previous SBOM layer, likewise.
    pub sbom: Option<LayerBlob>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Sealed {
    sha256: String,
    record: serde_json::Value,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    version: u32,
    image: String,
    buildpacks: BTreeMap<String, Vec<RecordLayer>>,
    app: Option<LayerBlob>,
    /// The app tree's stamp when the app layer was made.
    #[serde(default)]
    app_stamp: Option<String>,
    sbom: Option<LayerBlob>,
    /// What the image's capabilities label recorded.
    #[serde(default)]
    capabilities: Vec<CapabilityUse>,
    /// Each recorded blob's file as saved (see [`blob_stamp`]).
    #[serde(default)]
    blob_stamps: BTreeMap<String, String>,
    /// The build image the exec'd tools ran in (its digest, or `host`),
    /// when any did: see [`ImageCache::restore`].
    #[serde(default)]
    build_image: Option<String>,
}

impl Record {
    /// The buildpacks whose tools ran in another build image than
    /// `build_image` (a record from before build images were recorded
    /// counts as another, since nothing says which they ran in).
    fn tools_ran_elsewhere(&self, build_image: Option<&str>) -> Vec<String> {
        if self.build_image.is_some() && self.build_image.as_deref() == build_image {
            return Vec::new();
        }
        let ids: std::collections::BTreeSet<String> = self
            .capabilities
            .iter()
            .filter(|u| u.ran_a_tool())
            .map(|u| u.buildpack.clone())
            .collect();
        ids.into_iter().collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RecordLayer {
    name: String,
    types: LayerTypes,
    /// TOML text.
    metadata: String,
    blob: Option<LayerBlob>,
    /// Of the saved files, for `cache` layers.
    fingerprint: Option<String>,
    dirs: LayerDirs,
    /// The capability calls its contents owe (see
    /// [`crate::capabilities::provenance`]).
    #[serde(default)]
    calls: Vec<CapabilityUse>,
}

/// The cache of one output image, locked for as long as it is held.
#[derive(Debug)]
pub struct ImageCache {
    dir: PathBuf,
    image: String,
    _lock: File,
}

impl ImageCache {
    /// Open (creating) the cache of `image` under `root` and take its lock,
    /// waiting for another build of the same image to finish.
    pub fn open(root: &Path, image: &str, reporter: &dyn Reporter) -> Result<Self, CacheError> {
        let key = hex::encode(&sha2::Sha256::digest(image.as_bytes())[..12]);
        let dir = root.join("images").join(key);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let lock_path = dir.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                reporter.note(&format!(
                    "waiting for another build of {image} to release the cache"
                ));
                lock.lock().map_err(io_err(&lock_path))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        Ok(Self {
            dir,
            image: image.into(),
            _lock: lock,
        })
    }

    /// Forget everything cached for this image (`--clear-cache`).
    pub fn clear(&self) -> Result<(), CacheError> {
        remove_if_present(&self.dir.join("record.json"))?;
        crate::workspace::discard(&self.dir).map_err(io_err(&self.dir))?;
        remove_if_present(&self.dir.join("layers"))
    }

    /// The build's private copy of `app`, brought in line with it.
    pub fn sync_workspace(
        &self,
        app: &GuestTree,
        filter: &crate::project::Filter,
    ) -> io::Result<(GuestTree, crate::workspace::SyncStats)> {
        crate::workspace::sync(app, &self.dir, filter)
    }

    /// A private directory for one build, on the cache's file system. Work
    /// dirs left by a build that was killed are removed first: the lock says
    /// no other build of this image is running.
    pub fn work_dir(&self) -> Result<tempfile::TempDir, CacheError> {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("work-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        tempfile::Builder::new()
            .prefix("work-")
            .tempdir_in(&self.dir)
            .map_err(io_err(&self.dir))
    }

    fn read_record(&self, reporter: &dyn Reporter) -> Record {
        let path = self.dir.join("record.json");
        let Ok(bytes) = std::fs::read(&path) else {
            return Record::default();
        };
        let record = serde_json::from_slice::<Sealed>(&bytes)
            .ok()
            .filter(|s| {
                let body = serde_json::to_vec(&s.record).unwrap_or_default();
                hex::encode(sha2::Sha256::digest(&body)) == s.sha256
            })
            .and_then(|s| serde_json::from_value::<Record>(s.record).ok());
        match record {
            Some(r) if r.version == RECORD_VERSION && r.image == self.image => r,
            Some(_) => Record::default(),
            None => {
                reporter.note(&format!(
                    "cache record {} is damaged: ignoring it and rebuilding",
                    path.display()
                ));
                Record::default()
            }
        }
    }

    /// Put the previous build's cache layers back under `layers_root` (by
    /// rename) and list what each buildpack may reuse. A cache layer whose
    /// files do not match their fingerprint is dropped, never offered; a
    /// launch layer whose blob left `store` is not offered either. When the
    /// build image (`build_image`: its digest, or `host`) is not the one the
    /// previous build's tools ran in, nothing of a buildpack that exec'd a
    /// tool is offered: its layers hold what the old compilers made, and an
    /// image that kept them would claim the patched build image falsely.
    pub fn restore(
        &self,
        layers_root: &Path,
        store: &Layout,
        build_image: Option<&str>,
        reporter: &dyn Reporter,
    ) -> Result<Restored, CacheError> {
        let mut record = self.read_record(reporter);
        let stale = record.tools_ran_elsewhere(build_image);
        for id in &stale {
            if record.buildpacks.remove(id).is_some() {
                reporter.note(&format!(
                    "the build image changed since the last build ({} -> {}): not reusing the layers of {id}, whose tools ran in the old one",
                    record.build_image.as_deref().unwrap_or("unrecorded"),
                    build_image.unwrap_or("none")
                ));
            }
        }
        let saved = self.dir.join("layers");
        let present = |b: &LayerBlob| {
            let same = blob_stamp(store, &b.digest)
                .is_some_and(|now| record.blob_stamps.get(&b.digest.to_string()) == Some(&now));
            if !same && store.blob_path(&b.digest).exists() {
                reporter.note(&format!(
                    "blob {} changed since the last build: not reusing it",
                    b.digest
                ));
            }
            same
        };
        let app = record.app.clone().filter(|b| present(b));
        let mut out = Restored {
            app_stamp: record.app_stamp.clone().filter(|_| app.is_some()),
            app,
            sbom: record.sbom.clone().filter(|b| present(b)),
            ..Restored::default()
        };
        let saved_tree = GuestTree::open(&saved).ok();
        let layers_tree = GuestTree::create(layers_root).map_err(io_err(layers_root))?;
        for (bp, layers) in &record.buildpacks {
            let Ok(id) = BuildpackId::new(bp) else {
                continue;
            };
            let mut previous = Vec::new();
            for l in layers {
                let Ok(name) = LayerName::new(l.name.clone()) else {
                    continue;
                };
                let Ok(metadata) = l.metadata.parse::<toml::Table>() else {
                    continue;
                };
                let blob = l.blob.clone().filter(|b| l.types.launch && present(b));
                let has_files = if l.types.cache {
                    let rel = Path::new(&id.escaped()).join(name.as_str());
                    let found = saved_tree
                        .as_ref()
                        .and_then(|t| t.subtree(&rel).ok())
                        .and_then(|t| fingerprint(&t).ok());
                    if found.is_none() || found != l.fingerprint {
                        reporter.note(&format!(
                            "cache layer {id}:{name} does not match its fingerprint: dropping it"
                        ));
                        continue;
                    }
                    let saved_tree = saved_tree.as_ref().expect("found above");
                    saved_tree
                        .rename(&rel, &layers_tree, &rel)
                        .map_err(io_err(&saved.join(&rel)))?;
                    true
                } else if blob.is_some() {
                    false
                } else {
                    continue;
                };
                previous.push(PreviousLayer {
                    restored: RestoredLayer {
                        name,
                        types: l.types,
                        metadata,
                        has_files,
                    },
                    blob,
                    dirs: l.dirs,
                    calls: l.calls.clone(),
                });
            }
            if !previous.is_empty() {
                out.layers.insert(id, previous);
            }
        }
        // What was not restored is stale; the record goes too, so a build
        // that fails now leaves a cache that is empty, not wrong.
        remove_if_present(&saved)?;
        remove_if_present(&self.dir.join("record.json"))?;
        Ok(out)
    }

    /// After a successful build: keep the `cache` layers' files (moved out
    /// of the work dir) and record every layer and blob (with its file's
    /// stamp in `store`), the calls the image records and those each layer
    /// owes, for the next build.
    pub fn save(
        &self,
        store: &Layout,
        built: &[BuiltBuildpack],
        exported: &Exported,
        provenance: &Provenance,
        build_image: Option<&str>,
        app_stamp: Option<&str>,
    ) -> Result<(), CacheError> {
        let staging = self.dir.join("layers.new");
        remove_if_present(&staging)?;
        let staging_tree = GuestTree::create(&staging).map_err(io_err(&staging))?;
        let mut record = Record {
            version: RECORD_VERSION,
            image: self.image.clone(),
            buildpacks: BTreeMap::new(),
            app: Some(exported.app_blob.clone()),
            app_stamp: app_stamp.map(str::to_owned),
            sbom: Some(exported.sbom_blob.clone()),
            capabilities: provenance.image.clone(),
            blob_stamps: BTreeMap::new(),
            build_image: build_image.map(str::to_owned),
        };
        for bp in built {
            let id = bp.runner.id();
            let mut layers = Vec::new();
            for l in &bp.layers {
                let blob = exported
                    .layer_blobs
                    .iter()
                    .find(|(b, name, _)| b == id && name == &l.layer.name)
                    .map(|(_, _, blob)| blob.clone());
                let fingerprint = if l.layer.types.cache && l.tree.is_some() {
                    // Moved by name under the buildpack's layers dir (a
                    // link there was refused when the build ended).
                    let rel = Path::new(&id.escaped()).join(l.layer.name.as_str());
                    bp.layers_dir
                        .rename(l.layer.name.as_str(), &staging_tree, &rel)
                        .map_err(io_err(&l.host_path))?;
                    let moved = staging_tree.subtree(&rel).map_err(io_err(&staging))?;
                    Some(fingerprint(&moved).map_err(io_err(&staging))?)
                } else {
                    None
                };
                if blob.is_none() && fingerprint.is_none() {
                    continue;
                }
                layers.push(RecordLayer {
                    name: l.layer.name.to_string(),
                    types: l.layer.types,
                    metadata: l.layer.metadata.to_string(),
                    blob,
                    fingerprint,
                    dirs: l.dirs,
                    calls: provenance.of_layer(id.as_str(), l.layer.name.as_str()),
                });
            }
            record.buildpacks.insert(id.to_string(), layers);
        }
        let blobs = record
            .buildpacks
            .values()
            .flatten()
            .filter_map(|l| l.blob.as_ref());
        let blobs: Vec<&LayerBlob> = blobs.chain(&record.app).chain(&record.sbom).collect();
        for b in blobs {
            if let Some(stamp) = blob_stamp(store, &b.digest) {
                record.blob_stamps.insert(b.digest.to_string(), stamp);
            }
        }
        drop(staging_tree);
        let saved = self.dir.join("layers");
        remove_if_present(&saved)?;
        std::fs::rename(&staging, &saved).map_err(io_err(&staging))?;
        let body = serde_json::to_value(&record).expect("the record serialises");
        let sealed = Sealed {
            sha256: hex::encode(sha2::Sha256::digest(
                serde_json::to_vec(&body).expect("JSON serialises"),
            )),
            record: body,
        };
        let path = self.dir.join("record.json");
        let bytes = serde_json::to_vec_pretty(&sealed).expect("JSON serialises");
        Ok(crate::oci::layout::write_atomic(&path, &bytes)?)
    }
}

fn remove_if_present(path: &Path) -> Result<(), CacheError> {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

/// What a blob's file is now: size, inode and mtime. A blob is written
/// once, by rename; whatever rewrites or damages it through the file system
/// afterwards changes one of these, so a reused blob is one that nothing
/// touched since the build that recorded it (checked with one `stat`, not
/// by hashing it again).
fn blob_stamp(store: &Layout, digest: &crate::oci::Digest) -> Option<String> {
    let m = std::fs::metadata(store.blob_path(digest)).ok()?;
    Some(format!(
        "{}:{}:{}.{:09}",
        m.len(),
        m.ino(),
        m.mtime(),
        m.mtime_nsec()
    ))
}

/// sha256 over every entry under `dir` (sorted): relative path, type, and
/// for files size, mtime and exec bit, for links the target. It reads no
/// file contents, so checking a large cache layer costs one `stat` per
/// entry; any write through the file system changes a size or an mtime.
pub fn fingerprint(dir: &GuestTree) -> io::Result<String> {
    let mut h = sha2::Sha256::new();
    dir.walk(&mut |e| {
        h.update(e.rel.as_os_str().as_encoded_bytes());
        h.update([0]);
        match &e.kind {
            EntryKind::Dir => h.update(b"d"),
            EntryKind::Symlink(target) => {
                h.update(b"l");
                h.update(target.as_os_str().as_encoded_bytes());
            }
            EntryKind::File => {
                let meta = e.meta;
                h.update(b"f");
                h.update(meta.len().to_le_bytes());
                h.update(meta.mtime().to_le_bytes());
                h.update(meta.mtime_nsec().to_le_bytes());
                h.update((meta.mode() & 0o111).to_le_bytes());
            }
        }
        h.update([0]);
        Ok(())
    })?;
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_sees_changed_content_and_new_files_but_not_the_location() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        std::fs::create_dir_all(a.join("sub")).unwrap();
        std::fs::write(a.join("sub/f"), "one").unwrap();
        let fp = |p: &Path| fingerprint(&GuestTree::open(p).unwrap()).unwrap();
        let before = fp(&a);
        let b = tmp.path().join("b");
        std::fs::rename(&a, &b).unwrap();
        assert_eq!(fp(&b), before, "a rename is not a change");
        std::fs::write(b.join("sub/f"), "two").unwrap();
        let changed = fp(&b);
        assert_ne!(changed, before);
        std::fs::write(b.join("new"), "").unwrap();
        assert_ne!(fp(&b), changed);
    }

    #[test]
    fn a_tampered_record_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ImageCache::open(tmp.path(), "oci:x:y", &crate::report::Silent).unwrap();
        let sealed = Sealed {
            sha256: "0".repeat(64),
            record: serde_json::to_value(Record {
                version: RECORD_VERSION,
                image: "oci:x:y".into(),
                ..Record::default()
            })
            .unwrap(),
        };
        std::fs::write(
            cache.dir.join("record.json"),
            serde_json::to_vec(&sealed).unwrap(),
        )
        .unwrap();
        let record = cache.read_record(&crate::report::Silent);
        assert!(
            record.image.is_empty(),
            "a record with a wrong seal was used"
        );
    }

    #[test]
    fn layers_made_by_tools_of_another_build_image_are_not_offered() {
        let used = |id: &str, capability: &str| CapabilityUse {
            buildpack: id.into(),
            capability: capability.into(),
            detail: String::new(),
            allowed: true,
            into: None,
        };
        let record = |build_image: Option<&str>| Record {
            capabilities: vec![
                used("a/go", "exec:go"),
                used("a/go", "exec:go"),
                used("a/node", "fetch:nodejs.org"),
            ],
            build_image: build_image.map(str::to_owned),
            ..Record::default()
        };
        assert!(
            record(Some("sha256:1"))
                .tools_ran_elsewhere(Some("sha256:1"))
                .is_empty()
        );
        assert_eq!(
            record(Some("sha256:1")).tools_ran_elsewhere(Some("sha256:2")),
            ["a/go"],
            "a fetch made nothing the build image decides"
        );
        assert_eq!(record(Some("host")).tools_ran_elsewhere(None), ["a/go"]);
        assert_eq!(
            record(None).tools_ran_elsewhere(Some("sha256:1")),
            ["a/go"],
            "an older record does not say where its tools ran"
        );
        let no_tools = Record::default();
        assert!(no_tools.tools_ran_elsewhere(Some("sha256:1")).is_empty());
    }
}
