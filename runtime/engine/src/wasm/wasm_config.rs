//! The one wasmtime configuration: every [`super::Engine`] uses it, and
//! `build.rs` precompiles the embedded buildpacks with it (this file is
//! included there by path), since a precompiled component loads only into
//! an engine configured as the one that compiled it.

/// Threads are off because wasmtime is built without its `threads`
/// feature; NaN bits and relaxed SIMD are made deterministic here.
pub fn wasm_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .epoch_interruption(true)
        .wasm_component_model(true);
    config
}
