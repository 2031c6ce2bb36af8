//! The CNB labels that make a Cascade image readable and rebasable by CNB
//! tooling (../shared/REFERENCE.md: keys as lifecycle writes them).

use serde_json::{Map, Value, json};

use crate::phase::BuiltBuildpack;

pub const LIFECYCLE_METADATA: &str = "io.buildpacks.lifecycle.metadata";
pub const BUILD_METADATA: &str = "io.buildpacks.build.metadata";
pub const PROJECT_METADATA: &str = "io.buildpacks.project.metadata";
/// Cascade's own: the launch env entries (JSON array of `EnvEntry`) that
/// turned the run image's `Env` into the image's, replayed on rebase.
pub const LAUNCH_ENV: &str = "dev.cascade.launch-env";
/// Cascade's own: every capability call the build made (JSON array of
/// `{buildpack, capability, detail}`: fetched URLs, exec'd command lines
/// with their exit status), so an image says what reached outside the
/// sandbox to make it.
pub const CAPABILITIES: &str = "dev.cascade.capabilities";
/// The buildpacks the app itself named (project.toml `uri`), which held
/// only grants that name them; absent when there are none.
pub const APP_BUILDPACKS: &str = "dev.cascade.app-buildpacks";
/// Cascade's own: how old the base is (`{"created", "version"}` of the run
/// image, [`crate::run_image::BaseAge`]), so a rebase onto an older base is
/// told from a patch without reading the old base again.
pub const RUN_IMAGE: &str = "dev.cascade.run-image";
/// Cascade's own: the build image exec'd tools ran in
/// ([`crate::report::BuildImageRef`]: reference, digest, hermetic), so a
/// platform can list the images built on a build image it has patched.
pub const BUILD_IMAGE: &str = "dev.cascade.build-image";
pub const REBASABLE: &str = "io.buildpacks.rebasable";
/// Labels a run image sets that follow it on rebase.
pub const BASE_PREFIX: &str = "io.buildpacks.base.";

/// Diff ids of what export wrote, by buildpack and layer, plus the app.
pub struct LayerShas<'a> {
    /// (buildpack index, layer name, diff_id)
    pub layers: &'a [(usize, String, String)],
    pub app: &'a str,
    /// The SBOM layer's diff_id (CNB `sbom.sha`).
    pub sbom: Option<&'a str>,
}

pub struct RunImageLabel<'a> {
    pub top_layer: &'a str,
    pub reference: &'a str,
    pub image: &'a str,
}

fn toml_to_json(table: &toml::Table) -> Value {
    serde_json::to_value(table).unwrap_or(Value::Object(Map::new()))
}

pub fn lifecycle_metadata(
    built: &[BuiltBuildpack],
    shas: &LayerShas<'_>,
    run: &RunImageLabel<'_>,
) -> Value {
    let buildpacks: Vec<Value> = built
        .iter()
        .enumerate()
        .map(|(i, bp)| {
            let mut layers = Map::new();
            for l in &bp.layers {
                let sha = shas
                    .layers
                    .iter()
                    .find(|(b, name, _)| *b == i && name == l.layer.name.as_str())
                    .map(|(_, _, sha)| sha.clone());
                let mut entry = json!({
                    "data": toml_to_json(&l.layer.metadata),
                    "build": l.layer.types.build,
                    "launch": l.layer.types.launch,
                    "cache": l.layer.types.cache,
                });
                if let Some(sha) = sha {
                    entry["sha"] = json!(sha);
                }
                layers.insert(l.layer.name.to_string(), entry);
            }
            json!({
                "key": bp.runner.id().as_str(),
                "version": bp.runner.manifest().buildpack.version,
                "layers": layers,
            })
        })
        .collect();
    let mut label = json!({
        "app": [{"sha": shas.app}],
        "buildpacks": buildpacks,
        "runImage": {"topLayer": run.top_layer, "reference": run.reference, "image": run.image},
        "stack": {"runImage": {"image": run.image}},
    });
    if let Some(sha) = shas.sbom {
        label["sbom"] = json!({"sha": sha});
    }
    label
}

/// `processes` are (process, buildpack id), already merged and sorted.
pub fn build_metadata(
    built: &[BuiltBuildpack],
    processes: &[(crate::api::Process, String)],
) -> Value {
    let buildpacks: Vec<Value> = built
        .iter()
        .map(|bp| {
            let info = &bp.runner.manifest().buildpack;
            let mut v = json!({"id": info.id.as_str(), "version": info.version});
            if let Some(home) = &info.homepage {
                v["homepage"] = json!(home);
            }
            v
        })
        .collect();
    let processes: Vec<Value> = processes
        .iter()
        .map(|(p, id)| {
            let mut v = json!({
                "type": p.kind.as_str(),
                "command": p.command,
                "args": p.args,
                "direct": true,
                "buildpackID": id,
            });
            if let Some(dir) = &p.working_dir {
                v["working-dir"] = json!(dir);
            }
            v
        })
        .collect();
    json!({"buildpacks": buildpacks, "processes": processes, "launcher": {"version": "", "source": {}}})
}
