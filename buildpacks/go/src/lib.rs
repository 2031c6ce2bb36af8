//! `cascade/go`: builds a Go module, or a `package main` with no go.mod,
//! with `go` (the `exec` capability) and puts its binaries in a launch
//! layer.
//!
//! - The build image's `go`, unless go.mod asks for a newer one (or
//!   `BP_GO_VERSION` names one, or the image has none): then a release
//!   from the inventory ([`toolchain`]).
//! - `go build -trimpath -buildvcs=false -o <dir>/ ./...` builds every main
//!   package of the module; `GOCACHE` and `GOPATH` (the module cache) are
//!   cache layers, so a rebuild compiles only what changed. `vendor/` is
//!   used when present (`-mod=vendor`). The platform's module settings
//!   (`GOPROXY`, `GOFLAGS`, `GOPRIVATE`, `GONOSUMDB`...) reach go. Files
//!   of `package main` with no go.mod are built as one program, `app`
//!   (GOPATH mode: the standard library only).
//! - Binaries are static (`CGO_ENABLED=0`) so they run on any run image,
//!   `scratch` included; `BP_GO_CGO=true` turns cgo back on.
//! - One process per binary, named after it; the module's own binary (the
//!   last element of its path, as `go build` names it), else the first, is
//!   `web` and the default.
//! - The `bin` layer is reused, blob and all, when the binaries' bytes did
//!   not change.

pub mod toolchain;

use std::path::Path;

use cascade_sdk::toml::Table;
use cascade_sdk::{
    BuildContext, BuildResult, Buildpack, BuildpackError, DetectContext, DetectResult, LayerTypes,
    Result, ResultExt, exec,
};

#[derive(Default)]
pub struct Go;

/// The platform's module settings that reach go (`--env`).
const PLATFORM_VARS: [&str; 8] = [
    "GOPROXY",
    "GOFLAGS",
    "GOPRIVATE",
    "GONOPROXY",
    "GONOSUMDB",
    "GONOSUMCHECK",
    "GOSUMDB",
    "GOINSECURE",
];

/// Whether the app's root holds Go files of `package main`.
pub fn main_package(app: &Path) -> bool {
    cascade_sdk::fs::read_dir_sorted(app)
        .unwrap_or_default()
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "go") && p.is_file())
        .filter(|p| !p.to_string_lossy().ends_with("_test.go"))
        .any(|p| {
            std::fs::read_to_string(p).is_ok_and(|text| {
                text.lines()
                    .map(str::trim)
                    .find(|l| l.starts_with("package "))
                    .is_some_and(|l| l.split_whitespace().nth(1) == Some("main"))
            })
        })
}

/// The module path of a go.mod (`module example.com/app`, maybe quoted).
pub fn module_path(go_mod: &str) -> Option<String> {
    go_mod.lines().find_map(|line| {
        let line = line.split("//").next().unwrap_or_default().trim();
        let rest = line.strip_prefix("module")?;
        if !rest.starts_with([' ', '\t', '"']) {
            return None;
        }
        let path = rest.trim().trim_matches(['"', '`']).trim();
        (!path.is_empty()).then(|| path.to_owned())
    })
}

/// The binary `go build` makes of the module's root package: the last path
/// element, or the one before a major-version suffix (`.../app/v2`).
pub fn binary_name(module: &str) -> &str {
    let mut parts = module.rsplit('/');
    let last = parts.next().unwrap_or(module);
    let is_major =
        last.len() > 1 && last.starts_with('v') && last[1..].bytes().all(|b| b.is_ascii_digit());
    match parts.next() {
        Some(before) if is_major => before,
        _ => last,
    }
}

impl Buildpack for Go {
    fn detect(&self, ctx: &DetectContext) -> Result<DetectResult> {
        let app = ctx.app_dir();
        Ok(DetectResult::pass_if(
            app.join("go.mod").is_file() || main_package(app),
            "no go.mod and no .go files of package main",
        ))
    }

