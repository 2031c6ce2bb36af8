//! `cascade/node`: a Node.js app with npm, pnpm or Yarn, or with no
//! package.json at all.
//!
//! - **Detect**: `package.json`, or a `server.js`/`app.js`/`index.js`/
//!   `main.js` beside no `index.html`. A front end (a `build` script, and
//!   no `start`, `main` or server script) provides `node-static-build`,
//!   which `cascade/static-site` requires after it: the group builds the
//!   site with node and serves its output with no node in the image.
//! - **Runtime**: the newest release in the inventory that `engines.node`
//!   (or `BP_NODE_VERSION`) allows, for the image's os/arch, downloaded
//!   with the `fetch` capability and checked against the inventory's
//!   sha256. The bundled inventory points at nodejs.org; a platform with a
//!   mirror passes its own with `BP_NODE_INVENTORY=<URL>` (pinned by
//!   `BP_NODE_INVENTORY_SHA256`) or `=<path in the app>`. The
//!   `node` layer is kept while the version does not change.
//! - **Dependencies**: see [`manager`] and [`modules`]; the `build` script
//!   runs after the install (with devDependencies); a server's image then
//!   gets its production dependencies alone.
//! - **Process**: `web` from `scripts.start`, else `main`, else server.js,
//!   app.js, index.js or main.js.

pub mod inventory;
pub mod manager;
pub mod modules;
pub mod package;

use cascade_sdk::inventory::Inventory;
use cascade_sdk::{
    BuildContext, BuildPlan, BuildResult, Buildpack, BuildpackError, DetectContext, DetectResult,
    Layer, LayerTypes, Process, Result, ResultExt, log,
};

use crate::inventory::Artifact;
use crate::package::Package;

#[derive(Default)]
pub struct Node;

/// What a front end's node provides for `cascade/static-site`.
pub const STATIC_BUILD: &str = "node-static-build";

impl Buildpack for Node {
    fn detect(&self, ctx: &DetectContext) -> Result<DetectResult> {
        let app = ctx.app_dir();
        let has = |f: &str| app.join(f).is_file();
        let site = has("index.html") || has("public/index.html");
        if !has("package.json") {
            let script = package::SCRIPTS.iter().any(|s| has(s));
            return Ok(DetectResult::pass_if(
                script && !has("index.html"),
                "no package.json, and no server.js, app.js, index.js or main.js outside a static site",
            ));
        }
        let pkg = Package::parse(
            &std::fs::read_to_string(app.join("package.json")).context("reading package.json")?,
        )?;
        let server =
            pkg.start.is_some() || pkg.main.is_some() || package::SCRIPTS.iter().any(|s| has(s));
        if pkg.build.is_some() && !server {
            // A front end: its build's output is served by
            // cascade/static-site where the group has it.
            return Ok(
                DetectResult::pass_with(BuildPlan::new().provides(STATIC_BUILD))
                    .or(BuildPlan::new()),
            );
        }
        Ok(DetectResult::pass_if(
            server || pkg.build.is_some() || !site,
            "a static site whose package.json neither starts nor builds anything: cascade/static-site serves it",
        ))
    }

    fn build(&self, ctx: &BuildContext) -> Result<BuildResult> {
        let app = ctx.app_dir();
        let pkg = if app.join("package.json").is_file() {
            Package::parse(
                &std::fs::read_to_string(app.join("package.json"))
                    .context("reading package.json")?,
            )?
        } else {
            log::info("no package.json: running the app's script with Node.js");
            Package::default()
        };
        // Everything that can be refused is refused before downloading.
        let manager = manager::detect(app, pkg.package_manager.as_deref())?;
        if manager.is_none() && pkg.has_dependencies {
            return Err(BuildpackError::new(
                "package.json has dependencies but there is no lock file (package-lock.json, pnpm-lock.yaml or yarn.lock)",
            )
            .hint("run `npm install` (or pnpm, or yarn) and commit its lock file: builds install exactly what it pins"));
        }
        let front_end = ctx.plan().iter().any(|e| e.name == STATIC_BUILD);
        let artifact = choose(ctx, &pkg)?;
        let node = runtime_layer(ctx, &artifact, !front_end)?;
        let node_bin = node.path().join("bin/node");
        let node_modules = node.path().join("lib/node_modules");
        let version = artifact.version.to_string();
        let runtime = modules::Runtime {
            node: &node_bin,
            node_modules: &node_modules,
            version: &version,
        };

        let mut result = BuildResult::new();
        // How to run the manager (npm's when there is no lock).
        let mut run = modules::npm(&runtime);
        let dev = pkg.build.is_some();
        // A server with a build script and devDependencies: the build's
        // modules stay out of the image, which gets them pruned after the
        // build (Yarn: all of them, see modules::can_prune).
        let prune = dev
            && !front_end
            && pkg.has_dev_dependencies
            && manager.as_ref().is_some_and(|m| modules::can_prune(m.kind));
        let mut installed = None;
        if let Some(manager) = &manager {
            let modules = modules::install(ctx, manager, &runtime, dev, !front_end && !prune)?;
            run.clone_from(&modules.run);
            installed = Some(modules);
        } else {
            log::info("no dependencies to install");
        }
        if dev {
            modules::run_build(ctx, &run)?;
        }
        if let (Some(manager), Some(modules)) = (&manager, &mut installed) {
            if prune {
                let layer = modules::prune_for_launch(ctx, manager, modules)?;
                modules.layers.push(layer);
            }
            for layer in std::mem::take(&mut modules.layers) {
                result = result.layer(layer);
            }
        }
        result = result.layer(node);
        if front_end {
            log::info(
                "a front end: cascade/static-site serves what the build wrote, with no Node.js in the image",
            );
            return Ok(result);
        }
        match package::web_command(&pkg, &node_bin.display().to_string(), app) {
            Some(cmd) => {
                log::info(format!("web: {}", cmd.join(" ")));
                result = result.process(Process::new("web", cmd).default(true));
            }
            None => log::warn(
                "no web process: package.json has no scripts.start or main, and there is no server.js, app.js, index.js or main.js",
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
/// (`node-vX-os-arch/`) stripped; kept while the release is the same; in
/// the image when `launch`.
fn runtime_layer(ctx: &BuildContext, artifact: &Artifact, launch: bool) -> Result<Layer> {
    let types = if launch {
        LayerTypes::LAUNCH | LayerTypes::BUILD | LayerTypes::CACHE
    } else {
        LayerTypes::BUILD | LayerTypes::CACHE
    };
    let layer = ctx.cached_layer("node", types, &artifact.release)?;
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

cascade_sdk::export_buildpack!(Node);
