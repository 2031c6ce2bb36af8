//! Buildpacks as Wasm OCI artifacts: packaged, published to a real
//! registry, named in builder.toml by reference, pulled, verified by digest,
//! cached and locked.

use std::path::Path;

use crate::guests;
use serde_json::Value;

use crate::support::*;

fn deps_app(dir: &Path) -> std::path::PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("deps.lock"), "size-mib = 1\nseed = \"d\"\n").unwrap();
    app
}

fn builder(dir: &Path, uri: &str) -> std::path::PathBuf {
    let path = dir.join("builder.toml");
    std::fs::write(
        &path,
        format!("[[buildpacks]]\nid = \"test/deps\"\nuri = \"{uri}\"\n\n[[order]]\n[[order.group]]\nid = \"test/deps\"\n"),
    )
    .unwrap();
    path
}

fn build_with_builder(dir: &Path, builder: &Path, extra: &[&str]) -> Outcome {
    let app = deps_app(dir);
    let out = format!("oci:{}/out:v1", dir.display());
    let mut args = vec![
        app.to_str().unwrap(),
        "--output",
        &out,
        "--builder",
        builder.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend(extra);
    build(&args)
}

#[test]
fn package_names_the_buildpack_and_refuses_what_is_not_one() {
    let tmp = tempfile::tempdir().unwrap();
    let o = cascade_run(
        "buildpack",
        &[
            "package",
            guests::test_deps(),
            "--output",
            tmp.path().to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let p: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(p["id"], "test/deps");
    assert_eq!(p["api"], "0.2.0");
    let file = tmp.path().join("test_deps-0.0.1.wasm");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(guests::test_deps()).unwrap()
    );

    let junk = tmp.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x01\0\0\0").unwrap();
    let o = cascade_run("buildpack", &["package", junk.to_str().unwrap()]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(
        o.stderr.contains("junk.wasm") && o.stderr.contains("not a WebAssembly component"),
        "{}",
        o.stderr
    );
}

#[test]
fn a_published_buildpack_builds_from_its_reference_locked_and_cached() {
    if !have_all(&["docker-registry", "skopeo"]) {
        return;
    }
    let registry = RegistryServer::start();
    let publish = || {
        let o = cascade_run(
            "buildpack",
            &[
                "publish",
                guests::test_deps(),
                &registry.image("bp/deps:1"),
                "--format",
                "json",
            ],
        );
        assert_eq!(o.code, 0, "{}", o.stderr);
        serde_json::from_str::<Value>(&o.stdout).unwrap()
    };
    let published = publish();

    // A real registry holds a CNCF Wasm OCI artifact.
    let manifest = registry.inspect("bp/deps:1", "--raw");
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(manifest["layers"][0]["digest"], published["component"]);
    // Publishing the same component again gives the same manifest.
    assert_eq!(publish()["manifest"], published["manifest"]);

    let tmp = tempfile::tempdir().unwrap();
    let uri = format!("docker://{}", registry.image("bp/deps:1"));
    let b = builder(tmp.path(), &uri);
    let first = build_with_builder(tmp.path(), &b, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let lock = std::fs::read_to_string(tmp.path().join("builder.lock")).unwrap();
    assert!(
        lock.contains(&uri) && lock.contains(published["manifest"].as_str().unwrap()),
        "{lock}"
    );
    assert!(
        lock.contains(published["component"].as_str().unwrap()),
        "{lock}"
    );

    // Same image from the lock; the registry is asked by digest, not tag,
    // and the component comes from the cache (no blob GET).
    let before = registry.requests().len();
    let second = build_with_builder(tmp.path(), &b, &["--locked"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let digest = |o: &Outcome| serde_json::from_str::<Value>(&o.stdout).unwrap()["digest"].clone();
    assert_eq!(digest(&first), digest(&second));
    let during: Vec<String> = registry.requests()[before..].to_vec();
    assert!(during.iter().all(|l| !l.contains("/blobs/")), "{during:#?}");
    assert!(
        during
            .iter()
            .any(|l| l.contains(published["manifest"].as_str().unwrap())),
        "{during:#?}"
    );

    // A lock whose component digest is wrong is refused, naming both.
    let wrong = format!("sha256:{}", "0".repeat(64));
    std::fs::write(
        tmp.path().join("builder.lock"),
        lock.replace(published["component"].as_str().unwrap(), &wrong),
    )
    .unwrap();
    let refused = build_with_builder(tmp.path(), &b, &[]);
    assert_eq!(refused.code, 10, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&wrong)
            && refused
                .stderr
                .contains(published["component"].as_str().unwrap())
            && refused.stderr.contains("builder.lock"),
        "{}",
        refused.stderr
    );

    // --locked with no lock entry is refused; a reference pinned to a digest
    // the registry does not have is an error naming it.
    std::fs::remove_file(tmp.path().join("builder.lock")).unwrap();
    let unlocked = build_with_builder(tmp.path(), &b, &["--locked"]);
    assert_eq!(unlocked.code, 10, "{}", unlocked.stderr);
    assert!(unlocked.stderr.contains("--locked"), "{}", unlocked.stderr);
    let pinned_wrong = builder(
        tmp.path(),
        &format!("docker://{}@{wrong}", registry.image("bp/deps")),
    );
    let missing = build_with_builder(tmp.path(), &pinned_wrong, &[]);
    assert_eq!(missing.code, 10, "{}", missing.stderr);
    assert!(missing.stderr.contains("bp/deps"), "{}", missing.stderr);
}

#[test]
fn a_registry_image_that_is_not_a_wasm_artifact_is_refused_as_a_buildpack() {
    if !have_all(&["docker-registry", "skopeo", "umoci"]) {
        return;
    }
    let registry = RegistryServer::start();
    registry.push_layout(busybox_run_image(), "not/a-buildpack:1");
    let tmp = tempfile::tempdir().unwrap();
    let uri = format!("docker://{}", registry.image("not/a-buildpack:1"));
    let b = builder(tmp.path(), &uri);
    let o = build_with_builder(tmp.path(), &b, &[]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(
        o.stderr.contains("not a Wasm OCI artifact") && o.stderr.contains("not/a-buildpack"),
        "{}",
        o.stderr
    );
    assert!(
        !tmp.path().join("builder.lock").exists(),
        "a refused buildpack was locked"
    );
}
