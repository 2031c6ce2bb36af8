//! Each first-party buildpack builds its fixture app into an image that the
//! real tools accept and that runs.

use std::path::Path;

use crate::support::*;

const TOOLS: &[&str] = &["umoci", "skopeo", "oci-image-tool", "bwrap"];

fn out_ref(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.join("out").display())
}

#[test]
fn procfile_app_runs_its_default_process() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let app = fixture_app("procfile");
    let report = build_ok(&[
        app.to_str().unwrap(),
        "--output",
        &out_ref(tmp.path(), "v1"),
        "--run-image",
        busybox_run_image(),
    ]);
    assert_eq!(report["group"][0]["id"], "cascade/procfile");
    assert_eq!(report["default_process"], "web");
    let phases: Vec<&str> = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["analyze", "detect", "restore", "build", "export"]);
    // Two layers, the config and the manifest were written; again, none.
    assert_eq!(report["transfers"]["written"], 4, "{report}");
    let again = build_ok(&[
        app.to_str().unwrap(),
        "--output",
        &out_ref(tmp.path(), "v1"),
        "--run-image",
        busybox_run_image(),
    ]);
    let t = &again["transfers"];
    assert_eq!(
        (t["written"].as_u64(), t["present"].as_u64()),
        (Some(0), Some(5)),
        "{again}"
    );
    let layout = tmp.path().join("out");
    validate(&layout, "v1");

    let config = skopeo_config(&layout, "v1");
    assert_eq!(config["created"], "1980-01-01T00:00:01Z");
    assert_eq!(config["config"]["WorkingDir"], "/workspace");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/bin/busybox", "echo", "hello", "from", "procfile"])
    );
    let labels = &config["config"]["Labels"];
    let lifecycle: serde_json::Value =
        serde_json::from_str(labels["io.buildpacks.lifecycle.metadata"].as_str().unwrap()).unwrap();
    let run = skopeo_config(&busybox_layout(), "base");
    assert_eq!(
        lifecycle["runImage"]["topLayer"],
        run["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone()
    );
    let build: serde_json::Value =
        serde_json::from_str(labels["io.buildpacks.build.metadata"].as_str().unwrap()).unwrap();
    let types: Vec<&str> = build["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["web", "worker"]);
    assert_eq!(build["processes"][1]["buildpackID"], "cascade/procfile");
    assert_eq!(
        build["processes"][1]["command"],
        serde_json::json!(["/bin/sh", "-c", "echo \"worker in $PWD\""])
    );

    // Base layers are the run image's, by digest.
    let raw: serde_json::Value = serde_json::from_str(&ok(std::process::Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--raw"])
        .arg(format!("oci:{}:v1", layout.display()))))
    .unwrap();
    let run_raw: serde_json::Value =
        serde_json::from_str(&ok(std::process::Command::new("skopeo")
            .args(["--insecure-policy", "inspect", "--raw"])
            .arg(format!("oci:{}:base", busybox_layout().display()))))
        .unwrap();
    assert_eq!(raw["layers"][0]["digest"], run_raw["layers"][0]["digest"]);

    let bundle = unpack(&layout, "v1", tmp.path());
    assert!(bundle.join("rootfs/workspace/Procfile").is_file());
    let out = ok(&mut bwrap(&bundle, &config, &[], false));
    assert_eq!(out, "hello from procfile\n");
}

/// `cascade run` starts the default process, a named one, with extra
/// arguments and env, and serves on `--port`; a wrong type lists the
/// right ones.
#[test]
fn cascade_run_starts_any_process_of_an_image() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let image = out_ref(tmp.path(), "v1");
    build_ok(&[
        fixture_app("procfile").to_str().unwrap(),
        "--output",
        &image,
        "--run-image",
        busybox_run_image(),
    ]);
    let run = |args: &[&str]| {
        let o = crate::support::run(cascade().arg("run").arg(&image).args(args));
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["-q", "--", "again"]);
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "hello from procfile again\n"),
        "{err}"
    );
    assert!(err.is_empty(), "-q: {err}");
    let (code, out, err) = run(&["--process", "worker", "-e", "IGNORED=1"]);
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "worker in /workspace\n"),
        "{err}"
    );
    assert!(err.contains("starting worker"), "{err}");
    let (code, _, err) = run(&["--process", "cron"]);
    assert_eq!(code, Some(10), "{err}");
    assert!(err.contains("the image has: web, worker"), "{err}");
    // Each run's unpacked root is gone once its process ended.
    let runs = cache_dir().join("run");
    let left = std::fs::read_dir(&runs).map_or(0, Iterator::count);
    assert_eq!(left, 0, "roots left under {}", runs.display());

    let site = out_ref(tmp.path(), "site");
    build_ok(&[
        fixture_app("static-site").to_str().unwrap(),
        "--output",
        &site,
        "--run-image",
        busybox_run_image(),
        "--env",
        "BP_STATIC_SERVER=busybox",
    ]);
    let port = free_port();
    let mut server = cascade()
        .args(["run", &site, "-q", "--port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let body = http_when_up(port, b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n");
    // bwrap --die-with-parent: the server goes with cascade.
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(
        body.contains("Served by busybox httpd from a Cascade image"),
        "{body}"
    );
}

