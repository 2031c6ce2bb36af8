//! Build: run each chosen buildpack in group order. A buildpack sees the app
//! (writable), its own layers dir, and earlier buildpacks' build layers
//! read-only with their env applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::detect::Chosen;
use crate::api::{self, BuildInput, BuildpackRunner, Mount, RunError, Target};
use crate::cache::PreviousLayer;
use crate::contract;
use crate::env::{EnvList, EnvPhase, LayerDirs};
use crate::guest_tree::GuestTree;
use crate::ids::BuildpackId;
use crate::oci::layer::LayerBlob;
use crate::report::Reporter;

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
    /// What each member was granted, by id, which decides how much of its
    /// build env reaches the tools of later members ([`ToolEnv::between`]);
    /// an id not here is treated as app-named.
    pub standing: &'a BTreeMap<String, Standing>,
    pub reporter: &'a dyn Reporter,
}

/// What decides how far a member's build env reaches: where it came from
/// and what it may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// Named by the app (project.toml), not chosen by the platform.
    pub app_named: bool,
    /// May run a tool (see [`crate::capabilities::Grants::may_exec`]).
    pub may_exec: bool,
    /// Its tools get the network.
    pub network: bool,
}

/// How much of a buildpack's build env reaches the tools a later buildpack
/// execs. Every buildpack's build env reaches later buildpacks themselves
/// (wasm, sandboxed); tools are native code, so a `bin/` on their PATH or an
/// `LD_PRELOAD` runs the setter's code with the other's grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolEnv {
    /// All of it.
    All,
    /// Only [`TRUST_VARS`]: paths of CA bundles, read as certificates.
    TrustRoots,
    Nothing,
}

impl ToolEnv {
    /// How much of `setter`'s build env reaches `consumer`'s tools: none
    /// from an app-named buildpack; all from one that may run native code
    /// itself with at least the grants the consumer's tools have (else its
    /// code would gain the network through them); else only trust roots
    /// (the ca-certs buildpack points tools at a CA bundle).
    pub fn between(setter: Standing, consumer: Standing) -> Self {
        if setter.app_named {
            Self::Nothing
        } else if setter.may_exec && (setter.network || !consumer.network) {
            Self::All
        } else {
            Self::TrustRoots
        }
    }

    /// Whether variable `name` gets through.
    fn passes(self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::TrustRoots => TRUST_VARS.contains(&name),
            Self::Nothing => false,
        }
    }
}

/// Variables that say which certificates a tool trusts, never what code it
/// runs: what a buildpack that may not exec may set for others' tools.
pub const TRUST_VARS: [&str; 8] = [
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
    "CARGO_HTTP_CAINFO",
    "GIT_SSL_CAINFO",
    "CURL_CA_BUNDLE",
];

