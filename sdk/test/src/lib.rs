//! Test harness for Cascade buildpacks.
//!
//! It runs a buildpack component in-process, in the same sandbox `cascade
//! build` uses, against a fixture app: detect in a few milliseconds, build
//! with its layers, env, processes and logs laid out for assertions, its
//! output held to the checks `cascade build` makes. No Docker, no daemon, no
//! image to pull.
//!
//! It depends on the engine (`cascade-engine`) and nothing above it: a
//! buildpack's tests compile no OCI client, registry code or CLI. A whole
//! build into an image is `cascade build`'s, tested end to end there.
//!
//! ```no_run
//! use cascade_test::BuildpackTest;
//!
//! #[test]
//! fn greets() {
//!     // Builds this crate for wasm32-wasip2 once per test process.
//!     let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
//!     bp.detect("tests/fixtures/app").assert_pass();
//!     let out = bp.build("tests/fixtures/app");
//!     out.layer("greeting").assert_launch().assert_file("motd", "hello\n");
//!     out.process("web").assert_default();
//! }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cascade_engine::api::{
    self, BuildInput, BuildpackRunner, DetectInput, DetectOutcome, Env, Target,
};
use cascade_engine::contract;
use cascade_engine::ids::BuildpackId;
use cascade_engine::progress::{LogLevel, Reporter};
use cascade_engine::wasm::{Engine, Limits, WasmBuildpack};
use cascade_fs::GuestTree;

/// A fixture app made on the spot: a temporary directory holding `files`
/// (relative path, text), parent directories created. Removed on drop.
pub fn app(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("creating the fixture's directories");
        }
        std::fs::write(&path, text).expect("writing a fixture file");
    }
    dir
}

/// Collects what buildpacks log, for assertions.
#[derive(Default)]
struct Logs(Mutex<Vec<String>>);

impl Reporter for Logs {
    fn phase(&self, _: &str) {}
    fn note(&self, _: &str) {}
    fn buildpack_log(&self, _: &BuildpackId, level: LogLevel, message: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{level:?}: {message}").to_lowercase());
    }
    fn buildpack_output(&self, _: &BuildpackId, stream: &str, text: &str) {
        self.0.lock().unwrap().push(format!("{stream}: {text}"));
    }
}

/// An engine of its own per buildpack under test, so tests running in
/// parallel keep their logs apart. Compiled components are cached on disk
/// by digest, so only the first test run compiles.
fn engine() -> (Arc<Engine>, Arc<Logs>) {
    let logs = Arc::new(Logs::default());
    let cache = std::env::temp_dir().join("cascade-test-components");
    let engine = Engine::new(Limits::default(), Some(cache), logs.clone())
        .expect("configuring the wasm engine");
    (Arc::new(engine), logs)
}

/// A buildpack under test.
pub struct BuildpackTest {
    runner: Arc<WasmBuildpack>,
    logs: Arc<Logs>,
    platform_env: Env,
    target: Target,
}

impl BuildpackTest {
    /// Build the buildpack crate at `dir` (normally
    /// `env!("CARGO_MANIFEST_DIR")`) for `wasm32-wasip2` and load it. The
    /// cargo build runs once per crate per test process, into
    /// `cascade-test-wasm/` under the crate's target dir, which every
    /// buildpack crate of a workspace shares.
    pub fn from_crate(dir: impl AsRef<Path>) -> Self {
        static BUILT: OnceLock<Mutex<BTreeMap<PathBuf, PathBuf>>> = OnceLock::new();
        let dir = dir.as_ref().to_path_buf();
        let built = BUILT.get_or_init(Mutex::default);
        let mut built = built.lock().unwrap();
        let wasm = built
            .entry(dir.clone())
            .or_insert_with(|| {
                // Not the target dir itself: the `cargo test` running this
                // holds its lock.
                let target = target_dir(&dir).join("cascade-test-wasm");
                cascade_engine::cargo::build_component(&dir, Some(&target))
                    .unwrap_or_else(|e| panic!("building the buildpack: {e}"))
            })
            .clone();
        drop(built);
        Self::from_file(wasm)
    }

