//! The patching waterfall, as a security team and a CI job rely on it: the
//! SBOM of a rebased digest names the new base (in the image and as a
//! referrer, valid CycloneDX), a dry run tells the digest the rebase makes,
//! a rebase onto an older base is refused, audit classifies as rebase does
//! and its exit codes gate a pipeline.

use std::path::{Path, PathBuf};

use crate::guests;
use serde_json::Value;

use crate::sbom::{cyclonedx_errors, have_validator};
use crate::support::*;

const TOOLS: &[&str] = &["umoci", "skopeo"];

fn dpkg(libc: &str) -> String {
    format!(
        "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u5\n\nPackage: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: {libc}\n"
    )
}

/// `run:v1` with libc6 `2.36-9+deb12u7`, then (made later, so newer)
/// `run:v2` with the patched `2.36-9+deb12u9`.
fn bases(dir: &Path) -> PathBuf {
    let run = dir.join("run");
    for (tag, libc) in [("v1", "2.36-9+deb12u7"), ("v2", "2.36-9+deb12u9")] {
        make_run_image(
            &run,
            tag,
            &[
                ("/var/lib/dpkg/status", &dpkg(libc)),
                ("/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"),
            ],
            &[],
        );
    }
    run
}

/// An app built with the test deps buildpack on `run_image` into `output`.
fn build_app(dir: &Path, run_image: &str, output: &str) -> Value {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("deps.lock"), "size-mib = 1\nseed = \"w\"\n").unwrap();
    build_ok(&[
        app.to_str().unwrap(),
        "--buildpack",
        guests::test_deps(),
        "--run-image",
        run_image,
        "--output",
        output,
    ])
}

fn json(o: &Outcome) -> Value {
    serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", o.stdout, o.stderr))
}

fn property<'a>(component: &'a Value, name: &str) -> &'a Value {
    component["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .map_or(&Value::Null, |p| &p["value"])
}

