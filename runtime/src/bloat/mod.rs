//! `cascade bloat`: which of an image's run-image packages its processes
//! can reach ([`reach`], statically, from the layers' tar listings and ELF
//! facts: nothing is unpacked or run) and, with a trace ([`trace`]), which
//! they load; the vulnerability findings in packages never reached, and an
//! OpenVEX document for them ([`vex`]); the sonames and interpreters an app
//! needs from its base, recorded at build and checked at rebase
//! ([`contract`]).

pub mod contract;
pub mod packages;
pub mod reach;
pub mod trace;
pub mod usage;
pub mod vex;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::image_files::{self, Files};
use crate::inspect::Inspection;
use crate::labels;
use crate::oci::ImageRef;
use crate::oci::store::{Oci, ReadImage, StoreError, Transfers};
use packages::PackageDb;
use reach::{Reached, Start, Walk};

#[derive(Debug, thiserror::Error)]
pub enum BloatError {
    #[error("{image}: {source}")]
    Store {
        image: String,
        #[source]
        source: StoreError,
    },
    #[error("{image}: {message}")]
    Invalid { image: String, message: String },
    #[error("{image}: reading layer {layer}: {source}")]
    Layer {
        image: String,
        layer: String,
        #[source]
        source: std::io::Error,
    },
}

/// An image read for analysis: its filesystem (all layers) and its base's
/// (the run image's layers, up to `runImage.topLayer`), from listings
/// cached by diff_id.
pub struct Analysed {
    pub inspection: Inspection,
    pub env: Vec<String>,
    pub working_dir: String,
    /// Every layer applied.
    pub files: Files,
    /// The run image's layers only.
    pub base: Files,
    pub db: PackageDb,
    pub reached: Reached,
}

/// Read `image` (a layout or registry image; registry layers are pulled
/// into the blob cache) and walk what its processes reach.
pub fn analyse(image: &ImageRef, oci: &Oci) -> Result<Analysed, BloatError> {
    let name = image.to_string();
    let read = oci.read(image, None).map_err(|source| BloatError::Store {
        image: name.clone(),
        source,
    })?;
    analyse_read(&name, &read, oci)
}

/// [`analyse`] of an image already read.
pub fn analyse_read(name: &str, read: &ReadImage, oci: &Oci) -> Result<Analysed, BloatError> {
    let invalid = |message: String| BloatError::Invalid {
        image: name.to_owned(),
        message,
    };
    let inspection = crate::inspect::from_parts(name, &read.digest, &read.manifest, &read.config);
    let layers = read.layers().map_err(|e| invalid(e.to_string()))?;
    let diff_ids = &read.config.rootfs.diff_ids;
    if layers.len() != diff_ids.len() {
        return Err(invalid(format!(
            "{} layers but {} diff_ids",
            layers.len(),
            diff_ids.len()
        )));
    }
    let lifecycle = labels::Lifecycle::of(&read.config).ok().flatten();
    let top = lifecycle.as_ref().map_or("", labels::Lifecycle::top_layer);
    // An image not built with buildpacks is all base.
    let base_count = diff_ids
        .iter()
        .position(|d| d.to_string() == top)
        .map_or(diff_ids.len(), |i| i + 1);
    let mut files = Files::default();
    let mut base = Files::default();
    let mut t = Transfers::default();
    for (i, ((digest, desc), diff_id)) in layers.iter().zip(diff_ids).enumerate() {
        let layer_err = |source| BloatError::Layer {
            image: name.to_owned(),
            layer: digest.to_string(),
            source,
        };
        let path = oci
            .local_blob(digest, &read.home, true, &mut t)
            .map_err(|source| BloatError::Store {
                image: name.to_owned(),
                source,
            })?
            .ok_or_else(|| layer_err(std::io::Error::other("not on this machine")))?;
        let media = crate::oci::document::media_type_of(desc);
        let listing = image_files::list_cached(&path, &media, (digest, diff_id), &oci.cache_root)
            .map_err(layer_err)?;
        if i < base_count {
            base.apply(&listing);
        }
        files.apply(&listing);
    }
    let db = PackageDb::read(&base);
    let env = inspection.env.clone();
    let working_dir = read.config.working_dir().to_owned();
    let mut walk = Walk::new(&files, &env);
    let starts = starts(&inspection, &read.config, &working_dir);
    for start in &starts {
        walk.start(start);
    }
    // The app's own native code (extension modules, a launch layer's
    // libraries) loads base libraries too, whichever process loads it.
    load_app_objects(&mut walk, &files, &base);
    let mut reached = walk.reached;
    if starts.is_empty() {
        reached.incomplete.push(
            "the image names no process (no build label processes, no Entrypoint or Cmd)".into(),
        );
    }
    Ok(Analysed {
        inspection,
        env,
        working_dir,
        files,
        base,
        db,
        reached,
    })
}