    /// Load a built component.
    pub fn from_file(wasm: impl AsRef<Path>) -> Self {
        let wasm = wasm.as_ref();
        let (engine, logs) = engine();
        let runner = engine
            .load_file(wasm)
            .unwrap_or_else(|e| panic!("loading {}: {e}", wasm.display()));
        Self {
            runner: Arc::new(runner),
            logs,
            platform_env: Env::new(),
            target: Target::new("linux", "amd64"),
        }
    }

    /// A platform variable, as `cascade build --env K=V` sets it.
    #[must_use]
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.platform_env.insert(name.into(), value.into());
        self
    }

    /// The target platform (default linux/amd64).
    #[must_use]
    pub fn target(mut self, os: &str, arch: &str) -> Self {
        self.target = Target::new(os, arch);
        self
    }

    pub fn id(&self) -> String {
        self.runner.id().to_string()
    }

    /// Run `detect` against the app at `app` (read-only, as in a build).
    pub fn detect(&self, app: impl AsRef<Path>) -> Detected {
        let tree = GuestTree::open_named(app.as_ref())
            .unwrap_or_else(|e| panic!("the app {}: {e}", app.as_ref().display()));
        let input = DetectInput {
            app: Arc::new(tree),
            platform_env: self.platform_env.clone(),
            target: self.target.clone(),
        };
        let outcome = self
            .runner
            .detect(&input)
            .unwrap_or_else(|e| panic!("{} failed in detect: {e}", self.id()));
        Detected(outcome)
    }

    /// Run `build` against a private copy of the app at `app`; panics with
    /// the buildpack's error if it fails (see [`BuildpackTest::try_build`]).
    pub fn build(&self, app: impl AsRef<Path>) -> Built {
        self.try_build(app)
            .unwrap_or_else(|e| panic!("{} failed in build: {e}", self.id()))
    }

    /// Run `build`; the error is the one `cascade build` would print for
    /// this buildpack alone (the same checks of its output:
    /// [`cascade_engine::contract`]).
    pub fn try_build(&self, app: impl AsRef<Path>) -> Result<Built, String> {
        let dir = tempfile::tempdir().expect("a temp dir");
        let workspace = dir.path().join("workspace");
        copy_dir(app.as_ref(), &workspace);
        let escaped = self.runner.id().escaped();
        let layers_host = dir.path().join("layers").join(&escaped);
        let layers = Arc::new(GuestTree::create(&layers_host).expect("a layers dir"));
        let layers_dir_guest = format!("{}/{escaped}", api::LAYERS_DIR);
        self.logs.0.lock().unwrap().clear();
        let input = BuildInput {
            app: Arc::new(GuestTree::open(&workspace).expect("the workspace")),
            layers: layers.clone(),
            layers_dir_guest: layers_dir_guest.clone(),
            build_layers: Vec::new(),
            platform_env: self.platform_env.clone(),
            build_env: Env::new(),
            exec_env: Vec::new(),
            plan: Vec::new(),
            target: self.target.clone(),
            restored: Vec::new(),
            max_write_bytes: 0,
        };
        let failed = |e: &dyn std::fmt::Display| format!("buildpack {} failed: {e}", self.id());
        let output = self.runner.build(&input).map_err(|e| failed(&e))?;
        contract::check_output(&output).map_err(|e| failed(&e))?;
        let mut built_layers = Vec::new();
        for layer in output.layers {
            let guest_path = format!("{layers_dir_guest}/{}", layer.name);
            // Nothing was restored, so nothing can be reused: every layer
            // declared must have been made.
            if layer.reused {
                return Err(failed(&api::RunError::InvalidOutput(format!(
                    "layer {0} is marked reused, but the previous build left no layer {0}",
                    layer.name
                ))));
            }
            contract::fresh_layer_files(&layer, &layers, &guest_path).map_err(|e| failed(&e))?;
            built_layers.push(BuiltLayer {
                path: layers_host.join(layer.name.as_str()),
                layer,
            });
        }
        // CNB: layers in name order within a buildpack.
        built_layers.sort_by(|a, b| a.layer.name.cmp(&b.layer.name));
        Ok(Built {
            layers: built_layers,
            processes: output.processes,
            labels: output.labels,
            logs: self.logs.0.lock().unwrap().clone(),
            app: workspace,
            _dir: dir,
        })
    }
}

