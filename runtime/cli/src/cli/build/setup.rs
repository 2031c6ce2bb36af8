//! The build image a build's tools run in, and the platform env buildpacks
//! get: flags, builder.toml and project.toml in their order of precedence.

#[allow(clippy::wildcard_imports)]
use super::*;

/// `K=V` pairs of the option `flag`.
pub(super) fn parse_env(flag: &str, pairs: &[String]) -> anyhow::Result<Env> {
    pairs
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(InvalidInput(format!("{flag} {kv:?}: expected K=V")).into()),
        })
        .collect()
}

/// What the ca-certs buildpack reads the build's CA certificates from.
pub(super) const BUILD_CA_VAR: &str = "BP_BUILD_CA_CERTIFICATES";

/// The platform's variables for buildpacks. Precedence: builder
/// [[build.env]] < project.toml build env < --env; `--ca-certificates`
/// files are added to `BP_BUILD_CA_CERTIFICATES`.
pub(super) fn platform_env(
    args: &BuildArgs,
    builder: Option<&Builder>,
    project: &Project,
) -> anyhow::Result<Env> {
    let mut platform_env = Env::new();
    if let Some(b) = builder {
        platform_env.extend(b.build_env.iter().cloned());
    }
    // The build's trust roots are the platform's to give: an app that set
    // them would choose which CAs every tool of the build trusts.
    if project.env.iter().any(|(k, _)| k == BUILD_CA_VAR) {
        return Err(InvalidInput(format!(
            "project.toml: [[io.buildpacks.build.env]] {BUILD_CA_VAR}: only the platform sets the build's CA certificates (cascade build --ca-certificates FILE); an app's own go in ca-certs/"
        ))
        .into());
    }
    platform_env.extend(project.env.iter().cloned());
    platform_env.extend(parse_env("--env", &args.env)?);
    for file in &args.ca_certificates {
        // The platform's own file, named on its command line.
        let pem = std::fs::read_to_string(file)
            .map_err(|e| InvalidInput(format!("--ca-certificates {}: {e}", file.display())))?;
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(InvalidInput(format!(
                "--ca-certificates {}: no PEM certificate in it",
                file.display()
            ))
            .into());
        }
        let var = platform_env.entry(BUILD_CA_VAR.to_owned()).or_default();
        var.push_str(&pem);
        var.push('\n');
    }
    Ok(platform_env)
}

/// Which build image the build names (`--build-image`, else the builder's),
/// and the image store that can reach every image the build names.
pub(super) fn build_image_choice(
    args: &BuildArgs,
    builder: Option<&Builder>,
    output: &ImageRef,
    run_image: &ImageRef,
) -> anyhow::Result<(build_image::Choice, cascade_lifecycle::oci::store::Oci)> {
    let (name, what) = match (
        &args.build_image,
        builder.and_then(|b| b.build_image.as_ref()),
    ) {
        (Some(name), _) => (Some(name.clone()), "--build-image".to_owned()),
        (None, Some((_, name))) => (
            Some(name.clone()),
            format!(
                "{}: [build] image",
                builder.expect("named it").path.display()
            ),
        ),
        (None, None) => (None, String::new()),
    };
    let choice = name
        .map(|n| build_image::Choice::parse(&n).map_err(|e| InvalidInput(format!("{what}: {e}"))))
        .transpose()?
        .unwrap_or(build_image::Choice::Unset);
    let mut refs = vec![output, run_image];
    if let build_image::Choice::Image(r) = &choice {
        refs.push(r);
    }
    let oci = super::super::oci(args.cache_dir.clone(), &refs, &args.insecure_registry)?;
    Ok((choice, oci))
}

/// The build environment: the build image resolved (through the builder's
/// lock when the builder names it) and unpacked when exec is granted; a
/// build that grants exec and names no build image stops here, before any
/// buildpack runs.
pub(super) fn prepare_build_image(
    args: &BuildArgs,
    builder: Option<&Builder>,
    choice: &build_image::Choice,
    grants: &Grants,
    oci: &cascade_lifecycle::oci::store::Oci,
    reporter: &dyn cascade_lifecycle::report::Reporter,
) -> anyhow::Result<build_image::Prepared> {
    if !args.exec_path.is_empty() && *choice != build_image::Choice::Host {
        return Err(InvalidInput(
            "--exec-path binds host directories, so it goes only with --build-image host; a build image holds its tools itself".into(),
        )
        .into());
    }
    // The builder's own build image is pinned by its lock, as its registry
    // buildpacks are; one named on the command line is the platform's call.
    let locked = match (builder, &args.build_image, choice) {
        (Some(b), None, build_image::Choice::Image(_)) => b
            .build_image
            .as_ref()
            .map(|(written, _)| (b, written.clone())),
        _ => None,
    };
    let lock_path = locked.as_ref().map(|(b, _)| BuilderLock::path_for(&b.path));
    let mut lock = lock_path
        .as_deref()
        .map(BuilderLock::load)
        .transpose()?
        .unwrap_or_default();
    let pinned = locked.as_ref().and_then(|(_, reference)| {
        lock.build_image
            .as_ref()
            .filter(|l| l.reference == *reference)
            .map(|l| l.digest.clone())
    });
    if let (Some((_, reference)), None, true) = (&locked, &pinned, args.locked) {
        return Err(InvalidInput(format!(
            "build image {reference}: not in {}, and --locked forbids resolving it (build once without --locked, then commit the lock)",
            lock_path.expect("a builder").display()
        ))
        .into());
    }
    let store = args
        .rootfs_dir
        .clone()
        .unwrap_or_else(|| super::super::cache_root(args.cache_dir.clone()).join("rootfs"));
    let prepared = build_image::prepare(
        choice,
        pinned.as_ref(),
        grants.exec_grants().as_deref(),
        oci,
        &store,
        reporter,
    )?;
    if let (Some((_, reference)), None, Some(digest)) = (locked, &pinned, &prepared.pin) {
        lock.version = 1;
        lock.build_image = Some(LockedImage {
            reference,
            digest: digest.clone(),
        });
        lock.save(&lock_path.expect("a builder"))?;
    }
    Ok(prepared)
}

/// Say which fields of builder.toml and project.toml were set and are not
/// used, so a file written for pack does not seem to do what it does not.
pub(super) fn warn_unused_fields(
    builder: Option<&Builder>,
    project: &Project,
    app_dir: &Path,
    reporter: &dyn cascade_lifecycle::report::Reporter,
) {
    let unused = builder
        .iter()
        .flat_map(|b| b.ignored.iter().map(|f| (b.path.clone(), f)))
        .chain(
            project
                .ignored
                .iter()
                .map(|f| (app_dir.join(cascade_lifecycle::project::FILE_NAME), f)),
        );
    for (path, field) in unused {
        reporter.note(&format!(
            "warning: {}: {field} is accepted but not used by Cascade",
            path.display()
        ));
    }
}
