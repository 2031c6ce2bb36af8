//! The go buildpack, run in-process by the test harness: what it decides
//! before it runs go. Building with the host's go is covered end to end
//! (tests/e2e/go.rs), where exec is granted.

use cascade_test::{BuildpackTest, app};

#[test]
fn detects_go_mod_or_a_package_main() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
    bp.detect(app(&[]).path()).assert_fail("go.mod");
    bp.detect(app(&[("go.mod", "module x\n")]).path())
        .assert_pass();
    bp.detect(app(&[("main.go", "// a server\npackage main\n\nfunc main() {}\n")]).path())
        .assert_pass();
    bp.detect(app(&[("lib.go", "package lib\n")]).path())
        .assert_fail("package main");
    bp.detect(app(&[("main_test.go", "package main\n")]).path())
        .assert_fail("package main");
}

#[test]
fn a_go_version_the_inventory_lacks_lists_what_it_has() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR")).env("BP_GO_VERSION", "1.18.1");
    let err = bp
        .try_build(app(&[("go.mod", "module example.com/x\n")]).path())
        .err()
        .unwrap();
    assert!(
        err.contains("no Go 1.18.1 for linux/amd64 in the bundled inventory (it has: 1.25.5, 1.24.11, 1.24.4)"),
        "{err}"
    );
}

#[test]
fn a_go_mod_without_a_module_line_is_refused_before_running_go() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
    let err = bp
        .try_build(app(&[("go.mod", "go 1.19\n")]).path())
        .err()
        .unwrap();
    assert!(err.contains("go.mod: no module line"), "{err}");
}

#[test]
fn go_is_run_only_when_granted() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
    let err = bp
        .try_build(app(&[("go.mod", "module example.com/x\n")]).path())
        .err()
        .unwrap();
    assert!(err.contains("exec:go"), "{err}");
}
