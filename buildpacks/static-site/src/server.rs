//! What serves the site. By default static-web-server (SWS): one static
//! musl binary per CPU, from a pinned inventory of its GitHub releases
//! (URL + the sha256 its project publishes), fetched into a `server` launch
//! layer, so the site needs nothing of the run image but `/bin/sh` (for
//! `$PORT`): no busybox, no libc. It sends correct content types, 404s
//! with the site's own `404.html`, answers conditional and range requests,
//! and, with `BP_STATIC_SPA=true`, answers a GET of a path that is no file
//! with `index.html` and 200, as a single-page app's client router needs.
//!
//! SWS's defaults are set where they would change what the site is: the
//! site was filtered when copied (no secrets, only links that stay inside
//! it), so dot paths (`.well-known/`) and those links are served; nothing
//! gets Cache-Control (SWS would let browsers keep `index.html` a day and
//! unhashed assets a year after a redeploy); no directory listing, whatever
//! the environment says; pre-compressed `.gz`/`.br`/`.zst` files a front
//! end's build wrote are sent as such. And it runs in its own layer's
//! directory: SWS reads `./config.toml` or `./sws.toml` from where it
//! starts, over its flags, and `/workspace` holds the app, unfiltered.
//!
//! `BP_STATIC_SERVER=busybox` serves with the run image's `busybox httpd`
//! instead (no download; for busybox run images and builds with no
//! network), which cannot do the single-page fallback.
//!
//! A platform's mirror: `BP_STATIC_WEB_SERVER_INVENTORY`, as for every
//! runtime ([`cascade_sdk::inventory`]); `BP_STATIC_WEB_SERVER_VERSION`
//! pins a release of it.

use std::path::{Path, PathBuf};

use cascade_sdk::inventory::{Artifact, Inventory};
use cascade_sdk::{BuildContext, BuildpackError, Env, Layer, LayerTypes, Result, ResultExt, log};
use semver::Version;

/// The inventory shipped with the buildpack.
pub const BUNDLED: &str = include_str!("../inventory.toml");
/// The name in `BP_<NAME>_INVENTORY` and `BP_<NAME>_VERSION`.
const NAME: &str = "STATIC_WEB_SERVER";
/// The binary at the top of a release archive, once its
/// `static-web-server-v<version>-<target>/` directory is stripped.
const BINARY: &str = "static-web-server";

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// static-web-server, installed from the inventory.
    StaticWebServer,
    /// The run image's `busybox httpd`.
    Busybox,
}

/// What the platform asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub server: Server,
    /// A GET of a path that is no file gets `index.html`
    /// (`BP_STATIC_SPA=true`).
    pub spa: bool,
}

impl Options {
    /// From `BP_STATIC_SERVER` and `BP_STATIC_SPA`; a value that is none
    /// of theirs is an error naming the variable and quoting the value as
    /// given, never a silent default.
    pub fn from_env(env: &Env) -> Result<Self> {
        let given = |name: &str| {
            env.get(name)
                .map(|v| (v, v.trim().to_ascii_lowercase()))
                .filter(|(_, v)| !v.is_empty())
        };
        let server = match given("BP_STATIC_SERVER") {
            None => Server::StaticWebServer,
            Some((_, v)) if v == "static-web-server" => Server::StaticWebServer,
            Some((_, v)) if v == "busybox" => Server::Busybox,
            Some((raw, _)) => {
                return Err(BuildpackError::new(format!(
                    "BP_STATIC_SERVER={raw:?}: expected static-web-server or busybox"
                )));
            }
        };
        let spa = match given("BP_STATIC_SPA") {
            None => false,
            Some((_, v)) if v == "false" || v == "0" => false,
            Some((_, v)) if v == "true" || v == "1" => true,
            Some((raw, _)) => {
                return Err(BuildpackError::new(format!(
                    "BP_STATIC_SPA={raw:?}: expected true or false"
                )));
            }
        };
        if spa && server == Server::Busybox {
            return Err(BuildpackError::new(
                "BP_STATIC_SPA=true needs static-web-server: busybox httpd has no index.html fallback",
            )
            .hint("leave BP_STATIC_SERVER unset (static-web-server, from its inventory)"));
        }
        Ok(Self { server, spa })
    }

    /// What the platform set that these options leave unused, to be said.
    pub fn ignored(self, env: &Env) -> Vec<&str> {
        if self.server != Server::Busybox {
            return Vec::new();
        }
        env.keys()
            .map(String::as_str)
            .filter(|k| k.starts_with("BP_STATIC_WEB_SERVER_"))
            .collect()
    }
}

