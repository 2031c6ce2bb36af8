//! The buildpack contract as host-side types, and the seam between phases and
//! whatever runs a buildpack (lifecycle's `DetectExecutor`/`BuildExecutor`).
//!
//! These mirror `wit/buildpack.wit`; the engine converts the generated
//! bindings into them so no phase depends on wasmtime.

use std::collections::BTreeMap;
use std::sync::Arc;

use cascade_fs::GuestTree;

use crate::ids::{BuildpackId, LayerName, ProcessType};
use crate::manifest::BuildpackManifest;

/// Ordered environment (sorted by name).
pub type Env = BTreeMap<String, String>;

/// The platform an image is built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub os: String,
    pub arch: String,
    pub arch_variant: Option<String>,
    pub distro_name: Option<String>,
    pub distro_version: Option<String>,
}

impl Target {
    /// A target with only os and arch known.
    pub fn new(os: impl Into<String>, arch: impl Into<String>) -> Self {
        Self {
            os: os.into(),
            arch: arch.into(),
            arch_variant: None,
            distro_name: None,
            distro_version: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Require {
    pub name: String,
    pub metadata: toml::Table,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildPlan {
    pub provides: Vec<String>,
    pub requires: Vec<Require>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DetectOutcome {
    /// Primary plan first, then the `or` alternatives.
    Pass(Vec<BuildPlan>),
    Fail(String),
}

/// Inputs of detect, in host terms.
#[derive(Debug, Clone)]
pub struct DetectInput {
    /// The app, preopened read-only at [`APP_DIR`].
    pub app: Arc<GuestTree>,
    pub platform_env: Env,
    pub target: Target,
}

/// A directory a buildpack sees at `guest` (read-only unless it is its own).
#[derive(Debug, Clone)]
pub struct Mount {
    pub tree: Arc<GuestTree>,
    pub guest: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanEntry {
    pub name: String,
    pub metadata: toml::Table,
}

/// Inputs of build, in host terms.
#[derive(Debug, Clone)]
pub struct BuildInput {
    /// The writable app copy, preopened at [`APP_DIR`].
    pub app: Arc<GuestTree>,
    /// This buildpack's own layers dir, preopened read-write at
    /// `layers_dir_guest`.
    pub layers: Arc<GuestTree>,
    pub layers_dir_guest: String,
    /// Earlier buildpacks' build layers, read-only.
    pub build_layers: Vec<Mount>,
    pub platform_env: Env,
    pub build_env: Env,
    /// The build env the buildpack's exec'd tools get, as operations (a
    /// `bin/` prepends to `PATH`) applied over the build image's `Env`: as
    /// much of earlier buildpacks' as the lifecycle's `ToolEnv` lets
    /// through (an `LD_PRELOAD` or a `bin/` of one that may not exec would
    /// run its code natively with another's grants).
    pub exec_env: Vec<EnvEntry>,
    pub plan: Vec<PlanEntry>,
    pub target: Target,
    /// This buildpack's layers from the previous build of the same image.
    pub restored: Vec<RestoredLayer>,
    /// Bytes it may write into its layers and the workspace while it runs
    /// (0: no bound).
    pub max_write_bytes: u64,
}

/// A layer of the previous build, offered back to its buildpack.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoredLayer {
    pub name: LayerName,
    pub types: LayerTypes,
    pub metadata: toml::Table,
    /// Whether its files are back under the buildpack's layers dir.
    pub has_files: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvOp {
    Override,
    Default,
    Append,
    Prepend,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvScope {
    All,
    Build,
    Launch,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnvEntry {
    pub name: String,
    pub value: String,
    pub op: EnvOp,
    pub delim: Option<String>,
    pub scope: EnvScope,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerTypes {
    pub launch: bool,
    pub build: bool,
    pub cache: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub name: LayerName,
    pub types: LayerTypes,
    pub metadata: toml::Table,
    pub env: Vec<EnvEntry>,
    /// The buildpack kept the restored layer of this name as it was.
    pub reused: bool,
    /// A CycloneDX JSON SBOM of the layer, as the buildpack gave it.
    pub sbom: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub kind: ProcessType,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub default: bool,
    pub working_dir: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildOutput {
    pub layers: Vec<Layer>,
    pub processes: Vec<Process>,
    pub labels: Vec<(String, String)>,
}

/// Where the app is inside the sandbox and the image.
pub const APP_DIR: &str = "/workspace";
/// Where layers are inside the sandbox and the image.
pub const LAYERS_DIR: &str = "/layers";

/// Why running a buildpack failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The buildpack returned an error for the user.
    #[error("{message}{}", hint.as_ref().map(|h| format!(" (hint: {h})")).unwrap_or_default())]
    Reported {
        message: String,
        hint: Option<String>,
    },
    #[error("trapped: {0}")]
    Trap(String),
    #[error("ran past its deadline of {seconds} s and was stopped")]
    Timeout { seconds: u64 },
    #[error("exceeded its memory limit of {limit_mib} MiB")]
    MemoryLimit { limit_mib: u64 },
    #[error(
        "wrote more than {limit_mib} MiB into its layers and the workspace and was stopped (--max-layers-mib)"
    )]
    WriteLimit { limit_mib: u64 },
    #[error("returned invalid output: {0}")]
    InvalidOutput(String),
    #[error("could not be started: {0}")]
    Setup(String),
}

/// Runs one buildpack. Implemented by the wasm engine, and by fakes in tests
/// of phase logic.
pub trait BuildpackRunner: Send + Sync {
    fn manifest(&self) -> &BuildpackManifest;

    fn id(&self) -> &BuildpackId {
        &self.manifest().buildpack.id
    }

    /// sha256 of the buildpack's component, when it is one (the SBOM and
    /// the build label name buildpacks by it).
    fn component_digest(&self) -> Option<&cascade_digest::Digest> {
        None
    }

    fn detect(&self, input: &DetectInput) -> Result<DetectOutcome, RunError>;

    fn build(&self, input: &BuildInput) -> Result<BuildOutput, RunError>;
}
