//! `cascade new buildpack`: the crate it writes builds, passes its own
//! tests (which use the cascade-test harness), packages into one .wasm, and
//! that .wasm builds an app.

use std::process::Command;

use serde_json::Value;

use crate::support::*;

#[test]
fn a_scaffolded_buildpack_builds_passes_its_tests_and_packages() {
    let tmp = tempfile::tempdir().unwrap();
    // cascade-sdk and cascade-test from this tree, as a [patch.crates-io].
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let o = cascade_run(
        "new",
        &[
            "buildpack",
            "hello-bp",
            "--dir",
            tmp.path().to_str().unwrap(),
            "--cascade-path",
            workspace.to_str().unwrap(),
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let krate = tmp.path().join("hello-bp");
    for f in [
        "Cargo.toml",
        "buildpack.toml",
        "src/lib.rs",
        "tests/buildpack.rs",
        "tests/fixtures/app/hello.txt",
    ] {
        assert!(krate.join(f).is_file(), "{f} missing");
    }
    // A second scaffold into the same place is refused, not merged.
    let again = cascade_run(
        "new",
        &[
            "buildpack",
            "hello-bp",
            "--dir",
            tmp.path().to_str().unwrap(),
        ],
    );
    assert_eq!(again.code, 10, "{}", again.stderr);

    // Its own target dir (the cargo running this test holds the
    // workspace's), kept under target/ so later runs are incremental.
    let target =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/scaffold-test");
    // `new` copied the workspace's lock: the scaffold resolves to the
    // crates already tested here, not to whatever crates.io offers today.
    assert!(krate.join("Cargo.lock").is_file());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut test = Command::new(&cargo);
    test.current_dir(&krate)
        .args(["test", "--quiet"])
        .env("CARGO_TARGET_DIR", &target);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        test.env_remove(var);
    }
    let out = run(&mut test);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo test of the scaffold failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 passed"), "{stdout}");

    // Package it, then build an app with the packaged file.
    let packaged = run(cascade()
        .env("CARGO_TARGET_DIR", &target)
        .args(["buildpack", "package", "--format", "json"])
        .arg(&krate));
    assert!(
        packaged.status.success(),
        "{}",
        String::from_utf8_lossy(&packaged.stderr)
    );
    let p: Value = serde_json::from_slice(&packaged.stdout).unwrap();
    assert_eq!(p["id"], "example/hello-bp");
    let wasm = p["path"].as_str().unwrap();
    assert!(wasm.ends_with("example_hello-bp-0.1.0.wasm"), "{wasm}");
    let report = build_ok(&[
        krate.join("tests/fixtures/app").to_str().unwrap(),
        "--output",
        &format!("oci:{}/img:v1", tmp.path().display()),
        "--buildpack",
        wasm,
    ]);
    assert_eq!(report["default_process"], "web");
}
