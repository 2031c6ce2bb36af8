//! The fetch capability: declared by the buildpack, granted by the
//! platform, downloaded over loopback HTTP, verified, cached, bounded, and
//! refused with a message that says how to grant it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::guests;
use cascade_lifecycle::oci::Digest;
use serde_json::Value;

use crate::support::*;

fn app(dir: &Path, entries: &[(String, String, &str)]) -> PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    let mut text = String::new();
    for (url, sha, dest) in entries {
        let _ = write!(
            text,
            "[[fetch]]\nurl = \"{url}\"\nsha256 = \"{sha}\"\ndest = \"{dest}\"\n\n"
        );
    }
    std::fs::write(app.join("fetch.toml"), text).unwrap();
    app
}

fn fetch_build(cache: &Path, app: &Path, out: &str, extra: &[&str]) -> Outcome {
    let app = app.to_str().unwrap();
    let mut args = vec![app, "--output", out, "--buildpack", guests::test_fetcher()];
    args.extend(["--format", "json"]);
    args.extend(extra);
    build_in(cache, &args)
}

const RUNTIME: &[u8] = b"pretend this is a node runtime tarball\n";

#[test]
fn a_granted_fetch_downloads_verifies_caches_and_works_offline() {
    let server = serve(vec![("/rt.tar.gz", RUNTIME.to_vec())]);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let url = format!("http://127.0.0.1:{}/rt.tar.gz", server.port);
    let sha = Digest::of(RUNTIME).hex().to_owned();
    let app = app(tmp.path(), &[(url.clone(), sha, "node/rt.tar.gz")]);
    let out = format!("oci:{}/out:v1", tmp.path().display());

    let first = fetch_build(&cache, &app, &out, &["--allow", "fetch:127.0.0.1"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let report: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(report["capabilities"][0]["capability"], "fetch:127.0.0.1");
    assert_eq!(report["capabilities"][0]["buildpack"], "test/fetcher");
    assert_eq!(report["capabilities"][0]["allowed"], true);
    assert!(
        first.stderr.contains("test/fetcher used fetch:127.0.0.1"),
        "{}",
        first.stderr
    );
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    if have("umoci") {
        let bundle = unpack(&tmp.path().join("out"), "v1", tmp.path());
        let got = std::fs::read(bundle.join("rootfs/layers/test_fetcher/downloads/node/rt.tar.gz"))
            .unwrap();
        assert_eq!(got, RUNTIME);
    }

    // Second build: from the cache, even offline; the server sees nothing.
    let second = fetch_build(
        &cache,
        &app,
        &out,
        &["--allow", "fetch:127.0.0.1", "--offline"],
    );
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("from the cache"),
        "{}",
        second.stderr
    );
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    let digest = |o: &Outcome| serde_json::from_str::<Value>(&o.stdout).unwrap()["digest"].clone();
    assert_eq!(digest(&first), digest(&second));

    // Offline with an empty cache: a clear error, no request.
    let cold = fetch_build(
        &tmp.path().join("cold"),
        &app,
        &out,
        &["--allow", "fetch:127.0.0.1", "--offline"],
    );
    assert_eq!(cold.code, 51, "{}", cold.stderr);
    assert!(cold.stderr.contains("--offline"), "{}", cold.stderr);
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
}

#[test]
fn fetches_the_platform_or_the_buildpack_did_not_allow_are_refused() {
    let server = serve(vec![("/rt.tar.gz", RUNTIME.to_vec())]);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let sha = Digest::of(RUNTIME).hex().to_owned();
    let out = format!("oci:{}/out:v1", tmp.path().display());
    let url = format!("http://127.0.0.1:{}/rt.tar.gz", server.port);
    let granted_app = app(
        &tmp.path().join("a"),
        &[(url.clone(), sha.clone(), "rt.tgz")],
    );

    // Declared but not granted: names the buildpack and how to grant it.
    let o = fetch_build(&cache, &granted_app, &out, &[]);
    assert_eq!(o.code, 51, "{}", o.stderr);
    assert!(
        o.stderr.contains("test/fetcher") && o.stderr.contains("--allow fetch:127.0.0.1"),
        "{}",
        o.stderr
    );
    // --deny-all wins over --allow.
    let o = fetch_build(
        &cache,
        &granted_app,
        &out,
        &["--allow", "fetch:*", "--deny-all"],
    );
    assert_eq!(o.code, 51, "{}", o.stderr);

    // Granted by the platform but not declared by the buildpack.
    let undeclared = format!("http://localhost:{}/rt.tar.gz", server.port);
    let other = app(
        &tmp.path().join("b"),
        &[(undeclared, sha.clone(), "rt.tgz")],
    );
    let o = fetch_build(&cache, &other, &out, &["--allow", "fetch:*"]);
    assert_eq!(o.code, 51, "{}", o.stderr);
    assert!(o.stderr.contains("does not declare"), "{}", o.stderr);
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        0,
        "nothing was downloaded"
    );

    // A wrong digest: refused, and nothing lands in the cache.
    let wrong = app(
        &tmp.path().join("c"),
        &[(url.clone(), "0".repeat(64), "rt.tgz")],
    );
    let o = fetch_build(&cache, &wrong, &out, &["--allow", "fetch:127.0.0.1"]);
    assert_eq!(o.code, 51, "{}", o.stderr);
    assert!(o.stderr.contains("sha256 mismatch"), "{}", o.stderr);
    let cached = std::fs::read_dir(cache.join("fetch")).map_or(0, Iterator::count);
    assert_eq!(cached, 0);

    // Over the size limit.
    let big = vec![7u8; 2 << 20];
    let big_server = serve(vec![("/big", big.clone())]);
    let big_url = format!("http://127.0.0.1:{}/big", big_server.port);
    let big_app = app(
        &tmp.path().join("d"),
        &[(big_url, Digest::of(&big).hex().to_owned(), "big")],
    );
    let o = fetch_build(
        &cache,
        &big_app,
        &out,
        &["--allow", "fetch:127.0.0.1", "--fetch-max-mib", "1"],
    );
    assert_eq!(o.code, 51, "{}", o.stderr);
    assert!(o.stderr.contains("fetch limit"), "{}", o.stderr);

    // A destination outside the buildpack's layers.
    let escape = app(&tmp.path().join("e"), &[(url, sha, "../../../escape")]);
    let o = fetch_build(&cache, &escape, &out, &["--allow", "fetch:127.0.0.1"]);
    assert_eq!(o.code, 51, "{}", o.stderr);
    assert!(o.stderr.contains("no .."), "{}", o.stderr);
    assert!(!tmp.path().join("escape").exists());
}

