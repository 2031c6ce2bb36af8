//! Rebase and fleet rebase on a real registry, against the floor of the
//! requests they must make.

#[allow(clippy::wildcard_imports)]
use super::*;

/// A docker-registry on 127.0.0.1 for the registry benchmarks.
pub(super) struct Registry {
    child: std::process::Child,
    host: String,
    /// The registry's output: its access log, one line per request.
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        let yml = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        std::fs::write(&config, yml).unwrap();
        let log = dir.path().join("access.log");
        let output = std::fs::File::create(&log).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .ok()?;
        let start = Instant::now();
        while std::net::TcpStream::connect(&host).is_err() {
            if start.elapsed() > Duration::from_secs(20) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self {
            child,
            host,
            log,
            _dir: dir,
        })
    }

    /// The requests served so far, one access-log line each.
    fn requests(&self) -> Vec<String> {
        // Lines are written once the response is; give the last a moment.
        std::thread::sleep(Duration::from_millis(100));
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap())
            .lines()
            .filter(|l| l.contains(" /v2"))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Push a busybox run image tagged `tag` (with `marker` in a file so every
/// tag is a different image) into `registry/run`.
pub(super) fn push_run_image(tmp: &Path, registry: &str, tag: &str) {
    let layout = tmp.join(format!("run-{tag}"));
    let image = format!("{}:{tag}", layout.display());
    run_ok(
        Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout),
    );
    run_ok(Command::new("umoci").args(["new", "--image", &image]));
    let bundle = tmp.join(format!("bundle-{tag}"));
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &image])
            .arg(&bundle),
    );
    std::fs::create_dir_all(bundle.join("rootfs/bin")).unwrap();
    std::fs::create_dir_all(bundle.join("rootfs/etc")).unwrap();
    std::fs::copy("/bin/busybox", bundle.join("rootfs/bin/busybox")).unwrap();
    std::fs::write(
        bundle.join("rootfs/etc/os-release"),
        format!("VERSION_ID={tag}\n"),
    )
    .unwrap();
    run_ok(
        Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle),
    );
    run_ok(
        Command::new("skopeo")
            .args(["--insecure-policy", "copy", "--dest-tls-verify=false"])
            .arg(format!("oci:{image}"))
            .arg(format!("docker://{registry}/run:{tag}")),
    );
}

