//! One build, end to end: check inputs, detect against the source tree,
//! build in a private copy of it, export to the output layout.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::api::{BuildpackRunner, DetectInput, Env, Target};
use crate::builder::GroupMember;
use crate::cache::{CacheError, ImageCache, Restored};
use crate::capabilities::CapabilityUse;
use crate::guest_tree::GuestTree;
use crate::oci::compress::Compression;
use crate::oci::document::{self, ImageConfig, ImageManifest};
use crate::oci::layer::Owner;
use crate::oci::referrers::Attached;
use crate::oci::store::{BlobHome, Oci, StoreError, Transfers};
use crate::oci::{Digest, ImageRef, Layout};
use crate::phase::{
    Build, BuildError, Detect, DetectError, Detected, Export, ExportError, Exported,
};
use crate::process_check;
use crate::project::Filter;
use crate::report::{BuildReport, GroupMemberReport, Reporter, RunImageRef};
use crate::run_image::{RunImage, RunImageError};

mod inputs;
mod outputs;

use inputs::{app_named, build_image_key, capability_calls, open_cache, restore, standing};
use outputs::{check_processes, os_info, report, store_image};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("app directory {path}: {message}")]
    AppDir { path: PathBuf, message: String },
    #[error("output {0}: only oci:DIR[:TAG] outputs are supported")]
    Output(String),
    #[error(transparent)]
    RunImage(#[from] RunImageError),
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("storing the image: {0}")]
    Store(#[from] StoreError),
    #[error("cannot publish to {output} (checked before building): {source}")]
    Publish {
        output: String,
        #[source]
        source: StoreError,
    },
    #[error(
        "{0}\n(--strict-processes: nothing was published; pick a --run-image that has what the processes need)"
    )]
    Processes(String),
    #[error("preparing the build workspace: {0}")]
    Workspace(#[source] std::io::Error),
    #[error(transparent)]
    Cache(#[from] CacheError),
}

pub struct BuildRequest {
    pub app_dir: PathBuf,
    pub output: ImageRef,
    pub run_image: ImageRef,
    pub buildpacks: Vec<Arc<dyn BuildpackRunner>>,
    pub order: Vec<Vec<GroupMember>>,
    pub platform_env: Env,
    /// Image `created`, seconds since the epoch.
    pub created: u64,
    /// The os/arch asked for (`--platform`): it picks from an image index,
    /// is the platform of `scratch`, and a run image that does not offer it
    /// is an error. `None`: linux/amd64 for `scratch` and indexes, and a
    /// single-platform run image's own.
    pub platform: Option<(String, String)>,
    /// Which files of the app take part (project.toml include/exclude).
    pub filter: Filter,
    pub compression: Compression,
    /// Use the build cache of the output image (restore before, save after).
    pub use_cache: bool,
    /// Empty that cache first.
    pub clear_cache: bool,
    /// Where buildpacks' capability calls are recorded (the engine's), so
    /// export can put them in the image and the report can list them.
    pub capabilities: Option<std::sync::Arc<crate::wasm::CapabilityHost>>,
    /// Bytes one buildpack's layers may hold (0: no bound).
    pub max_layers_bytes: u64,
    /// Share the build cache of every build with this key instead of keying
    /// it by the output (`--cache-key`).
    pub cache_key: Option<String>,
    /// A process whose program is not in the image fails the build
    /// (otherwise it is a warning).
    pub strict_processes: bool,
    /// The build image exec'd tools run in (its identity, recorded in the
    /// image), and its distro labels, checked against the run image's.
    pub build_image: Option<crate::report::BuildImageRef>,
    pub build_distro: Option<(String, String)>,
}

/// Build `req` into its output. A failed build into a layout that did not
/// exist leaves none behind: an empty layout is not an image.
pub fn build(
    req: &BuildRequest,
    oci: &Oci,
    reporter: &dyn Reporter,
) -> Result<BuildReport, PipelineError> {
    let new_layout = match &req.output {
        ImageRef::Layout { dir, .. } if std::fs::symlink_metadata(dir).is_err() => Some(dir),
        _ => None,
    };
    let result = phases(req, oci, reporter);
    if result.is_err()
        && let Some(dir) = new_layout
    {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

#[allow(clippy::too_many_lines)] // the phases in order, each a call
fn phases(
    req: &BuildRequest,
    oci: &Oci,
    reporter: &dyn Reporter,
) -> Result<BuildReport, PipelineError> {
    let app_err = |message: String| PipelineError::AppDir {
        path: req.app_dir.clone(),
        message,
    };
    let app = GuestTree::open_named(&req.app_dir).map_err(|e| {
        app_err(if e.kind() == std::io::ErrorKind::NotADirectory {
            "not a directory".into()
        } else {
            e.to_string()
        })
    })?;
    // New layers go straight into an output layout, or into the blob cache
    // to be pushed from there.
    let store = match &req.output {
        ImageRef::Layout { dir, .. } => Layout::open_or_create(dir).map_err(StoreError::from)?,
        ImageRef::Registry(_) => oci.cache.clone(),
        ImageRef::Scratch => return Err(PipelineError::Output(req.output.to_string())),
    };

    let mut clock = Clock::new(reporter);
    let mut warnings = Vec::new();
    clock.start("analyze");
    // A registry that cannot take the image fails the build now, not
    // after every buildpack ran.
    if let ImageRef::Registry(target) = &req.output {
        oci.check_reachable(target)
            .map_err(|source| PipelineError::Publish {
                output: req.output.to_string(),
                source,
            })?;
    }
    let (os, arch) = req
        .platform
        .as_ref()
        .map_or(("linux", "amd64"), |(o, a)| (o.as_str(), a.as_str()));
    let run_image = RunImage::load(&req.run_image, (os, arch), oci)?;
    if req.platform.is_some() && (run_image.os(), run_image.arch()) != (os, arch) {
        return Err(PipelineError::RunImage(RunImageError::Invalid {
            reference: req.run_image.to_string(),
            message: format!(
                "is {}/{}, and --platform asked for {os}/{arch}: pick a run image (or an image index) that offers {os}/{arch}",
                run_image.os(),
                run_image.arch()
            ),
        }));
    }
    reporter.note(&format!(
        "run image {} ({}/{}, {} layers)",
        req.run_image,
        run_image.os(),
        run_image.arch(),
        run_image.layers.len()
    ));
    if let Some(warning) = crate::build_image::distro_mismatch(
        req.build_distro.clone(),
        crate::build_image::distro(&run_image.config),
    ) {
        reporter.note(&format!("warning: {warning}"));
        warnings.push(warning);
    }
    let target = Target {
        arch_variant: run_image.config.variant.clone(),
        ..Target::new(run_image.os(), run_image.arch())
    };

    // The output image's build cache, locked until this build ends.
    let cache = open_cache(req, oci, reporter)?;

    // Detect and build both see the app as filtered by project.toml, in a
    // private copy: the user's tree is never written.
    let scratch = match &cache {
        Some(c) => c.work_dir()?,
        None => tempfile::Builder::new()
            .prefix("cascade-build-")
            .tempdir()
            .map_err(PipelineError::Workspace)?,
    };
    let (workspace, synced) = match &cache {
        Some(c) => c.sync_workspace(&app, &req.filter),
        None => crate::workspace::copy(&app, &scratch.path().join("workspace"), &req.filter),
    }
    .map_err(PipelineError::Workspace)?;
    reporter.note(&synced.summary());
    let workspace = Arc::new(workspace);
    let layers_root = scratch.path().join("layers");

    clock.start("detect");
    let input = DetectInput {
        app: workspace.clone(),
        platform_env: req.platform_env.clone(),
        target: target.clone(),
    };
    let detected = Detect {
        order: &req.order,
        buildpacks: &req.buildpacks,
        input: &input,
        reporter,
    }
    .run()?;

    std::fs::create_dir_all(&layers_root).map_err(PipelineError::Workspace)?;
    let restored = match &cache {
        Some(c) => {
            clock.start("restore");
            let build_image = req.build_image.as_ref().map(build_image_key);
            restore(c, &layers_root, &store, build_image.as_deref(), reporter)?
        }
        None => Restored::default(),
    };

    clock.start("build");
    let built = Build {
        group: &detected.group,
        app: &workspace,
        layers_root: &layers_root,
        platform_env: &req.platform_env,
        target: &target,
        restored: &restored.layers,
        max_layers_bytes: req.max_layers_bytes,
        standing: &standing(req, &detected.group),
        reporter,
    }
    .run()?;

    clock.start("export");
    // The app layer is recognised by a stat stamp of the tree (with a
    // cache only: without one there is nothing to compare it with).
    let app_stamp = match &cache {
        Some(_) => {
            crate::workspace::stamp(&workspace, scratch.path()).map_err(PipelineError::Workspace)?
        }
        None => None,
    };
    let app_unchanged = app_stamp.is_some() && app_stamp == restored.app_stamp;
    let os = os_info(&run_image, oci, &store, reporter);
    let (uses, provenance) = capability_calls(req, &built, &restored);
    // The build image is part of the image's story only when a tool ran in
    // it (now, or for a layer kept from a build on the same one).
    let build_image = req
        .build_image
        .as_ref()
        .filter(|_| provenance.image.iter().any(CapabilityUse::ran_a_tool));
    let exported = Export {
        built: &built,
        app: &workspace,
        run_image: &run_image,
        store: &store,
        created: req.created,
        owner: Owner::default(),
        compression: req.compression,
        previous_app: restored.app.as_ref(),
        app_unchanged,
        previous_sbom: restored.sbom.as_ref(),
        os: os.as_ref(),
        capabilities: &provenance.image,
        app_named: &app_named(req, &built),
        build_image,
        reporter,
    }
    .run()?;
    let mut exported = exported;
    // No second stamp after export is needed to record this one: a stamp
    // counts only entries whose ctime precedes its probe, so any change
    // made after it (while export read the tree, say) moves a ctime past
    // the probe, and the next build's stamp cannot equal this one.
    let process_warnings = check_processes(req, oci, &store, &run_image, &mut exported, reporter)?;
    let (transfers, digest, referrer) =
        store_image(req, oci, &store, &run_image, &exported, reporter)?;
    // The image is complete: a cache that cannot be saved (a full disk)
    // costs the next build time, not this one its result.
    if let Some(c) = &cache
        && let Err(e) = c.save(
            &store,
            &built,
            &exported,
            &provenance,
            build_image.map(build_image_key).as_deref(),
            app_stamp.as_deref(),
        )
    {
        reporter.note(&format!("warning: {e}; the next build starts cold"));
    }

    let mut report = report(req, &run_image, &detected, exported, transfers, &digest);
    report.build_image = build_image.cloned();
    report.workspace = synced;
    report.phases = clock.finish();
    report.sbom_referrer = referrer;
    report.capabilities = uses;
    if let Some(host) = &req.capabilities {
        report.warnings = host.warnings();
    }
    report.warnings.extend(process_warnings);
    report.warnings.extend(warnings);
    if let Some(host) = &req.capabilities {
        let grants = host.grants();
        for m in &mut report.group {
            m.from_app = grants.is_app_named(&m.id);
        }
    }
    Ok(report)
}

/// Each phase's own duration: told to the reporter as the phase ends, and
/// kept for the report.
struct Clock<'r> {
    reporter: &'r dyn Reporter,
    current: Option<(&'static str, std::time::Instant)>,
    done: Vec<crate::report::PhaseTime>,
}

impl<'r> Clock<'r> {
    fn new(reporter: &'r dyn Reporter) -> Self {
        Self {
            reporter,
            current: None,
            done: Vec::new(),
        }
    }

    fn start(&mut self, name: &'static str) {
        self.end();
        self.reporter.phase(name);
        self.current = Some((name, std::time::Instant::now()));
    }

    fn end(&mut self) {
        if let Some((name, started)) = self.current.take() {
            let seconds = started.elapsed().as_secs_f64();
            self.reporter.phase_done(name, seconds);
            self.done.push(crate::report::PhaseTime {
                name: name.to_owned(),
                seconds,
            });
        }
    }

    fn finish(mut self) -> Vec<crate::report::PhaseTime> {
        self.end();
        self.done
    }
}
