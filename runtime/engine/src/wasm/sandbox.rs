//! The per-call sandbox: a WASI context that grants only the phase's
//! directories, a fixed clock, seeded randomness, no env, no network, bounded
//! output, and a memory limiter that remembers when it said no.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{
    FsPerms, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use super::bindings::{Level, cascade};
use super::output::BoundedOutput;
use crate::api::{APP_DIR, Mount, RunError};
use crate::deadline::Deadline;
use crate::ids::BuildpackId;
use crate::progress::{LogLevel, Reporter};
use cascade_fs::GuestTree;

/// Limits applied to every buildpack call.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock budget of one detect or build call.
    pub timeout: Duration,
    /// Linear memory a buildpack may grow to.
    pub memory_bytes: usize,
    /// Bytes of stdout and of stderr kept per call.
    pub output_bytes: usize,
    /// Seconds since the epoch the guest's wall clock reads.
    pub clock_epoch: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_mins(5),
            memory_bytes: 512 << 20,
            output_bytes: 1 << 20,
            clock_epoch: GUEST_CLOCK_EPOCH,
        }
    }
}

/// What a guest's wall clock reads by default: 1980-01-01T00:00:01Z, the
/// CNB normalised time that layer mtimes carry too (the runtime checks the
/// two agree), so nothing a buildpack writes can record when it ran.
pub const GUEST_CLOCK_EPOCH: u64 = 315_532_801;

/// Stops growth past the limit and remembers that it did, so the trap that
/// follows (Rust aborts on allocation failure) can be reported as what it is.
pub struct Limiter {
    memory_bytes: usize,
    pub exceeded: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    // A component made by wit-bindgen instantiates a handful of core
    // modules (the program, adapters, shims), each with a memory or two and
    // a table: these bounds leave room for that and stop a component that
    // would multiply them.
    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

/// Core instances, memories and tables one call may create; elements of one
/// table.
pub const MAX_INSTANCES: usize = 64;
pub const MAX_MEMORIES: usize = 16;
pub const MAX_TABLES: usize = 64;
pub const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// A wall clock stopped at SOURCE_DATE_EPOCH.
struct FixedClock(Duration);

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}

/// A monotonic clock that advances 1 µs per reading: time moves (loops that
/// wait on it end), yet every run of the same buildpack sees the same values.
struct StepClock(std::sync::atomic::AtomicU64);

impl HostMonotonicClock for StepClock {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        self.0
            .fetch_add(1_000, std::sync::atomic::Ordering::Relaxed)
    }
}

