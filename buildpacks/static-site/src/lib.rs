//! `cascade/static-site`: passes for an app with `index.html` or
//! `public/index.html`, copies the site into a launch layer and declares a
//! `web` process that serves it with the run image's `busybox httpd` on
//! `$PORT` (default 8080).

use cascade_sdk::{
    BuildContext, BuildResult, Buildpack, DetectContext, DetectResult, Process, Result, ResultExt,
};

/// Where the site root is, relative to the app dir, in order of preference.
const ROOTS: [&str; 2] = ["public", "."];

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
        let bytes = cascade_sdk::fs::copy_tree(ctx.app_dir().join(root), &docroot)
            .context(format!("copying the site from {root}/"))?;
        cascade_sdk::log::info(format!("site: {bytes} bytes from {root}/"));

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
