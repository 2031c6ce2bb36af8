//! The `cascade/python` buildpack: CPython fetched from an inventory (a
//! platform mirror on loopback, named by URL and pinned by sha256), the
//! app's packages installed by pip, uv or Poetry through the exec
//! capability with the python it installed, an image that answers over
//! loopback, and rebuilds that fetch and install nothing.
//!
//! The runtime is made on the spot from this machine's CPython, laid out
//! as python-build-standalone's install_only builds (`python/bin/python3`,
//! `python/lib/python3.X/...`, libpython found through `$ORIGIN/../lib`,
//! which patchelf writes as those builds have it); the run image is
//! busybox plus the system libraries that CPython and its extension
//! modules link. The pip and Pipfile.lock apps need no index (their one
//! package is a vendored wheel); the Django, uv and Poetry apps install
//! from PyPI, behind the CA bundle of this machine.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::Ordering;

use cascade_lifecycle::oci::Digest;
use serde_json::Value;

use crate::mirror::{self, Runtime};
use crate::support::*;

const TOOLS: &[&str] = &[
    "bwrap",
    "umoci",
    "skopeo",
    "oci-image-tool",
    "python3",
    "ldd",
    "patchelf",
];

/// An app from `tests/fixtures/apps/<name>` with a loopback mirror for the
/// runtime (the inventory served too, by URL, pinned by sha256), and a
/// busybox + glibc run image with what CPython links.
struct Fixture {
    tmp: tempfile::TempDir,
    runtime: &'static Runtime,
    app: PathBuf,
    run_image: String,
    /// Serves the runtime tarball.
    mirror: Files,
    /// Serves the inventory.
    _inventory: Files,
    inventory_url: String,
    inventory: String,
}

impl Fixture {
    fn new(name: &str) -> Option<Self> {
        if !have_all(TOOLS) {
            return None;
        }
        let runtime = match mirror::python() {
            Ok(r) => r,
            Err(e) => {
                lacking(&e);
                return None;
            }
        };
        let tmp = tempfile::tempdir().unwrap();
        let file: &'static str = Box::leak(runtime.file.clone().into_boxed_str());
        let mirror = serve(vec![(file, runtime.tarball.clone())]);
        let inventory = runtime.inventory(&format!("http://127.0.0.1:{}{file}", mirror.port));
        let served = serve(vec![("/python.toml", inventory.clone().into_bytes())]);
        let inventory_url = format!("http://127.0.0.1:{}/python.toml", served.port);

        let app = tmp.path().join(name);
        ok(Command::new("cp")
            .arg("-r")
            .arg(fixture_app(name))
            .arg(&app));
        let runs = tmp.path().join("run");
        make_run_image_with_host_files(&runs, "glibc", &[], &[], &runtime.libs);
        let run_image = format!("oci:{}:glibc", runs.display());
        Some(Self {
            tmp,
            runtime,
            app,
            run_image,
            mirror,
            _inventory: served,
            inventory_url,
            inventory,
        })
    }

