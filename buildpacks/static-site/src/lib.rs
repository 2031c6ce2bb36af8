//! `cascade/static-site`: passes for an app with `index.html` or
//! `public/index.html`, or for a front end (a package.json with a `build`
//! script and no server), whose site `cascade/node` builds first (it
//! requires `node-static-build`, which node provides): then the site is
//! what the build wrote in `dist/`, `build/` or `out/`, never the unbuilt
//! template. It copies the site into a launch layer and declares a `web`
//! process that serves it on `$PORT` (default 8080) with a server it brings
//! ([`server`]: static-web-server from a pinned inventory; the run image's
//! busybox httpd when asked). A Node.js server app (start, main,
//! server.js) is cascade/node's, even with a `public/index.html`.
//!
//! Only the site is served, never the app's secrets or the build's files:
//! dotfiles and dot-directories (`.env`, `.git/`) are left out anywhere but
//! `.well-known/` (RFC 8615), and so are the build's own files at the app
//! root (`Procfile`, `project.toml`, ...) when the site root is the app
//! root. A link is kept only when it points at something served inside the
//! site. `BP_STATIC_SITE_INCLUDE` (comma-separated paths relative to the
//! site root) serves a path anyway.

mod server;

use std::path::{Component, Path, PathBuf};

use cascade_sdk::{
    BuildContext, BuildPlan, BuildResult, Buildpack, DetectContext, DetectResult, Process, Result,
    ResultExt,
};

/// Where the site root is, relative to the app dir, in order of preference.
const ROOTS: [&str; 2] = ["public", "."];
/// Where a front end's build writes its site (Vite's `dist/`, Create React
/// App's `build/`, Next's static export `out/`), in order of preference.
/// Never `public/` or the app root: there is its unbuilt template.
const BUILT_ROOTS: [&str; 3] = ["dist", "build", "out"];
/// What cascade/node provides for a front end, whose build it runs before
/// this buildpack copies what the build wrote.
const STATIC_BUILD: &str = "node-static-build";
/// Scripts that make a Node.js app a server (cascade/node's).
const NODE_SERVERS: [&str; 4] = ["server.js", "app.js", "index.js", "main.js"];

/// What the app's package.json makes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeApp {
    /// No package.json: a site as it stands.
    None,
    /// A `build` script and no server: the build writes the site.
    FrontEnd,
    /// `start`, `main` or a server script: cascade/node serves it.
    Server,
    /// A package.json for tooling only.
    Tooling,
}

