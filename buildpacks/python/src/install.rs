//! The app's dependencies, installed by the CPython this buildpack fetched
//! (the only program it asks the platform to run: `exec:python3`):
//!
//! - `requirements.txt` and `Pipfile.lock`: `pip install --user` with
//!   `PYTHONUSERBASE` at the `packages` layer (a Pipfile.lock is first
//!   turned into pinned, hashed requirements, so Pipenv is not needed);
//! - `uv.lock`: `uv sync --frozen` into a venv in the `packages` layer;
//! - `poetry.lock`: `poetry install --no-root --only main` into a venv in
//!   the `packages` layer.
//!
//! uv and Poetry are pip-installed (pinned, `BP_UV_VERSION` /
//! `BP_POETRY_VERSION` to choose another) into a venv in the `tools`
//! layer, which is cached but never shipped; python starts them through a
//! one-line `os.execv`, so the host resolves only the granted python. The
//! `packages` layer is kept while the lock file's sha256, the manager and
//! the Python version hold; pip's, uv's and Poetry's caches live in a cache
//! layer.

use std::path::{Path, PathBuf};

use cascade_sdk::toml::Table;
use cascade_sdk::{BuildContext, BuildpackError, Layer, LayerTypes, Result, exec, log};

use crate::project::{self, Manager};

/// uv pinned by this buildpack (`BP_UV_VERSION` for another).
pub const UV_VERSION: &str = "0.13.9";
/// Poetry pinned by this buildpack (`BP_POETRY_VERSION` for another).
pub const POETRY_VERSION: &str = "2.5.1";

/// Starts the program in argv[1] with the rest as its arguments: how the
/// granted python runs a tool it installed.
const TRAMPOLINE: &str = "import os, sys; os.execv(sys.argv[1], sys.argv[1:])";

/// The CPython layer, as the installers need it.
pub struct Runtime<'a> {
    /// `<layer>/bin/python3`.
    pub python: &'a Path,
    /// `3.12.6`.
    pub version: &'a str,
}

/// What the install contributed.
pub struct Installed {
    /// `packages` (launch) and the cache layers, for the result.
    pub layers: Vec<Layer>,
    /// Where the packages' scripts are (`gunicorn`, `uvicorn`).
    pub scripts: PathBuf,
    /// The interpreter that sees the packages: the venv's, or the
    /// runtime's (which finds `--user` packages through PYTHONUSERBASE).
    pub python: PathBuf,
}

/// What the `packages` layer's content depends on.
#[derive(serde::Serialize)]
struct PackagesMetadata<'a> {
    manager: &'static str,
    lockfile_sha256: String,
    python: &'a str,
    /// `uv==0.13.9`: another tool version may lay the venv out differently.
    tool: Option<String>,
}

/// What the `tools` layer holds.
#[derive(serde::Serialize)]
struct ToolsMetadata<'a> {
    requirement: &'a str,
    python: &'a str,
}

pub fn install(ctx: &BuildContext, manager: Manager, runtime: &Runtime<'_>) -> Result<Installed> {
    let app = ctx.app_dir();
    let Some(lockfile) = manager.lockfile() else {
        log::info("no dependencies to install");
        return Ok(Installed {
            layers: Vec::new(),
            scripts: PathBuf::from("/nonexistent"),
            python: runtime.python.to_path_buf(),
        });
    };
    let tool = tool_requirement(ctx, manager)?;
    let lockfile_sha256 = match manager {
        // What requirements.txt reads from the app counts too.
        Manager::Pip => project::requirements_digest(app, lockfile)?,
        _ => cascade_sdk::fs::sha256_file(app.join(lockfile))?,
    };
    let metadata = PackagesMetadata {
        manager: manager.name(),
        lockfile_sha256,
        python: runtime.version,
        tool: tool.clone(),
    };
    let cache = ctx.cached_layer("cache", LayerTypes::CACHE, &Table::new())?;
    let packages = ctx.cached_layer(
        "packages",
        LayerTypes::LAUNCH | LayerTypes::BUILD | LayerTypes::CACHE,
        &metadata,
    )?;
    let venv = packages.path().join("venv");
    let uses_venv = matches!(manager, Manager::Uv | Manager::Poetry);
    let mut layers = vec![cache.clone()];
    // Declared whenever the manager needs it, so the cache keeps it.
    let tools = match &tool {
        Some(requirement) => Some(tools_layer(ctx, runtime, requirement, &cache)?),
        None => None,
    };
    if packages.is_reused() {
        log::info(format!(
            "{lockfile} and Python {} unchanged: reusing the installed packages",
            runtime.version
        ));
    } else {
        log::info(format!("installing {lockfile} with {}", manager.name()));
        let into = Into {
            app,
            packages: packages.path(),
            venv: &venv,
            cache: cache.path(),
            tools: tools.as_ref().map(Layer::path),
        };
        run_manager(manager, runtime, &into)?;
    }
    layers.extend(tools);
    let (packages, scripts, python) = if uses_venv {
        let bin = venv.join("bin");
        let layer = packages
            .env_override("VIRTUAL_ENV", venv.display().to_string())
            .env_prepend_path("PATH", bin.display().to_string());
        let python = bin.join("python");
        (layer, bin, python)
    } else {
        let base = packages.path().display().to_string();
        let layer = packages.env_override("PYTHONUSERBASE", base);
        let bin = layer.path().join("bin");
        (layer, bin, runtime.python.to_path_buf())
    };
    layers.push(packages);
    Ok(Installed {
        layers,
        scripts,
        python,
    })
}

