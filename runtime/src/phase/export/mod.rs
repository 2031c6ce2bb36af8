//! Export: launch layers and the app become reproducible tar layers on top of
//! the run image's; the config gets the launch env, the default process as
//! Entrypoint and the CNB labels. Nothing moves a tag until every blob is in
//! place, so a failed export leaves the layout's images as they were.

use std::collections::BTreeMap;

mod sbom_layer;

use super::build::BuiltBuildpack;
use crate::api::EnvEntry;
use crate::api::{APP_DIR, Process};
use crate::env::{EnvPhase, layer_entries};
use crate::guest_tree::GuestTree;
use crate::ids::{BuildpackId, LayerName};
use crate::image_config::{self, AppPart};
use crate::labels::{self, LayerShas, RunImageLabel};
use crate::oci::compress::Compression;
use crate::oci::document::{self, Descriptor, History, ImageConfig};
use crate::oci::layer::{self, LayerBlob, LayerError, LayerSource, Owner, write_layer};
use crate::oci::{Digest, Layout, LayoutError, MEDIA_CONFIG};
use crate::report::{LayerReport, ProcessReport, Reporter};
use crate::run_image::RunImage;
use crate::sbom;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("output {0}")]
    Layout(#[from] LayoutError),
    #[error("writing a layer: {0}")]
    Layer(#[from] LayerError),
    #[error("serialising {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

pub struct Export<'a> {
    pub built: &'a [BuiltBuildpack],
    /// The app tree after build.
    pub app: &'a GuestTree,
    pub run_image: &'a RunImage,
    /// Where the new layers go (the output layout, or a staging layout
    /// before a push). Run-image layers and tags are the caller's business.
    pub store: &'a Layout,
    /// Seconds since the epoch for `created` (SOURCE_DATE_EPOCH).
    pub created: u64,
    pub owner: Owner,
    pub compression: Compression,
    /// The previous build's app layer: reused when the app's tar hashes to
    /// the same diff_id.
    pub previous_app: Option<&'a LayerBlob>,
    /// The app tree is stat-for-stat the one `previous_app` was made from
    /// (the stamps matched): take it without reading a byte.
    pub app_unchanged: bool,
    /// The previous build's SBOM layer, reused when its bytes are the same.
    pub previous_sbom: Option<&'a LayerBlob>,
    /// The run image's OS facts for the SBOM (`None`: not readable here).
    pub os: Option<&'a sbom::OsInfo>,
    /// Capability calls behind the image's layers, recorded in a label
    /// (see `capabilities::provenance`).
    pub capabilities: &'a [crate::capabilities::CapabilityUse],
    /// Buildpacks of the group that the app named, not the platform.
    pub app_named: &'a [String],
    /// The build image tools ran in, recorded in a label.
    pub build_image: Option<&'a crate::report::BuildImageRef>,
    pub reporter: &'a dyn Reporter,
}

/// What export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// Canonical config and manifest bytes, ready to store.
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    /// The new layers' digests (all present in the store).
    pub new_blobs: Vec<Digest>,
    /// Each launch layer's blob, by buildpack and layer.
    pub layer_blobs: Vec<(BuildpackId, LayerName, LayerBlob)>,
    pub app_blob: LayerBlob,
    /// The image SBOM (CycloneDX JSON), as stored in the SBOM layer.
    pub sbom: Vec<u8>,
    pub sbom_blob: LayerBlob,
    pub layers: Vec<LayerReport>,
    pub processes: Vec<ProcessReport>,
    pub default_process: Option<String>,
}

impl Exported {
    /// Set a label on the exported config (a fact measured on the whole
    /// image once its layers exist, as the stack contract is), and point the
    /// manifest at the new config.
    pub fn set_label(&mut self, key: &str, value: &str) {
        let mut config: ImageConfig =
            document::parse(&self.config, "config").expect("export wrote this config");
        config
            .run_config_mut()
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
        self.config = document::to_bytes(&config);
        let mut manifest: document::ImageManifest =
            document::parse(&self.manifest, "manifest").expect("export wrote this manifest");
        manifest.set_config(document::descriptor(
            MEDIA_CONFIG,
            &Digest::of(&self.config),
            self.config.len() as u64,
        ));
        self.manifest = document::to_bytes(&manifest);
    }
}

