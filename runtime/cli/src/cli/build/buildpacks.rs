//! Which buildpacks a build runs: `--buildpack` files, project.toml's
//! group, a builder's `[[buildpacks]]` (files, built-ins, and registry
//! artifacts pinned in its `builder.lock`), or the built-in builder.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The buildpacks and order, from the first that says: `--buildpack`, the
/// project's `[[io.buildpacks.group]]`, `--builder`, the built-in builder.
pub(super) fn select_buildpacks(
    engine: &Arc<Engine>,
    args: &BuildArgs,
    builder: Option<&Builder>,
    project: &Project,
) -> anyhow::Result<Selection> {
    let one_group = |bps: &[Arc<dyn BuildpackRunner>]| {
        vec![
            bps.iter()
                .map(|b| GroupMember {
                    id: b.id().clone(),
                    version: Some(b.manifest().buildpack.version.clone()),
                    optional: false,
                })
                .collect(),
        ]
    };
    if !args.buildpacks.is_empty() {
        let bps = args
            .buildpacks
            .iter()
            .map(|p| Ok(Arc::new(engine.load_file(p)?) as Arc<dyn BuildpackRunner>))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let order = one_group(&bps);
        return Ok((bps, order));
    }
    // Buildpacks a project group may name by id: the builder's, else the built-in ones.
    let (mut available, order) = match builder {
        Some(b) => (builder_buildpacks(engine, b, args)?, b.order.clone()),
        None => (
            cascade_lifecycle::embedded::BUILDPACKS
                .iter()
                .map(|(name, bytes)| {
                    Ok(Arc::new(engine.load(bytes, name)?) as Arc<dyn BuildpackRunner>)
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
            cascade_lifecycle::embedded::order(),
        ),
    };
    if project.group.is_empty() {
        return Ok((available, order));
    }
    let mut group = Vec::new();
    for entry in &project.group {
        match entry {
            ProjectBuildpack::Id(member) => group.push(member.clone()),
            ProjectBuildpack::File(path) => {
                let bp: Arc<dyn BuildpackRunner> =
                    Arc::new(engine.load_file(path).with_context(|| {
                        format!("{}: [[io.buildpacks.group]]", project::FILE_NAME)
                    })?);
                // The app chose it, not the platform: no grant reaches it
                // unless one names it.
                engine.capabilities().mark_app_named(bp.id().as_str());
                group.push(GroupMember {
                    id: bp.id().clone(),
                    version: Some(bp.manifest().buildpack.version.clone()),
                    optional: false,
                });
                available.push(bp);
            }
        }
    }
    Ok((available, vec![group]))
}

pub(super) fn builder_buildpacks(
    engine: &Arc<Engine>,
    b: &Builder,
    args: &BuildArgs,
) -> anyhow::Result<Vec<Arc<dyn BuildpackRunner>>> {
    let mut out: Vec<Arc<dyn BuildpackRunner>> = Vec::new();
    let mut registry = Registries::new(b, args)?;
    for (declared, source) in &b.buildpacks {
        let (bp, name) = match source {
            BuildpackSource::File(path) => (
                engine.load_file(path).with_context(|| {
                    format!("{}: loading a [[buildpacks]] entry", b.path.display())
                })?,
                path.display().to_string(),
            ),
            BuildpackSource::Builtin(id) => {
                let name = format!("{}{id}", cascade_lifecycle::embedded::URI_SCHEME);
                let bytes = cascade_lifecycle::embedded::component(id.as_str())
                    .expect("checked when the builder was parsed");
                (engine.load(bytes, &name)?, name)
            }
            BuildpackSource::Registry { uri, reference } => {
                let wasm = registry.pull(uri, reference)?;
                (
                    engine.load(&wasm, uri).with_context(|| {
                        format!("{}: loading a [[buildpacks]] entry", b.path.display())
                    })?,
                    uri.clone(),
                )
            }
        };
        if let Some(id) = declared
            && id != bp.id()
        {
            return Err(InvalidInput(format!(
                "{}: [[buildpacks]] entry {name} says id {id}, but the component is {}",
                b.path.display(),
                bp.id()
            ))
            .into());
        }
        out.push(Arc::new(bp));
    }
    registry.save_lock()?;
    Ok(out)
}

/// Registry buildpacks of a builder, resolved through its `builder.lock`.
pub(super) struct Registries {
    lock_path: PathBuf,
    lock: BuilderLock,
    changed: bool,
    locked: bool,
    client: Option<Registry>,
    cache_dir: PathBuf,
}

impl Registries {
    fn new(b: &Builder, args: &BuildArgs) -> anyhow::Result<Self> {
        let hosts: Vec<String> = b
            .buildpacks
            .iter()
            .filter_map(|(_, s)| match s {
                BuildpackSource::Registry { reference, .. } => {
                    Some(reference.resolve_registry().to_owned())
                }
                BuildpackSource::File(_) | BuildpackSource::Builtin(_) => None,
            })
            .collect();
        let lock_path = BuilderLock::path_for(&b.path);
        Ok(Self {
            lock: if hosts.is_empty() {
                BuilderLock::default()
            } else {
                BuilderLock::load(&lock_path)?
            },
            lock_path,
            changed: false,
            locked: args.locked,
            client: if hosts.is_empty() {
                None
            } else {
                Some(Registry::new(&hosts, &args.insecure_registry)?)
            },
            cache_dir: super::super::cache_root(args.cache_dir.clone()),
        })
    }

    /// The component `uri` names: the locked digest when the lock has one
    /// (the tag is not asked again), else the reference resolved now and
    /// added to the lock.
    fn pull(&mut self, uri: &str, reference: &oci_client::Reference) -> anyhow::Result<Vec<u8>> {
        let client = self
            .client
            .as_ref()
            .expect("a client for registry buildpacks");
        let lock_name = self.lock_path.display().to_string();
        if let Some(locked) = self.lock.get(uri) {
            let pinned = reference.clone_with_digest(locked.manifest.to_string());
            let why = format!("locked in {lock_name}");
            let (wasm, _) = distribution::pull(
                client,
                &pinned,
                Some((&locked.component, why.as_str())),
                &self.cache_dir,
            )?;
            return Ok(wasm);
        }
        if self.locked {
            return Err(InvalidInput(format!(
                "{uri}: not in {lock_name}, and --locked forbids resolving it (build once without --locked, then commit the lock)"
            ))
            .into());
        }
        let (wasm, resolved) = distribution::pull(client, reference, None, &self.cache_dir)?;
        self.lock.set(LockedBuildpack {
            uri: uri.into(),
            manifest: resolved.manifest,
            component: resolved.component,
        });
        self.changed = true;
        Ok(wasm)
    }

    fn save_lock(&self) -> anyhow::Result<()> {
        if self.changed {
            self.lock.save(&self.lock_path)?;
        }
        Ok(())
    }
}
