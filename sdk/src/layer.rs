//! Layers: directories a buildpack fills with `std::fs`, plus the CNB
//! `<layer>.toml` facts (types, metadata) and env.

use std::path::{Path, PathBuf};

use crate::BuildpackError;
use crate::bindings::cascade::buildpack::types as wit;

/// How a value combines with the variable's existing value (CNB env file
/// suffixes `.override`, `.default`, `.append`, `.prepend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvOp {
    Override,
    Default,
    Append,
    Prepend,
}

/// Where an env entry applies (CNB `env/`, `env.build/`, `env.launch/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvScope {
    /// Build (later buildpacks) and launch (the image).
    All,
    Build,
    Launch,
}

#[derive(Debug, Clone, PartialEq)]
struct EnvEntry {
    name: String,
    value: String,
    op: EnvOp,
    delim: Option<String>,
    scope: EnvScope,
}

/// Where a layer is needed (CNB `[types]` of `<layer>.toml`). Combine with
/// `|`: `LayerTypes::LAUNCH | LayerTypes::CACHE`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerTypes {
    /// In the image.
    pub launch: bool,
    /// Visible, with its env, to later buildpacks.
    pub build: bool,
    /// Kept for the next build of the same image, files and all.
    pub cache: bool,
}

impl LayerTypes {
    pub const LAUNCH: Self = Self {
        launch: true,
        build: false,
        cache: false,
    };
    pub const BUILD: Self = Self {
        launch: false,
        build: true,
        cache: false,
    };
    pub const CACHE: Self = Self {
        launch: false,
        build: false,
        cache: true,
    };

    fn from_record(t: wit::LayerTypes) -> Self {
        Self {
            launch: t.contains(wit::LayerTypes::LAUNCH),
            build: t.contains(wit::LayerTypes::BUILD),
            cache: t.contains(wit::LayerTypes::CACHE),
        }
    }
}

impl std::ops::BitOr for LayerTypes {
    type Output = Self;
    fn bitor(self, o: Self) -> Self {
        Self {
            launch: self.launch || o.launch,
            build: self.build || o.build,
            cache: self.cache || o.cache,
        }
    }
}

/// A layer this buildpack made in the previous build of the same image.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoredLayer {
    pub name: String,
    pub types: LayerTypes,
    pub metadata: toml::Table,
    /// Whether its files are back under the layers dir (`cache` layers); a
    /// launch-only layer brings only its metadata.
    pub has_files: bool,
}

impl RestoredLayer {
    pub(crate) fn from_record(r: wit::RestoredLayer) -> Self {
        Self {
            name: r.name,
            types: LayerTypes::from_record(r.types),
            // The host wrote this TOML itself.
            metadata: r.metadata.parse().unwrap_or_default(),
            has_files: r.has_files,
        }
    }

    /// The metadata as the type it was written from (see
    /// [`crate::BuildContext::cached_layer`]); an error names the layer.
    pub fn metadata_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, BuildpackError> {
        metadata_as(&self.name, &self.metadata)
    }

    /// Whether this restored layer can stand for a layer of `types` with
    /// `metadata`: same metadata, same types, and its files are here when
    /// a build or cache layer needs them.
    pub fn matches(&self, types: LayerTypes, metadata: &toml::Table) -> bool {
        self.types == types
            && &self.metadata == metadata
            && (self.has_files || !(types.build || types.cache))
    }
}

/// A layer under construction. Write its files under [`Layer::path`].
///
/// Directories `bin/` and `lib/` in a layer are added to `PATH` and
/// `LD_LIBRARY_PATH` by the host, as CNB specifies.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    name: String,
    path: PathBuf,
    types: LayerTypes,
    metadata: toml::Table,
    env: Vec<EnvEntry>,
    reused: bool,
    sbom: Option<String>,
}

fn metadata_as<T: serde::de::DeserializeOwned>(
    layer: &str,
    metadata: &toml::Table,
) -> Result<T, BuildpackError> {
    metadata
        .clone()
        .try_into()
        .map_err(|e| BuildpackError::new(format!("the metadata of layer {layer}: {e}")))
}

/// Names the CNB spec reserves inside a layers directory.
const RESERVED: [&str; 4] = ["build", "launch", "store", "sbom"];

fn check_name(name: &str) -> Result<(), BuildpackError> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name != "."
        && name != "..";
    if !valid || RESERVED.contains(&name) {
        return Err(BuildpackError::new(format!(
            "invalid layer name {name:?}: use letters, digits, '-', '_' or '.', and not build, launch, store or sbom"
        )));
    }
    Ok(())
}

