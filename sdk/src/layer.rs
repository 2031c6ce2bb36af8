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

/// A layer under construction. Write its files under [`Layer::path`].
///
/// Directories `bin/` and `lib/` in a layer are added to `PATH` and
/// `LD_LIBRARY_PATH` by the host, as CNB specifies.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    name: String,
    path: PathBuf,
    launch: bool,
    build: bool,
    cache: bool,
    metadata: toml::Table,
    env: Vec<EnvEntry>,
}

/// Names the CNB spec reserves inside a layers directory.
const RESERVED: [&str; 3] = ["build", "launch", "store"];

impl Layer {
    pub(crate) fn create(layers_dir: &Path, name: &str) -> Result<Self, BuildpackError> {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && name != "."
            && name != "..";
        if !valid || RESERVED.contains(&name) {
            return Err(BuildpackError::new(format!(
                "invalid layer name {name:?}: use letters, digits, '-', '_' or '.', and not build, launch or store"
            )));
        }
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
            launch: false,
            build: false,
            cache: false,
            metadata: toml::Table::new(),
            env: Vec::new(),
        })
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
        self.launch = yes;
        self
    }

    /// Make the layer (and its env) visible to later buildpacks.
    #[must_use]
    pub fn build(mut self, yes: bool) -> Self {
        self.build = yes;
        self
    }

    /// Keep the layer for the next build.
    #[must_use]
    pub fn cache(mut self, yes: bool) -> Self {
        self.cache = yes;
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
        types.set(wit::LayerTypes::LAUNCH, self.launch);
        types.set(wit::LayerTypes::BUILD, self.build);
        types.set(wit::LayerTypes::CACHE, self.cache);
        wit::Layer {
            name: self.name,
            types,
            metadata: self.metadata.to_string(),
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
