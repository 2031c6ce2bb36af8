//! Against a real registry (`docker-registry` on 127.0.0.1): run images
//! pulled from it, images published to it with cross-repository mounts, and
//! a rebase that moves manifests and configs only.

use std::process::Command;

use serde_json::Value;

use crate::support::*;

const TOOLS: &[&str] = &["docker-registry", "skopeo", "umoci", "bwrap"];

/// A registry holding `run:v1` (busybox), and `app:v1` built on it.
fn published() -> (RegistryServer, tempfile::TempDir, Value) {
    publish_on(RegistryServer::start())
}

/// `run:v1` (busybox) pushed to `registry`, and `app:v1` built on it.
fn publish_on(registry: RegistryServer) -> (RegistryServer, tempfile::TempDir, Value) {
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
        report["digest"].as_str().unwrap(),
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

/// The registry's access log of one rebase from `run:v1` to `run:v2` of
/// `app:v1`, whose manifest was `before`: each request it needs, no more.
fn only_the_requests_a_rebase_needs(registry: &RegistryServer, during: &[String], before: &Value) {
    let count = |what: &str| during.iter().filter(|l| l.contains(what)).count();
    // An open registry is asked for a challenge once per process, not
    // before every request (oci-client's habit, which doubled them).
    assert_eq!(count("\"GET /v2/ HTTP"), 1, "pings of /v2/: {during:#?}");
    // Blobs go up as one POST + PUT each, never chunked; and the rebase
    // makes exactly its 20 round trips (21 when the app's small SBOM layer
    // is not in the blob cache, and is read): a ping, 2 manifests and 2
    // configs read, 1 mount, SBOM layer and config up (2 + 2), the
    // manifest, then the SBOM referrer: its document (2), the empty
    // config's HEAD, the referrers probe with its tag fallback (2), its
    // manifest, the probe again (2) and the fallback tag.
    assert_eq!(count("\"PATCH "), 0, "a chunked upload: {during:#?}");
    let sbom_read = usize::from(
        layer_digests(before)
            .iter()
            .any(|d| count(&format!("\"GET /v2/app/blobs/{d}")) > 0),
    );
    assert_eq!(during.len(), 20 + sbom_read, "requests: {during:#?}");
    // The only HEAD is of the empty config (`{}`), which is usually there:
    // no blob the replaced manifest names is asked for or mounted (the
    // registry holds them), nor a config or SBOM that is new anyway.
    let empty = format!("sha256:{}", sha256_hex("{}"));
    assert_eq!(count("\"HEAD "), 1, "HEADs: {during:#?}");
    assert_eq!(count(&format!("\"HEAD /v2/app/blobs/{empty}")), 1);
    let old_layers = layer_digests(before);
    for d in &old_layers {
        assert_eq!(
            count(&format!("mount={}", d.replace(':', "%3A"))),
            0,
            "{d} is in the old manifest, yet was mounted: {during:#?}"
        );
    }
    let new_base = layer_digests(&registry.inspect("run:v2", "--raw"))
        .into_iter()
        .filter(|d| !old_layers.contains(d))
        .count();
    // The tag moves last: every mount and both uploads (SBOM layer and
    // config) are done before the manifest goes up.
    let tag = during
        .iter()
        .position(|l| l.contains("\"PUT /v2/app/manifests/v1 "))
        .expect("the manifest push");
    let (earlier, _) = during.split_at(tag);
    let done_before = |what: &str| earlier.iter().filter(|l| l.contains(what)).count();
    assert_eq!(
        count("?mount="),
        new_base,
        "one mount per new base layer: {during:#?}"
    );
    assert_eq!(done_before("?mount="), new_base, "{during:#?}");
    assert_eq!(
        done_before("\"PUT /v2/app/blobs/uploads/"),
        2,
        "{during:#?}"
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
    let sbom = sbom_layer_from_top(&registry.inspect("app:v1", "--config"));
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
    only_the_requests_a_rebase_needs(&registry, &during, &before);
    // Reading the app's config is expected (configs move), and its small
    // SBOM layer (rewritten to name the new base); its other layers never.
    let app_layer_gets = without(&layer_digests(&before), sbom)
        .iter()
        .filter(|d| {
            during
                .iter()
                .any(|l| l.contains("\"GET /v2/") && l.contains(d.as_str()))
        })
        .count();
    assert_eq!(
        app_layer_gets, 0,
        "an app layer was downloaded: {during:#?}"
    );

    let after = registry.inspect("app:v1", "--raw");
    only_config_and_sbom_uploaded(&registry, &during, &after, sbom, &report);
    let base = layer_digests(&registry.inspect("run:v2", "--raw"));
    let (old, new) = (layer_digests(&before), layer_digests(&after));
    assert_eq!(new[..base.len()], base[..]);
    assert_eq!(
        without(&new[base.len()..], sbom),
        without(&old[old.len() - (new.len() - base.len())..], sbom),
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

/// The uploads of a rebase are the new config, the rewritten SBOM layer and
/// the SBOM document of its referrer, nothing else. Uploads end with a PUT
/// naming the digest (chunked uploads show PATCHes too, so the PUTs are
/// what count).
fn only_config_and_sbom_uploaded(
    registry: &RegistryServer,
    during: &[String],
    after: &Value,
    sbom: usize,
    report: &Value,
) {
    let uploaded: Vec<String> = during
        .iter()
        .filter(|l| l.contains("\"PUT /v2/app/blobs/uploads"))
        .filter_map(|l| {
            l.split("digest=sha256%3A")
                .nth(1)
                .map(|d| format!("sha256:{}", &d[..64]))
        })
        .collect();
    let layers = after["layers"].as_array().unwrap();
    let referrer = registry.inspect(
        &format!(
            "app@{}",
            report["sbom_referrer"]["digest"].as_str().unwrap()
        ),
        "--raw",
    );
    let expected = [
        &after["config"]["digest"],
        &layers[layers.len() - 1 - sbom]["digest"],
        &referrer["layers"][0]["digest"],
    ]
    .map(|d| d.as_str().unwrap().to_owned());
    assert_eq!(
        uploaded.len(),
        3,
        "the new config, the SBOM layer and the SBOM document, nothing else: {during:#?}"
    );
    for d in &expected {
        assert!(uploaded.contains(d), "{d} was not uploaded: {during:#?}");
    }
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// `app:v1` copied to `n` images in five repositories, and a patched
/// `run:v2` next to the `run:v1` they are built on.
fn fleet_of(n: usize) -> (RegistryServer, tempfile::TempDir) {
    let (registry, tmp, _) = published();
    for i in 0..n {
        registry.copy("app:v1", &format!("team-{}/svc:{i}", i % 5));
    }
    let patched = tmp.path().join("run2");
    make_run_image(
        &patched,
        "v2",
        &[("/etc/os-release", "VERSION_ID=2\n")],
        &[],
    );
    registry.push_layout(&format!("oci:{}:v2", patched.display()), "run:v2");
    (registry, tmp)
}

/// A registry that serves listings two entries at a time (and refuses a
/// larger `n`, as docker-registry does above `catalog.maxentries`): the
/// discovery still finds every image, not only the first page's.
#[test]
fn discovery_pages_through_a_registry_that_lists_two_at_a_time() {
    if !have_all(TOOLS) {
        return;
    }
    let (registry, _tmp, _) = publish_on(RegistryServer::start_with("catalog:\n  maxentries: 2\n"));
    for i in 0..4 {
        registry.copy("app:v1", &format!("team-{i}/svc:v1"));
    }
    let out = ok(cascade().args([
        "audit",
        "--discover",
        "--format",
        "json",
        "--run-image",
        &registry.image("run:v1"),
    ]));
    let audit: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(audit["current"], 5, "app and four team images: {audit}");
    let catalog_pages = registry
        .requests()
        .iter()
        .filter(|l| l.contains("GET /v2/_catalog") && l.contains("\" 200 "))
        .count();
    assert!(
        catalog_pages >= 3,
        "{catalog_pages} catalog pages for 6 repositories"
    );
}

/// Two shards' reports: together they rebased all `expected` images, each
/// a fair share, no repository in both, and the one missing image failed.
fn check_shards(shards: [(i32, &Value); 2], expected: u64, missing: &str) {
    let count = |r: &Value, key: &str| r["summary"][key].as_u64().unwrap();
    let [(_, first), (_, second)] = shards;
    let rebased: Vec<u64> = shards.iter().map(|s| count(s.1, "rebased")).collect();
    assert_eq!(rebased.iter().sum::<u64>(), expected, "{first}\n{second}");
    assert!(rebased.iter().all(|&n| n > 10), "uneven shards {rebased:?}");
    // A repository belongs to one shard: its tags share blobs, and two
    // processes writing one repository would race.
    assert!(
        repositories(first).is_disjoint(&repositories(second)),
        "a repository split across shards"
    );
    let failed: Vec<u64> = shards.iter().map(|s| count(s.1, "failed")).collect();
    assert_eq!(failed.iter().sum::<u64>(), 1);
    let codes: Vec<i32> = shards.iter().map(|s| s.0).collect();
    assert!(codes.contains(&71) && codes.contains(&0), "{codes:?}");
    let failed: Vec<&Value> = shards
        .iter()
        .flat_map(|s| s.1["images"].as_array().unwrap())
        .filter(|e| e["status"] == "failed")
        .collect();
    assert_eq!(failed[0]["image"], missing);
}

/// The repositories of a fleet report's images.
fn repositories(report: &Value) -> std::collections::BTreeSet<String> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let image = e["image"].as_str().unwrap();
            image.rsplit_once(':').unwrap().0.to_owned()
        })
        .collect()
}

#[test]
fn a_fleet_is_split_by_shards_and_rebased_with_a_summary() {
    if !have_all(TOOLS) {
        return;
    }
    let fleet_size: u64 = 60;
    let (registry, _tmp) = fleet_of(60);
    let audit = || {
        let out = ok(cascade().args([
            "audit",
            "--discover",
            "--format",
            "json",
            "--run-image",
            &registry.image("run:v2"),
        ]));
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let stale = audit();
    assert_eq!(stale["stale"], fleet_size + 1, "{stale}");
    assert_eq!(
        stale["images"][0]["buildpacks"][0],
        "cascade/procfile@0.1.0"
    );
    let missing = registry.image("gone/svc:v1");
    let fleet = |extra: &[&str]| {
        let o = run(cascade()
            .args([
                "rebase",
                "--fleet",
                "--discover",
                &missing,
                "--run-image",
                &registry.image("run:v2"),
                "--format",
                "json",
            ])
            .args(extra));
        (
            o.status.code().unwrap_or(-1),
            serde_json::from_slice::<Value>(&o.stdout).unwrap_or(Value::Null),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };

    let (code, dry, stderr) = fleet(&["--dry-run"]);
    assert_eq!(code, 71, "the missing image fails the run: {stderr}");
    // 60 copies + the original app:v1.
    assert_eq!(dry["summary"]["would_rebase"], fleet_size + 1, "{dry}");
    assert_eq!(
        registry.inspect("team-0/svc:0", "--raw"),
        registry.inspect("app:v1", "--raw"),
        "a dry run wrote"
    );

    let before = registry.requests().len();
    let (code0, shard0, _) = fleet(&["--shard", "0/2"]);
    // The run image is resolved once for the whole run, not per image.
    let run_gets = registry.requests()[before..]
        .iter()
        .filter(|l| l.contains("\"GET /v2/run/manifests/v2 "))
        .count();
    assert_eq!(
        run_gets, 1,
        "the run image's manifest was fetched {run_gets} times"
    );
    // Each repository is given the new base layer once, not once per image
    // (twelve tags share each repository).
    let requests = registry.requests();
    let mounts: Vec<&String> = requests[before..]
        .iter()
        .filter(|l| l.contains("?mount="))
        .collect();
    let repositories: std::collections::BTreeSet<&str> = mounts
        .iter()
        .filter_map(|l| l.split("\"POST /v2/").nth(1)?.split("/blobs/").next())
        .collect();
    assert!(!mounts.is_empty(), "no mount in the fleet run");
    assert_eq!(mounts.len(), repositories.len(), "{mounts:#?}");
    let (code1, shard1, _) = fleet(&["--shard", "1/2"]);
    check_shards(
        [(code0, &shard0), (code1, &shard1)],
        fleet_size + 1,
        &missing,
    );
    assert_eq!(shard0["summary"]["transfers"]["downloaded"], 0);

    let config = registry.inspect("team-3/svc:13", "--config");
    let label: Value = serde_json::from_str(
        config["config"]["Labels"]["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(label["runImage"]["image"], registry.image("run:v2"));

    let current = audit();
    assert_eq!(
        (current["current"].as_u64(), current["stale"].as_u64()),
        (Some(fleet_size + 1), Some(0)),
        "{current}"
    );
    let (_, again, _) = fleet(&[]);
    assert_eq!(
        again["summary"]["already_current"],
        fleet_size + 1,
        "{again}"
    );
}

#[test]
fn a_registry_that_dies_mid_push_loses_nothing_and_a_rerun_finishes() {
    if !have_all(TOOLS) {
        return;
    }
    let mut registry = RegistryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("Procfile"), "web: /bin/busybox echo v1\n").unwrap();
    let target = registry.image("app:live");
    build_ok(&[app.to_str().unwrap(), "--publish", &target]);
    let before = registry.inspect("app:live", "--raw");

    // v2 carries 192 MiB of incompressible data: its upload takes long
    // enough to be cut.
    std::fs::write(app.join("Procfile"), "web: /bin/busybox echo v2\n").unwrap();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let data: Vec<u8> = (0..(192usize << 20) / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    std::fs::write(app.join("data.bin"), data).unwrap();
    let mut push = cascade()
        .arg("build")
        .arg(&app)
        .args(["--publish", &target])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(2);
    while registry.uploading_bytes() < 1 << 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never started"
        );
        assert!(
            push.try_wait().unwrap().is_none(),
            "the push ended before it could be cut"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    registry.kill();
    let out = push.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(62), "{stderr}");
    assert!(
        stderr.contains(&registry.host),
        "the error names the registry: {stderr}"
    );

    registry.restart();
    assert_eq!(
        registry.inspect("app:live", "--raw"),
        before,
        "the tag moved before the image was complete"
    );
    // The old image is whole: every blob it names can be fetched.
    ok(Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--src-tls-verify=false"])
        .arg(format!("docker://{target}"))
        .arg(format!("oci:{}:old", tmp.path().join("old").display())));

    let report = build_ok(&[app.to_str().unwrap(), "--publish", &target]);
    let after = registry.inspect("app:live", "--raw");
    assert_ne!(after, before);
    assert!(report["digest"].as_str().unwrap().starts_with("sha256:"));
    let config = registry.inspect("app:live", "--config");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/bin/busybox", "echo", "v2"])
    );
}

/// A child's stderr line by line as it comes, so a test waits on what a
/// long-running process says, not on the clock.
struct Said {
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    reader: std::thread::JoinHandle<()>,
}

impl Said {
    fn of(child: &mut std::process::Child) -> Self {
        let (tx, lines) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr piped");
        let reader = std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            lines,
            seen: Vec::new(),
            reader,
        }
    }

    /// Until a line containing `what` (two minutes at most).
    fn wait_for(&mut self, what: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_mins(2);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(what);
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(e) => panic!("no {what:?} ({e}): {:#?}", self.seen),
            }
        }
    }

    /// Every line, once the child has ended.
    fn all(mut self) -> Vec<String> {
        self.reader.join().unwrap();
        self.seen.extend(self.lines.try_iter());
        self.seen
    }
}

#[test]
fn watch_mode_follows_the_run_image_tag() {
    if !have_all(TOOLS) {
        return;
    }
    let registry = RegistryServer::start();
    registry.push_layout(busybox_run_image(), "run:stable");
    build_ok(&[
        fixture_app("procfile").to_str().unwrap(),
        "--run-image",
        &registry.image("run:stable"),
        "--publish",
        &registry.image("shop:v1"),
    ]);
    let mut watcher = cascade()
        .args([
            "rebase",
            "--fleet",
            "--discover",
            "--watch",
            "--interval",
            "0.2",
            // An upper bound only: the test stops it once it has seen what
            // it waits for, so no timing decides the count.
            "--rounds",
            "1000",
            "--format",
            "json",
        ])
        .args(["--run-image", &registry.image("run:stable")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = Said::of(&mut watcher);
    // The first fleet run, at the start, sees shop:v1 already current.
    said.wait_for(": rebasing the fleet");
    said.wait_for("shop:v1: ");
    // Patch the run image under the same tag: the next round rebases.
    let tmp = tempfile::tempdir().unwrap();
    let patched = tmp.path().join("run");
    make_run_image(
        &patched,
        "p",
        &[("/etc/os-release", "VERSION_ID=patched\n")],
        &[],
    );
    registry.push_layout(&format!("oci:{}:p", patched.display()), "run:stable");
    let patched_digest = registry.inspect("run:stable", "--raw");
    said.wait_for(": rebasing the fleet");
    said.wait_for("shop:v1: rebased");
    // Some rounds more, which must find nothing new to do.
    std::thread::sleep(std::time::Duration::from_secs(1));
    watcher.kill().unwrap();
    watcher.wait().unwrap();
    let seen = said.all();
    assert_eq!(
        seen.iter()
            .filter(|l| l.contains(": rebasing the fleet"))
            .count(),
        2,
        "one run at start, one after the patch: {seen:#?}"
    );
    let config = registry.inspect("shop:v1", "--config");
    let label: Value = serde_json::from_str(
        config["config"]["Labels"]["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let run_layers = layer_digests(&patched_digest);
    assert_eq!(
        layer_digests(&registry.inspect("shop:v1", "--raw"))[0],
        run_layers[0],
        "shop:v1 is on the patched base"
    );
    assert!(
        label["runImage"]["reference"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
}

#[test]
fn credentials_come_from_the_docker_config() {
    if !have_all(&["docker-registry", "python3"]) {
        return;
    }
    let registry = RegistryServer::start_with_auth("ci", "s3cret");
    let app = fixture_app("procfile");
    let tmp = tempfile::tempdir().unwrap();
    let o = run(cascade()
        .env("DOCKER_CONFIG", tmp.path())
        .arg("build")
        .arg(&app)
        .args(["--publish", &registry.image("app:v1")]));
    assert_eq!(
        o.status.code(),
        Some(62),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "ci:s3cret");
    std::fs::write(
        tmp.path().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, registry.host),
    )
    .unwrap();
    let o = run(cascade()
        .env("DOCKER_CONFIG", tmp.path())
        .arg("build")
        .arg(&app)
        .args(["--publish", &registry.image("app:v1"), "--format", "json"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(cascade().env("DOCKER_CONFIG", tmp.path()).args([
        "inspect",
        "--format",
        "json",
        &registry.image("app:v1"),
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // A credential helper named for the registry (credHelpers), found on
    // PATH and asked by the docker-credential-helpers protocol, wins over
    // `auths`; one that fails is reported by name, not taken as anonymous.
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let helper = |name: &str, script: &str| {
        let path = bin.join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    };
    helper(
        "vault",
        &format!(
            r#"read host; [ "$host" = "{}" ] && echo '{{"Username":"ci","Secret":"s3cret"}}'"#,
            registry.host
        ),
    );
    helper("locked", "echo 'the keychain is locked' >&2; exit 1");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    for (helper, ok) in [("vault", true), ("locked", false)] {
        std::fs::write(
            tmp.path().join("config.json"),
            format!(
                r#"{{"auths":{{"{0}":{{"auth":"d3Jvbmc6d3Jvbmc="}}}},"credHelpers":{{"{0}":"{helper}"}}}}"#,
                registry.host
            ),
        )
        .unwrap();
        let o = run(cascade()
            .env("DOCKER_CONFIG", tmp.path())
            .env("PATH", &path)
            .args(["inspect", "--format", "json", &registry.image("app:v1")]));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.success(), ok, "{helper}: {stderr}");
        if !ok {
            assert!(
                stderr.contains("docker-credential-locked")
                    && stderr.contains("keychain is locked"),
                "{stderr}"
            );
        }
    }
}
