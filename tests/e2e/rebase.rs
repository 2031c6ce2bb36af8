//! Rebase on image layouts: app layers untouched, base layers swapped,
//! labels updated, and the result still runs; the refusals and --force.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::*;

const TOOLS: &[&str] = &["umoci", "skopeo", "bwrap"];

fn raw(layout: &Path, tag: &str) -> Value {
    let out = ok(Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--raw"])
        .arg(format!("oci:{}:{tag}", layout.display())));
    serde_json::from_str(&out).unwrap()
}

fn lifecycle(config: &Value) -> Value {
    serde_json::from_str(
        config["config"]["Labels"]["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

fn rebase(args: &[&str]) -> Outcome {
    cascade_run("rebase", args)
}

/// A run-image repository with `v1`, and an app built on it.
struct Fleet {
    tmp: tempfile::TempDir,
    run: std::path::PathBuf,
    out: std::path::PathBuf,
}

fn fleet(app: &str) -> Fleet {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    make_run_image(
        &run,
        "v1",
        &[("/etc/os-release", "ID=busybox\nVERSION_ID=1\n")],
        &[],
    );
    let out = tmp.path().join("out");
    build_ok(&[
        fixture_app(app).to_str().unwrap(),
        "--output",
        &format!("oci:{}:app", out.display()),
        "--run-image",
        &format!("oci:{}:v1", run.display()),
    ]);
    Fleet { tmp, run, out }
}

#[test]
fn a_new_tag_of_the_run_image_is_taken_without_force_and_runs() {
    if !have_all(TOOLS) {
        return;
    }
    let f = fleet("ca-certs");
    make_run_image(
        &f.run,
        "v2",
        &[("/etc/os-release", "ID=busybox\nVERSION_ID=2-patched\n")],
        &[
            "--config.env",
            "PATCHED=yes",
            "--config.label",
            "io.buildpacks.base.distro.version=2",
        ],
    );
    let before = raw(&f.out, "app");
    let old_config = skopeo_config(&f.out, "app");
    let app = format!("oci:{}:app", f.out.display());
    let o = rebase(&[
        &app,
        "--run-image",
        &format!("oci:{}:v2", f.run.display()),
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let report: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(report["changed"], true);

    let after = raw(&f.out, "app");
    let run_v2 = raw(&f.run, "v2");
    let (old_layers, new_layers, base) = (
        layer_digests(&before),
        layer_digests(&after),
        layer_digests(&run_v2),
    );
    assert_eq!(
        new_layers[..base.len()],
        base[..],
        "base layers are the new run image's"
    );
    // Every app layer but the SBOM's (which names the new base now).
    let sbom = sbom_layer_from_top(&old_config);
    assert_eq!(sbom, sbom_layer_from_top(&skopeo_config(&f.out, "app")));
    let kept = new_layers.len() - base.len();
    assert_eq!(
        without(&new_layers[base.len()..], sbom),
        without(&old_layers[old_layers.len() - kept..], sbom),
        "app layers unchanged"
    );
    assert_eq!(report["app_layers"], new_layers.len() - base.len());

    let config = skopeo_config(&f.out, "app");
    let run_config = skopeo_config(&f.run, "v2");
    let label = lifecycle(&config);
    assert_eq!(
        label["runImage"]["topLayer"],
        run_config["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone()
    );
    assert_eq!(
        label["runImage"]["reference"],
        report["new_run_image"]["digest"]
    );
    assert_eq!(
        config["config"]["Labels"]["io.buildpacks.base.distro.version"],
        "2"
    );
    assert_eq!(
        config["config"]["Entrypoint"],
        old_config["config"]["Entrypoint"]
    );
    // The launch env is replayed on the new base's Env.
    let env = config["config"]["Env"].to_string();
    assert!(
        env.contains("PATCHED=yes") && env.contains("SSL_CERT_FILE="),
        "{env}"
    );

    let bundle = unpack(&f.out, "app", f.tmp.path());
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/etc/os-release")).unwrap(),
        "ID=busybox\nVERSION_ID=2-patched\n"
    );
    let out = ok(&mut bwrap(&bundle, &config, &[], false));
    assert!(out.starts_with("-----BEGIN CERTIFICATE-----"), "{out}");
    if have("oci-image-tool") {
        validate(&f.out, "app");
    }

    // Again: already current, nothing written.
    let o = rebase(&[
        &app,
        "--run-image",
        &format!("oci:{}:v2", f.run.display()),
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let again: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(again["changed"], false);
    assert_eq!(again["new_digest"], report["new_digest"]);
}

#[test]
fn a_different_arch_is_refused_unless_forced() {
    if !have_all(TOOLS) {
        return;
    }
    let f = fleet("procfile");
    make_run_image(&f.run, "arm", &[], &["--architecture", "arm64"]);
    let app = format!("oci:{}:app", f.out.display());
    let before = index_bytes(&f.out);
    let o = rebase(&[&app, "--run-image", &format!("oci:{}:arm", f.run.display())]);
    assert_eq!(o.code, 70, "{}", o.stderr);
    assert!(
        o.stderr.contains("linux/amd64") && o.stderr.contains("linux/arm64"),
        "{}",
        o.stderr
    );
    assert_eq!(
        index_bytes(&f.out),
        before,
        "a refused rebase wrote the layout"
    );
    let o = rebase(&[
        &app,
        "--run-image",
        &format!("oci:{}:arm", f.run.display()),
        "--force",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(skopeo_config(&f.out, "app")["architecture"], "arm64");
}

#[test]
fn another_repository_needs_force() {
    if !have_all(TOOLS) {
        return;
    }
    let f = fleet("procfile");
    let other = f.tmp.path().join("other-run");
    make_run_image(&other, "v1", &[], &[]);
    let app = format!("oci:{}:app", f.out.display());
    let o = rebase(&[&app, "--run-image", &format!("oci:{}:v1", other.display())]);
    assert_eq!(o.code, 70, "{}", o.stderr);
    assert!(
        o.stderr.contains("different repository") && o.stderr.contains("--force"),
        "{}",
        o.stderr
    );
    let o = rebase(&[
        &app,
        "--run-image",
        &format!("oci:{}:v1", other.display()),
        "--force",
        "--output",
        &format!("oci:{}/copy:x", f.tmp.path().display()),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    // The rebased copy lives in its own layout, with every blob it needs.
    let bundle = unpack(&f.tmp.path().join("copy"), "x", f.tmp.path());
    assert!(bundle.join("rootfs/workspace/Procfile").is_file());
}

#[test]
fn an_image_labelled_not_rebasable_is_refused() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    make_run_image(
        &run,
        "v1",
        &[],
        &["--config.label", "io.buildpacks.rebasable=false"],
    );
    make_run_image(&run, "v2", &[], &[]);
    let out = format!("oci:{}:app", tmp.path().join("out").display());
    build_ok(&[
        fixture_app("procfile").to_str().unwrap(),
        "--output",
        &out,
        "--run-image",
        &format!("oci:{}:v1", run.display()),
    ]);
    let o = rebase(&[&out, "--run-image", &format!("oci:{}:v2", run.display())]);
    assert_eq!(o.code, 70, "{}", o.stderr);
    assert!(o.stderr.contains("rebasable=false"), "{}", o.stderr);
}

#[test]
fn an_image_not_built_with_buildpacks_is_refused() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    make_run_image(&run, "v1", &[], &[]);
    make_run_image(&run, "v2", &[], &[]);
    let o = rebase(&[
        &format!("oci:{}:v1", run.display()),
        "--run-image",
        &format!("oci:{}:v2", run.display()),
    ]);
    assert_eq!(o.code, 70, "{}", o.stderr);
    assert!(
        o.stderr.contains("not built by Cascade or a CNB lifecycle"),
        "{}",
        o.stderr
    );
}

/// A lifecycle label that is JSON but not the shape rebase rewrites (`[]`,
/// `"runImage": "x"`) is an error naming the label, never a panic, and in a
/// fleet it fails that image only.
#[test]
fn a_malformed_lifecycle_label_is_an_error_not_a_panic() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    make_run_image(&run, "v2", &[], &[]);
    let mut images = Vec::new();
    for (tag, label) in [("list", "[]"), ("string", r#"{"runImage":"x"}"#)] {
        make_run_image(
            &run,
            tag,
            &[],
            &[&format!(
                "--config.label=io.buildpacks.lifecycle.metadata={label}"
            )],
        );
        let image = format!("oci:{}:{tag}", run.display());
        let o = rebase(&[&image, "--run-image", &format!("oci:{}:v2", run.display())]);
        assert_eq!(o.code, 71, "{tag}: {}", o.stderr);
        assert!(o.stderr.contains("invalid lifecycle label"), "{}", o.stderr);
        assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
        images.push(image);
    }
    let mut args = vec!["--fleet".to_owned()];
    args.extend(images);
    args.extend(["--run-image".into(), format!("oci:{}:v2", run.display())]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = rebase(&args);
    assert_eq!(o.code, 71, "{}", o.stderr);
    assert!(o.stdout.contains("2 failed"), "{}", o.stdout);
}