/// The release for the build's target: `pinned`'s, else the newest that
/// is no pre-release. A version that is not semver is an error naming the
/// artifact (`inventory.toml: artifacts[2].version`), not a silent last.
pub fn select<'a>(
    inventory: &'a Inventory,
    os: &str,
    arch: &str,
    pinned: Option<&str>,
) -> Result<&'a Artifact> {
    let mut candidates = Vec::new();
    for (i, a) in inventory.artifacts.iter().enumerate() {
        if a.os != os || a.arch != arch {
            continue;
        }
        let version = Version::parse(&a.version).map_err(|e| {
            BuildpackError::new(format!(
                "{}: artifacts[{i}].version {:?}: {e}",
                inventory.source, a.version
            ))
        })?;
        let wanted = match pinned {
            Some(p) => a.version == p,
            None => version.pre.is_empty(),
        };
        if wanted {
            candidates.push((version, a));
        }
    }
    let newest = candidates.into_iter().max_by(|x, y| x.0.cmp(&y.0));
    newest.map(|(_, a)| a).ok_or_else(|| {
        let what = pinned.map_or_else(
            || "no static-web-server".to_owned(),
            |p| format!("no static-web-server {p}"),
        );
        BuildpackError::new(format!(
            "{what} for {os}/{arch} in {} (it has: {})",
            inventory.source,
            inventory.offered(os, arch)
        ))
        .hint("give a mirror's inventory with BP_STATIC_WEB_SERVER_INVENTORY, or BP_STATIC_SERVER=busybox on a busybox run image")
    })
}

/// Install static-web-server into the `server` launch layer, kept while
/// the release is the same; returns the layer and the binary's path.
pub fn install(ctx: &BuildContext) -> Result<(Layer, PathBuf)> {
    install_from_inventory(ctx).context(
        "serving with static-web-server (BP_STATIC_SERVER=busybox serves with the run image's busybox httpd instead, downloading nothing)",
    )
}

fn install_from_inventory(ctx: &BuildContext) -> Result<(Layer, PathBuf)> {
    let inventory = Inventory::load(ctx, NAME, BUNDLED)?;
    let target = ctx.target();
    let pinned = ctx
        .platform_env()
        .get("BP_STATIC_WEB_SERVER_VERSION")
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    let artifact = select(&inventory, &target.os, &target.arch, pinned.as_deref())?;
    let layer = ctx.cached_layer("server", LayerTypes::LAUNCH | LayerTypes::CACHE, artifact)?;
    if layer.is_reused() {
        log::info(format!(
            "static-web-server {} unchanged: reusing its layer",
            artifact.version
        ));
    } else {
        artifact.install(ctx, &layer, 1, BINARY).context(format!(
            "installing {} from {}",
            artifact.version, inventory.source
        ))?;
        log::info(format!("installed static-web-server {}", artifact.version));
    }
    let binary = layer.path().join(BINARY);
    Ok((layer.sbom(artifact.sbom("static-web-server")), binary))
}

/// `s` as one word for `sh`: single-quoted, its own single quotes escaped.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What the `web` process runs.
#[derive(Debug, Clone, Copy)]
pub enum Serve<'a> {
    /// The installed static-web-server, with the single-page fallback or not.
    StaticWebServer { binary: &'a Path, spa: bool },
    /// The run image's `busybox httpd`.
    Busybox,
}

