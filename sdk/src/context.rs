//! What the host tells a buildpack about the build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::bindings::cascade::buildpack::types as wit;
use crate::layer::{LayerTypes, RestoredLayer};
use crate::{BuildpackError, Layer};

/// Environment variables, sorted by name.
pub type Env = BTreeMap<String, String>;

/// The platform the image is built for (CNB target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub os: String,
    pub arch: String,
    pub arch_variant: Option<String>,
    pub distro_name: Option<String>,
    pub distro_version: Option<String>,
}

impl Target {
    fn from_record(t: wit::Target) -> Self {
        Self {
            os: t.os,
            arch: t.arch,
            arch_variant: t.arch_variant,
            distro_name: t.distro_name,
            distro_version: t.distro_version,
        }
    }
}

fn env_from(vars: Vec<wit::EnvVar>) -> Env {
    vars.into_iter().map(|v| (v.name, v.value)).collect()
}

/// Inputs of `detect`.
#[derive(Debug, Clone)]
pub struct DetectContext {
    app_dir: PathBuf,
    platform_env: Env,
    target: Target,
}

impl DetectContext {
    pub(crate) fn from_record(c: wit::DetectContext) -> Self {
        Self {
            app_dir: c.app_dir.into(),
            platform_env: env_from(c.platform_env),
            target: Target::from_record(c.target),
        }
    }

    /// The app source tree, read-only during detect.
    pub fn app_dir(&self) -> &Path {
        &self.app_dir
    }

    /// Variables the platform set (`cascade build --env K=V`).
    pub fn platform_env(&self) -> &Env {
        &self.platform_env
    }

    pub fn target(&self) -> &Target {
        &self.target
    }
}

/// One entry of the buildpack's resolved build plan: a `require` that this
/// buildpack provides.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanEntry {
    pub name: String,
    pub metadata: toml::Table,
}

/// Inputs of `build`.
#[derive(Debug, Clone)]
pub struct BuildContext {
    app_dir: PathBuf,
    layers_dir: PathBuf,
    platform_env: Env,
    build_env: Env,
    plan: Vec<PlanEntry>,
    target: Target,
    restored: Vec<RestoredLayer>,
    /// Names of the layers made through this context, so that one left
    /// out of the result is warned about (see [`BuildContext::undeclared`]).
    made: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

/// How [`BuildContext::unpack_with`] unpacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unpack {
    /// Bytes it may write (default 4 GiB).
    pub max_bytes: u64,
    /// Entries it may hold (default a million).
    pub max_entries: u32,
    /// Leading directories to drop from every path, as
    /// `tar --strip-components` (default 0): a release tarball's
    /// `node-v22.1.0-linux-x64/` or `python/`.
    pub strip_components: usize,
}

impl Default for Unpack {
    fn default() -> Self {
        Self {
            max_bytes: 4 << 30,
            max_entries: 1_000_000,
            strip_components: 0,
        }
    }
}

impl BuildContext {
    pub(crate) fn from_record(c: wit::BuildContext) -> Self {
        let plan = c
            .plan
            .into_iter()
            .map(|e| PlanEntry {
                name: e.name,
                // The host validated the TOML when detect returned it.
                metadata: e.metadata.parse().unwrap_or_default(),
            })
            .collect();
        Self {
            app_dir: c.app_dir.into(),
            layers_dir: c.layers_dir.into(),
            platform_env: env_from(c.platform_env),
            build_env: env_from(c.build_env),
            plan,
            target: Target::from_record(c.target),
            restored: c
                .restored_layers
                .into_iter()
                .map(RestoredLayer::from_record)
                .collect(),
            made: std::cell::RefCell::default(),
        }
    }

    /// Layers made through this context that `declared` (the result's
    /// layer names) leaves out: their files would be dropped silently.
    pub(crate) fn undeclared(&self, declared: &[&str]) -> Vec<String> {
        self.made
            .borrow()
            .iter()
            .filter(|m| !declared.contains(&m.as_str()))
            .cloned()
            .collect()
    }

    /// The app source tree; writable during build, and what ends up in the
    /// image's app layer at `/workspace`.
    pub fn app_dir(&self) -> &Path {
        &self.app_dir
    }

    /// This buildpack's layers directory.
    pub fn layers_dir(&self) -> &Path {
        &self.layers_dir
    }

    pub fn platform_env(&self) -> &Env {
        &self.platform_env
    }

    /// The environment earlier buildpacks' build layers set up.
    pub fn build_env(&self) -> &Env {
        &self.build_env
    }

