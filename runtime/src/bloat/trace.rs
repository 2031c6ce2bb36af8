//! Observed use: the image's process run on this machine (as `cascade run`
//! runs it: its rootfs unpacked privately, bubblewrap, no network unless a
//! port is given) under `strace -f`, optionally probed, and every file it
//! opened or executed recorded.
//!
//! Why strace: it is in every distribution, it follows every thread and
//! child, and it needs no privilege beyond tracing our own child. seccomp
//! user notification would need a supervisor in the sandbox and cannot
//! see opens the kernel handles for the loader; fanotify needs
//! CAP_SYS_ADMIN. The cost: the process runs slower while traced, which a
//! probe does not mind. Only what happens after the process's own
//! `execve` counts, so bubblewrap's setup is not the image's use.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::guest_tree::GuestTree;
use crate::inspect::Inspection;
use crate::launch::{self, LaunchError};
use crate::oci::store::{Oci, ReadImage};

/// What to do once the process is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Nothing: let it run for the settle time.
    None,
    /// `GET /` on `127.0.0.1:PORT` once the port answers.
    Http,
    /// Run this command on the host (a load generator, `curl`), then stop.
    Command(Vec<String>),
}

/// How a trace runs.
#[derive(Debug, Clone)]
pub struct TraceOptions {
    /// The process type to start (default: the image's default process).
    pub process: Option<String>,
    /// Set `PORT` and share the host's network (as `cascade run --port`).
    pub port: Option<u16>,
    pub probe: Probe,
    /// How long to wait for the port, or to let a process without one run.
    pub settle: Duration,
    /// Where the rootfs is unpacked (under the cache dir).
    pub scratch: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(
        "--trace runs the process under strace, and strace is not on PATH (Debian: apt-get install strace)"
    )]
    NoStrace,
    #[error(
        "--trace runs the process under bubblewrap, and bwrap is not on PATH (Debian: apt-get install bubblewrap)"
    )]
    NoBwrap,
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error("the traced process: {0}")]
    Io(#[from] std::io::Error),
    #[error("the probe: {0}")]
    Probe(String),
}

/// The files a traced process opened or executed, as paths inside the
/// image.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub paths: BTreeSet<String>,
    pub probe: String,
}

/// What the report says of a trace.
#[derive(Debug, Clone, Serialize)]
pub struct TraceSummary {
    pub tool: &'static str,
    pub probe: String,
    pub files_opened: usize,
}

impl Loaded {
    pub fn summary(&self) -> TraceSummary {
        TraceSummary {
            tool: "strace",
            probe: self.probe.clone(),
            files_opened: self.paths.len(),
        }
    }
}

/// Run `read`'s process under strace with `options`, probe it, stop it.
pub fn run(
    name: &str,
    read: &ReadImage,
    inspection: &Inspection,
    oci: &Oci,
    options: &TraceOptions,
) -> Result<Loaded, TraceError> {
    if crate::exec::find_tool("strace").is_none() {
        return Err(TraceError::NoStrace);
    }
    if !crate::exec::have_bwrap() {
        return Err(TraceError::NoBwrap);
    }
    // Something already answering there would be probed instead.
    if let Some(port) = options.port
        && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    {
        return Err(TraceError::Probe(format!(
            "port {port} is in use on this machine: pick a free one"
        )));
    }
    let env: Vec<String> = options.port.iter().map(|p| format!("PORT={p}")).collect();
    let plan = launch::plan(
        inspection,
        &read.config,
        options.process.as_deref(),
        &[],
        &env,
    )?;
    std::fs::create_dir_all(&options.scratch)?;
    let scratch = tempfile::Builder::new()
        .prefix("trace-")
        .tempdir_in(&options.scratch)?;
    let root_path = scratch.path().join("rootfs");
    let root = GuestTree::create(&root_path)?;
    launch::unpack(oci, read, name, &root)?;
    launch::prepare_mount_points(&root)?;
    let log = scratch.path().join("strace.log");
    let inner = launch::command(&root_path, &plan, options.port.is_some());
    let mut cmd = Command::new("strace");
    // -I1: strace ends on SIGTERM (with -o FILE PROG it blocks fatal
    // signals by default).
    cmd.args(["-f", "-qq", "-z", "-y", "-I1", "-s", "4096"])
        .args([
            "-e",
            "trace=open,openat,openat2,execve,execveat,clone,clone3,fork,vfork",
        ])
        .args(["-e", "signal=none", "-o"])
        .arg(&log)
        .arg("--")
        .arg(inner.get_program())
        .args(inner.get_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn()?;
    let probed = probe(options, &mut child, &log);
    // strace detaches and ends on SIGTERM; bubblewrap dies with its
    // parent, and the process with its PID namespace.
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    );
    let _ = child.wait();
    let paths = std::fs::File::open(&log)
        .map(|f| {
            parse(
                std::io::BufReader::new(f.take(MAX_LOG)),
                plan.argv.first().map_or("", String::as_str),
                &plan.working_dir,
            )
        })
        .unwrap_or_default();
    let _ = root.open_up();
    drop(root);
    drop(scratch);
    Ok(Loaded {
        paths,
        probe: probed?,
    })
}

