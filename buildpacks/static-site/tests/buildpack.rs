//! The static-site buildpack, run in-process by the test harness.

use cascade_test::BuildpackTest;

#[test]
fn copies_the_site_into_a_launch_layer_served_on_port() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
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
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
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
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
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
