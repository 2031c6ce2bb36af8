//! `cascade/static-site`: passes for an app with `index.html` or
//! `public/index.html`, copies the site into a launch layer and declares a
//! `web` process that serves it with the run image's `busybox httpd` on
//! `$PORT` (default 8080).
//!
//! Only the site is served, never the app's secrets or the build's files:
//! dotfiles and dot-directories (`.env`, `.git/`) are left out anywhere but
//! `.well-known/` (RFC 8615), and so are the build's own files at the app
//! root (`Procfile`, `project.toml`, ...) when the site root is the app
//! root. A link is kept only when it points at something served inside the
//! site. `BP_STATIC_SITE_INCLUDE` (comma-separated paths relative to the
//! site root) serves a path anyway.

use std::path::{Component, Path, PathBuf};

use cascade_sdk::{
    BuildContext, BuildResult, Buildpack, DetectContext, DetectResult, Process, Result, ResultExt,
};

/// Where the site root is, relative to the app dir, in order of preference.
const ROOTS: [&str; 2] = ["public", "."];

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
    fn site_root(ctx_app: &std::path::Path) -> Option<&'static str> {
        ROOTS
            .into_iter()
            .find(|root| ctx_app.join(root).join("index.html").is_file())
    }
}

impl Buildpack for StaticSite {
    fn detect(&self, ctx: &DetectContext) -> Result<DetectResult> {
        Ok(match Self::site_root(ctx.app_dir()) {
            Some(_) => DetectResult::pass(),
            None => DetectResult::fail("no index.html or public/index.html"),
        })
    }

    fn build(&self, ctx: &BuildContext) -> Result<BuildResult> {
        let root = Self::site_root(ctx.app_dir()).ok_or_else(|| {
            cascade_sdk::BuildpackError::new("index.html disappeared after detect")
        })?;
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

        // `exec` so httpd is PID 1 and gets the container's signals.
        let serve = format!(
            "exec busybox httpd -f -v -p \"${{PORT:-8080}}\" -h {}",
            docroot.display()
        );
        Ok(BuildResult::new()
            .layer(layer)
            .process(Process::new("web", ["/bin/sh", "-c", serve.as_str()]).default(true)))
    }
}

cascade_sdk::export_buildpack!(StaticSite);
