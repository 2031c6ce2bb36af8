//! The image SBOM follows a rebase. Cascade's SBOM layer describes the app
//! layers *and* the base (its OS packages), so after the base is swapped the
//! layer would still describe the old one. Rebase rewrites that one small
//! layer: the same entries, headers and order, the image document's
//! run-image component replaced by the new base's, every other byte kept.
//! The cost is one small blob read and written: O(1) in the app's size.
//!
//! Why not CNB's other answer (the run image carries its own SBOM in a
//! layer named by a label, scanners join the two): it needs every run image
//! to ship one, and a scanner reading the image's referrer or its
//! `sbom.cdx.json` would still find a document naming the old base. One
//! document that is right for the digest it hangs on is what a scanner
//! reads.

use std::io::Read;

use serde_json::Value;

use super::{Rebase, RebaseError};
use crate::oci::compress::{Compression, decoder};
use crate::oci::document;
use crate::oci::store::{ReadImage, Transfers};
use crate::oci::{Digest, MEDIA_LAYER_TAR, MEDIA_LAYER_ZSTD, canonical, oci_layer_media_type};
use crate::run_image::RunImage;
use crate::sbom::{self, IMAGE_SBOM_PATH, RunImageEntry};

/// An SBOM layer larger than this (compressed or not) is not one Cascade
/// wrote: the image document and the buildpacks' layer SBOMs are small.
const MAX_SBOM_LAYER: u64 = 64 << 20;

/// The rewritten SBOM layer.
#[derive(Debug, Clone)]
pub(super) struct NewSbom {
    /// Index of the SBOM layer among the image's layers.
    pub index: usize,
    pub media_type: String,
    pub blob: Vec<u8>,
    pub digest: Digest,
    pub diff_id: Digest,
    /// The new image document, attached as a referrer when publishing.
    pub document: Vec<u8>,
}

impl Rebase<'_> {
    /// The image's SBOM layer, rewritten for `run`; `None` when the image
    /// has none, or has one Cascade did not write (reported: it then still
    /// describes the old base).
    pub(super) fn new_sbom(
        &self,
        app: &ReadImage,
        run: &RunImage,
        base_count: usize,
        lifecycle: &crate::labels::Lifecycle,
        t: &mut Transfers,
    ) -> Result<Option<NewSbom>, RebaseError> {
        let Some(sha) = lifecycle.sbom_sha.as_deref() else {
            return Ok(None);
        };
        let index = app
            .config
            .rootfs
            .diff_ids
            .iter()
            .position(|d| d.to_string() == sha)
            .filter(|i| *i >= base_count)
            .ok_or_else(|| {
                self.invalid(
                    "lifecycle label",
                    &format!("sbom.sha {sha} is not an app layer of the image"),
                )
            })?;
        let desc = app.manifest.layers().get(index).ok_or_else(|| {
            self.invalid("manifest", &format!("no layer {index} for sbom.sha {sha}"))
        })?;
        let digest =
            document::digest_of(desc, "manifest").map_err(|e| self.invalid("manifest", &e))?;
        if desc.size() > MAX_SBOM_LAYER {
            return Err(self.invalid(
                "manifest",
                &format!("SBOM layer {digest}: over {MAX_SBOM_LAYER} bytes"),
            ));
        }
        let media = document::media_type_of(desc);
        let media_type = oci_layer_media_type(&media);
        let blob =
            self.oci
                .blob_bytes(&digest, &app.home)
                .map_err(|source| RebaseError::Store {
                    image: self.image.to_string(),
                    source,
                })?;
        let mut tar = Vec::new();
        decoder(media_type, blob.as_slice())
            .and_then(|d| d.take(MAX_SBOM_LAYER + 1).read_to_end(&mut tar))
            .map_err(|e| self.invalid("SBOM layer", &e))?;
        if Digest::of(&tar).to_string() != sha {
            return Err(self.invalid(
                "SBOM layer",
                &format!("{digest} does not decompress to its diff_id {sha}"),
            ));
        }
        let old_doc = read_document(&tar).map_err(|e| self.invalid("SBOM layer", &e))?;
        let Some(mut doc) = old_doc else {
            self.reporter.note(&format!(
                "{}: its SBOM layer was not written by Cascade; it is kept and still describes the old run image",
                self.image
            ));
            return Ok(None);
        };
        let entry = self.run_image_entry(run, sbom::lists_os_packages(&doc), t)?;
        if !sbom::replace_run_image(&mut doc, &entry) {
            self.reporter.note(&format!(
                "{}: its SBOM names no run image; it is kept as it is",
                self.image
            ));
            return Ok(None);
        }
        let document = canonical::to_vec(&doc).map_err(|e| self.invalid("SBOM", &e))?;
        let new_tar =
            replace_document(&tar, &document).map_err(|e| self.invalid("SBOM layer", &e))?;
        let compression = match media_type {
            MEDIA_LAYER_TAR => Compression::None,
            MEDIA_LAYER_ZSTD => Compression::Zstd,
            _ => Compression::Gzip,
        };
        let new_blob = compression
            .chunk(&new_tar)
            .map_err(|e| self.invalid("SBOM layer", &e))?;
        Ok(Some(NewSbom {
            index,
            media_type: compression.media_type().to_owned(),
            digest: Digest::of(&new_blob),
            diff_id: Digest::of(&new_tar),
            blob: new_blob,
            document,
        }))
    }

    /// The new base as the SBOM names it. Its OS packages are read from its
    /// layers when they are on this machine; when the old SBOM listed the
    /// old base's packages, the new base's layers are pulled to list its
    /// own (once per base: the result is cached by ChainID), so a rebase
    /// never makes an SBOM say less than it did.
    fn run_image_entry(
        &self,
        run: &RunImage,
        want_packages: bool,
        t: &mut Transfers,
    ) -> Result<RunImageEntry, RebaseError> {
        let mut paths = std::collections::HashMap::new();
        for l in &run.layers {
            match self
                .oci
                .local_blob(&l.digest, &run.home, want_packages, t)
                .map_err(|source| RebaseError::Store {
                    image: self.run_image.to_string(),
                    source,
                })? {
                Some(p) => {
                    paths.insert(l.digest.clone(), p);
                }
                None => break,
            }
        }
        let find = |d: &Digest| paths.get(d).cloned();
        let os = match sbom::os::read(run, &find, &self.oci.cache_root) {
            Ok(os) => os,
            Err(e) => {
                self.reporter.note(&format!(
                    "reading {}'s OS packages failed ({e}): the SBOM lists none",
                    self.run_image
                ));
                None
            }
        };
        Ok(RunImageEntry {
            reference: run.reference.to_string(),
            digest: run.manifest_digest.clone(),
            top_layer: run.top_layer().cloned(),
            os,
        })
    }
}