/// Capabilities of a build call: the platform's grants and the
/// buildpack's declaration, and where its layers are on the host.
pub struct Caps {
    pub host: Arc<super::CapabilityHost>,
    pub declared: crate::capabilities::Declared,
    pub layers: Arc<GuestTree>,
    pub layers_guest: String,
    pub app: Arc<GuestTree>,
    pub build_layers: Vec<Mount>,
    /// The build env of those layers, for exec'd tools.
    pub build_env: Vec<crate::api::EnvEntry>,
    /// Raised when the buildpack has written past its bound.
    pub quota: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Caps {
    /// `message` with the host's path of the layers dir put back as the
    /// guest sees it: where the host keeps its work is not the guest's to
    /// know.
    fn guest_paths(&self, message: &str) -> String {
        let host = self.layers.path().to_string_lossy();
        message.replace(host.as_ref(), &self.layers_guest)
    }
}

/// Store data of one call.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: Limiter,
    pub stdout: BoundedOutput,
    pub stderr: BoundedOutput,
    id: BuildpackId,
    reporter: Arc<dyn Reporter>,
    logged: usize,
    log_budget: usize,
    /// `None` in detect: capabilities are for build.
    caps: Option<Caps>,
    /// The write bound in MiB, for the error when its flag rose.
    pub write_limit_mib: u64,
    /// The call's deadline, which its host calls keep too.
    deadline: Deadline,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl cascade::buildpack::types::Host for State {}

impl cascade::buildpack::archive::Host for State {
    fn unpack(
        &mut self,
        archive: String,
        destination: String,
        format: cascade::buildpack::archive::Format,
        limits: cascade::buildpack::archive::Limits,
    ) -> Result<u64, String> {
        use cascade::buildpack::archive::Format as F;
        let Some(caps) = &self.caps else {
            return Err("unpack is available during build, not detect".into());
        };
        let from = crate::fetch::confined(&archive).map_err(|e| e.to_string())?;
        let to = crate::fetch::confined(&destination).map_err(|e| e.to_string())?;
        let file = caps
            .layers
            .open_file(from)
            .map_err(|e| caps.guest_paths(&format!("archive {archive:?}: {e}")))?;
        let dest = caps
            .layers
            .create_dir_all(to)
            .map_err(|e| caps.guest_paths(&format!("destination {destination:?}: {e}")))?;
        let format = match format {
            F::Tar => crate::archive::Format::Tar,
            F::TarGz => crate::archive::Format::TarGz,
            F::TarXz => crate::archive::Format::TarXz,
            F::Zip => crate::archive::Format::Zip,
        };
        let asked = crate::archive::Limits {
            max_bytes: limits.max_bytes,
            max_entries: limits.max_entries,
        };
        crate::archive::unpack(
            file,
            &archive,
            &dest,
            format,
            asked.min(caps.host.unpack_limits),
            self.deadline,
        )
        .map_err(|e| caps.guest_paths(&e.to_string()))
    }
}

impl cascade::buildpack::exec::Host for State {
    fn run(
        &mut self,
        command: cascade::buildpack::exec::Command,
    ) -> Result<cascade::buildpack::exec::Outcome, String> {
        let Some(caps) = &self.caps else {
            return Err("exec is available during build, not detect".into());
        };
        let program = command.program.clone();
        let name = crate::exec::tool_name(&program).to_owned();
        let record = |allowed: bool, detail: String| {
            caps.host.record(crate::capabilities::CapabilityUse {
                buildpack: self.id.to_string(),
                capability: format!("exec:{name}"),
                detail,
                allowed,
                into: None,
            });
        };
        let argv = std::iter::once(program.as_str())
            .chain(command.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        if let Err(e) = caps
            .host
            .grants()
            .check_exec(self.id.as_str(), &caps.declared, &name)
        {
            record(false, argv);
            return Err(e.to_string());
        }
        let env: Vec<(String, String)> =
            command.env.into_iter().map(|v| (v.name, v.value)).collect();
        let wd = command
            .working_dir
            .unwrap_or_else(|| crate::api::APP_DIR.to_owned());
        self.reporter
            .note(&format!("{} used exec:{name}: {argv}", self.id));
        let outcome = crate::exec::run(
            &caps.host.exec,
            &crate::exec::ExecRequest {
                id: &self.id,
                program: &program,
                args: &command.args,
                env: &env,
                build_env: &caps.build_env,
                working_dir: &wd,
                app: &caps.app,
                layers: &caps.layers,
                layers_guest: &caps.layers_guest,
                build_layers: &caps.build_layers,
                quota: caps.quota.as_deref(),
                network: caps.host.grants().network(self.id.as_str(), &caps.declared),
                deadline: self.deadline,
            },
            &self.reporter,
        );
        if outcome.as_ref().is_ok_and(|o| o.unlimited) {
            let warning = format!(
                "exec:{name} ran without a process limit: this host lets Cascade make no pids cgroup (--require-limits refuses instead)"
            );
            if caps.host.warn(&warning) {
                self.reporter.note(&format!("warning: {warning}"));
            }
        }
        // What the guest and the image's label see names guest paths only.
        let outcome = outcome.map_err(|e| caps.guest_paths(&e.to_string()));
        match &outcome {
            Ok(o) => record(true, format!("{argv} (exit {})", o.status)),
            Err(e) => record(true, format!("{argv} ({e})")),
        }
        let o = outcome?;
        Ok(cascade::buildpack::exec::Outcome {
            status: o.status,
            stdout: o.stdout,
            stderr: o.stderr,
        })
    }
}

impl cascade::buildpack::fetch::Host for State {
    fn fetch(&mut self, request: cascade::buildpack::fetch::Request) -> Result<u64, String> {
        let Some(caps) = &self.caps else {
            return Err("fetch is available during build, not detect".into());
        };
        let host = crate::capabilities::fetch_host(&request.url).map_err(|e| e.to_string())?;
        let shown = crate::fetch::display_url(&request.url);
        let allowed =
            caps.host
                .grants()
                .check_fetch(self.id.as_str(), &caps.declared, &request.url);
        let into = std::path::Path::new(&request.destination)
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        caps.host.record(crate::capabilities::CapabilityUse {
            buildpack: self.id.to_string(),
            capability: format!("fetch:{host}"),
            detail: shown.clone(),
            allowed: allowed.is_ok(),
            into,
        });
        let source = allowed.map_err(|e| e.to_string())?;
        let fetcher = caps
            .host
            .fetcher
            .as_ref()
            .ok_or("fetch has no cache directory on this host")?;
        let dest = crate::fetch::confined(&request.destination).map_err(|e| e.to_string())?;
        let done = fetcher
            .get(
                &request.url,
                &request.sha256,
                &source,
                &caps.layers,
                &dest,
                self.deadline,
            )
            .map_err(|e| caps.guest_paths(&e.to_string()))?;
        self.reporter.note(&format!(
            "{} used fetch:{host}: {} ({} bytes{})",
            self.id,
            shown,
            done.bytes,
            if done.cached { ", from the cache" } else { "" }
        ));
        Ok(done.bytes)
    }
}

impl cascade::buildpack::log::Host for State {
    fn log(&mut self, level: Level, message: String) {
        // Bounded like stdout: a buildpack cannot flood the user's terminal.
        if self.logged >= self.log_budget {
            return;
        }
        self.logged += message.len();
        let level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        self.reporter.buildpack_log(&self.id, level, &message);
    }
}

/// The directories a call may see; the app is always at [`APP_DIR`].
pub struct Preopens<'a> {
    pub app: (&'a Arc<GuestTree>, FsPerms),
    pub own_layers: Option<(&'a Arc<GuestTree>, &'a str)>,
    pub read_only: &'a [Mount],
}

impl State {
    pub fn new(
        id: &BuildpackId,
        limits: &Limits,
        preopens: &Preopens<'_>,
        reporter: Arc<dyn Reporter>,
        caps: Option<Caps>,
    ) -> Result<Self, RunError> {
        let setup = |e: wasmtime::Error| RunError::Setup(format!("{e:#}"));
        let stdout = BoundedOutput::new(limits.output_bytes);
        let stderr = BoundedOutput::new(limits.output_bytes);
        let seed = seed(id);
        let mut b = WasiCtxBuilder::new();
        b.stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(FixedClock(Duration::from_secs(limits.clock_epoch)))
            .monotonic_clock(StepClock(0.into()))
            .secure_random(wasmtime_wasi::Deterministic::new(
                seed.to_le_bytes().repeat(4),
            ))
            .insecure_random(wasmtime_wasi::Deterministic::new(
                seed.to_be_bytes().repeat(4),
            ))
            .insecure_random_seed(seed)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .initial_cwd(APP_DIR);
        // Each preopen is the very directory the host holds a handle to,
        // opened through it: a link swapped in at its path changes nothing.
        b.preopened_dir(preopens.app.0.proc_path(), APP_DIR, preopens.app.1)
            .map_err(setup)?;
        if let Some((tree, guest)) = preopens.own_layers {
            b.preopened_dir(tree.proc_path(), guest, FsPerms::ReadWrite)
                .map_err(setup)?;
        }
        for mount in preopens.read_only {
            b.preopened_dir(mount.tree.proc_path(), &mount.guest, FsPerms::ReadOnly)
                .map_err(setup)?;
        }
        Ok(Self {
            wasi: b.build(),
            table: ResourceTable::new(),
            limiter: Limiter {
                memory_bytes: limits.memory_bytes,
                exceeded: false,
            },
            stdout,
            stderr,
            id: id.clone(),
            reporter,
            logged: 0,
            log_budget: limits.output_bytes,
            caps,
            write_limit_mib: 0,
            deadline: Deadline::after(limits.timeout),
        })
    }
}

impl State {
    /// The write bound, when the buildpack went past it.
    pub fn write_limit_hit(&self) -> Option<u64> {
        let flag = self.caps.as_ref()?.quota.as_ref()?;
        flag.load(std::sync::atomic::Ordering::Relaxed)
            .then_some(self.write_limit_mib)
    }
}

/// A seed derived from the buildpack id: stable across runs and machines.
fn seed(id: &BuildpackId) -> u128 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(id.as_str().as_bytes());
    u128::from_le_bytes(digest[..16].try_into().unwrap())
}
