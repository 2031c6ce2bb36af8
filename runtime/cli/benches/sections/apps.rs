//! The apps people bring, built by cascade/python and cascade/node from a
//! loopback mirror of this machine's CPython and Node.js, with their
//! packages from PyPI and the npm registry: a cold build and a no-op
//! rebuild, against the package manager's own cold install of the same
//! lock in the same environment (this machine, this network).

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::mirror;
use crate::rebase::run_ok;

/// One app: its fixture, the buildpack's runtime and inventory variable,
/// the program it execs, and the package manager's own install.
struct App {
    fixture: &'static str,
    runtime: &'static mirror::Runtime,
    inventory_var: &'static str,
    exec: &'static str,
    tool: &'static str,
    /// The tool's cold install of a fresh copy of the app, with a fresh
    /// cache under the given dir.
    install: fn(app: &Path, scratch: &Path) -> Command,
}

pub(super) fn apps_vs_tools(out: &mut String) {
    let bin = workspace().join("target/release/cascade");
    assert!(bin.is_file(), "build the release binary first");
    let (image, _) = super::rust::build_image();
    let python = mirror::python().expect("a relocatable CPython on this machine");
    let node = mirror::node().expect("an official-style Node.js on this machine");
    let ca = std::env::var("SSL_CERT_FILE")
        .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".to_owned());
    let apps = [
        App {
            fixture: "python-django",
            runtime: python,
            inventory_var: "BP_PYTHON_INVENTORY",
            exec: "exec:python3",
            tool: "pip install -r requirements.txt",
            install: |app, scratch| {
                let mut c = Command::new("python3");
                c.current_dir(app)
                    .args(["-m", "pip", "install", "-q", "--no-input"])
                    .arg("--target")
                    .arg(scratch.join("site"))
                    .arg("--cache-dir")
                    .arg(scratch.join("cache"))
                    .args(["-r", "requirements.txt"]);
                c
            },
        },
        App {
            fixture: "node-express",
            runtime: node,
            inventory_var: "BP_NODE_INVENTORY",
            exec: "exec:node",
            tool: "npm ci --omit=dev",
            install: |app, scratch| {
                let mut c = Command::new("npm");
                c.current_dir(app)
                    .args(["ci", "--omit=dev", "--no-audit", "--no-fund", "--cache"])
                    .arg(scratch.join("cache"));
                c
            },
        },
        App {
            fixture: "node-frontend",
            runtime: node,
            inventory_var: "BP_NODE_INVENTORY",
            exec: "exec:node",
            tool: "npm ci",
            install: |app, scratch| {
                let mut c = Command::new("npm");
                c.current_dir(app)
                    .args(["ci", "--no-audit", "--no-fund", "--cache"])
                    .arg(scratch.join("cache"));
                c
            },
        },
    ];
    let mut rows = String::new();
    for app in &apps {
        let tmp = tempfile::tempdir().unwrap();
        let file: &'static str = Box::leak(app.runtime.file.clone().into_boxed_str());
        let mirror_server = mirror::serve(vec![(file, app.runtime.tarball.clone())]);
        let inventory = app
            .runtime
            .inventory(&format!("http://127.0.0.1:{}{file}", mirror_server.port));
        let inventory_sha = hex::encode(sha2::Sha256::digest(inventory.as_bytes()));
        let served = mirror::serve(vec![("/inventory.toml", inventory.into_bytes())]);
        let source = workspace().join("tests/fixtures/apps").join(app.fixture);
        let copy = |to: &Path| {
            run_ok(Command::new("cp").arg("-r").arg(&source).arg(to));
        };
        let build = |cache: &Path, tag: &str| {
            let (d, o) = time(|| {
                Command::new(&bin)
                    .env("CASCADE_CACHE_DIR", cache)
                    .arg("build")
                    .arg(tmp.path().join("app"))
                    .args(["--run-image", &image, "--build-image", &image])
                    .arg("--output")
                    .arg(format!("oci:{}:{tag}", tmp.path().join("out").display()))
                    .arg("--env")
                    .arg(format!(
                        "{}=http://127.0.0.1:{}/inventory.toml",
                        app.inventory_var, served.port
                    ))
                    .arg("--env")
                    .arg(format!("{}_SHA256={inventory_sha}", app.inventory_var))
                    .args(["--allow", "fetch:127.0.0.1", "--allow", app.exec])
                    .args(["--allow", "network", "--ca-certificates", &ca, "-q"])
                    // The front end's server: no download (the bench times
                    // the build, and the image is not run).
                    .args(["--env", "BP_STATIC_SERVER=busybox"])
                    .output()
                    .unwrap()
            });
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            d
        };
        copy(&tmp.path().join("app"));
        // The first build on a machine: no cache at all (the build image
        // unpacked, the run image listed, the runtime downloaded).
        let machine = tmp.path().join("cache");
        let first = build(&machine, "first");
        // A new app on that machine: a new image, so no layer of its own
        // to reuse, with what the machine caches by digest warm.
        let cold: Vec<Duration> = (0..2)
            .map(|i| build(&machine, &format!("cold-{i}")))
            .collect();
        let noop: Vec<Duration> = (0..5).map(|_| build(&machine, "cold-1")).collect();
        let tool: Vec<Duration> = (0..3)
            .map(|i| {
                let scratch = tmp.path().join(format!("tool-{i}"));
                std::fs::create_dir(&scratch).unwrap();
                let app_copy = scratch.join("app");
                copy(&app_copy);
                let mut cmd = (app.install)(&app_copy, &scratch);
                time(|| run_ok(&mut cmd)).0
            })
            .collect();
        let (cold, noop, tool) = (median(cold), median(noop), median(tool));
        let s = |d: Duration| d.as_secs_f64();
        let _ = writeln!(
            rows,
            "| {} | {:.2} s | {:.2} s | {:.2} s | `{}`: {:.2} s | **{:.1} %** | {:.2}× |",
            app.fixture,
            s(first),
            s(cold),
            s(noop),
            app.tool,
            s(tool),
            100.0 * s(noop) / s(tool),
            s(cold) / s(tool),
        );
    }
    let _ = writeln!(
        out,
        "\n## Apps: no-op rebuild vs the package manager's cold install\n\n`cascade build` (release) of three fixtures with the default builder: a Django app with gunicorn (requirements.txt, from PyPI), an Express app (package-lock.json, from the npm registry) and a Vite front end (npm ci with devDependencies, `vite build`, served by cascade/static-site with `BP_STATIC_SERVER=busybox`, so no server is downloaded), their runtimes (this machine's CPython 3.11 and Node.js, laid out as install_only and nodejs.org builds) from a loopback mirror named by a pinned inventory URL. First build: a machine with no cache at all (the build image unpacked for exec, the 428 MB run image listed for the process check and stack contract, the runtime downloaded: paid once per machine and base). Cold: a new app on that machine, no layer of its own to reuse (median of 2). No-op: the same app again (median of 5; every layer reused). Baseline: the package manager alone installing the same lock on this machine, with a fresh cache (median of 3). Goal: no-op rebuild ≤ 10 % of the tool's own cold install.\n\n| app | first build | cold build | no-op rebuild | baseline | no-op / baseline | cold / baseline |\n|---|---|---|---|---|---|---|\n{rows}\nA cold build does what the baseline does (the install, in bubblewrap in the build image) plus unpacking the runtime and compressing its layers. A front end's no-op rebuild runs its build script again (the source may have changed; the build decides), so it costs what `vite build` costs on top of the reuse: that row misses the goal by design."
    );
}
