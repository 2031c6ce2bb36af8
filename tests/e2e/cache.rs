//! The build cache: an unchanged rebuild reuses every layer, a change
//! rebuilds only what depends on it, a damaged cache is rebuilt and never
//! used, and concurrent builds sharing a cache dir both succeed.

use std::path::{Path, PathBuf};

use crate::guests;
use serde_json::Value;

use crate::support::*;

/// An app for the `test/deps` buildpack, plus a file the buildpack ignores.
fn deps_app(dir: &Path, seed: &str) -> PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("deps.lock"),
        format!("size-mib = 3\nseed = \"{seed}\"\n"),
    )
    .unwrap();
    std::fs::write(app.join("main.txt"), "version one\n").unwrap();
    app
}

struct Built {
    report: Value,
    stderr: String,
}

impl Built {
    fn digest(&self) -> &str {
        self.report["digest"].as_str().unwrap()
    }

    /// Layer name -> reused?
    fn reused(&self) -> Vec<(String, bool)> {
        self.report["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["name"].as_str().unwrap().to_owned(),
                    l["reused"].as_bool().unwrap(),
                )
            })
            .collect()
    }

    fn reused_layer(&self, name: &str) -> bool {
        self.reused()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no layer {name} in {:?}", self.reused()))
            .1
    }
}

#[track_caller]
fn build_with(cache: &Path, app: &Path, output: &str, extra: &[&str]) -> Built {
    let app = app.to_str().unwrap();
    let mut args = vec![app, "--output", output, "--buildpack", guests::test_deps()];
    args.extend(["--format", "json"]);
    args.extend(extra);
    let out = build_in(cache, &args);
    assert_eq!(out.code, 0, "build failed:\n{}", out.stderr);
    Built {
        report: serde_json::from_str(&out.stdout).unwrap(),
        stderr: out.stderr,
    }
}

#[test]
fn a_rebuild_with_no_change_reuses_every_layer_and_gives_the_same_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let app = deps_app(tmp.path(), "one");
    let output = format!("oci:{}/out:v1", tmp.path().display());

    let cold = build_with(&cache, &app, &output, &[]);
    assert!(cold.reused().iter().all(|(_, r)| !r), "{:?}", cold.reused());
    assert!(cold.stderr.contains("built deps"), "{}", cold.stderr);

    let warm = build_with(&cache, &app, &output, &[]);
    assert_eq!(warm.digest(), cold.digest());
    let reused = warm.reused();
    assert_eq!(reused.len(), 4, "deps, runtime, sbom, app: {reused:?}");
    assert!(reused.iter().all(|(_, r)| *r), "{reused:?}");
    for layer in ["deps", "toolchain", "runtime"] {
        assert!(
            warm.stderr.contains(&format!("reused {layer}")),
            "{layer} was not offered back:\n{}",
            warm.stderr
        );
    }
    // The launch-only layer came back without files, yet its env is whole.
    if have("skopeo") {
        let config = skopeo_config(&tmp.path().join("out"), "v1");
        let env = config["config"]["Env"].to_string();
        assert!(env.contains("RUNTIME_VERSION=2.1"), "{env}");
        assert!(env.contains("PATH=/layers/test_deps/deps/bin"), "{env}");
    }

    // A cold build elsewhere, with another cache, agrees byte for byte.
    let other = tempfile::tempdir().unwrap();
    let app2 = deps_app(other.path(), "one");
    let fresh = build_with(
        &other.path().join("cache"),
        &app2,
        &format!("oci:{}/o:x", other.path().display()),
        &[],
    );
    assert_eq!(fresh.digest(), cold.digest());
    if have("oci-image-tool") {
        validate(&tmp.path().join("out"), "v1");
    }
}