/// Rebase on a registry: cost with a 1 MiB vs a 512 MiB app layer (O(1)),
/// against `skopeo copy` of the big image (the naive baseline), and a fleet
/// of images rebased vs rebuilt.
pub(super) fn registry_rebase(out: &mut String) {
    let bin = workspace().join("target/release/cascade");
    let have = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !bin.is_file()
        || !["docker-registry", "skopeo", "umoci"]
            .iter()
            .all(|t| have(t))
    {
        let _ = writeln!(
            out,
            "## Registry rebase\n\nskipped: needs target/release/cascade, docker-registry, skopeo and umoci.\n"
        );
        return;
    }
    let Some(registry) = Registry::start() else {
        let _ = writeln!(
            out,
            "## Registry rebase\n\nskipped: docker-registry did not start.\n"
        );
        return;
    };
    let reg = registry.host.clone();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    push_run_image(tmp.path(), &reg, "v1");
    push_run_image(tmp.path(), &reg, "v2");
    let build = |app: &Path, target: &str| {
        run_ok(
            Command::new(&bin)
                .env("CASCADE_CACHE_DIR", &cache)
                .arg("build")
                .arg(app)
                .args([
                    "-q",
                    "--run-image",
                    &format!("{reg}/run:v1"),
                    "--publish",
                    target,
                ]),
        );
    };
    let app_with = |name: &str, mib: usize| {
        let app = tmp.path().join(name);
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(app.join("Procfile"), "web: /bin/busybox true\n").unwrap();
        // Incompressible, so the layer really is `mib` MiB on the registry.
        let mut state: u64 = 0x2545_F491_4F6C_DD1D ^ mib as u64;
        let mut data = vec![0u8; mib << 20];
        for chunk in data.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        std::fs::write(app.join("blob.bin"), data).unwrap();
        app
    };
    build(&app_with("small", 1), &format!("{reg}/small:v1"));
    build(&app_with("big", 512), &format!("{reg}/big:v1"));
    // A trust store of one certificate: what the system's roots cost.
    let one_root = tmp.path().join("one-root.pem");
    let bundle = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    let end = "-----END CERTIFICATE-----";
    std::fs::write(
        &one_root,
        bundle.find(end).map_or("", |i| &bundle[..i + end.len()]),
    )
    .unwrap();
    let roots: [(&str, &Path); 2] = [
        ("SSL_CERT_FILE", &one_root),
        ("SSL_CERT_DIR", Path::new("/nonexistent")),
    ];
    let rebase_time = |image: &str, to: &str, env: &[(&str, &Path)]| {
        time(|| {
            run_ok(
                Command::new(&bin)
                    .env("CASCADE_CACHE_DIR", &cache)
                    .envs(env.iter().copied())
                    .args([
                        "rebase",
                        image,
                        "--run-image",
                        &format!("{reg}/run:{to}"),
                        // Back to v1 every other round: a downgrade, on purpose.
                        "--allow-downgrade",
                    ]),
            )
        })
        .0
    };
    let rounds = 6;
    let mut small = Vec::new();
    let mut big = Vec::new();
    let mut inspect = Vec::new();
    let mut small_requests = Vec::new();
    let mut few_roots = Vec::new();
    for i in 0..rounds {
        let to = if i % 2 == 0 { "v2" } else { "v1" };
        let before = registry.requests().len();
        small.push(rebase_time(&format!("{reg}/small:v1"), to, &[]));
        small_requests = registry.requests()[before..].to_vec();
        big.push(rebase_time(&format!("{reg}/big:v1"), to, &[]));
        // With one root, back to the other tag; then forth again, so the
        // next round's rebases are real ones too.
        let back = if i % 2 == 0 { "v1" } else { "v2" };
        few_roots.push(rebase_time(&format!("{reg}/small:v1"), back, &roots));
        small.push(rebase_time(&format!("{reg}/small:v1"), to, &[]));
        // The floor of a whole process that talks to the registry: one
        // manifest GET by a Go client.
        inspect.push(
            time(|| {
                run_ok(
                    Command::new("skopeo")
                        .args(["inspect", "--raw", "--tls-verify=false"])
                        .arg(format!("docker://{reg}/small:v1")),
                )
            })
            .0,
        );
    }
    let (small, big, inspect, few_roots) = (
        median(small),
        median(big),
        median(inspect),
        median(few_roots),
    );
    // The floor under one rebase: the registry's own time for its requests
    // (the last round's, sent again one after another), and a process
    // start.
    let mix = replay::Mix::from_log(&reg, &small_requests);
    let served = median((0..rounds).map(|_| mix.replay(1)).collect());
    let start_up = median(
        (0..rounds)
            .map(|_| time(|| run_ok(Command::new(&bin).arg("--version"))).0)
            .collect(),
    );
    let big_manifest: serde_json::Value = serde_json::from_str(&run_ok(
        Command::new("skopeo")
            .args([
                "--insecure-policy",
                "inspect",
                "--raw",
                "--tls-verify=false",
            ])
            .arg(format!("docker://{reg}/big:v1")),
    ))
    .unwrap();
    let big_bytes: u64 = big_manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["size"].as_u64())
        .sum();
    // A full copy moves every byte: pull the whole image into a fresh local
    // layout, and check that it did.
    let copy = median(
        (0..3)
            .map(|i| {
                let dest = tmp.path().join(format!("copy-{i}"));
                let d = time(|| {
                    run_ok(
                        Command::new("skopeo")
                            .args(["--insecure-policy", "copy", "--src-tls-verify=false"])
                            .arg(format!("docker://{reg}/big:v1"))
                            .arg(format!("oci:{}:big", dest.display())),
                    )
                })
                .0;
                let copied: u64 = walkdir::WalkDir::new(&dest)
                    .into_iter()
                    .filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .filter(std::fs::Metadata::is_file)
                    .map(|m| m.len())
                    .sum();
                assert!(
                    copied >= big_bytes,
                    "skopeo moved only {copied} of {big_bytes} bytes"
                );
                std::fs::remove_dir_all(&dest).unwrap();
                d
            })
            .collect(),
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let _ = writeln!(
        out,
        "## Registry rebase (docker-registry on loopback)\n\nEach figure runs the release `cascade rebase` as a process (start-up included), alternating the run image between two tags so every run is a real rebase. Median of {rounds} ({} for the 1 MiB case). A rebase cannot cost one manifest GET: its requests wait on one another along a chain (manifest, config, SBOM layer, the uploads, the manifest, the referrer), and the rows below split its time into the registry's own (the same requests, sent again by a minimal client) and the client's (process start, trust store).\n",
        2 * rounds
    );
    let _ = writeln!(out, "| what | time | ratio |\n|---|---|---|");
    let _ = writeln!(
        out,
        "| rebase, 1 MiB app layer | {:.1} ms | 1.00× |",
        ms(small)
    );
    let _ = writeln!(
        out,
        "| `skopeo inspect --raw` of the same image (one manifest GET, a whole process) | {:.1} ms | rebase is **{:.2}×** it (goal ≤ 1.0×) |",
        ms(inspect),
        small.as_secs_f64() / inspect.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| its {} requests sent again one after another by a minimal client (in-process, keep-alive: the registry's own time) | {:.1} ms | {:.2}× skopeo |",
        mix.requests(),
        ms(served),
        served.as_secs_f64() / inspect.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| rebase with a trust store of one certificate (`SSL_CERT_FILE`, `SSL_CERT_DIR`): the system's roots, which oci-client 0.18 loads twice, cost the difference | {:.1} ms | {:.2}× skopeo |",
        ms(few_roots),
        few_roots.as_secs_f64() / inspect.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| `cascade --version` (the process start) | {:.1} ms | {:.2}× skopeo |",
        ms(start_up),
        start_up.as_secs_f64() / inspect.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| rebase, 512 MiB app layer | {:.1} ms | **{:.2}×** (goal ≤ 1.2×: O(1)) |",
        ms(big),
        big.as_secs_f64() / small.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| `skopeo copy` of the big image ({} MB of layers) from the registry to a local layout (naive baseline: every byte moves) | {:.1} ms | {:.0}× the rebase |",
        big_bytes / 1_000_000,
        ms(copy),
        copy.as_secs_f64() / big.as_secs_f64()
    );
    out.push('\n');

    // The fleet: rebuilding every image (the O(N) path) vs rebasing them.
    let fleet: usize = std::env::var("CASCADE_BENCH_FLEET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let app = workspace().join("tests/fixtures/apps/procfile");
    let rebuild = time(|| {
        for i in 0..fleet {
            build(&app, &format!("{reg}/fleet-{}/svc:{i}", i % 10));
        }
    })
    .0;
    let before = registry.requests().len();
    let report = time(|| {
        run_ok(Command::new(&bin).env("CASCADE_CACHE_DIR", &cache).args([
            "rebase",
            "--fleet",
            "--discover",
            "--jobs",
            "16",
            "--format",
            "json",
            "--run-image",
            &format!("{reg}/run:v2"),
        ]))
    });
    let json: serde_json::Value = serde_json::from_str(&report.1).unwrap();
    let rebased = json["summary"]["rebased"].as_u64().unwrap_or(0);
    let per_s = |n: f64, d: Duration| n / d.as_secs_f64();
    // The registry's ceiling: the fleet run's own requests (discovery
    // included), sent again by a minimal client with as many workers.
    let fleet_mix = replay::Mix::from_log(&reg, &registry.requests()[before..]);
    let ceiling = median((0..3).map(|_| fleet_mix.replay(16)).collect());
    let _ = writeln!(
        out,
        "## Fleet: rebase all vs rebuild all ({fleet} images)\n\nRebuild: `cascade build --publish` of each image, one after the other (warm component cache; this is the O(N) path rebase replaces, and it created the fleet). Rebase: one `cascade rebase --fleet --discover --jobs 16` process (registry discovery included). Ceiling: the same requests, read from the registry's access log and sent again by reqwest's blocking client (keep-alive, no registry logic; see `runtime/benches/support/replay.rs`; a repository's requests one at a time, as docker-registry needs). Goals: ≥ 50 % of the ceiling (issue 13), and ≥ 50 images/s where the registry's own ceiling allows it.\n"
    );
    let _ = writeln!(out, "| what | time | images/s |\n|---|---|---|");
    let _ = writeln!(
        out,
        "| rebuild all | {:.2} s | {:.1} |",
        rebuild.as_secs_f64(),
        per_s(fleet as f64, rebuild)
    );
    let _ = writeln!(
        out,
        "| **rebase all** ({rebased} rebased) | {:.2} s | **{:.1}** |",
        report.0.as_secs_f64(),
        per_s(rebased as f64, report.0)
    );
    let _ = writeln!(
        out,
        "| registry ceiling: the run's {} requests ({:.1} per image) sent again by a minimal client, 16 workers | {:.2} s | {:.1}: rebase all is **{:.0} %** of it (goal ≥ 50 %) |",
        fleet_mix.requests(),
        fleet_mix.requests() as f64 / rebased.max(1) as f64,
        ceiling.as_secs_f64(),
        per_s(rebased as f64, ceiling),
        100.0 * ceiling.as_secs_f64() / report.0.as_secs_f64()
    );
    out.push('\n');
}