    /// `cascade build` of the app into `out` with the cache `cache`, the
    /// mirror's inventory named by URL; `extra` arguments last.
    fn try_build(&self, cache: &str, out: &str, extra: &[&str]) -> Outcome {
        let mut args = vec![
            self.app.display().to_string(),
            "--output".into(),
            format!("oci:{}:app", self.tmp.path().join(out).display()),
            "--run-image".into(),
            self.run_image.clone(),
            "--build-image".into(),
            build_image().into(),
            "--env".into(),
            format!("BP_PYTHON_INVENTORY={}", self.inventory_url),
            "--env".into(),
            format!(
                "BP_PYTHON_INVENTORY_SHA256={}",
                Digest::of(self.inventory.as_bytes()).hex()
            ),
            "--allow".into(),
            "fetch:127.0.0.1".into(),
            "--allow".into(),
            "exec:python3".into(),
            "--format".into(),
            "json".into(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        build_in(&self.tmp.path().join(cache), &args)
    }

    fn build(&self, cache: &str, out: &str, extra: &[&str]) -> Value {
        let outcome = self.try_build(cache, out, extra);
        assert_eq!(outcome.code, 0, "{}", outcome.stderr);
        assert!(
            outcome.stderr.contains("[cascade/python]"),
            "{}",
            outcome.stderr
        );
        serde_json::from_str(&outcome.stdout).unwrap()
    }

    /// Run the image built into `out` and `GET /`.
    fn get(&self, out: &str) -> String {
        let layout = self.tmp.path().join(out);
        validate(&layout, "app");
        let config = skopeo_config(&layout, "app");
        let bundle = unpack(&layout, "app", &self.tmp.path().join(format!("run-{out}")));
        run_and_get(&bundle, &config)
    }

    fn downloads(&self) -> usize {
        self.mirror.hits.load(Ordering::SeqCst)
    }
}

/// A response's body.
fn content(response: &str) -> &str {
    response
        .split_once("\r\n\r\n")
        .map_or(response, |(_, body)| body)
}

fn every_layer_reused(report: &Value) {
    for layer in report["layers"].as_array().unwrap() {
        assert_eq!(layer["reused"], true, "{layer}");
    }
}

#[test]
fn a_pip_app_gets_its_runtime_and_packages_answers_and_rebuilds_only_what_changed() {
    let Some(f) = Fixture::new("python-web") else {
        return;
    };
    let cold = f.build("cache", "out", &[]);
    let ids = group_ids(&cold);
    assert!(ids.contains(&"cascade/python"), "{ids:?}");
    assert_eq!(cold["default_process"], "web");
    let used = calls(&cold);
    assert_eq!(
        used.iter()
            .filter(|u| u.starts_with("\"fetch:127.0.0.1\""))
            .count(),
        2,
        "the inventory and the runtime: {used:?}"
    );
    assert!(
        used.iter().any(|u| u.starts_with("\"exec:python3\"")
            && u.contains("-m pip install --user")
            && u.contains("(exit 0)")),
        "{used:?}"
    );
    assert_eq!(f.downloads(), 1);
    let body = f.get("out");
    assert!(
        body.ends_with(&format!(
            "hello from python, python {}\n",
            f.runtime.version
        )),
        "{body}"
    );

    // No change: nothing downloaded, pip not run, every layer reused, the
    // same image.
    let again = f.build("cache", "out", &[]);
    assert_eq!(again["digest"], cold["digest"], "{cold:#}\n{again:#}");
    assert!(
        calls(&again).iter().all(|c| !c.starts_with("\"exec")),
        "{:?}",
        calls(&again)
    );
    assert_eq!(f.downloads(), 1);
    every_layer_reused(&again);

    // A changed requirements.txt: pip runs again, the runtime stays, and
    // the image is the one a cold build of the changed app gives anywhere.
    edit(
        &f.app.join("requirements.txt"),
        "greeting==1.0.0",
        "greeting==1.0.0  # pinned",
    );
    let warm = f.build("cache", "out", &[]);
    assert_eq!(f.downloads(), 1);
    assert!(reused(&warm, "cascade/python:python"));
    assert!(!reused(&warm, "cascade/python:packages"));
    let elsewhere = f.tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    ok(Command::new("cp").arg("-r").arg(&f.app).arg(&elsewhere));
    let moved = Fixture {
        app: elsewhere.join("python-web"),
        ..f
    };
    let fresh = moved.build("cache-cold", "out-cold", &[]);
    assert_eq!(fresh["digest"], warm["digest"], "{fresh:#}\n{warm:#}");

    // The platform moves its mirror: the same release from another URL,
    // named by an inventory in the app. The runtime is fetched anew, the
    // packages stay, and the image records only the new download: it is
    // the image a cold build from the new mirror gives.
    let old_url = format!("127.0.0.1:{}", moved.mirror.port);
    let file: &'static str = "/moved/cpython-install_only.tar.gz";
    let second = serve(vec![(file, moved.runtime.tarball.clone())]);
    let inventory = moved
        .runtime
        .inventory(&format!("http://127.0.0.1:{}{file}", second.port));
    std::fs::write(moved.app.join("python-inventory.toml"), inventory).unwrap();
    let in_app = ["--env", "BP_PYTHON_INVENTORY=python-inventory.toml"];
    let switched = moved.build("cache", "out", &in_app);
    assert!(!reused(&switched, "cascade/python:python"));
    assert!(reused(&switched, "cascade/python:packages"));
    let label = skopeo_config(&moved.tmp.path().join("out"), "app")["config"]["Labels"]
        ["dev.cascade.capabilities"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !label.contains(&old_url),
        "the old mirror's download stays: {label}"
    );
    let cold = moved.build("cache-moved", "out-moved", &in_app);
    assert_eq!(cold["digest"], switched["digest"], "{cold:#}\n{switched:#}");
}

#[test]
fn a_python_runtime_or_inventory_with_the_wrong_sha256_is_refused() {
    let Some(f) = Fixture::new("python-web") else {
        return;
    };
    // The inventory's pin is wrong: nothing is downloaded past it.
    let bad_pin = f.try_build(
        "cache",
        "out",
        &[
            "--env",
            &format!("BP_PYTHON_INVENTORY_SHA256={}", "0".repeat(64)),
        ],
    );
    assert_eq!(bad_pin.code, 51, "{}", bad_pin.stderr);
    assert!(
        bad_pin
            .stderr
            .contains(&format!("{}: sha256 mismatch", f.inventory_url)),
        "{}",
        bad_pin.stderr
    );
    assert_eq!(f.downloads(), 0, "the runtime was never asked for");

    // An inventory in the app whose runtime checksum is wrong.
    let inventory = f.inventory.replace(&f.runtime.sha, &"0".repeat(64));
    std::fs::write(f.app.join("python-inventory.toml"), inventory).unwrap();
    let bad = f.try_build(
        "cache",
        "out",
        &["--env", "BP_PYTHON_INVENTORY=python-inventory.toml"],
    );
    assert_eq!(bad.code, 51, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("-install_only.tar.gz: sha256 mismatch"),
        "{}",
        bad.stderr
    );
    assert_eq!(f.downloads(), 1, "downloaded once, and refused");
    // Nothing was written: the output layout was never made.
    assert!(!f.tmp.path().join("out").exists());
}

#[test]
fn a_pipfile_lock_installs_through_pip_with_its_hashes_checked_and_a_bare_script_runs() {
    let Some(f) = Fixture::new("python-web") else {
        return;
    };
    let wheel = std::fs::read(f.app.join("vendor/greeting-1.0.0-py3-none-any.whl")).unwrap();
    let hash = Digest::of(&wheel).hex().to_owned();
    std::fs::remove_file(f.app.join("requirements.txt")).unwrap();
    std::fs::write(
        f.app.join("Pipfile"),
        "[packages]\ngreeting = \"==1.0.0\"\n",
    )
    .unwrap();
    let lock = |hash: &str| {
        format!(
            "{{\"_meta\": {{\"pipfile-spec\": 6, \"sources\": []}}, \"default\": {{\"greeting\": {{\"version\": \"==1.0.0\", \"hashes\": [\"sha256:{hash}\"]}}}}, \"develop\": {{}}}}"
        )
    };
    std::fs::write(f.app.join("Pipfile.lock"), lock(&hash)).unwrap();
    // The platform's index settings reach pip: here, no index and the
    // vendored wheels.
    let offline = [
        "--exec-env",
        "PIP_NO_INDEX=1",
        "--exec-env",
        "PIP_FIND_LINKS=/workspace/vendor",
    ];
    let report = f.build("cache", "out", &offline);
    assert!(
        calls(&report)
            .iter()
            .any(|c| c.contains("Pipfile.lock.requirements.txt")),
        "{:?}",
        calls(&report)
    );
    let body = f.get("out");
    assert!(content(&body).starts_with("hello from python"), "{body}");

    // A lock whose hash the wheel does not have: pip refuses it.
    std::fs::write(f.app.join("Pipfile.lock"), lock(&"1".repeat(64))).unwrap();
    let tampered = f.try_build("cache", "out2", &offline);
    assert_eq!(tampered.code, 51, "{}", tampered.stderr);
    assert!(
        tampered.stderr.to_uppercase().contains("HASH"),
        "{}",
        tampered.stderr
    );

    // No manager at all: main.py, run by the python the layer holds.
    for file in ["Pipfile", "Pipfile.lock", "server.py"] {
        std::fs::remove_file(f.app.join(file)).unwrap();
    }
    std::fs::write(
        f.app.join("main.py"),
        "import http.server, os, platform\n\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = ('plain python ' + platform.python_version() + '\\n').encode()\n        self.send_response(200)\n        self.send_header('Content-Length', str(len(body)))\n        self.end_headers()\n        self.wfile.write(body)\n\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n",
    )
    .unwrap();
    let report = f.build("cache", "out3", &[]);
    let process = report["processes"].to_string();
    assert!(process.contains("main.py"), "{process}");
    let body = f.get("out3");
    assert!(
        body.ends_with(&format!("plain python {}\n", f.runtime.version)),
        "{body}"
    );
}

/// Build a PyPI app cold, run it and expect `hello`, then rebuild it with
/// no change: every layer reused, the same digest, no tool run.
fn pypi_app(name: &str, hello: &str, web: &str) {
    let Some(f) = Fixture::new(name) else {
        return;
    };
    let Some(extra) = from_registries() else {
        return;
    };
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let cold = f.build("cache", "out", &extra);
    let process = cold["processes"].to_string();
    assert!(process.contains(web), "{process}");
    let body = f.get("out");
    assert!(
        content(&body).starts_with(hello)
            && body.ends_with(&format!("python {}\n", f.runtime.version)),
        "{body}"
    );
    let again = f.build("cache", "out", &extra);
    assert_eq!(again["digest"], cold["digest"], "{cold:#}\n{again:#}");
    assert!(
        calls(&again).iter().all(|c| !c.starts_with("\"exec")),
        "{:?}",
        calls(&again)
    );
    every_layer_reused(&again);
}

#[test]
fn a_django_app_from_pypi_is_served_by_gunicorn() {
    pypi_app(
        "python-django",
        "hello from django 5.2.20",
        "/bin/gunicorn\",\"mysite.wsgi",
    );
}

#[test]
fn a_uv_locked_asgi_app_is_synced_and_served_by_uvicorn() {
    pypi_app(
        "python-uv",
        "hello from starlette",
        "uvicorn.run('main:app'",
    );
}

#[test]
fn a_poetry_locked_flask_app_is_installed_and_served_by_gunicorn() {
    pypi_app(
        "python-poetry",
        "hello from flask",
        "/venv/bin/gunicorn\",\"app:app",
    );
}
