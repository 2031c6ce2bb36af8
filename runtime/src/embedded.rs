//! The default builder: first-party buildpacks compiled into the binary, so
//! `cascade build ./app` needs nothing else.

use crate::builder::{BuilderError, GroupMember};
use crate::guests;
use crate::ids::BuildpackId;

/// (source name for messages, component bytes)
pub const BUILDPACKS: [(&str, &[u8]); 7] = [
    ("embedded:cascade/ca-certs", guests::CA_CERTS_WASM),
    ("embedded:cascade/static-site", guests::STATIC_SITE_WASM),
    ("embedded:cascade/rust", guests::RUST_WASM),
    ("embedded:cascade/node", guests::NODE_WASM),
    ("embedded:cascade/go", guests::GO_WASM),
    ("embedded:cascade/python", guests::PYTHON_WASM),
    ("embedded:cascade/procfile", guests::PROCFILE_WASM),
];

/// The compiled form of the component whose sha256 (hex) is `sha256`, when
/// it is one of these buildpacks and
/// build.rs precompiled it for this machine (it does unless
/// cross-compiling), so the first build after installing compiles nothing.
pub fn precompiled(sha256: &str) -> Option<&'static [u8]> {
    guests::PRECOMPILED
        .iter()
        .find(|(s, _)| *s == sha256)
        .map(|(_, bytes)| *bytes)
}

/// [`precompiled`], for the engine.
pub fn prebuilt() -> crate::wasm::Prebuilt {
    // SAFETY: build.rs compiled these very component bytes (found by their
    // sha256) with the engine's wasmtime (one version in Cargo.lock, the
    // same cargo features: the build dependency names them, and a unit test
    // below checks the code is byte for byte what the engine compiles) and
    // its `wasm_config`, which build.rs includes by path.
    #[allow(unsafe_code)]
    unsafe {
        crate::wasm::Prebuilt::trusting(precompiled)
    }
}

/// The scheme of a builder.toml `uri` naming one of these buildpacks.
pub use crate::builder::BUILTIN_SCHEME as URI_SCHEME;

/// The ids of these buildpacks, for a builder.toml's `builtin:ID` uris.
pub fn ids() -> Vec<&'static str> {
    BUILDPACKS
        .iter()
        .map(|(name, _)| name.trim_start_matches("embedded:"))
        .collect()
}

/// The builder.toml at `path`, whose `builtin:ID` uris may name these.
pub fn load_builder(path: &std::path::Path) -> Result<crate::builder::Builder, BuilderError> {
    crate::builder::Builder::load(path, &ids())
}

/// The component of the built-in buildpack `id`.
pub fn component(id: &str) -> Option<&'static [u8]> {
    BUILDPACKS
        .iter()
        .find(|(name, _)| name.strip_prefix("embedded:") == Some(id))
        .map(|(_, bytes)| *bytes)
}

/// `builtin:ID` for every built-in buildpack, in the default order's terms.
pub fn uris() -> Vec<String> {
    BUILDPACKS
        .iter()
        .map(|(name, _)| format!("{URI_SCHEME}{}", name.trim_start_matches("embedded:")))
        .collect()
}

fn member(id: &str, optional: bool) -> GroupMember {
    GroupMember {
        id: BuildpackId::new(id).expect("first-party ids are valid"),
        version: None,
        optional,
    }
}

/// The default order: certificates are optional in front of every group; a
/// Python app, a static site, a Cargo project, a Node.js app or a Go module
/// may add a Procfile's processes; otherwise a Procfile alone. Python comes
/// first: its apps are told by their manifests (requirements.txt,
/// pyproject.toml...), while a Python app may well hold an index.html. A
/// front end (node builds it, static-site serves what it wrote) comes
/// before a static site: its `public/index.html` is an unbuilt template.
pub fn order() -> Vec<Vec<GroupMember>> {
    vec![
        vec![
            member("cascade/ca-certs", true),
            member("cascade/python", false),
            member("cascade/procfile", true),
        ],
        vec![
            member("cascade/ca-certs", true),
            member("cascade/node", false),
            member("cascade/static-site", false),
        ],
        vec![
            member("cascade/ca-certs", true),
            member("cascade/static-site", false),
            member("cascade/procfile", true),
        ],
        vec![
            member("cascade/ca-certs", true),
            member("cascade/rust", false),
            member("cascade/procfile", true),
        ],
        vec![
            member("cascade/ca-certs", true),
            member("cascade/node", false),
            member("cascade/procfile", true),
        ],
        vec![
            member("cascade/ca-certs", true),
            member("cascade/go", false),
            member("cascade/procfile", true),
        ],
        vec![
            member("cascade/ca-certs", true),
            member("cascade/procfile", false),
        ],
    ]
}

#[cfg(test)]
mod prebuilt_tests {
    /// The prebuilt code of every embedded buildpack is byte for byte what
    /// the engine compiles from it: same wasmtime, features and
    /// configuration, which is what loading it unchecked relies on.
    #[test]
    fn the_prebuilt_code_is_what_the_engine_compiles() {
        use sha2::Digest as _;
        if crate::guests::PRECOMPILED.is_empty() {
            eprintln!("skipped: this build has no prebuilt code (cross-compiled)");
            return;
        }
        assert_eq!(crate::guests::PRECOMPILED.len(), super::BUILDPACKS.len());
        let engine = wasmtime::Engine::new(&crate::wasm::wasm_config::wasm_config()).unwrap();
        for (name, bytes) in super::BUILDPACKS {
            let sha = hex::encode(sha2::Sha256::digest(bytes));
            let prebuilt =
                super::precompiled(&sha).unwrap_or_else(|| panic!("{name} has no prebuilt code"));
            let compiled = engine.precompile_component(bytes).unwrap();
            assert!(compiled == prebuilt, "{name}: the prebuilt code differs");
        }
    }

    /// A guest's clock and a layer's mtimes read the same instant.
    #[test]
    fn the_guest_clock_is_the_normalised_time() {
        assert_eq!(crate::wasm::GUEST_CLOCK_EPOCH, crate::NORMALIZED_EPOCH);
    }
}