fn busybox_layout() -> std::path::PathBuf {
    let r = busybox_run_image().strip_prefix("oci:").unwrap();
    r.rsplit_once(':').unwrap().0.into()
}

#[test]
fn static_site_serves_its_page_over_loopback() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let report = build_ok(&[
        fixture_app("static-site").to_str().unwrap(),
        "--output",
        &out_ref(tmp.path(), "site"),
        "--run-image",
        busybox_run_image(),
        "--env",
        "BP_STATIC_SERVER=busybox",
    ]);
    assert_eq!(report["group"][0]["id"], "cascade/static-site");
    let layout = tmp.path().join("out");
    validate(&layout, "site");
    let config = skopeo_config(&layout, "site");
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"PORT=8080"), "{env:?}");
    let bundle = unpack(&layout, "site", tmp.path());

    let port = free_port().to_string();
    let mut server = bwrap(&bundle, &config, &[("PORT", &port)], true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let body = http_when_up(
        port.parse().unwrap(),
        b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n",
    );
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(
        body.lines().next().is_some_and(|l| l.contains(" 200 ")),
        "{body}"
    );
    assert!(
        body.contains("Served by busybox httpd from a Cascade image"),
        "{body}"
    );
}

/// A site at the app root, beside the app's `.env`, `Procfile` and git
/// metadata: the page is served, none of those are.
#[test]
fn a_site_at_the_app_root_serves_no_secret_and_no_build_file() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    for (name, text) in [
        ("index.html", "<h1>home</h1>"),
        (".env", "DATABASE_PASSWORD=hunter2"),
        ("Procfile", "worker: sleep 1"),
        (".git/config", "[remote]"),
        (".well-known/security.txt", "Contact: sec@example.com"),
    ] {
        std::fs::create_dir_all(app.join(name).parent().unwrap()).unwrap();
        std::fs::write(app.join(name), text).unwrap();
    }
    let report = build_ok(&[
        app.to_str().unwrap(),
        "--output",
        &out_ref(tmp.path(), "site"),
        "--run-image",
        busybox_run_image(),
        "--env",
        "BP_STATIC_SERVER=busybox",
    ]);
    assert_eq!(report["group"][0]["id"], "cascade/static-site", "{report}");
    let layout = tmp.path().join("out");
    let config = skopeo_config(&layout, "site");
    let bundle = unpack(&layout, "site", tmp.path());
    let port = free_port().to_string();
    let mut server = bwrap(&bundle, &config, &[("PORT", &port)], true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let get = |path: &str| {
        http_when_up(
            port.parse().unwrap(),
            format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes(),
        )
    };
    let status = |body: &str| body.lines().next().unwrap_or_default().to_owned();
    let pages: Vec<(&str, String)> = [
        "/index.html",
        "/.well-known/security.txt",
        "/.env",
        "/Procfile",
        "/.git/config",
    ]
    .into_iter()
    .map(|p| (p, get(p)))
    .collect();
    server.kill().unwrap();
    server.wait().unwrap();
    for (path, body) in &pages {
        let answered = status(body).contains(" 200 ");
        let should = matches!(*path, "/index.html" | "/.well-known/security.txt");
        assert_eq!(answered, should, "{path}: {body}");
        assert!(!body.contains("hunter2"), "{path} served the secret");
    }
}

#[test]
fn ca_certs_join_a_procfile_app_and_set_ssl_cert_file() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let report = build_ok(&[
        fixture_app("ca-certs").to_str().unwrap(),
        "--output",
        &out_ref(tmp.path(), "certs"),
        "--run-image",
        busybox_run_image(),
    ]);
    let group = group_ids(&report);
    assert_eq!(group, ["cascade/ca-certs", "cascade/procfile"]);
    let layout = tmp.path().join("out");
    validate(&layout, "certs");
    let config = skopeo_config(&layout, "certs");
    let bundle = unpack(&layout, "certs", tmp.path());
    let out = ok(&mut bwrap(&bundle, &config, &[], false));
    assert!(
        out.starts_with("-----BEGIN CERTIFICATE-----\nMIIBeTCC"),
        "{out}"
    );
    assert_eq!(out.matches("BEGIN CERTIFICATE").count(), 1);

    // inspect attributes every layer.
    let inspected: serde_json::Value = serde_json::from_str(&ok(cascade()
        .args(["inspect", "--format", "json"])
        .arg(format!("oci:{}:certs", layout.display()))))
    .unwrap();
    let sources: Vec<&str> = inspected["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["source"].as_str().unwrap())
        .collect();
    assert_eq!(
        sources,
        [
            "run-image",
            "cascade/ca-certs:ca-certificates",
            "sbom",
            "app"
        ]
    );
    assert_eq!(inspected["default_process"], "web");
    assert_eq!(inspected["digest"], report["digest"]);
}