fn node_app(app: &Path) -> Result<NodeApp> {
    let Ok(text) = std::fs::read_to_string(app.join("package.json")) else {
        return Ok(NodeApp::None);
    };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        cascade_sdk::BuildpackError::new(format!(
            "package.json: line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let has = |path: &[&str]| path.iter().try_fold(&v, |cur, key| cur.get(key)).is_some();
    let server = has(&["scripts", "start"])
        || has(&["main"])
        || NODE_SERVERS.iter().any(|s| app.join(s).is_file());
    Ok(if server {
        NodeApp::Server
    } else if has(&["scripts", "build"]) {
        NodeApp::FrontEnd
    } else {
        NodeApp::Tooling
    })
}

/// Files at the app root that belong to the build, not the site.
const BUILD_FILES: [&str; 7] = [
    "Procfile",
    "project.toml",
    "builder.toml",
    "buildpack.toml",
    "Dockerfile",
    "Containerfile",
    "docker-compose.yml",
];

/// What of the site root is served.
struct Policy {
    /// The site root is the app root: the build's files are there too.
    app_root: bool,
    /// Paths the platform asked to serve anyway.
    include: Vec<PathBuf>,
}

impl Policy {
    fn served(&self, rel: &Path) -> bool {
        if self
            .include
            .iter()
            .any(|i| rel.starts_with(i) || i.starts_with(rel))
        {
            return true;
        }
        let mut names = rel.components().map(|c| c.as_os_str().to_string_lossy());
        let first = names.next().unwrap_or_default();
        if self.app_root && BUILD_FILES.contains(&first.as_ref()) && rel.components().count() == 1 {
            return false;
        }
        let dot = |n: &str| n.starts_with('.');
        let hidden_top = dot(&first) && first != ".well-known";
        let hidden_below = names.any(|n| dot(&n));
        !hidden_top && !hidden_below
    }

    /// A link stays when its target, resolved from where it is, is inside
    /// the site and served.
    fn link_served(&self, rel: &Path, target: &Path) -> bool {
        let mut at: Vec<Component<'_>> = rel
            .parent()
            .map_or_else(Vec::new, |p| p.components().collect());
        for c in target.components() {
            match c {
                Component::Normal(_) => at.push(c),
                Component::CurDir => {}
                Component::ParentDir => {
                    if at.pop().is_none() {
                        return false;
                    }
                }
                Component::RootDir | Component::Prefix(_) => return false,
            }
        }
        let resolved: PathBuf = at.iter().collect();
        !resolved.as_os_str().is_empty() && self.served(&resolved)
    }
}

#[derive(Default)]
pub struct StaticSite;

impl StaticSite {
    fn site_root(app: &Path, roots: &[&'static str]) -> Option<&'static str> {
        roots
            .iter()
            .copied()
            .find(|root| app.join(root).join("index.html").is_file())
    }
}

impl Buildpack for StaticSite {
    fn detect(&self, ctx: &DetectContext) -> Result<DetectResult> {
        let app = ctx.app_dir();
        Ok(match node_app(app)? {
            // The site exists once node has built it.
            NodeApp::FrontEnd => DetectResult::pass_with(BuildPlan::new().requires(STATIC_BUILD)),
            NodeApp::Server => DetectResult::fail(
                "a Node.js server (start, main or server.js): cascade/node serves it",
            ),
            NodeApp::None | NodeApp::Tooling => DetectResult::pass_if(
                Self::site_root(app, &ROOTS).is_some(),
                "no index.html or public/index.html",
            ),
        })
    }

    fn build(&self, ctx: &BuildContext) -> Result<BuildResult> {
        let app = ctx.app_dir();
        // Settings first: a wrong one fails before any download.
        let options = server::Options::from_env(ctx.platform_env())?;
        let unused = options.ignored(ctx.platform_env());
        if !unused.is_empty() {
            cascade_sdk::log::warn(format!(
                "{} unused: BP_STATIC_SERVER=busybox downloads no server",
                unused.join(", ")
            ));
        }
        let root = if node_app(app)? == NodeApp::FrontEnd {
            Self::site_root(app, &BUILT_ROOTS).ok_or_else(|| {
                cascade_sdk::BuildpackError::new(
                    "the build script wrote no index.html in dist/, build/ or out/",
                )
                .hint("point the front end's build at one of them (Vite: build.outDir)")
            })?
        } else {
            Self::site_root(app, &ROOTS).ok_or_else(|| {
                cascade_sdk::BuildpackError::new("index.html disappeared after detect")
            })?
        };
        let layer = ctx.layer("site")?.launch(true).env_default("PORT", "8080");
        let docroot = layer.path().join("htdocs");
        let policy = Policy {
            app_root: root == ".",
            include: ctx
                .platform_env()
                .get("BP_STATIC_SITE_INCLUDE")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(PathBuf::from)
                        .collect()
                })
                .unwrap_or_default(),
        };
        let mut left_out = Vec::new();
        let bytes = cascade_sdk::fs::copy_tree_filtered(
            ctx.app_dir().join(root),
            &docroot,
            &mut |rel, entry| {
                let keep = match entry {
                    cascade_sdk::fs::Entry::Link(target) => policy.link_served(rel, target),
                    _ => policy.served(rel),
                };
                if !keep {
                    left_out.push(rel.display().to_string());
                }
                keep
            },
        )
        .context(format!("copying the site from {root}/"))?;
        cascade_sdk::log::info(format!("site: {bytes} bytes from {root}/"));
        if !left_out.is_empty() {
            cascade_sdk::log::info(format!(
                "not served: {} (dotfiles, the build's files and links out of the site; BP_STATIC_SITE_INCLUDE serves a path anyway)",
                left_out.join(", ")
            ));
        }

        let result = BuildResult::new().layer(layer);
        let (result, web) = match options.server {
            server::Server::StaticWebServer => {
                let (server_layer, binary) = server::install(ctx)?;
                let serve = server::Serve::StaticWebServer {
                    binary: &binary,
                    spa: options.spa,
                };
                // In its own layer's dir: SWS reads a config file from where
                // it starts ([`server`]), and the app dir is the app's.
                let web = Process::new("web", server::command(serve, &docroot))
                    .working_dir(server_layer.path().display().to_string());
                (result.layer(server_layer), web)
            }
            server::Server::Busybox => (
                result,
                Process::new("web", server::command(server::Serve::Busybox, &docroot)),
            ),
        };
        Ok(result.process(web.default(true)))
    }
}

cascade_sdk::export_buildpack!(StaticSite);