/// One layer to write: its report name and source (`None`: not a tree,
/// the SBOM layer that export writes itself).
struct Job<'a> {
    name: String,
    source: Option<LayerSource<'a>>,
    reuse: Reuse,
}

/// Whether a layer may come from the previous build.
enum Reuse {
    /// Write it.
    No,
    /// The buildpack kept the layer: take the blob, read nothing.
    Kept(LayerBlob),
    /// Take the blob if the tree hashes to its diff_id (the app).
    IfUnchanged(LayerBlob),
}

impl Export<'_> {
    pub fn run(&self) -> Result<Exported, ExportError> {
        let layout = self.store;

        // Launch layers in group order (by name within a buildpack), then the app.
        let mut jobs: Vec<Job> = Vec::new();
        let mut owners = Vec::new();
        for (i, bp) in self.built.iter().enumerate() {
            for l in bp.layers.iter().filter(|l| l.layer.types.launch) {
                jobs.push(Job {
                    name: format!("{}:{}", bp.runner.id(), l.layer.name),
                    source: l.tree.as_deref().map(|root| LayerSource {
                        root,
                        prefix: l.guest_path.trim_start_matches('/'),
                        bin_exec: true,
                    }),
                    reuse: l.reuse.clone().map_or(Reuse::No, Reuse::Kept),
                });
                owners.push((i, l.layer.name.to_string()));
            }
        }
        jobs.push(Job {
            name: "app".into(),
            source: Some(LayerSource {
                root: self.app,
                prefix: APP_DIR.trim_start_matches('/'),
                bin_exec: false,
            }),
            reuse: match self.previous_app.cloned() {
                Some(b) if self.app_unchanged => Reuse::Kept(b),
                Some(b) => Reuse::IfUnchanged(b),
                None => Reuse::No,
            },
        });
        let (mut blobs, mut reused) = self.write_layers(layout, &jobs)?;

        let layer_shas: Vec<(usize, String, String)> = owners
            .iter()
            .zip(&blobs)
            .map(|((i, name), b)| (*i, name.clone(), b.diff_id.to_string()))
            .collect();
        let app_blob = blobs
            .last()
            .expect("the app layer is always written")
            .clone();

        let (sbom, sbom_blob) = self.add_sbom(layout, &mut jobs, &mut blobs, &mut reused)?;

        let processes = merged_processes(self.built);
        let default = default_process(&processes);

        let shas = LayerShas {
            layers: &layer_shas,
            app: &app_blob.diff_id.to_string(),
            sbom: Some(&sbom_blob.diff_id.to_string()),
        };
        let config = self.config(&blobs, &jobs, &processes, default.as_ref(), &shas);
        let (config, manifest) = self.image_bytes(&config, &blobs);

        let layer_blobs = owners
            .iter()
            .zip(&blobs)
            .map(|((i, name), b)| {
                let bp = &self.built[*i];
                let name = LayerName::new(name.clone()).expect("a built layer's name is valid");
                (bp.runner.id().clone(), name, b.clone())
            })
            .collect();
        Ok(Exported {
            config,
            manifest,
            new_blobs: blobs.iter().map(|b| b.digest.clone()).collect(),
            layer_blobs,
            app_blob,
            sbom_blob,
            sbom,
            layers: jobs
                .iter()
                .zip(&blobs)
                .zip(&reused)
                .map(|((j, b), reused)| LayerReport {
                    name: j.name.clone(),
                    diff_id: b.diff_id.to_string(),
                    digest: b.digest.to_string(),
                    size: b.size,
                    reused: *reused,
                })
                .collect(),
            processes: processes
                .iter()
                .map(|(p, id)| ProcessReport {
                    kind: p.kind.to_string(),
                    command: p.command.clone(),
                    args: p.args.clone(),
                    buildpack_id: id.clone(),
                })
                .collect(),
            default_process: default.map(|p| p.kind.to_string()),
        })
    }

    /// Whether a previous build's blob can stand in this image: same
    /// compression, and still in the store with its size.
    fn usable(&self, layout: &Layout, b: &LayerBlob) -> bool {
        b.compression == self.compression
            && std::fs::metadata(layout.blob_path(&b.digest)).is_ok_and(|m| m.len() == b.size)
    }

    /// Canonical config and manifest bytes for the image.
    fn image_bytes(&self, config: &ImageConfig, blobs: &[LayerBlob]) -> (Vec<u8>, Vec<u8>) {
        let config_bytes = document::to_bytes(config);
        let mut layers: Vec<Descriptor> = self
            .run_image
            .layers
            .iter()
            .map(|l| document::descriptor(&l.media_type, &l.digest, l.size))
            .collect();
        layers.extend(
            blobs
                .iter()
                .map(|b| document::descriptor(b.compression.media_type(), &b.digest, b.size)),
        );
        let config_desc = document::descriptor(
            MEDIA_CONFIG,
            &Digest::of(&config_bytes),
            config_bytes.len() as u64,
        );
        let manifest = document::to_bytes(&document::manifest(config_desc, layers));
        (config_bytes, manifest)
    }

    /// Write the layers one after the other, or take the previous build's
    /// blob where that is allowed; each written layer is compressed on every
    /// core, and its bytes do not depend on how many there are. Returns the
    /// blobs and, for each, whether it was reused.
    fn write_layers(
        &self,
        layout: &Layout,
        jobs: &[Job<'_>],
    ) -> Result<(Vec<LayerBlob>, Vec<bool>), ExportError> {
        let blobs_dir = layout.blobs_dir();
        let usable = |b: &LayerBlob| self.usable(layout, b);
        let mut blobs = Vec::with_capacity(jobs.len());
        let mut reused = Vec::with_capacity(jobs.len());
        for job in jobs {
            let previous = match &job.reuse {
                Reuse::Kept(b) if usable(b) => Some(b.clone()),
                Reuse::IfUnchanged(b) if usable(b) && job.source.is_some() => {
                    let source = job.source.as_ref().expect("checked");
                    let now = layer::diff_id(source, self.owner)?;
                    (now == b.diff_id).then(|| b.clone())
                }
                _ => None,
            };
            if let Some(b) = previous {
                self.reporter
                    .note(&format!("reusing layer {} ({})", job.name, b.digest));
                blobs.push(b);
                reused.push(true);
                continue;
            }
            let Some(source) = &job.source else {
                return Err(ExportError::Layer(LayerError::Io {
                    path: job.name.clone().into(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!(
                            "layer {} was reused but its blob is gone and it has no files",
                            job.name
                        ),
                    ),
                }));
            };
            self.reporter.note(&format!("exporting layer {}", job.name));
            blobs.push(write_layer(
                source,
                &blobs_dir,
                self.owner,
                self.compression,
            )?);
            reused.push(false);
        }
        Ok((blobs, reused))
    }

    /// The image config: the run image's, with the app on it
    /// ([`image_config::set_on_base`], as a rebase does), the default
    /// process, and the labels.
    fn config(
        &self,
        blobs: &[LayerBlob],
        jobs: &[Job<'_>],
        processes: &[(Process, String)],
        default: Option<&Process>,
        shas: &LayerShas<'_>,
    ) -> ImageConfig {
        let created = rfc3339(self.created);
        let mut config = self.run_image.config.clone();
        config.created = Some(created.clone());
        // Of the run image's labels, the app image carries those a base
        // passes on (`set_on_base` adds them, as a rebase does): the others
        // (`org.opencontainers.image.version` of the OS, say) describe the
        // base, and a rebase could not tell them from the app's.
        config.run_config_mut().labels = None;
        let launch_env: Vec<EnvEntry> = self
            .built
            .iter()
            .flat_map(|bp| bp.layers.iter().filter(|l| l.layer.types.launch))
            .flat_map(|l| layer_entries(&l.layer, l.dirs, &l.guest_path, EnvPhase::Launch))
            .collect();
        let app = AppPart {
            diff_ids: blobs.iter().map(|b| b.diff_id.clone()).collect(),
            history: jobs
                .iter()
                .map(|j| History {
                    created: Some(created.clone()),
                    created_by: Some(format!("cascade: {}", j.name)),
                    ..History::default()
                })
                .collect(),
            launch_env: Some(launch_env),
        };
        image_config::set_on_base(&mut config, self.run_image, app, Some(&created));

        let run = config.run_config_mut();
        run.working_dir = Some(APP_DIR.to_owned());
        if let Some(p) = default {
            run.entrypoint = Some(p.command.clone());
            run.cmd = (!p.args.is_empty()).then(|| p.args.clone());
            if let Some(dir) = &p.working_dir {
                run.working_dir = Some(dir.clone());
            }
        }
        let labels = run.labels.get_or_insert_with(BTreeMap::new);
        self.labels(labels, processes, shas);
        config
    }

    /// The buildpacks' labels and the CNB and Cascade labels, over the run
    /// image's.
    fn labels(
        &self,
        labels: &mut BTreeMap<String, String>,
        processes: &[(Process, String)],
        shas: &LayerShas<'_>,
    ) {
        for bp in self.built {
            labels.extend(bp.labels.iter().cloned());
        }
        let top = self
            .run_image
            .top_layer()
            .map(ToString::to_string)
            .unwrap_or_default();
        let reference = self
            .run_image
            .manifest_digest
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let image = self.run_image.reference.to_string();
        let lifecycle = labels::lifecycle_metadata(
            self.built,
            shas,
            &RunImageLabel {
                top_layer: &top,
                reference: &reference,
                image: &image,
            },
        );
        labels.insert(labels::LIFECYCLE_METADATA.into(), labels::text(&lifecycle));
        let build = labels::build_metadata(self.built, processes);
        labels.insert(labels::BUILD_METADATA.into(), labels::text(&build));
        labels.insert(labels::PROJECT_METADATA.into(), "{}".into());
        if !self.capabilities.is_empty() {
            let uses: Vec<labels::CapabilityEntry<'_>> = self
                .capabilities
                .iter()
                .filter(|u| u.allowed)
                .map(|u| labels::CapabilityEntry {
                    buildpack: &u.buildpack,
                    capability: &u.capability,
                    detail: &u.detail,
                })
                .collect();
            labels.insert(labels::CAPABILITIES.into(), labels::text(&uses));
        }
        if let Some(b) = self.build_image {
            labels.insert(labels::BUILD_IMAGE.into(), labels::text(b));
        }
        if !self.app_named.is_empty() {
            labels.insert(labels::APP_BUILDPACKS.into(), labels::text(&self.app_named));
        }
    }
}

/// Processes by type, a later buildpack winning (CNB), sorted by type.
fn merged_processes(built: &[BuiltBuildpack]) -> Vec<(Process, String)> {
    let mut by_type: BTreeMap<String, (Process, String)> = BTreeMap::new();
    for bp in built {
        for p in &bp.processes {
            by_type.insert(p.kind.to_string(), (p.clone(), bp.runner.id().to_string()));
        }
    }
    by_type.into_values().collect()
}

/// The default process: a `web` process some buildpack marked default,
/// else the process marked default by the last buildpack that marked one,
/// else `web` when there is one. `web` wins among defaults because it is
/// the conventional default type (CNB's rule before `default` existed): a
/// Procfile of only `worker:` entries marks its first default as a guess,
/// which must not take the image from the site another buildpack serves.
fn default_process(processes: &[(Process, String)]) -> Option<Process> {
    let web = |p: &Process| p.kind.as_str() == "web";
    processes
        .iter()
        .rfind(|(p, _)| p.default && web(p))
        .or_else(|| processes.iter().rfind(|(p, _)| p.default))
        .or_else(|| processes.iter().find(|(p, _)| web(p)))
        .map(|(p, _)| p.clone())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (UTC).
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days.cast_signed() + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use crate::api::Process;
    use crate::ids::ProcessType;

    #[test]
    fn a_web_default_is_not_taken_by_a_later_guess() {
        let p = |kind: &str, default: bool| {
            (
                Process {
                    kind: ProcessType::new(kind).unwrap(),
                    command: vec![kind.into()],
                    args: Vec::new(),
                    default,
                    working_dir: None,
                },
                String::new(),
            )
        };
        let kind =
            |ps: &[(Process, String)]| super::default_process(ps).map(|p| p.kind.to_string());
        assert_eq!(
            kind(&[p("web", true), p("worker", true)]).as_deref(),
            Some("web")
        );
        assert_eq!(
            kind(&[p("web", false), p("worker", true)]).as_deref(),
            Some("worker")
        );
        assert_eq!(kind(&[p("a", true), p("b", true)]).as_deref(), Some("b"));
        assert_eq!(
            kind(&[p("a", false), p("web", false)]).as_deref(),
            Some("web")
        );
        assert_eq!(kind(&[p("a", false)]), None);
    }

    #[test]
    fn formats_the_normalised_epoch() {
        assert_eq!(
            super::rfc3339(crate::NORMALIZED_EPOCH),
            "1980-01-01T00:00:01Z"
        );
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
