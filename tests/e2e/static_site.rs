//! `cascade/static-site` with the server it brings: static-web-server from
//! a platform's mirror (an inventory by URL, pinned by its sha256, served
//! over loopback with a release archive made from the server's crates.io
//! source), on a Debian run image with no busybox (base-files, libc6 and
//! dash, from Debian's packages). The image is run under bwrap and asked
//! over loopback: `$PORT`, content types, the site's 404 page, no dotfile,
//! and with `BP_STATIC_SPA=true` index.html for a client route.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use serde_json::Value;
use sha2::Digest as _;

use crate::support::*;

const TOOLS: &[&str] = &[
    "bwrap",
    "umoci",
    "skopeo",
    "oci-image-tool",
    "apt-get",
    "dpkg-deb",
];

/// A run image of Debian's base-files, libc6 and dash: a shell, no busybox.
fn debian_shell_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let layout = target_dir().join("debian-shell");
        ok(Command::new(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/debian-run-image.sh"),
        )
        .arg(&layout)
        .args([
            "base",
            "2026-01-01T00:00:00Z",
            "12.1",
            "base-files",
            "libc6",
            "dash",
        ]));
        format!("oci:{}:base", layout.display())
    })
}

/// The mirror: the release archive on one loopback server (also under
/// `/moved/`, as a mirror that moved it), the inventories naming it on
/// another (they must know the first one's port).
pub(crate) struct Mirror {
    releases: Files,
    _inventories: Files,
    /// `--env` arguments naming the inventory and its pin.
    pub(crate) env: Vec<String>,
    /// The same for an inventory naming the moved copy.
    moved_env: Vec<String>,
}

impl Mirror {
    pub(crate) fn start() -> Option<Self> {
        let sws = match crate::mirror::static_web_server() {
            Ok(sws) => sws,
            Err(e) => {
                lacking(&e);
                return None;
            }
        };
        let file: &'static str = Box::leak(sws.file.clone().into_boxed_str());
        let moved: &'static str = Box::leak(format!("/moved{file}").into_boxed_str());
        let releases = serve(vec![
            (file, sws.tarball.clone()),
            (moved, sws.tarball.clone()),
        ]);
        let inventory = |at: &str| {
            sws.inventory(&format!("http://127.0.0.1:{}{at}", releases.port))
                .into_bytes()
        };
        let (here, there) = (inventory(file), inventory(moved));
        let pins = [&here, &there].map(|i| hex::encode(sha2::Sha256::digest(i)));
        let served = serve(vec![("/inventory.toml", here), ("/moved.toml", there)]);
        let env = |path: &str, pin: &str| {
            vec![
                "--env".into(),
                format!(
                    "BP_STATIC_WEB_SERVER_INVENTORY=http://127.0.0.1:{}{path}",
                    served.port
                ),
                "--env".into(),
                format!("BP_STATIC_WEB_SERVER_INVENTORY_SHA256={pin}"),
            ]
        };
        Some(Self {
            env: env("/inventory.toml", &pins[0]),
            moved_env: env("/moved.toml", &pins[1]),
            releases,
            _inventories: served,
        })
    }

    fn downloads(&self) -> usize {
        self.releases.hits.load(Ordering::SeqCst)
    }
}

