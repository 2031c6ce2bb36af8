//! Built executables in a launch layer: what a buildpack for a compiled
//! language (cargo, go) hands to the image.

use crate::toml::Table;
use crate::{BuildContext, BuildpackError, Layer, LayerTypes, Process, Result, log};

/// Put `built` (file name, bytes) in the launch layer `bin` under `bin/`,
/// with one process per executable, named after it; the one called
/// `web_name` (else the first) is `web` and the default.
///
/// The layer's metadata is a fingerprint of the bytes, so while they do not
/// change the previous layer is kept, blob and all: nothing is written and
/// the image digest stays the same.
pub fn launch_executables(
    ctx: &BuildContext,
    built: &[(String, Vec<u8>)],
    web_name: &str,
) -> Result<(Layer, Vec<Process>)> {
    let Some((first, _)) = built.first() else {
        return Err(BuildpackError::new("no executables were built"));
    };
    let mut metadata = Table::new();
    metadata.insert("binaries".into(), crate::fs::fingerprint(built).into());
    let bin = ctx.cached_layer("bin", LayerTypes::LAUNCH, &metadata)?;
    let dir = bin.path().join("bin");
    let names: Vec<&str> = built.iter().map(|(n, _)| n.as_str()).collect();
    if bin.is_reused() {
        log::info("binaries unchanged: reusing the bin layer");
    } else {
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in built {
            // WASI has no mode bits: Cascade exports what is in a layer's
            // bin/ as executable.
            std::fs::write(dir.join(name), bytes)?;
        }
        log::info(format!("built {}", names.join(", ")));
    }
    let web = names
        .iter()
        .copied()
        .find(|n| *n == web_name)
        .unwrap_or(first);
    let processes = names
        .iter()
        .map(|name| {
            let kind = if *name == web {
                "web".to_owned()
            } else {
                Process::type_from_name(name)
            };
            Process::new(kind, [dir.join(name).display().to_string()]).default(*name == web)
        })
        .collect();
    Ok((bin, processes))
}
