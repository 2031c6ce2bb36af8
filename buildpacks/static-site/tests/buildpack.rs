//! The static-site buildpack, run in-process by the test harness. The
//! harness grants no capability, so these build with the run image's
//! busybox httpd (no download); static-web-server from a mirror is the e2e
//! tests' (tests/e2e/static_site.rs).

use cascade_test::BuildpackTest;

/// The buildpack serving with busybox httpd.
fn busybox() -> BuildpackTest {
    BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR")).env("BP_STATIC_SERVER", "busybox")
}

#[test]
fn copies_the_site_into_a_launch_layer_served_on_port() {
    let bp = busybox();
    let dir = tempfile::tempdir().unwrap();
    bp.detect(dir.path()).assert_fail("index.html");
    std::fs::create_dir_all(dir.path().join("public/css")).unwrap();
    std::fs::write(dir.path().join("public/index.html"), "<h1>hi</h1>").unwrap();
    std::fs::write(dir.path().join("public/css/a.css"), "h1{}").unwrap();
    bp.detect(dir.path()).assert_pass();
    let out = bp.build(dir.path());
    out.layer("site")
        .assert_launch()
        .assert_env("PORT", "8080")
        .assert_file("htdocs/index.html", "<h1>hi</h1>")
        .assert_file("htdocs/css/a.css", "h1{}");
    let web = out.process("web");
    web.assert_default();
    assert!(web.command().join(" ").contains("busybox httpd"));
}

#[test]
fn serves_neither_dotfiles_nor_the_builds_files_nor_links_out() {
    let bp = busybox();
    let dir = cascade_test::app(&[
        ("index.html", "<h1>home</h1>"),
        (".env", "SECRET=1"),
        ("Procfile", "web: x"),
        ("project.toml", "[_]\nschema-version = \"0.2\"\n"),
        (".git/config", "[core]"),
        ("docs/.htpasswd", "admin:x"),
        ("docs/page.html", "page"),
        (".well-known/security.txt", "Contact: x"),
    ]);
    for (link, target) in [
        ("env-link", ".env"),
        ("out-link", "../../workspace/.env"),
        ("page-link", "docs/page.html"),
    ] {
        std::os::unix::fs::symlink(target, dir.path().join(link)).unwrap();
    }
    let out = bp.build(dir.path());
    let site = out.layer("site");
    site.assert_file("htdocs/index.html", "<h1>home</h1>")
        .assert_file("htdocs/docs/page.html", "page")
        .assert_file("htdocs/.well-known/security.txt", "Contact: x")
        .assert_file("htdocs/page-link", "page");
    for gone in [
        ".env",
        "Procfile",
        "project.toml",
        ".git",
        "docs/.htpasswd",
        "env-link",
        "out-link",
    ] {
        assert!(
            std::fs::symlink_metadata(site.path().join("htdocs").join(gone)).is_err(),
            "{gone} is served"
        );
    }
    assert!(
        out.logs()
            .iter()
            .any(|l| l.contains("not served") && l.contains(".env"))
    );

    // Asked for, a path is served anyway.
    let out = bp
        .env("BP_STATIC_SITE_INCLUDE", "Procfile")
        .build(dir.path());
    out.layer("site").assert_file("htdocs/Procfile", "web: x");
}

#[test]
fn a_front_end_waits_for_node_and_a_node_server_is_not_a_site() {
    let bp = busybox();
    // A front end: passes only with node's build in the plan, and serves
    // what the build wrote, never the template.
    let front = cascade_test::app(&[
        ("package.json", r#"{"scripts":{"build":"vite build"}}"#),
        ("index.html", "<script src=\"/src/main.js\"></script>"),
    ]);
    let detected = bp.detect(front.path());
    detected.assert_pass();
    let plans = format!("{:?}", detected.plans());
    assert!(plans.contains("node-static-build"), "{plans}");
    let err = bp.try_build(front.path()).err().unwrap();
    assert!(
        err.contains("wrote no index.html in dist/, build/ or out/"),
        "{err}"
    );
    std::fs::create_dir(front.path().join("dist")).unwrap();
    std::fs::write(front.path().join("dist/index.html"), "<h1>built</h1>").unwrap();
    bp.build(front.path())
        .layer("site")
        .assert_file("htdocs/index.html", "<h1>built</h1>");
    // An Express app with public/index.html is cascade/node's.
    let server = cascade_test::app(&[
        ("package.json", r#"{"scripts":{"start":"node server.js"}}"#),
        ("public/index.html", "<h1>static part</h1>"),
    ]);
    bp.detect(server.path())
        .assert_fail("cascade/node serves it");
    // A package.json for tooling only leaves a plain site a site.
    let tooling = cascade_test::app(&[
        ("package.json", r#"{"devDependencies":{"prettier":"3"}}"#),
        ("index.html", "<h1>site</h1>"),
    ]);
    bp.detect(tooling.path()).assert_pass();
}

#[test]
fn static_web_server_is_fetched_by_default_and_settings_are_checked_first() {
    let site = cascade_test::app(&[("index.html", "<h1>hi</h1>")]);
    // Not granted fetch: the error names the capability, the grant and the
    // way to build without a download.
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
    let err = bp.try_build(site.path()).err().unwrap();
    for says in [
        "serving with static-web-server",
        "installing 2.42.0 from the bundled inventory",
        "capability fetch:github.com denied",
        "--allow fetch:github.com",
        "BP_STATIC_SERVER=busybox",
    ] {
        assert!(err.contains(says), "{says:?} in {err}");
    }
    // A single-page fallback busybox cannot give is refused before anything.
    let err = busybox()
        .env("BP_STATIC_SPA", "true")
        .try_build(site.path())
        .err()
        .unwrap();
    assert!(
        err.contains("BP_STATIC_SPA=true needs static-web-server"),
        "{err}"
    );
    let err = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"))
        .env("BP_STATIC_SERVER", "nginx")
        .try_build(site.path())
        .err()
        .unwrap();
    assert!(
        err.contains("BP_STATIC_SERVER=\"nginx\": expected static-web-server or busybox"),
        "{err}"
    );
    // A mirror's version pin that the inventory lacks lists what it has.
    let err = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"))
        .env("BP_STATIC_WEB_SERVER_VERSION", "9.9.9")
        .try_build(site.path())
        .err()
        .unwrap();
    assert!(
        err.contains("no static-web-server 9.9.9 for linux/"),
        "{err}"
    );
}
