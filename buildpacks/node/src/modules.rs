//! The app's modules: installed by its package manager ([`crate::manager`])
//! with the installed node through the `exec` capability, into the
//! `modules` layer, kept while the lock file's sha256, the manager, the
//! node version and whether dev dependencies are in hold; linked from the
//! app (`/workspace/node_modules`). Then the app's `build` script, when it
//! has one. A server built by its script then gets its production
//! dependencies alone in a `production` launch layer ([`install_production`]),
//! as Heroku prunes: the image carries no devDependencies (their size, and
//! their CVEs), while the build's `modules` stay cached for the next build.

use std::path::{Component, Path, PathBuf};

use cascade_sdk::toml::Table;
use cascade_sdk::{BuildContext, BuildpackError, Layer, LayerTypes, Result, ResultExt, exec, log};

use crate::manager::{Kind, Manager};

/// The installed Node.js, as the installs need it.
pub struct Runtime<'a> {
    /// `<layer>/bin/node`.
    pub node: &'a Path,
    /// `<layer>/lib/node_modules`, where npm is.
    pub node_modules: &'a Path,
    /// `22.1.0`: native addons are built against one node ABI.
    pub version: &'a str,
}

/// What the `modules` layer's content depends on.
#[derive(serde::Serialize)]
struct ModulesMetadata<'a> {
    manager: Option<&'a str>,
    lockfile_sha256: String,
    node: &'a str,
    /// devDependencies too (for a build script).
    dev: bool,
}

/// The modules and the layers that hold them and the caches.
pub struct Installed {
    pub layers: Vec<Layer>,
    /// How to run the manager: the program (node) and its first args.
    pub run: Vec<String>,
    /// The managers' caches (the `cache` layer's dir).
    cache: PathBuf,
}

/// Install the app's modules with `manager`; `dev` keeps devDependencies
/// (the build script needs them); `launch` puts the modules in the image.
pub fn install(
    ctx: &BuildContext,
    manager: &Manager,
    runtime: &Runtime<'_>,
    dev: bool,
    launch: bool,
) -> Result<Installed> {
    let cache = ctx.cached_layer("cache", LayerTypes::CACHE, &Table::new())?;
    // Declared on every build, so the cache keeps it.
    let tools = match &manager.package {
        Some(package) => Some(tools_layer(ctx, runtime, package, &cache)?),
        None => None,
    };
    let run = run_command(ctx, manager, runtime, tools.as_ref());
    let types = if launch {
        LayerTypes::LAUNCH | LayerTypes::BUILD | LayerTypes::CACHE
    } else {
        LayerTypes::BUILD | LayerTypes::CACHE
    };
    let how = Install {
        manager,
        runtime,
        run: &run,
        cache: cache.path(),
    };
    let modules = how.fill_layer(ctx, "modules", dev, types)?;
    let cache_dir = cache.path().to_owned();
    let mut layers = vec![cache, modules];
    layers.extend(tools);
    Ok(Installed {
        layers,
        run,
        cache: cache_dir,
    })
}

/// After the build: the production dependencies alone, installed again
/// (from the managers' warm caches) into the `production` launch layer,
/// which the app's `node_modules` then links to. Yarn Berry is not asked:
/// its production-only install (`workspaces focus`) is not in every
/// release an app's `yarnPath` may pin.
pub fn install_production(
    ctx: &BuildContext,
    manager: &Manager,
    runtime: &Runtime<'_>,
    installed: &Installed,
) -> Result<Layer> {
    let how = Install {
        manager,
        runtime,
        run: &installed.run,
        cache: &installed.cache,
    };
    how.fill_layer(
        ctx,
        "production",
        false,
        LayerTypes::LAUNCH | LayerTypes::CACHE,
    )
}

/// One install of the app's lock file.
struct Install<'a> {
    manager: &'a Manager,
    runtime: &'a Runtime<'a>,
    /// How to run the manager.
    run: &'a [String],
    /// The managers' caches.
    cache: &'a Path,
}

impl Install<'_> {
    /// Install into layer `name` (devDependencies too when `dev`), kept
    /// while the lock, the manager, node and `dev` hold, and link the app's
    /// `node_modules` to it.
    fn fill_layer(
        &self,
        ctx: &BuildContext,
        name: &str,
        dev: bool,
        types: LayerTypes,
    ) -> Result<Layer> {
        let (app, manager) = (ctx.app_dir(), self.manager);
        let metadata = ModulesMetadata {
            manager: manager.package.as_deref().or(Some(manager.name())),
            lockfile_sha256: cascade_sdk::fs::sha256_file(app.join(manager.lockfile))?,
            node: self.runtime.version,
            dev,
        };
        let layer = ctx.cached_layer(name, types, &metadata)?;
        let in_app = app.join("node_modules");
        remove_any(&in_app)?;
        let installed = layer.path().join("node_modules");
        let what = if dev { "" } else { " (production only)" };
        if layer.is_reused() {
            log::info(format!(
                "{} unchanged: reusing node_modules{what}",
                manager.lockfile
            ));
        } else {
            log::info(format!(
                "installing {} with {}{what}",
                manager.lockfile,
                manager.name()
            ));
            let (args, env) = install_args(manager.kind, dev, self.cache);
            let mut cmd = command(self.run).args(&args).current_dir(app);
            if !dev {
                cmd = cmd.env("NODE_ENV", "production");
            }
            for (k, v) in env {
                cmd = cmd.env(k, v);
            }
            cmd.run_ok()?;
            if in_app.is_dir() {
                std::fs::rename(&in_app, &installed)
                    .context("moving node_modules into its layer")?;
            } else {
                std::fs::create_dir_all(&installed)?;
            }
        }
        // The app finds its modules where Node looks first; the link is
        // relative, and resolves the same in the image as here.
        let up = app
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count();
        let mut target = "../".repeat(up);
        target.push_str(installed.display().to_string().trim_start_matches('/'));
        cascade_sdk::fs::symlink(&target, &in_app).context("linking node_modules into the app")?;
        let bin = installed.join(".bin").display().to_string();
        Ok(layer.env_prepend_path("PATH", bin))
    }
}

