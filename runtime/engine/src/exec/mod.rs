//! The host side of the `exec` capability: run a granted tool of the build
//! environment under bubblewrap with only what it needs bound.
//!
//! The build environment ([`BuildEnv`]) is a build image's filesystem, or,
//! only when the platform asks for it, the build host's own. On a build
//! image, a tool sees that filesystem read-only as `/` and nothing of the
//! host's: a bare tool name is looked up on the image's `PATH` inside the
//! image, and the image's `Env` is the base of the tool's environment. On
//! the host (`--build-image host`), the system's `/usr`, `/bin`, `/lib*`,
//! the directory the tool is in and the platform's `--exec-path` dirs are
//! bound read-only instead; a tool's directory is bound alone, never its
//! install prefix or the user's home.
//!
//! Either way the tool sees the same paths the buildpack does: `/workspace`
//! (the app, writable), `/layers/<id>` (the buildpack's layers, writable),
//! earlier buildpacks' build layers (read-only), a private `/tmp`, `/proc`
//! and `/dev`. The guest trees are bound by their handles (`--bind-fd`), so
//! a link swapped in at their paths cannot redirect a bind. A program the
//! buildpack installed in its layers (a fetched node) is started by its path
//! there. Everything is unshared (no network unless granted; its own PID
//! namespace, so nothing outlives it). On top of the base environment the
//! tool gets PATH, HOME=/tmp, SOURCE_DATE_EPOCH, the platform's
//! `--exec-env` and what the buildpack passed. Where bwrap is missing, exec
//! is refused, unless the platform allows unsandboxed exec on the host.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::api::Mount;
use crate::ids::BuildpackId;
use crate::progress::Reporter;
use cascade_fs::GuestTree;
use wait_timeout::ChildExt as _;

mod bwrap;
mod tool;

pub use bwrap::BWRAP_ISOLATION;
use bwrap::{PidsCgroup, sandboxed, unsandboxed};
use tool::tool_bind;
pub use tool::{find_tool, resolve_tool};

/// How much of each stream is returned to the buildpack.
const TAIL: usize = 64 << 10;
/// How much of each call's output reaches the build log.
const LOG_BUDGET: usize = 4 << 20;

/// Where exec'd tools come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BuildEnv {
    /// None was given: exec is refused (the platform is told how to give one
    /// before any buildpack runs; this is the last line).
    #[default]
    Missing,
    /// The build host's own programs and libraries (`--build-image host`):
    /// not hermetic, for local development.
    Host,
    /// A build image's unpacked filesystem, bound read-only as `/`, and its
    /// config `Env`.
    Image {
        root: PathBuf,
        env: Vec<(String, String)>,
    },
}

/// Directories a tool is looked up in when the build image sets no `PATH`.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl BuildEnv {
    /// The `PATH` of the build environment: the image's, else the usual one.
    fn path(&self) -> String {
        match self {
            Self::Image { env, .. } => env
                .iter()
                .find(|(k, _)| k == "PATH")
                .map_or(DEFAULT_PATH, |(_, v)| v.as_str())
                .to_owned(),
            Self::Host | Self::Missing => "/usr/local/bin:/usr/bin:/bin".to_owned(),
        }
    }
}

/// The platform's exec settings.
#[derive(Debug, Clone, Default)]
pub struct ExecPolicy {
    /// Where tools come from.
    pub build_env: BuildEnv,
    /// Extra read-only binds (`--exec-path`), e.g. a toolchain's home.
    pub paths: Vec<PathBuf>,
    /// Extra env for every tool (`--exec-env K=V`).
    pub env: Vec<(String, String)>,
    /// Run without bwrap where it is missing (`--allow-unsandboxed-exec`).
    pub allow_unsandboxed: bool,
    /// Seconds one call may run.
    pub timeout: Duration,
    /// SOURCE_DATE_EPOCH for tools that honour it.
    pub source_date_epoch: u64,
    /// Processes one call may have at once (a pids cgroup, where this host
    /// lets Cascade make one); 0 for no limit.
    pub max_procs: u32,
    /// Refuse to run a tool when that limit cannot be enforced
    /// (`--require-limits`), instead of warning.
    pub require_limits: bool,
}