/// The target dir cargo builds the crate at `dir` into (its workspace's,
/// `CARGO_TARGET_DIR` and config included), as `cargo metadata` says.
fn target_dir(dir: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(dir)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .unwrap_or_else(|e| panic!("running cargo metadata in {}: {e}", dir.display()));
    assert!(
        out.status.success(),
        "cargo metadata in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .expect("cargo metadata names the target directory")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("fixture app {}: {e}", from.display()))
    {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_dir(&entry.path(), &dest);
        } else if kind.is_symlink() {
            // As `cascade build` copies the app: links stay links.
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// What `detect` said.
#[derive(Debug)]
pub struct Detected(pub DetectOutcome);

impl Detected {
    #[track_caller]
    pub fn assert_pass(&self) -> &Self {
        assert!(
            matches!(self.0, DetectOutcome::Pass(_)),
            "expected detect to pass, it said {:?}",
            self.0
        );
        self
    }

    /// Assert a fail whose reason contains `reason`.
    #[track_caller]
    pub fn assert_fail(&self, reason: &str) -> &Self {
        match &self.0 {
            DetectOutcome::Fail(r) => assert!(r.contains(reason), "failed with {r:?}"),
            DetectOutcome::Pass(_) => panic!("expected detect to fail, it passed"),
        }
        self
    }

    /// The plans (primary first) when it passed.
    pub fn plans(&self) -> &[api::BuildPlan] {
        match &self.0 {
            DetectOutcome::Pass(p) => p,
            DetectOutcome::Fail(_) => &[],
        }
    }
}

/// What `build` produced.
pub struct Built {
    layers: Vec<BuiltLayer>,
    processes: Vec<api::Process>,
    labels: Vec<(String, String)>,
    logs: Vec<String>,
    app: PathBuf,
    _dir: tempfile::TempDir,
}

impl Built {
    /// A declared layer; panics listing the declared ones when absent.
    #[track_caller]
    pub fn layer(&self, name: &str) -> LayerView<'_> {
        let found = self.layers.iter().find(|l| l.layer.name.as_str() == name);
        match found {
            Some(l) => LayerView(l),
            None => panic!(
                "no layer {name}; declared: {:?}",
                self.layers
                    .iter()
                    .map(|l| l.layer.name.to_string())
                    .collect::<Vec<_>>()
            ),
        }
    }

    /// Names of the declared layers, sorted.
    pub fn layer_names(&self) -> Vec<String> {
        self.layers
            .iter()
            .map(|l| l.layer.name.to_string())
            .collect()
    }

    #[track_caller]
    pub fn process(&self, kind: &str) -> ProcessView<'_> {
        let found = self.processes.iter().find(|p| p.kind.as_str() == kind);
        match found {
            Some(p) => ProcessView(p),
            None => panic!(
                "no process {kind}; declared: {:?}",
                self.processes
                    .iter()
                    .map(|p| p.kind.to_string())
                    .collect::<Vec<_>>()
            ),
        }
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// What the buildpack logged (`info: ...`, `warn: ...`) and printed.
    pub fn logs(&self) -> &[String] {
        &self.logs
    }

    /// The app dir after build (a buildpack may write it).
    pub fn app_dir(&self) -> &Path {
        &self.app
    }
}

/// A declared layer and where its files are.
struct BuiltLayer {
    layer: api::Layer,
    path: PathBuf,
}

/// One layer, for assertions.
pub struct LayerView<'a>(&'a BuiltLayer);

impl LayerView<'_> {
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    pub fn metadata(&self) -> &toml::Table {
        &self.0.layer.metadata
    }

    /// A file of the layer, as text.
    #[track_caller]
    pub fn file(&self, rel: &str) -> String {
        let path = self.0.path.join(rel);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("layer {}: {rel}: {e}", self.0.layer.name))
    }

    #[track_caller]
    pub fn assert_file(&self, rel: &str, content: &str) -> &Self {
        assert_eq!(
            self.file(rel),
            content,
            "layer {}: {rel}",
            self.0.layer.name
        );
        self
    }

    #[track_caller]
    fn assert_type(&self, set: bool, kind: &str) -> &Self {
        assert!(set, "layer {} is not {kind}", self.0.layer.name);
        self
    }

    #[track_caller]
    pub fn assert_launch(&self) -> &Self {
        self.assert_type(self.0.layer.types.launch, "launch")
    }

    #[track_caller]
    pub fn assert_build(&self) -> &Self {
        self.assert_type(self.0.layer.types.build, "build")
    }

    #[track_caller]
    pub fn assert_cache(&self) -> &Self {
        self.assert_type(self.0.layer.types.cache, "cache")
    }

    /// The value an env entry of the layer sets for `name`, whatever its op.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.0
            .layer
            .env
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.value.as_str())
    }

    #[track_caller]
    pub fn assert_env(&self, name: &str, value: &str) -> &Self {
        assert_eq!(
            self.env(name),
            Some(value),
            "layer {}: env {name}",
            self.0.layer.name
        );
        self
    }

    /// The layer's CycloneDX SBOM, if it declared one.
    pub fn sbom(&self) -> Option<&str> {
        self.0.layer.sbom.as_deref()
    }
}