    fn build(&self, ctx: &BuildContext) -> Result<BuildResult> {
        let app = ctx.app_dir();
        let go_mod = match std::fs::read_to_string(app.join("go.mod")) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(BuildpackError::new(format!("reading go.mod: {e}"))),
        };
        let module = match &go_mod {
            Some(text) => Some(module_path(text).ok_or_else(|| {
                BuildpackError::new("go.mod: no module line")
                    .hint("start go.mod with `module <path>`")
            })?),
            None => None,
        };
        let required = go_mod.as_deref().and_then(toolchain::required);
        let tool = toolchain::choose(ctx, required.as_ref())?;

        // Caches: kept between builds, never in the image.
        let cache = ctx.cached_layer("go-build", LayerTypes::CACHE, &Table::new())?;
        let gopath = ctx.cached_layer("go-path", LayerTypes::CACHE, &Table::new())?;
        let out = cache.path().join("out");
        if out.exists() {
            std::fs::remove_dir_all(&out)?;
        }
        std::fs::create_dir_all(&out)?;
        let cgo = ctx.platform_env().get("BP_GO_CGO").map(String::as_str) == Some("true");
        let mut go = exec::Command::new(&tool.program)
            .args(["build", "-trimpath", "-buildvcs=false"])
            .env("GOCACHE", cache.path().join("cache").display().to_string())
            .env("GOPATH", gopath.path().display().to_string())
            .env("GOENV", "off")
            .env("GOTOOLCHAIN", "local")
            .env("GOTELEMETRY", "off")
            .env("CGO_ENABLED", if cgo { "1" } else { "0" })
            .current_dir(app);
        for var in PLATFORM_VARS {
            if let Some(value) = ctx.platform_env().get(var) {
                go = go.env(var, value);
            }
        }
        if module.is_none() {
            // No module: the package main in the app's root, one program.
            go.env("GO111MODULE", "off")
                .arg("-o")
                .arg(out.join("app"))
                .arg(".")
                .run_ok()?;
        } else {
            if app.join("vendor/modules.txt").is_file() {
                go = go.arg("-mod=vendor");
            }
            go.arg("-o")
                .arg(format!("{}/", out.display()))
                .arg("./...")
                .run_ok()?;
        }

        let built: Vec<(String, Vec<u8>)> = cascade_sdk::fs::read_dir_sorted(&out)?
            .into_iter()
            .map(|p| {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                std::fs::read(&p)
                    .map(|bytes| (name.clone(), bytes))
                    .context(format!("reading the built binary {name}"))
            })
            .collect::<Result<_>>()?;
        std::fs::remove_dir_all(&out)?;
        let module = module.unwrap_or_else(|| "app".to_owned());
        if built.is_empty() {
            return Err(BuildpackError::new(format!(
                "module {module}: no main package, so nothing to run"
            ))
            .hint("add a `package main` with func main (in the module root or cmd/<name>/)"));
        }

        let (bin, processes) = cascade_sdk::launch_executables(ctx, &built, binary_name(&module))?;
        let mut result = BuildResult::new().layer(cache).layer(gopath).layer(bin);
        if let Some(layer) = tool.layer {
            result = result.layer(layer);
        }
        for p in processes {
            result = result.process(p);
        }
        Ok(result)
    }
}

cascade_sdk::export_buildpack!(Go);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_paths_and_binary_names() {
        assert_eq!(
            module_path("// c\nmodule example.com/web // x\n\ngo 1.19\n").as_deref(),
            Some("example.com/web")
        );
        assert_eq!(
            module_path("module \"example.com/q\"\n").as_deref(),
            Some("example.com/q")
        );
        assert_eq!(module_path("modules x\ngo 1.19\n"), None);
        assert_eq!(module_path("go 1.19\n"), None);
        assert_eq!(binary_name("example.com/web"), "web");
        assert_eq!(binary_name("example.com/web/v2"), "web");
        assert_eq!(binary_name("web"), "web");
        assert_eq!(binary_name("example.com/v"), "v");
    }
}