/// The run-image component of an image SBOM, checked to be valid
/// CycloneDX; and the libc6 version it lists (`None`: the base's layers
/// were never on this machine to read).
fn base_of(doc_text: &str) -> (Value, Option<String>) {
    if let Some(e) = cyclonedx_errors(doc_text) {
        panic!("not valid CycloneDX 1.5: {e}\n{doc_text}");
    }
    let doc: Value = serde_json::from_str(doc_text).unwrap();
    let base = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["bom-ref"] == "run-image")
        .unwrap()
        .clone();
    let libc = base["components"].as_array().map(|packages| {
        packages.iter().find(|p| p["name"] == "libc6").unwrap()["version"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    (base, libc)
}

fn manifest_digest(layout: &Path, tag: &str) -> String {
    let raw = std::process::Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--raw"])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .output()
        .unwrap()
        .stdout;
    format!("sha256:{}", sha256_hex(&raw))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn the_sbom_of_a_rebased_image_names_the_new_base_and_a_dry_run_tells_its_digest() {
    if !have_all(TOOLS) || !have_validator() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = bases(tmp.path());
    let out = tmp.path().join("out");
    let app = format!("oci:{}:app", out.display());
    let v = |tag: &str| format!("oci:{}:{tag}", run.display());
    let built = build_app(tmp.path(), &v("v1"), &app);
    let (_, libc) = base_of(&ok(cascade().args(["inspect", "--sbom", &app])));
    assert_eq!(libc.as_deref(), Some("2.36-9+deb12u7"));
    let before = skopeo_manifest(&out, "app");

    // The dry run writes nothing and tells the digest the rebase will make.
    let dry = cascade_run(
        "rebase",
        &[
            &app,
            "--run-image",
            &v("v2"),
            "--dry-run",
            "--format",
            "json",
        ],
    );
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let dry = json(&dry);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(skopeo_manifest(&out, "app"), before, "a dry run wrote");
    let text = cascade_run("rebase", &[&app, "--run-image", &v("v2"), "--dry-run"]);
    assert!(text.stdout.starts_with("Would rebase"), "{}", text.stdout);
    assert!(text.stdout.contains(dry["new_digest"].as_str().unwrap()));

    let real = cascade_run(
        "rebase",
        &[&app, "--run-image", &v("v2"), "--format", "json"],
    );
    assert_eq!(real.code, 0, "{}", real.stderr);
    let real = json(&real);
    assert_eq!(
        real["new_digest"], dry["new_digest"],
        "the dry run's digest"
    );
    assert_eq!(manifest_digest(&out, "app"), real["new_digest"]);
    assert_ne!(real["new_digest"], built["digest"]);

    // In the image, the SBOM names v2: its digest, top layer and packages.
    let sbom_text = ok(cascade().args(["inspect", "--sbom", &app]));
    let (base, libc) = base_of(&sbom_text);
    assert_eq!(
        libc.as_deref(),
        Some("2.36-9+deb12u9"),
        "the SBOM still lists the old base"
    );
    assert_eq!(property(&base, "cascade:run-image"), v("v2").as_str());
    let v2 = skopeo_config(&run, "v2");
    assert_eq!(
        property(&base, "cascade:top-layer"),
        v2["rootfs"]["diff_ids"].as_array().unwrap().last().unwrap()
    );
    assert_eq!(
        property(&base, "cascade:run-image-digest"),
        &Value::String(manifest_digest(&run, "v2"))
    );
    let bundle = unpack(&out, "app", tmp.path());
    let in_rootfs = bundle.join("rootfs/layers/sbom/launch");
    let parse = |t: &str| serde_json::from_str::<Value>(t).unwrap();
    assert_eq!(
        parse(&std::fs::read_to_string(in_rootfs.join("sbom.cdx.json")).unwrap()),
        parse(&sbom_text)
    );
    assert!(
        in_rootfs.join("test_deps/deps/sbom.cdx.json").is_file(),
        "the buildpacks' layer SBOMs stay"
    );
    // Only the SBOM layer of the app's layers changed.
    let after = skopeo_manifest(&out, "app");
    let (old, new) = (layer_digests(&before), layer_digests(&after));
    let changed = old[old.len() - 3..]
        .iter()
        .zip(&new[new.len() - 3..])
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(changed, 1, "{old:?}\n{new:?}");
    let inspected: Value =
        serde_json::from_str(&ok(cascade().args(["inspect", "--format", "json", &app]))).unwrap();
    assert!(!inspected.to_string().contains(":v1"), "{inspected}");
    if have("oci-image-tool") {
        validate(&out, "app");
    }

    downgrade_is_refused_unless_asked(&app, &v("v1"), &out, &real);
}

/// Back onto v1 from v2: a downgrade, refused unless asked for.
fn downgrade_is_refused_unless_asked(app: &str, v1: &str, out: &Path, current: &Value) {
    let down = cascade_run("rebase", &[app, "--run-image", v1]);
    assert_eq!(down.code, 70, "{}", down.stderr);
    assert!(
        down.stderr.contains("older") && down.stderr.contains("--allow-downgrade"),
        "{}",
        down.stderr
    );
    assert_eq!(
        manifest_digest(out, "app"),
        current["new_digest"],
        "a refusal wrote"
    );
    let forced = cascade_run("rebase", &[app, "--run-image", v1, "--allow-downgrade"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    let (_, libc) = base_of(&ok(cascade().args(["inspect", "--sbom", app])));
    assert_eq!(libc.as_deref(), Some("2.36-9+deb12u7"));
}

#[test]
fn a_published_rebase_attaches_the_new_sbom_to_the_new_digest() {
    if !have_all(&["umoci", "skopeo", "docker-registry"]) || !have_validator() {
        return;
    }
    let registry = RegistryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let run = bases(tmp.path());
    for tag in ["v1", "v2"] {
        registry.push_layout(
            &format!("oci:{}:{tag}", run.display()),
            &format!("run:{tag}"),
        );
    }
    let app = registry.image("app:1");
    let app_dir = tmp.path().join("src");
    std::fs::create_dir_all(&app_dir).unwrap();
    std::fs::write(app_dir.join("deps.lock"), "size-mib = 1\nseed = \"p\"\n").unwrap();
    let built = build_ok(&[
        app_dir.to_str().unwrap(),
        "--buildpack",
        guests::test_deps(),
        "--run-image",
        &registry.image("run:v1"),
        "--publish",
        &app,
    ]);
    let rebased = cascade_run(
        "rebase",
        &[
            &app,
            "--run-image",
            &registry.image("run:v2"),
            "--format",
            "json",
        ],
    );
    assert_eq!(rebased.code, 0, "{}", rebased.stderr);
    let rebased = json(&rebased);
    let new = rebased["new_digest"].as_str().unwrap();
    assert_ne!(Some(new), built["digest"].as_str());
    assert_eq!(rebased["sbom_referrer"]["via"], "tag-fallback", "{rebased}");

    // The referrer index of the new digest lists an SBOM naming v2.
    let index = registry.inspect(
        &format!("app:sha256-{}", new.trim_start_matches("sha256:")),
        "--raw",
    );
    let artifact_digest = index["manifests"][0]["digest"].as_str().unwrap();
    assert_eq!(artifact_digest, rebased["sbom_referrer"]["digest"]);
    let artifact = registry.inspect(&format!("app@{artifact_digest}"), "--raw");
    assert_eq!(artifact["subject"]["digest"], new);
    let blob = artifact["layers"][0]["digest"].as_str().unwrap();
    let doc = reqwest::blocking::get(format!("http://{}/v2/app/blobs/{blob}", registry.host))
        .unwrap()
        .text()
        .unwrap();
    let (base, _) = base_of(&doc);
    assert_eq!(
        property(&base, "cascade:run-image"),
        registry.image("run:v2").as_str()
    );
    let v2: Value = serde_json::from_str(&ok(std::process::Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--tls-verify=false"])
        .arg(format!("docker://{}", registry.image("run:v2")))))
    .unwrap();
    assert_eq!(property(&base, "cascade:run-image-digest"), &v2["Digest"]);
    // The in-image SBOM of the new digest is the same document.
    let in_image = ok(cascade().args(["inspect", "--sbom", &app]));
    assert_eq!(
        serde_json::from_str::<Value>(&in_image).unwrap(),
        serde_json::from_str::<Value>(&doc).unwrap()
    );
    // The old digest's referrer still describes the old image.
    let old_index = registry.inspect(
        &format!(
            "app:sha256-{}",
            built["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
        ),
        "--raw",
    );
    assert_ne!(old_index["manifests"][0]["digest"], artifact_digest);
}

#[test]
fn audit_classifies_as_rebase_does_and_its_exit_codes_gate_a_pipeline() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let other = tmp.path().join("other");
    make_run_image(&run, "v1", &[], &[]);
    make_run_image(&other, "v1", &[], &[]);
    let app = fixture_app("procfile");
    let image = |name: &str| format!("oci:{}:{name}", tmp.path().join("out").display());
    for (name, base) in [("a", &run), ("b", &other)] {
        build_ok(&[
            app.to_str().unwrap(),
            "--run-image",
            &format!("oci:{}:v1", base.display()),
            "--output",
            &image(name),
        ]);
    }
    make_run_image(&run, "v2", &[("/etc/patched", "yes")], &[]);
    let v2 = format!("oci:{}:v2", run.display());
    let audit = |extra: &[&str]| {
        let mut args = vec!["--run-image", v2.as_str(), "--format", "json"];
        args.extend(extra);
        let o = cascade_run("audit", &args);
        (o.code, json(&o), o.stderr)
    };
    let (a, b) = (image("a"), image("b"));
    let (code, report, stderr) = audit(&[&a, &b]);
    assert_eq!(code, 0, "{stderr}");
    let status = |r: &Value, image: &str| {
        r["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["image"] == image)
            .unwrap_or_else(|| panic!("no {image} in {r}"))["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(status(&report, &a), "stale");
    // b was built on another repository: rebase refuses it, audit says so.
    assert_eq!(status(&report, &b), "refused", "{report}");
    assert!(
        report.to_string().contains("different repository"),
        "{report}"
    );
    let refused = cascade_run("rebase", &[&b, "--run-image", &v2]);
    assert_eq!(refused.code, 70, "{}", refused.stderr);

    let (code, _, _) = audit(&[&a, "--fail-on-stale"]);
    assert_eq!(code, 72, "stale with --fail-on-stale");
    let missing = format!("oci:{}:x", tmp.path().join("nowhere").display());
    let (code, report, _) = audit(&[&a, &missing]);
    assert_eq!(code, 73, "an image that cannot be read");
    assert_eq!(report["failed"], 1);
    assert_eq!(status(&report, &missing), "failed");

    let o = cascade_run("rebase", &[&a, "--run-image", &v2]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let (code, report, stderr) = audit(&[&a, "--fail-on-stale"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(status(&report, &a), "current");

    // A fleet with nothing in it is a mistake, not a success.
    let empty = cascade_run("rebase", &["--fleet", "--run-image", &v2]);
    assert_eq!(empty.code, 10, "{}", empty.stderr);
    assert!(empty.stderr.contains("--discover"), "{}", empty.stderr);
    let none = cascade_run("audit", &["--run-image", &v2]);
    assert_eq!(none.code, 10, "{}", none.stderr);
}

/// Every command's `--format json` matches its schema in docs/schema, and
/// a run image is the same `{reference, digest, top_layer}` everywhere.
#[test]
fn every_json_output_matches_its_schema() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = bases(tmp.path());
    let v1 = format!("oci:{}:v1", run.display());
    let v2 = format!("oci:{}:v2", run.display());
    let apps = tmp.path().join("apps");
    let image = format!("oci:{}:a", apps.display());
    let other = format!("oci:{}:b", apps.display());
    let built = build_app(tmp.path(), &v1, &image);
    assert_schema("build", &built);
    build_app(tmp.path(), &v1, &other);
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    let run_keys = ["digest", "reference", "top_layer"];
    assert_eq!(keys(&built["run_image"]), run_keys);

    let inspected = json(&cascade_run("inspect", &[&image, "--format", "json"]));
    assert_schema("inspect", &inspected);
    assert_eq!(
        inspected["run_image"]["digest"],
        built["run_image"]["digest"]
    );
    assert_eq!(inspected["digest"], built["digest"]);

    let audited = json(&cascade_run(
        "audit",
        &[&image, &other, "--run-image", &v2, "--format", "json"],
    ));
    assert_schema("audit", &audited);
    assert_eq!(keys(&audited["run_image"]), run_keys);
    assert_eq!(audited["images"][0]["run_image"], inspected["run_image"]);

    let one = json(&cascade_run(
        "rebase",
        &[&image, "--run-image", &v2, "--dry-run", "--format", "json"],
    ));
    assert_schema("rebase", &one);
    assert_eq!(one["old_run_image"], inspected["run_image"]);
    assert_eq!(keys(&one["new_run_image"]), run_keys);

    let fleet = json(&cascade_run(
        "rebase",
        &[
            "--fleet",
            &image,
            &other,
            "--run-image",
            &v2,
            "--format",
            "json",
        ],
    ));
    assert_schema("rebase-fleet", &fleet);
    assert_eq!(fleet["summary"]["rebased"], 2, "{fleet}");
    assert_eq!(fleet["run_image"], one["new_run_image"], "both saw one v2");
    assert_eq!(fleet["images"][0]["run_image"], one["new_run_image"]);

    let builder = json(&cascade_run("builder", &["inspect", "--format", "json"]));
    assert_schema("builder-inspect", &builder);
}
