//! Build sections: warm detect against a process spawn, first build after
//! install against a warm one, export throughput, the no-op rebuild.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Warm detect (component compiled and cached, one instantiate + call per
/// detect) against spawning a native process that does the same check, as
/// the CNB lifecycle execs `bin/detect` per buildpack.
pub(super) fn detect_vs_spawn(out: &mut String) {
    let cache = tempfile::tempdir().unwrap();
    let engine = Arc::new(
        Engine::new(
            Limits::default(),
            Some(cache.path().into()),
            Arc::new(Silent),
        )
        .unwrap(),
    );
    let app = workspace().join("tests/fixtures/apps/procfile");
    let input = DetectInput {
        app: Arc::new(cascade_lifecycle::guest_tree::GuestTree::open_named(&app).unwrap()),
        platform_env: std::collections::BTreeMap::default(),
        target: Target::new("linux", "amd64"),
    };
    let rounds = 300;
    let _ = writeln!(out, "## Warm detect vs spawning a process\n");
    let _ = writeln!(
        out,
        "Each detect instantiates the loaded component (compiled once, before timing) in a fresh sandbox (fixed clock, preopened app dir) and calls `detect`. Baseline: `fork+exec` of `/usr/bin/test -f <app>/Procfile` (what lifecycle pays per buildpack before the check itself). Median of {rounds} calls. Goal: ≤ 0.3×.\n"
    );
    let _ = writeln!(
        out,
        "| buildpack | warm detect | spawn `test -f` | ratio |\n|---|---|---|---|"
    );
    for (name, bytes) in cascade_lifecycle::embedded::BUILDPACKS {
        // Load twice: the second load is the warm path (deserialise from disk).
        drop(engine.load(bytes, name).unwrap());
        let bp = engine.load(bytes, name).unwrap();
        for _ in 0..10 {
            bp.detect(&input).unwrap();
        }
        let wasm = median(
            (0..rounds)
                .map(|_| time(|| bp.detect(&input).unwrap()).0)
                .collect(),
        );
        let spawn = median(
            (0..rounds)
                .map(|_| {
                    time(|| {
                        Command::new("/usr/bin/test")
                            .arg("-f")
                            .arg(app.join("Procfile"))
                            .status()
                            .unwrap()
                    })
                    .0
                })
                .collect(),
        );
        let _ = writeln!(
            out,
            "| {} | {:.0} µs | {:.0} µs | **{:.2}×** |",
            bp.id(),
            wasm.as_secs_f64() * 1e6,
            spawn.as_secs_f64() * 1e6,
            wasm.as_secs_f64() / spawn.as_secs_f64()
        );
    }
    out.push('\n');
}