#[test]
fn changing_one_file_rebuilds_only_what_depends_on_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let app = deps_app(tmp.path(), "one");
    let output = format!("oci:{}/out:v1", tmp.path().display());
    let first = build_with(&cache, &app, &output, &[]);

    // An app file the buildpack ignores: only the app layer is new.
    std::fs::write(app.join("main.txt"), "version two\n").unwrap();
    let second = build_with(&cache, &app, &output, &[]);
    assert!(!second.reused_layer("app"));
    assert!(second.reused_layer("test/deps:deps"));
    assert!(second.reused_layer("test/deps:runtime"));
    assert_ne!(second.digest(), first.digest());

    // The lockfile: deps is rebuilt, the others stay.
    std::fs::write(app.join("deps.lock"), "size-mib = 3\nseed = \"two\"\n").unwrap();
    let third = build_with(&cache, &app, &output, &[]);
    assert!(!third.reused_layer("test/deps:deps"));
    assert!(third.reused_layer("test/deps:runtime"));
    assert!(!third.reused_layer("app"), "deps.lock is in the app layer");
    assert!(third.stderr.contains("built deps"), "{}", third.stderr);
    assert!(
        third.stderr.contains("reused toolchain"),
        "{}",
        third.stderr
    );

    // And --clear-cache forgets everything.
    let cleared = build_with(&cache, &app, &output, &["--clear-cache"]);
    assert!(cleared.reused().iter().all(|(_, r)| !r));
    assert_eq!(cleared.digest(), third.digest());
}

/// The one directory under `<cache>/images/`.
fn image_cache(cache: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cache.join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

#[test]
fn a_corrupted_cache_layer_is_rebuilt_never_used() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let app = deps_app(tmp.path(), "one");
    let output = format!("oci:{}/out:v1", tmp.path().display());
    let cold = build_with(&cache, &app, &output, &[]);

    // Flip bytes in a cached dependency, keeping its size.
    let part = image_cache(&cache).join("layers/test_deps/deps/lib/part-0001.so");
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[100] ^= 0xff;
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&part, &bytes).unwrap();

    let after = build_with(&cache, &app, &output, &[]);
    assert!(
        after.stderr.contains("does not match its fingerprint"),
        "{}",
        after.stderr
    );
    assert!(after.stderr.contains("built deps"), "{}", after.stderr);
    assert!(!after.reused_layer("test/deps:deps"));
    assert_eq!(after.digest(), cold.digest(), "the rebuilt layer is whole");

    // A damaged record: everything is rebuilt, nothing trusted.
    let record = image_cache(&cache).join("record.json");
    let text = std::fs::read_to_string(&record).unwrap();
    std::fs::write(
        &record,
        text.replace("\"launch\": true", "\"launch\": false"),
    )
    .unwrap();
    let again = build_with(&cache, &app, &output, &[]);
    assert!(again.stderr.contains("is damaged"), "{}", again.stderr);
    assert!(
        again.reused().iter().all(|(_, r)| !r),
        "{:?}",
        again.reused()
    );
    assert_eq!(again.digest(), cold.digest());
}

#[test]
fn a_damaged_blob_of_the_previous_image_is_rewritten_never_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let app = deps_app(tmp.path(), "one");
    let output = format!("oci:{}/out:v1", tmp.path().display());
    let cold = build_with(&cache, &app, &output, &[]);

    // Flip a byte of the app layer's blob in the output layout, keeping its
    // size: reusing it would give an image whose layer fails its digest.
    let app_layer = cold.report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "app")
        .unwrap();
    let digest = app_layer["digest"].as_str().unwrap();
    let blob = tmp
        .path()
        .join("out/blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();

    let after = build_with(&cache, &app, &output, &[]);
    assert!(
        after.stderr.contains("changed since the last build"),
        "{}",
        after.stderr
    );
    assert!(!after.reused_layer("app"));
    assert!(after.reused_layer("test/deps:deps"));
    assert_eq!(after.digest(), cold.digest());
    let whole = cascade_lifecycle::oci::Digest::of(&std::fs::read(&blob).unwrap());
    assert_eq!(whole.to_string(), digest, "the blob was written again");
    validate(&tmp.path().join("out"), "v1");
}

