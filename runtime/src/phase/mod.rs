//! The phases of a build, each a plain struct of inputs with a `run` method
//! (lifecycle's `phase/detector.go`, `builder.go`, `exporter.go`).

pub mod build;
pub mod detect;
pub mod export;
#[cfg(test)]
pub(crate) mod fake;
mod plan;
pub mod rebase;

pub use build::{Build, BuildError, BuiltBuildpack, BuiltLayer, Standing, ToolEnv};
pub use detect::{Chosen, Detect, DetectError, Detected};
pub use export::{Export, ExportError, Exported};
pub use rebase::{Rebase, RebaseError, Rebased};
