//! The same inputs give the same image digest, whatever the directory, the
//! clock, file mtimes or the cache.

use std::path::Path;
use std::process::Command;

use crate::support::*;

fn copy_app(from: &Path, to: &Path, mtime: &str) {
    ok(Command::new("cp").arg("-r").arg(from).arg(to));
    // Every file and dir gets the same odd mtime, different per copy.
    ok(Command::new("find")
        .arg(to)
        .args(["-exec", "touch", "-h", "-d", mtime, "{}", "+"]));
}

#[test]
fn two_copies_built_at_different_times_give_one_digest() {
    let have_busybox = have("umoci");
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    for app in ["procfile", "static-site", "ca-certs"] {
        let (a, b) = (one.path().join(app), two.path().join(app));
        copy_app(&fixture_app(app), &a, "2001-02-03 04:05:06");
        copy_app(&fixture_app(app), &b, "2024-12-31 23:59:59");
        std::fs::set_permissions(
            b.join("."),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let mut args_a = vec![
            a.to_str().unwrap().to_string(),
            "--output".into(),
            format!("oci:{}/out-{app}:x", one.path().display()),
            // The run image's httpd: nothing downloaded.
            "--env".into(),
            "BP_STATIC_SERVER=busybox".into(),
        ];
        let mut args_b = vec![
            b.to_str().unwrap().to_string(),
            "--output".into(),
            format!("oci:{}/elsewhere/out:y", two.path().display()),
            "--env".into(),
            "BP_STATIC_SERVER=busybox".into(),
        ];
        if have_busybox {
            for args in [&mut args_a, &mut args_b] {
                args.extend(["--run-image".into(), busybox_run_image().into()]);
            }
        }
        let ra = build_ok(&args_a.iter().map(String::as_str).collect::<Vec<_>>());
        std::thread::sleep(std::time::Duration::from_millis(1100));
        // A cold cache for the second build: compiled code must not leak into the image.
        let cache = tempfile::tempdir().unwrap();
        let o = run(cascade()
            .env("CASCADE_CACHE_DIR", cache.path())
            .arg("build")
            .args(&args_b)
            .args(["--format", "json"]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let rb: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(ra["digest"], rb["digest"], "{app}: digests differ");
        assert_eq!(ra["layers"], rb["layers"], "{app}: layers differ");
    }
}

#[test]
fn source_date_epoch_sets_created_only() {
    let tmp = tempfile::tempdir().unwrap();
    let app = fixture_app("procfile");
    let build = |tag: &str, epoch: Option<&str>| {
        let mut cmd = cascade();
        if let Some(e) = epoch {
            cmd.env("SOURCE_DATE_EPOCH", e);
        }
        let o = run(cmd.arg("build").arg(&app).args([
            "--output",
            &format!("oci:{}/o:{tag}", tmp.path().display()),
            "--format",
            "json",
        ]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let plain = build("a", None);
    let dated = build("b", Some("1700000000"));
    assert_ne!(plain["digest"], dated["digest"]);
    assert_eq!(
        plain["layers"], dated["layers"],
        "layer bytes must not depend on SOURCE_DATE_EPOCH"
    );
    if have("skopeo") {
        let config = skopeo_config(&tmp.path().join("o"), "b");
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    }
}
