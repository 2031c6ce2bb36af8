//! The procfile buildpack, run in-process by the test harness.

use cascade_test::BuildpackTest;

fn app(procfile: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    if let Some(text) = procfile {
        std::fs::write(dir.path().join("Procfile"), text).unwrap();
    }
    dir
}

#[test]
fn detects_a_procfile_and_declares_its_processes() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
    bp.detect(app(None).path()).assert_fail("Procfile");
    let app = app(Some("web: ./server --port $PORT\nworker: bin/work -q\n"));
    bp.detect(app.path()).assert_pass();
    let out = bp.build(app.path());
    out.process("web").assert_default();
    out.process("worker").assert_command(&["bin/work", "-q"]);
    assert!(out.layer_names().is_empty());
}

#[test]
fn a_bad_line_fails_the_build_with_its_number() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
    let err = bp
        .try_build(app(Some("web: ok\nthis is not a process\n")).path())
        .err()
        .unwrap();
    assert!(err.contains("line 2"), "{err}");
}