#[test]
fn platform_certificates_come_from_the_platform_env() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pem = "-----BEGIN CERTIFICATE-----\nUExBVEZPUk0=\n-----END CERTIFICATE-----\n";
    let report = build_ok(&[
        fixture_app("procfile").to_str().unwrap(),
        "--output",
        &out_ref(tmp.path(), "p"),
        "--env",
        &format!("BP_CA_CERTIFICATES={pem}"),
    ]);
    assert_eq!(report["group"][0]["id"], "cascade/ca-certs");
    let layout = tmp.path().join("out");
    let config = skopeo_config(&layout, "p");
    let env = config["config"]["Env"].to_string();
    assert!(
        env.contains("SSL_CERT_FILE=/layers/cascade_ca-certs/ca-certificates/ca-certificates.crt"),
        "{env}"
    );
    let bundle = unpack(&layout, "p", tmp.path());
    let bundle_file =
        bundle.join("rootfs/layers/cascade_ca-certs/ca-certificates/ca-certificates.crt");
    assert_eq!(std::fs::read_to_string(bundle_file).unwrap(), pem);
}

#[test]
fn the_first_build_compiles_no_embedded_buildpack_and_a_warm_one_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let build = |app: &Path, tag: &str, extra: &[&str]| {
        let o = run(cascade()
            .env("CASCADE_CACHE_DIR", &cache)
            .arg("build")
            .arg(app)
            .args(["--output", &out_ref(tmp.path(), tag)])
            .args(extra));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    // The embedded buildpacks come compiled in the binary, even into an
    // empty cache.
    let first = build(&fixture_app("procfile"), "a", &[]);
    if cascade_lifecycle::guests::PRECOMPILED.is_empty() {
        eprintln!("this build has no prebuilt code (cross-compiled): not checked");
    } else {
        assert!(first.contains("prebuilt cascade/procfile"), "{first}");
        assert!(!first.contains("compiled "), "{first}");
    }

    // Another component is compiled once, then loaded from the cache.
    let app = tmp.path().join("deps-app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("deps.lock"), "size-mib = 1\nseed = \"x\"\n").unwrap();
    let deps = ["--buildpack", crate::guests::test_deps()];
    let cold = build(&app, "b", &deps);
    assert!(cold.contains("compiled test/deps"), "{cold}");
    let warm = build(&app, "c", &deps);
    assert!(
        !warm.contains("compiled "),
        "warm build recompiled:\n{warm}"
    );
    assert!(warm.contains("cached test/deps"), "{warm}");
}

/// A process whose program the image lacks is a warning naming it (in the
/// output and the report), and with `--strict-processes` a failed build
/// that publishes nothing; on a run image that has the programs, silence.
#[test]
fn processes_that_cannot_start_are_told_at_build_time() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let app = fixture_app("procfile");
    let app = app.to_str().unwrap();
    let cannot = |r: &serde_json::Value| -> Vec<String> {
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| w.as_str())
            .filter(|w| w.contains("cannot start"))
            .map(str::to_owned)
            .collect()
    };
    let on_busybox = build_ok(&[
        app,
        "--output",
        &out_ref(tmp.path(), "bb"),
        "--run-image",
        busybox_run_image(),
    ]);
    assert!(cannot(&on_busybox).is_empty(), "{on_busybox}");

    let on_scratch = build_ok(&[app, "--output", &out_ref(tmp.path(), "scratch")]);
    let said = cannot(&on_scratch);
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(
        said[0].contains("process web") && said[0].contains("/bin/busybox"),
        "{said:?}"
    );
    assert!(
        said[1].contains("process worker") && said[1].contains("/bin/sh"),
        "{said:?}"
    );

    let strict = tmp.path().join("strict");
    let o = build(&[
        app,
        "--output",
        &format!("oci:{}:v1", strict.display()),
        "--strict-processes",
    ]);
    assert_eq!(o.code, 62, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("process web (`/bin/busybox echo hello from procfile`)")
            && o.stderr
                .contains("cannot start: /bin/busybox in neither the run image"),
        "{}",
        o.stderr
    );
    assert!(!strict.exists(), "nothing published");

    // A shell script's first command is looked up too.
    let py = tmp.path().join("py");
    std::fs::create_dir(&py).unwrap();
    std::fs::write(
        py.join("Procfile"),
        "web: PORT=8000 exec gunicorn app:app --bind 0.0.0.0:$PORT\n",
    )
    .unwrap();
    let r = build_ok(&[
        py.to_str().unwrap(),
        "--output",
        &out_ref(tmp.path(), "py"),
        "--run-image",
        busybox_run_image(),
    ]);
    let said = cannot(&r);
    assert_eq!(said.len(), 1, "{r}");
    assert!(
        said[0].contains("cannot start: gunicorn in neither"),
        "{said:?}"
    );
    // And what would provide it is named.
    assert!(
        said[0].contains("cascade/python installs CPython"),
        "{said:?}"
    );
}
