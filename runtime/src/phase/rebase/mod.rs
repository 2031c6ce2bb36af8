//! Rebase: put an app image on a new run image without rebuilding — cut at
//! `runImage.topLayer`, put the new base's layers and history underneath,
//! keep every app layer byte for byte, rewrite config and manifest (CNB
//! lifecycle `phase/rebaser.go`). Only manifests and configs are read and
//! written, so the cost does not grow with the app.
//!
//! Validation is by target (os/arch) and repository, not by tag, so the
//! routine move from `run:1.0` to `run:1.1` needs no `--force` (unlike pack,
//! pack#2567).
//!
//! The image SBOM follows (see [`sbom`]): the SBOM layer is rewritten to
//! name the new base, and a published image gets a referrer for its new
//! digest.

mod sbom;
mod write;

use std::path::PathBuf;

use crate::image_config::{self, AppPart};
use crate::labels;
use crate::oci::document::{self, ImageConfig};
use crate::oci::store::{Oci, ReadImage, StoreError, Transfers};
use crate::oci::{Digest, ImageRef, Layout, MEDIA_CONFIG, MEDIA_MANIFEST};
use crate::report::{Reporter, RunImageRef};
use crate::run_image::{BaseAge, RunImage, RunImageError};

#[derive(Debug, thiserror::Error)]
pub enum RebaseError {
    #[error("{image}: {source}")]
    Store {
        image: String,
        #[source]
        source: StoreError,
    },
    #[error(transparent)]
    RunImage(#[from] RunImageError),
    #[error("{image}: scratch is not an app image")]
    Unsupported { image: String },
    #[error(
        "{image}: not built by Cascade or a CNB lifecycle (no io.buildpacks.lifecycle.metadata label), so its run-image layers are unknown"
    )]
    NotBuildpacks { image: String },
    #[error("{image}: invalid {what}: {message}")]
    Invalid {
        image: String,
        what: &'static str,
        message: String,
    },
    #[error(
        "{image}: is labelled io.buildpacks.rebasable=false; rebase with --force only if you know its layers do not depend on the old run image"
    )]
    NotRebasable { image: String },
    #[error("{image} is {old}, but run image {run_image} is {new}; refusing (--force overrides)")]
    Platform {
        image: String,
        run_image: String,
        old: String,
        new: String,
    },
    #[error(
        "{image} was built on {old}, a different repository than {new}; refusing (--force overrides; a new tag in the same repository needs no force)"
    )]
    Repository {
        image: String,
        old: String,
        new: String,
    },
    #[error(
        "{image}: run image {run_image} lacks what the app needs of its base (label dev.cascade.stack-contract): {missing}; refusing (--force overrides)"
    )]
    Contract {
        image: String,
        run_image: String,
        missing: String,
    },
    #[error(
        "{image}: run image {run_image} is older than the base the image sits on ({why}); refusing a downgrade (--allow-downgrade overrides)"
    )]
    Downgrade {
        image: String,
        run_image: String,
        why: String,
    },
}

impl RebaseError {
    /// Whether the image was refused for what it is (a policy said no), as
    /// opposed to failing to be read or written. Audit and fleet rebase
    /// share this, so both call an image the same thing.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::NotBuildpacks { .. }
                | Self::NotRebasable { .. }
                | Self::Platform { .. }
                | Self::Repository { .. }
                | Self::Downgrade { .. }
                | Self::Contract { .. }
        )
    }
}

/// What a rebase did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rebased {
    pub image: String,
    pub old_digest: String,
    pub new_digest: String,
    /// The base the image sat on, as its label says.
    pub old_run_image: RunImageRef,
    /// The base it sits on after (or would, with `--dry-run`).
    pub new_run_image: RunImageRef,
    /// Layers kept from the app image, untouched.
    pub app_layers: usize,
    /// False when the image already sat on this run image.
    pub changed: bool,
    /// Nothing was written: `new_digest` is what the rebase would make
    /// (builds and rebases are deterministic, so it is exact).
    pub dry_run: bool,
    /// What it cost: on a registry, HEADs and mounts, never an app layer.
    pub transfers: Transfers,
    /// The SBOM layer, rewritten to name the new base (`None`: the image
    /// has no SBOM Cascade wrote).
    pub sbom_layer: Option<String>,
    /// The new image's SBOM attached as a referrer (registry outputs).
    pub sbom_referrer: Option<crate::oci::referrers::Attached>,
}

/// What reading and checking found, before anything is computed.
struct Checked {
    app: ReadImage,
    lifecycle: labels::Lifecycle,
    base_count: usize,
    run: RunImage,
    result: Rebased,
    /// Already on the run image: nothing to do.
    current: bool,
}