impl Build<'_> {
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
            let mut exec_env = Vec::new();
            let mut build_layers = Vec::new();
            for earlier in &built {
                let of = |id: &BuildpackId| {
                    self.standing.get(id.as_str()).copied().unwrap_or(Standing {
                        app_named: true,
                        ..Standing::default()
                    })
                };
                let to_tools = ToolEnv::between(of(earlier.runner.id()), of(&id));
                for l in earlier.layers.iter().filter(|l| l.layer.types.build) {
                    build_env.apply_layer(&l.layer, l.dirs, &l.guest_path, EnvPhase::Build);
                    let entries =
                        crate::env::layer_entries(&l.layer, l.dirs, &l.guest_path, EnvPhase::Build);
                    exec_env.extend(entries.into_iter().filter(|e| to_tools.passes(&e.name)));
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
                exec_env,
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
            contract::check_output(&output).map_err(fail)?;
            let mut declared = output
                .layers
                .into_iter()
                .map(|layer| built_layer(layer, &layers, &layers_dir_guest, previous))
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail)?;
            // CNB: layers in name order within a buildpack.
            declared.sort_by(|a, b| a.layer.name.cmp(&b.layer.name));
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
    let tree = if layer.reused {
        contract::layer_files(&layer, layers, &guest_path)?
    } else {
        Some(contract::fresh_layer_files(&layer, layers, &guest_path)?)
    };
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
        let t = tree.as_ref().expect("a fresh layer has its files");
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
    use crate::api::{BuildOutput, EnvEntry, EnvOp, EnvScope, Layer, LayerTypes};
    use crate::ids::LayerName;
    use crate::report::Silent;

    use crate::phase::fake::chosen;

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
            // Every member may exec: their build env reaches tools.
            standing: &group
                .iter()
                .map(|c| {
                    let may_exec = Standing {
                        may_exec: true,
                        ..Standing::default()
                    };
                    (c.runner.id().to_string(), may_exec)
                })
                .collect(),
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
            calls: Vec::new(),
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
        let tools: Vec<_> = seen
            .exec_env
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str(), e.op))
            .collect();
        assert_eq!(
            tools,
            [
                ("PATH", "/layers/a_jdk/jdk/bin", EnvOp::Prepend),
                ("JAVA_HOME", "/opt", EnvOp::Override)
            ],
            "tools get the same env, as operations on the build image's"
        );
    }

    #[test]
    fn a_buildpack_reaches_later_tools_only_as_far_as_its_own_grants() {
        let s = |app_named, may_exec, network| Standing {
            app_named,
            may_exec,
            network,
        };
        let tools = s(false, true, false);
        let online = s(false, true, true);
        assert_eq!(
            ToolEnv::between(s(true, true, true), tools),
            ToolEnv::Nothing
        );
        assert_eq!(ToolEnv::between(tools, tools), ToolEnv::All);
        assert_eq!(ToolEnv::between(online, online), ToolEnv::All);
        assert_eq!(
            ToolEnv::between(tools, online),
            ToolEnv::TrustRoots,
            "its code would gain the network"
        );
        assert_eq!(
            ToolEnv::between(s(false, false, false), tools),
            ToolEnv::TrustRoots
        );
    }

    #[test]
    fn a_buildpack_that_may_not_exec_sets_only_trust_roots_for_the_tools_of_later_ones() {
        let tmp = tempfile::tempdir().unwrap();
        // Each sets a bin/ (PATH), an LD_PRELOAD and a CA bundle.
        let setter = |id: &'static str| {
            chosen(id, move |input| {
                std::fs::create_dir_all(input.layers.path().join("l/bin")).unwrap();
                let var = |name: &str| EnvEntry {
                    name: name.into(),
                    value: format!("/layers/{id}/l/x"),
                    op: EnvOp::Override,
                    delim: None,
                    scope: EnvScope::Build,
                };
                Ok(BuildOutput {
                    layers: vec![layer(
                        "l",
                        LayerTypes {
                            build: true,
                            ..LayerTypes::default()
                        },
                        vec![var("LD_PRELOAD"), var("SSL_CERT_FILE")],
                    )],
                    ..BuildOutput::default()
                })
            })
        };
        let seen = Arc::new(Mutex::new(None));
        let record = seen.clone();
        let consumer = chosen("b/go", move |input| {
            *record.lock().unwrap() = Some(input.clone());
            Ok(BuildOutput::default())
        });
        // app/evil is app-named (nothing), a/certs may not exec (trust
        // roots only), b/go may exec.
        let standing = [
            ("a/certs".to_owned(), Standing::default()),
            (
                "b/go".to_owned(),
                Standing {
                    may_exec: true,
                    ..Standing::default()
                },
            ),
        ]
        .into_iter()
        .collect();
        Build {
            group: &[setter("app/evil"), setter("a/certs"), consumer],
            app: &Arc::new(GuestTree::open(tmp.path()).unwrap()),
            layers_root: &tmp.path().join("layers"),
            platform_env: &api::Env::new(),
            target: &Target::new("linux", "amd64"),
            restored: &BTreeMap::new(),
            max_layers_bytes: 0,
            standing: &standing,
            reporter: &Silent,
        }
        .run()
        .unwrap();
        let seen = seen.lock().unwrap().clone().unwrap();
        assert!(
            seen.build_env.contains_key("LD_PRELOAD") && seen.build_env.contains_key("PATH"),
            "the buildpack sees all of it"
        );
        let tools: Vec<_> = seen
            .exec_env
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            tools,
            [("SSL_CERT_FILE", "/layers/a/certs/l/x")],
            "its tools get one CA bundle: no bin/ on PATH, no LD_PRELOAD"
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
