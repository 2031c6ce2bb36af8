//! The python buildpack, run in-process by the test harness: what it
//! decides before it fetches anything. Installing CPython and running pip,
//! uv and Poetry are covered end to end (tests/e2e/python.rs), where fetch
//! and exec are granted.

use cascade_test::{BuildpackTest, app};

fn bp() -> BuildpackTest {
    BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR")).target("linux", "amd64")
}

#[test]
fn detects_manifests_and_scripts_but_not_a_bare_site() {
    let bp = bp();
    bp.detect(app(&[("index.html", "<p>")]).path())
        .assert_fail("no requirements.txt");
    for (file, text) in [
        ("requirements.txt", ""),
        ("pyproject.toml", "[project]\nname = \"a\"\n"),
        ("Pipfile.lock", "{}"),
        ("main.py", ""),
        ("manage.py", ""),
    ] {
        bp.detect(app(&[(file, text)]).path()).assert_pass();
    }
    // A pyproject.toml that only configures tools is no Python app.
    bp.detect(app(&[("pyproject.toml", "[tool.black]\n"), ("package.json", "{}")]).path())
        .assert_fail("no requirements.txt");
    bp.detect(app(&[("worker.py", ""), ("Procfile", "worker: python worker.py")]).path())
        .assert_pass();
    bp.detect(app(&[("worker.py", "")]).path())
        .assert_fail("no requirements.txt");
}

#[test]
fn a_pipfile_without_its_lock_is_refused_before_any_download() {
    let err = bp()
        .try_build(app(&[("Pipfile", "[packages]\nflask = \"*\"\n")]).path())
        .err()
        .unwrap();
    assert!(err.contains("Pipfile without Pipfile.lock"), "{err}");
    assert!(err.contains("pipenv lock"), "{err}");
}

#[test]
fn a_version_the_inventory_lacks_lists_what_it_has() {
    let err = bp()
        .try_build(app(&[("requirements.txt", ""), (".python-version", "3.9\n")]).path())
        .err()
        .unwrap();
    assert!(
        err.contains("no CPython 3.9 (.python-version) for linux/amd64 in the bundled inventory")
            && err.contains("it has: 3.12.6, 3.12.5, 3.11.10, 3.11.9"),
        "{err}"
    );
}

#[test]
fn a_malformed_request_names_its_file() {
    let err = bp()
        .try_build(app(&[("runtime.txt", "python-three\n"), ("main.py", "")]).path())
        .err()
        .unwrap();
    assert!(err.contains("runtime.txt: \"python-three\""), "{err}");
    let err = bp()
        .try_build(app(&[("pyproject.toml", "[project\nname = 1")]).path())
        .err()
        .unwrap();
    assert!(err.contains("pyproject.toml: "), "{err}");
}

#[test]
fn a_mirror_inventory_url_must_be_pinned() {
    let err = bp()
        .env("BP_PYTHON_INVENTORY", "https://mirror.example/python.toml")
        .try_build(app(&[("main.py", "")]).path())
        .err()
        .unwrap();
    assert!(
        err.contains("a URL needs BP_PYTHON_INVENTORY_SHA256"),
        "{err}"
    );
    let err = bp()
        .env("BP_PYTHON_INVENTORY", "/etc/python.toml")
        .try_build(app(&[("main.py", "")]).path())
        .err()
        .unwrap();
    assert!(err.contains("or a path inside the app"), "{err}");
}

#[test]
fn fetching_the_runtime_needs_the_grant() {
    // The harness grants nothing: the download is refused, and says how to
    // grant it.
    let err = bp()
        .try_build(app(&[("main.py", "print('hi')")]).path())
        .err()
        .unwrap();
    assert!(err.contains("fetch"), "{err}");
    assert!(err.contains("github.com"), "{err}");
}

#[test]
fn a_broken_lock_is_named_before_any_download() {
    let err = bp()
        .try_build(
            app(&[
                ("pyproject.toml", "[project]\nname = \"a\"\n"),
                ("uv.lock", "version = 1\n[[package]\nname = \"x\"\n"),
            ])
            .path(),
        )
        .err()
        .unwrap();
    assert!(err.contains("uv.lock: ") && err.contains("line 2"), "{err}");
    assert!(err.contains("uv lock"), "{err}");
    let err = bp()
        .try_build(
            app(&[(
                "Pipfile.lock",
                "{\"default\": {\"x\": {\"git\": \"https://h/x\"}}}",
            )])
            .path(),
        )
        .err()
        .unwrap();
    assert!(
        err.contains("Pipfile.lock: default.x: a \"git\" dependency"),
        "{err}"
    );
}