#[test]
fn two_concurrent_builds_with_one_cache_dir_both_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let app = deps_app(tmp.path(), "one");
    let same = format!("oci:{}/same:v1", tmp.path().display());
    let other = format!("oci:{}/other:v1", tmp.path().display());
    // Warm the shared cache, then race: two builds of one image (they take
    // turns on its lock) and one of another image (it does not wait).
    let first = build_with(&cache, &app, &same, &[]);
    let handles: Vec<_> = [same.clone(), same, other]
        .into_iter()
        .map(|output| {
            let (cache, app) = (cache.clone(), app.clone());
            std::thread::spawn(move || build_with(&cache, &app, &output, &[]))
        })
        .collect();
    for h in handles {
        let built = h.join().expect("a concurrent build failed");
        assert_eq!(built.digest(), first.digest());
    }
    // The cache is still whole: one more build reuses everything.
    let last = build_with(
        &cache,
        &app,
        &format!("oci:{}/same:v1", tmp.path().display()),
        &[],
    );
    assert!(last.reused().iter().all(|(_, r)| *r), "{:?}", last.reused());
    if have("oci-image-tool") {
        validate(&tmp.path().join("same"), "v1");
        validate(&tmp.path().join("other"), "v1");
    }
}

/// oci-image-tool 1.0.0-rc1 and umoci 0.4.7 predate image-spec 1.1, which
/// added tar+zstd; skopeo (containers/image) reads it. A zstd image is
/// decoded by skopeo into a gzip copy that the older tools then check.
fn readable_layout(layout: &Path, compression: &str) -> PathBuf {
    if compression != "zstd" {
        return layout.to_path_buf();
    }
    let copy = layout.with_extension("as-gzip");
    ok(std::process::Command::new("skopeo")
        .args(["--insecure-policy", "copy", "-q", "--dest-compress"])
        .args(["--dest-compress-format", "gzip"])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("oci:{}:v1", copy.display())));
    copy
}

fn validate_any(layout: &Path, compression: &str) {
    validate(&readable_layout(layout, compression), "v1");
}

#[test]
fn zstd_and_uncompressed_layers_are_valid_images() {
    if !have_all(&["oci-image-tool", "umoci", "skopeo"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let app = deps_app(tmp.path(), "one");
    let mut diff_ids = Vec::new();
    for c in ["gzip", "zstd", "none"] {
        let layout = tmp.path().join(c);
        let output = format!("oci:{}:v1", layout.display());
        let built = build_with(&cache, &app, &output, &["--layer-compression", c]);
        let reused: Vec<_> = built.reused();
        assert!(reused.iter().all(|(_, r)| !r), "{c}: {reused:?}");
        validate_any(&layout, c);
        let manifest = skopeo_manifest(&layout, "v1");
        let media: Vec<&str> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["mediaType"].as_str().unwrap())
            .collect();
        let want = match c {
            "gzip" => "application/vnd.oci.image.layer.v1.tar+gzip",
            "zstd" => "application/vnd.oci.image.layer.v1.tar+zstd",
            _ => "application/vnd.oci.image.layer.v1.tar",
        };
        assert!(media.iter().all(|m| *m == want), "{c}: {media:?}");
        let readable = readable_layout(&layout, c);
        let bundle = unpack(&readable, "v1", &tmp.path().join(format!("{c}-bundle")));
        assert_eq!(
            std::fs::read(bundle.join("rootfs/layers/test_deps/deps/lib/part-0002.so"))
                .unwrap()
                .len(),
            1 << 20
        );
        diff_ids.push(skopeo_config(&layout, "v1")["rootfs"]["diff_ids"].clone());
    }
    assert_eq!(diff_ids[0], diff_ids[1], "the tar inside does not change");
    assert_eq!(diff_ids[0], diff_ids[2]);
}

/// Name, inode and mtime of every blob in a layout: a blob written again
/// (even with the same bytes) shows as another inode or mtime.
fn blob_files(layout: &Path) -> Vec<(String, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt as _;
    let dir = layout.join("blobs/sha256");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                m.ino(),
                m.mtime(),
                m.mtime_nsec(),
            )
        })
        .collect();
    out.sort();
    out
}

fn workspace_counts(b: &Built) -> (u64, u64, u64) {
    let w = &b.report["workspace"];
    (
        w["copied_files"].as_u64().unwrap(),
        w["kept_files"].as_u64().unwrap(),
        w["removed"].as_u64().unwrap(),
    )
}

/// App files changed less than a second or two before a build are copied
/// again by the next one (their timestamps could still move within the same
/// tick); these tests want files that have settled.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(2100));
}

