//! Fleet rebase — the patching waterfall: put every image built on a run
//! image onto its new version, concurrently, with no coordinator. Workers
//! split a fleet by `--shard I/N`: an image belongs to the shard its name
//! hashes to, so N independent processes (a Kubernetes Indexed Job, a CI
//! matrix) cover the fleet once, and a shard keeps its images as the fleet
//! grows.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;
use sha2::Digest as _;

use crate::labels;
use crate::oci::ImageRef;
use crate::oci::store::{Oci, StoreError, Transfers};
use crate::phase::Rebase;
use crate::report::{BuildImageRef, Reporter, RunImageRef};

mod audit;

pub use audit::{
    AuditEntry, AuditReport, AuditStatus, BuildAuditEntry, BuildAuditReport, BuildStatus, audit,
    audit_build,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Rebased,
    /// Would be rebased (`--dry-run`).
    WouldRebase,
    AlreadyCurrent,
    Refused,
    Failed,
}

impl Status {
    /// The kebab-case word the JSON uses too.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rebased => "rebased",
            Self::WouldRebase => "would-rebase",
            Self::AlreadyCurrent => "already-current",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub image: String,
    pub status: Status,
    pub old_digest: Option<String>,
    pub new_digest: Option<String>,
    /// The base the image sits on after the run (or would, dry).
    pub run_image: Option<RunImageRef>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub rebased: usize,
    pub would_rebase: usize,
    pub already_current: usize,
    pub refused: usize,
    pub failed: usize,
    pub seconds: f64,
    pub images_per_second: f64,
    pub transfers: Transfers,
}

#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    /// The run image asked for; its digest and top layer when every image
    /// that read it saw the same one (a tag that moved mid-run gives none:
    /// each entry says what it got).
    pub run_image: RunImageRef,
    pub shard: Option<String>,
    pub images: Vec<Entry>,
    pub summary: Summary,
}

/// Which of `n` shards an image belongs to: a hash of its repository path
/// (without the registry host, so a mirror splits the same; the directory
/// for a layout), so the split needs no shared list and no coordinator,
/// and every tag of one repository lands in one shard: the
/// images of a repository share blobs, and two processes writing one
/// repository at once can break each other's writes (see
/// `Registry::writing`).
pub fn shard_of(image: &ImageRef, n: u32) -> u32 {
    let repository = match image {
        ImageRef::Registry(r) => r.repository().to_owned(),
        ImageRef::Layout { dir, .. } => dir.display().to_string(),
        ImageRef::Scratch => "scratch".to_owned(),
    };
    let digest = sha2::Sha256::digest(repository.as_bytes());
    let head = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    u32::try_from(head % u64::from(n.max(1))).expect("below n")
}

/// Images in the registry of `run_image` whose CNB label names the run
/// image's repository: catalog, then tags, then each image's config.
pub fn discover(
    oci: &Oci,
    run_image: &ImageRef,
    reporter: &dyn Reporter,
) -> Result<Vec<ImageRef>, StoreError> {
    let ImageRef::Registry(run) = run_image else {
        return Ok(Vec::new());
    };
    let registry = oci
        .registry
        .as_deref()
        .ok_or_else(|| StoreError::NoClient { image: run.whole() })?;
    let wanted = crate::oci::registry::repository_key(run);
    let mut found = Vec::new();
    for repo in registry.catalog(run)? {
        if repo == run.repository() {
            continue;
        }
        let repo_ref =
            oci_client::Reference::with_tag(run.registry().into(), repo.clone(), "latest".into());
        for tag in registry.tags(&repo_ref)? {
            if crate::oci::referrers::is_referrers_tag(&tag) {
                continue;
            }
            let image = ImageRef::Registry(oci_client::Reference::with_tag(
                run.registry().into(),
                repo.clone(),
                tag,
            ));
            let Ok(read) = oci.read(&image, None) else {
                continue;
            };
            let lifecycle = labels::Lifecycle::of(&read.config).ok().flatten();
            let recorded = lifecycle
                .as_ref()
                .and_then(|l| l.run_image.as_ref())
                .map_or("", |r| r.image.as_str());
            if let Ok(ImageRef::Registry(r)) = ImageRef::parse(recorded)
                && crate::oci::registry::repository_key(&r) == wanted
            {
                found.push(image);
            }
        }
    }
    reporter.note(&format!(
        "discovered {} image(s) built on {wanted}",
        found.len()
    ));
    Ok(found)
}

pub struct Fleet<'a> {
    pub images: Vec<ImageRef>,
    pub run_image: &'a ImageRef,
    /// Images rebased at once.
    pub jobs: usize,
    /// `(i, n)`: only the images of shard `i` of `n`.
    pub shard: Option<(u32, u32)>,
    pub dry_run: bool,
    pub force: bool,
    pub allow_downgrade: bool,
    pub oci: &'a Oci,
    pub reporter: &'a dyn Reporter,
}

