//! Writing a rebased image: to a layout, blobs linked or copied; to a
//! registry, nothing the replaced manifest names asked for again and the
//! rest at once, then the manifest, so the tag moves last; then the SBOM
//! attached to the new digest.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Rebase<'_> {
    /// Make the new base's layers, the app's layers and a rewritten SBOM
    /// layer present at the output (on a registry: mounts and two small
    /// uploads, at once), then store config and manifest and move the tag —
    /// last, so a failure leaves the old image.
    pub(super) fn write(
        &self,
        app: &ReadImage,
        run: &RunImage,
        planned: &Planned,
        sbom: Option<&sbom::NewSbom>,
        t: &mut Transfers,
    ) -> Result<Digest, RebaseError> {
        let out = self.output.unwrap_or(self.image);
        let wrap = self.store_err();
        match out {
            ImageRef::Registry(target) => {
                return self.write_to_registry(target, app, run, planned, sbom, t);
            }
            ImageRef::Layout { dir, .. } => {
                let layout = Layout::open_or_create(dir).map_err(|e| wrap(e.into()))?;
                for l in &run.layers {
                    self.oci
                        .ensure_in_layout(&layout, &l.digest, &run.home, t)
                        .map_err(wrap)?;
                }
                for d in &planned.kept {
                    self.oci
                        .ensure_in_layout(&layout, d, &app.home, t)
                        .map_err(wrap)?;
                }
                if let Some(s) = sbom {
                    if layout.blob_path(&s.digest).is_file() {
                        t.present += 1;
                    } else {
                        layout.write_blob(&s.blob).map_err(|e| wrap(e.into()))?;
                        t.written += 1;
                    }
                }
            }
            ImageRef::Scratch => {
                return Err(RebaseError::Unsupported {
                    image: out.to_string(),
                });
            }
        }
        self.oci
            .put_image(
                out,
                &planned.config,
                &planned.manifest,
                (run.os(), run.arch()),
                t,
            )
            .map_err(wrap)
    }

    /// [`Self::write`] to a registry: nothing the old manifest names is
    /// asked for again, the rest goes up at once, then the manifest.
    fn write_to_registry(
        &self,
        target: &oci_client::Reference,
        app: &ReadImage,
        run: &RunImage,
        planned: &Planned,
        sbom: Option<&sbom::NewSbom>,
        t: &mut Transfers,
    ) -> Result<Digest, RebaseError> {
        let wrap = self.store_err();
        let client = self.oci.registry.as_deref().ok_or_else(|| {
            wrap(StoreError::NoClient {
                image: target.whole(),
            })
        })?;
        // What the replaced manifest names is in its repository (a
        // registry keeps a manifest's blobs): asking again would be
        // a round trip per layer for nothing.
        let held = held_by(app, target);
        // The rest go up at once, none waiting on another: the new
        // base's layers (mounts), the SBOM layer and the config.
        // The manifest follows them, so the tag moves last.
        let uploaded = |result: Result<(), crate::oci::registry::RegistryError>| {
            result.map(|()| Transfers {
                uploaded: 1,
                ..Transfers::default()
            })
        };
        // Each blob once (a digest may repeat among the layers).
        let mut seen = std::collections::HashSet::new();
        let needed: Vec<(&Digest, &crate::oci::store::BlobHome)> = run
            .layers
            .iter()
            .map(|l| (&l.digest, &run.home))
            .chain(planned.kept.iter().map(|d| (d, &app.home)))
            .filter(|(d, _)| seen.insert(*d))
            .collect();
        let repository = crate::oci::registry::repository_key(target);
        let repository = &repository;
        let mut jobs: Vec<Box<dyn Fn() -> Result<Transfers, StoreError> + Sync + '_>> = Vec::new();
        for (digest, home) in needed {
            // Or given to this repository by an earlier image of the run.
            if held.contains(digest) || self.run_images.given(repository, digest) {
                t.present += 1;
                continue;
            }
            jobs.push(Box::new(move || {
                let mut t = Transfers::default();
                self.oci
                    .ensure_in_registry(target, digest, home, None, &mut t)?;
                self.run_images.record_given(repository, digest);
                Ok(t)
            }));
        }
        if let Some(s) = sbom {
            jobs.push(Box::new(move || {
                uploaded(client.push_blob_bytes(target, &s.digest, &s.blob))
                    .map_err(StoreError::from)
            }));
        }
        let config = &planned.config;
        jobs.push(Box::new(move || {
            uploaded(client.push_blob_bytes(target, &Digest::of(config), config))
                .map_err(StoreError::from)
        }));
        // The push token first, so the jobs do not each fetch one.
        client.ready_to_push(target);
        let done = all_at_once(&jobs);
        for result in done {
            t.add(&result.map_err(wrap)?);
        }
        client
            .push_manifest(target, &planned.manifest, MEDIA_MANIFEST)
            .map_err(|e| wrap(e.into()))?;
        Ok(Digest::of(&planned.manifest))
    }

    /// Attach the rewritten SBOM to the new digest, as build does for a
    /// published image: the referrer of the old digest describes the old
    /// image, which is still what that digest names.
    pub(super) fn attach_sbom(
        &self,
        digest: &Digest,
        planned: &Planned,
        sbom: Option<&sbom::NewSbom>,
    ) -> Result<Option<crate::oci::referrers::Attached>, RebaseError> {
        let out = self.output.unwrap_or(self.image);
        let (ImageRef::Registry(target), Some(s)) = (out, sbom) else {
            return Ok(None);
        };
        let wrap = self.store_err();
        let client = self.oci.registry.as_deref().ok_or_else(|| {
            wrap(StoreError::NoClient {
                image: target.whole(),
            })
        })?;
        let attached = crate::oci::referrers::attach(
            client,
            target,
            digest,
            planned.manifest.len(),
            crate::sbom::MEDIA_CYCLONEDX,
            &s.document,
        )
        .map_err(|e| wrap(e.into()))?;
        self.reporter.note(&format!(
            "SBOM attached to {digest} as referrer {} ({})",
            attached.digest, attached.via
        ));
        Ok(Some(attached))
    }
}

/// Run `jobs` on up to 8 threads at once; their results in order.
fn all_at_once<T: Send>(jobs: &[Box<dyn Fn() -> T + Sync + '_>]) -> Vec<T> {
    jobs.chunks(8)
        .flat_map(|chunk| {
            std::thread::scope(|scope| {
                let running: Vec<_> = chunk.iter().map(|job| scope.spawn(job)).collect();
                running
                    .into_iter()
                    .map(|r| r.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect::<Vec<_>>()
            })
        })
        .collect()
}

/// The blobs `target`'s repository is known to hold: those of the app's
/// manifest when that manifest lives there.
fn held_by(app: &ReadImage, target: &oci_client::Reference) -> std::collections::HashSet<Digest> {
    let crate::oci::store::BlobHome::Registry(home) = &app.home else {
        return std::collections::HashSet::new();
    };
    if home.resolve_registry() != target.resolve_registry()
        || home.repository() != target.repository()
    {
        return std::collections::HashSet::new();
    }
    app.manifest
        .layers()
        .iter()
        .chain(std::iter::once(app.manifest.config()))
        .filter_map(|d| document::digest_of(d, "manifest").ok())
        .collect()
}
