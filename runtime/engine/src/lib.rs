//! Runs CNB buildpacks that are WASI components.
//!
//! The phases call buildpacks through [`api::BuildpackRunner`] only; [`wasm`]
//! is its implementation in wasmtime: the sandbox, the guest's clock and
//! limits, and the host calls a grant allows ([`capabilities`]: [`exec`] in
//! the build image, [`fetch`] over HTTP, [`archive`] unpacking).
//!
//! A crate of its own so that Cargo holds the arrow: the engine knows no OCI
//! image, registry or layout (`cargo tree -p cascade-engine` shows no
//! oci-client), and the OCI side no wasm. What both need, a sha256 content
//! address, is `cascade-digest`; trees a guest writes are reached through
//! `cascade-fs` only.

pub mod api;
pub mod archive;
pub mod capabilities;
pub mod cargo;
pub mod contract;
pub mod deadline;
pub mod env;
pub mod exec;
pub mod fetch;
pub mod ids;
pub mod manifest;
pub mod progress;
pub mod tar_guard;
pub mod wasm;