/// The first build after install (an empty cache dir) vs a warm `cascade build` of each fixture app,
/// running the release binary as a user would.
pub(super) fn cold_vs_warm(out: &mut String) {
    let bin = workspace().join("target/release/cascade");
    if !bin.is_file() {
        let _ = writeln!(
            out,
            "## First build after install vs warm `cascade build`\n\nskipped: build target/release/cascade first (`cargo build --release`).\n"
        );
        return;
    }
    let _ = writeln!(
        out,
        "## First build after install vs warm `cascade build`\n\nFirst: an empty cache dir (no compiled components, no build cache), as right after installing; the embedded buildpacks come compiled in the binary (build.rs precompiles them for the build machine), so nothing is compiled. Warm: the same build again with that cache. The build output confirms neither compiled anything. Median of 5; `scratch` run image. Goal: first ≤ 2× warm.\n"
    );
    let _ = writeln!(
        out,
        "| app | first build | warm | first / warm | compiled anything? |\n|---|---|---|---|---|"
    );
    for app in ["procfile", "static-site", "ca-certs"] {
        let mut colds = Vec::new();
        let mut warms = Vec::new();
        let mut recompiled = false;
        for _ in 0..5 {
            let tmp = tempfile::tempdir().unwrap();
            let run = |tag: &str| {
                let (d, o) = time(|| {
                    Command::new(&bin)
                        .env("CASCADE_CACHE_DIR", tmp.path().join("cache"))
                        .arg("build")
                        .arg(workspace().join("tests/fixtures/apps").join(app))
                        .args([
                            // static-site: the run image's httpd, no download.
                            "--env",
                            "BP_STATIC_SERVER=busybox",
                            "--output",
                            &format!("oci:{}:{tag}", tmp.path().join("out").display()),
                        ])
                        .output()
                        .unwrap()
                });
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                (d, String::from_utf8_lossy(&o.stderr).into_owned())
            };
            let (d, stderr) = run("cold");
            recompiled |= stderr.contains("compiled ");
            colds.push(d);
            let (d, stderr) = run("warm");
            recompiled |= stderr.contains("compiled ");
            warms.push(d);
        }
        let (c, w) = (median(colds), median(warms));
        let _ = writeln!(
            out,
            "| {app} | {:.1} ms | {:.1} ms | **{:.2}×** | {} |",
            c.as_secs_f64() * 1e3,
            w.as_secs_f64() * 1e3,
            c.as_secs_f64() / w.as_secs_f64(),
            if recompiled { "yes (bad)" } else { "no" }
        );
    }
    out.push('\n');
}