/// A gzipped tar whose names are written raw, so hostile ones get through.
fn tar_gz(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        if !link.is_empty() {
            h.as_gnu_mut().unwrap().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&b.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

fn app_unpacking(dir: &Path, url: &str, bytes: &[u8], max_bytes: u64) -> PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("fetch.toml"),
        format!(
            "[[fetch]]\nurl = \"{url}\"\nsha256 = \"{}\"\ndest = \"rt.tar.gz\"\nunpack = \"runtime\"\nmax-bytes = {max_bytes}\n",
            Digest::of(bytes).hex()
        ),
    )
    .unwrap();
    app
}

#[test]
fn fetched_archives_unpack_inside_the_layer_and_hostile_ones_are_refused() {
    use tar::EntryType as T;
    let good = tar_gz(&[
        ("bin/", T::Directory, "", b""),
        ("bin/node", T::Regular, "", b"#!/bin/sh\necho node\n"),
        ("lib/npm-cli.js", T::Regular, "", b"cli"),
        ("bin/npm", T::Symlink, "../lib/npm-cli.js", b""),
    ]);
    let traversal = tar_gz(&[("../../../../escaped", T::Regular, "", b"x")]);
    let absolute = tar_gz(&[("/tmp/cascade-absolute-escape", T::Regular, "", b"x")]);
    let link_out = tar_gz(&[("etc", T::Symlink, "/etc", b"")]);
    let bomb = tar_gz(&[("zeros", T::Regular, "", &vec![0u8; 16 << 20])]);
    let server = serve(vec![
        ("/good.tar.gz", good.clone()),
        ("/traversal.tar.gz", traversal.clone()),
        ("/absolute.tar.gz", absolute.clone()),
        ("/link.tar.gz", link_out.clone()),
        ("/bomb.tar.gz", bomb.clone()),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let grant = ["--allow", "fetch:127.0.0.1"];
    let url = |p: &str| format!("http://127.0.0.1:{}/{p}", server.port);

    let app = app_unpacking(
        &tmp.path().join("good"),
        &url("good.tar.gz"),
        &good,
        1 << 20,
    );
    let out = format!("oci:{}/out:v1", tmp.path().display());
    let o = fetch_build(&cache, &app, &out, &grant);
    assert_eq!(o.code, 0, "{}", o.stderr);
    if have("umoci") {
        let bundle = unpack(&tmp.path().join("out"), "v1", tmp.path());
        let rt = bundle.join("rootfs/layers/test_fetcher/downloads/runtime");
        assert_eq!(std::fs::read(rt.join("bin/npm")).unwrap(), b"cli");
        assert_eq!(
            std::fs::read_link(rt.join("bin/npm")).unwrap(),
            Path::new("../lib/npm-cli.js")
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(rt.join("bin/node"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o111, 0o111, "bin/node is executable");
    }

    for (name, bytes, says) in [
        ("traversal.tar.gz", &traversal, "climbing out"),
        ("absolute.tar.gz", &absolute, "absolute"),
        ("link.tar.gz", &link_out, "outside the destination"),
        ("bomb.tar.gz", &bomb, "archive bomb"),
    ] {
        let app = app_unpacking(&tmp.path().join(name), &url(name), bytes, 1 << 20);
        let o = fetch_build(&cache, &app, &out, &grant);
        assert_eq!(o.code, 51, "{name}: {}", o.stderr);
        assert!(
            o.stderr.contains(says) && o.stderr.contains("test/fetcher"),
            "{name}: {}",
            o.stderr
        );
    }
    assert!(!Path::new("/tmp/cascade-absolute-escape").exists());
    assert!(!tmp.path().join("escaped").exists());
}

#[test]
fn an_archive_unpacks_with_its_top_directory_stripped() {
    use tar::EntryType as T;
    let release = tar_gz(&[
        ("node-v22.1.0-linux-x64/", T::Directory, "", b""),
        ("node-v22.1.0-linux-x64/bin/", T::Directory, "", b""),
        (
            "node-v22.1.0-linux-x64/bin/node",
            T::Regular,
            "",
            b"#!/bin/sh\n",
        ),
        ("node-v22.1.0-linux-x64/LICENSE", T::Regular, "", b"MIT"),
        ("README-outside-the-top-dir", T::Regular, "", b"dropped"),
    ]);
    let server = serve(vec![("/node.tar.gz", release.clone())]);
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("fetch.toml"),
        format!(
            "[[fetch]]\nurl = \"http://127.0.0.1:{}/node.tar.gz\"\nsha256 = \"{}\"\ndest = \"node.tar.gz\"\nunpack = \"runtime\"\nstrip-components = 1\n",
            server.port,
            Digest::of(&release).hex()
        ),
    )
    .unwrap();
    let out = format!("oci:{}/out:v1", tmp.path().display());
    let o = fetch_build(
        &tmp.path().join("cache"),
        &app,
        &out,
        &["--allow", "fetch:127.0.0.1"],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    if !have("umoci") {
        return;
    }
    let bundle = unpack(&tmp.path().join("out"), "v1", tmp.path());
    let rt = bundle.join("rootfs/layers/test_fetcher/downloads/runtime");
    assert_eq!(std::fs::read(rt.join("bin/node")).unwrap(), b"#!/bin/sh\n");
    assert_eq!(std::fs::read(rt.join("LICENSE")).unwrap(), b"MIT");
    let mut names: Vec<String> = std::fs::read_dir(&rt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // No staging dir left behind, nothing from above the stripped level.
    assert_eq!(names, ["LICENSE", "bin"]);
}
