//! Progress events while a build runs, and the report it ends with
//! (`--format json` prints the report).

use serde::Serialize;

pub use cascade_engine::progress::{LogLevel, Reporter, Silent, neutralise};

/// What `cascade build` did, for humans and platforms.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    /// `sha256:...` of the image manifest.
    pub digest: String,
    pub image: String,
    /// What making the image's blobs present cost.
    pub transfers: crate::oci::store::Transfers,
    pub run_image: RunImageRef,
    /// The build image exec'd tools ran in; `None` when the build gave none
    /// (no buildpack was granted exec).
    pub build_image: Option<BuildImageRef>,
    /// The buildpacks of the chosen group, in order.
    pub group: Vec<GroupMemberReport>,
    pub layers: Vec<LayerReport>,
    pub processes: Vec<ProcessReport>,
    pub default_process: Option<String>,
    /// The image SBOM as an OCI referrer, when published to a registry.
    pub sbom_referrer: Option<crate::oci::referrers::Attached>,
    /// Every capability call buildpacks made (granted or denied), in order.
    pub capabilities: Vec<crate::capabilities::CapabilityUse>,
    /// What the platform should know (a limit that could not be enforced).
    pub warnings: Vec<String>,
    /// Each phase's own duration, in order.
    pub phases: Vec<PhaseTime>,
    /// What bringing the build's copy of the app in line cost.
    pub workspace: crate::workspace::SyncStats,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseTime {
    pub name: String,
    pub seconds: f64,
}

/// A run image in every report (build, inspect, audit, rebase), with the
/// same three keys: the reference it was named by, its manifest digest and
/// its top layer's diff_id (`None` for scratch, or where not known).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunImageRef {
    pub reference: String,
    pub digest: Option<String>,
    pub top_layer: Option<String>,
}

impl RunImageRef {
    /// `value` unless it is empty.
    pub fn non_empty(value: &str) -> Option<String> {
        (!value.is_empty()).then(|| value.to_owned())
    }
}

/// A build image in reports and in the image's `dev.cascade.build-image`
/// label: the reference it was named by and its manifest digest, or the
/// build host (`host`, no digest, not hermetic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BuildImageRef {
    pub reference: String,
    pub digest: Option<String>,
    /// False for the build host: what its tools were is not recorded.
    pub hermetic: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupMemberReport {
    pub id: String,
    pub version: String,
    /// Named by the app's project.toml (not the platform): it held only
    /// grants that name it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub from_app: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// `app`, or `<buildpack id>:<layer name>`.
    pub name: String,
    pub diff_id: String,
    pub digest: String,
    pub size: u64,
    /// Taken from the previous build as it was, not written again.
    pub reused: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessReport {
    #[serde(rename = "type")]
    pub kind: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub buildpack_id: String,
}
