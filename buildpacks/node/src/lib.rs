//! `cascade/node`: a Node.js app with npm.
//!
//! - **Runtime**: the newest release in the inventory that `engines.node`
//!   (or `BP_NODE_VERSION`) allows, for the image's os/arch, downloaded
//!   with the `fetch` capability and checked against the inventory's
//!   sha256. The bundled inventory points at nodejs.org; a platform with a
//!   mirror passes its own with `BP_NODE_INVENTORY=<URL>` (pinned by
//!   `BP_NODE_INVENTORY_SHA256`) or `=<path in the app>`. The
//!   `node` layer is kept while the version does not change.
//! - **Dependencies**: `npm ci --omit=dev` with that node through the `exec`
//!   capability, npm's cache in a cache layer. `node_modules` lives in the
//!   `modules` layer, kept while the lockfile's sha256 and the node version
//!   do not change, and linked from the app (`/workspace/node_modules`).
//! - **Process**: `web` from `scripts.start`, else `main`, else server.js,
//!   index.js or app.js.

pub mod inventory;
pub mod package;

use std::path::{Component, Path};

use cascade_sdk::inventory::Inventory;

use cascade_sdk::toml::Table;
use cascade_sdk::{
    BuildContext, BuildResult, Buildpack, BuildpackError, DetectContext, DetectResult, Layer,
    LayerTypes, Process, Result, ResultExt, exec, log,
};

use crate::inventory::Artifact;
use crate::package::Package;

#[derive(Default)]
pub struct Node;

const LOCKFILES: [&str; 2] = ["npm-shrinkwrap.json", "package-lock.json"];

impl Buildpack for Node {
    fn detect(&self, ctx: &DetectContext) -> Result<DetectResult> {
        Ok(if ctx.app_dir().join("package.json").is_file() {
            DetectResult::pass()
        } else {
            DetectResult::fail("no package.json")
        })
    }

    fn build(&self, ctx: &BuildContext) -> Result<BuildResult> {
        let app = ctx.app_dir();
        let pkg = Package::parse(
            &std::fs::read_to_string(app.join("package.json")).context("reading package.json")?,
        )?;
        // Everything that can be refused is refused before downloading.
        let lockfile = LOCKFILES.iter().find(|f| app.join(f).is_file());
        if lockfile.is_none() && pkg.has_dependencies {
            return Err(
                BuildpackError::new("package.json has dependencies but there is no package-lock.json")
                    .hint("run `npm install` and commit package-lock.json: builds install exactly what it pins (npm ci)"),
            );
        }
        let artifact = choose(ctx, &pkg)?;
        let node = runtime_layer(ctx, &artifact)?;
        let node_bin = node.path().join("bin/node");

        let mut result = BuildResult::new();
        if let Some(lockfile) = lockfile {
            let (cache, modules) = modules_layers(ctx, lockfile, &artifact, &node)?;
            result = result.layer(cache).layer(modules);
        } else {
            log::info("no dependencies to install");
        }
        result = result.layer(node);

        match package::web_command(&pkg, &node_bin.display().to_string(), app) {
            Some(cmd) => {
                log::info(format!("web: {}", cmd.join(" ")));
                result = result.process(Process::new("web", cmd).default(true));
            }
            None => log::warn(
                "no web process: package.json has no scripts.start or main, and there is no server.js, index.js or app.js",
            ),
        }
        Ok(result)
    }
}

/// The release to install, from the inventory the platform chose.
fn choose(ctx: &BuildContext, pkg: &Package) -> Result<Artifact> {
    let env = ctx.platform_env();
    let inventory = Inventory::load(ctx, "NODE", inventory::BUNDLED)?;
    let source = &inventory.source;
    let artifacts = inventory::artifacts(&inventory)?;
    let (range, why) = match (env.get("BP_NODE_VERSION"), &pkg.engines_node) {
        (Some(v), _) => (Some(v.as_str()), "BP_NODE_VERSION"),
        (None, Some(v)) => (Some(v.as_str()), "package.json engines.node"),
        (None, None) => (None, "the newest in the inventory"),
    };
    let target = ctx.target();
    let artifact = inventory::select(&artifacts, range, &target.os, &target.arch).map_err(|e| {
        BuildpackError::new(format!("{e} ({source})")).hint(
            "set engines.node in package.json (or BP_NODE_VERSION) to a version the inventory has",
        )
    })?;
    log::info(format!(
        "Node.js {} ({}{})",
        artifact.version,
        why,
        range.map(|r| format!(": {r}")).unwrap_or_default()
    ));
    Ok(artifact.clone())
}

/// The `node` layer: the release unpacked, its top directory
/// (`node-vX-os-arch/`) stripped; kept while the release is the same.
fn runtime_layer(ctx: &BuildContext, artifact: &Artifact) -> Result<Layer> {
    let layer = ctx.cached_layer(
        "node",
        LayerTypes::LAUNCH | LayerTypes::BUILD | LayerTypes::CACHE,
        &artifact.release,
    )?;
    if layer.is_reused() {
        log::info(format!(
            "Node.js {} unchanged: reusing its layer",
            artifact.version
        ));
    } else {
        artifact.release.install(ctx, &layer, 1, "bin/node")?;
        log::info(format!("installed Node.js {}", artifact.version));
    }
    Ok(layer.sbom(artifact.release.sbom("node")))
}

/// What the `modules` layer's content depends on.
#[derive(serde::Serialize)]
struct ModulesMetadata {
    lockfile_sha256: String,
    node: String,
}

/// npm's cache and the `modules` layer, installed by `npm ci` unless the
/// lockfile and node are those of the previous build.
fn modules_layers(
    ctx: &BuildContext,
    lockfile: &str,
    artifact: &Artifact,
    node: &Layer,
) -> Result<(Layer, Layer)> {
    let app = ctx.app_dir();
    // Native addons are built against one node ABI.
    let metadata = ModulesMetadata {
        lockfile_sha256: cascade_sdk::fs::sha256_file(app.join(lockfile))?,
        node: artifact.version.to_string(),
    };
    let cache = ctx.cached_layer("npm-cache", LayerTypes::CACHE, &Table::new())?;
    let modules = ctx.cached_layer(
        "modules",
        LayerTypes::LAUNCH | LayerTypes::BUILD | LayerTypes::CACHE,
        &metadata,
    )?;
    let in_app = app.join("node_modules");
    remove_any(&in_app)?;
    let installed = modules.path().join("node_modules");
    if modules.is_reused() {
        log::info(format!("{lockfile} unchanged: reusing node_modules"));
    } else {
        let npm = node.path().join("lib/node_modules/npm/bin/npm-cli.js");
        exec::Command::new(node.path().join("bin/node").display().to_string())
            .arg(npm.display().to_string())
            .args([
                "ci",
                "--omit=dev",
                "--no-audit",
                "--no-fund",
                "--prefer-offline",
            ])
            .arg("--cache")
            .arg(cache.path().display().to_string())
            .env("NODE_ENV", "production")
            .env("npm_config_update_notifier", "false")
            .current_dir(app)
            .run_ok()?;
        if in_app.is_dir() {
            std::fs::rename(&in_app, &installed).context("moving node_modules into its layer")?;
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
    Ok((cache, modules.env_prepend_path("PATH", bin)))
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

cascade_sdk::export_buildpack!(Node);
