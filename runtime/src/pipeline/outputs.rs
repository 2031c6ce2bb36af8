//! What a build ends with: the run image's OS facts for the SBOM, the check
//! that each process can start, the image stored (tag last), the report.

#[allow(clippy::wildcard_imports)]
use super::*;

/// What `cascade build` tells the user and the platform.
pub(super) fn report(
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
pub(super) fn os_info(
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

/// Warn (or with `--strict-processes` fail, before anything is stored)
/// when a process's program is not in the image; see [`process_check`].
/// Warn when an ELF file of the app's layers needs a library nothing
/// provides, and record what the app needs of its run image (the stack
/// contract, [`crate::bloat::contract`]) in the image's config for a rebase
/// to check.
pub(super) fn check_processes(
    req: &BuildRequest,
    oci: &Oci,
    store: &Layout,
    run_image: &RunImage,
    exported: &mut Exported,
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
    let checked = process_check::check(
        &manifest,
        &config,
        run_image.layers.len(),
        &blob,
        &oci.cache_root,
    );
    let (problems, needs) = match checked {
        Ok(process_check::Checked::Done { problems, needs }) => (problems, needs),
        Ok(process_check::Checked::Skipped(why)) => {
            reporter.note(&format!(
                "processes and the stack contract not checked: {why}"
            ));
            return Ok(Vec::new());
        }
        Err(e) => {
            reporter.note(&format!("warning: processes not checked: {e}"));
            return Ok(Vec::new());
        }
    };
    let mut said: Vec<String> = problems
        .iter()
        .map(|p| {
            let mut line = format!(
                "process {} (`{}`) cannot start: {} in neither the run image ({}) nor a launch layer",
                p.process,
                p.command,
                p.missing.join(", "),
                req.run_image
            );
            for hint in p.hints() {
                line.push_str("; ");
                line.push_str(hint);
            }
            line
        })
        .collect();
    if req.strict_processes && !said.is_empty() {
        return Err(PipelineError::Processes(said.join("\n")));
    }
    for w in &said {
        reporter.note(&format!("warning: {w}; pick a --run-image that has it"));
    }
    for (soname, by) in &needs.unresolved {
        let w = format!(
            "{by} needs {soname}, which neither the run image ({}) nor a launch layer provides",
            req.run_image
        );
        reporter.note(&format!("warning: {w}"));
        said.push(w);
    }
    let contract = &needs.contract;
    if !contract.sonames.is_empty() || !contract.interpreters.is_empty() {
        exported.set_label(
            crate::labels::STACK_CONTRACT,
            &crate::labels::text(contract),
        );
        reporter.note(&format!(
            "stack contract: {} sonames, {} programs of the run image",
            contract.sonames.len(),
            contract.interpreters.len()
        ));
    }
    Ok(said)
}

/// Make every blob of the image present at the output — run-image layers
/// linked, mounted or left where they are, new layers linked or uploaded —
/// then store config and manifest and move the tag, last.
pub(super) fn store_image(
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
