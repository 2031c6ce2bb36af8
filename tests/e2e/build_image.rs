//! The build image: exec'd tools come from a pinned OCI image the platform
//! owns, never from the build host unless it says `--build-image host`; the
//! image records which build image it was built on, and `audit
//! --build-image` lists the images built on an older one.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::*;

fn copy_app(name: &str, to: &Path) -> std::path::PathBuf {
    let app = to.join(name);
    ok(Command::new("cp")
        .arg("-r")
        .arg(fixture_app(name))
        .arg(&app));
    app
}

/// The manifest digest a layout's tag names, as skopeo sees it.
fn layout_digest(reference: &str) -> String {
    let out = ok(Command::new("skopeo").args([
        "--insecure-policy",
        "inspect",
        "--format",
        "{{.Digest}}",
        reference,
    ]));
    out.trim().to_owned()
}

#[test]
fn the_go_app_builds_in_the_build_image_whatever_the_host_has_on_its_path() {
    if !have_all(&["bwrap", "skopeo", "mmdebstrap"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A poisoned `go` first on the host's PATH: it leaves a canary and fails.
    let poison = tmp.path().join("poison");
    std::fs::create_dir(&poison).unwrap();
    let canary = tmp.path().join("canary");
    std::fs::write(
        poison.join("go"),
        format!("#!/bin/sh\necho ran > {}\nexit 1\n", canary.display()),
    )
    .unwrap();
    ok(Command::new("chmod").arg("+x").arg(poison.join("go")));
    let path = format!(
        "{}:{}",
        poison.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let build = |dir: &Path, path: &str| -> Value {
        std::fs::create_dir_all(dir).unwrap();
        let app = copy_app("go-web", dir);
        let out = run(cascade()
            .env("CASCADE_CACHE_DIR", dir.join("cache"))
            .env("PATH", path)
            .arg("build")
            .arg(&app)
            .args([
                "--output",
                &format!("oci:{}:app", dir.join("out").display()),
            ])
            .args(["--allow", "exec:go", "--format", "json"])
            .args(on_build_image()));
        let o: Outcome = out.into();
        assert_eq!(o.code, 0, "{}", o.stderr);
        serde_json::from_str(&o.stdout).unwrap()
    };
    let poisoned = build(&tmp.path().join("a"), &path);
    assert!(!canary.exists(), "the host's go ran");
    let clean = build(
        &tmp.path().join("elsewhere/b"),
        &std::env::var("PATH").unwrap(),
    );
    assert_eq!(
        poisoned["digest"], clean["digest"],
        "the same app on the same build image gave another image"
    );
    assert_schema("build", &poisoned);

    // The build image is recorded in the report, the label and inspect.
    let digest = layout_digest(build_image());
    assert_eq!(poisoned["build_image"]["digest"], digest.as_str());
    assert_eq!(poisoned["build_image"]["hermetic"], true);
    let layout = tmp.path().join("a/out");
    let config = skopeo_config(&layout, "app");
    let label: Value = serde_json::from_str(
        config["config"]["Labels"]["dev.cascade.build-image"]
            .as_str()
            .expect("a build-image label"),
    )
    .unwrap();
    // A layout by its directory's name: no path of this machine's.
    assert_eq!(label["reference"], "oci:build-image:bookworm");
    assert_eq!(label["digest"], digest.as_str());
    let inspected = cascade_run(
        "inspect",
        &[&format!("oci:{}:app", layout.display()), "--format", "json"],
    );
    assert_eq!(inspected.code, 0, "{}", inspected.stderr);
    let inspected: Value = serde_json::from_str(&inspected.stdout).unwrap();
    assert_eq!(inspected["build_image"]["digest"], digest.as_str());
    assert_schema("inspect", &inspected);
    let text = cascade_run("inspect", &[&format!("oci:{}:app", layout.display())]);
    assert!(
        text.stdout
            .contains("Build image: oci:build-image:bookworm"),
        "{}",
        text.stdout
    );
}

#[test]
fn a_build_that_execs_with_no_build_image_stops_before_any_buildpack_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let app = copy_app("go-web", tmp.path());
    let o = build_in(
        &tmp.path().join("cache"),
        &[
            app.to_str().unwrap(),
            "--output",
            &format!("oci:{}:app", tmp.path().join("out").display()),
            "--allow",
            "exec:go",
        ],
    );
    assert_eq!(o.code, 10, "{}", o.stderr);
    for said in [
        "--allow exec:go",
        "--build-image REF",
        "[build] image",
        "--build-image host",
    ] {
        assert!(o.stderr.contains(said), "{said:?} not in: {}", o.stderr);
    }
    assert!(
        !o.stderr.contains("DETECT"),
        "a buildpack ran: {}",
        o.stderr
    );
    assert!(!tmp.path().join("out").exists(), "an output was left");

    // --exec-path binds host dirs: it goes only with the host.
    let o = build_in(
        &tmp.path().join("cache"),
        &[
            app.to_str().unwrap(),
            "--output",
            &format!("oci:{}:app", tmp.path().join("out").display()),
            "--allow",
            "exec:go",
            "--build-image",
            "oci:/nowhere:x",
            "--exec-path",
            "/opt",
        ],
    );
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(o.stderr.contains("--exec-path"), "{}", o.stderr);

    // The host, when asked for, is a warning; a build whose buildpacks ran
    // no tool records no build image (the audit test has one that does).
    let o = build_in(
        &tmp.path().join("cache"),
        &[
            fixture_app("procfile").to_str().unwrap(),
            "--output",
            &format!("oci:{}:host", tmp.path().join("out").display()),
            "--allow",
            "exec:go",
            "--build-image",
            "host",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stderr.contains("warning: --build-image host"),
        "{}",
        o.stderr
    );
    let report: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(report["build_image"], Value::Null, "no tool ran");
}

/// `build` of the procfile app onto `out:tag` with `extra` arguments; its
/// manifest digest.
fn procfile_build(tmp: &Path, tag: &str, extra: &[&str]) -> String {
    let mut args = vec![
        fixture_app("procfile").display().to_string(),
        "--output".into(),
        format!("oci:{}:{tag}", tmp.join("out").display()),
        "--run-image".into(),
        busybox_run_image().into(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let o = build_in(&tmp.join("cache"), &args);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let report: Value = serde_json::from_str(&o.stdout).unwrap();
    report["digest"].as_str().unwrap().to_owned()
}

/// `build` of an app whose buildpack runs `busybox true` in the build
/// image (the test buildpack's `exec-ok`), onto `out:tag`, in `cache`; the
/// outcome.
fn exec_build(tmp: &Path, cache: &str, tag: &str, build_image: &str) -> Outcome {
    let app = tmp.join("exec-app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("hostile.txt"), "build:exec-ok\n").unwrap();
    let o = build_in(
        &tmp.join(cache),
        &[
            app.to_str().unwrap(),
            "--output",
            &format!("oci:{}:{tag}", tmp.join("out").display()),
            "--buildpack",
            crate::guests::test_hostile(),
            "--allow",
            "exec:busybox",
            "--build-image",
            build_image,
            "--format",
            "json",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    o
}

#[test]
fn audit_lists_images_built_on_an_older_build_image_as_stale() {
    if !have_all(&["umoci", "busybox", "bwrap"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A small build image with busybox: tag v1, then "patched" in place;
    // another image, of another name, for `other`.
    let images = tmp.path().join("images");
    make_run_image(&images, "v1", &[], &[]);
    let elsewhere = tmp.path().join("elsewhere");
    make_run_image(&elsewhere, "v1", &[], &["--config.label", "other=yes"]);
    let build_ref = format!("oci:{}:v1", images.display());
    // `new` is built twice into one cache: first on v1, then on the
    // patched v1; `old` stays on v1.
    exec_build(tmp.path(), "cache", "new", &build_ref);
    let first = exec_build(tmp.path(), "cache-old", "old", &build_ref);
    let old_digest = layout_digest(&build_ref);
    let reported: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(
        reported["build_image"]["reference"], "oci:images:v1",
        "a layout is recorded by its name, not this machine's path"
    );
    ok(Command::new("umoci").args([
        "config",
        "--image",
        &format!("{}:v1", images.display()),
        "--config.label",
        "patched=yes",
    ]));
    assert_ne!(
        layout_digest(&build_ref),
        old_digest,
        "the patch moved no tag"
    );
    // The same cache: what the old build image made is not kept.
    let again = exec_build(tmp.path(), "cache", "new", &build_ref);
    assert!(
        again
            .stderr
            .contains("the build image changed since the last build"),
        "{}",
        again.stderr
    );
    exec_build(tmp.path(), "cache-host", "host", "host");
    let other_ref = format!("oci:{}:v1", elsewhere.display());
    exec_build(tmp.path(), "cache-other", "other", &other_ref);
    // A build on the build image that runs no tool owes it nothing.
    procfile_build(tmp.path(), "none", &["--build-image", &build_ref]);

    let out = tmp.path().join("out");
    let image = |tag: &str| format!("oci:{}:{tag}", out.display());
    let names = ["old", "new", "host", "other", "none"].map(image);
    let mut args = vec!["--build-image", &build_ref, "--format", "json"];
    args.extend(names.iter().map(String::as_str));
    let o = cascade_run("audit", &args);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let report: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_schema("audit-build", &report);
    let entry = |tag: &str| {
        let name = image(tag);
        report["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["image"] == name.as_str())
            .unwrap()
            .clone()
    };
    let status = |tag: &str| entry(tag)["status"].as_str().unwrap().to_owned();
    assert_eq!(status("old"), "stale");
    assert_eq!(status("new"), "current");
    assert_eq!(status("host"), "host");
    let host = entry("host");
    assert_eq!(
        (
            &host["build_image"]["reference"],
            &host["build_image"]["hermetic"]
        ),
        (&Value::from("host"), &Value::from(false))
    );
    assert_eq!(status("other"), "other");
    assert_eq!(status("none"), "none");
    assert_eq!(
        (
            report["current"].as_u64(),
            report["stale"].as_u64(),
            report["other"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(entry("old")["build_image"]["digest"], old_digest.as_str());

    args.push("--fail-on-stale");
    let o = cascade_run("audit", &args);
    assert_eq!(o.code, 72, "{}", o.stderr);
    let text = cascade_run("audit", &["--build-image", &build_ref, &image("old")]);
    assert!(
        text.stdout.contains("stale") && text.stdout.contains(&old_digest),
        "{}",
        text.stdout
    );
}

#[test]
fn a_builders_build_image_is_pinned_by_its_lock() {
    if !have_all(&["umoci", "busybox"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    make_run_image(&images, "v1", &[], &[]);
    let builder = tmp.path().join("builder.toml");
    std::fs::write(
        &builder,
        "[[buildpacks]]\nuri = \"builtin:cascade/procfile\"\n\n[[order]]\ngroup = [{ id = \"cascade/procfile\" }]\n\n[build]\nimage = \"oci:images:v1\"\n",
    )
    .unwrap();
    let b = builder.display().to_string();
    let lock = tmp.path().join("builder.lock");

    let o = build_in(
        &tmp.path().join("cache"),
        &[
            fixture_app("procfile").to_str().unwrap(),
            "--output",
            &format!("oci:{}:a", tmp.path().join("out").display()),
            "--builder",
            &b,
            "--locked",
        ],
    );
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(
        o.stderr.contains("--locked") && !lock.exists(),
        "{}",
        o.stderr
    );

    let first = procfile_build(tmp.path(), "a", &["--builder", &b]);
    let text = std::fs::read_to_string(&lock).unwrap();
    let pinned = layout_digest(&format!("oci:{}:v1", images.display()));
    assert!(
        text.contains("[build-image]") && text.contains(&pinned),
        "{text}"
    );
    assert_eq!(
        procfile_build(tmp.path(), "b", &["--builder", &b, "--locked"]),
        first
    );
    let info = cascade_run("builder", &["inspect", &b, "--format", "json"]);
    assert_eq!(info.code, 0, "{}", info.stderr);
    let info: Value = serde_json::from_str(&info.stdout).unwrap();
    assert_schema("builder-inspect", &info);
    assert_eq!(info["build_image"]["digest"], pinned.as_str());

    // The tag moves: the lock holds, and says how to move on.
    ok(Command::new("umoci").args([
        "config",
        "--image",
        &format!("{}:v1", images.display()),
        "--config.label",
        "patched=yes",
    ]));
    let o = build_in(
        &tmp.path().join("cache"),
        &[
            fixture_app("procfile").to_str().unwrap(),
            "--output",
            &format!("oci:{}:c", tmp.path().join("out").display()),
            "--builder",
            &b,
        ],
    );
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(
        o.stderr.contains("builder.lock pins") && o.stderr.contains(&pinned),
        "{}",
        o.stderr
    );
}

#[test]
fn a_build_image_for_another_machine_is_refused_before_any_buildpack_runs() {
    if !have_all(&["umoci", "busybox"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    make_run_image(&images, "v1", &[], &["--architecture", "s390x"]);
    let app = tmp.path().join("exec-app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("hostile.txt"), "build:exec-ok\n").unwrap();
    let o = build_in(
        &tmp.path().join("cache"),
        &[
            app.to_str().unwrap(),
            "--output",
            &format!("oci:{}:a", tmp.path().join("out").display()),
            "--buildpack",
            crate::guests::test_hostile(),
            "--allow",
            "exec:busybox",
            "--build-image",
            &format!("oci:{}:v1", images.display()),
        ],
    );
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(
        o.stderr.contains("\"s390x\"") && o.stderr.contains("this machine"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("building with"), "{}", o.stderr);
}