/// One call, in host terms.
pub struct ExecRequest<'a> {
    pub id: &'a BuildpackId,
    pub program: &'a str,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    /// The build env of earlier buildpacks' build layers (a CA bundle's
    /// variables, a runtime's `bin/`), as operations applied over the build
    /// image's `Env` (see [`tool_env`]).
    pub build_env: &'a [crate::api::EnvEntry],
    /// Guest path.
    pub working_dir: &'a str,
    pub app: &'a GuestTree,
    pub layers: &'a GuestTree,
    pub layers_guest: &'a str,
    pub build_layers: &'a [Mount],
    /// Raised when the buildpack has written past its bound: the tool is
    /// stopped.
    pub quota: Option<&'a std::sync::atomic::AtomicBool>,
    pub network: bool,
    /// The calling buildpack's own deadline: a tool does not outlive it.
    pub deadline: crate::deadline::Deadline,
}

/// What the call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The tool ran without the process limit (no pids cgroup here).
    pub unlimited: bool,
}

/// The program a call runs: where the host finds it, and the path it is
/// started by (the same for a host tool; the guest path for a tool the
/// buildpack installed in a layer, which the sandbox binds there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub host: PathBuf,
    pub started_as: PathBuf,
    /// Installed in a layer (already bound), not on the host's PATH.
    pub in_layer: bool,
}

