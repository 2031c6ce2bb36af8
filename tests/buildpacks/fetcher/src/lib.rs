//! Fetches what the app's `fetch.toml` lists into a launch layer
//! `downloads`, for the capability tests:
//!
//! ```toml
//! [[fetch]]
//! url = "http://127.0.0.1:8080/runtime.tar.gz"
//! sha256 = "..."
//! dest = "runtime.tar.gz"   # inside the layer; may try to escape it
//! unpack = "runtime"        # optional: unpack it there (checked by the host)
//! max-bytes = 1048576       # optional bound for the unpack
//! strip-components = 1      # optional: leading directories dropped
//! ```
//!
//! It declares `fetch` from `127.0.0.1` and `file` URLs only.

use cascade_sdk::toml::{Table, Value};
use cascade_sdk::{
    BuildContext, BuildResult, Buildpack, BuildpackError, DetectContext, DetectResult, Result, log,
};

#[derive(Default)]
pub struct Fetcher;

impl Buildpack for Fetcher {
    fn detect(&self, ctx: &DetectContext) -> Result<DetectResult> {
        Ok(if ctx.app_dir().join("fetch.toml").is_file() {
            DetectResult::pass()
        } else {
            DetectResult::fail("no fetch.toml")
        })
    }

    fn build(&self, ctx: &BuildContext) -> Result<BuildResult> {
        let text = std::fs::read_to_string(ctx.app_dir().join("fetch.toml"))?;
        let doc: Table = text
            .parse()
            .map_err(|e| BuildpackError::new(format!("fetch.toml: {e}")))?;
        let layer = ctx.layer("downloads")?.launch(true);
        let entries = doc
            .get("fetch")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for entry in entries {
            let field = |k: &str| {
                entry
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let bytes = layer.fetch(&field("url"), &field("sha256"), field("dest"))?;
            log::info(format!("fetched {} ({bytes} bytes)", field("dest")));
            if let Some(into) = entry.get("unpack").and_then(Value::as_str) {
                let max = entry
                    .get("max-bytes")
                    .and_then(Value::as_integer)
                    .map_or(1 << 30, |m| u64::try_from(m).unwrap_or(0));
                let strip = entry
                    .get("strip-components")
                    .and_then(Value::as_integer)
                    .map_or(0, |n| usize::try_from(n).unwrap_or(0));
                let how = cascade_sdk::Unpack {
                    max_bytes: max,
                    max_entries: 10_000,
                    strip_components: strip,
                };
                let n = ctx.unpack_with(
                    layer.path().join(field("dest")),
                    layer.path().join(into),
                    how,
                )?;
                log::info(format!("unpacked {n} bytes into {into}"));
            }
        }
        Ok(BuildResult::new().layer(layer))
    }
}

cascade_sdk::export_buildpack!(Fetcher);
