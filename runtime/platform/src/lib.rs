//! The platform files of Cloud Native Buildpacks that Cascade reads and
//! writes: `builder.toml` (pack's builder schema), `project.toml` (the
//! project descriptor 0.2) and `builder.lock` (Cascade's pins of what a
//! builder names by tag).
//!
//! A crate of its own so that the files are modelled once, below the
//! lifecycle that acts on them: parsing one runs no buildpack and pulls no
//! image. A field Cascade accepts and does not use is listed for a warning,
//! never silently dropped.

pub mod builder;
pub mod config_file;
pub mod lock;
pub mod project;