impl Layer {
    pub(crate) fn create(layers_dir: &Path, name: &str) -> Result<Self, BuildpackError> {
        check_name(name)?;
        let path = layers_dir.join(name);
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .map_err(|e| BuildpackError::new(format!("emptying layer {name}: {e}")))?;
        }
        std::fs::create_dir_all(&path)
            .map_err(|e| BuildpackError::new(format!("creating layer {name}: {e}")))?;
        Ok(Self {
            name: name.to_owned(),
            path,
            types: LayerTypes::default(),
            metadata: toml::Table::new(),
            env: Vec::new(),
            reused: false,
            sbom: None,
        })
    }

    /// Keep the restored layer `restored` as it was: its types and metadata
    /// carry over, its files (if any) stay, and the host reuses its blob.
    pub(crate) fn reuse(
        layers_dir: &Path,
        restored: &RestoredLayer,
    ) -> Result<Self, BuildpackError> {
        check_name(&restored.name)?;
        Ok(Self {
            name: restored.name.clone(),
            path: layers_dir.join(&restored.name),
            types: restored.types,
            metadata: restored.metadata.clone(),
            env: Vec::new(),
            reused: true,
            sbom: None,
        })
    }

    /// Whether this is the previous build's layer, kept as it was
    /// ([`crate::BuildContext::cached_layer`] found matching metadata). Its
    /// env and SBOM are not kept: declare them again.
    pub fn is_reused(&self) -> bool {
        self.reused
    }

    /// Download `url` into `rel` (a path inside this layer), checked against
    /// `sha256` (64 hex digits) by the host, which caches by digest: a
    /// second build downloads nothing. Needs the `fetch` capability: the
    /// URL's host listed in buildpack.toml `[capabilities] fetch` (`file`
    /// for file:// URLs) and granted by the platform
    /// (`cascade build --allow fetch:HOST`); otherwise the error says which
    /// is missing. Returns the number of bytes written.
    pub fn fetch(
        &self,
        url: &str,
        sha256: &str,
        rel: impl AsRef<Path>,
    ) -> Result<u64, BuildpackError> {
        let request = crate::bindings::cascade::buildpack::fetch::Request {
            url: url.to_owned(),
            sha256: sha256.to_owned(),
            destination: format!("{}/{}", self.name, rel.as_ref().display()),
        };
        crate::bindings::cascade::buildpack::fetch::fetch(&request)
            .map_err(|e| BuildpackError::new(format!("fetching {url}: {e}")))
    }

    /// Set the layer's types at once.
    #[must_use]
    pub fn types(mut self, types: LayerTypes) -> Self {
        self.types = types;
        self
    }

    /// Attach a CycloneDX JSON SBOM of what the layer holds. The host stores
    /// it in the image at `/layers/sbom/launch/<buildpack>/<layer>/sbom.cdx.json`
    /// and lists it in the image's SBOM. Keep it free of timestamps and
    /// random serial numbers so images stay reproducible.
    #[must_use]
    pub fn sbom(mut self, cyclonedx_json: impl Into<String>) -> Self {
        self.sbom = Some(cyclonedx_json.into());
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where to write the layer's files.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Include the layer in the image.
    #[must_use]
    pub fn launch(mut self, yes: bool) -> Self {
        self.types.launch = yes;
        self
    }

    /// Make the layer (and its env) visible to later buildpacks.
    #[must_use]
    pub fn build(mut self, yes: bool) -> Self {
        self.types.build = yes;
        self
    }

    /// Keep the layer for the next build.
    #[must_use]
    pub fn cache(mut self, yes: bool) -> Self {
        self.types.cache = yes;
        self
    }

    /// The layer's metadata as a type of yours.
    pub fn metadata_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, BuildpackError> {
        metadata_as(&self.name, &self.metadata)
    }

    pub(crate) fn with_metadata(mut self, metadata: toml::Table) -> Self {
        self.metadata = metadata;
        self
    }

    /// Set one metadata key (CNB `[metadata]` of `<layer>.toml`).
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<toml::Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Add an env entry with an explicit op, delimiter and scope.
    #[must_use]
    pub fn env(
        mut self,
        scope: EnvScope,
        op: EnvOp,
        name: impl Into<String>,
        value: impl Into<String>,
        delim: Option<&str>,
    ) -> Self {
        self.env.push(EnvEntry {
            name: name.into(),
            value: value.into(),
            op,
            delim: delim.map(str::to_owned),
            scope,
        });
        self
    }

    /// Set `name` to `value` at build and launch.
    #[must_use]
    pub fn env_override(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env(EnvScope::All, EnvOp::Override, name, value, None)
    }

    /// Set `name` to `value` unless it is already set.
    #[must_use]
    pub fn env_default(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env(EnvScope::All, EnvOp::Default, name, value, None)
    }

    /// Put `value` in front of a `:`-separated list such as `PATH`.
    #[must_use]
    pub fn env_prepend_path(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env(EnvScope::All, EnvOp::Prepend, name, value, Some(":"))
    }

    /// Put `value` at the end of a `:`-separated list.
    #[must_use]
    pub fn env_append_path(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env(EnvScope::All, EnvOp::Append, name, value, Some(":"))
    }

    pub(crate) fn into_record(self) -> wit::Layer {
        let mut types = wit::LayerTypes::empty();
        types.set(wit::LayerTypes::LAUNCH, self.types.launch);
        types.set(wit::LayerTypes::BUILD, self.types.build);
        types.set(wit::LayerTypes::CACHE, self.types.cache);
        wit::Layer {
            name: self.name,
            types,
            metadata: self.metadata.to_string(),
            reused: self.reused,
            sbom: self.sbom,
            env: self
                .env
                .into_iter()
                .map(|e| wit::EnvEntry {
                    name: e.name,
                    value: e.value,
                    op: match e.op {
                        EnvOp::Override => wit::EnvOp::Override,
                        EnvOp::Default => wit::EnvOp::Default,
                        EnvOp::Append => wit::EnvOp::Append,
                        EnvOp::Prepend => wit::EnvOp::Prepend,
                    },
                    delim: e.delim,
                    scope: match e.scope {
                        EnvScope::All => wit::EnvScope::All,
                        EnvScope::Build => wit::EnvScope::Build,
                        EnvScope::Launch => wit::EnvScope::Launch,
                    },
                })
                .collect(),
        }
    }
}
