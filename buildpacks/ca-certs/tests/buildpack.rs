//! The ca-certs buildpack, run in-process by the test harness.

use std::path::Path;

use cascade_test::BuildpackTest;

fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/apps/ca-certs"
    ))
}

#[test]
fn bundles_app_certificates_and_points_ssl_cert_file_at_them() {
    let bp = BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR"));
    bp.detect(tempfile::tempdir().unwrap().path())
        .assert_fail("BP_CA_CERTIFICATES");
    bp.detect(fixture()).assert_pass();
    let out = bp.build(fixture());
    let layer = out.layer("ca-certificates");
    layer.assert_launch().assert_build();
    let file = layer.env("SSL_CERT_FILE").expect("SSL_CERT_FILE is set");
    assert!(
        file.starts_with("/layers/cascade_ca-certs/ca-certificates/"),
        "{file}"
    );
    // The app's CA adds to the tools' roots; it never replaces pip's,
    // cargo's or git's store (which would drop the public roots).
    let build = out.layer("build-ca-certificates");
    for var in ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"] {
        assert!(build.env(var).is_some(), "{var} unset");
    }
    for var in [
        "PIP_CERT",
        "REQUESTS_CA_BUNDLE",
        "CARGO_HTTP_CAINFO",
        "GIT_SSL_CAINFO",
    ] {
        assert!(build.env(var).is_none(), "{var} set from the app's CA");
    }
}

#[test]
fn build_only_certificates_reach_the_tools_of_later_buildpacks_never_the_image() {
    let pem = "-----BEGIN CERTIFICATE-----\nUFJPWFk=\n-----END CERTIFICATE-----\n";
    let bp =
        BuildpackTest::from_crate(env!("CARGO_MANIFEST_DIR")).env("BP_BUILD_CA_CERTIFICATES", pem);
    let app = tempfile::tempdir().unwrap();
    bp.detect(app.path()).assert_pass();
    let out = bp.build(app.path());
    assert_eq!(
        out.layer_names(),
        ["build-ca-certificates"],
        "no launch layer holds a build-only certificate"
    );
    let layer = out.layer("build-ca-certificates");
    layer.assert_build().assert_file("ca-certificates.crt", pem);
    let bundle = "/layers/cascade_ca-certs/build-ca-certificates/ca-certificates.crt";
    for var in [
        "SSL_CERT_FILE",
        "NODE_EXTRA_CA_CERTS",
        "PIP_CERT",
        "REQUESTS_CA_BUNDLE",
        "CARGO_HTTP_CAINFO",
        "GIT_SSL_CAINFO",
    ] {
        layer.assert_env(var, bundle);
    }

    // With the app's own certificates too: those go in the image, and the
    // build bundle holds both.
    let out = bp.build(fixture());
    out.layer("ca-certificates").assert_launch();
    let build = out
        .layer("build-ca-certificates")
        .file("ca-certificates.crt");
    let image = out.layer("ca-certificates").file("ca-certificates.crt");
    assert!(build.starts_with(&image) && build.ends_with(pem), "{build}");
    assert!(
        !image.contains("UFJPWFk="),
        "a build-only certificate in the image"
    );
}
