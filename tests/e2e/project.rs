//! project.toml: include/exclude shape the app layer, build env reaches the
//! buildpacks, a group picks the buildpacks, and mistakes name the field.

use std::path::Path;

use crate::guests;

use crate::support::*;

fn app_with(dir: &Path, project: &str) -> std::path::PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(app.join("logs")).unwrap();
    std::fs::create_dir_all(app.join("secrets")).unwrap();
    std::fs::write(app.join("Procfile"), "web: /bin/busybox echo hi\n").unwrap();
    std::fs::write(app.join("logs/build.log"), "noise\n").unwrap();
    std::fs::write(app.join("debug.log"), "noise\n").unwrap();
    std::fs::write(app.join("secrets/key"), "hunter2\n").unwrap();
    std::fs::write(app.join("main.sh"), "echo main\n").unwrap();
    std::fs::write(app.join("project.toml"), project).unwrap();
    app
}

fn app_files(report: &serde_json::Value, layout: &Path, tag: &str, tmp: &Path) -> Vec<String> {
    assert!(report["digest"].is_string());
    let bundle = unpack(layout, tag, tmp);
    let root = bundle.join("rootfs/workspace");
    let mut files: Vec<String> = walkdir::WalkDir::new(&root)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            e.unwrap()
                .path()
                .strip_prefix(&root)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    files.sort();
    files
}

#[test]
fn exclude_drops_files_from_the_build_and_env_reaches_buildpacks() {
    if !have("umoci") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pem = "-----BEGIN CERTIFICATE-----\\nUFJPSkVDVA==\\n-----END CERTIFICATE-----\\n";
    let app = app_with(
        tmp.path(),
        &format!(
            "[_]\nschema-version = \"0.2\"\n[io.buildpacks]\nexclude = [\"*.log\", \"/secrets\"]\n[[io.buildpacks.build.env]]\nname = \"BP_CA_CERTIFICATES\"\nvalue = \"{pem}\"\n"
        ),
    );
    let layout = tmp.path().join("out");
    let report = build_ok(&[
        app.to_str().unwrap(),
        "--output",
        &format!("oci:{}:p", layout.display()),
    ]);
    assert_eq!(
        report["group"][0]["id"], "cascade/ca-certs",
        "project build env reached detect"
    );
    assert_eq!(
        app_files(&report, &layout, "p", tmp.path()),
        ["Procfile", "logs", "main.sh", "project.toml"]
    );
}

#[test]
fn include_keeps_only_what_it_names() {
    if !have("umoci") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let app = app_with(
        tmp.path(),
        "[io.buildpacks]\ninclude = [\"Procfile\", \"main.sh\"]\n",
    );
    let layout = tmp.path().join("out");
    let report = build_ok(&[
        app.to_str().unwrap(),
        "--output",
        &format!("oci:{}:p", layout.display()),
    ]);
    assert_eq!(
        app_files(&report, &layout, "p", tmp.path()),
        ["Procfile", "main.sh"]
    );
}

#[test]
fn a_project_group_picks_the_buildpacks() {
    let tmp = tempfile::tempdir().unwrap();
    let app = app_with(
        tmp.path(),
        &format!(
            "[[io.buildpacks.group]]\nuri = \"{}\"\n[[io.buildpacks.group]]\nid = \"cascade/procfile\"\n",
            guests::test_hostile()
        ),
    );
    std::fs::write(app.join("hostile.txt"), "build:ok\n").unwrap();
    let report = build_ok(&[
        app.to_str().unwrap(),
        "--output",
        &format!("oci:{}:p", tmp.path().join("out").display()),
    ]);
    let ids = group_ids(&report);
    assert_eq!(ids, ["test/hostile", "cascade/procfile"]);
}

/// The stderr of a build of an app with `project`, which must be refused
/// as bad input.
fn refused(project: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let app = app_with(tmp.path(), project);
    let o = build(&[
        app.to_str().unwrap(),
        "--output",
        &format!("oci:{}:p", tmp.path().join("out").display()),
    ]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    o.stderr
}

#[test]
fn a_malformed_project_toml_names_file_and_field() {
    let err = refused("[io.buildpacks]\ninclude = [\"a\"]\nexclude = [\"b\"]\n");
    assert!(
        err.contains("project.toml") && err.contains("io.buildpacks"),
        "{err}"
    );
}

#[test]
fn an_app_cannot_set_the_builds_trust_roots() {
    let err = refused(
        "[[io.buildpacks.build.env]]\nname = \"BP_BUILD_CA_CERTIFICATES\"\nvalue = \"-----BEGIN CERTIFICATE-----\"\n",
    );
    assert!(
        err.contains("project.toml")
            && err.contains("BP_BUILD_CA_CERTIFICATES")
            && err.contains("--ca-certificates"),
        "{err}"
    );
}

#[test]
fn fields_written_for_pack_and_unused_are_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let app = app_with(
        tmp.path(),
        "[_]\nschema-version = \"0.2\"\n[io.buildpacks]\nbuilder = \"paketobuildpacks/builder-jammy-base\"\n[[io.buildpacks.pre.group]]\nid = \"paketo-buildpacks/ca-certificates\"\n",
    );
    let o = build(&[
        app.to_str().unwrap(),
        "--output",
        &format!("oci:{}:p", tmp.path().join("out").display()),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    for field in ["io.buildpacks.builder", "io.buildpacks.pre"] {
        assert!(
            o.stderr
                .contains(&format!("{field} is accepted but not used by Cascade")),
            "no warning about {field}: {}",
            o.stderr
        );
    }
}