/// A site with one file of each kind a browser checks the type of.
fn site(dir: &Path) -> PathBuf {
    let app = dir.join("site");
    for (name, bytes) in [
        ("index.html", &b"<h1>home</h1>\n"[..]),
        ("404.html", b"<h1>no such page</h1>\n"),
        ("assets/style.css", b"h1 { color: teal }\n"),
        ("assets/app.js", b"console.log('hi');\n"),
        (
            "assets/logo.svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n",
        ),
        ("assets/data.json", b"{\"ok\": true}\n"),
        ("assets/mod.wasm", b"\0asm\x01\0\0\0"),
        (
            ".well-known/security.txt",
            b"Contact: mailto:security@example.com\n",
        ),
        (".env", b"API_TOKEN=never-served\n"),
        // What static-web-server would read from where it starts: were it
        // /workspace (the app), these would serve the app's .env.
        (
            "sws.toml",
            b"[general]\nroot = \"/workspace\"\nignore-hidden-files = false\n",
        ),
        (
            "config.toml",
            b"[general]\nroot = \"/workspace\"\nignore-hidden-files = false\n",
        ),
    ] {
        let path = app.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    // A link inside the site is served as what it points at.
    std::os::unix::fs::symlink("index.html", app.join("latest.html")).unwrap();
    app
}

fn build(app: &Path, cache: &Path, layout: &Path, extra: &[String]) -> Outcome {
    let mut args: Vec<String> = vec![
        app.display().to_string(),
        "--output".into(),
        format!("oci:{}:site", layout.display()),
        "--run-image".into(),
        debian_shell_image().into(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(extra.iter().cloned());
    build_in(cache, &args)
}

fn build_ok(app: &Path, cache: &Path, layout: &Path, extra: &[String]) -> Value {
    let o = build(app, cache, layout, extra);
    assert_eq!(o.code, 0, "{}", o.stderr);
    serde_json::from_str(&o.stdout).unwrap()
}

/// A running image and a way to ask it.
pub(crate) struct Running {
    server: std::process::Child,
    port: u16,
    /// Where the image was unpacked.
    pub(crate) bundle: PathBuf,
}

impl Running {
    /// Validate, unpack into `into` and start `layout`'s image `tag`.
    pub(crate) fn start(layout: &Path, tag: &str, into: &Path) -> Self {
        validate(layout, tag);
        let config = skopeo_config(layout, tag);
        let bundle = unpack(layout, tag, into);
        let port = free_port();
        let server = bwrap(&bundle, &config, &[("PORT", &port.to_string())], true)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            server,
            port,
            bundle,
        }
    }

    /// The status line, the content-type and the body of `GET path`.
    pub(crate) fn get(&self, path: &str) -> (String, String, String) {
        let r = self.request(path, &[]);
        let kind = r.header("content-type").unwrap_or_default();
        (r.status, kind, r.body)
    }

    /// `GET path` with extra header lines.
    fn request(&self, path: &str, headers: &[&str]) -> Response {
        let mut request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n");
        for h in headers {
            request.push_str(h);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        let response = http_when_up(self.port, request.as_bytes());
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let mut lines = head.lines();
        Response {
            status: lines.next().unwrap_or_default().to_owned(),
            headers: lines.map(str::to_owned).collect(),
            body: body.to_owned(),
        }
    }
}

struct Response {
    status: String,
    headers: Vec<String>,
    body: String,
}

impl Response {
    /// The value of header `name`, matched without case.
    fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// One test's site, mirror and places, and the arguments that name the
/// mirror and grant its fetch.
struct Setup {
    mirror: Mirror,
    tmp: tempfile::TempDir,
    app: PathBuf,
    cache: PathBuf,
    layout: PathBuf,
    extra: Vec<String>,
}

fn setup() -> Option<Setup> {
    if !have_all(TOOLS) {
        return None;
    }
    let mirror = Mirror::start()?;
    let tmp = tempfile::tempdir().unwrap();
    let mut extra = mirror.env.clone();
    extra.extend(["--allow".into(), "fetch:127.0.0.1".into()]);
    Some(Setup {
        app: site(tmp.path()),
        cache: tmp.path().join("cache"),
        layout: tmp.path().join("out"),
        mirror,
        tmp,
        extra,
    })
}

#[test]
fn a_site_is_served_by_static_web_server_on_a_run_image_without_busybox() {
    let Some(Setup {
        mirror,
        tmp,
        app,
        cache,
        layout,
        extra,
    }) = setup()
    else {
        return;
    };

    // Not granted the fetch: refused, saying how to grant it or avoid it,
    // and no image is written.
    let o = build(&app, &cache, &layout, &mirror.env);
    assert_ne!(o.code, 0);
    for says in [
        "capability fetch:127.0.0.1 denied",
        "BP_STATIC_SERVER=busybox",
    ] {
        assert!(o.stderr.contains(says), "{says:?} in {}", o.stderr);
    }
    assert!(!layout.join("index.json").exists());
    assert_eq!(mirror.downloads(), 0);

    let report = build_ok(&app, &cache, &layout, &extra);
    assert_eq!(report["group"][0]["id"], "cascade/static-site", "{report}");
    assert_eq!(mirror.downloads(), 1);
    let web = report["processes"].to_string();
    assert!(
        web.contains("static-web-server") && !web.contains("busybox"),
        "{web}"
    );

    let running = Running::start(&layout, "site", &tmp.path().join("run"));
    // What serves the site is the image's, and no busybox is there.
    assert!(running.bundle.join("rootfs/bin/dash").is_file());
    assert!(!running.bundle.join("rootfs/bin/busybox").exists());
    let (status, kind, body) = running.get("/");
    assert!(status.contains(" 200 "), "{status}");
    assert!(kind.starts_with("text/html"), "{kind}");
    assert_eq!(body, "<h1>home</h1>\n");
    for (path, want) in [
        ("/assets/style.css", "text/css"),
        ("/assets/app.js", "javascript"),
        ("/assets/logo.svg", "image/svg+xml"),
        ("/assets/data.json", "application/json"),
        ("/assets/mod.wasm", "application/wasm"),
    ] {
        let (status, kind, _) = running.get(path);
        assert!(status.contains(" 200 "), "{path}: {status}");
        assert!(kind.contains(want), "{path}: {kind}");
    }
    // .well-known/ is served (the copy kept it: a dot path, not a secret),
    // and so is a link inside the site.
    let (status, kind, body) = running.get("/.well-known/security.txt");
    assert!(
        status.contains(" 200 ") && kind.starts_with("text/plain"),
        "{status} {kind}"
    );
    assert_eq!(body, "Contact: mailto:security@example.com\n");
    let (status, _, body) = running.get("/latest.html");
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, "<h1>home</h1>\n");
    // Range and conditional requests; no Cache-Control that would keep a
    // page in browsers after the next deploy.
    let css = running.request("/assets/style.css", &["Range: bytes=0-1"]);
    assert!(css.status.contains(" 206 "), "{}", css.status);
    assert_eq!(css.body, "h1");
    let page = running.request("/", &[]);
    assert_eq!(page.header("cache-control"), None, "{:?}", page.headers);
    let modified = page.header("last-modified").expect("a Last-Modified");
    let again = running.request("/", &[&format!("If-Modified-Since: {modified}")]);
    assert!(again.status.contains(" 304 "), "{}", again.status);
    // No directory listing.
    let (status, _, _) = running.get("/assets/");
    assert!(status.contains(" 404 "), "{status}");
    // A missing page is the site's own 404. The app's .env is in
    // /workspace (as every CNB image holds its app there)
    assert!(running.bundle.join("rootfs/workspace/.env").is_file());
    // and the server, started in its own layer's dir, read neither
    // config file that would have made /workspace its root.
    for path in ["/dashboard/settings", "/.env"] {
        let (status, _, body) = running.get(path);
        assert!(status.contains(" 404 "), "{path}: {status}");
        assert_eq!(body.trim_end(), "<h1>no such page</h1>", "{path}");
    }
    drop(running);

    // Unchanged: the server's layer is reused, nothing downloaded, the
    // same image.
    let again = build_ok(&app, &cache, &layout, &extra);
    assert_eq!(again["digest"], report["digest"]);
    assert_eq!(mirror.downloads(), 1);
    assert!(reused(&again, "cascade/static-site:server"), "{again:#}");

    // The mirror moved it: the release's URL is part of what the layer
    // holds (its SBOM names it), so it is fetched again from there.
    let mut moved = mirror.moved_env.clone();
    moved.extend(["--allow".into(), "fetch:127.0.0.1".into()]);
    let from_moved = build_ok(&app, &cache, &layout, &moved);
    assert_eq!(mirror.downloads(), 2);
    assert!(
        !reused(&from_moved, "cascade/static-site:server"),
        "{from_moved:#}"
    );
    assert_ne!(from_moved["digest"], report["digest"]);
}

#[test]
fn a_single_page_app_gets_index_html_for_its_client_routes() {
    let Some(Setup {
        tmp,
        app,
        cache,
        layout,
        mut extra,
        ..
    }) = setup()
    else {
        return;
    };
    std::fs::remove_file(app.join("404.html")).unwrap();
    extra.extend(["--env".into(), "BP_STATIC_SPA=true".into()]);
    build_ok(&app, &cache, &layout, &extra);
    let running = Running::start(&layout, "site", &tmp.path().join("run"));
    for path in ["/dashboard/settings", "/users/7"] {
        let (status, kind, body) = running.get(path);
        assert!(status.contains(" 200 "), "{path}: {status}");
        assert!(kind.starts_with("text/html"), "{path}: {kind}");
        // (static-web-server sends the fallback page trimmed)
        assert_eq!(body.trim_end(), "<h1>home</h1>", "{path}");
    }
    // Files are still themselves.
    let (status, kind, _) = running.get("/assets/style.css");
    assert!(
        status.contains(" 200 ") && kind.contains("text/css"),
        "{status} {kind}"
    );
}