/// What the rebased image is, before anything is written: the digest is
/// known here, so a dry run can tell it.
struct Planned {
    config: Vec<u8>,
    manifest: Vec<u8>,
    /// Blobs kept from the app image (its layers but a rewritten SBOM).
    kept: Vec<Digest>,
}

pub struct Rebase<'a> {
    pub image: &'a ImageRef,
    pub run_image: &'a ImageRef,
    /// Where to write; `None` moves the image's own tag.
    pub output: Option<&'a ImageRef>,
    pub force: bool,
    /// Rebase onto a base older than the image's own (see
    /// [`crate::run_image::BaseAge::older_than`]).
    pub allow_downgrade: bool,
    /// Work out everything, write nothing.
    pub dry_run: bool,
    /// Where the run image is resolved: shared by the rebases of one fleet.
    pub run_images: &'a crate::run_image::RunImages,
    pub oci: &'a Oci,
    pub reporter: &'a dyn Reporter,
}

impl Rebase<'_> {
    /// Whether the rebase would change the image (`false`: it is already on
    /// the run image), or why it would be refused or fail, from manifests
    /// and configs only. `cascade audit` classifies by this, so audit and
    /// rebase never disagree about an image.
    pub fn would_change(&self) -> Result<bool, RebaseError> {
        Ok(!self.check()?.current)
    }

    pub fn run(&self) -> Result<Rebased, RebaseError> {
        let Checked {
            app,
            lifecycle,
            base_count,
            run,
            mut result,
            current,
        } = self.check()?;
        if current {
            return Ok(result);
        }
        let new_top = run.top_layer().map(ToString::to_string).unwrap_or_default();
        let new_reference = result.new_run_image.digest.clone().unwrap_or_default();
        let mut t = Transfers::default();
        let sbom = self.new_sbom(&app, &run, base_count, &lifecycle, &mut t)?;
        let config = self.new_config(
            &app,
            &run,
            base_count,
            &lifecycle,
            (&new_top, &new_reference),
            sbom.as_ref(),
        )?;
        let planned = self.plan(&app, &run, &config, base_count, sbom.as_ref())?;
        result.changed = true;
        result.new_digest = Digest::of(&planned.manifest).to_string();
        result.sbom_layer = sbom.as_ref().map(|s| s.digest.to_string());
        if !self.dry_run {
            let out = self.output.unwrap_or(self.image);
            result.sbom_referrer = self.oci.writing(out, || {
                let digest = self.write(&app, &run, &planned, sbom.as_ref(), &mut t)?;
                debug_assert_eq!(digest.to_string(), result.new_digest);
                self.attach_sbom(&digest, &planned, sbom.as_ref())
            })?;
        }
        result.transfers = t;
        Ok(result)
    }

    /// Read the image and the run image and apply every check.
    fn check(&self) -> Result<Checked, RebaseError> {
        let name = self.image.to_string();
        let app = self.read_app_and_warm_run_image()?;
        let lifecycle = self.lifecycle(&app)?;
        let base_count = self.cut(&app, &lifecycle)?;
        let or = |s: &str, default: &str| {
            if s.is_empty() {
                default.to_owned()
            } else {
                s.to_owned()
            }
        };
        let os = or(&app.config.os, "linux");
        let arch = or(&app.config.architecture, "amd64");
        let run = self
            .run_images
            .load(self.run_image, (&os, &arch), self.oci)?;
        self.validate(&lifecycle, &app.config, &run, (&os, &arch))?;
        self.check_contract(&app, &run)?;
        let new_reference = run
            .manifest_digest
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let new_top = run.top_layer().map(ToString::to_string).unwrap_or_default();
        let old = lifecycle.run_image.clone().unwrap_or_default();
        let (old_reference, old_top) = (old.reference.clone(), old.top_layer.as_str());
        let app_layers = app.manifest.layers().len() - base_count;
        let current = self.output.is_none() && new_top == old_top && new_reference == old_reference;
        if current {
            self.reporter
                .note(&format!("{name} is already on {}", self.run_image));
        }
        let result = Rebased {
            image: self.output.unwrap_or(self.image).to_string(),
            old_digest: app.digest.to_string(),
            new_digest: app.digest.to_string(),
            old_run_image: RunImageRef {
                reference: old.image.clone(),
                digest: RunImageRef::non_empty(&old_reference),
                top_layer: RunImageRef::non_empty(old_top),
            },
            new_run_image: RunImageRef {
                reference: self.run_image.to_string(),
                digest: RunImageRef::non_empty(&new_reference),
                top_layer: RunImageRef::non_empty(&new_top),
            },
            app_layers,
            changed: false,
            dry_run: self.dry_run,
            transfers: Transfers::default(),
            sbom_layer: None,
            sbom_referrer: None,
        };
        Ok(Checked {
            app,
            lifecycle,
            base_count,
            run,
            result,
            current,
        })
    }

    /// A store failure while writing the output, which it names.
    fn store_err(&self) -> impl Fn(StoreError) -> RebaseError + Copy + '_ {
        let out = self.output.unwrap_or(self.image);
        move |source| RebaseError::Store {
            image: out.to_string(),
            source,
        }
    }

    fn invalid(&self, what: &'static str, message: &impl ToString) -> RebaseError {
        RebaseError::Invalid {
            image: self.image.to_string(),
            what,
            message: message.to_string(),
        }
    }

    /// The CNB lifecycle label, which says where the run image ends.
    fn lifecycle(&self, app: &ReadImage) -> Result<labels::Lifecycle, RebaseError> {
        let lifecycle = labels::Lifecycle::of(&app.config)
            .map_err(|e| self.invalid("lifecycle label", &e))?
            .ok_or_else(|| RebaseError::NotBuildpacks {
                image: self.image.to_string(),
            })?;
        if app.config.label(labels::REBASABLE) == Some("false") && !self.force {
            return Err(RebaseError::NotRebasable {
                image: self.image.to_string(),
            });
        }
        Ok(lifecycle)
    }

    /// How many of the image's layers are the old run image's: those up to
    /// and including `runImage.topLayer`.
    fn cut(&self, app: &ReadImage, lifecycle: &labels::Lifecycle) -> Result<usize, RebaseError> {
        let diff_ids = &app.config.rootfs.diff_ids;
        let layers = app.manifest.layers().len();
        if diff_ids.len() != layers {
            return Err(self.invalid(
                "image",
                &format!("{layers} layers but {} diff_ids", diff_ids.len()),
            ));
        }
        let top = lifecycle.top_layer();
        if top.is_empty() {
            return Ok(0);
        }
        diff_ids
            .iter()
            .position(|d| d.to_string() == top)
            .map(|i| i + 1)
            .ok_or_else(|| {
                self.invalid(
                    "lifecycle label",
                    &format!("runImage.topLayer {top} is not a layer of the image"),
                )
            })
    }

    /// No base older than the image's own, unless allowed: a patch moves
    /// forward, and a fleet job pointed at a stale tag must not roll a fleet
    /// back. Images built before the age was recorded cannot be told.
    fn check_age(&self, app: &ImageConfig, run: &RunImage) -> Result<(), RebaseError> {
        if self.allow_downgrade {
            return Ok(());
        }
        let Some(text) = app.label(labels::RUN_IMAGE) else {
            return Ok(());
        };
        let old: BaseAge =
            serde_json::from_str(text).map_err(|e| self.invalid("run image label", &e))?;
        match run.age().older_than(&old) {
            Some(why) => Err(RebaseError::Downgrade {
                image: self.image.to_string(),
                run_image: self.run_image.to_string(),
                why,
            }),
            None => Ok(()),
        }
    }

    /// The new base provides what the app needs of its base (its stack
    /// contract label), unless forced. The base's layers are read for it
    /// (pulled once into the blob cache, listed once per run).
    fn check_contract(&self, app: &ReadImage, run: &RunImage) -> Result<(), RebaseError> {
        let Some(text) = app
            .config
            .label(labels::STACK_CONTRACT)
            .filter(|_| !self.force)
        else {
            return Ok(());
        };
        let contract: crate::bloat::contract::Contract =
            serde_json::from_str(text).map_err(|e| self.invalid("stack contract label", &e))?;
        let files = self.run_images.files(run, self.oci)?;
        let missing = crate::bloat::contract::missing(&contract, &files, run.config.env());
        if missing.is_empty() {
            return Ok(());
        }
        Err(RebaseError::Contract {
            image: self.image.to_string(),
            run_image: self.run_image.to_string(),
            missing: missing.join(", "),
        })
    }

    /// Not older than the image's base (unless allowed); same os/arch and
    /// run-image repository (unless forced).
    fn validate(
        &self,
        lifecycle: &labels::Lifecycle,
        app: &ImageConfig,
        run: &RunImage,
        (os, arch): (&str, &str),
    ) -> Result<(), RebaseError> {
        if self.force {
            return self.check_age(app, run);
        }
        if (run.os(), run.arch()) != (os, arch) {
            return Err(RebaseError::Platform {
                image: self.image.to_string(),
                run_image: self.run_image.to_string(),
                old: format!("{os}/{arch}"),
                new: format!("{}/{}", run.os(), run.arch()),
            });
        }
        self.check_age(app, run)?;
        let recorded = lifecycle
            .run_image
            .as_ref()
            .map_or("", |r| r.image.as_str());
        if !recorded.is_empty() && repository(recorded) != repository(&self.run_image.to_string()) {
            return Err(RebaseError::Repository {
                image: self.image.to_string(),
                old: recorded.into(),
                new: self.run_image.to_string(),
            });
        }
        Ok(())
    }

    /// Config and manifest of the rebased image: the new base's layers,
    /// then the app's (the SBOM layer replaced when it was rewritten).
    fn plan(
        &self,
        app: &ReadImage,
        run: &RunImage,
        config: &ImageConfig,
        base_count: usize,
        sbom: Option<&sbom::NewSbom>,
    ) -> Result<Planned, RebaseError> {
        let mut app_layers = app.manifest.layers()[base_count..].to_vec();
        if let Some(s) = sbom {
            app_layers[s.index - base_count] =
                document::descriptor(&s.media_type, &s.digest, s.blob.len() as u64);
        }
        let kept = app_layers
            .iter()
            .enumerate()
            .filter(|(i, _)| sbom.is_none_or(|s| s.index - base_count != *i))
            .map(|(_, l)| {
                document::digest_of(l, "manifest").map_err(|e| self.invalid("manifest", &e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let config_bytes = document::to_bytes(config);
        let mut layers: Vec<document::Descriptor> = run
            .layers
            .iter()
            .map(|l| document::descriptor(&l.media_type, &l.digest, l.size))
            .collect();
        layers.extend(app_layers);
        let mut manifest = app.manifest.clone();
        manifest.set_media_type(Some(document::MediaType::ImageManifest));
        manifest.set_config(document::descriptor(
            MEDIA_CONFIG,
            &Digest::of(&config_bytes),
            config_bytes.len() as u64,
        ));
        manifest.set_layers(layers);
        Ok(Planned {
            config: config_bytes,
            manifest: document::to_bytes(&manifest),
            kept,
        })
    }

    /// [`Self::read_app`], while the run image is read ahead (see
    /// [`crate::run_image::RunImages::warm`]).
    fn read_app_and_warm_run_image(&self) -> Result<ReadImage, RebaseError> {
        if !matches!(self.run_image, ImageRef::Registry(_)) {
            return self.read_app();
        }
        std::thread::scope(|scope| {
            scope.spawn(|| self.run_images.warm(self.run_image, self.oci));
            self.read_app()
        })
    }

    fn read_app(&self) -> Result<ReadImage, RebaseError> {
        if *self.image == ImageRef::Scratch {
            return Err(RebaseError::Unsupported {
                image: self.image.to_string(),
            });
        }
        self.oci
            .read(self.image, None)
            .map_err(|source| RebaseError::Store {
                image: self.image.to_string(),
                source,
            })
    }

    /// The app's config on the new base ([`image_config::set_on_base`], as
    /// export does): the SBOM layer's diff_id replaced when it was
    /// rewritten, the lifecycle label pointed at the new base, everything
    /// else of the app's kept.
    fn new_config(
        &self,
        app: &ReadImage,
        run: &RunImage,
        base_count: usize,
        lifecycle: &labels::Lifecycle,
        (new_top, new_reference): (&str, &str),
        sbom: Option<&sbom::NewSbom>,
    ) -> Result<ImageConfig, RebaseError> {
        let launch_env = image_config::recorded_launch_env(&app.config)
            .map_err(|e| self.invalid("launch env label", &e))?;
        if launch_env.is_none() {
            self.reporter.note(&format!(
                "{}: no {} label; keeping its Env as it is",
                self.image,
                labels::LAUNCH_ENV
            ));
        }
        let mut part = AppPart::of(&app.config, base_count, launch_env);
        if let Some(s) = sbom {
            part.diff_ids[s.index - base_count] = s.diff_id.clone();
        }
        let mut config = app.config.clone();
        let created = app.config.created.clone();
        image_config::set_on_base(&mut config, run, part, created.as_deref());

        let mut document = lifecycle.document.clone();
        if let Some(s) = sbom {
            document["sbom"]["sha"] = s.diff_id.to_string().into();
        }
        let image = self.run_image.to_string();
        document["runImage"]["topLayer"] = new_top.into();
        document["runImage"]["reference"] = new_reference.into();
        document["runImage"]["image"] = image.clone().into();
        document["stack"] = serde_json::json!({"runImage": {"image": image}});
        config
            .run_config_mut()
            .labels
            .get_or_insert_with(Default::default)
            .insert(labels::LIFECYCLE_METADATA.into(), labels::text(&document));
        Ok(config)
    }
}

/// The repository part of a run-image reference: the layout directory for
/// `oci:DIR[:TAG]` (made absolute when it exists), the name for others.
fn repository(reference: &str) -> String {
    match ImageRef::parse(reference) {
        Ok(ImageRef::Layout { dir, .. }) => std::fs::canonicalize(&dir)
            .unwrap_or_else(|_| PathBuf::from(&dir))
            .display()
            .to_string(),
        Ok(ImageRef::Scratch) => "scratch".into(),
        Ok(ImageRef::Registry(r)) => crate::oci::registry::repository_key(&r),
        Err(_) => reference.into(),
    }
}

#[cfg(test)]
mod tests;
