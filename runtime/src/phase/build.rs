//! Build: run each chosen buildpack in group order. A buildpack sees the app
//! (writable), its own layers dir, and earlier buildpacks' build layers
//! read-only with their env applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::detect::Chosen;
use crate::api::{self, BuildInput, BuildpackRunner, Mount, RunError, Target};
use crate::cache::PreviousLayer;
use crate::env::{EnvList, EnvPhase, LayerDirs};
use crate::guest_tree::GuestTree;
use crate::ids::BuildpackId;
use crate::oci::layer::LayerBlob;
use crate::report::Reporter;

/// Label prefixes only the platform writes.
pub const RESERVED_LABELS: &[&str] = &["io.buildpacks.", "dev.cascade."];

/// A layer a buildpack declared, with where it lives.
#[derive(Debug, Clone)]
pub struct BuiltLayer {
    pub layer: api::Layer,
    /// Where its files are, for messages and tests; the host reaches them
    /// only through `tree`.
    pub host_path: PathBuf,
    /// Its files (absent for a reused launch-only layer).
    pub tree: Option<Arc<GuestTree>>,
    /// Its path in the sandbox and in the image (`/layers/<bp>/<name>`).
    pub guest_path: String,
    pub dirs: LayerDirs,
    /// The previous build's blob of this layer, when the buildpack reused it:
    /// export takes it as it is.
    pub reuse: Option<LayerBlob>,
}

/// One buildpack's contribution.
#[derive(Clone)]
pub struct BuiltBuildpack {
    pub runner: Arc<dyn BuildpackRunner>,
    /// Its layers dir (`/layers/<id>`).
    pub layers_dir: Arc<GuestTree>,
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
    /// The writable app copy.
    pub app: &'a Arc<GuestTree>,
    /// Host directory that stands for `/layers` (the host's: each buildpack
    /// gets only its own directory in it).
    pub layers_root: &'a Path,
    pub platform_env: &'a api::Env,
    pub target: &'a Target,
    /// Layers of the previous build, by buildpack (see [`crate::cache`]).
    pub restored: &'a BTreeMap<BuildpackId, Vec<PreviousLayer>>,
    /// Bytes one buildpack's layers dir may hold after its build (0: no
    /// bound): a buildpack that writes without end fails, naming itself.
    pub max_layers_bytes: u64,
    /// Buildpacks the app named itself (project.toml): their build env
    /// reaches later buildpacks, never later buildpacks' exec'd tools.
    pub app_named: &'a std::collections::BTreeSet<String>,
    pub reporter: &'a dyn Reporter,
}

impl Build<'_> {
    #[allow(clippy::too_many_lines)] // one buildpack's checks in order; split in the crate cut
    pub fn run(&self) -> Result<Vec<BuiltBuildpack>, BuildError> {
        let mut built: Vec<BuiltBuildpack> = Vec::new();
        for (i, chosen) in self.group.iter().enumerate() {
            let runner = &chosen.runner;
            let id = runner.id().clone();
            // Two members with one layers dir would share (and overwrite)
            // each other's layers.
            if self.group[..i]
                .iter()
                .any(|c| c.runner.id().escaped() == id.escaped())
            {
                return Err(BuildError::Buildpack {
                    id: id.clone(),
                    source: RunError::InvalidOutput(format!(
                        "another buildpack of the group has the layers dir of {id}"
                    )),
                });
            }
            self.reporter.note(&format!(
                "building with {id}@{}",
                runner.manifest().buildpack.version
            ));
            let escaped = id.escaped();
            let io = |source| BuildError::Io {
                id: id.clone(),
                source,
            };
            let layers = Arc::new(GuestTree::create(&self.layers_root.join(&escaped)).map_err(io)?);
            let layers_dir_guest = format!("{}/{escaped}", api::LAYERS_DIR);

            let mut build_env = EnvList::default();
            let mut exec_env = EnvList::default();
            let mut build_layers = Vec::new();
            for earlier in &built {
                let trusted = !self.app_named.contains(earlier.runner.id().as_str());
                for l in earlier.layers.iter().filter(|l| l.layer.types.build) {
                    build_env.apply_layer(&l.layer, l.dirs, &l.guest_path, EnvPhase::Build);
                    if trusted {
                        exec_env.apply_layer(&l.layer, l.dirs, &l.guest_path, EnvPhase::Build);
                    }
                    if let Some(tree) = &l.tree {
                        build_layers.push(Mount {
                            tree: tree.clone(),
                            guest: l.guest_path.clone(),
                        });
                    }
                }
            }
            let previous: &[PreviousLayer] = self.restored.get(&id).map_or(&[], Vec::as_slice);
            let input = BuildInput {
                app: self.app.clone(),
                layers: layers.clone(),
                layers_dir_guest: layers_dir_guest.clone(),
                build_layers,
                platform_env: self.platform_env.clone(),
                build_env: build_env.to_map(),
                exec_env: exec_env.to_map(),
                plan: chosen.plan.clone(),
                target: self.target.clone(),
                restored: previous.iter().map(|p| p.restored.clone()).collect(),
                max_write_bytes: self.max_layers_bytes,
            };
            let fail = |source| BuildError::Buildpack {
                id: id.clone(),
                source,
            };
            let output = runner.build(&input).map_err(fail)?;
            if self.max_layers_bytes > 0 {
                let used = layers
                    .bytes()
                    .map_err(|e| fail(RunError::InvalidOutput(e.to_string())))?;
                if used > self.max_layers_bytes {
                    return Err(fail(RunError::InvalidOutput(format!(
                        "its layers hold {} MiB, over the limit of {} MiB (--max-layers-mib)",
                        used >> 20,
                        self.max_layers_bytes >> 20
                    ))));
                }
            }
            let mut declared: Vec<BuiltLayer> = Vec::new();
            for layer in output.layers {
                if declared.iter().any(|l| l.layer.name == layer.name) {
                    return Err(fail(RunError::InvalidOutput(format!(
                        "layer {} declared twice",
                        layer.name
                    ))));
                }
                declared
                    .push(built_layer(layer, &layers, &layers_dir_guest, previous).map_err(fail)?);
            }
            // CNB: layers in name order within a buildpack.
            declared.sort_by(|a, b| a.layer.name.cmp(&b.layer.name));
            // The CNB and Cascade labels are written by export from what it
            // knows; a buildpack setting one would forge the image's record.
            if let Some((k, _)) = output
                .labels
                .iter()
                .find(|(k, _)| RESERVED_LABELS.iter().any(|p| k.starts_with(p)))
            {
                return Err(fail(RunError::InvalidOutput(format!(
                    "label {k}: labels under {} are the platform's, not a buildpack's",
                    RESERVED_LABELS.join(", ")
                ))));
            }
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
                layers_dir: layers.clone(),
                layers: declared,
                processes: output.processes,
                labels: output.labels,
            });
        }
        Ok(built)
    }
}

