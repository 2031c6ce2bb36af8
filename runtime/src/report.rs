//! Progress events while a build runs, and the report it ends with
//! (`--format json` prints the report).

use serde::Serialize;

use crate::ids::BuildpackId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// Where progress goes. The CLI prints it to stderr; tests collect it.
pub trait Reporter: Send + Sync {
    /// A phase starts (`detect`, `build`, `export`).
    fn phase(&self, name: &str);
    /// A phase ended after `seconds` of its own.
    fn phase_done(&self, _name: &str, _seconds: f64) {}
    /// A line of the platform's own progress.
    fn note(&self, message: &str);
    /// A buildpack's `log` call.
    fn buildpack_log(&self, id: &BuildpackId, level: LogLevel, message: &str);
    /// A buildpack's captured stdout or stderr.
    fn buildpack_output(&self, id: &BuildpackId, stream: &str, text: &str);
}

/// `text` safe to print on a terminal: control characters (ANSI escape
/// sequences, carriage returns that overwrite a line, C1 controls) are
/// shown as `\x1b`-style escapes instead of acting. Buildpack logs and tool
/// output are guest-controlled, so a buildpack cannot rewrite what the user
/// sees (fake a success, hide an error, set the terminal's title).
pub fn neutralise(text: &str) -> std::borrow::Cow<'_, str> {
    let bad =
        |c: char| (c.is_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c);
    if !text.chars().any(bad) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if bad(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A reporter that drops everything.
#[derive(Debug, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn phase(&self, _: &str) {}
    fn note(&self, _: &str) {}
    fn buildpack_log(&self, _: &BuildpackId, _: LogLevel, _: &str) {}
    fn buildpack_output(&self, _: &BuildpackId, _: &str, _: &str) {}
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn escape_sequences_are_shown_not_acted_on() {
        assert_eq!(super::neutralise("plain\ttext"), "plain\ttext");
        assert_eq!(
            super::neutralise("\u{1b}[2K\rok\u{9b}31m"),
            "\\u{1b}[2K\\rok\\u{9b}31m"
        );
    }
}