/// Bytes of strace's log read at most (and past which the process is
/// stopped), and paths kept.
const MAX_LOG: u64 = 256 << 20;
const MAX_PATHS: usize = 1_000_000;

/// Wait for the process to be up, probe it; what the probe did. A process
/// whose trace grows past [`MAX_LOG`] is stopped where it is.
fn probe(
    options: &TraceOptions,
    child: &mut std::process::Child,
    log: &std::path::Path,
) -> Result<String, TraceError> {
    let deadline = Instant::now() + options.settle;
    let exited = |child: &mut std::process::Child| {
        child.try_wait().ok().flatten().is_some()
            || std::fs::metadata(log).is_ok_and(|m| m.len() > MAX_LOG)
    };
    if let Some(port) = options.port {
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if exited(child) {
                return Err(TraceError::Probe(format!(
                    "the process ended before port {port} answered"
                )));
            }
            if Instant::now() > deadline {
                return Err(TraceError::Probe(format!(
                    "port {port} did not answer within {} s",
                    options.settle.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    match &options.probe {
        Probe::None => {
            if options.port.is_none() {
                while !exited(child) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Ok("none".into())
        }
        Probe::Http => {
            let port = options
                .port
                .ok_or_else(|| TraceError::Probe("an HTTP probe needs --port".into()))?;
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))
                .map_err(|e| TraceError::Probe(e.to_string()))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
            // One deadline for the whole answer, not one per read.
            let until = Instant::now() + Duration::from_secs(30);
            let mut answer = Vec::new();
            let mut buf = [0u8; 8192];
            while answer.len() < 1 << 20 {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                s.set_read_timeout(Some(left))?;
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                }
            }
            let status = String::from_utf8_lossy(&answer)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            if !status.starts_with("HTTP/") {
                return Err(TraceError::Probe(format!(
                    "GET / on port {port} got no HTTP answer"
                )));
            }
            Ok(format!("GET http://127.0.0.1:{port}/: {status}"))
        }
        Probe::Command(command) => {
            let (program, rest) = command
                .split_first()
                .ok_or_else(|| TraceError::Probe("an empty probe command".into()))?;
            let status = Command::new(program)
                .args(rest)
                .status()
                .map_err(|e| TraceError::Probe(format!("{program}: {e}")))?;
            Ok(format!("{}: {status}", command.join(" ")))
        }
    }
}

/// The paths the process opened or executed, from strace's log: only
/// from the process's own `execve` of `program` on (bubblewrap's setup
/// before it is not the image's), in it and every process that appears
/// after it (its children and threads: their clone results are numbered
/// in the process's PID namespace, strace's prefixes in the host's, so a
/// child is known by being new, not by the number its parent got).
fn parse(log: impl std::io::BufRead, program: &str, working_dir: &str) -> BTreeSet<String> {
    let mut before: BTreeSet<u32> = BTreeSet::new();
    let mut traced: BTreeSet<u32> = BTreeSet::new();
    let mut pending: BTreeMap<u32, (String, String)> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in log.lines() {
        let Ok(line) = line else {
            break;
        };
        if out.len() >= MAX_PATHS {
            break;
        }
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if traced.is_empty() {
            before.insert(pid);
        } else if !before.contains(&pid) {
            traced.insert(pid);
        }
        let rest = rest.trim_start();
        // A call split across threads: `<... openat resumed>) = 3`.
        if let Some(resumed) = rest.strip_prefix("<... ") {
            if let Some((call, path)) = pending.remove(&pid)
                && resumed.starts_with(&call)
                && succeeded(resumed)
            {
                record(
                    &mut traced,
                    &mut out,
                    pid,
                    &call,
                    &path,
                    program,
                    working_dir,
                );
            }
            continue;
        }
        let Some((call, args)) = rest.split_once('(') else {
            continue;
        };
        let Some(path) = path_argument(call, args) else {
            continue;
        };
        if rest.ends_with("<unfinished ...>") {
            pending.insert(pid, (call.to_owned(), path));
        } else if succeeded(rest) {
            record(
                &mut traced,
                &mut out,
                pid,
                call,
                &path,
                program,
                working_dir,
            );
        }
    }
    out
}

fn record(
    traced: &mut BTreeSet<u32>,
    out: &mut BTreeSet<String>,
    pid: u32,
    call: &str,
    path: &str,
    program: &str,
    working_dir: &str,
) {
    let exec = call.starts_with("execve");
    if !traced.contains(&pid) {
        // The process's own start: its program, found by bubblewrap.
        let started = exec
            && (path == program
                || (!program.contains('/') && path.rsplit('/').next() == Some(program)));
        if !started {
            return;
        }
        traced.insert(pid);
    }
    let full = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", working_dir.trim_end_matches('/'))
    };
    out.insert(full);
}

fn succeeded(line: &str) -> bool {
    line.rsplit_once(" = ")
        .is_some_and(|(_, v)| !v.trim_start().starts_with('-') && !v.starts_with('?'))
}

/// The path a call opened or executed: its first string argument, joined
/// to the directory of a `dirfd` strace printed (`3</usr/lib>`).
fn path_argument(call: &str, args: &str) -> Option<String> {
    if !matches!(call, "open" | "openat" | "openat2" | "execve" | "execveat") {
        return None;
    }
    let start = args.find('"')? + 1;
    let end = start + args[start..].find('"')?;
    let path = &args[start..end];
    let dir = args[..start.saturating_sub(1)]
        .split_once('<')
        .and_then(|(_, d)| d.split_once('>'))
        .map(|(d, _)| d);
    Some(match dir {
        Some(dir) if !path.starts_with('/') => format!("{}/{path}", dir.trim_end_matches('/')),
        _ => path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_process_and_its_children_count_from_its_execve_on() {
        let log = r#"100 execve("/usr/bin/bwrap", ["bwrap", "--"], 0x7ffd /* 3 vars */) = 0
100 openat(AT_FDCWD</home/me>, "/usr/lib/x86_64-linux-gnu/libselinux.so.1", O_RDONLY|O_CLOEXEC) = 3</usr/lib/x86_64-linux-gnu/libselinux.so.1>
100 clone3({flags=CLONE_NEWNS}, 88) = 101
101 execve("/usr/local/bin/python3", ["python3", "app.py"], 0x55 /* 2 vars */) = -1 ENOENT (No such file or directory)
101 execve("/usr/bin/python3", ["python3", "app.py"], 0x55 /* 2 vars */) = 0
101 openat(AT_FDCWD</workspace>, "/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY|O_CLOEXEC) = 3</usr/lib/x86_64-linux-gnu/libc.so.6>
101 openat(3</usr/lib/python3.11>, "encodings/__init__.py", O_RDONLY) = 4</usr/lib/python3.11/encodings/__init__.py>
101 openat(AT_FDCWD</workspace>, "app.py", O_RDONLY|O_CLOEXEC) = 3</workspace/app.py>
101 clone3({flags=CLONE_VM}, 88) = 102
102 openat(AT_FDCWD</workspace>, "/usr/lib/x86_64-linux-gnu/libexpat.so.1", O_RDONLY <unfinished ...>
101 openat(AT_FDCWD</workspace>, "/etc/gone", O_RDONLY) = -1 ENOENT (No such file or directory)
102 <... openat resumed>) = 5</usr/lib/x86_64-linux-gnu/libexpat.so.1>
"#;
        let paths: Vec<String> = parse(log.as_bytes(), "python3", "/workspace")
            .into_iter()
            .collect();
        assert_eq!(
            paths,
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/usr/bin/python3",
                "/usr/lib/python3.11/encodings/__init__.py",
                "/usr/lib/x86_64-linux-gnu/libexpat.so.1",
                "/workspace/app.py",
            ]
        );
    }
}
