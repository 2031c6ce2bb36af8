//! The bubblewrap command a tool runs under: the build image as `/` (or
//! the host's system dirs), the guest trees bound by their handles, every
//! namespace unshared, and a pids cgroup where the host offers one.

#[allow(clippy::wildcard_imports)]
use super::*;

/// A pids cgroup for one call, so a fork bomb stops at the limit instead of
/// taking the build host down. cgroup v1 (`/sys/fs/cgroup/pids`) or v2 with
/// the pids controller; `None` where neither can be written.
pub(super) struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    pub(super) fn create(max: u32) -> Option<Self> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("cascade-exec-{}-{n}", std::process::id());
        for root in ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"] {
            let dir = Path::new(root).join(&name);
            if std::fs::create_dir(&dir).is_err() {
                continue;
            }
            if std::fs::write(dir.join("pids.max"), max.to_string()).is_ok() {
                return Some(Self { dir });
            }
            let _ = std::fs::remove_dir(&dir);
        }
        None
    }

    pub(super) fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }
}

impl Drop for PidsCgroup {
    /// Kill what is left in it, then remove it.
    fn drop(&mut self) {
        for _ in 0..50 {
            let pids = std::fs::read_to_string(self.procs()).unwrap_or_default();
            let pids: Vec<&str> = pids.split_whitespace().collect();
            if pids.is_empty() && std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            if !pids.is_empty() {
                let _ = Command::new("kill").arg("-KILL").args(&pids).status();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// How every bubblewrap sandbox starts (a tool here, an image's process in
/// `cascade run`): it dies with us; a new session, so it cannot push
/// keystrokes into the user's terminal (TIOCSTI, CVE-2017-5226); every
/// namespace unshared, the user namespace always (not only where possible),
/// and no capabilities in it: run by root, bwrap would otherwise keep
/// root's.
pub const BWRAP_ISOLATION: [&str; 6] = [
    "--die-with-parent",
    "--new-session",
    "--unshare-all",
    "--unshare-user",
    "--cap-drop",
    "ALL",
];

/// The tool under bwrap, with only what it needs bound.
pub(super) fn sandboxed(
    policy: &ExecPolicy,
    req: &ExecRequest<'_>,
    tool: &Tool,
    env: &[(String, String)],
    fds: &mut Vec<std::os::fd::OwnedFd>,
) -> Result<Command, ExecError> {
    let mut c = Command::new("bwrap");
    c.args(BWRAP_ISOLATION);
    match &policy.build_env {
        BuildEnv::Image { root, .. } => image_root(&mut c, root, req.network)?,
        BuildEnv::Host => host_system(&mut c, policy, tool, req.network)?,
        BuildEnv::Missing => return Err(ExecError::NoBuildEnv(req.program.to_owned())),
    }
    c.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
    let mut bind_fd = |flag: &str, tree: &GuestTree, guest: &str| -> Result<(), ExecError> {
        use std::os::fd::AsRawFd;
        let fd = tree.inheritable_fd().map_err(sandbox_err(tree.path()))?;
        c.arg(flag).arg(fd.as_raw_fd().to_string()).arg(guest);
        fds.push(fd);
        Ok(())
    };
    bind_fd("--bind-fd", req.app, crate::api::APP_DIR)?;
    bind_fd("--bind-fd", req.layers, req.layers_guest)?;
    for m in req.build_layers {
        bind_fd("--ro-bind-fd", &m.tree, &m.guest)?;
    }
    c.arg("--clearenv");
    for (k, v) in env {
        c.args(["--setenv", k, v]);
    }
    c.args(["--chdir", req.working_dir, "--"]);
    c.arg(&tool.started_as).args(req.args);
    Ok(c)
}

/// The build image's filesystem as `/`, read-only. Its mount points
/// (`/workspace`, `/layers`, `/proc`, `/dev`, `/tmp`, and `/etc/resolv.conf`
/// and `/etc/hosts` for the network) were made real when it was unpacked,
/// so no link in the image leads a mount elsewhere; `/layers` is a tmpfs
/// under which each buildpack's layers are bound.
pub(super) fn image_root(c: &mut Command, root: &Path, network: bool) -> Result<(), ExecError> {
    c.arg("--ro-bind").arg(root).arg("/");
    c.args(["--tmpfs", crate::api::LAYERS_DIR]);
    if network {
        c.arg("--share-net");
        // The host's resolver settings, as a container runtime gives them;
        // only over a regular file the image holds there.
        let tree = GuestTree::open(root).map_err(sandbox_err(root))?;
        for f in ["/etc/resolv.conf", "/etc/hosts"] {
            let rel = &f[1..];
            if Path::new(f).exists() && tree.open_file_nofollow(rel).is_ok() {
                c.args(["--ro-bind", f, f]);
            }
        }
    }
    Ok(())
}

/// The build host's system dirs, read-only (`--build-image host`).
pub(super) fn host_system(
    c: &mut Command,
    policy: &ExecPolicy,
    tool: &Tool,
    network: bool,
) -> Result<(), ExecError> {
    if network {
        c.arg("--share-net");
        for f in [
            "/etc/resolv.conf",
            "/etc/hosts",
            "/etc/ssl",
            "/etc/ca-certificates",
        ] {
            if Path::new(f).exists() {
                c.args(["--ro-bind", f, f]);
            }
        }
    }
    // The system's programs and libraries, and the two files of /etc
    // they need to be found (Debian's `cc` is /etc/alternatives/cc).
    for f in ["/etc/alternatives", "/etc/ld.so.cache"] {
        if Path::new(f).exists() {
            c.args(["--ro-bind", f, f]);
        }
    }
    for d in [
        "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
    ] {
        let p = Path::new(d);
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(p).map_err(sandbox_err(p))?;
                c.arg("--symlink").arg(target).arg(d);
            }
            Ok(m) if m.is_dir() => {
                c.args(["--ro-bind", d, d]);
            }
            _ => {}
        }
    }
    let mut ro: Vec<PathBuf> = Vec::new();
    if !tool.in_layer {
        ro.extend(tool_bind(&tool.host));
    }
    ro.extend(policy.paths.iter().cloned());
    for p in &ro {
        if p.exists() && !p.starts_with("/usr") {
            c.arg("--ro-bind").arg(p).arg(p);
        }
    }
    Ok(())
}

/// The tool without a sandbox (`--allow-unsandboxed-exec`, no bwrap).
pub(super) fn unsandboxed(req: &ExecRequest<'_>, tool: &Path, env: &[(String, String)]) -> Command {
    // No sandbox at all, by the platform's choice: paths as they are.
    let wd = if let Ok(rest) = Path::new(req.working_dir).strip_prefix(crate::api::APP_DIR) {
        req.app.path().join(rest)
    } else {
        let rest = Path::new(req.working_dir)
            .strip_prefix(req.layers_guest)
            .unwrap_or(Path::new(""));
        req.layers.path().join(rest)
    };
    let mut c = Command::new(tool);
    c.args(req.args)
        .current_dir(wd)
        .env_clear()
        .envs(env.iter().cloned());
    c
}
