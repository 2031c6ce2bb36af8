//! Running a tool of the build environment (the `exec` capability), in the
//! style of `std::process::Command`.
//!
//! The tool must be listed in buildpack.toml (`[capabilities] exec =
//! ["cargo"]`) and granted by the platform (`cascade build --allow
//! exec:cargo`); it runs in a sandbox that sees the app at `/workspace`,
//! this buildpack's layers, earlier build layers and the system, with no
//! network unless declared (`network = true`) and granted. Its output goes
//! to the build log as it runs.
//!
//! ```no_run
//! # fn f() -> cascade_sdk::Result<()> {
//! let out = cascade_sdk::exec::Command::new("cargo")
//!     .args(["build", "--release"])
//!     .env("CARGO_TARGET_DIR", "/layers/example_rust/target")
//!     .run_ok()?;
//! # Ok(()) }
//! ```

use std::ffi::OsStr;
use std::path::Path;

use crate::BuildpackError;
use crate::bindings::cascade::buildpack::exec as wit;
use crate::bindings::cascade::buildpack::types::EnvVar;

/// A tool invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    working_dir: Option<String>,
}

/// What a finished tool left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Exit status; -1 when a signal ended it.
    pub status: i32,
    /// The last 64 KiB of its stdout.
    pub stdout: Vec<u8>,
    /// The last 64 KiB of its stderr.
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// A program, argument or value as the host gets it: text (WASI paths are
/// UTF-8; anything else is shown lossily rather than refused here).
fn text(s: impl AsRef<OsStr>) -> String {
    s.as_ref().to_string_lossy().into_owned()
}

impl Command {
    /// A declared tool: a name the host finds on its PATH (`"cargo"`), or
    /// the absolute path of a program this buildpack installed in one of
    /// its layers (or an earlier buildpack's build layer), such as a fetched
    /// `node`. Either way the capability is named by the file name
    /// (`exec = ["node"]`, `--allow exec:node`).
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: text(program),
            args: Vec::new(),
            env: Vec::new(),
            working_dir: None,
        }
    }

    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(text(arg));
        self
    }

    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(text));
        self
    }

    /// A variable the tool sees (it sees no others but PATH, HOME=/tmp and
    /// SOURCE_DATE_EPOCH).
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((name.into(), text(value)));
        self
    }

    /// Where it runs: under the app or this buildpack's layers (default:
    /// the app).
    #[must_use]
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.working_dir = Some(dir.as_ref().display().to_string());
        self
    }

    /// Run it; `Err` when it could not run at all (not granted, not found).
    pub fn run(&self) -> Result<Output, BuildpackError> {
        let command = wit::Command {
            program: self.program.clone(),
            args: self.args.clone(),
            env: self
                .env
                .iter()
                .map(|(name, value)| EnvVar {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            working_dir: self.working_dir.clone(),
        };
        wit::run(&command)
            .map(|o| Output {
                status: o.status,
                stdout: o.stdout,
                stderr: o.stderr,
            })
            .map_err(|e| BuildpackError::new(format!("running {}: {e}", self.program)))
    }

    /// Run it and fail unless it exits 0, with the end of its stderr.
    pub fn run_ok(&self) -> Result<Output, BuildpackError> {
        let out = self.run()?;
        if out.success() {
            return Ok(out);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(BuildpackError::new(format!(
            "{} {} exited with status {}: {}",
            self.program,
            self.args.join(" "),
            out.status,
            tail.join(" | ")
        )))
    }
}