/// A deterministic, text-like tree of `mib` MiB (compresses about 3-4×,
/// like source and assets do), in 1 MiB files.
pub(super) fn make_tree(dir: &Path, mib: usize) -> u64 {
    const WORDS: [&str; 16] = [
        "cascade",
        "layer",
        "buildpack",
        "image",
        "digest",
        "sha256",
        "rebase",
        "export",
        "fn",
        "let",
        "struct",
        "impl",
        "return",
        "0x1f3a",
        "{",
        "}",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut total = 0;
    for i in 0..mib {
        let sub = dir.join(format!("d{:02}", i % 16));
        std::fs::create_dir_all(&sub).unwrap();
        let mut buf = Vec::with_capacity(1 << 20);
        while buf.len() < 1 << 20 {
            let r = next();
            buf.extend_from_slice(WORDS[(r & 15) as usize].as_bytes());
            buf.push(if r & 0x300 == 0 { b'\n' } else { b' ' });
            if r & 0xF000 == 0 {
                buf.extend_from_slice(&r.to_le_bytes());
            }
        }
        buf.truncate(1 << 20);
        total += buf.len() as u64;
        std::fs::write(sub.join(format!("f{i:04}.txt")), buf).unwrap();
    }
    total
}

pub(super) fn export_throughput(out: &mut String) {
    let mib: usize = std::env::var("CASCADE_BENCH_EXPORT_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    let bytes = make_tree(&tree, mib);
    let mb = bytes as f64 / 1e6;
    let rounds = 3;

    let sha = median(
        (0..rounds)
            .map(|_| {
                time(|| {
                    let mut h = sha2::Sha256::new();
                    for e in walkdir::WalkDir::new(&tree).sort_by_file_name() {
                        let e = e.unwrap();
                        if e.file_type().is_file() {
                            h.update(std::fs::read(e.path()).unwrap());
                        }
                    }
                    h.finalize()
                })
                .0
            })
            .collect(),
    );

    // The compressor alone: one gzip stream at the pinned level over the
    // same bytes, on one core, nothing else (no tar, no hashing, no files).
    let gzip1 = median(
        (0..rounds)
            .map(|_| {
                time(|| {
                    let mut enc = flate2::write::GzEncoder::new(
                        std::io::sink(),
                        flate2::Compression::new(GZIP_LEVEL),
                    );
                    for e in walkdir::WalkDir::new(&tree).sort_by_file_name() {
                        let e = e.unwrap();
                        if e.file_type().is_file() {
                            std::io::Write::write_all(&mut enc, &std::fs::read(e.path()).unwrap())
                                .unwrap();
                        }
                    }
                    enc.finish().unwrap()
                })
                .0
            })
            .collect(),
    );

    let blobs = tmp.path().join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut size = 0;
    let mut digests = Vec::new();
    let handle = cascade_lifecycle::guest_tree::GuestTree::open(&tree).unwrap();
    let mut export = |threads: usize, compression: Compression| {
        median(
            (0..rounds)
                .map(|_| {
                    let (d, blob) = time(|| {
                        write_layer_with(
                            &LayerSource {
                                root: &handle,
                                prefix: "workspace",
                                bin_exec: false,
                            },
                            &blobs,
                            Owner::default(),
                            compression,
                            threads,
                        )
                        .unwrap()
                    });
                    std::fs::remove_file(blobs.join(blob.digest.hex())).unwrap();
                    if compression == Compression::Gzip {
                        size = blob.size;
                        digests.push(blob.digest);
                    }
                    d
                })
                .collect(),
        )
    };
    let single = export(1, Compression::Gzip);
    let cascade = export(cores, Compression::Gzip);
    let zstd = export(cores, Compression::Zstd);
    digests.dedup();
    assert_eq!(
        digests.len(),
        1,
        "the layer digest depends on the thread count"
    );

    // umoci compresses with pgzip on GOMAXPROCS threads: time it at 1 and
    // at all cores, as cascade is.
    let have_umoci = Command::new("umoci").arg("--version").output().is_ok();
    let umoci = |procs: usize| {
        have_umoci.then(|| {
            median(
                (0..rounds)
                    .map(|_| {
                        let layout = tmp.path().join("umoci");
                        let _ = std::fs::remove_dir_all(&layout);
                        let image = format!("{}:t", layout.display());
                        assert!(
                            Command::new("umoci")
                                .args(["init", "--layout"])
                                .arg(&layout)
                                .status()
                                .unwrap()
                                .success()
                        );
                        assert!(
                            Command::new("umoci")
                                .args(["new", "--image", &image])
                                .status()
                                .unwrap()
                                .success()
                        );
                        time(|| {
                            let s = Command::new("umoci")
                                .env("GOMAXPROCS", procs.to_string())
                                .args(["insert", "--image", &image])
                                .arg(&tree)
                                .arg("/workspace")
                                .status()
                                .unwrap();
                            assert!(s.success());
                        })
                        .0
                    })
                    .collect(),
            )
        })
    };
    let umoci_single = umoci(1);
    let umoci = umoci(cores);

    let rate = |d: Duration| mb / d.as_secs_f64();
    let _ = writeln!(out, "## Export of a {mib} MiB app tree\n");
    let _ = writeln!(
        out,
        "One layer, tar + gzip level {GZIP_LEVEL} (miniz_oxide) + both digests in one pass, {} files of 1 MiB of text-like data; compressed to {:.0}% of its size. sha256 of the same bytes is the floor; gzip level {GZIP_LEVEL} of the bytes alone on one core (no tar, no hashing, no writing) is the compressor's own speed; `umoci insert` of the same tree into an empty image is the peer. The last column is each row's time over cascade's (all cores); the digest was checked identical at 1 and {cores} threads. Median of {rounds}.\n",
        mib,
        size as f64 / bytes as f64 * 100.0
    );
    let _ = writeln!(
        out,
        "| what | time | MB/s | time / cascade |\n|---|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| sha256 only (floor) | {:.2} s | {:.0} | {:.2}× |",
        sha.as_secs_f64(),
        rate(sha),
        sha.as_secs_f64() / cascade.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| gzip -{GZIP_LEVEL} alone, 1 core (compressor speed) | {:.2} s | {:.0} | {:.2}× |",
        gzip1.as_secs_f64(),
        rate(gzip1),
        gzip1.as_secs_f64() / cascade.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| cascade export, 1 thread | {:.2} s | {:.0} | {:.2}× |",
        single.as_secs_f64(),
        rate(single),
        single.as_secs_f64() / cascade.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| **cascade export, {cores} threads** | {:.2} s | **{:.0}** | 1.00× |",
        cascade.as_secs_f64(),
        rate(cascade)
    );
    let _ = writeln!(
        out,
        "| cascade export, zstd, {cores} threads | {:.2} s | {:.0} | {:.2}× |",
        zstd.as_secs_f64(),
        rate(zstd),
        zstd.as_secs_f64() / cascade.as_secs_f64()
    );
    for (what, u) in [
        ("umoci insert, GOMAXPROCS=1".to_string(), umoci_single),
        (format!("umoci insert, GOMAXPROCS={cores}"), umoci),
    ] {
        match u {
            Some(u) => {
                let _ = writeln!(
                    out,
                    "| {what} | {:.2} s | {:.0} | **{:.2}×** |",
                    u.as_secs_f64(),
                    rate(u),
                    u.as_secs_f64() / cascade.as_secs_f64()
                );
            }
            None => {
                let _ = writeln!(out, "| {what} | not installed | | |");
            }
        }
    }
    if let Some(u) = umoci_single {
        let _ = writeln!(
            out,
            "\nOn one thread each: umoci takes **{:.2}×** cascade's time.",
            u.as_secs_f64() / single.as_secs_f64()
        );
    }
    let per_core = rate(cascade) / cores as f64;
    let _ = writeln!(
        out,
        "\nPer core, export runs at {:.0} MB/s against the bare compressor's {:.0} MB/s: **{:.2}×** of single-core gzip -{GZIP_LEVEL} speed per core (goal ≥ 0.5×, i.e. within 2×); one thread alone reaches {:.2}×.\n",
        per_core,
        rate(gzip1),
        per_core / rate(gzip1),
        rate(single) / rate(gzip1)
    );
}

/// A cold build against a no-op rebuild, with the release binary and the
/// `test/deps` buildpack, as a user runs it: an app with a large dependency
/// layer (launch + cache) and a build-only cache layer, and an app holding
/// one big file (where the app tree itself is what a rebuild must not copy
/// or hash again).
pub(super) fn noop_rebuild(out: &mut String) {
    let bin = workspace().join("target/release/cascade");
    let _ = writeln!(
        out,
        "## No-op rebuild vs cold build
"
    );
    if !bin.is_file() {
        let _ = writeln!(
            out,
            "skipped: build target/release/cascade first (`cargo build --release`).\n"
        );
        return;
    }
    let mib: usize = std::env::var("CASCADE_BENCH_NOOP_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(352);
    let rounds = 3;
    let deps = noop_case(&bin, mib, None, rounds);
    let big = noop_case(&bin, 0, Some(256), rounds);
    let _ = writeln!(
        out,
        "Dependencies: `deps.lock` asking for {mib} MiB (a launch + cache layer, 1 MiB files that compress about 2:1) plus 8 MiB of sources; {:.0} MB of compressed layers. Big file: one 256 MiB text-like file in the app (plus 8 MiB of sources), {:.0} MB of compressed layers. Cold: empty build cache (components already compiled). No-op: the same build again; every layer was reused and the digest is identical (both checked from the report), and the report's `workspace` counts the app files copied into the build's private copy. Median of {rounds}. Goals: ≤ 5 % of cold with dependencies (pack takes tens of seconds here: pack#652), ≤ 3 % with the big file.\n",
        deps.layer_bytes as f64 / 1e6,
        big.layer_bytes as f64 / 1e6
    );
    let _ = writeln!(
        out,
        "| app | cold | no-op rebuild | no-op / cold | app files copied by the no-op |\n|---|---|---|---|---|"
    );
    for (name, c) in [("dependencies", &deps), ("one 256 MiB file", &big)] {
        let _ = writeln!(
            out,
            "| {name} | {:.2} s | {:.3} s | **{:.1} %** | {} of {} |",
            c.cold.as_secs_f64(),
            c.noop.as_secs_f64(),
            c.noop.as_secs_f64() / c.cold.as_secs_f64() * 100.0,
            c.copied,
            c.files
        );
    }
    let _ = writeln!(
        out,
        "\nThe app tree is kept between builds in the image's build cache and brought in line by `stat` (inode and ctime of each copy, so a buildpack that rewrote one cannot hide it), and the app layer is recognised by a `stat` stamp of the tree after the build, so a no-op rebuild neither copies nor hashes the app (`runtime/src/workspace.rs`).\n"
    );
}

pub(super) struct NoopCase {
    cold: Duration,
    noop: Duration,
    layer_bytes: u64,
    /// App files the last no-op copied, of those in the app.
    copied: u64,
    files: u64,
}

pub(super) fn noop_case(
    bin: &Path,
    deps_mib: usize,
    big_mib: Option<usize>,
    rounds: usize,
) -> NoopCase {
    let mut colds = Vec::new();
    let mut noops = Vec::new();
    let mut case = NoopCase {
        cold: Duration::ZERO,
        noop: Duration::ZERO,
        layer_bytes: 0,
        copied: 0,
        files: 0,
    };
    for _ in 0..rounds {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("app");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(
            app.join("deps.lock"),
            format!("size-mib = {deps_mib}\nseed = \"bench\"\n"),
        )
        .unwrap();
        make_tree(&app.join("src"), 8);
        if let Some(mib) = big_mib {
            let chunks = tmp.path().join("chunks");
            make_tree(&chunks, mib);
            let mut big = std::fs::File::create(app.join("big.dat")).unwrap();
            for d in std::fs::read_dir(&chunks).unwrap() {
                for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
                    let mut chunk = std::fs::File::open(f.unwrap().path()).unwrap();
                    std::io::copy(&mut chunk, &mut big).unwrap();
                }
            }
            std::fs::remove_dir_all(&chunks).unwrap();
        }
        // The component cache is warm in both: this measures layers, not compiles.
        let components = tmp.path().join("components");
        let build = |cache: &Path| {
            let (d, o) = time(|| {
                Command::new(bin)
                    .env("CASCADE_CACHE_DIR", cache)
                    .arg("build")
                    .arg(&app)
                    .args(["--buildpack", guests::test_deps()])
                    .args(["--format", "json", "--output"])
                    .arg(format!("oci:{}:app", tmp.path().join("out").display()))
                    .output()
                    .unwrap()
            });
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            (d, report)
        };
        build(&components);
        let cache = tmp.path().join("cache");
        std::fs::create_dir_all(&cache).unwrap();
        // Share compiled components, not build caches.
        let _ = Command::new("cp")
            .arg("-r")
            .arg(components.join("components"))
            .arg(&cache)
            .status();
        let _ = std::fs::remove_dir_all(tmp.path().join("out"));
        // Files written in the last second or two are copied again by the
        // next build (their timestamps may still move within a tick): a
        // user's app has settled long before.
        std::thread::sleep(Duration::from_millis(2100));
        let (cold, first) = build(&cache);
        let (noop, second) = build(&cache);
        assert_eq!(first["digest"], second["digest"]);
        let layers = second["layers"].as_array().unwrap();
        assert!(
            layers.iter().all(|l| l["reused"] == true),
            "the no-op rebuild rewrote a layer"
        );
        case.layer_bytes = layers
            .iter()
            .map(|l| l["size"].as_u64().unwrap())
            .sum::<u64>();
        let w = &second["workspace"];
        case.copied = w["copied_files"].as_u64().unwrap();
        case.files = case.copied + w["kept_files"].as_u64().unwrap();
        colds.push(cold);
        noops.push(noop);
    }
    case.cold = median(colds);
    case.noop = median(noops);
    case
}
