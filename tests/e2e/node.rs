//! The `cascade/node` buildpack: a Node.js runtime fetched from an
//! inventory (served here over loopback, as a platform mirror would), `npm
//! ci` through the exec capability with the node it installed, an image
//! that answers over loopback, and a rebuild that fetches and installs
//! nothing.
//!
//! The runtime tarball is made from this machine's own node (an official
//! linux build needs only glibc), laid out as nodejs.org lays it out; the
//! run image is busybox plus the glibc libraries that node links.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;

use serde_json::Value;

use crate::support::*;

const TOOLS: &[&str] = &["bwrap", "umoci", "skopeo", "oci-image-tool", "node", "ldd"];

fn node_build(cache: &Path, app: &Path, layout: &Path, run_image: &str, extra: &[&str]) -> Outcome {
    let mut args: Vec<String> = vec![
        app.display().to_string(),
        "--output".into(),
        format!("oci:{}:app", layout.display()),
        "--run-image".into(),
        run_image.into(),
        "--env".into(),
        "BP_NODE_INVENTORY=node-inventory.toml".into(),
        "--allow".into(),
        "fetch:127.0.0.1".into(),
        "--allow".into(),
        "exec:node".into(),
        "--format".into(),
        "json".into(),
        "--build-image".into(),
        build_image().into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    build_in(cache, &args)
}

/// An app (node-web unless said) asking for the host node's major, with a
/// loopback mirror inventory beside it, and a busybox + glibc run image.
pub(crate) struct Fixture {
    pub(crate) tmp: tempfile::TempDir,
    pub(crate) node: &'static crate::mirror::Runtime,
    pub(crate) app: PathBuf,
    pub(crate) run_image: String,
    server: Files,
    /// Of the runtime tarball.
    sha: String,
}

impl Fixture {
    fn new() -> Option<Self> {
        Self::with_app("node-web")
    }

    pub(crate) fn with_app(app_name: &str) -> Option<Self> {
        if !have_all(TOOLS) {
            return None;
        }
        let node = match crate::mirror::node() {
            Ok(node) => node,
            Err(e) => {
                lacking(&e);
                return None;
            }
        };
        let tmp = tempfile::tempdir().unwrap();
        let name: &'static str = Box::leak(node.file.clone().into_boxed_str());
        let server = serve(vec![(name, node.tarball.clone())]);
        let sha = node.sha.clone();

        let app = tmp.path().join(app_name);
        ok(Command::new("cp")
            .arg("-r")
            .arg(fixture_app(app_name))
            .arg(&app));
        let major = node.version.split('.').next().unwrap();
        if app_name == "node-web" {
            edit(
                &app.join("package.json"),
                "\"node\": \"20.x\"",
                &format!("\"node\": \"{major}.x\""),
            );
        }
        std::fs::write(
            app.join("node-inventory.toml"),
            node.inventory(&format!("http://127.0.0.1:{}{name}", server.port)),
        )
        .unwrap();

        let runs = tmp.path().join("run");
        make_run_image_with_host_files(&runs, "glibc", &[], &[], &node.libs);
        let run_image = format!("oci:{}:glibc", runs.display());
        Some(Self {
            tmp,
            node,
            app,
            run_image,
            server,
            sha,
        })
    }

    /// `cascade build` into `out`, with the cache `cache`; the report.
    fn build(&self, cache: &str, out: &str) -> Value {
        self.build_with(cache, out, &[])
    }

    /// [`Fixture::build`] with `extra` arguments.
    pub(crate) fn build_with(&self, cache: &str, out: &str, extra: &[&str]) -> Value {
        let outcome = self.try_build_with(cache, out, extra);
        assert_eq!(outcome.code, 0, "{}", outcome.stderr);
        assert!(
            outcome.stderr.contains("[cascade/node]"),
            "{}",
            outcome.stderr
        );
        serde_json::from_str(&outcome.stdout).unwrap()
    }

    fn try_build(&self, cache: &str, out: &str) -> Outcome {
        self.try_build_with(cache, out, &[])
    }

    pub(crate) fn try_build_with(&self, cache: &str, out: &str, extra: &[&str]) -> Outcome {
        node_build(
            &self.tmp.path().join(cache),
            &self.app,
            &self.tmp.path().join(out),
            &self.run_image,
            extra,
        )
    }

    fn downloads(&self) -> usize {
        self.server.hits.load(Ordering::SeqCst)
    }
}

#[test]
fn a_node_app_gets_its_runtime_and_modules_and_answers_over_loopback() {
    let Some(f) = Fixture::new() else { return };
    let report = f.build("cache", "out");
    let ids = group_ids(&report);
    assert!(ids.contains(&"cascade/node"), "{ids:?}");
    assert_eq!(report["default_process"], "web");
    let used = calls(&report);
    assert!(
        used.iter().any(|u| u.starts_with("\"fetch:127.0.0.1\"")),
        "{used:?}"
    );
    assert!(
        used.iter().any(|u| u.starts_with("\"exec:node\"")
            && u.contains("npm-cli.js ci")
            && u.contains("(exit 0)")),
        "{used:?}"
    );
    assert_eq!(f.downloads(), 1);

    let layout = f.tmp.path().join("out");
    validate(&layout, "app");
    let config = skopeo_config(&layout, "app");
    let bundle = unpack(&layout, "app", f.tmp.path());
    let rootfs = bundle.join("rootfs");
    // node_modules is its own layer, linked from the app.
    let link = std::fs::read_link(rootfs.join("workspace/node_modules")).unwrap();
    assert!(
        link.starts_with("../layers/cascade_node/modules/"),
        "{}",
        link.display()
    );
    assert!(
        rootfs
            .join("layers/cascade_node/modules/node_modules/greeting/index.js")
            .is_file()
    );
    let body = run_and_get(&bundle, &config);
    assert!(
        body.ends_with(&format!("hello from node, node v{}\n", f.node.version)),
        "{body}"
    );
}

#[test]
fn a_node_rebuild_fetches_and_installs_only_what_changed() {
    let Some(f) = Fixture::new() else { return };
    let cold = f.build("cache", "out");

    // No change: nothing downloaded, npm not run, every layer reused, and
    // the same image (its label still names the calls behind the layers).
    let again = f.build("cache", "out");
    assert_eq!(again["digest"], cold["digest"], "{cold:#}\n{again:#}");
    assert_eq!(calls(&again), Vec::<String>::new());
    assert_eq!(f.downloads(), 1);
    for layer in again["layers"].as_array().unwrap() {
        assert_eq!(layer["reused"], true, "{layer}");
    }
    let label = &skopeo_config(&f.tmp.path().join("out"), "app")["config"]["Labels"]["dev.cascade.capabilities"];
    let label = label.as_str().unwrap();
    assert!(
        label.contains("fetch:127.0.0.1") && label.contains("exec:node"),
        "{label}"
    );

    // A new lockfile: npm runs again, the runtime stays (no download), and
    // the image is the one a cold build of the changed app gives.
    for file in ["package.json", "package-lock.json"] {
        edit(
            &f.app.join(file),
            "\"version\": \"1.0.0\",\n  \"",
            "\"version\": \"1.0.1\",\n  \"",
        );
    }
    let warm = f.build("cache", "out");
    assert_eq!(f.downloads(), 1);
    let used = calls(&warm);
    assert!(
        used.len() == 1 && used[0].starts_with("\"exec:node\""),
        "{used:?}"
    );
    assert!(reused(&warm, "cascade/node:node"));
    assert!(!reused(&warm, "cascade/node:modules"));
    let fresh = f.build("cache-cold", "out-cold");
    assert_eq!(fresh["digest"], warm["digest"], "{fresh:#}\n{warm:#}");
}

#[test]
fn a_node_runtime_with_the_wrong_sha256_is_refused() {
    let Some(f) = Fixture::new() else { return };
    edit(&f.app.join("node-inventory.toml"), &f.sha, &"0".repeat(64));
    let bad = f.try_build("cache", "out");
    assert_eq!(bad.code, 51, "{}", bad.stderr);
    assert!(bad.stderr.contains("sha256"), "{}", bad.stderr);
    // Nothing was tagged.
    let index = std::fs::read_to_string(f.tmp.path().join("out/index.json")).unwrap_or_default();
    assert!(!index.contains("\"app\""), "{index}");
}

/// A CA made here, and an HTTPS server on loopback whose certificate it
/// signed, serving `dir` (Python's http.server with its ssl module): a
/// TLS-intercepting proxy's registry, in miniature.
struct HttpsServer {
    child: std::process::Child,
    port: u16,
    ca: PathBuf,
}

impl HttpsServer {
    fn start(dir: &Path, certs: &Path) -> Self {
        std::fs::create_dir_all(certs).unwrap();
        let at = |f: &str| certs.join(f);
        let openssl = |args: &[&str]| {
            ok(Command::new("openssl").current_dir(certs).args(args));
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Cascade Test Proxy CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            at("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        let script = "import http.server, ssl, sys, os\nos.chdir(sys.argv[1])\ns = http.server.HTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)\nc = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\nc.load_cert_chain(sys.argv[2], sys.argv[3])\ns.socket = c.wrap_socket(s.socket, server_side=True)\nprint(s.server_address[1], flush=True)\ns.serve_forever()\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(dir)
            .arg(at("server.pem"))
            .arg(at("server.key"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port = line.trim().parse().expect("the server says its port");
        Self {
            child,
            port,
            ca: at("ca.pem"),
        }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn npm_behind_a_tls_intercepting_registry_trusts_the_ca_the_platform_gives_and_the_image_does_not_carry_it()
 {
    let Some(f) = Fixture::new() else { return };
    if !have_all(&["openssl", "python3"]) {
        return;
    }
    // The dependency now comes from the HTTPS server, by the same bytes.
    let files = f.tmp.path().join("served");
    std::fs::create_dir(&files).unwrap();
    std::fs::copy(
        f.app.join("vendor/greeting-1.0.0.tgz"),
        files.join("greeting-1.0.0.tgz"),
    )
    .unwrap();
    let server = HttpsServer::start(&files, &f.tmp.path().join("certs"));
    let url = format!("https://127.0.0.1:{}/greeting-1.0.0.tgz", server.port);
    for file in ["package.json", "package-lock.json"] {
        let path = f.app.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("file:vendor/greeting-1.0.0.tgz", &url)).unwrap();
    }
    std::fs::remove_dir_all(f.app.join("vendor")).unwrap();

    let build = |out: &str, extra: &[&str]| {
        let mut args = vec![
            f.app.display().to_string(),
            "--output".into(),
            format!("oci:{}:app", f.tmp.path().join(out).display()),
            "--run-image".into(),
            f.run_image.clone(),
            "--env".into(),
            "BP_NODE_INVENTORY=node-inventory.toml".into(),
            "--allow".into(),
            "fetch:127.0.0.1".into(),
            "--allow".into(),
            "exec:node".into(),
            "--allow".into(),
            "network".into(),
            "--build-image".into(),
            build_image().into(),
            // npm would retry a certificate it cannot verify for a minute.
            "--exec-env".into(),
            "npm_config_fetch_retries=0".into(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        build_in(&f.tmp.path().join(format!("cache-{out}")), &args)
    };
    let untrusted = build("untrusted", &[]);
    assert_eq!(untrusted.code, 51, "{}", untrusted.stderr);
    assert!(
        untrusted.stderr.contains("npm") && untrusted.stderr.to_lowercase().contains("cert"),
        "npm failed for another reason than the certificate: {}",
        untrusted.stderr
    );

    let ca = server.ca.display().to_string();
    let trusted = build("trusted", &["--ca-certificates", &ca]);
    assert_eq!(trusted.code, 0, "{}", trusted.stderr);
    assert!(
        trusted.stderr.contains("[cascade/ca-certs]"),
        "{}",
        trusted.stderr
    );

    // The CA served the build; the image carries neither it nor a
    // variable pointing at it.
    let layout = f.tmp.path().join("trusted");
    let config = skopeo_config(&layout, "app");
    let env = config["config"]["Env"].to_string();
    assert!(
        !env.contains("NODE_EXTRA_CA_CERTS") && !env.contains("build-ca-certificates"),
        "{env}"
    );
    let pem = std::fs::read_to_string(&server.ca).unwrap();
    let body_line = pem.lines().nth(1).unwrap().to_owned();
    let bundle = unpack(&layout, "app", f.tmp.path());
    let mut stack = vec![bundle.join("rootfs")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let bytes = std::fs::read(entry.path()).unwrap();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(&body_line),
                    "the build-only CA is in the image at {}",
                    entry.path().display()
                );
            }
        }
    }
    assert!(
        bundle
            .join("rootfs/layers/cascade_node/modules/node_modules/greeting/index.js")
            .is_file()
    );
}