/// One process, for assertions.
pub struct ProcessView<'a>(&'a api::Process);

impl ProcessView<'_> {
    pub fn command(&self) -> &[String] {
        &self.0.command
    }

    #[track_caller]
    pub fn assert_command(&self, command: &[&str]) -> &Self {
        assert_eq!(self.0.command, command, "process {}", self.0.kind);
        self
    }

    #[track_caller]
    pub fn assert_default(&self) -> &Self {
        assert!(self.0.default, "process {} is not the default", self.0.kind);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buildpack crate of this workspace.
    fn workspace_crate(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(rel)
    }

    fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            std::fs::write(dir.path().join(path), text).unwrap();
        }
        dir
    }

    #[test]
    fn runs_a_first_party_buildpack_in_process() {
        let bp = BuildpackTest::from_crate(workspace_crate("buildpacks/procfile"));
        bp.detect(fixture(&[]).path()).assert_fail("Procfile");
        let app = fixture(&[("Procfile", "web: ./server --port $PORT\nworker: ./work\n")]);
        bp.detect(app.path()).assert_pass();
        let out = bp.build(app.path());
        out.process("web").assert_default();
        out.process("worker").assert_command(&["./work"]);
    }

    #[test]
    fn shows_layers_env_and_logs() {
        let bp = BuildpackTest::from_crate(workspace_crate("tests/buildpacks/deps"));
        let app = fixture(&[("deps.lock", "size-mib = 1\nseed = \"t\"\n")]);
        let out = bp.build(app.path());
        assert_eq!(out.layer_names(), ["deps", "runtime", "toolchain"]);
        out.layer("deps")
            .assert_launch()
            .assert_cache()
            .assert_env("DEPS_HOME", "/layers/test_deps/deps");
        assert!(out.layer("deps").sbom().unwrap().contains("CycloneDX"));
        out.layer("runtime").assert_file("VERSION", "2.1\n");
        out.layer("toolchain").assert_build();
        assert!(
            out.logs().iter().any(|l| l == "info: built deps (1 mib)"),
            "{:?}",
            out.logs()
        );
        let forgot = bp.build(fixture(&[("deps.lock", "forget = \"scratch\"\n")]).path());
        assert!(
            forgot
                .logs()
                .iter()
                .any(|l| l
                    .starts_with("warn: layer scratch was made but is not in the build result")),
            "{:?}",
            forgot.logs()
        );
        assert_eq!(forgot.layer_names(), ["deps", "runtime", "toolchain"]);
        let err = bp
            .try_build(fixture(&[("deps.lock", "not toml")]).path())
            .err()
            .unwrap();
        assert!(err.contains("deps.lock"), "{err}");
    }
}
