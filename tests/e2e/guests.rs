//! The buildpack components the tests run, built from their crates on first
//! use (once per test process, into `cascade-test-wasm/` under the target
//! dir, which the buildpacks' own `cascade-test` runs share): the test
//! buildpacks of `tests/buildpacks/` are no part of the `cascade` binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The component of the workspace crate at `rel`, as a path.
fn built(rel: &str) -> &'static str {
    static BUILT: OnceLock<Mutex<BTreeMap<String, &'static str>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Mutex::default).lock().unwrap();
    built.entry(rel.to_owned()).or_insert_with(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        // CARGO_TARGET_TMPDIR is `<target>/tmp`; the target dir itself is
        // locked by the cargo running these tests.
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../cascade-test-wasm");
        let wasm: PathBuf =
            cascade_engine::cargo::build_component(&workspace.join(rel), Some(&target))
                .unwrap_or_else(|e| panic!("building {rel}: {e}"));
        Box::leak(wasm.display().to_string().into_boxed_str())
    })
}

/// Misbehaves on purpose, as its app asks (tests/buildpacks/hostile).
pub fn test_hostile() -> &'static str {
    built("tests/buildpacks/hostile")
}

/// A package-manager-like buildpack: layers, cache, SBOM (tests/buildpacks/deps).
pub fn test_deps() -> &'static str {
    built("tests/buildpacks/deps")
}

/// Uses the fetch capability (tests/buildpacks/fetcher).
pub fn test_fetcher() -> &'static str {
    built("tests/buildpacks/fetcher")
}

/// Imports a host function Cascade does not offer (tests/buildpacks/alien).
pub fn test_alien() -> &'static str {
    built("tests/buildpacks/alien")
}

/// The first-party Procfile buildpack, as a file of its own.
pub fn procfile() -> &'static str {
    built("buildpacks/procfile")
}