/// The install command's arguments and env for `kind`, caches under
/// `c`.
fn install_args(kind: Kind, dev: bool, c: &Path) -> (Vec<String>, Vec<(&'static str, String)>) {
    match kind {
        Kind::Npm => {
            let mut args = vec!["ci", "--no-audit", "--no-fund", "--prefer-offline"];
            if !dev {
                args.push("--omit=dev");
            }
            let mut args: Vec<String> = args.into_iter().map(str::to_owned).collect();
            args.extend(["--cache".to_owned(), c.join("npm").display().to_string()]);
            (args, vec![("npm_config_update_notifier", "false".into())])
        }
        Kind::Pnpm => {
            let mut args: Vec<String> =
                ["install", "--frozen-lockfile"].map(str::to_owned).to_vec();
            if !dev {
                args.push("--prod".into());
            }
            args.extend([
                "--store-dir".into(),
                c.join("pnpm-store").display().to_string(),
                // Copies, not hard links into the cache layer's store.
                "--package-import-method".into(),
                "copy".into(),
            ]);
            (args, vec![("CI", "true".into())])
        }
        Kind::YarnClassic => {
            let mut args: Vec<String> = ["install", "--frozen-lockfile", "--non-interactive"]
                .map(str::to_owned)
                .to_vec();
            if !dev {
                args.push("--production=true".into());
            }
            args.extend([
                "--cache-folder".into(),
                c.join("yarn").display().to_string(),
                "--no-progress".into(),
            ]);
            (args, Vec::new())
        }
        Kind::YarnBerry => (
            vec!["install".into(), "--immutable".into()],
            vec![
                // node_modules, which the modules layer holds, rather
                // than Plug'n'Play's loader in the app.
                ("YARN_NODE_LINKER", "node-modules".into()),
                ("YARN_ENABLE_GLOBAL_CACHE", "false".into()),
                (
                    "YARN_CACHE_FOLDER",
                    c.join("yarn-berry").display().to_string(),
                ),
                (
                    "YARN_INSTALL_STATE_PATH",
                    c.join("yarn-install-state.gz").display().to_string(),
                ),
                ("YARN_ENABLE_TELEMETRY", "0".into()),
                ("YARN_ENABLE_PROGRESS_BARS", "false".into()),
            ],
        ),
    }
}

/// How to run the npm that comes with `runtime`, for an app with no lock.
pub fn npm(runtime: &Runtime<'_>) -> Vec<String> {
    vec![
        runtime.node.display().to_string(),
        runtime
            .node_modules
            .join("npm/bin/npm-cli.js")
            .display()
            .to_string(),
    ]
}

/// Run the app's `build` script with its manager (`run`: node and the
/// manager's script).
pub fn run_build(ctx: &BuildContext, run: &[String]) -> Result<()> {
    log::info("running the build script");
    command(run)
        .args(["run", "build"])
        .env("NODE_ENV", "production")
        .current_dir(ctx.app_dir())
        .run_ok()?;
    Ok(())
}

/// node and the manager's script.
fn run_command(
    ctx: &BuildContext,
    manager: &Manager,
    runtime: &Runtime<'_>,
    tools: Option<&Layer>,
) -> Vec<String> {
    let script = match (&manager.yarn_path, tools) {
        (Some(release), _) => ctx.app_dir().join(release),
        (None, Some(tools)) => manager.entry(&tools.path().join("node_modules")),
        (None, None) => manager.entry(runtime.node_modules),
    };
    vec![
        runtime.node.display().to_string(),
        script.display().to_string(),
    ]
}

fn command(run: &[String]) -> exec::Command {
    exec::Command::new(&run[0]).args(&run[1..])
}

/// What the `tools` layer holds.
#[derive(serde::Serialize)]
struct ToolsMetadata<'a> {
    package: &'a str,
    node: &'a str,
}

/// The package manager `package` (`pnpm@10.34.9`) installed by npm into a
/// cached, build-only layer, kept while it and node hold.
fn tools_layer(
    ctx: &BuildContext,
    runtime: &Runtime<'_>,
    package: &str,
    cache: &Layer,
) -> Result<Layer> {
    let layer = ctx.cached_layer(
        "tools",
        LayerTypes::CACHE,
        &ToolsMetadata {
            package,
            node: runtime.version,
        },
    )?;
    if layer.is_reused() {
        log::info(format!("{package} unchanged: reusing it"));
        return Ok(layer);
    }
    let npm: PathBuf = runtime.node_modules.join("npm/bin/npm-cli.js");
    exec::Command::new(runtime.node)
        .arg(&npm)
        .args(["install", "--no-save", "--no-package-lock", "--no-audit", "--no-fund"])
        .arg("--prefix")
        .arg(layer.path())
        .arg("--cache")
        .arg(cache.path().join("npm"))
        .arg(package)
        .env("npm_config_update_notifier", "false")
        .run_ok()
        .map_err(|e| {
            BuildpackError::new(format!("installing {package}: {}", e.message())).hint(
                "the package manager comes from the npm registry: grant `--allow network` (and the proxy's CA with --ca-certificates)",
            )
        })?;
    log::info(format!("installed {package}"));
    Ok(layer)
}

/// Remove a file, link or directory if there is one.
fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
