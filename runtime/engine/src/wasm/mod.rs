//! The wasm host: a wasmtime engine configured for determinism, a disk cache
//! of compiled components, and [`WasmBuildpack`], the wasm implementation of
//! [`BuildpackRunner`].

mod bindings;
mod output;
mod quota;
mod sandbox;
pub mod wasm_config;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Store, Trap};
use wasmtime_wasi::FsPerms;

use crate::api::{BuildInput, BuildOutput, BuildpackRunner, DetectInput, DetectOutcome, RunError};
use crate::capabilities::CapabilityUse;
use crate::manifest::{BuildpackManifest, ManifestError};
use crate::progress::Reporter;
use bindings::{Buildpack as Bindings, BuildpackPre};
pub use sandbox::{GUEST_CLOCK_EPOCH, Limits};
use sandbox::{Preopens, State};

/// How often the epoch ticks; deadlines are counted in ticks.
const TICK: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{source_name}: cannot read: {source}")]
    Read {
        source_name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{source_name}: not a valid buildpack component: {message}")]
    Compile {
        source_name: String,
        message: String,
    },
    #[error("configuring wasmtime: {0}")]
    Config(String),
}

/// Compiles and runs buildpack components. One per process; cheap to share.
pub struct Engine {
    wasm: wasmtime::Engine,
    linker: Linker<State>,
    limits: Limits,
    cache_dir: Option<PathBuf>,
    reporter: Arc<dyn Reporter>,
    ticker_stop: Arc<AtomicBool>,
    capabilities: Arc<CapabilityHost>,
    prebuilt: Option<Prebuilt>,
}

