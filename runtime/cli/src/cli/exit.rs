//! Exit codes grouped by phase, like lifecycle's `platform/exit.go`, so a
//! platform can tell failures apart without parsing messages.

use cascade_lifecycle::builder::BuilderError;
use cascade_lifecycle::phase::{DetectError, RebaseError};
use cascade_lifecycle::pipeline::PipelineError;
use cascade_lifecycle::wasm::EngineError;

pub const GENERIC: u8 = 1;
pub const INVALID_INPUT: u8 = 10;
pub const DETECT_NO_GROUP: u8 = 20;
pub const DETECT_ERROR: u8 = 21;
pub const RESTORE: u8 = 40;
pub const BUILD_FAILED: u8 = 51;
pub const RUN_IMAGE: u8 = 61;
pub const EXPORT: u8 = 62;
pub const REBASE_REFUSED: u8 = 70;
pub const REBASE_FAILED: u8 = 71;
pub const AUDIT_STALE: u8 = 72;
pub const AUDIT_UNREADABLE: u8 = 73;

/// Marks an error as the user's input being wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<PipelineError>() {
            return match e {
                PipelineError::AppDir { .. }
                | PipelineError::Output(_)
                | PipelineError::Detect(DetectError::UnknownBuildpack { .. }) => INVALID_INPUT,
                PipelineError::RunImage(_) => RUN_IMAGE,
                PipelineError::Detect(DetectError::NoGroup { .. }) => DETECT_NO_GROUP,
                PipelineError::Detect(DetectError::Errored { .. }) => DETECT_ERROR,
                PipelineError::Cache(_) => RESTORE,
                PipelineError::Build(_) => BUILD_FAILED,
                PipelineError::Export(_)
                | PipelineError::Publish { .. }
                | PipelineError::Processes(_)
                | PipelineError::Workspace(_)
                | PipelineError::Store(_) => EXPORT,
            };
        }
        if let Some(e) = cause.downcast_ref::<RebaseError>() {
            return match e {
                RebaseError::RunImage(_) => RUN_IMAGE,
                RebaseError::Unsupported { .. } => INVALID_INPUT,
                e if e.is_refusal() => REBASE_REFUSED,
                _ => REBASE_FAILED,
            };
        }
        if cause.is::<super::rebase::FleetRefused>() {
            return REBASE_REFUSED;
        }
        if cause.is::<super::rebase::FleetFailed>() {
            return REBASE_FAILED;
        }
        if cause.is::<super::audit::AuditStale>() {
            return AUDIT_STALE;
        }
        if cause.is::<super::audit::AuditUnreadable>() {
            return AUDIT_UNREADABLE;
        }
        if let Some(e) = cause.downcast_ref::<cascade_lifecycle::bloat::trace::TraceError>() {
            use cascade_lifecycle::bloat::trace::TraceError;
            if matches!(e, TraceError::NoStrace | TraceError::NoBwrap) {
                return INVALID_INPUT;
            }
        }
        if cause.is::<BuilderError>()
            || cause.is::<EngineError>()
            || cause.is::<InvalidInput>()
            || cause.is::<cascade_lifecycle::inspect::InspectError>()
            || cause.is::<cascade_lifecycle::distribution::DistributionError>()
            || cause.is::<cascade_lifecycle::manifest::ManifestError>()
            || cause.is::<cascade_lifecycle::build_image::BuildImageError>()
        {
            return INVALID_INPUT;
        }
    }
    GENERIC
}
