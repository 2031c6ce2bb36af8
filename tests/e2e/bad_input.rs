//! Bad input gets a clear error, the right exit code, and loses nothing.

use std::path::Path;

use crate::guests;

use crate::support::*;

fn out(dir: &Path) -> String {
    format!("oci:{}:t", dir.join("out").display())
}

#[test]
fn a_missing_app_dir_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-app");
    let o = build(&[missing.to_str().unwrap(), "--output", &out(tmp.path())]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(o.stderr.contains("no-such-app"), "{}", o.stderr);
    assert!(
        !tmp.path().join("out").exists(),
        "nothing is written for bad input"
    );
}

#[test]
fn a_malformed_builder_names_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let builder = tmp.path().join("builder.toml");
    std::fs::write(&builder, "[[buildpacks]]\nuri = \"x.wasm\"\n[[order]]\n[[order.group]]\nid = \"cascade/procfile\"\nversoin = \"1\"\n").unwrap();
    let o = build(&[
        fixture_app("procfile").to_str().unwrap(),
        "--output",
        &out(tmp.path()),
        "--builder",
        builder.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(
        o.stderr.contains("builder.toml") && o.stderr.contains("versoin"),
        "{}",
        o.stderr
    );

    std::fs::write(&builder, "[[buildpacks]]\nid = \"a/b\"\nuri = \"x.wasm\"\n[[order]]\n[[order.group]]\nid = \"c/d\"\n").unwrap();
    let o = build(&[
        fixture_app("procfile").to_str().unwrap(),
        "--output",
        &out(tmp.path()),
        "--builder",
        builder.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(o.stderr.contains("order[0].group[0].id"), "{}", o.stderr);
}

#[test]
fn a_builder_with_real_buildpacks_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let builder = tmp.path().join("builder.toml");
    std::fs::write(
        &builder,
        format!(
            "[[buildpacks]]\nid = \"cascade/procfile\"\nuri = \"{}\"\n[[order]]\n[[order.group]]\nid = \"cascade/procfile\"\nversion = \"0.1.0\"\n",
            guests::procfile()
        ),
    )
    .unwrap();
    let report = build_ok(&[
        fixture_app("procfile").to_str().unwrap(),
        "--output",
        &out(tmp.path()),
        "--builder",
        builder.to_str().unwrap(),
    ]);
    assert_eq!(report["group"][0]["id"], "cascade/procfile");
}

/// A builder.toml combines built-in buildpacks (`builtin:ID`) and names
/// its run image relative to itself; `builder inspect` lists both, and a
/// built-in that does not exist is named with the ones that do.
#[test]
fn a_builder_combines_builtin_buildpacks_and_resolves_paths_against_itself() {
    if !have_all(&["umoci", "skopeo"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("platform");
    std::fs::create_dir(&dir).unwrap();
    make_run_image(
        &dir.join("run"),
        "base",
        &[("/etc/os-release", "ID=test\n")],
        &[],
    );
    let builder = dir.join("builder.toml");
    let text = |second: &str| {
        format!(
            "[[buildpacks]]\nuri = \"builtin:cascade/procfile\"\n[[buildpacks]]\nuri = \"{second}\"\n\
             [[order]]\n[[order.group]]\nid = \"cascade/ca-certs\"\noptional = true\n\
             [[order.group]]\nid = \"cascade/procfile\"\n\
             [run]\nimages = [{{ image = \"oci:./run:base\" }}]\n"
        )
    };
    std::fs::write(&builder, text("builtin:cascade/ca-certs")).unwrap();
    // Built from elsewhere: the run image is found beside the builder.
    let report: serde_json::Value = serde_json::from_str(&ok(cascade()
        .current_dir(tmp.path())
        .args(["build", fixture_app("procfile").to_str().unwrap()])
        .args(["--output", &out(tmp.path()), "--format", "json"])
        .arg("--builder")
        .arg(&builder)))
    .unwrap();
    assert_eq!(report["group"][0]["id"], "cascade/procfile", "{report}");
    let resolved = format!("oci:{}:base", dir.join("run").display());
    assert_eq!(report["run_image"]["reference"], resolved, "{report}");

    let info: serde_json::Value = serde_json::from_str(&ok(cascade()
        .args(["builder", "inspect", "--format", "json"])
        .arg(&builder)))
    .unwrap();
    let sources: Vec<&str> = info["buildpacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["source"].as_str().unwrap())
        .collect();
    assert_eq!(
        sources,
        ["builtin:cascade/procfile", "builtin:cascade/ca-certs"]
    );
    assert!(
        info["buildpacks"][0]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(info["order"][0][0]["optional"], true);
    assert_eq!(info["run_image"], resolved);
    let text_out = ok(cascade().args(["builder", "inspect"]).arg(&builder));
    assert!(
        text_out.contains("ID") && text_out.contains("DIGEST"),
        "{text_out}"
    );

    std::fs::write(&builder, text("builtin:cascade/nope")).unwrap();
    let o = cascade_run("builder", &["inspect", builder.to_str().unwrap()]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(
        o.stderr.contains("buildpacks[1].uri") && o.stderr.contains("builtin:cascade/go"),
        "{}",
        o.stderr
    );
    let help = ok(cascade().args(["build", "--help"]));
    for id in ["cascade/node", "cascade/go", "cascade/procfile"] {
        assert!(help.contains(id), "build --help lists {id}: {help}");
    }
}

#[test]
fn a_wasm_that_is_not_a_component_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let core = tmp.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let o = build(&[
        fixture_app("procfile").to_str().unwrap(),
        "--output",
        &out(tmp.path()),
        "--buildpack",
        core.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(
        o.stderr.contains("core.wasm") && o.stderr.contains("not a WebAssembly component"),
        "{}",
        o.stderr
    );

    let junk = tmp.path().join("junk.wasm");
    std::fs::write(&junk, b"#!/bin/sh\necho not wasm\n").unwrap();
    let o = build(&[
        fixture_app("procfile").to_str().unwrap(),
        "--output",
        &out(tmp.path()),
        "--buildpack",
        junk.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(o.stderr.contains("junk.wasm"), "{}", o.stderr);
}

#[test]
fn a_component_without_a_manifest_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.wasm");
    // The smallest valid component: preamble only, no manifest section.
    std::fs::write(&empty, b"\0asm\x0d\0\x01\0").unwrap();
    let o = build(&[
        fixture_app("procfile").to_str().unwrap(),
        "--output",
        &out(tmp.path()),
        "--buildpack",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(
        o.stderr.contains("empty.wasm") && o.stderr.contains("manifest"),
        "{}",
        o.stderr
    );
}

/// `wasm` with the bytes of its API version section replaced.
fn with_api_section(wasm: &[u8], name: &[u8], value: &[u8]) -> Vec<u8> {
    let at = wasm
        .windows(name.len())
        .position(|w| w == b"cascade:api-version")
        .expect("the SDK stamps the API version");
    let mut out = wasm.to_vec();
    out[at..at + name.len()].copy_from_slice(name);
    let value_at = at + name.len();
    assert_eq!(&out[value_at..value_at + value.len()], b"0.2.0");
    out[value_at..value_at + value.len()].copy_from_slice(value);
    out
}

#[test]
fn a_component_for_another_api_version_is_refused_naming_both_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = std::fs::read(crate::guests::test_deps()).unwrap();
    let cases = [
        (
            "future.wasm",
            with_api_section(&wasm, b"cascade:api-version", b"0.9.1"),
            "API 0.9.1",
        ),
        // No section at all (renamed away): a component from before 0.2.
        (
            "old.wasm",
            with_api_section(&wasm, b"cascade:api-versioX", b"0.2.0"),
            "API 0.1.0",
        ),
    ];
    for (name, bytes, found) in cases {
        let file = tmp.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let o = build(&[
            fixture_app("procfile").to_str().unwrap(),
            "--output",
            &out(tmp.path()),
            "--buildpack",
            file.to_str().unwrap(),
        ]);
        assert_eq!(o.code, 10, "{}", o.stderr);
        assert!(
            o.stderr.contains(name)
                && o.stderr.contains(found)
                && o.stderr.contains("buildpack API 0.2.0"),
            "{}",
            o.stderr
        );
        assert!(
            !o.stderr.contains("compiled"),
            "refused before compiling: {}",
            o.stderr
        );
    }
}

#[test]
fn no_passing_group_says_what_each_buildpack_said() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    std::fs::create_dir(&app).unwrap();
    // C: a language no bundled buildpack builds.
    std::fs::write(app.join("main.c"), "int main(void) { return 0; }\n").unwrap();
    let o = build(&[app.to_str().unwrap(), "--output", &out(tmp.path())]);
    assert_eq!(o.code, 20, "{}", o.stderr);
    for said in [
        "cascade/procfile: fail: no Procfile",
        "cascade/static-site: fail: no index.html",
        "cascade/go: fail",
        "cascade/python: fail",
        "cascade/ca-certs: fail",
    ] {
        assert!(
            o.stderr.contains(said),
            "missing {said:?} in:\n{}",
            o.stderr
        );
    }
}

#[test]
fn a_bad_procfile_line_is_reported_with_its_number() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(
        app.join("Procfile"),
        "web: ./server\n\nnot a process line\n",
    )
    .unwrap();
    let o = build(&[app.to_str().unwrap(), "--output", &out(tmp.path())]);
    assert_eq!(o.code, 51, "{}", o.stderr);
    assert!(
        o.stderr.contains("cascade/procfile") && o.stderr.contains("line 3"),
        "{}",
        o.stderr
    );
}

#[test]
fn bad_references_and_env_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let app = fixture_app("procfile");
    let o = build(&[app.to_str().unwrap(), "--output", "docker-daemon:x"]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    let o = build(&[
        app.to_str().unwrap(),
        "--output",
        &out(tmp.path()),
        "--env",
        "NOEQUALS",
    ]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    let o = build(&[
        app.to_str().unwrap(),
        "--output",
        &out(tmp.path()),
        "--run-image",
        &format!("oci:{}:nope", tmp.path().display()),
    ]);
    assert_eq!(o.code, 61, "{}", o.stderr);
    assert!(o.stderr.contains("not an OCI image layout"), "{}", o.stderr);
}

#[test]
fn a_platform_the_run_image_does_not_offer_is_an_error() {
    if !have_all(&["umoci", "skopeo"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let app = fixture_app("procfile");
    let run = busybox_run_image();
    let offered = skopeo_config(
        Path::new(
            run.strip_prefix("oci:")
                .unwrap()
                .rsplit_once(':')
                .unwrap()
                .0,
        ),
        run.rsplit_once(':').unwrap().1,
    );
    let arch = offered["architecture"].as_str().unwrap();
    let other = if arch == "arm64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let o = build(&[
        app.to_str().unwrap(),
        "--output",
        &out(tmp.path()),
        "--run-image",
        run,
        "--platform",
        other,
    ]);
    assert_eq!(o.code, 61, "{}", o.stderr);
    assert!(
        o.stderr.contains(&format!("is linux/{arch}")) && o.stderr.contains(other),
        "{}",
        o.stderr
    );
    assert!(!tmp.path().join("out").exists(), "nothing is written");
    // Asked for on scratch, the platform is the image's.
    let built = build_ok(&[
        app.to_str().unwrap(),
        "--output",
        &out(tmp.path()),
        "--platform",
        "linux/arm64",
    ]);
    assert_eq!(built["run_image"]["reference"], "scratch");
    assert_eq!(
        skopeo_config(&tmp.path().join("out"), "t")["architecture"],
        "arm64"
    );
    let o = build(&[
        app.to_str().unwrap(),
        "--output",
        &out(tmp.path()),
        "--platform",
        "arm64",
    ]);
    assert_eq!(o.code, 10, "{}", o.stderr);
}

/// Mistakes in an output reference say what to write instead, and nothing
/// is created for them.
#[test]
fn output_mistakes_point_at_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let app = fixture_app("procfile");
    let app = app.to_str().unwrap();
    let o = build(&[app, "--output", "./images/x"]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(
        o.stderr.contains("did you mean \"oci:./images/x\"?"),
        "{}",
        o.stderr
    );
    let o = build(&[app, "--output", "127.0.0.1:5000/Team/App:V1"]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(o.stderr.contains("must be lowercase"), "{}", o.stderr);
    assert!(
        o.stderr.contains("127.0.0.1:5000/team/app:V1"),
        "{}",
        o.stderr
    );
    let bad = format!("oci:{}/x:BAD:TAG", tmp.path().display());
    let o = build(&[app, "--output", &bad]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(o.stderr.contains("cannot hold ':'"), "{}", o.stderr);
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "no x:BAD made"
    );
}

/// A registry nobody listens on fails the build before any buildpack
/// runs, with the export phase's code, saying "Connection refused" once.
#[test]
fn an_unreachable_registry_fails_before_detect_saying_why_once() {
    let port = free_port();
    let o = build(&[
        fixture_app("procfile").to_str().unwrap(),
        "--output",
        &format!("127.0.0.1:{port}/team/app:v1"),
    ]);
    assert_eq!(o.code, 62, "{}", o.stderr);
    assert_eq!(
        o.stderr.matches("Connection refused").count(),
        1,
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("checked before building"), "{}", o.stderr);
    assert!(
        !o.stderr.contains("DETECT"),
        "no buildpack ran: {}",
        o.stderr
    );
}