    /// The plan entries this buildpack provides.
    pub fn plan(&self) -> &[PlanEntry] {
        &self.plan
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Create (or empty) the layer `name` and return it for writing.
    ///
    /// The layer starts with no types set: call [`Layer::launch`],
    /// [`Layer::build`] or [`Layer::cache`] to say where it is needed, and add
    /// it to the [`crate::BuildResult`].
    pub fn layer(&self, name: &str) -> Result<Layer, BuildpackError> {
        let layer = Layer::create(&self.layers_dir, name)?;
        self.made.borrow_mut().insert(name.to_owned());
        Ok(layer)
    }

    /// Unpack an archive (`.tar`, `.tar.gz`/`.tgz`, `.tar.xz`/`.txz`,
    /// `.zip`) that lies under [`BuildContext::layers_dir`] — a runtime
    /// fetched with [`Layer::fetch`] — into `dest`, also under it. The host
    /// does it natively and checks every entry: no absolute paths, no `..`,
    /// no links leaving `dest`; at most 4 GiB and a million entries (see
    /// [`BuildContext::unpack_with`]). Returns the bytes written.
    pub fn unpack(
        &self,
        archive: impl AsRef<Path>,
        dest: impl AsRef<Path>,
    ) -> Result<u64, BuildpackError> {
        self.unpack_with(archive, dest, Unpack::default())
    }

    /// [`BuildContext::unpack`] with explicit bounds, and leading
    /// directories stripped ([`Unpack::strip_components`]):
    ///
    /// ```no_run
    /// # fn f(ctx: &cascade_sdk::BuildContext, layer: &cascade_sdk::Layer) -> cascade_sdk::Result<()> {
    /// use cascade_sdk::Unpack;
    /// let strip = Unpack { strip_components: 1, ..Unpack::default() };
    /// ctx.unpack_with(layer.path().join("node.tar.xz"), layer.path(), strip)?;
    /// # Ok(()) }
    /// ```
    pub fn unpack_with(
        &self,
        archive: impl AsRef<Path>,
        dest: impl AsRef<Path>,
        how: Unpack,
    ) -> Result<u64, BuildpackError> {
        let (archive, dest) = (archive.as_ref(), dest.as_ref());
        if how.strip_components == 0 {
            return self.unpack_exactly(archive, dest, how);
        }
        // Unpacked beside, then moved up: the host checks every entry as
        // always, and the move stays inside this buildpack's own layers.
        let staging = dest.join(".cascade-unpack");
        if crate::fs::symlink_metadata(&staging).is_ok() {
            crate::fs::remove_dir_all(&staging)?;
        }
        let bytes = self.unpack_exactly(archive, &staging, how)?;
        crate::fs::strip_components(&staging, dest, how.strip_components)
            .map_err(|e| BuildpackError::new(format!("unpacking {}: {e}", archive.display())))?;
        Ok(bytes)
    }

    fn unpack_exactly(
        &self,
        archive: &Path,
        dest: &Path,
        how: Unpack,
    ) -> Result<u64, BuildpackError> {
        use crate::bindings::cascade::buildpack::archive as wit_archive;
        let rel = |p: &Path| {
            p.strip_prefix(&self.layers_dir)
                .map(|r| r.display().to_string())
                .map_err(|_| {
                    BuildpackError::new(format!(
                        "{}: not under this buildpack's layers dir {}",
                        p.display(),
                        self.layers_dir.display()
                    ))
                })
        };
        let name = archive.display().to_string();
        let lower = name.to_ascii_lowercase();
        let is = |suffix: &str| lower.ends_with(suffix);
        let format = if is(".tar.gz") || is(".tgz") {
            wit_archive::Format::TarGz
        } else if is(".tar.xz") || is(".txz") {
            wit_archive::Format::TarXz
        } else if is(".tar") {
            wit_archive::Format::Tar
        } else if is(".zip") {
            wit_archive::Format::Zip
        } else {
            return Err(BuildpackError::new(format!(
                "{name}: unknown archive type (.tar, .tar.gz, .tgz, .tar.xz, .txz or .zip)"
            )));
        };
        wit_archive::unpack(
            &rel(archive)?,
            &rel(dest)?,
            format,
            wit_archive::Limits {
                max_bytes: how.max_bytes,
                max_entries: how.max_entries,
            },
        )
        .map_err(|e| BuildpackError::new(format!("unpacking {name}: {e}")))
    }

    /// This buildpack's layers from the previous build of the same image.
    pub fn restored_layers(&self) -> &[RestoredLayer] {
        &self.restored
    }

    /// A layer that is rebuilt only when `metadata` changes (libcnb.rs's
    /// cached layer definition). When the previous build left a layer `name`
    /// with these `types` and equal `metadata` (and its files, for a build or
    /// cache layer), it is returned as it was: [`Layer::is_reused`] is true
    /// and the host reuses its blob without writing the layer again.
    /// Otherwise the layer is created empty with `types` and `metadata`, to
    /// be filled.
    ///
    /// `metadata` is any type that serializes to a TOML table (a struct
    /// deriving `serde::Serialize`, a `toml::Table`); read it back with
    /// [`RestoredLayer::metadata_as`]. Put in it everything the layer's
    /// content depends on: a version, a lockfile's digest
    /// ([`crate::fs::sha256_file`]), a URL.
    pub fn cached_layer<M: serde::Serialize + ?Sized>(
        &self,
        name: &str,
        types: LayerTypes,
        metadata: &M,
    ) -> Result<Layer, BuildpackError> {
        let metadata = toml::Table::try_from(metadata).map_err(|e| {
            BuildpackError::new(format!(
                "the metadata of layer {name} is not a TOML table: {e}"
            ))
        })?;
        self.made.borrow_mut().insert(name.to_owned());
        if let Some(restored) = self
            .restored
            .iter()
            .find(|r| r.name == name && r.matches(types, &metadata))
        {
            return Layer::reuse(&self.layers_dir, restored);
        }
        Ok(Layer::create(&self.layers_dir, name)?
            .types(types)
            .with_metadata(metadata))
    }
}
