//! Auditing a fleet: each image's status in rebase's own terms against a run
//! image, or against the build image its tools ran in.

#[allow(clippy::wildcard_imports)]
use super::*;

/// One image of an audit.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub image: String,
    pub digest: Option<String>,
    /// The run image the image says it was built (or last rebased) on.
    pub run_image: Option<RunImageRef>,
    pub status: AuditStatus,
    pub buildpacks: Vec<String>,
    pub reason: Option<String>,
}

/// Where an image stands, in the words `rebase` would use: `current` is
/// what rebase calls already-current, `stale` what it would rebase,
/// `refused` what it would refuse (the reason says why), `failed` an image
/// that could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditStatus {
    Current,
    Stale,
    Refused,
    Failed,
}

impl AuditStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Stale => "stale",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// The run image audited against.
    pub run_image: RunImageRef,
    pub images: Vec<AuditEntry>,
    pub current: usize,
    pub stale: usize,
    pub refused: usize,
    pub failed: usize,
}

/// Where each image of a fleet stands against the run image: each is
/// classified by the very checks `rebase` applies (a dry run that stops
/// before the SBOM and the new manifest), so an image audit calls stale is
/// one rebase would rebase. Reads manifests and configs only.
pub fn audit(
    oci: &Oci,
    images: &[ImageRef],
    run_image: &ImageRef,
    reporter: &dyn Reporter,
) -> Result<AuditReport, StoreError> {
    let target = oci.read(run_image, None)?;
    let current = RunImageRef {
        reference: run_image.to_string(),
        digest: Some(target.digest.to_string()),
        top_layer: target
            .config
            .rootfs
            .diff_ids
            .last()
            .map(ToString::to_string),
    };
    let run_images = crate::run_image::RunImages::default();
    let mut entries = Vec::new();
    for image in images {
        let name = image.to_string();
        let read = match oci.read(image, None) {
            Ok(read) => read,
            Err(e) => {
                entries.push(AuditEntry {
                    image: name,
                    digest: None,
                    run_image: None,
                    status: AuditStatus::Failed,
                    buildpacks: Vec::new(),
                    reason: Some(e.to_string()),
                });
                continue;
            }
        };
        let judged = unless_it_panics(|| {
            let i = crate::inspect::from_parts(&name, &read.digest, &read.manifest, &read.config);
            let verdict = Rebase {
                image,
                run_image,
                output: None,
                force: false,
                allow_downgrade: false,
                dry_run: true,
                run_images: &run_images,
                oci,
                reporter,
            }
            .would_change();
            (i, verdict)
        });
        let (i, verdict) = match judged {
            Ok(judged) => judged,
            Err(reason) => {
                entries.push(AuditEntry {
                    image: name,
                    digest: Some(read.digest.to_string()),
                    run_image: None,
                    status: AuditStatus::Failed,
                    buildpacks: Vec::new(),
                    reason: Some(reason),
                });
                continue;
            }
        };
        let (status, reason) = match verdict {
            Ok(false) => (AuditStatus::Current, None),
            Ok(true) => (AuditStatus::Stale, None),
            Err(e) if e.is_refusal() => (AuditStatus::Refused, Some(e.to_string())),
            Err(e) => (AuditStatus::Failed, Some(e.to_string())),
        };
        entries.push(AuditEntry {
            image: name,
            digest: Some(i.digest),
            run_image: i.run_image,
            status,
            buildpacks: i
                .buildpacks
                .iter()
                .map(|b| format!("{}@{}", b.id, b.version))
                .collect(),
            reason,
        });
    }
    let count = |s: AuditStatus| entries.iter().filter(|e| e.status == s).count();
    Ok(AuditReport {
        run_image: current,
        current: count(AuditStatus::Current),
        stale: count(AuditStatus::Stale),
        refused: count(AuditStatus::Refused),
        failed: count(AuditStatus::Failed),
        images: entries,
    })
}

/// Where an image stands against a build image (`audit --build-image`):
/// `current` when its tools ran in what the reference names now (for an
/// index, any platform's manifest of it), `stale` when they ran in another
/// digest of the same image (an older, unpatched one: rebuild it), `other`
/// when built on a different build image altogether, `host` when built on
/// the build host's own tools (`--build-image host`: what they were is not
/// known), `none` when the image records no build image (no tool ran, or
/// built before Cascade recorded one), `failed` when it could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildStatus {
    Current,
    Stale,
    Other,
    Host,
    None,
    Failed,
}

impl BuildStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Stale => "stale",
            Self::Other => "other",
            Self::Host => "host",
            Self::None => "none",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildAuditEntry {
    pub image: String,
    pub digest: Option<String>,
    /// The build image the image says it was built on.
    pub build_image: Option<BuildImageRef>,
    pub status: BuildStatus,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildAuditReport {
    /// The build image audited against, at its current digest.
    pub build_image: BuildImageRef,
    pub images: Vec<BuildAuditEntry>,
    pub current: usize,
    pub stale: usize,
    pub other: usize,
    pub host: usize,
    pub none: usize,
    pub failed: usize,
}

/// Where each image of a fleet stands against `build_image`: the build-side
/// half of the waterfall (which images to rebuild once the platform has
/// patched its compilers). Reads manifests and configs only.
pub fn audit_build(
    oci: &Oci,
    images: &[ImageRef],
    build_image: &ImageRef,
) -> Result<BuildAuditReport, StoreError> {
    let target = oci.read(build_image, None)?;
    // Every digest the reference names now: the index, and each platform's
    // manifest in it (an image records the one its build host ran).
    let now: Vec<String> = std::iter::once(&target.named)
        .chain(&target.platforms)
        .chain(std::iter::once(&target.digest))
        .map(ToString::to_string)
        .collect();
    let mut entries = Vec::new();
    for image in images {
        let name = image.to_string();
        let read = match oci.read(image, None) {
            Ok(read) => read,
            Err(e) => {
                entries.push(BuildAuditEntry {
                    image: name,
                    digest: None,
                    build_image: None,
                    status: BuildStatus::Failed,
                    reason: Some(e.to_string()),
                });
                continue;
            }
        };
        let i = crate::inspect::from_parts(&name, &read.digest, &read.manifest, &read.config);
        let status = match &i.build_image {
            None => BuildStatus::None,
            Some(b) if !b.hermetic => BuildStatus::Host,
            Some(b) if b.digest.as_ref().is_some_and(|d| now.contains(d)) => BuildStatus::Current,
            Some(b) if crate::build_image::same_image(&b.reference, build_image) => {
                BuildStatus::Stale
            }
            Some(_) => BuildStatus::Other,
        };
        entries.push(BuildAuditEntry {
            image: name,
            digest: Some(i.digest),
            build_image: i.build_image,
            status,
            reason: None,
        });
    }
    let count = |s: BuildStatus| entries.iter().filter(|e| e.status == s).count();
    Ok(BuildAuditReport {
        build_image: BuildImageRef {
            reference: build_image.to_string(),
            digest: Some(target.named.to_string()),
            hermetic: true,
        },
        current: count(BuildStatus::Current),
        stale: count(BuildStatus::Stale),
        other: count(BuildStatus::Other),
        host: count(BuildStatus::Host),
        none: count(BuildStatus::None),
        failed: count(BuildStatus::Failed),
        images: entries,
    })
}
