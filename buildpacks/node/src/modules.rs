//! The app's modules: installed by its package manager ([`crate::manager`])
//! with the installed node through the `exec` capability, into the
//! `modules` layer, kept while the lock file's sha256, the manager, the
//! node version and whether dev dependencies are in hold; linked from the
//! app (`/workspace/node_modules`). Then the app's `build` script, when it
//! has one. A server built by its script then gets its production
//! dependencies alone in a `launch-modules` layer ([`prune_for_launch`]),
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
    /// The `modules` layer's `node_modules`.
    tree: PathBuf,
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
    let app = ctx.app_dir();
    let metadata = ModulesMetadata {
        manager: manager.package.as_deref().or(Some(manager.name())),
        lockfile_sha256: cascade_sdk::fs::sha256_file(app.join(manager.lockfile))?,
        node: runtime.version,
        dev,
    };
    let modules = ctx.cached_layer("modules", types, &metadata)?;
    let in_app = app.join("node_modules");
    remove_any(&in_app)?;
    let installed = modules.path().join("node_modules");
    if modules.is_reused() {
        log::info(format!(
            "{} unchanged: reusing node_modules",
            manager.lockfile
        ));
    } else {
        log::info(format!(
            "installing {} with {}",
            manager.lockfile,
            manager.name()
        ));
        let (args, env) = install_args(manager.kind, dev, cache.path());
        let mut cmd = command(&run).args(&args).current_dir(app);
        if !dev {
            cmd = cmd.env("NODE_ENV", "production");
        }
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        cmd.run_ok()?;
        // What the install left, not what a link there points at.
        let left = std::fs::symlink_metadata(&in_app);
        if left.is_ok_and(|m| m.is_dir()) {
            std::fs::rename(&in_app, &installed).context("moving node_modules into its layer")?;
        } else {
            std::fs::create_dir_all(&installed)?;
        }
        if manager.kind == Kind::Pnpm {
            settle_pnpm(&installed)?;
        }
    }
    // The app finds its modules where Node looks first.
    link_modules(app, &installed)?;
    let modules = modules.env_prepend_path("PATH", installed.join(".bin").display().to_string());
    let cache_dir = cache.path().to_owned();
    let mut layers = vec![cache, modules];
    layers.extend(tools);
    Ok(Installed {
        layers,
        run,
        cache: cache_dir,
        tree: installed,
    })
}

/// Whether [`prune_for_launch`] can leave `kind`'s devDependencies out:
/// npm and pnpm prune a tree in place; Yarn has no such command (classic
/// would install again, running the app's own install scripts without
/// their devDependencies; Berry's `workspaces focus` is not in every
/// release a `yarnPath` may pin), so a Yarn server keeps them.
pub fn can_prune(kind: Kind) -> bool {
    matches!(kind, Kind::Npm | Kind::Pnpm)
}

/// After the build: the tree the build used (with whatever the build
/// generated in it, a Prisma client say) copied into the `launch-modules`
/// layer and pruned there of devDependencies by the manager, with no
/// script run, then linked from the app. Made anew each build, from that
/// build's tree: what the build writes into node_modules can change while
/// the lock does not. Its name sorts before `node`'s, so the runtime's own
/// binaries stay first on the image's PATH.
pub fn prune_for_launch(
    ctx: &BuildContext,
    manager: &Manager,
    installed: &Installed,
) -> Result<Layer> {
    let app = ctx.app_dir();
    let layer = ctx.layer("launch-modules")?.launch(true);
    let tree = layer.path().join("node_modules");
    // Pruned where the manager expects it, a directory in the app (npm
    // replaces a link there with a fresh install), then moved.
    let in_app = app.join("node_modules");
    remove_any(&in_app)?;
    cascade_sdk::fs::copy_tree(&installed.tree, &in_app)
        .context("copying node_modules to prune it")?;
    log::info(format!(
        "leaving devDependencies out of the image ({} prune)",
        manager.name()
    ));
    let (args, env) = prune_args(manager.kind, &installed.cache);
    let mut cmd = command(&installed.run)
        .args(&args)
        .current_dir(app)
        .env("NODE_ENV", "production");
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    cmd.run_ok()?;
    std::fs::rename(&in_app, &tree).context("moving the pruned node_modules into its layer")?;
    if manager.kind == Kind::Pnpm {
        settle_pnpm(&tree)?;
    }
    link_modules(app, &tree)?;
    let bin = tree.join(".bin").display().to_string();
    Ok(layer.env_prepend_path("PATH", bin))
}

/// pnpm's bookkeeping in a node_modules it made, made the same on every
/// build: the times it last pruned and validated (`.modules.yaml`'s
/// `prunedAt`, `.pnpm-workspace-state-v1.json`'s `lastValidatedTimestamp`)
/// set to the epoch, its empty `.tmp/` removed. Node never reads them;
/// pnpm, run there again, only prunes and validates sooner. Otherwise two
/// builds of one lock would give two images.
fn settle_pnpm(tree: &Path) -> Result<()> {
    let settle = |name: &str, key: &str, value: serde_json::Value| -> Result<()> {
        let path = tree.join(name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        // pnpm writes both as JSON (which is YAML too).
        let mut doc: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| BuildpackError::new(format!("{}: {e}", path.display())))?;
        if let Some(field) = doc.get_mut(key) {
            *field = value;
            let text = serde_json::to_string_pretty(&doc)
                .map_err(|e| BuildpackError::new(format!("{}: {e}", path.display())))?;
            std::fs::write(&path, text + "\n")?;
        }
        Ok(())
    };
    settle(
        ".modules.yaml",
        "prunedAt",
        "Thu, 01 Jan 1970 00:00:00 GMT".into(),
    )?;
    settle(
        ".pnpm-workspace-state-v1.json",
        "lastValidatedTimestamp",
        0.into(),
    )?;
    let tmp = tree.join(".tmp");
    if std::fs::read_dir(&tmp).is_ok_and(|mut d| d.next().is_none()) {
        std::fs::remove_dir(&tmp)?;
    }
    Ok(())
}

/// The prune command's arguments and env for `kind` (npm or pnpm): no
/// script runs, nothing is fetched that the caches under `c` lack.
fn prune_args(kind: Kind, c: &Path) -> (Vec<String>, Vec<(&'static str, String)>) {
    match kind {
        Kind::Pnpm => (
            vec!["prune".into(), "--prod".into()],
            vec![
                ("CI", "true".into()),
                ("npm_config_ignore_scripts", "true".into()),
                (
                    "npm_config_store_dir",
                    c.join("pnpm-store").display().to_string(),
                ),
                ("npm_config_package_import_method", "copy".into()),
                ("npm_config_offline", "true".into()),
            ],
        ),
        _ => (
            [
                "prune",
                "--omit=dev",
                "--ignore-scripts",
                "--offline",
                "--no-audit",
                "--no-fund",
                "--cache",
            ]
            .map(str::to_owned)
            .into_iter()
            .chain([c.join("npm").display().to_string()])
            .collect(),
            vec![("npm_config_update_notifier", "false".into())],
        ),
    }
}

/// Link the app's `node_modules` to `tree`, relatively: the link resolves
/// the same in the image as here.
fn link_modules(app: &Path, tree: &Path) -> Result<()> {
    let in_app = app.join("node_modules");
    remove_any(&in_app)?;
    let up = app
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count();
    let mut target = "../".repeat(up);
    target.push_str(tree.display().to_string().trim_start_matches('/'));
    cascade_sdk::fs::symlink(&target, &in_app).context("linking node_modules into the app")?;
    Ok(())
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