/// The `web` process. Through `sh -c` for `$PORT` (default 8080), with
/// `exec` so the server is PID 1 and gets the container's signals. For
/// static-web-server, every setting that matters is a flag: flags win over
/// the `SERVER_*` environment, so a platform's env cannot list directories
/// or move the root.
pub fn command(serve: Serve<'_>, docroot: &Path) -> Vec<String> {
    let root = docroot.display().to_string();
    let line = match serve {
        Serve::StaticWebServer { binary, spa } => {
            let mut s = format!(
                "exec {} --root {} --port \"${{PORT:-8080}}\" --log-level info \
                 --ignore-hidden-files false --disable-symlinks false \
                 --cache-control-headers false --directory-listing false \
                 --compression-static true",
                quote(&binary.display().to_string()),
                quote(&root)
            );
            if spa {
                s += " --page-fallback ";
                s += &quote(&format!("{root}/index.html"));
            }
            s
        }
        Serve::Busybox => format!(
            "exec busybox httpd -f -v -p \"${{PORT:-8080}}\" -h {}",
            quote(&root)
        ),
    };
    vec!["/bin/sh".into(), "-c".into(), line]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn options_default_to_static_web_server_without_fallback() {
        assert_eq!(
            Options::from_env(&env(&[])).unwrap(),
            Options {
                server: Server::StaticWebServer,
                spa: false
            }
        );
        let spa = Options::from_env(&env(&[("BP_STATIC_SPA", "TRUE")])).unwrap();
        assert!(spa.spa);
        let bb = Options::from_env(&env(&[("BP_STATIC_SERVER", " BusyBox ")])).unwrap();
        assert_eq!(bb.server, Server::Busybox);
        // Set and empty is unset.
        let empty = env(&[("BP_STATIC_SERVER", ""), ("BP_STATIC_SPA", " ")]);
        assert_eq!(
            Options::from_env(&empty).unwrap().server,
            Server::StaticWebServer
        );
        // The server's settings, given with busybox, are said to be unused.
        let both = env(&[
            ("BP_STATIC_SERVER", "busybox"),
            ("BP_STATIC_WEB_SERVER_INVENTORY", "https://mirror/inv.toml"),
            ("BP_STATIC_SITE_INCLUDE", "a"),
        ]);
        let options = Options::from_env(&both).unwrap();
        assert_eq!(options.ignored(&both), ["BP_STATIC_WEB_SERVER_INVENTORY"]);
        assert!(spa.ignored(&both).is_empty());
    }

    #[test]
    fn wrong_values_name_their_variable() {
        for (pairs, says) in [
            (
                vec![("BP_STATIC_SERVER", "nginx")],
                "BP_STATIC_SERVER=\"nginx\"",
            ),
            (
                vec![("BP_STATIC_SPA", " Yes Please")],
                "BP_STATIC_SPA=\" Yes Please\"",
            ),
            (
                vec![("BP_STATIC_SERVER", "busybox"), ("BP_STATIC_SPA", "true")],
                "busybox httpd has no index.html fallback",
            ),
        ] {
            let err = Options::from_env(&env(&pairs)).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn the_bundled_inventory_has_each_cpu_and_the_newest_is_chosen() {
        let inv = Inventory::parse(BUNDLED, "inventory.toml").unwrap();
        for arch in ["amd64", "arm64"] {
            let a = select(&inv, "linux", arch, None).unwrap();
            assert_eq!(a.version, "2.42.0");
            assert!(a.url.ends_with("-unknown-linux-musl.tar.gz"), "{}", a.url);
        }
        let more = Inventory::parse(
            &format!(
                "{BUNDLED}\n[[artifacts]]\nversion = \"2.9.0\"\nos = \"linux\"\narch = \"amd64\"\nurl = \"https://example.org/sws.tar.gz\"\nchecksum = \"sha256:{}\"\n",
                "0".repeat(64)
            ),
            "inventory.toml",
        )
        .unwrap();
        // 2.42.0 > 2.9.0 by number, not by text.
        assert_eq!(
            select(&more, "linux", "amd64", None).unwrap().version,
            "2.42.0"
        );
        assert_eq!(
            select(&more, "linux", "amd64", Some("2.9.0"))
                .unwrap()
                .version,
            "2.9.0"
        );
        // A pre-release is no newest, unless pinned; a version that is not
        // semver is named, not sorted last.
        let entry = |v: &str| {
            format!(
                "\n[[artifacts]]\nversion = \"{v}\"\nos = \"linux\"\narch = \"amd64\"\nurl = \"https://example.org/sws.tar.gz\"\nchecksum = \"sha256:{}\"\n",
                "0".repeat(64)
            )
        };
        let rc = Inventory::parse(&format!("{BUNDLED}{}", entry("2.43.0-rc.1")), "i.toml").unwrap();
        assert_eq!(
            select(&rc, "linux", "amd64", None).unwrap().version,
            "2.42.0"
        );
        assert_eq!(
            select(&rc, "linux", "amd64", Some("2.43.0-rc.1"))
                .unwrap()
                .version,
            "2.43.0-rc.1"
        );
        let bad = Inventory::parse(&format!("{BUNDLED}{}", entry("v2.43")), "i.toml").unwrap();
        let err = select(&bad, "linux", "amd64", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("i.toml: artifacts[2].version \"v2.43\": "),
            "{err}"
        );
        let err = select(&inv, "linux", "riscv64", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "no static-web-server for linux/riscv64 in inventory.toml (it has: none for this platform)"
            ),
            "{err}"
        );
        let err = select(&inv, "linux", "amd64", Some("1.0.0"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("(it has: 2.42.0)"), "{err}");
    }

    #[test]
    fn the_command_reads_port_and_quotes_paths() {
        let root = Path::new("/layers/cascade_static-site/site/htdocs");
        let bin = Path::new("/layers/cascade_static-site/server/static-web-server");
        let plain = command(
            Serve::StaticWebServer {
                binary: bin,
                spa: false,
            },
            root,
        );
        assert_eq!(
            plain[2],
            "exec '/layers/cascade_static-site/server/static-web-server' --root '/layers/cascade_static-site/site/htdocs' --port \"${PORT:-8080}\" --log-level info --ignore-hidden-files false --disable-symlinks false --cache-control-headers false --directory-listing false --compression-static true"
        );
        let spa = command(
            Serve::StaticWebServer {
                binary: bin,
                spa: true,
            },
            root,
        );
        assert!(
            spa[2]
                .ends_with(" --page-fallback '/layers/cascade_static-site/site/htdocs/index.html'"),
            "{}",
            spa[2]
        );
        let odd = command(Serve::Busybox, Path::new("/x/it's"));
        assert_eq!(
            odd,
            [
                "/bin/sh",
                "-c",
                "exec busybox httpd -f -v -p \"${PORT:-8080}\" -h '/x/it'\\''s'"
            ]
        );
    }
}