/// Where an install reads and writes.
struct Into<'a> {
    app: &'a Path,
    /// The `packages` layer (pip's `--user` base).
    packages: &'a Path,
    /// The venv in it, for uv and Poetry.
    venv: &'a Path,
    /// The cache layer (pip's, uv's and Poetry's caches).
    cache: &'a Path,
    /// The `tools` layer, for uv and Poetry.
    tools: Option<&'a Path>,
}

/// Install the app's lock with `manager`.
fn run_manager(manager: Manager, runtime: &Runtime<'_>, into: &Into<'_>) -> Result<()> {
    let pip = |requirements: &Path| {
        python(runtime)
            .args(["-m", "pip", "install", "--user", "--no-input"])
            .args(["--disable-pip-version-check", "--no-warn-script-location"])
            .args(["--progress-bar", "off", "--cache-dir"])
            .arg(into.cache.join("pip"))
            .arg("-r")
            .arg(requirements)
            .env("PYTHONUSERBASE", into.packages)
            .current_dir(into.app)
            .run_ok()
    };
    let tools = || {
        into.tools
            .ok_or_else(|| BuildpackError::new("no tools layer"))
    };
    match manager {
        Manager::Pip => {
            pip(&into.app.join("requirements.txt"))?;
        }
        Manager::Pipenv => {
            let text = std::fs::read_to_string(into.app.join("Pipfile.lock"))
                .map_err(|e| BuildpackError::new(format!("reading Pipfile.lock: {e}")))?;
            let requirements = crate::pipfile::requirements(&text)?;
            let file = into.cache.join("Pipfile.lock.requirements.txt");
            cascade_sdk::fs::write(&file, requirements)?;
            pip(&file)?;
        }
        Manager::Uv => {
            trampoline(runtime, &tools()?.join("venv/bin/uv"))
                .args(["sync", "--frozen", "--no-dev", "--no-install-project"])
                .env("UV_PROJECT_ENVIRONMENT", into.venv)
                .env("UV_PYTHON", runtime.python)
                .env("UV_PYTHON_DOWNLOADS", "never")
                .env("UV_CACHE_DIR", into.cache.join("uv"))
                .env("UV_LINK_MODE", "copy")
                .env("UV_NO_PROGRESS", "1")
                .current_dir(into.app)
                .run_ok()?;
        }
        Manager::Poetry => {
            python(runtime)
                .args(["-m", "venv"])
                .arg(into.venv)
                .run_ok()?;
            trampoline(runtime, &tools()?.join("venv/bin/python"))
                .args(["-m", "poetry", "install", "--no-root", "--only", "main"])
                .args(["--no-interaction", "--no-ansi"])
                .env("VIRTUAL_ENV", into.venv)
                .env("POETRY_VIRTUALENVS_CREATE", "false")
                .env("POETRY_CACHE_DIR", into.cache.join("poetry"))
                .current_dir(into.app)
                .run_ok()?;
        }
        Manager::None => {}
    }
    Ok(())
}

/// `uv==X` or `poetry==X` for the managers that need a tool; a version
/// the platform gives (`BP_UV_VERSION`, `BP_POETRY_VERSION`) must be an
/// exact release.
fn tool_requirement(ctx: &BuildContext, manager: Manager) -> Result<Option<String>> {
    let (tool, var, pinned) = match manager {
        Manager::Uv => ("uv", "BP_UV_VERSION", UV_VERSION),
        Manager::Poetry => ("poetry", "BP_POETRY_VERSION", POETRY_VERSION),
        _ => return Ok(None),
    };
    let version = ctx.platform_env().get(var).map_or(pinned, String::as_str);
    let exact = !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '_' | '-'))
        && version.starts_with(|c: char| c.is_ascii_digit());
    if !exact {
        return Err(BuildpackError::new(format!(
            "{var}={version}: expected an exact release such as {pinned}"
        )));
    }
    Ok(Some(format!("{tool}=={version}")))
}

/// A venv holding `requirement`, kept while it and the Python version hold.
fn tools_layer(
    ctx: &BuildContext,
    runtime: &Runtime<'_>,
    requirement: &str,
    cache: &Layer,
) -> Result<Layer> {
    let layer = ctx.cached_layer(
        "tools",
        LayerTypes::CACHE,
        &ToolsMetadata {
            requirement,
            python: runtime.version,
        },
    )?;
    if layer.is_reused() {
        log::info(format!("{requirement} unchanged: reusing it"));
        return Ok(layer);
    }
    let venv = layer.path().join("venv");
    python(runtime).args(["-m", "venv"]).arg(&venv).run_ok()?;
    trampoline(runtime, &venv.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--no-input",
            "--disable-pip-version-check",
        ])
        .args(["--progress-bar", "off", "--cache-dir"])
        .arg(cache.path().join("pip"))
        .arg(requirement)
        .run_ok()?;
    log::info(format!("installed {requirement}"));
    Ok(layer)
}

/// The granted python. It writes no bytecode of its own as it imports:
/// an import-time `.pyc` records its source's mtime, so the runtime layer
/// would differ from build to build (pip's compile of what it installs is
/// checked by hash under SOURCE_DATE_EPOCH, and stays reproducible).
fn python(runtime: &Runtime<'_>) -> exec::Command {
    exec::Command::new(runtime.python).env("PYTHONDONTWRITEBYTECODE", "1")
}

/// `program` started by the granted python.
fn trampoline(runtime: &Runtime<'_>, program: &Path) -> exec::Command {
    python(runtime).args(["-c", TRAMPOLINE]).arg(program)
}