/// The capability name of a program: a bare tool name as it is, a layer
/// path by its file name (`/layers/x_node/node/bin/node` is `exec:node`).
pub fn tool_name(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// Why a tool was not run, or was stopped. Guest-visible: a buildpack gets
/// it as the WIT error (host paths rewritten to the guest's); a tool that
/// ran and failed is an outcome with its status, not an error.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(
        "exec {0}: no build image to run it in; give one with `cascade build --build-image REF` (or builder.toml [build] image), or `--build-image host` for the build host's own tools"
    )]
    NoBuildEnv(String),
    #[error("exec {0}: not found on the build host's PATH")]
    NotOnHostPath(String),
    #[error("exec {program}: not found on the build image's PATH ({path})")]
    NotOnImagePath { program: String, path: String },
    #[error(
        "exec {program}: a path must lie in this buildpack's layers ({layers}) or an earlier build layer"
    )]
    OutsideLayers { program: String, layers: String },
    #[error("exec {0}: not a file inside the layers")]
    NotAFile(String),
    #[error("working dir {dir:?}: must be under {app} or {layers}")]
    WorkingDir {
        dir: String,
        app: String,
        layers: String,
    },
    #[error(
        "exec {0}: bubblewrap (bwrap) is not installed, and tools run in the build image only under it; install bubblewrap"
    )]
    NoBwrapForImage(String),
    #[error(
        "exec {0}: bubblewrap (bwrap) is not installed, and exec runs only sandboxed; install bubblewrap, or let it run unsandboxed with `cascade build --allow-unsandboxed-exec`"
    )]
    NoBwrap(String),
    #[error(
        "exec {0}: this host lets Cascade make no pids cgroup, so --exec-max-procs cannot be enforced, and --require-limits is set"
    )]
    NoPidsCgroup(String),
    /// Starting or waiting for the process failed.
    #[error("exec {program}: {source}")]
    Process {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("exec {0}: stopped: the buildpack wrote past its bound (--max-layers-mib)")]
    OverQuota(String),
    #[error("exec {0}: stopped at the buildpack's own deadline")]
    BuildpackDeadline(String),
    #[error("exec {program}: ran past its deadline of {seconds} s and was stopped")]
    Timeout { program: String, seconds: u64 },
    /// Preparing the sandbox: `path` on the host could not be opened.
    #[error("exec: {}: {source}", path.display())]
    Sandbox {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub fn have_bwrap() -> bool {
    find_tool("bwrap").is_some()
}

/// A working dir must lie under the app or the buildpack's own layers.
fn check_working_dir(req: &ExecRequest<'_>) -> Result<(), ExecError> {
    let wd = Path::new(req.working_dir);
    let inside = |root: &str| wd.starts_with(root);
    let plain = wd
        .components()
        .all(|c| !matches!(c, std::path::Component::ParentDir));
    if plain && (inside(crate::api::APP_DIR) || inside(req.layers_guest)) {
        Ok(())
    } else {
        Err(ExecError::WorkingDir {
            dir: req.working_dir.to_owned(),
            app: crate::api::APP_DIR.to_owned(),
            layers: req.layers_guest.to_owned(),
        })
    }
}

/// The env a tool gets, from the bottom: the build image's `Env` (only a
/// PATH for `--build-image host`: nothing of the host's env), earlier
/// buildpacks' build env applied over it as CNB applies it (a `bin/` goes
/// in front of the image's PATH, an append appends to the image's value),
/// then HOME, SOURCE_DATE_EPOCH, `--exec-env` and what the buildpack
/// passes. PATH starts with the tool's own dir, so what it starts by name
/// (npm starts `node`) is its sibling. PATH and LD_LIBRARY_PATH keep only
/// absolute dirs: an empty or relative entry (a `lib/` prepended to an
/// empty value leaves one) would search the working dir, the app.
fn tool_env(
    policy: &ExecPolicy,
    req: &ExecRequest<'_>,
    tool_dir: &Path,
    home: &str,
) -> Vec<(String, String)> {
    let mut env = crate::env::EnvList::default();
    if let BuildEnv::Image { env: image, .. } = &policy.build_env {
        for (k, v) in image {
            env.set(k, v.clone());
        }
    }
    env.set("PATH", policy.build_env.path());
    for entry in req.build_env {
        env.apply(entry);
    }
    let absolute = |value: &str| {
        value
            .split(':')
            .filter(|d| d.starts_with('/'))
            .collect::<Vec<_>>()
            .join(":")
    };
    let path = absolute(env.get("PATH").unwrap_or_default());
    env.set("PATH", format!("{}:{path}", tool_dir.display()));
    if let Some(libs) = env.get("LD_LIBRARY_PATH") {
        let libs = absolute(libs);
        env.set("LD_LIBRARY_PATH", libs);
    }
    env.set("HOME", home.to_owned());
    env.set("SOURCE_DATE_EPOCH", policy.source_date_epoch.to_string());
    for (k, v) in policy.env.iter().chain(req.env) {
        env.set(k, v.clone());
    }
    env.pairs().to_vec()
}

/// Run the call; `Err` when it could not be started, `Ok` with its exit
/// status otherwise.
pub fn run(
    policy: &ExecPolicy,
    req: &ExecRequest<'_>,
    reporter: &Arc<dyn Reporter>,
) -> Result<ExecOutcome, ExecError> {
    let program = || req.program.to_owned();
    if policy.build_env == BuildEnv::Missing {
        return Err(ExecError::NoBuildEnv(program()));
    }
    check_working_dir(req)?;
    let tool = resolve_tool(&policy.build_env, req)?;
    let dir = |t: &Path| t.parent().unwrap_or(Path::new("/")).to_path_buf();

    let bwrap = have_bwrap();
    if !bwrap && matches!(policy.build_env, BuildEnv::Image { .. }) {
        return Err(ExecError::NoBwrapForImage(program()));
    }
    // Handles bwrap inherits to bind (it closes them once mounted); ours
    // are dropped as soon as it has started.
    let mut fds = Vec::new();
    let mut cmd = if bwrap {
        let env = tool_env(policy, req, &dir(&tool.started_as), "/tmp");
        sandboxed(policy, req, &tool, &env, &mut fds)?
    } else if policy.allow_unsandboxed {
        reporter.note(&format!(
            "warning: bwrap is missing: {} runs {} unsandboxed (--allow-unsandboxed-exec)",
            req.id, req.program
        ));
        let home = std::env::temp_dir();
        let env = tool_env(policy, req, &dir(&tool.host), &home.to_string_lossy());
        unsandboxed(req, &tool.host, &env)
    } else {
        return Err(ExecError::NoBwrap(program()));
    };
    // Everything the call starts goes into a pids cgroup: the shell puts
    // itself there, then becomes the sandbox.
    let cgroup = (bwrap && policy.max_procs > 0)
        .then(|| PidsCgroup::create(policy.max_procs))
        .flatten();
    let unlimited = policy.max_procs > 0 && cgroup.is_none();
    if unlimited && policy.require_limits {
        return Err(ExecError::NoPidsCgroup(program()));
    }
    if let Some(cg) = &cgroup {
        let mut wrapped = Command::new("/bin/sh");
        wrapped
            .args(["-c", "echo $$ > \"$0\" && exec \"$@\""])
            .arg(cg.procs())
            .arg(cmd.get_program())
            .args(cmd.get_args());
        cmd = wrapped;
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawned = cmd.spawn();
    drop(fds);
    let process = |source| ExecError::Process {
        program: program(),
        source,
    };
    let mut child = spawned.map_err(process)?;
    let logged = Arc::new(Mutex::new(0usize));
    let pump = |stream: Box<dyn Read + Send>, name: &'static str| {
        let (reporter, id, logged) = (reporter.clone(), req.id.clone(), logged.clone());
        std::thread::spawn(move || tail_and_log(stream, name, &id, &*reporter, &logged))
    };
    let out = pump(Box::new(child.stdout.take().expect("piped")), "stdout");
    let err = pump(Box::new(child.stderr.take().expect("piped")), "stderr");
    // Woken by the child's exit, not by polling: a tool that takes 20 ms
    // costs 20 ms.
    let timeout = policy.timeout.min(req.deadline.left());
    let Some(status) = wait(&mut child, timeout, req.quota).map_err(process)? else {
        if req
            .quota
            .is_some_and(|q| q.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Err(ExecError::OverQuota(program()));
        }
        // bwrap dies with its children (--die-with-parent is for us;
        // killing bwrap ends its PID namespace and everything in it).
        let _ = child.kill();
        let _ = child.wait();
        return Err(if timeout < policy.timeout {
            ExecError::BuildpackDeadline(program())
        } else {
            ExecError::Timeout {
                program: program(),
                seconds: policy.timeout.as_secs(),
            }
        });
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(ExecOutcome {
        status: status.code().unwrap_or(-1),
        stdout,
        stderr,
        unlimited,
    })
}

/// Wait for `child` until `timeout`, or until `quota` rises (then kill
/// it); `None` when it did not end by itself.
fn wait(
    child: &mut std::process::Child,
    timeout: Duration,
    quota: Option<&std::sync::atomic::AtomicBool>,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let Some(quota) = quota else {
        return child.wait_timeout(timeout);
    };
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if let Some(status) = child.wait_timeout(left.min(Duration::from_millis(100)))? {
            return Ok(Some(status));
        }
        if left.is_zero() || quota.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
    }
}

/// Send a stream's lines to the build log (within a budget) and keep its
/// last [`TAIL`] bytes.
fn tail_and_log(
    mut stream: Box<dyn Read + Send>,
    name: &str,
    id: &BuildpackId,
    reporter: &dyn Reporter,
    logged: &Mutex<usize>,
) -> Vec<u8> {
    let mut tail: Vec<u8> = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    let log_line = |l: &[u8]| {
        let mut used = logged.lock().expect("not poisoned");
        if *used < LOG_BUDGET {
            *used += l.len();
            let text = String::from_utf8_lossy(l);
            reporter.buildpack_output(id, name, &format!("{text}\n"));
            if *used >= LOG_BUDGET {
                reporter.buildpack_output(id, name, "[more output dropped]\n");
            }
        }
    };
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 2 * TAIL {
            tail.drain(..tail.len() - TAIL);
        }
        for &b in &buf[..n] {
            if b == b'\n' {
                log_line(&line);
                line.clear();
            } else if line.len() < 4096 {
                line.push(b);
            }
        }
    }
    if !line.is_empty() {
        log_line(&line);
    }
    if tail.len() > TAIL {
        tail.drain(..tail.len() - TAIL);
    }
    tail
}