/// Where compiled code of known components comes from without compiling
/// (the `cascade` binary carries its built-in buildpacks' code): a lookup by
/// the component's sha256 (hex).
#[derive(Clone, Copy)]
pub struct Prebuilt(fn(&str) -> Option<&'static [u8]>);

impl Prebuilt {
    /// # Safety
    ///
    /// Every slice `lookup` returns must be what `wasmtime`'s
    /// `Engine::precompile_component` made, from exactly the component bytes
    /// of that sha256, with this crate's wasmtime (the same version and cargo
    /// features) and [`wasm_config::wasm_config`]: it is loaded without
    /// being checked (wasmtime still refuses another version, CPU or OS).
    #[allow(unsafe_code)]
    pub const unsafe fn trusting(lookup: fn(&str) -> Option<&'static [u8]>) -> Self {
        Self(lookup)
    }
}

/// What the platform granted, the fetch cache, and a record of every
/// capability call (for the build report and progress output).
#[derive(Debug)]
pub struct CapabilityHost {
    /// Behind a lock only so that buildpacks the app names can be marked
    /// once they are loaded (see [`Self::mark_app_named`]).
    grants: std::sync::RwLock<crate::capabilities::Grants>,
    pub fetcher: Option<crate::fetch::Fetcher>,
    pub exec: crate::exec::ExecPolicy,
    /// What one unpack may write at most, whatever the buildpack asks for.
    pub unpack_limits: crate::archive::Limits,
    used: std::sync::Mutex<Vec<CapabilityUse>>,
    warnings: std::sync::Mutex<Vec<String>>,
}

/// The host's own bound on one unpack (a buildpack may ask for less).
pub const UNPACK_LIMITS: crate::archive::Limits = crate::archive::Limits {
    max_bytes: 8 << 30,
    max_entries: 1_000_000,
};

impl CapabilityHost {
    pub fn new(
        grants: crate::capabilities::Grants,
        fetcher: Option<crate::fetch::Fetcher>,
        exec: crate::exec::ExecPolicy,
    ) -> Self {
        Self {
            grants: std::sync::RwLock::new(grants),
            fetcher,
            exec,
            unpack_limits: UNPACK_LIMITS,
            used: std::sync::Mutex::default(),
            warnings: std::sync::Mutex::default(),
        }
    }

    /// Nothing granted: what a test engine or a `--deny-all` build gets.
    pub fn deny_all() -> Self {
        Self::new(
            crate::capabilities::Grants::default(),
            None,
            crate::exec::ExecPolicy::default(),
        )
    }

    /// The platform's grants.
    pub fn grants(&self) -> std::sync::RwLockReadGuard<'_, crate::capabilities::Grants> {
        self.grants.read().expect("not poisoned")
    }

    /// Buildpack `id` was named by the app (`project.toml`): it gets only
    /// grants that name it.
    pub fn mark_app_named(&self, id: &str) {
        self.grants
            .write()
            .expect("not poisoned")
            .mark_app_named(id);
    }

    pub fn record(&self, u: CapabilityUse) {
        self.used.lock().expect("not poisoned").push(u);
    }

    /// Note a warning for the report; false when it was already noted.
    pub fn warn(&self, warning: &str) -> bool {
        let mut w = self.warnings.lock().expect("not poisoned");
        if w.iter().any(|x| x == warning) {
            return false;
        }
        w.push(warning.to_owned());
        true
    }

    /// The warnings so far, in order.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().expect("not poisoned").clone()
    }

    /// Every capability call so far, in order.
    pub fn used(&self) -> Vec<CapabilityUse> {
        self.used.lock().expect("not poisoned").clone()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Engine {
    /// `cache_dir`: where compiled components are kept (`None`: compile every
    /// time).
    pub fn new(
        limits: Limits,
        cache_dir: Option<PathBuf>,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Self, EngineError> {
        let config = wasm_config::wasm_config();
        let engine =
            wasmtime::Engine::new(&config).map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| EngineError::Config(format!("{e:#}")))?;
        Bindings::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| EngineError::Config(format!("{e:#}")))?;

        // Epoch deadlines need a ticking epoch; a weak handle lets the thread
        // end with the engine.
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (stop, weak) = (ticker_stop.clone(), engine.weak());
        std::thread::Builder::new()
            .name("cascade-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| EngineError::Config(e.to_string()))?;
        Ok(Self {
            wasm: engine,
            linker,
            limits,
            cache_dir,
            reporter,
            ticker_stop,
            capabilities: Arc::new(CapabilityHost::deny_all()),
            prebuilt: None,
        })
    }

    /// Take compiled code from `prebuilt` when it has the component's.
    #[must_use]
    pub fn with_prebuilt(mut self, prebuilt: Prebuilt) -> Self {
        self.prebuilt = Some(prebuilt);
        self
    }

    /// Grant capabilities (by default nothing is granted).
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Arc<CapabilityHost>) -> Self {
        self.capabilities = capabilities;
        self
    }

    pub fn capabilities(&self) -> &Arc<CapabilityHost> {
        &self.capabilities
    }

    /// Load a buildpack from a `.wasm` file.
    pub fn load_file(self: &Arc<Self>, path: &Path) -> Result<WasmBuildpack, EngineError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| EngineError::Read {
            source_name: name.clone(),
            source,
        })?;
        self.load(&bytes, &name)
    }

    /// Load a buildpack from component bytes. The manifest is read before
    /// anything is compiled; the compiled form comes from the cache when the
    /// same bytes were compiled by this engine version before.
    pub fn load(
        self: &Arc<Self>,
        bytes: &[u8],
        source_name: &str,
    ) -> Result<WasmBuildpack, EngineError> {
        let manifest = BuildpackManifest::from_component(bytes, source_name)?;
        let started = std::time::Instant::now();
        // Hashed once: the key of the prebuilt code and of the cache.
        let digest = cascade_digest::Digest::of(bytes);
        let (component, how) = self.compile(bytes, digest.hex(), source_name)?;
        self.reporter.note(&format!(
            "{how} {}@{} in {:.1} ms",
            manifest.buildpack.id,
            manifest.buildpack.version,
            started.elapsed().as_secs_f64() * 1000.0
        ));
        let compile_err = |e: wasmtime::Error| EngineError::Compile {
            source_name: source_name.into(),
            message: format!("{e:#}"),
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(compile_err)?;
        let pre = BuildpackPre::new(pre).map_err(compile_err)?;
        Ok(WasmBuildpack {
            manifest,
            digest,
            pre,
            engine: self.clone(),
        })
    }

    fn cache_path(&self, sha256: &str) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let mut hasher = std::hash::DefaultHasher::new();
        self.wasm.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = format!(
            "wasmtime-{}-{:016x}",
            env!("CARGO_PKG_VERSION"),
            hasher.finish()
        );
        Some(
            dir.join("components")
                .join(engine_key)
                .join(format!("{sha256}.cwasm")),
        )
    }

    /// The component, and where its compiled form came from:
    /// `prebuilt` (the binary carries it), `cached` or `compiled`.
    fn compile(
        &self,
        bytes: &[u8],
        sha256: &str,
        source_name: &str,
    ) -> Result<(Component, &'static str), EngineError> {
        if let Some(precompiled) = self.prebuilt.and_then(|Prebuilt(lookup)| lookup(sha256)) {
            // SAFETY: whoever made the `Prebuilt` vouched (it is unsafe to
            // make) that this is the code this crate's wasmtime and
            // `wasm_config` compile from these very bytes (found by their
            // sha256). wasmtime itself checks the version, architecture and OS, wasm
            // features and this CPU's ISA flags, and refuses a mismatch
            // (a binary copied to an older CPU): then it is compiled below.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize(&self.wasm, precompiled) };
            match loaded {
                Ok(component) => return Ok((component, "prebuilt")),
                Err(e) => self.reporter.note(&format!(
                    "the prebuilt code of {source_name} does not load here ({e:#}): compiling it"
                )),
            }
        }
        let cached = self.cache_path(sha256);
        if let Some(path) = &cached
            && path.is_file()
        {
            // SAFETY: only files this code wrote (atomically, below) live
            // under a key that includes this engine's compatibility hash;
            // wasmtime also checks the header and refuses a mismatch.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize_file(&self.wasm, path) };
            match loaded {
                Ok(component) => return Ok((component, "cached")),
                Err(_) => {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        let compile_err = |e: wasmtime::Error| EngineError::Compile {
            source_name: source_name.into(),
            message: format!("{e:#}"),
        };
        let Some(path) = cached else {
            return Component::new(&self.wasm, bytes)
                .map(|c| (c, "compiled"))
                .map_err(compile_err);
        };
        let serialized = self.wasm.precompile_component(bytes).map_err(compile_err)?;
        // A cache that cannot be written only costs time next run.
        let _ = write_atomic(&path, &serialized);
        #[allow(unsafe_code)]
        // SAFETY: the bytes were produced by this engine just now.
        let component = unsafe { Component::deserialize(&self.wasm, &serialized) };
        component.map(|c| (c, "compiled")).map_err(compile_err)
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A loaded buildpack component, ready to instantiate per call.
pub struct WasmBuildpack {
    manifest: BuildpackManifest,
    /// sha256 of the component bytes: which buildpack this exactly is.
    digest: cascade_digest::Digest,
    pre: BuildpackPre<State>,
    engine: Arc<Engine>,
}

impl WasmBuildpack {
    fn store(
        &self,
        preopens: &Preopens<'_>,
        build_env: &[crate::api::EnvEntry],
        quota: Option<Arc<AtomicBool>>,
    ) -> Result<Store<State>, RunError> {
        let limits = &self.engine.limits;
        let caps = preopens.own_layers.map(|(layers, guest)| sandbox::Caps {
            host: self.engine.capabilities.clone(),
            declared: self.manifest.capabilities.clone(),
            layers: layers.clone(),
            layers_guest: guest.to_owned(),
            app: preopens.app.0.clone(),
            build_layers: preopens.read_only.to_vec(),
            build_env: build_env.to_vec(),
            quota: quota.clone(),
        });
        let state = State::new(
            self.id(),
            limits,
            preopens,
            self.engine.reporter.clone(),
            caps,
        )?;
        let mut store = Store::new(&self.engine.wasm, state);
        store.limiter(|s| &mut s.limiter);
        let ticks = (limits.timeout.as_millis() / TICK.as_millis()).max(1);
        let budget = u64::try_from(ticks).unwrap_or(u64::MAX);
        #[allow(clippy::single_match_else)] // two ways to set a deadline, side by side
        match quota {
            // Woken every tick to look at the write quota's flag.
            Some(flag) => {
                let mut left = budget;
                store.set_epoch_deadline(1);
                store.epoch_deadline_callback(move |_| {
                    left = left.saturating_sub(1);
                    if flag.load(Ordering::Relaxed) {
                        Err(wasmtime::Error::msg("write limit"))
                    } else if left == 0 {
                        Err(Trap::Interrupt.into())
                    } else {
                        Ok(wasmtime::UpdateDeadline::Continue(1))
                    }
                });
            }
            None => {
                store.set_epoch_deadline(budget);
                store.epoch_deadline_trap();
            }
        }
        Ok(store)
    }

    /// Turn a wasmtime error into what the user needs to hear, and show the
    /// buildpack's captured output either way.
    fn finish<T>(&self, store: &Store<State>, result: wasmtime::Result<T>) -> Result<T, RunError> {
        let state = store.data();
        for (stream, out) in [("stdout", &state.stdout), ("stderr", &state.stderr)] {
            let (text, dropped) = out.take();
            if !text.is_empty() {
                self.engine
                    .reporter
                    .buildpack_output(self.id(), stream, &text);
            }
            if dropped > 0 {
                self.engine.reporter.buildpack_output(
                    self.id(),
                    stream,
                    &format!("[{dropped} more bytes of {stream} dropped]\n"),
                );
            }
        }
        result.map_err(|e| {
            let limits = &self.engine.limits;
            if let Some(limit_mib) = state.write_limit_hit() {
                return RunError::WriteLimit { limit_mib };
            }
            if state.limiter.exceeded {
                return RunError::MemoryLimit {
                    limit_mib: (limits.memory_bytes >> 20) as u64,
                };
            }
            match e.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => RunError::Timeout {
                    seconds: limits.timeout.as_secs(),
                },
                _ => RunError::Trap(format!("{e:#}")),
            }
        })
    }
}

impl BuildpackRunner for WasmBuildpack {
    fn manifest(&self) -> &BuildpackManifest {
        &self.manifest
    }

    fn component_digest(&self) -> Option<&cascade_digest::Digest> {
        Some(&self.digest)
    }

    fn detect(&self, input: &DetectInput) -> Result<DetectOutcome, RunError> {
        let preopens = Preopens {
            app: (&input.app, FsPerms::ReadOnly),
            own_layers: None,
            read_only: &[],
        };
        let mut store = self.store(&preopens, &[], None)?;
        let ctx = bindings::detect_context(input);
        let result = self
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.call_detect(&mut store, &ctx));
        self.finish(&store, result)?
            .map_err(bindings::reported)
            .and_then(bindings::detect_outcome)
    }

    fn build(&self, input: &BuildInput) -> Result<BuildOutput, RunError> {
        let preopens = Preopens {
            app: (&input.app, FsPerms::ReadWrite),
            own_layers: Some((&input.layers, &input.layers_dir_guest)),
            read_only: &input.build_layers,
        };
        let quota = (input.max_write_bytes > 0).then(|| {
            quota::WriteQuota::watch(
                input.layers.clone(),
                input.app.clone(),
                input.max_write_bytes,
            )
        });
        let mut store = self.store(
            &preopens,
            &input.exec_env,
            quota.as_ref().map(quota::WriteQuota::flag),
        )?;
        if quota.is_some() {
            store.data_mut().write_limit_mib = input.max_write_bytes >> 20;
        }
        let ctx = bindings::build_context(input);
        let result = self
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.call_build(&mut store, &ctx));
        self.finish(&store, result)?
            .map_err(bindings::reported)
            .and_then(bindings::build_output)
    }
}