#[test]
fn a_no_op_rebuild_copies_no_app_file_and_writes_no_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let app = deps_app(tmp.path(), "one");
    std::fs::create_dir_all(app.join("src/deep")).unwrap();
    std::fs::write(app.join("src/deep/lib.txt"), "a library\n").unwrap();
    std::os::unix::fs::symlink("deep/lib.txt", app.join("src/link")).unwrap();
    settle();
    let output = format!("oci:{}/out:v1", tmp.path().display());

    let cold = build_with(&cache, &app, &output, &[]);
    assert_eq!(workspace_counts(&cold), (3, 0, 0), "{}", cold.report);
    let blobs = blob_files(&tmp.path().join("out"));

    let warm = build_with(&cache, &app, &output, &[]);
    assert_eq!(warm.digest(), cold.digest());
    assert_eq!(workspace_counts(&warm), (0, 3, 0), "{}", warm.report);
    assert_eq!(warm.report["workspace"]["copied_bytes"], 0);
    assert!(warm.reused_layer("app"));
    assert_eq!(
        blob_files(&tmp.path().join("out")),
        blobs,
        "a no-op rebuild wrote a blob"
    );

    // One changed file is the one copied; a removed one is removed.
    std::fs::write(app.join("main.txt"), "version two\n").unwrap();
    std::fs::remove_file(app.join("src/deep/lib.txt")).unwrap();
    let changed = build_with(&cache, &app, &output, &[]);
    assert_eq!(workspace_counts(&changed), (1, 1, 1), "{}", changed.report);
    assert!(!changed.reused_layer("app"));

    // Whatever the kept copy went through, the image is a fresh build's.
    let other = tempfile::tempdir().unwrap();
    let app2 = other.path().join("app");
    copy_dir(&app, &app2);
    let fresh = build_with(
        &other.path().join("cache"),
        &app2,
        &format!("oci:{}/o:x", other.path().display()),
        &[],
    );
    assert_eq!(fresh.digest(), changed.digest());
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn what_a_buildpack_did_to_the_kept_workspace_never_reaches_the_next_build() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("hostile.txt"), "build:edit-workspace\n").unwrap();
    std::fs::write(app.join("main.txt"), "version one\n").unwrap();
    std::fs::write(app.join("Procfile"), "web: /bin/true\n").unwrap();
    settle();
    let output = format!("oci:{}/out:v1", tmp.path().display());
    let build = |extra: &[&str]| {
        let mut args = vec![
            app.to_str().unwrap(),
            "--output",
            &output,
            "--buildpack",
            guests::test_hostile(),
            "--format",
            "json",
        ];
        args.extend(extra);
        let out = build_in(&cache, &args);
        assert_eq!(out.code, 0, "build failed:\n{}", out.stderr);
        Built {
            report: serde_json::from_str(&out.stdout).unwrap(),
            stderr: out.stderr,
        }
    };
    // The buildpack rewrites main.txt in the workspace (same size, mtime
    // put back) and plants a file; both are in this image's app layer.
    let edited = build(&[]);
    assert_eq!(workspace_counts(&edited).0, 3, "{}", edited.stderr);

    // Now the app asks it to behave: the rewritten copy is copied again
    // (its inode's ctime moved) and the planted file removed.
    std::fs::write(app.join("hostile.txt"), "build:ok\n").unwrap();
    let next = build(&[]);
    assert_eq!(workspace_counts(&next), (2, 1, 1), "{}", next.report);

    let other = tempfile::tempdir().unwrap();
    let app2 = other.path().join("app");
    copy_dir(&app, &app2);
    let out2 = format!("oci:{}/o:x", other.path().display());
    let args = [
        app2.to_str().unwrap(),
        "--output",
        &out2,
        "--buildpack",
        guests::test_hostile(),
        "--format",
        "json",
    ];
    let fresh = build_in(&other.path().join("cache"), &args);
    assert_eq!(fresh.code, 0, "{}", fresh.stderr);
    let fresh: Value = serde_json::from_str(&fresh.stdout).unwrap();
    assert_eq!(fresh["digest"].as_str().unwrap(), next.digest());
}
