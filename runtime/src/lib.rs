//! Cascade: runs buildpacks that are WASI components and writes the result as
//! a reproducible OCI image on a chosen run image.
//!
//! The flow is `detect → build → export` (CNB's phases, see
//! ../shared/DESIGN.md). Phases live in [`phase`] and talk to buildpacks only
//! through [`api::BuildpackRunner`], so they neither know nor care that the
//! buildpacks are wasm; `cascade-engine` ([`wasm`]) implements that seam.

pub mod bloat;
pub mod build_image;
pub mod builder_info;
pub mod cache;
pub mod distribution;
pub mod elf;
pub mod embedded;
pub mod fleet;
pub mod image_config;
pub mod image_files;
pub mod inspect;
pub mod labels;
pub mod launch;
pub mod phase;
pub mod pipeline;
pub mod process_check;
pub mod report;
pub mod rootfs;
pub mod run_image;
pub mod sbom;
pub mod workspace;

pub use cascade_engine::{
    api, archive, capabilities, cargo, contract, deadline, env, exec, fetch, ids, manifest,
    tar_guard, wasm,
};
pub use cascade_fs as guest_tree;
pub use cascade_oci as oci;
pub use cascade_oci::NORMALIZED_EPOCH;
pub use cascade_platform::{builder, config_file, lock, project};

/// Paths and bytes of the first-party buildpacks build.rs compiled.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}