fn is_document(path: &std::path::Path) -> bool {
    path.to_string_lossy().trim_start_matches("./") == IMAGE_SBOM_PATH
}

/// The image document of an SBOM layer's tar; `None` when it has none.
fn read_document(tar: &[u8]) -> std::io::Result<Option<Value>> {
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type().is_file() && is_document(&entry.path()?) {
            let mut text = Vec::new();
            entry.read_to_end(&mut text)?;
            return Ok(serde_json::from_slice(&text).ok());
        }
    }
    Ok(None)
}

/// `tar` with the image document's content replaced by `document`: every
/// other entry, header field and the order kept. Only directories and
/// regular files are expected (that is all an SBOM layer Cascade writes
/// holds); anything else is refused rather than carried blind.
fn replace_document(tar: &[u8], document: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = tar::Builder::new(Vec::new());
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let mut header = entry.header().clone();
        let kind = header.entry_type();
        let mut data = Vec::new();
        if kind.is_file() && is_document(&path) {
            data.extend_from_slice(document);
        } else if kind.is_file() || kind.is_dir() {
            entry.read_to_end(&mut data)?;
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: not a file or directory", path.display()),
            ));
        }
        header.set_size(data.len() as u64);
        out.append_data(&mut header, &path, data.as_slice())?;
    }
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            if name.ends_with('/') {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
            } else {
                h.set_mode(0o644);
            }
            h.set_uid(1000);
            h.set_mtime(315_532_801);
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn only_the_document_changes() {
        let layer_sbom: &[u8] = b"{\"components\":[]}";
        let old = tar_of(&[
            ("layers/sbom/", b""),
            ("layers/sbom/launch/", b""),
            ("layers/sbom/launch/a_b/deps/sbom.cdx.json", layer_sbom),
            ("layers/sbom/launch/sbom.cdx.json", b"{\"old\":1}"),
        ]);
        assert_eq!(read_document(&old).unwrap().unwrap()["old"], 1);
        let new = replace_document(&old, b"{\"new\":22}").unwrap();
        assert_eq!(read_document(&new).unwrap().unwrap()["new"], 22);
        let expected = tar_of(&[
            ("layers/sbom/", b""),
            ("layers/sbom/launch/", b""),
            ("layers/sbom/launch/a_b/deps/sbom.cdx.json", layer_sbom),
            ("layers/sbom/launch/sbom.cdx.json", b"{\"new\":22}"),
        ]);
        assert_eq!(new, expected, "headers, order and other entries are kept");
    }

    #[test]
    fn a_layer_with_links_is_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "layers/sbom/launch/sbom.cdx.json", "/etc/shadow")
            .unwrap();
        let tar = b.into_inner().unwrap();
        assert!(read_document(&tar).unwrap().is_none());
        assert!(replace_document(&tar, b"{}").is_err());
    }
}