fn sandbox_err(path: &Path) -> impl Fn(std::io::Error) -> ExecError + '_ {
    move |source| ExecError::Sandbox {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::tool::find_in_image;
    use super::*;

    #[test]
    fn a_tool_gets_its_own_dir_bound_never_its_prefix_or_home() {
        assert_eq!(tool_bind(Path::new("/usr/bin/gcc")), None);
        assert_eq!(
            tool_bind(Path::new("/root/.cargo/bin/cargo")),
            Some(PathBuf::from("/root/.cargo/bin"))
        );
        assert_eq!(
            tool_bind(Path::new("/opt/tool/run")),
            Some(PathBuf::from("/opt/tool"))
        );
        if let Some(home) = std::env::var_os("HOME").map(PathBuf::from)
            && home != Path::new("/")
        {
            let tool = home.join("tool");
            assert_eq!(
                tool_bind(&tool),
                Some(tool.clone()),
                "the home dir was bound"
            );
        }
    }

    /// A call of `program` by `id` with nothing else given.
    fn request<'a>(
        id: &'a BuildpackId,
        program: &'a str,
        app: &'a GuestTree,
        layers: &'a GuestTree,
        layers_guest: &'a str,
    ) -> ExecRequest<'a> {
        ExecRequest {
            id,
            program,
            args: &[],
            env: &[],
            build_env: &[],
            working_dir: "/workspace",
            app,
            layers,
            layers_guest,
            build_layers: &[],
            quota: None,
            network: false,
            deadline: crate::deadline::Deadline::after(std::time::Duration::from_mins(1)),
        }
    }

    #[test]
    fn layer_tools_resolve_inside_the_layers_only() {
        let tmp = tempfile::tempdir().unwrap();
        let layers = tmp.path().join("layers");
        std::fs::create_dir_all(layers.join("node/bin")).unwrap();
        std::fs::write(layers.join("node/bin/node"), "").unwrap();
        std::fs::write(tmp.path().join("outside"), "").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("outside"), layers.join("node/bin/out"))
            .unwrap();
        let id = BuildpackId::new("x/node").unwrap();
        let (app, layers) = (
            GuestTree::open(tmp.path()).unwrap(),
            GuestTree::open(&layers).unwrap(),
        );
        let resolve = |program: &str| {
            resolve_tool(
                &BuildEnv::Host,
                &request(&id, program, &app, &layers, "/layers/x_node"),
            )
        };
        let t = resolve("/layers/x_node/node/bin/node").unwrap();
        assert!(t.in_layer);
        assert_eq!(t.started_as, Path::new("/layers/x_node/node/bin/node"));
        assert_eq!(tool_name("/layers/x_node/node/bin/node"), "node");
        for bad in [
            "/layers/x_node/node/bin/out",
            "/layers/x_node/../x_node/node/bin/node",
            "/usr/bin/env",
            "layers/x_node/node/bin/node",
            "/layers/x_node/node/bin",
        ] {
            assert!(resolve(bad).is_err(), "{bad} resolved");
        }
        assert!(!resolve("sh").unwrap().in_layer);
    }

    #[test]
    fn a_build_image_tool_is_found_on_its_path_inside_the_image_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        for d in ["usr/bin", "usr/lib/go/bin", "bin"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let exe = |p: &Path| {
            std::fs::write(p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        exe(&root.join("usr/lib/go/bin/go"));
        // Debian's way: an absolute link, meaning the image's own root.
        std::os::unix::fs::symlink("/usr/lib/go/bin/go", root.join("usr/bin/go")).unwrap();
        // Links that would leave the image on the host mean the image's
        // own root; a file that is not executable is no tool.
        exe(&tmp.path().join("host-tool"));
        std::os::unix::fs::symlink(tmp.path().join("host-tool"), root.join("usr/bin/out")).unwrap();
        std::os::unix::fs::symlink("../../../host-tool", root.join("bin/up")).unwrap();
        std::os::unix::fs::symlink("/usr/bin/loop", root.join("usr/bin/loop")).unwrap();
        std::fs::write(root.join("usr/bin/plain"), "").unwrap();

        let env = BuildEnv::Image {
            root: root.clone(),
            env: vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())],
        };
        let found = find_in_image(&root, &env.path(), "go").unwrap();
        assert_eq!(found.started_as, Path::new("/usr/bin/go"));
        assert_eq!(found.host, root.join("usr/lib/go/bin/go"));
        for missing in ["out", "up", "plain", "sh", "loop"] {
            assert!(
                find_in_image(&root, &env.path(), missing).is_none(),
                "{missing} was found"
            );
        }
        let id = BuildpackId::new("x/go").unwrap();
        let app = GuestTree::open(tmp.path()).unwrap();
        let req = request(&id, "go", &app, &app, "/layers/x_go");
        let err = resolve_tool(&BuildEnv::Missing, &req).unwrap_err();
        assert!(err.to_string().contains("--build-image"), "{err}");
        assert!(resolve_tool(&env, &req).is_ok());
        let policy = ExecPolicy::default();
        let reporter: Arc<dyn Reporter> = Arc::new(crate::progress::Silent);
        let err = run(&policy, &req, &reporter).unwrap_err();
        assert!(err.to_string().contains("no build image"), "{err}");
    }

    #[test]
    fn a_tools_env_is_earlier_build_env_applied_over_the_build_images() {
        let tmp = tempfile::tempdir().unwrap();
        let id = BuildpackId::new("x/go").unwrap();
        let app = GuestTree::open(tmp.path()).unwrap();
        let req = request(&id, "go", &app, &app, "/layers/x_go");
        let entry = |name: &str, value: &str, op| crate::api::EnvEntry {
            name: name.into(),
            value: value.into(),
            op,
            delim: Some(":".into()),
            scope: crate::api::EnvScope::Build,
        };
        let earlier = [
            entry(
                "PATH",
                ":/layers/a_node/node/bin:bin:",
                crate::api::EnvOp::Prepend,
            ),
            entry("LIBRARY_PATH", "/layers/a/lib", crate::api::EnvOp::Append),
            entry(
                "LD_LIBRARY_PATH",
                "/layers/a/lib",
                crate::api::EnvOp::Prepend,
            ),
        ];
        let with_earlier = ExecRequest {
            build_env: &earlier,
            ..req
        };
        let policy_on_image = ExecPolicy {
            build_env: BuildEnv::Image {
                root: PathBuf::from("/nowhere"),
                env: vec![
                    ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
                    ("LIBRARY_PATH".into(), "/usr/lib/x".into()),
                    ("LD_LIBRARY_PATH".into(), String::new()),
                    ("HOME".into(), "/root".into()),
                ],
            },
            env: vec![("HOME".into(), "/platform".into())],
            ..ExecPolicy::default()
        };
        let got = tool_env(
            &policy_on_image,
            &with_earlier,
            Path::new("/usr/bin"),
            "/tmp",
        );
        let var = |k: &str| got.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(
            var("PATH"),
            Some("/usr/bin:/layers/a_node/node/bin:/usr/local/bin:/usr/bin:/bin"),
            "the tool's dir, then earlier bin/ over the image's; empty and relative entries would search the app"
        );
        assert_eq!(
            var("LIBRARY_PATH"),
            Some("/usr/lib/x:/layers/a/lib"),
            "an append appends to the image's value"
        );
        assert_eq!(
            var("LD_LIBRARY_PATH"),
            Some("/layers/a/lib"),
            "no empty entry (the working dir) is left"
        );
        assert_eq!(var("HOME"), Some("/platform"), "--exec-env is on top");
        assert_eq!(
            got.iter().filter(|(n, _)| n == "PATH").count(),
            1,
            "one PATH"
        );
    }

    #[test]
    fn tools_are_found_by_name_only() {
        assert!(find_tool("sh").is_some());
        assert!(find_tool("/bin/sh").is_none());
        assert!(find_tool("no-such-tool-here").is_none());
    }
}
