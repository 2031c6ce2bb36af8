//! The `cascade/go` buildpack: the build image's go through the exec
//! capability, in bubblewrap; static binaries, one process per main
//! package; the web one answers over loopback when the image runs on
//! `scratch`; a rebuild with no change reuses every layer, and one edit
//! rebuilds the binaries only.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sha2::Digest as _;

use crate::support::*;

const TOOLS: &[&str] = &["bwrap", "umoci", "skopeo", "mmdebstrap"];

fn go_build(cache: &Path, app: &Path, layout: &Path, grant: bool) -> Outcome {
    let mut args = vec![
        app.display().to_string(),
        "--output".into(),
        format!("oci:{}:app", layout.display()),
        "--format".into(),
        "json".into(),
    ];
    if grant {
        args.extend(["--allow".into(), "exec:go".into()]);
    }
    args.extend(on_build_image());
    build_in(cache, &args)
}

#[test]
fn a_go_module_builds_with_exec_runs_on_scratch_and_rebuilds_from_cache() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("go-web");
    ok(Command::new("cp")
        .arg("-r")
        .arg(fixture_app("go-web"))
        .arg(&app));
    let cache = tmp.path().join("cache");
    let layout = tmp.path().join("out");

    let denied = go_build(&cache, &app, &layout, false);
    assert_eq!(denied.code, 51, "{}", denied.stderr);
    assert!(
        denied.stderr.contains("--allow exec:go"),
        "{}",
        denied.stderr
    );

    let first = go_build(&cache, &app, &layout, true);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let report: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(report["group"][0]["id"], "cascade/go");
    assert_eq!(report["default_process"], "web");
    let types: Vec<&str> = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["migrate", "web"], "{}", report["processes"]);
    let used = &report["capabilities"][0];
    assert_eq!(used["capability"], "exec:go");
    assert!(
        used["detail"].as_str().unwrap().contains("(exit 0)"),
        "{used}"
    );

    // Static: it runs on the empty run image.
    validate(&layout, "app");
    let config = skopeo_config(&layout, "app");
    let bundle = unpack(&layout, "app", tmp.path());
    let body = run_and_get(&bundle, &config);
    assert!(body.ends_with("hello from go\n"), "{body}");

    // No change: every layer reused, the same image.
    let second = go_build(&cache, &app, &layout, true);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let again: Value = serde_json::from_str(&second.stdout).unwrap();
    assert_eq!(again["digest"], report["digest"]);
    for layer in again["layers"].as_array().unwrap() {
        assert_eq!(layer["reused"], true, "{layer}");
    }

    // One edit: new binaries, a new bin layer; the image still runs.
    let main = app.join("main.go");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, text.replace("hello from go", "hello again from go")).unwrap();
    let third = go_build(&cache, &app, &layout, true);
    assert_eq!(third.code, 0, "{}", third.stderr);
    let edited: Value = serde_json::from_str(&third.stdout).unwrap();
    let bin = edited["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "cascade/go:bin")
        .unwrap();
    assert_eq!(bin["reused"], false, "{bin}");
    assert_ne!(edited["digest"], report["digest"]);
}

#[test]
fn a_go_module_without_a_main_package_fails_saying_so() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("lib");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("go.mod"), "module example.com/lib\n\ngo 1.19\n").unwrap();
    std::fs::write(
        app.join("lib.go"),
        "package lib\n\nfunc One() int { return 1 }\n",
    )
    .unwrap();
    let out = go_build(
        &tmp.path().join("cache"),
        &app,
        &tmp.path().join("out"),
        true,
    );
    assert_eq!(out.code, 51, "{}", out.stderr);
    assert!(out.stderr.contains("no main package"), "{}", out.stderr);
}

#[test]
fn a_package_main_without_go_mod_builds_and_runs() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("bare");
    std::fs::create_dir(&app).unwrap();
    std::fs::copy(fixture_app("go-web").join("main.go"), app.join("main.go")).unwrap();
    let layout = tmp.path().join("out");
    let built = go_build(&tmp.path().join("cache"), &app, &layout, true);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let report: Value = serde_json::from_str(&built.stdout).unwrap();
    assert_eq!(report["group"][0]["id"], "cascade/go");
    assert_eq!(report["default_process"], "web");
    assert!(
        report["processes"].to_string().contains("/app\""),
        "{}",
        report["processes"]
    );
    let config = skopeo_config(&layout, "app");
    let bundle = unpack(&layout, "app", tmp.path());
    let body = run_and_get(&bundle, &config);
    assert!(body.ends_with("hello from go\n"), "{body}");
}

/// A build image with no go at all (busybox and the C library): the
/// buildpack installs Go from the platform's mirror, pinned by the
/// inventory's sha256, and the platform's GOFLAGS reach it.
#[test]
fn a_go_the_build_image_lacks_comes_from_the_inventory() {
    if !have_all(TOOLS) {
        return;
    }
    let go = match crate::mirror::go() {
        Ok(go) => go,
        Err(e) => {
            lacking(&e);
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    make_run_image_with_host_files(&images, "no-go", &[], &[], &go.libs);
    let file: &'static str = Box::leak(go.file.clone().into_boxed_str());
    let mirror = serve(vec![(file, go.tarball.clone())]);
    let inventory = go.inventory(&format!("http://127.0.0.1:{}{file}", mirror.port));
    let inventory_sha = hex::encode(sha2::Sha256::digest(inventory.as_bytes()));
    let served = serve(vec![("/go.toml", inventory.into_bytes())]);
    let app = tmp.path().join("go-web");
    ok(Command::new("cp")
        .arg("-r")
        .arg(fixture_app("go-web"))
        .arg(&app));
    let layout = tmp.path().join("out");
    let build = |cache: &str| {
        build_in(
            &tmp.path().join(cache),
            &[
                app.display().to_string(),
                "--output".into(),
                format!("oci:{}:app", layout.display()),
                "--format".into(),
                "json".into(),
                "--build-image".into(),
                format!("oci:{}:no-go", images.display()),
                "--allow".into(),
                "exec:go".into(),
                "--allow".into(),
                "fetch:127.0.0.1".into(),
                "--env".into(),
                format!("BP_GO_INVENTORY=http://127.0.0.1:{}/go.toml", served.port),
                "--env".into(),
                format!("BP_GO_INVENTORY_SHA256={inventory_sha}"),
                "--env".into(),
                "GOFLAGS=-v".into(),
            ],
        )
    };
    let first = build("cache");
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stderr.contains("no go in the build image") && first.stderr.contains("installed Go"),
        "{}",
        first.stderr
    );
    // GOFLAGS=-v: go names the packages it builds.
    assert!(
        first.stderr.contains("example.com/go-web"),
        "{}",
        first.stderr
    );
    let report: Value = serde_json::from_str(&first.stdout).unwrap();
    let used = report["capabilities"].to_string();
    assert!(
        used.contains(file) && used.contains("/layers/cascade_go/go/bin/go build"),
        "{used}"
    );
    assert_eq!(mirror.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let config = skopeo_config(&layout, "app");
    let bundle = unpack(&layout, "app", tmp.path());
    assert!(
        !bundle.join("rootfs/layers/cascade_go/go").exists(),
        "the toolchain is build-only"
    );
    let body = run_and_get(&bundle, &config);
    assert!(body.ends_with("hello from go\n"), "{body}");

    // Again: the toolchain layer is kept, nothing downloaded.
    let again = build("cache");
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("unchanged: reusing it"),
        "{}",
        again.stderr
    );
    assert_eq!(mirror.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let again: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(again["digest"], report["digest"]);
}
