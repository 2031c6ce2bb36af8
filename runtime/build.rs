//! Builds the first-party buildpacks (embedded in the `cascade` binary) as
//! `wasm32-wasip2` components, the way wasmtime's `test-programs/artifacts`
//! does: one nested cargo invocation with its own target directory, then
//! constants pointing at the results. The test buildpacks are built by the
//! tests that use them (`cascade_engine::cargo`), not here.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest as _;

#[path = "engine/src/wasm/wasm_config.rs"]
mod wasm_config;

/// (cargo package, constant name) of every guest: all are embedded in the
/// binary (runtime/src/embedded.rs) and precompiled here, so that the first
/// build after installing compiles nothing.
const GUESTS: &[(&str, &str)] = &[
    ("cascade-buildpack-procfile", "PROCFILE"),
    ("cascade-buildpack-static-site", "STATIC_SITE"),
    ("cascade-buildpack-ca-certs", "CA_CERTS"),
    ("cascade-buildpack-rust", "RUST"),
    ("cascade-buildpack-node", "NODE"),
    ("cascade-buildpack-go", "GO"),
    ("cascade-buildpack-python", "PYTHON"),
];

/// Variables the outer cargo sets that must not leak into the nested build
/// (a clippy wrapper, host rustflags, the outer target dir).
const SCRUB: &[&str] = &[
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_TARGET_WASM32_WASIP2_RUNNER",
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    for dir in ["sdk", "wit", "buildpacks", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir
            .join("engine/src/wasm/wasm_config.rs")
            .display()
    );

    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from)
        .join("guests");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "guest",
            "--target-dir",
        ])
        .arg(&target_dir);
    for (package, _) in GUESTS {
        cmd.args(["-p", package]);
    }
    for var in SCRUB {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .expect("running cargo to build the wasm guests");
    assert!(
        status.success(),
        "building the wasm guests failed; is the target installed? (rustup target add wasm32-wasip2)"
    );

    let out_dir = target_dir.join("wasm32-wasip2").join("guest");
    let mut generated = String::new();
    for (package, constant) in GUESTS {
        let wasm = out_dir.join(format!("{}.wasm", package.replace('-', "_")));
        assert!(wasm.is_file(), "missing guest {}", wasm.display());
        writeln!(
            generated,
            "/// Path of the `{package}` component built by build.rs.\npub const {constant}: &str = {path:?};\n\
             /// Bytes of the `{package}` component.\npub const {constant}_WASM: &[u8] = include_bytes!({path:?});",
            path = wasm.display().to_string()
        )
        .unwrap();
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let embedded: Vec<PathBuf> = GUESTS
        .iter()
        .map(|(package, _)| out_dir.join(format!("{}.wasm", package.replace('-', "_"))))
        .collect();
    generated.push_str(&precompile(&embedded, &out));
    std::fs::write(out.join("guests.rs"), generated).unwrap();
}

/// Compile each component for this machine with the runtime's own wasmtime
/// configuration, and a table of (sha256 of the component, compiled form)
/// for the generated code. Empty when cross-compiling (code for the build
/// machine would not load on the target; code for another CPU of the same
/// architecture does not either: wasmtime checks its ISA flags, and the
/// runtime then compiles as before), and on architectures other than
/// x86_64 and aarch64, where wasmtime does not check those flags.
fn precompile(components: &[PathBuf], out: &Path) -> String {
    let mut table = String::from(
        "/// sha256 (hex) of each embedded component and its precompiled form.\n\
         pub const PRECOMPILED: &[(&str, &[u8])] = &[\n",
    );
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if env::var("TARGET").ok() == env::var("HOST").ok()
        && matches!(arch.as_str(), "x86_64" | "aarch64")
    {
        let engine = wasmtime::Engine::new(&wasm_config::wasm_config())
            .expect("the runtime's wasmtime configuration is valid");
        let compiled: Vec<(String, PathBuf)> = std::thread::scope(|s| {
            let jobs: Vec<_> = components
                .iter()
                .map(|wasm| {
                    let engine = &engine;
                    s.spawn(move || {
                        let bytes = std::fs::read(wasm).unwrap();
                        let code = engine
                            .precompile_component(&bytes)
                            .unwrap_or_else(|e| panic!("precompiling {}: {e:#}", wasm.display()));
                        let dest = out.join(wasm.file_name().unwrap()).with_extension("cwasm");
                        std::fs::write(&dest, code).unwrap();
                        (hex::encode(sha2::Sha256::digest(&bytes)), dest)
                    })
                })
                .collect();
            jobs.into_iter().map(|j| j.join().unwrap()).collect()
        });
        for (sha, dest) in compiled {
            writeln!(
                table,
                "    ({sha:?}, include_bytes!({:?})),",
                dest.display().to_string()
            )
            .unwrap();
        }
    }
    table.push_str("];\n");
    table
}
