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
        .filter(|_| provenance.iter().any(CapabilityUse::ran_a_tool));
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
        capabilities: &provenance,
        app_named: &app_named(req, &built),
        build_image,
        reporter,
    }
    .run()?;
    // No second stamp after export is needed to record this one: a stamp
    // counts only entries whose ctime precedes its probe, so any change
    // made after it (while export read the tree, say) moves a ctime past
    // the probe, and the next build's stamp cannot equal this one.
    let process_warnings = check_processes(req, oci, &store, &run_image, &exported, reporter)?;
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

/// The capability calls this build made (for the report), and those the
/// image records: these plus what its kept layers owe to earlier builds.
fn capability_calls(
    req: &BuildRequest,
    built: &[crate::phase::BuiltBuildpack],
    restored: &Restored,
) -> (Vec<CapabilityUse>, Vec<CapabilityUse>) {
    let uses = req
        .capabilities
        .as_ref()
        .map(|c| c.used())
        .unwrap_or_default();
    let group = built.iter().map(|b| {
        (
            b.runner.id().as_str(),
            b.layers.iter().any(|l| l.layer.reused),
        )
    });
    let provenance = crate::capabilities::provenance(group, &restored.capabilities, &uses);
    (uses, provenance)
}

/// The buildpacks of the group that the app named itself.
fn app_named(req: &BuildRequest, built: &[crate::phase::BuiltBuildpack]) -> Vec<String> {
    let Some(host) = &req.capabilities else {
        return Vec::new();
    };
    let grants = host.grants();
    built
        .iter()
        .map(|b| b.runner.id().to_string())
        .filter(|id| grants.is_app_named(id))
        .collect()
}

/// What `cascade build` tells the user and the platform.
fn report(
    req: &BuildRequest,
    run_image: &RunImage,
    detected: &Detected,
    exported: Exported,
    transfers: Transfers,
    digest: &Digest,
) -> BuildReport {
    BuildReport {
        digest: digest.to_string(),
        image: req.output.to_string(),
        transfers,
        run_image: RunImageRef {
            reference: req.run_image.to_string(),
            digest: run_image.manifest_digest.as_ref().map(ToString::to_string),
            top_layer: run_image.top_layer().map(ToString::to_string),
        },
        // Set by the caller, which knows whether a tool ran.
        build_image: None,
        group: detected
            .group
            .iter()
            .map(|c| GroupMemberReport {
                id: c.runner.id().to_string(),
                version: c.runner.manifest().buildpack.version.clone(),
                from_app: false,
            })
            .collect(),
        layers: exported.layers,
        processes: exported.processes,
        default_process: exported.default_process,
        sbom_referrer: None,
        capabilities: Vec::new(),
        warnings: Vec::new(),
        phases: Vec::new(),
        workspace: crate::workspace::SyncStats::default(),
    }
}

/// The run image's OS facts for the SBOM, from base layers that are on this
/// machine. Failing to read them costs the SBOM its package list, not the
/// build.
fn os_info(
    run_image: &RunImage,
    oci: &Oci,
    store: &Layout,
    reporter: &dyn Reporter,
) -> Option<crate::sbom::OsInfo> {
    let local = |d: &Digest| {
        let mut places = vec![oci.cache.blob_path(d), store.blob_path(d)];
        if let BlobHome::Layout(l) = &run_image.home {
            places.insert(0, l.blob_path(d));
        }
        places.into_iter().find(|p| p.is_file())
    };
    match crate::sbom::os::read(run_image, &local, &oci.cache_root) {
        Ok(Some(os)) => {
            if os.has_dpkg {
                reporter.note(&format!(
                    "run image OS: {} {} with {} dpkg packages",
                    os.id.as_deref().unwrap_or("unknown"),
                    os.version_id.as_deref().unwrap_or(""),
                    os.packages.len()
                ));
            }
            Some(os)
        }
        Ok(None) => {
            reporter.note("run image layers are not local: the SBOM lists no OS packages");
            None
        }
        Err(e) => {
            reporter.note(&format!(
                "reading the run image's OS packages failed ({e}): the SBOM lists none"
            ));
            None
        }
    }
}

fn open_cache(
    req: &BuildRequest,
    oci: &Oci,
    reporter: &dyn Reporter,
) -> Result<Option<ImageCache>, CacheError> {
    if !req.use_cache {
        return Ok(None);
    }
    let cache = ImageCache::open(&oci.cache_root, &cache_key(req), reporter)?;
    if req.clear_cache {
        cache.clear()?;
    }
    Ok(Some(cache))
}

/// What the build cache is keyed by: the output in canonical form (the
/// layout's absolute directory and tag, or the registry reference with its
/// registry and tag spelled out) or the platform's `--cache-key`, and the
/// exact buildpacks (by component digest). So a pull-request build and a
/// main build share no cache layer unless the platform asks, and a changed
/// buildpack starts from an empty cache instead of another one's layers.
fn cache_key(req: &BuildRequest) -> String {
    let output = match (&req.cache_key, &req.output) {
        (Some(key), _) => format!("key:{key}"),
        (None, ImageRef::Layout { dir, tag }) => {
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            format!(
                "oci:{}:{}",
                dir.display(),
                tag.as_deref().unwrap_or("latest")
            )
        }
        (None, ImageRef::Registry(r)) => r.whole(),
        (None, other) => other.to_string(),
    };
    let mut buildpacks: Vec<String> = req
        .buildpacks
        .iter()
        .map(|b| {
            let digest = b
                .component_digest()
                .map(ToString::to_string)
                .unwrap_or_default();
            format!("{}@{digest}", b.id())
        })
        .collect();
    buildpacks.sort();
    format!("{output}\n{}", buildpacks.join("\n"))
}