/// What the image starts: every process its build label lists, and its
/// Entrypoint and Cmd.
pub(crate) fn starts(
    inspection: &Inspection,
    config: &crate::oci::document::ImageConfig,
    working_dir: &str,
) -> Vec<Start> {
    let mut out: Vec<Start> = inspection
        .processes
        .iter()
        .map(|p| Start {
            process: p.kind.clone(),
            argv: p.command.iter().chain(&p.args).cloned().collect(),
            working_dir: p
                .working_dir
                .clone()
                .unwrap_or_else(|| working_dir.to_owned()),
        })
        .collect();
    let argv = config.command();
    if !argv.is_empty() && !out.iter().any(|s| s.argv == argv) {
        out.push(Start {
            process: "entrypoint".into(),
            argv,
            working_dir: working_dir.to_owned(),
        });
    }
    out
}

/// One run-image package in the report.
#[derive(Debug, Clone, Serialize)]
pub struct PackageUse {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub installed_size: Option<u64>,
    pub reachable: bool,
    /// Whether a trace saw it loaded (absent without `--trace`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded: Option<bool>,
    /// Its files that the processes reach (or loaded), with why.
    pub via: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub packages: usize,
    pub reachable: usize,
    pub never_reachable: usize,
    /// Share of the packages never reached (0 to 1).
    pub never_reachable_share: f64,
    pub installed_bytes: u64,
    pub never_reachable_bytes: u64,
    pub never_reachable_bytes_share: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub never_loaded: Option<usize>,
}

/// What `cascade bloat` tells.
#[derive(Debug, Clone, Serialize)]
pub struct BloatReport {
    pub image: String,
    pub digest: String,
    /// `dpkg`, `status-d` or `none`.
    pub package_database: packages::Source,
    pub packages: Vec<PackageUse>,
    pub summary: Summary,
    /// Programs a process names that the image lacks.
    pub missing_programs: Vec<String>,
    /// Libraries needed and found nowhere in the image.
    pub missing_libraries: Vec<String>,
    /// Reached files of the run image that no package owns (all of them,
    /// when the image has no package database).
    pub unowned: Vec<String>,
    /// Why a package reported unreached may still be used (a shell
    /// script's commands, an unreadable ELF file, no process, a walk cut
    /// short). While any is said, `--vex` states nothing.
    pub incomplete: Vec<String>,
    /// What a `--trace` saw loaded, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<trace::TraceSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vulnerabilities: Option<vex::Split>,
}