impl Fleet<'_> {
    pub fn run(&self) -> FleetReport {
        let started = Instant::now();
        let mut images: Vec<ImageRef> = self
            .images
            .iter()
            .filter(|i| self.shard.is_none_or(|(k, n)| shard_of(i, n) == k))
            .cloned()
            .collect();
        images.sort_by_key(ToString::to_string);
        images.dedup();
        // Resolved once for the whole run (and again by the next run of
        // `--watch`, whose tag moved).
        let run_images = crate::run_image::RunImages::default();
        let next = AtomicUsize::new(0);
        let entries: Mutex<Vec<(usize, Entry, Transfers)>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..self.jobs.clamp(1, images.len().max(1)) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(image) = images.get(i) else { break };
                        let (entry, t) = self.one(image, &run_images);
                        self.reporter
                            .note(&format!("{}: {}", entry.image, entry.status.as_str()));
                        entries.lock().unwrap().push((i, entry, t));
                    }
                });
            }
        });
        let mut entries = entries.into_inner().unwrap();
        entries.sort_by_key(|e| e.0);
        let mut summary = Summary::default();
        for (_, e, t) in &entries {
            match e.status {
                Status::Rebased => summary.rebased += 1,
                Status::WouldRebase => summary.would_rebase += 1,
                Status::AlreadyCurrent => summary.already_current += 1,
                Status::Refused => summary.refused += 1,
                Status::Failed => summary.failed += 1,
            }
            summary.transfers.add(t);
        }
        summary.seconds = started.elapsed().as_secs_f64();
        // A fleet count is far below f64's exact integer range.
        #[allow(clippy::cast_precision_loss)]
        let count = entries.len() as f64;
        summary.images_per_second = count / summary.seconds.max(1e-9);
        let mut seen = entries.iter().filter_map(|(_, e, _)| e.run_image.as_ref());
        let first = seen.next().cloned();
        let agreed = first.filter(|f| seen.all(|r| r == f));
        FleetReport {
            run_image: RunImageRef {
                reference: self.run_image.to_string(),
                digest: agreed.as_ref().and_then(|r| r.digest.clone()),
                top_layer: agreed.and_then(|r| r.top_layer),
            },
            shard: self.shard.map(|(i, n)| format!("{i}/{n}")),
            images: entries.into_iter().map(|(_, e, _)| e).collect(),
            summary,
        }
    }

    fn one(
        &self,
        image: &ImageRef,
        run_images: &crate::run_image::RunImages,
    ) -> (Entry, Transfers) {
        let name = image.to_string();
        let result = unless_it_panics(|| {
            Rebase {
                image,
                run_image: self.run_image,
                output: None,
                force: self.force,
                allow_downgrade: self.allow_downgrade,
                dry_run: self.dry_run,
                run_images,
                oci: self.oci,
                reporter: self.reporter,
            }
            .run()
        });
        let result = match result {
            Ok(result) => result,
            Err(reason) => {
                let entry = Entry {
                    image: name,
                    status: Status::Failed,
                    old_digest: None,
                    new_digest: None,
                    run_image: None,
                    reason: Some(reason),
                };
                return (entry, Transfers::default());
            }
        };
        match result {
            Ok(r) => {
                let status = match (r.changed, self.dry_run) {
                    (false, _) => Status::AlreadyCurrent,
                    (true, true) => Status::WouldRebase,
                    (true, false) => Status::Rebased,
                };
                let new = (!r.new_digest.is_empty()).then_some(r.new_digest);
                (
                    Entry {
                        image: name,
                        status,
                        old_digest: Some(r.old_digest),
                        new_digest: new,
                        run_image: Some(r.new_run_image),
                        reason: None,
                    },
                    r.transfers,
                )
            }
            Err(e) => {
                let status = if e.is_refusal() {
                    Status::Refused
                } else {
                    Status::Failed
                };
                (
                    Entry {
                        image: name,
                        status,
                        old_digest: None,
                        new_digest: None,
                        run_image: None,
                        reason: Some(e.to_string()),
                    },
                    Transfers::default(),
                )
            }
        }
    }
}

/// `work` for one image of a fleet, a panic in it made that image's
/// failure: a fleet run goes on past any one image, even one whose input
/// reached a bug (the panic's message is the reason; the default hook has
/// printed where).
pub(crate) fn unless_it_panics<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned());
        format!("internal error, a bug in cascade (please report it): {what}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_one_image_is_that_images_failure_with_its_message() {
        let reason = unless_it_panics(|| -> u32 { panic!("poisoned label at {}", 3) });
        assert!(reason.unwrap_err().contains("poisoned label at 3"));
        let reason = unless_it_panics(|| panic::<u32>("a &str payload"));
        assert!(reason.unwrap_err().contains("a &str payload"));
        assert_eq!(unless_it_panics(|| 7), Ok(7));
    }

    fn panic<T>(message: &'static str) -> T {
        std::panic::panic_any(message)
    }

    #[test]
    fn shards_partition_a_fleet_by_repository() {
        let image = |s: &str| ImageRef::parse(s).unwrap();
        let mut counts = [0usize; 4];
        for i in 0..1000 {
            let repository = image(&format!("reg.example/app-{i}:v1"));
            let shard = shard_of(&repository, 4);
            counts[shard as usize] += 1;
            let other_tag = image(&format!("reg.example/app-{i}:v2"));
            assert_eq!(shard_of(&other_tag, 4), shard, "a repository split");
        }
        assert_eq!(counts.iter().sum::<usize>(), 1000);
        assert!(counts.iter().all(|&c| c > 200), "uneven split {counts:?}");
        assert_eq!(shard_of(&image("reg.example/x:v1"), 1), 0);
    }
}