/// Warn (or with `--strict-processes` fail, before anything is stored)
/// when a process's program is not in the image; see [`process_check`].
fn check_processes(
    req: &BuildRequest,
    oci: &Oci,
    store: &Layout,
    run_image: &RunImage,
    exported: &Exported,
    reporter: &dyn Reporter,
) -> Result<Vec<String>, PipelineError> {
    let manifest: ImageManifest = document::parse(&exported.manifest, "manifest")
        .expect("export writes a manifest it reads back");
    let config: ImageConfig =
        document::parse(&exported.config, "config").expect("export writes a config it reads back");
    let blob = |d: &Digest| {
        let here = store.blob_path(d);
        if here.is_file() {
            return Some(here);
        }
        let mut t = Transfers::default();
        oci.local_blob(d, &run_image.home, false, &mut t)
            .ok()
            .flatten()
    };
    let problems = match process_check::check(&manifest, &config, &blob, &oci.cache_root) {
        Ok(process_check::Checked::Done(problems)) => problems,
        Ok(process_check::Checked::Skipped(why)) => {
            reporter.note(&format!("processes not checked: {why}"));
            return Ok(Vec::new());
        }
        Err(e) => {
            reporter.note(&format!("warning: processes not checked: {e}"));
            return Ok(Vec::new());
        }
    };
    let said: Vec<String> = problems
        .iter()
        .map(|p| {
            format!(
                "process {} cannot start: {} not in the image (run image {})",
                p.process,
                p.missing.join(", "),
                req.run_image
            )
        })
        .collect();
    if req.strict_processes && !said.is_empty() {
        return Err(PipelineError::Processes(said.join("\n")));
    }
    for w in &said {
        reporter.note(&format!("warning: {w}; pick a --run-image that has it"));
    }
    Ok(said)
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

/// What each member of the group was granted (see [`crate::phase::Standing`]).
fn standing(
    req: &BuildRequest,
    group: &[crate::phase::Chosen],
) -> std::collections::BTreeMap<String, crate::phase::Standing> {
    let Some(host) = &req.capabilities else {
        return std::collections::BTreeMap::new();
    };
    let grants = host.grants();
    group
        .iter()
        .map(|c| {
            let (id, declared) = (c.runner.id().as_str(), &c.runner.manifest().capabilities);
            let standing = crate::phase::Standing {
                app_named: grants.is_app_named(id),
                may_exec: grants.may_exec(id, declared),
                network: grants.network(id, declared),
            };
            (id.to_owned(), standing)
        })
        .collect()
}

/// What the build cache knows a build image by: its digest, or `host`.
fn build_image_key(b: &crate::report::BuildImageRef) -> String {
    match (&b.digest, b.hermetic) {
        (Some(digest), true) => digest.clone(),
        _ => "host".to_owned(),
    }
}

/// CNB's restore phase: the previous build's layers, offered back.
fn restore(
    cache: &ImageCache,
    layers_root: &Path,
    store: &Layout,
    build_image: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<Restored, CacheError> {
    let r = cache.restore(layers_root, store, build_image, reporter)?;
    let n: usize = r.layers.values().map(Vec::len).sum();
    reporter.note(&format!(
        "{n} layer(s) of the previous build offered back{}",
        if r.app.is_some() {
            ", app layer known"
        } else {
            ""
        }
    ));
    Ok(r)
}

/// Make every blob of the image present at the output — run-image layers
/// linked, mounted or left where they are, new layers linked or uploaded —
/// then store config and manifest and move the tag, last.
fn store_image(
    req: &BuildRequest,
    oci: &Oci,
    store: &Layout,
    run_image: &RunImage,
    exported: &Exported,
    reporter: &dyn Reporter,
) -> Result<(Transfers, Digest, Option<Attached>), StoreError> {
    let mut t = Transfers::default();
    if let ImageRef::Registry(target) = &req.output {
        reporter.note(&format!("publishing to {}", target.whole()));
        for l in &run_image.layers {
            oci.ensure_in_registry(target, &l.digest, &run_image.home, None, &mut t)?;
        }
        for d in &exported.new_blobs {
            oci.ensure_in_registry(target, d, &BlobHome::None, Some(store), &mut t)?;
        }
    } else {
        for l in &run_image.layers {
            oci.ensure_in_layout(store, &l.digest, &run_image.home, &mut t)?;
        }
        // Export wrote its new layers straight into the layout.
        for l in &exported.layers {
            if l.reused {
                t.present += 1;
            } else {
                t.written += 1;
            }
        }
    }
    let digest = oci.put_image(
        &req.output,
        &exported.config,
        &exported.manifest,
        (run_image.os(), run_image.arch()),
        &mut t,
    )?;
    let mut referrer = None;
    if let ImageRef::Registry(target) = &req.output {
        let client = oci
            .registry
            .as_deref()
            .ok_or_else(|| StoreError::NoClient {
                image: target.whole(),
            })?;
        let attached = crate::oci::referrers::attach(
            client,
            target,
            &digest,
            exported.manifest.len(),
            crate::sbom::MEDIA_CYCLONEDX,
            &exported.sbom,
        )?;
        reporter.note(&format!(
            "SBOM attached as referrer {} ({})",
            attached.digest, attached.via
        ));
        referrer = Some(attached);
    }
    reporter.note(&t.summary());
    Ok((t, digest, referrer))
}
