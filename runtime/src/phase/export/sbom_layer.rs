//! The SBOM layer of an export: the image's CycloneDX document and the
//! buildpacks' own layer SBOMs under `/layers/sbom/launch/`, written after
//! the layers it describes and placed just below the app layer.

use std::path::Path;

use super::{Export, ExportError, Job, Reuse};
use crate::api::APP_DIR;
use crate::guest_tree::GuestTree;
use crate::oci::layer::{self, LayerBlob, LayerError, LayerSource, write_layer};
use crate::oci::{Layout, canonical};
use crate::sbom;

impl Export<'_> {
    /// Write the SBOM layer and put it in the image's layer lists. The SBOM
    /// describes the layers above, so it is written last, but it sits below
    /// the app layer, which stays the image's top layer.
    pub(super) fn add_sbom(
        &self,
        layout: &Layout,
        jobs: &mut Vec<Job<'_>>,
        blobs: &mut Vec<LayerBlob>,
        reused: &mut Vec<bool>,
    ) -> Result<(Vec<u8>, LayerBlob), ExportError> {
        let (sbom, sbom_blob, sbom_reused) = self.write_sbom(layout, jobs, blobs)?;
        let at = jobs.len() - 1;
        jobs.insert(
            at,
            Job {
                name: "sbom".into(),
                source: None,
                reuse: Reuse::No,
            },
        );
        blobs.insert(at, sbom_blob.clone());
        reused.insert(at, sbom_reused);
        Ok((sbom, sbom_blob))
    }

    /// The image SBOM and the layer holding it with the buildpacks' layer
    /// SBOMs (`/layers/sbom/launch/...`, CNB's place), written to `layout`.
    /// `jobs` and `blobs` are the launch layers then the app, in order.
    fn write_sbom(
        &self,
        layout: &Layout,
        jobs: &[Job<'_>],
        blobs: &[LayerBlob],
    ) -> Result<(Vec<u8>, LayerBlob, bool), ExportError> {
        let dir = tempfile::tempdir().map_err(|e| io_error(Path::new("sbom"), e))?;
        let launch = dir.path().join("launch");
        let mut layers = Vec::new();
        let mut blob_iter = blobs.iter();
        for bp in self.built {
            for l in bp.layers.iter().filter(|l| l.layer.types.launch) {
                let blob = blob_iter.next().expect("one blob per launch layer");
                let sbom = match &l.layer.sbom {
                    Some(text) => {
                        let file = launch
                            .join(bp.runner.id().escaped())
                            .join(l.layer.name.as_str())
                            .join("sbom.cdx.json");
                        write_file(&file, text.as_bytes())?;
                        serde_json::from_str(text).ok()
                    }
                    None => None,
                };
                layers.push(sbom::LayerEntry {
                    owner: bp.runner.id().to_string(),
                    name: l.layer.name.to_string(),
                    path: l.guest_path.clone(),
                    diff_id: blob.diff_id.clone(),
                    sbom,
                });
            }
        }
        let app = blobs.last().expect("the app layer is always written");
        layers.push(sbom::LayerEntry {
            owner: "app".into(),
            name: "app".into(),
            path: APP_DIR.into(),
            diff_id: app.diff_id.clone(),
            sbom: None,
        });
        debug_assert_eq!(layers.len(), jobs.len());
        let buildpacks: Vec<sbom::BuildpackEntry> = self
            .built
            .iter()
            .map(|bp| sbom::BuildpackEntry {
                id: bp.runner.id().to_string(),
                version: bp.runner.manifest().buildpack.version.clone(),
                digest: bp.runner.component_digest().cloned(),
            })
            .collect();
        let run = sbom::RunImageEntry {
            reference: self.run_image.reference.to_string(),
            digest: self.run_image.manifest_digest.clone(),
            top_layer: self.run_image.top_layer().cloned(),
            os: self.os.cloned(),
        };
        let doc = sbom::image_sbom(&buildpacks, &layers, &run);
        let bytes = canonical::to_vec(&doc).map_err(|source| ExportError::Json {
            what: "SBOM",
            source,
        })?;
        write_file(&launch.join("sbom.cdx.json"), &bytes)?;
        let root = GuestTree::open(dir.path()).map_err(|e| io_error(dir.path(), e))?;
        let source = LayerSource {
            root: &root,
            prefix: "layers/sbom",
            bin_exec: false,
        };
        if let Some(prev) = self.previous_sbom.filter(|b| self.usable(layout, b))
            && layer::diff_id(&source, self.owner)? == prev.diff_id
        {
            self.reporter
                .note(&format!("reusing layer sbom ({})", prev.digest));
            return Ok((bytes, prev.clone(), true));
        }
        self.reporter.note("exporting layer sbom");
        let blob = write_layer(&source, &layout.blobs_dir(), self.owner, self.compression)?;
        Ok((bytes, blob, false))
    }
}

fn io_error(path: &Path, source: std::io::Error) -> ExportError {
    ExportError::Layer(LayerError::Io {
        path: path.into(),
        source,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let parent = path.parent().expect("a file under a dir");
    std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
    std::fs::write(path, bytes).map_err(|e| io_error(path, e))
}