/// Check one declared layer against what is on disk and what was restored,
/// and say where its files, env facts and (when reused) blob come from.
fn built_layer(
    layer: api::Layer,
    layers: &GuestTree,
    layers_dir_guest: &str,
    previous: &[PreviousLayer],
) -> Result<BuiltLayer, RunError> {
    let invalid = |message: String| Err(RunError::InvalidOutput(message));
    let name = &layer.name;
    let host_path = layers.path().join(name.as_str());
    let guest_path = format!("{layers_dir_guest}/{name}");
    // A layer's files are a real directory of the buildpack's: a link in
    // its place (to a host directory, say) is refused, never followed.
    let tree = match layers.subtree(name.as_str()) {
        Ok(t) => Some(Arc::new(t)),
        Err(_) if !layers.exists(name.as_str()) => None,
        Err(e) => {
            return invalid(format!(
                "layer {name}: its directory {guest_path} is not a real directory ({e})"
            ));
        }
    };
    if let Some(sbom) = &layer.sbom {
        let doc: Result<serde_json::Value, _> = serde_json::from_str(sbom);
        if !doc.is_ok_and(|d| d["bomFormat"] == "CycloneDX") {
            return invalid(format!(
                "the SBOM of layer {name} is not a CycloneDX JSON document"
            ));
        }
    }
    let (dirs, reuse) = if layer.reused {
        let Some(prev) = previous.iter().find(|p| &p.restored.name == name) else {
            return invalid(format!(
                "layer {name} is marked reused, but the previous build left no layer {name}"
            ));
        };
        if (layer.types.build || layer.types.cache) && !prev.restored.has_files {
            return invalid(format!(
                "layer {name} is marked reused as a build or cache layer, but only its metadata was restored"
            ));
        }
        let reuse = prev.blob.clone().filter(|_| layer.types.launch);
        if layer.types.launch && reuse.is_none() && !prev.restored.has_files {
            return invalid(format!(
                "layer {name} is marked reused, but neither its files nor its blob are left"
            ));
        }
        let dirs = match (&tree, prev.restored.has_files) {
            (Some(t), true) => LayerDirs::of(t),
            (None, true) => {
                return invalid(format!(
                    "layer {name} is marked reused, but its directory {guest_path} is gone"
                ));
            }
            _ => prev.dirs,
        };
        (dirs, reuse)
    } else {
        let Some(t) = &tree else {
            return invalid(format!(
                "layer {name} was declared but its directory {guest_path} does not exist"
            ));
        };
        (LayerDirs::of(t), None)
    };
    Ok(BuiltLayer {
        layer,
        host_path,
        tree,
        guest_path,
        dirs,
        reuse,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::api::{
        BuildOutput, DetectInput, DetectOutcome, EnvEntry, EnvOp, EnvScope, Layer, LayerTypes,
    };
    use crate::ids::LayerName;
    use crate::manifest::BuildpackManifest;
    use crate::report::Silent;

    type BuildFn = Box<dyn Fn(&BuildInput) -> Result<BuildOutput, RunError> + Send + Sync>;

    /// A buildpack whose build is a closure: phase logic without wasm.
    struct Fake(BuildpackManifest, BuildFn);

    impl BuildpackRunner for Fake {
        fn manifest(&self) -> &BuildpackManifest {
            &self.0
        }
        fn detect(&self, _: &DetectInput) -> Result<DetectOutcome, RunError> {
            unreachable!()
        }
        fn build(&self, input: &BuildInput) -> Result<BuildOutput, RunError> {
            (self.1)(input)
        }
    }

    fn chosen(
        id: &str,
        build: impl Fn(&BuildInput) -> Result<BuildOutput, RunError> + Send + Sync + 'static,
    ) -> Chosen {
        let text = format!("api = \"0.12\"\n[buildpack]\nid = \"{id}\"\nversion = \"1\"\n");
        let manifest = BuildpackManifest::parse(&text, id).unwrap();
        Chosen {
            runner: Arc::new(Fake(manifest, Box::new(build))),
            plan: Vec::new(),
        }
    }

    fn layer(name: &str, types: LayerTypes, env: Vec<EnvEntry>) -> Layer {
        Layer {
            name: LayerName::new(name).unwrap(),
            types,
            metadata: toml::Table::new(),
            env,
            reused: false,
            sbom: None,
        }
    }

    fn run(group: &[Chosen], root: &Path) -> Result<Vec<BuiltBuildpack>, BuildError> {
        run_with(group, root, &BTreeMap::new())
    }

    fn run_with(
        group: &[Chosen],
        root: &Path,
        restored: &BTreeMap<BuildpackId, Vec<PreviousLayer>>,
    ) -> Result<Vec<BuiltBuildpack>, BuildError> {
        Build {
            group,
            app: &Arc::new(GuestTree::open(root).unwrap()),
            layers_root: &root.join("layers"),
            platform_env: &api::Env::new(),
            target: &Target::new("linux", "amd64"),
            restored,
            max_layers_bytes: 0,
            app_named: &std::collections::BTreeSet::new(),
            reporter: &Silent,
        }
        .run()
    }

    const LAUNCH: LayerTypes = LayerTypes {
        launch: true,
        build: false,
        cache: false,
    };

    fn reused(name: &str, types: LayerTypes) -> Layer {
        Layer {
            reused: true,
            ..layer(name, types, Vec::new())
        }
    }

    #[test]
    fn a_layer_marked_reused_with_nothing_restored_is_invalid_output() {
        let tmp = tempfile::tempdir().unwrap();
        let liar = chosen("a/liar", |_| {
            Ok(BuildOutput {
                layers: vec![reused("deps", LAUNCH)],
                ..BuildOutput::default()
            })
        });
        let err = run(&[liar], tmp.path()).err().unwrap().to_string();
        assert!(
            err.contains("marked reused") && err.contains("deps"),
            "{err}"
        );
    }

    #[test]
    fn a_reused_launch_only_layer_keeps_its_blob_and_its_bin_dir_without_files() {
        let tmp = tempfile::tempdir().unwrap();
        let blob = LayerBlob {
            digest: format!("sha256:{}", "1".repeat(64)).parse().unwrap(),
            diff_id: format!("sha256:{}", "2".repeat(64)).parse().unwrap(),
            size: 7,
            compression: crate::oci::compress::Compression::Gzip,
        };
        let previous = PreviousLayer {
            restored: api::RestoredLayer {
                name: LayerName::new("rt").unwrap(),
                types: LAUNCH,
                metadata: toml::Table::new(),
                has_files: false,
            },
            blob: Some(blob.clone()),
            dirs: LayerDirs {
                bin: true,
                lib: false,
            },
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let bp = chosen("a/rt", move |input| {
            record.lock().unwrap().clone_from(&input.restored);
            Ok(BuildOutput {
                layers: vec![reused("rt", LAUNCH)],
                ..BuildOutput::default()
            })
        });
        let restored =
            BTreeMap::from([(BuildpackId::new("a/rt").unwrap(), vec![previous.clone()])]);
        let built = run_with(&[bp], tmp.path(), &restored).unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![previous.restored]);
        let l = &built[0].layers[0];
        assert_eq!(l.reuse.as_ref(), Some(&blob));
        assert!(
            l.dirs.bin,
            "bin/ comes from the record, not the (absent) files"
        );

        // Declared as a cache layer, metadata alone cannot stand for it.
        let greedy = chosen("a/rt", |_| {
            Ok(BuildOutput {
                layers: vec![reused(
                    "rt",
                    LayerTypes {
                        cache: true,
                        ..LAUNCH
                    },
                )],
                ..BuildOutput::default()
            })
        });
        let err = run_with(&[greedy], tmp.path(), &restored)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("only its metadata was restored"), "{err}");
    }

    #[test]
    fn later_buildpacks_see_earlier_build_layers_and_their_env() {
        let tmp = tempfile::tempdir().unwrap();
        let jdk = chosen("a/jdk", |input| {
            std::fs::create_dir_all(input.layers.path().join("jdk/bin")).unwrap();
            let entry = |scope, name: &str| EnvEntry {
                name: name.into(),
                value: "/opt".into(),
                op: EnvOp::Override,
                delim: None,
                scope,
            };
            let env = vec![
                entry(EnvScope::Build, "JAVA_HOME"),
                entry(EnvScope::Launch, "LAUNCH_ONLY"),
            ];
            Ok(BuildOutput {
                layers: vec![layer(
                    "jdk",
                    LayerTypes {
                        build: true,
                        ..LayerTypes::default()
                    },
                    env,
                )],
                ..BuildOutput::default()
            })
        });
        let seen = Arc::new(Mutex::new(None));
        let record = seen.clone();
        let consumer = chosen("b/consumer", move |input| {
            *record.lock().unwrap() = Some(input.clone());
            Ok(BuildOutput::default())
        });
        let built = run(&[jdk, consumer], tmp.path()).unwrap();
        assert_eq!(built[0].layers[0].guest_path, "/layers/a_jdk/jdk");
        let seen = seen.lock().unwrap().clone().unwrap();
        assert_eq!(seen.layers_dir_guest, "/layers/b_consumer");
        assert_eq!(seen.build_layers.len(), 1);
        assert_eq!(seen.build_layers[0].guest, "/layers/a_jdk/jdk");
        assert_eq!(
            seen.build_env.get("PATH").map(String::as_str),
            Some("/layers/a_jdk/jdk/bin")
        );
        assert_eq!(
            seen.build_env.get("JAVA_HOME").map(String::as_str),
            Some("/opt")
        );
        assert!(!seen.build_env.contains_key("LAUNCH_ONLY"));
        assert_eq!(seen.exec_env, seen.build_env, "tools get the same env");
    }

    #[test]
    fn an_app_named_buildpack_sets_no_env_for_the_tools_of_later_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let preload = chosen("app/evil", |input| {
            std::fs::create_dir_all(input.layers.path().join("lib")).unwrap();
            Ok(BuildOutput {
                layers: vec![layer(
                    "lib",
                    LayerTypes {
                        build: true,
                        ..LayerTypes::default()
                    },
                    vec![EnvEntry {
                        name: "LD_PRELOAD".into(),
                        value: "/layers/app_evil/lib/x.so".into(),
                        op: EnvOp::Override,
                        delim: None,
                        scope: EnvScope::Build,
                    }],
                )],
                ..BuildOutput::default()
            })
        });
        let seen = Arc::new(Mutex::new(None));
        let record = seen.clone();
        let consumer = chosen("b/go", move |input| {
            *record.lock().unwrap() = Some(input.clone());
            Ok(BuildOutput::default())
        });
        let app_named = ["app/evil".to_owned()].into_iter().collect();
        Build {
            group: &[preload, consumer],
            app: &Arc::new(GuestTree::open(tmp.path()).unwrap()),
            layers_root: &tmp.path().join("layers"),
            platform_env: &api::Env::new(),
            target: &Target::new("linux", "amd64"),
            restored: &BTreeMap::new(),
            max_layers_bytes: 0,
            app_named: &app_named,
            reporter: &Silent,
        }
        .run()
        .unwrap();
        let seen = seen.lock().unwrap().clone().unwrap();
        assert!(
            seen.build_env.contains_key("LD_PRELOAD"),
            "the buildpack sees it"
        );
        assert!(
            !seen.exec_env.contains_key("LD_PRELOAD"),
            "its tools do not: {:?}",
            seen.exec_env
        );
    }

    #[test]
    fn a_declared_layer_without_a_directory_is_invalid_output() {
        let tmp = tempfile::tempdir().unwrap();
        let liar = chosen("a/liar", |_| {
            let ghost = layer(
                "ghost",
                LayerTypes {
                    launch: true,
                    ..LayerTypes::default()
                },
                Vec::new(),
            );
            Ok(BuildOutput {
                layers: vec![ghost],
                ..BuildOutput::default()
            })
        });
        let err = run(&[liar], tmp.path()).err().unwrap().to_string();
        assert!(err.contains("a/liar") && err.contains("ghost"), "{err}");
    }
}
