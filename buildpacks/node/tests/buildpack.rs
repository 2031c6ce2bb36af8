//! The node buildpack, run in-process by the test harness: what it decides
//! before it fetches anything. Installing a runtime and running npm are
//! covered end to end (tests/e2e/node.rs), where fetch and exec are granted.

use cascade_test::{BuildpackTest, app};

#[test]
fn detects_package_json_or_a_server_script() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
    bp.detect(app(&[]).path()).assert_fail("package.json");
    bp.detect(app(&[("package.json", "{}")]).path())
        .assert_pass();
    // No package.json: a server script is enough, but not in a static site.
    bp.detect(app(&[("server.js", "")]).path()).assert_pass();
    bp.detect(app(&[("main.js", "")]).path()).assert_pass();
    bp.detect(app(&[("index.js", ""), ("index.html", "")]).path())
        .assert_fail("static site");
    // A static site whose package.json is only for tooling is not node's.
    bp.detect(app(&[("package.json", "{}"), ("index.html", "")]).path())
        .assert_fail("cascade/static-site serves it");
}

#[test]
fn a_front_end_offers_its_build_to_the_static_site() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
    let front = app(&[(
        "package.json",
        r#"{"scripts":{"build":"vite build"},"devDependencies":{"vite":"7"}}"#,
    )]);
    let detected = bp.detect(front.path());
    detected.assert_pass();
    let plans = format!("{:?}", detected.plans());
    assert!(plans.contains("node-static-build"), "{plans}");
    // A server with a build step serves itself.
    let server = app(&[(
        "package.json",
        r#"{"scripts":{"build":"tsc","start":"node dist/server.js"}}"#,
    )]);
    let plans = format!("{:?}", bp.detect(server.path()).plans());
    assert!(!plans.contains("node-static-build"), "{plans}");
}

#[test]
fn dependencies_without_a_lockfile_are_refused_before_any_download() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
    let err = bp
        .try_build(app(&[("package.json", r#"{"dependencies":{"a":"1"}}"#)]).path())
        .err()
        .unwrap();
    assert!(err.contains("there is no lock file"), "{err}");
    assert!(err.contains("npm install"), "{err}");
}

#[test]
fn a_version_the_inventory_lacks_lists_what_it_has() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR")).target("linux", "amd64");
    let err = bp
        .try_build(app(&[("package.json", r#"{"engines":{"node":"16.x"}}"#)]).path())
        .err()
        .unwrap();
    assert!(
        err.contains("no Node.js 16.x for linux/amd64") && err.contains("26.3.0, 24.16.0, 20.20.2"),
        "{err}"
    );
}

#[test]
fn a_malformed_package_json_names_the_line() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
    let err = bp
        .try_build(app(&[("package.json", "{\n  \"name\": ,\n}")]).path())
        .err()
        .unwrap();
    assert!(err.contains("package.json: line 2"), "{err}");
}

#[test]
fn an_inventory_outside_the_app_is_refused() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"))
        .env("BP_NODE_INVENTORY", "../etc/inv.toml");
    let err = bp
        .try_build(app(&[("package.json", "{}")]).path())
        .err()
        .unwrap();
    assert!(err.contains("or a path inside the app"), "{err}");
}

#[test]
fn an_inventory_url_without_its_sha256_is_refused_before_any_download() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"))
        .env("BP_NODE_INVENTORY", "https://mirror.example/node.toml");
    let err = bp
        .try_build(app(&[("package.json", "{}")]).path())
        .err()
        .unwrap();
    assert!(
        err.contains("a URL needs BP_NODE_INVENTORY_SHA256"),
        "{err}"
    );
}
