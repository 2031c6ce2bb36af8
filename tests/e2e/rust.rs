//! The `cascade/rust` buildpack: the build image's cargo through the exec
//! capability, in bubblewrap; a static binary that answers over loopback
//! when the image runs; a rebuild with no change that compiles nothing and
//! reuses every layer.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::*;

const TOOLS: &[&str] = &["bwrap", "umoci", "skopeo", "mmdebstrap"];

/// The grants a platform gives the rust buildpack: cargo, from the build
/// image (Debian's cargo and rustc).
fn rust_grants() -> Vec<String> {
    let mut args = vec!["--allow".into(), "exec:cargo".into()];
    args.extend(on_build_image());
    args
}

fn copy_fixture(to: &Path) -> PathBuf {
    let app = to.join("rust-web");
    ok(Command::new("cp")
        .arg("-r")
        .arg(fixture_app("rust-web"))
        .arg(&app));
    app
}

fn rust_build(cache: &Path, app: &Path, layout: &Path, extra: &[String]) -> Outcome {
    let mut args = vec![
        app.display().to_string(),
        "--output".into(),
        format!("oci:{}:app", layout.display()),
        "--run-image".into(),
        busybox_run_image().into(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(extra.iter().cloned());
    build_in(cache, &args)
}

#[test]
fn a_cargo_project_builds_with_exec_runs_and_rebuilds_from_cache() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let app = copy_fixture(tmp.path());
    let cache = tmp.path().join("cache");
    let layout = tmp.path().join("out");

    // Without the grant: refused, saying how to grant it.
    let denied = rust_build(&cache, &app, &layout, &[]);
    assert_eq!(denied.code, 51, "{}", denied.stderr);
    assert!(
        denied.stderr.contains("--allow exec:cargo"),
        "{}",
        denied.stderr
    );

    let first = rust_build(&cache, &app, &layout, &rust_grants());
    assert_eq!(first.code, 0, "{}", first.stderr);
    let report: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(report["group"][0]["id"], "cascade/rust");
    assert_eq!(report["default_process"], "web");
    let used = &report["capabilities"][0];
    assert_eq!(used["capability"], "exec:cargo");
    assert!(
        used["detail"].as_str().unwrap().contains("(exit 0)"),
        "{used}"
    );
    // cargo's own output reached the build log under the buildpack's id.
    assert!(
        first.stderr.contains("[cascade/rust] stderr:"),
        "{}",
        first.stderr
    );

    validate(&layout, "app");
    let config = skopeo_config(&layout, "app");
    // The image says what reached outside the sandbox to make it.
    let recorded = config["config"]["Labels"]["dev.cascade.capabilities"]
        .as_str()
        .unwrap();
    assert!(
        recorded.contains("exec:cargo")
            && recorded.contains("cargo build --release --locked (exit 0)"),
        "{recorded}"
    );
    let bundle = unpack(&layout, "app", tmp.path());
    let body = run_and_get(&bundle, &config);
    assert!(body.ends_with("hello from rust\n"), "{body}");

    // No change: cargo compiles nothing, every layer is reused, same image.
    let second = rust_build(&cache, &app, &layout, &rust_grants());
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(!second.stderr.contains("Compiling"), "{}", second.stderr);
    let again: Value = serde_json::from_str(&second.stdout).unwrap();
    assert_eq!(again["digest"], report["digest"]);
    let reused: Vec<bool> = again["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["reused"].as_bool().unwrap())
        .collect();
    assert!(reused.iter().all(|r| *r), "{}", again["layers"]);
}
