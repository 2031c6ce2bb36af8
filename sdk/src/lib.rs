#![doc = include_str!("../README.md")]

extern crate self as cascade_sdk;

#[doc(hidden)]
pub mod bindings;
mod build;
mod context;
mod detect;
mod error;
pub mod exec;
mod executables;
pub mod fs;
pub mod inventory;
mod layer;
pub mod log;
mod process;

#[doc(hidden)]
pub mod __private;

pub use build::BuildResult;
pub use context::{BuildContext, DetectContext, Env, PlanEntry, Target, Unpack};
pub use detect::{BuildPlan, DetectResult, Require};
pub use error::{BuildpackError, Result, ResultExt};
pub use executables::launch_executables;
pub use layer::{EnvOp, EnvScope, Layer, LayerTypes, RestoredLayer};
pub use process::Process;
pub use serde;
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
        let wit = include_str!("../wit/buildpack.wit");
        assert!(wit.contains(&format!(
            "package cascade:buildpack@{};",
            super::API_VERSION
        )));
    }
}
