//! The image SBOM: valid CycloneDX (checked by CycloneDX's own validator),
//! byte-identical across builds, listing buildpacks, layers with diff_ids
//! and the run image's dpkg packages; stored where CNB stores it and
//! attached as an OCI referrer when published.

use std::path::Path;
use std::process::Command;

use crate::guests;
use serde_json::Value;

use crate::support::*;

const DPKG_STATUS: &str = "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u5\n\nPackage: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u7\nDescription: GNU C Library\n multi-line\n\nPackage: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n";
const OS_RELEASE: &str =
    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n";

/// A busybox run image with a dpkg database and os-release.
fn debianish_run_image(dir: &Path) -> String {
    let layout = dir.join("run");
    make_run_image(
        &layout,
        "deb",
        &[
            ("/var/lib/dpkg/status", DPKG_STATUS),
            ("/etc/os-release", OS_RELEASE),
        ],
        &[],
    );
    format!("oci:{}:deb", layout.display())
}

fn deps_app(dir: &Path) -> std::path::PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("deps.lock"), "size-mib = 1\nseed = \"s\"\n").unwrap();
    app
}

/// CycloneDX's validator on `text`: `None` when valid, else the reason.
pub fn cyclonedx_errors(text: &str) -> Option<String> {
    let script = "import sys\nfrom cyclonedx.validation.json import JsonStrictValidator\nfrom cyclonedx.schema import SchemaVersion\nerr = JsonStrictValidator(SchemaVersion.V1_5).validate_str(sys.stdin.read())\nprint('VALID' if err is None else getattr(err.data, 'message', str(err))[:4000])\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(out.status.success(), "the validator did not run: {said}");
    (said != "VALID").then_some(said)
}

pub fn have_validator() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import cyclonedx.validation.json"])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        lacking("cyclonedx-python-lib (pip install 'cyclonedx-python-lib[json-validation]')");
    }
    found
}

#[test]
fn the_image_sbom_is_valid_cyclonedx_identical_across_builds_and_lists_everything() {
    if !have_all(&["umoci", "skopeo"]) || !have_validator() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run_image = debianish_run_image(tmp.path());
    let mut docs = Vec::new();
    let mut digests = Vec::new();
    for (n, mtime_dir) in ["one", "two"].iter().enumerate() {
        let dir = tmp.path().join(mtime_dir);
        let app = deps_app(&dir);
        let layout = dir.join("out");
        let out = build_in(
            &dir.join("cache"),
            &[
                app.to_str().unwrap(),
                "--buildpack",
                guests::test_deps(),
                "--run-image",
                &run_image,
                "--format",
                "json",
                "--output",
                &format!("oci:{}:v{n}", layout.display()),
            ],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        let report: Value = serde_json::from_str(&out.stdout).unwrap();
        digests.push(report["digest"].clone());
        let bundle = unpack(&layout, &format!("v{n}"), &dir);
        let sbom = bundle.join("rootfs/layers/sbom/launch");
        docs.push(std::fs::read(sbom.join("sbom.cdx.json")).unwrap());
        // The buildpack's own layer SBOM is there too, as it gave it.
        let layer_doc = std::fs::read_to_string(sbom.join("test_deps/deps/sbom.cdx.json")).unwrap();
        assert!(layer_doc.contains("pkg:generic/deps@s"), "{layer_doc}");

        // The lifecycle label names the SBOM layer by diff_id.
        let config = skopeo_config(&layout, &format!("v{n}"));
        let label: Value = serde_json::from_str(
            config["config"]["Labels"]["io.buildpacks.lifecycle.metadata"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let sha = label["sbom"]["sha"].as_str().unwrap();
        assert!(
            config["rootfs"]["diff_ids"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d == sha)
        );
    }
    assert_eq!(docs[0], docs[1], "the SBOM bytes differ between two builds");
    assert_eq!(digests[0], digests[1]);

    let text = String::from_utf8(docs[0].clone()).unwrap();
    if let Some(e) = cyclonedx_errors(&text) {
        panic!("not valid CycloneDX 1.5: {e}\n{text}");
    }
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(!text.contains("timestamp") && !text.contains("serialNumber"));
    let components = doc["components"].as_array().unwrap();
    let find = |name: &str| {
        components
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    let bp = find("test/deps");
    assert_eq!(bp["hashes"][0]["content"].as_str().unwrap().len(), 64);
    let deps = find("/layers/test_deps/deps");
    assert_eq!(deps["components"][0]["purl"], "pkg:generic/deps@s");
    assert!(deps["properties"].to_string().contains("cascade:diff-id"));
    find("/workspace");
    let os = find("debian");
    assert_eq!(os["version"], "12");
    let packages: Vec<&str> = os["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["purl"].as_str().unwrap())
        .collect();
    assert_eq!(
        packages,
        [
            "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64",
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64"
        ]
    );

    // inspect summarises it, and prints it whole on request.
    let layout = tmp.path().join("one/out");
    let inspected: Value = serde_json::from_str(&ok(cascade()
        .args(["inspect", "--format", "json"])
        .arg(format!("oci:{}:v0", layout.display()))))
    .unwrap();
    assert_eq!(inspected["sbom"]["os_packages"], 2, "{inspected}");
    assert_eq!(inspected["sbom"]["buildpacks"], 1);
    assert_eq!(inspected["sbom"]["layer_components"], 1);
    let whole = ok(cascade()
        .args(["inspect", "--sbom"])
        .arg(format!("oci:{}:v0", layout.display())));
    let whole: Value = serde_json::from_str(&whole).unwrap();
    assert_eq!(whole, doc);
}

#[test]
fn publishing_attaches_the_sbom_as_a_referrer_with_the_tag_fallback() {
    if !have_all(&["docker-registry", "skopeo"]) {
        return;
    }
    let registry = RegistryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = deps_app(tmp.path());
    let publish = || {
        let out = run(cascade()
            .arg("build")
            .arg(&app)
            .args(["--buildpack", guests::test_deps(), "--format", "json"])
            .args(["--publish", &registry.image("app:v1")]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let report = publish();
    let digest = report["digest"].as_str().unwrap();
    // docker-registry (distribution 2.8) has no referrers API: the index
    // lives under the tag sha256-<hex>.
    assert_eq!(report["sbom_referrer"]["via"], "tag-fallback", "{report}");
    let tag = format!("app:sha256-{}", digest.trim_start_matches("sha256:"));
    let index = registry.inspect(&tag, "--raw");
    let entry = &index["manifests"][0];
    assert_eq!(entry["artifactType"], "application/vnd.cyclonedx+json");
    assert_eq!(entry["digest"], report["sbom_referrer"]["digest"]);
    let artifact = registry.inspect(
        &format!("app@{}", entry["digest"].as_str().unwrap()),
        "--raw",
    );
    assert_eq!(artifact["subject"]["digest"], digest);
    assert_eq!(
        artifact["layers"][0]["mediaType"],
        "application/vnd.cyclonedx+json"
    );

    // The same build again attaches nothing new.
    let again = publish();
    assert_eq!(again["digest"], report["digest"]);
    assert_eq!(again["sbom_referrer"]["via"], "already-attached");
    assert_eq!(
        registry.inspect(&tag, "--raw")["manifests"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // inspect reads the SBOM from the registry too.
    let inspected: Value = serde_json::from_str(&ok(cascade()
        .args(["inspect", "--format", "json"])
        .arg(registry.image("app:v1"))))
    .unwrap();
    assert_eq!(inspected["sbom"]["buildpacks"], 1, "{inspected}");
}
