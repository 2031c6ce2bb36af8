//! End-to-end tests: build fixture apps with the real `cascade` binary, check
//! the images with tools nobody here wrote (oci-image-tool, skopeo, umoci),
//! and run them under bubblewrap.
//!
//! A missing tool skips a test loudly on a developer machine; under CI
//! (`CI=true`) it fails the test.

mod bad_input;
mod bloat;
mod build_apps;
mod build_image;
mod cache;
mod capabilities;
mod distribution;
mod go;
mod guests;
mod host_boundary;
mod mirror;
mod node;
mod node_apps;
mod project;
mod python;
mod rebase;
mod registry;
mod reproducible;
mod rust;
mod sandbox;
mod sbom;
mod scaffold;
mod static_site;
mod support;
mod waterfall;
