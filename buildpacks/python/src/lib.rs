//! `cascade/python`: a Python app with pip, uv, Poetry, Pipenv or no
//! package manager at all.
//!
//! - **Detect**: `requirements.txt`, `pyproject.toml`, `Pipfile(.lock)`,
//!   a `main.py`/`app.py`/`server.py`/`manage.py`, or `.py` files with a
//!   Procfile.
//! - **Runtime**: CPython from an inventory of relocatable builds laid out
//!   as python-build-standalone's "install_only" (`python/bin/python3`,
//!   `python/lib/...`): the newest release that `BP_PYTHON_VERSION`,
//!   `.python-version`, `runtime.txt` or `requires-python` allows, for the
//!   image's os/arch, fetched with the `fetch` capability and checked
//!   against its sha256 into the `python` layer, kept while the release
//!   holds. A platform's mirror: `BP_PYTHON_INVENTORY=<URL>` (pinned by
//!   `BP_PYTHON_INVENTORY_SHA256`) or `=<path in the app>`.
//! - **Dependencies**: see [`install`].
//! - **Process**: the Procfile's when there is one (`cascade/procfile`
//!   follows in the group), else `web` from what the app is ([`web`]).

pub mod install;
pub mod pipfile;
pub mod project;
pub mod version;
pub mod web;

use cascade_sdk::inventory::{Artifact, Inventory};
use cascade_sdk::{
    BuildContext, BuildResult, Buildpack, DetectContext, DetectResult, EnvOp, EnvScope, Layer,
    LayerTypes, Process, Result, log,
};

/// The inventory shipped with the buildpack.
pub const BUNDLED_INVENTORY: &str = include_str!("../inventory.toml");

#[derive(Default)]
pub struct Python;

impl Buildpack for Python {
    fn detect(&self, ctx: &DetectContext) -> Result<DetectResult> {
        Ok(match project::detect(ctx.app_dir()) {
            Some(_) => DetectResult::pass(),
            None => DetectResult::fail(
                "no requirements.txt, pyproject.toml, Pipfile, main.py, app.py, server.py or manage.py",
            ),
        })
    }

    fn build(&self, ctx: &BuildContext) -> Result<BuildResult> {
        let app = ctx.app_dir();
        // Everything that can be refused is refused before downloading.
        let manager = project::manager(app)?;
        project::check_lock(app, manager)?;
        let request = version::requested(
            ctx.platform_env()
                .get("BP_PYTHON_VERSION")
                .map(String::as_str),
            app,
        )?;
        let inventory = Inventory::load(ctx, "PYTHON", BUNDLED_INVENTORY)?;
        let target = ctx.target();
        let (artifact, version) =
            version::select(&inventory, request.as_ref(), &target.os, &target.arch)?;
        log::info(format!(
            "CPython {version} ({})",
            request.as_ref().map_or_else(
                || format!("the newest in {}", inventory.source),
                |r| format!("{}: {}", r.source, r.text)
            )
        ));
        let version = version.to_string();
        let runtime = runtime_layer(ctx, artifact, &version)?;
        let python = runtime.path().join("bin/python3");
        let installed = install::install(
            ctx,
            manager,
            &install::Runtime {
                python: &python,
                version: &version,
            },
        )?;

        let mut result = BuildResult::new().layer(runtime);
        for layer in installed.layers {
            result = result.layer(layer);
        }
        if app.join("Procfile").is_file() {
            log::info("processes: the Procfile's");
            return Ok(result);
        }
        let found = web::infer(
            app,
            &web::Installed {
                scripts: &installed.scripts,
                python: &installed.python,
            },
        );
        match found {
            Some(web) => {
                log::info(format!("web: {} ({})", web.command.join(" "), web.why));
                result = result.process(Process::new("web", web.command).default(true));
            }
            None => log::warn(
                "no web process: no Procfile, no Django project, ASGI or WSGI app with its server installed, and no main.py, app.py or server.py",
            ),
        }
        Ok(result)
    }
}

/// The `python` layer: the release unpacked, its `python/` top directory
/// stripped; kept while the release is the same.
fn runtime_layer(ctx: &BuildContext, artifact: &Artifact, version: &str) -> Result<Layer> {
    let layer = ctx.cached_layer(
        "python",
        LayerTypes::LAUNCH | LayerTypes::BUILD | LayerTypes::CACHE,
        artifact,
    )?;
    if layer.is_reused() {
        log::info(format!("CPython {version} unchanged: reusing its layer"));
    } else {
        // Relocatable install_only builds: python/bin/python3, python/lib/...
        artifact.install(ctx, &layer, 1, "bin/python3")?;
        log::info(format!("installed CPython {version}"));
    }
    Ok(layer
        .env(EnvScope::Launch, EnvOp::Default, "PORT", "8080", None)
        .env(EnvScope::All, EnvOp::Default, "PYTHONUNBUFFERED", "1", None)
        .env(EnvScope::All, EnvOp::Default, "LANG", "C.UTF-8", None)
        .sbom(artifact.sbom("cpython")))
}

cascade_sdk::export_buildpack!(Python);
