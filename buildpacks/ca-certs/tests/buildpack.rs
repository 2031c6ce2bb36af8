//! The ca-certs buildpack, run in-process by the test harness.

use std::path::Path;

use cascade_test::{BuildpackTest, guests};

fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/apps/ca-certs"
    ))
}

#[test]
fn bundles_app_certificates_and_points_ssl_cert_file_at_them() {
    let bp = BuildpackTest::from_file(guests::CA_CERTS);
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
}
