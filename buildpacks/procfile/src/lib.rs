//! `cascade/procfile`: passes when the app has a `Procfile` and turns each
//! entry into a process. The first `web` entry, or else the first entry, is
//! the default process.
//!
//! A command with no shell syntax is exec'd directly (it works on a run image
//! with no shell, such as `scratch`); anything else runs under `/bin/sh -c`.

mod procfile;

use cascade_sdk::{
    BuildContext, BuildResult, Buildpack, BuildpackError, DetectContext, DetectResult, Process,
    Result, ResultExt,
};

pub use procfile::{Entry, ParseError, parse};

#[derive(Default)]
pub struct ProcfileBuildpack;

impl Buildpack for ProcfileBuildpack {
    fn detect(&self, ctx: &DetectContext) -> Result<DetectResult> {
        Ok(if ctx.app_dir().join("Procfile").is_file() {
            DetectResult::pass()
        } else {
            DetectResult::fail("no Procfile in the app directory")
        })
    }

    fn build(&self, ctx: &BuildContext) -> Result<BuildResult> {
        let text =
            std::fs::read_to_string(ctx.app_dir().join("Procfile")).context("reading Procfile")?;
        let entries = parse(&text).map_err(|e| {
            BuildpackError::new(format!("Procfile: {e}"))
                .hint("each line must look like `web: ./server --port 8080`")
        })?;
        if entries.is_empty() {
            return Err(BuildpackError::new("Procfile declares no processes")
                .hint("add a line such as `web: ./server`"));
        }
        let default = entries.iter().position(|e| e.kind == "web").unwrap_or(0);
        let mut result = BuildResult::new();
        for (i, entry) in entries.into_iter().enumerate() {
            cascade_sdk::log::info(format!("process {}: {}", entry.kind, entry.command));
            let command = procfile::to_argv(&entry.command);
            result = result.process(Process::new(entry.kind, command).default(i == default));
        }
        Ok(result)
    }
}

cascade_sdk::export_buildpack!(ProcfileBuildpack);
