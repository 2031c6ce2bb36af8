//! Build: run each chosen buildpack in group order. A buildpack sees the app
//! (writable), its own layers dir, and earlier buildpacks' build layers
//! read-only with their env applied.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::detect::Chosen;
use crate::api::{self, BuildInput, BuildpackRunner, Mount, RunError, Target};
use crate::env::{EnvList, EnvPhase};
use crate::ids::BuildpackId;
use crate::report::Reporter;

/// A layer a buildpack declared, with where it lives.
#[derive(Debug, Clone)]
pub struct BuiltLayer {
    pub layer: api::Layer,
    pub host_path: PathBuf,
    /// Its path in the sandbox and in the image (`/layers/<bp>/<name>`).
    pub guest_path: String,
}

/// One buildpack's contribution.
#[derive(Clone)]
pub struct BuiltBuildpack {
    pub runner: Arc<dyn BuildpackRunner>,
    pub layers: Vec<BuiltLayer>,
    pub processes: Vec<api::Process>,
    pub labels: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("buildpack {id} failed: {source}")]
    Buildpack {
        id: BuildpackId,
        #[source]
        source: RunError,
    },
    #[error("preparing the layers of {id}: {source}")]
    Io {
        id: BuildpackId,
        #[source]
        source: std::io::Error,
    },
}

pub struct Build<'a> {
    pub group: &'a [Chosen],
    /// Host path of the writable app copy.
    pub app_dir: &'a Path,
    /// Host directory that stands for `/layers`.
    pub layers_root: &'a Path,
    pub platform_env: &'a api::Env,
    pub target: &'a Target,
    pub reporter: &'a dyn Reporter,
}

impl Build<'_> {
    pub fn run(&self) -> Result<Vec<BuiltBuildpack>, BuildError> {
        let mut built: Vec<BuiltBuildpack> = Vec::new();
        for chosen in self.group {
            let runner = &chosen.runner;
            let id = runner.id().clone();
            self.reporter.note(&format!(
                "building with {id}@{}",
                runner.manifest().buildpack.version
            ));
            let escaped = id.escaped();
            let layers_dir = self.layers_root.join(&escaped);
            std::fs::create_dir_all(&layers_dir).map_err(|source| BuildError::Io {
                id: id.clone(),
                source,
            })?;
            let layers_dir_guest = format!("{}/{escaped}", api::LAYERS_DIR);

            let mut build_env = EnvList::default();
            let mut build_layers = Vec::new();
            for earlier in &built {
                for l in earlier.layers.iter().filter(|l| l.layer.types.build) {
                    build_env.apply_layer(&l.layer, &l.host_path, &l.guest_path, EnvPhase::Build);
                    build_layers.push(Mount {
                        host: l.host_path.clone(),
                        guest: l.guest_path.clone(),
                    });
                }
            }
            let input = BuildInput {
                app_dir: self.app_dir.to_path_buf(),
                layers_dir: layers_dir.clone(),
                layers_dir_guest: layers_dir_guest.clone(),
                build_layers,
                platform_env: self.platform_env.clone(),
                build_env: build_env.to_map(),
                plan: chosen.plan.clone(),
                target: self.target.clone(),
            };
            let fail = |source| BuildError::Buildpack {
                id: id.clone(),
                source,
            };
            let output = runner.build(&input).map_err(fail)?;
            let mut layers = Vec::new();
            for layer in output.layers {
                if layers
                    .iter()
                    .any(|l: &BuiltLayer| l.layer.name == layer.name)
                {
                    return Err(fail(RunError::InvalidOutput(format!(
                        "layer {} declared twice",
                        layer.name
                    ))));
                }
                let host_path = layers_dir.join(layer.name.as_str());
                if !host_path.is_dir() {
                    return Err(fail(RunError::InvalidOutput(format!(
                        "layer {} was declared but its directory {layers_dir_guest}/{} does not exist",
                        layer.name, layer.name
                    ))));
                }
                let guest_path = format!("{layers_dir_guest}/{}", layer.name);
                layers.push(BuiltLayer {
                    layer,
                    host_path,
                    guest_path,
                });
            }
            // CNB: layers in name order within a buildpack.
            layers.sort_by(|a, b| a.layer.name.cmp(&b.layer.name));
            for p in &output.processes {
                if p.command.is_empty() {
                    return Err(fail(RunError::InvalidOutput(format!(
                        "process {} has an empty command",
                        p.kind
                    ))));
                }
            }
            built.push(BuiltBuildpack {
                runner: runner.clone(),
                layers,
                processes: output.processes,
                labels: output.labels,
            });
        }
        Ok(built)
    }
}
