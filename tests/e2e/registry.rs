//! Against a real registry (`docker-registry` on 127.0.0.1): run images
//! pulled from it, images published to it with cross-repository mounts, and
//! a rebase that moves manifests and configs only.

use std::process::Command;

use serde_json::Value;

use crate::support::*;

const TOOLS: &[&str] = &["docker-registry", "skopeo", "umoci", "bwrap"];

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// A registry holding `run:v1` (busybox), and `app:v1` built on it.
fn published() -> (RegistryServer, tempfile::TempDir, Value) {
    let registry = RegistryServer::start();
    registry.push_layout(busybox_run_image(), "run:v1");
    let tmp = tempfile::tempdir().unwrap();
    let report = build_ok(&[
        fixture_app("procfile").to_str().unwrap(),
        "--run-image",
        &registry.image("run:v1"),
        "--publish",
        &registry.image("app:v1"),
    ]);
    (registry, tmp, report)
}

#[test]
fn a_build_pulls_its_run_image_and_publishes_with_mounts() {
    if !have_all(TOOLS) {
        return;
    }
    let (registry, tmp, report) = published();
    // The run image's layer lives in repository `run`: mounted, not uploaded.
    assert_eq!(report["transfers"]["mounted"], 1, "{report}");
    assert_eq!(
        report["transfers"]["downloaded"], 0,
        "publishing must not download the base: {report}"
    );
    let app = registry.inspect("app:v1", "--raw");
    let run_manifest = registry.inspect("run:v1", "--raw");
    assert_eq!(layer_digests(&app)[0], layer_digests(&run_manifest)[0]);
    assert_eq!(
        format!(
            "sha256:{}",
            sha256_hex(&ok(Command::new("skopeo")
                .args([
                    "--insecure-policy",
                    "inspect",
                    "--tls-verify=false",
                    "--raw"
                ])
                .arg(format!("docker://{}", registry.image("app:v1")))))
        ),
        report["image_digest"].as_str().unwrap(),
        "the registry serves the manifest bytes we wrote"
    );

    // Pull it back with skopeo, unpack with umoci, run under bwrap.
    let local = tmp.path().join("pulled");
    ok(Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--src-tls-verify=false"])
        .arg(format!("docker://{}", registry.image("app:v1")))
        .arg(format!("oci:{}:app", local.display())));
    let config = skopeo_config(&local, "app");
    let bundle = unpack(&local, "app", tmp.path());
    assert_eq!(
        ok(&mut bwrap(&bundle, &config, &[], false)),
        "hello from procfile\n"
    );

    // A registry run image into a layout: base blobs are downloaded once,
    // then served from the cache.
    let cache = tmp.path().join("cache");
    let to_layout = |tag: &str| {
        let o = run(cascade()
            .env("CASCADE_CACHE_DIR", &cache)
            .arg("build")
            .arg(fixture_app("procfile"))
            .args([
                "--run-image",
                &registry.image("run:v1"),
                "--output",
                &format!("oci:{}:{tag}", tmp.path().join("out").display()),
                "--format",
                "json",
            ]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()
    };
    assert_eq!(to_layout("a")["transfers"]["downloaded"], 1);
    assert_eq!(
        to_layout("b")["transfers"]["downloaded"],
        0,
        "second build downloaded the run image again"
    );
}

#[test]
fn a_registry_rebase_moves_no_app_layer() {
    if !have_all(TOOLS) {
        return;
    }
    let (registry, tmp, _) = published();
    let patched = tmp.path().join("run2");
    make_run_image(
        &patched,
        "v2",
        &[("/etc/os-release", "VERSION_ID=2\n")],
        &[],
    );
    registry.push_layout(&format!("oci:{}:v2", patched.display()), "run:v2");
    let before = registry.inspect("app:v1", "--raw");
    let requests_before = registry.requests().len();

    let o = run(cascade().args([
        "rebase",
        &registry.image("app:v1"),
        "--run-image",
        &registry.image("run:v2"),
        "--format",
        "json",
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["changed"], true);
    assert_eq!(report["transfers"]["downloaded"], 0, "{report}");
    assert_eq!(report["transfers"]["mounted"], 1, "{report}");

    // The registry's own log: no blob of the app repository was read or
    // chunk-uploaded; the only upload is the new config.
    let during: Vec<String> = registry.requests()[requests_before..].to_vec();
    assert!(
        during
            .iter()
            .any(|l| l.contains("\"PUT /v2/app/manifests/v1")),
        "the access log shows no manifest push; is it being read? {during:#?}"
    );
    // Reading the app's config is expected (configs move); its layers never.
    let app_layer_gets = layer_digests(&before)
        .iter()
        .filter(|d| {
            during
                .iter()
                .any(|l| l.contains("\"GET /v2/") && l.contains(d.as_str()))
        })
        .count();
    // Uploads end with a PUT naming the digest: the only one may be the new
    // config (chunked uploads show PATCHes too, so the PUTs are what count).
    let uploaded: Vec<String> = during
        .iter()
        .filter(|l| l.contains("\"PUT /v2/app/blobs/uploads"))
        .filter_map(|l| {
            l.split("digest=sha256%3A")
                .nth(1)
                .map(|d| format!("sha256:{}", &d[..64]))
        })
        .collect();
    assert_eq!(
        app_layer_gets, 0,
        "an app layer was downloaded: {during:#?}"
    );

    let after = registry.inspect("app:v1", "--raw");
    assert_eq!(
        uploaded,
        [after["config"]["digest"].as_str().unwrap()],
        "only the new config may be uploaded: {during:#?}"
    );
    let base = layer_digests(&registry.inspect("run:v2", "--raw"));
    let (old, new) = (layer_digests(&before), layer_digests(&after));
    assert_eq!(new[..base.len()], base[..]);
    assert_eq!(
        new[base.len()..],
        old[old.len() - (new.len() - base.len())..],
        "app layers unchanged"
    );
    let config = registry.inspect("app:v1", "--config");
    let label: Value = serde_json::from_str(
        config["config"]["Labels"]["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(label["runImage"]["image"], registry.image("run:v2"));

    // inspect reads it from the registry too.
    let inspected: Value = serde_json::from_str(&ok(cascade().args([
        "inspect",
        "--format",
        "json",
        &registry.image("app:v1"),
    ])))
    .unwrap();
    assert_eq!(inspected["layers"][0]["source"], "run-image");
    assert_eq!(inspected["digest"], report["new_digest"]);
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}
