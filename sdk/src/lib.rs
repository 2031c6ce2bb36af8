//! The Cascade buildpack SDK.
//!
//! A buildpack is a type that implements [`Buildpack`] and is exported with
//! [`export_buildpack!`]; `cargo build --target wasm32-wasip2` then yields one
//! `.wasm` component that is the whole buildpack, manifest included.
//!
//! ```no_run
//! use cascade_sdk::{BuildContext, BuildResult, Buildpack, DetectContext, DetectResult, Process, Result};
//!
//! #[derive(Default)]
//! struct Hello;
//!
//! impl Buildpack for Hello {
//!     fn detect(&self, ctx: &DetectContext) -> Result<DetectResult> {
//!         Ok(if ctx.app_dir().join("hello.txt").exists() {
//!             DetectResult::pass()
//!         } else {
//!             DetectResult::fail("no hello.txt")
//!         })
//!     }
//!
//!     fn build(&self, ctx: &BuildContext) -> Result<BuildResult> {
//!         let layer = ctx.layer("greeting")?.launch(true);
//!         std::fs::write(layer.path().join("greeting"), "hello\n")?;
//!         Ok(BuildResult::new()
//!             .layer(layer)
//!             .process(Process::new("web", ["/bin/cat", "/workspace/hello.txt"]).default(true)))
//!     }
//! }
//!
//! // With `buildpack.toml` (CNB schema) next to Cargo.toml:
//! // cascade_sdk::export_buildpack!(Hello);
//! ```
//!
//! Determinism: the host gives every buildpack a fixed clock and seeded
//! randomness, but directory listings come in the host's order. Use
//! [`fs::read_dir_sorted`] wherever order can reach the output.

extern crate self as cascade_sdk;

#[doc(hidden)]
pub mod bindings;
mod build;
mod context;
mod detect;
mod error;
pub mod fs;
mod layer;
pub mod log;
mod process;

#[doc(hidden)]
pub mod __private;

pub use build::BuildResult;
pub use context::{BuildContext, DetectContext, Env, PlanEntry, Target};
pub use detect::{BuildPlan, DetectResult, Require};
pub use error::{BuildpackError, Result, ResultExt};
pub use layer::{EnvOp, EnvScope, Layer, LayerTypes, RestoredLayer};
pub use process::Process;
pub use toml;

/// The Cascade buildpack API this SDK builds against: the version of the
/// `cascade:buildpack` WIT package. [`export_buildpack!`] stamps it into the
/// component (custom section `cascade:api-version`) and the host refuses a
/// component whose API it does not run, naming both versions, before
/// instantiating anything. See docs/compatibility.md.
pub const API_VERSION: &str = "0.2.0";

/// A buildpack: `detect` decides whether it applies to an app, `build`
/// contributes layers and processes.
///
/// Both run inside the Cascade sandbox: the app is at [`DetectContext::app_dir`]
/// (read-only during detect), this buildpack's layers under
/// [`BuildContext::layers_dir`], and nothing else of the host is visible.
pub trait Buildpack: Default {
    /// Decide whether this buildpack applies. A "no" is
    /// [`DetectResult::fail`], not an error: errors mean the buildpack broke.
    fn detect(&self, ctx: &DetectContext) -> Result<DetectResult>;

    /// Contribute layers, processes and labels.
    fn build(&self, ctx: &BuildContext) -> Result<BuildResult>;
}

/// Export a [`Buildpack`] as the component's `detect` and `build`, and embed
/// the crate's `buildpack.toml` as the component's manifest (custom section
/// `cascade:buildpack`), so the host can read id and version without running
/// anything.
#[macro_export]
macro_rules! export_buildpack {
    ($buildpack:ty) => {
        #[doc(hidden)]
        #[cfg_attr(target_arch = "wasm32", unsafe(link_section = "cascade:buildpack"))]
        #[used]
        static __CASCADE_BUILDPACK_MANIFEST: [u8; include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/buildpack.toml"
        ))
        .len()] = *include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/buildpack.toml"));

        #[doc(hidden)]
        #[cfg_attr(target_arch = "wasm32", unsafe(link_section = "cascade:api-version"))]
        #[used]
        static __CASCADE_API_VERSION: [u8; $crate::API_VERSION.len()] =
            $crate::__private::API_VERSION_BYTES;

        #[doc(hidden)]
        struct __CascadeExport;

        impl $crate::__private::Guest for __CascadeExport {
            fn detect(
                context: $crate::__private::DetectContext,
            ) -> ::core::result::Result<
                $crate::__private::DetectOutcome,
                $crate::__private::BuildpackErrorRecord,
            > {
                $crate::__private::detect::<$buildpack>(context)
            }

            fn build(
                context: $crate::__private::BuildContextRecord,
            ) -> ::core::result::Result<
                $crate::__private::BuildOutput,
                $crate::__private::BuildpackErrorRecord,
            > {
                $crate::__private::build::<$buildpack>(context)
            }
        }

        $crate::__private::bindings::__cascade_export_world!(__CascadeExport with_types_in $crate::__private::bindings);
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn api_version_is_the_wit_package_version() {
        let wit = include_str!("../../wit/buildpack.wit");
        assert!(wit.contains(&format!(
            "package cascade:buildpack@{};",
            super::API_VERSION
        )));
    }
}