/// The report of `a`; `loaded` are the paths a trace saw opened.
pub fn report(a: &Analysed, loaded: Option<&trace::Loaded>) -> BloatReport {
    let mut via: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let mut unowned = BTreeSet::new();
    for (path, why) in &a.reached.paths {
        let owners = a.db.owners(path);
        for &i in owners {
            via.entry(i).or_default().insert(format!("{path} ({why})"));
        }
        if owners.is_empty() && in_base(a, path) {
            unowned.insert(path.clone());
        }
    }
    let loaded_owners: Option<BTreeMap<usize, BTreeSet<String>>> = loaded.map(|l| {
        let mut by: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
        for path in &l.paths {
            for at in [a.files.parent_resolved(path), resolved(&a.files, path)] {
                for &i in a.db.owners(&at) {
                    by.entry(i).or_default().insert(at.clone());
                }
            }
        }
        by
    });
    let packages: Vec<PackageUse> =
        a.db.packages
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut files: Vec<String> = via.get(&i).into_iter().flatten().cloned().collect();
                if files.is_empty()
                    && let Some(seen) = loaded_owners.as_ref().and_then(|l| l.get(&i))
                {
                    files = seen.iter().map(|p| format!("{p} (loaded)")).collect();
                }
                PackageUse {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    arch: p.arch.clone(),
                    installed_size: p.installed_size,
                    reachable: via.contains_key(&i),
                    loaded: loaded_owners.as_ref().map(|l| l.contains_key(&i)),
                    via: files,
                }
            })
            .collect();
    BloatReport {
        image: a.inspection.image.clone(),
        digest: a.inspection.digest.clone(),
        package_database: a.db.source,
        summary: summary(&packages),
        packages,
        missing_programs: a
            .reached
            .missing_programs
            .iter()
            .map(|(p, process)| format!("{p} (process {process})"))
            .collect(),
        missing_libraries: a
            .reached
            .missing
            .iter()
            .map(|(soname, by)| format!("{soname} (needed by {by})"))
            .collect(),
        unowned: unowned.into_iter().collect(),
        incomplete: a
            .reached
            .incomplete
            .iter()
            .cloned()
            .chain(
                a.reached.missing_programs.iter().map(|(p, process)| {
                    format!("process {process} runs {p}, which the image lacks")
                }),
            )
            .collect(),
        trace: loaded.map(trace::Loaded::summary),
        vulnerabilities: None,
    }
}

/// Whether `path` is a file of the run image (not one an app layer put
/// over it).
fn in_base(a: &Analysed, path: &str) -> bool {
    from_base(&a.files, &a.base, path)
}

/// Whether `path` of the image `files` is the file its base `base` holds
/// there (not one an app layer added or put over it).
pub(crate) fn from_base(files: &Files, base: &Files, path: &str) -> bool {
    match (base.resolve(path), files.resolve(path)) {
        (Some((a, ka)), Some((b, kb))) => a == b && ka == kb,
        _ => false,
    }
}

/// Walk every ELF file of the app's own layers, as if loaded.
pub(crate) fn load_app_objects(walk: &mut Walk<'_>, files: &Files, base: &Files) {
    let objects: Vec<String> = files
        .entries()
        .filter(|(_, k)| {
            matches!(k, image_files::Kind::File { facts: Some(f), .. }
                if matches!(f.as_ref(), image_files::Facts::Elf(_)))
        })
        .map(|(p, _)| format!("/{p}"))
        .filter(|p| !from_base(files, base, p))
        .collect();
    for path in objects {
        walk.load(&path, reach::Why::AppObject);
    }
}

fn resolved(files: &Files, path: &str) -> String {
    files
        .resolve(path)
        .map_or_else(|| path.to_owned(), |(p, _)| p)
}

#[allow(clippy::cast_precision_loss)] // shares of counts and byte sizes
fn summary(packages: &[PackageUse]) -> Summary {
    let share = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            (part as f64 / whole as f64 * 1000.0).round() / 1000.0
        }
    };
    let never: Vec<&PackageUse> = packages.iter().filter(|p| !p.reachable).collect();
    let bytes = |ps: &mut dyn Iterator<Item = &PackageUse>| {
        ps.map(|p| p.installed_size.unwrap_or(0))
            .fold(0u64, u64::saturating_add)
    };
    let installed_bytes = bytes(&mut packages.iter());
    let never_reachable_bytes = bytes(&mut never.iter().copied());
    let traced = packages.iter().any(|p| p.loaded.is_some());
    let loaded = packages.iter().filter(|p| p.loaded == Some(true)).count();
    Summary {
        packages: packages.len(),
        reachable: packages.len() - never.len(),
        never_reachable: never.len(),
        never_reachable_share: share(never.len() as u64, packages.len() as u64),
        installed_bytes,
        never_reachable_bytes,
        never_reachable_bytes_share: share(never_reachable_bytes, installed_bytes),
        loaded: traced.then_some(loaded),
        never_loaded: traced.then_some(packages.len() - loaded),
    }
}
