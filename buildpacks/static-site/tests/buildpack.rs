//! The static-site buildpack, run in-process by the test harness.

use cascade_test::{BuildpackTest, guests};

#[test]
fn copies_the_site_into_a_launch_layer_served_on_port() {
    let bp = BuildpackTest::from_file(guests::STATIC_SITE);
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
