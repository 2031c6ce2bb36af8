//! A buildpack shaped like a package manager's, for the cache tests and the
//! no-op rebuild benchmark. It passes detect when the app has `deps.lock`:
//!
//! ```toml
//! size-mib = 4      # how much the "installed dependencies" weigh
//! seed = "abc"      # changes their bytes
//! forget = "scratch"  # also makes a layer of this name and leaves it out
//! ```
//!
//! and builds three layers, each with the reuse rule a real buildpack has:
//!
//! - `deps` (launch + cache): the installed dependencies, rebuilt only when
//!   `deps.lock` changes (its text is the layer metadata), with a CycloneDX
//!   SBOM and `bin/` on `PATH`;
//! - `toolchain` (build + cache): a tool later buildpacks use, keyed by a
//!   fixed version;
//! - `runtime` (launch only): a small runtime keyed by a fixed version: on a
//!   rebuild only its metadata comes back and the image's blob is reused.
//!
//! Every layer it builds or reuses is logged as `built <name>` or
//! `reused <name>`, so tests can see what it did.

use cascade_sdk::toml::{Table, Value};
use cascade_sdk::{
    BuildContext, BuildResult, Buildpack, DetectContext, DetectResult, LayerTypes, Process, Result,
    log,
};

#[derive(Default)]
pub struct Deps;

/// Deterministic bytes that compress like real binaries (about 2:1).
fn fill(seed: &str, len: usize) -> Vec<u8> {
    let mut x: u64 = seed.bytes().fold(0x9E37_79B9_7F4A_7C15, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    });
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Half the bytes from a small alphabet, half random.
        let b = x.to_le_bytes();
        for (i, byte) in b.iter().enumerate() {
            out.push(if i % 2 == 0 { b'a' + byte % 16 } else { *byte });
        }
    }
    out.truncate(len);
    out
}

fn table(pairs: &[(&str, &str)]) -> Table {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
        .collect()
}

impl Buildpack for Deps {
    fn detect(&self, ctx: &DetectContext) -> Result<DetectResult> {
        Ok(if ctx.app_dir().join("deps.lock").is_file() {
            DetectResult::pass()
        } else {
            DetectResult::fail("no deps.lock")
        })
    }

    fn build(&self, ctx: &BuildContext) -> Result<BuildResult> {
        let lock_text = std::fs::read_to_string(ctx.app_dir().join("deps.lock"))?;
        let lock: Table = lock_text
            .parse()
            .map_err(|e| cascade_sdk::BuildpackError::new(format!("deps.lock: {e}")))?;
        let size_mib = lock
            .get("size-mib")
            .and_then(Value::as_integer)
            .unwrap_or(1);
        let seed = lock.get("seed").and_then(Value::as_str).unwrap_or("");
        if let Some(name) = lock.get("forget").and_then(Value::as_str) {
            // Made, written, and then not declared: the SDK warns.
            let forgotten = ctx.layer(name)?;
            std::fs::write(forgotten.path().join("lost"), "never in the image")?;
        }

        let deps = ctx.cached_layer(
            "deps",
            LayerTypes::LAUNCH | LayerTypes::CACHE,
            &table(&[("lock", &lock_text)]),
        )?;
        if deps.is_reused() {
            log::info("reused deps");
        } else {
            std::fs::create_dir_all(deps.path().join("lib"))?;
            std::fs::create_dir_all(deps.path().join("bin"))?;
            let chunk = 1 << 20;
            for i in 0..size_mib {
                let name = format!("lib/part-{i:04}.so");
                std::fs::write(deps.path().join(name), fill(&format!("{seed}{i}"), chunk))?;
            }
            std::fs::write(deps.path().join("bin/deps"), "#!/bin/sh\necho deps\n")?;
            log::info(format!("built deps ({size_mib} MiB)"));
        }
        let sbom = format!(
            r#"{{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,"components":[{{"type":"library","name":"deps","version":"{seed}","purl":"pkg:generic/deps@{seed}"}}]}}"#
        );
        let deps = deps
            .env_default("DEPS_HOME", "/layers/test_deps/deps")
            .sbom(sbom);

        let toolchain = ctx.cached_layer(
            "toolchain",
            LayerTypes::BUILD | LayerTypes::CACHE,
            &table(&[("version", "1.0")]),
        )?;
        if toolchain.is_reused() {
            log::info("reused toolchain");
        } else {
            std::fs::create_dir_all(toolchain.path().join("bin"))?;
            std::fs::write(toolchain.path().join("bin/tool"), fill("tool", 4096))?;
            log::info("built toolchain");
        }

        let runtime =
            ctx.cached_layer("runtime", LayerTypes::LAUNCH, &table(&[("version", "2.1")]))?;
        if runtime.is_reused() {
            log::info("reused runtime");
        } else {
            std::fs::write(runtime.path().join("VERSION"), "2.1\n")?;
            log::info("built runtime");
        }

        Ok(BuildResult::new()
            .layer(deps)
            .layer(toolchain)
            .layer(runtime.env_override("RUNTIME_VERSION", "2.1"))
            .process(Process::new("web", ["/bin/cat", "/workspace/deps.lock"]).default(true)))
    }
}

cascade_sdk::export_buildpack!(Deps);
