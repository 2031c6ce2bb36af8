//! Cascade's benchmarks: each figure is a ratio against a baseline measured
//! in the same run (these machines are noisy), written to BENCHMARKS.md.
//!
//! Run with `cargo bench -p cascade --bench cascade-bench`
//! (release build). `CASCADE_BENCH_EXPORT_MIB` sets the export tree size
//! (default 512), `CASCADE_BENCH_NOOP_MIB` the dependency layer of the
//! no-op rebuild (default 352, so the image has over 300 MB of compressed
//! layers).

// Reporting code: f64 rates from byte counts, and one long table per section.
#![allow(clippy::cast_precision_loss, clippy::too_many_lines)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cascade_lifecycle::api::{BuildpackRunner, DetectInput, Target};
use cascade_lifecycle::oci::compress::{Compression, GZIP_LEVEL};
use cascade_lifecycle::oci::layer::{LayerSource, Owner, write_layer_with};
use cascade_lifecycle::report::Silent;
use cascade_lifecycle::wasm::{Engine, Limits};
use sha2::Digest as _;

/// The test buildpacks, built as the e2e tests build them.
#[path = "../../../tests/e2e/guests.rs"]
#[allow(dead_code)] // the bench runs two of them
mod guests;

#[path = "support/replay.rs"]
mod replay;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Warm detect (component compiled and cached, one instantiate + call per
/// detect) against spawning a native process that does the same check, as
/// the CNB lifecycle execs `bin/detect` per buildpack.
fn detect_vs_spawn(out: &mut String) {
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
fn cold_vs_warm(out: &mut String) {
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
fn make_tree(dir: &Path, mib: usize) -> u64 {
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

fn export_throughput(out: &mut String) {
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
fn noop_rebuild(out: &mut String) {
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

struct NoopCase {
    cold: Duration,
    noop: Duration,
    layer_bytes: u64,
    /// App files the last no-op copied, of those in the app.
    copied: u64,
    files: u64,
}

fn noop_case(bin: &Path, deps_mib: usize, big_mib: Option<usize>, rounds: usize) -> NoopCase {
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

/// One Rust app built two ways: `cascade build` (cascade/rust, cargo in
/// bwrap, cache layers) and `cargo build --release` in a copy of it with
/// its own target dir.
struct RustBench {
    bin: PathBuf,
    tmp: tempfile::TempDir,
    /// The build image's reference and its unpacked root.
    image: String,
    root: PathBuf,
}

impl RustBench {
    fn new(bin: PathBuf, app: &Path) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["app", "direct"] {
            assert!(
                Command::new("cp")
                    .arg("-r")
                    .arg(app)
                    .arg(tmp.path().join(d))
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let (image, rootfs) = build_image();
        let mut b = Self {
            bin,
            tmp,
            image,
            root: PathBuf::new(),
        };
        // Warm both: compiled components, the unpacked build image, target
        // dirs.
        b.cascade(&[]);
        let oci =
            cascade_lifecycle::oci::store::Oci::new(&b.tmp.path().join("cache"), None).unwrap();
        let reference = cascade_lifecycle::oci::ImageRef::parse(&b.image).unwrap();
        let resolved = cascade_lifecycle::build_image::BuildImage::resolve(
            &reference,
            ("linux", "amd64"),
            &oci,
        )
        .unwrap();
        b.root = resolved.root_in(&rootfs);
        assert!(b.root.is_dir(), "the build image is not unpacked");
        b.cargo();
        b
    }

    fn cascade(&self, extra: &[&str]) -> Duration {
        let (d, o) = time(|| {
            Command::new(&self.bin)
                .env("CASCADE_CACHE_DIR", self.tmp.path().join("cache"))
                .arg("build")
                .arg(self.tmp.path().join("app"))
                .args(["--allow", "exec:cargo", "--build-image", &self.image])
                .env("CASCADE_ROOTFS_DIR", build_image().1)
                .arg("--output")
                .arg(format!("oci:{}:app", self.tmp.path().join("out").display()))
                .args(extra)
                .output()
                .unwrap()
        });
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        d
    }

    /// The build image's cargo run directly: under bwrap with the same
    /// root as `/`, the app bound at /workspace, a warm target dir in it.
    fn cargo(&self) -> Duration {
        let (d, o) = time(|| {
            Command::new("bwrap")
                .args(["--die-with-parent", "--unshare-all", "--ro-bind"])
                .arg(&self.root)
                .arg("/")
                .arg("--bind")
                .arg(self.tmp.path().join("direct"))
                .arg("/workspace")
                .args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"])
                .args(["--clearenv", "--setenv", "PATH", "/usr/bin:/bin"])
                .args(["--setenv", "HOME", "/tmp"])
                .args(["--setenv", "CARGO_TARGET_DIR", "/workspace/.direct-target"])
                .args(["--setenv", "RUSTFLAGS", "-C target-feature=+crt-static"])
                .args([
                    "--chdir",
                    "/workspace",
                    "cargo",
                    "build",
                    "--release",
                    "--locked",
                    "-q",
                ])
                .output()
                .unwrap()
        });
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        d
    }

    /// Append a comment to src/main.rs in both copies (round `i`).
    fn edit(&self, i: usize) {
        for d in ["app", "direct"] {
            let main = self.tmp.path().join(d).join("src/main.rs");
            let text = std::fs::read_to_string(&main).unwrap();
            std::fs::write(&main, format!("{text}// edit {i}\n")).unwrap();
        }
    }

    /// Medians of `rounds` cascade builds (with `extra`) and cargo builds,
    /// each preceded by an edit when `edit`.
    fn medians(&self, rounds: usize, edit: bool, extra: &[&str]) -> (Duration, Duration) {
        let mut c = Vec::new();
        let mut g = Vec::new();
        for i in 0..rounds {
            if edit {
                self.edit(i);
            }
            c.push(self.cascade(extra));
            g.push(self.cargo());
        }
        (median(c), median(g))
    }
}

/// A std-only crate whose compile takes seconds, as a real service's does:
/// `modules` modules of generic numeric code, all reached from main.
fn heavy_rust_app(dir: &Path, modules: usize) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"heavy\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("Cargo.lock"),
        "version = 3\n\n[[package]]\nname = \"heavy\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    let mut main = String::new();
    for m in 0..modules {
        let _ = writeln!(main, "mod m{m};");
        let mut module = String::new();
        for f in 0..40 {
            let _ = writeln!(
                module,
                "pub fn f{f}<T: Copy + Into<u64>>(xs: &[T]) -> u64 {{\n    let mut acc = {f}u64;\n    for (i, x) in xs.iter().enumerate() {{\n        let v: u64 = (*x).into();\n        acc = acc.rotate_left((i % 63) as u32) ^ v.wrapping_mul({}).wrapping_add(acc >> 7);\n        if acc % 3 == {} {{ acc = acc.wrapping_sub(v << 2); }}\n    }}\n    acc\n}}",
                f * 2 + 1,
                f % 3
            );
        }
        std::fs::write(dir.join(format!("src/m{m}.rs")), module).unwrap();
    }
    main.push_str("fn main() {\n    let data: Vec<u32> = (0..1000).collect();\n    let bytes: Vec<u8> = (0..255).collect();\n    let mut sum = 0u64;\n");
    for m in 0..modules {
        for f in 0..40 {
            let _ = writeln!(main, "    sum ^= m{m}::f{f}(&data) ^ m{m}::f{f}(&bytes);");
        }
    }
    main.push_str("    println!(\"{sum}\");\n}\n");
    std::fs::write(dir.join("src/main.rs"), main).unwrap();
}

/// Cascade's Debian build image (made once by scripts/build-image.sh) and a
/// rootfs store shared by the bench's builds.
fn build_image() -> (String, PathBuf) {
    let layout = workspace().join("target/build-image");
    let made = Command::new(workspace().join("scripts/build-image.sh"))
        .arg(&layout)
        .status()
        .unwrap();
    assert!(made.success(), "scripts/build-image.sh failed");
    (
        format!("oci:{}:bookworm", layout.display()),
        workspace().join("target/bench-rootfs"),
    )
}

/// The cascade/rust buildpack around the build image's cargo (exec in
/// bwrap) against that cargo run directly on the same app: the small
/// fixture with no change and with one edit, and a compile-heavy app with
/// one edit.
fn rust_vs_cargo(out: &mut String) {
    let bin = workspace().join("target/release/cascade");
    let _ = writeln!(out, "## The Rust buildpack vs `cargo build`\n");
    if !bin.is_file() || Command::new("bwrap").arg("--version").output().is_err() {
        let _ = writeln!(out, "skipped: needs target/release/cascade and bwrap.\n");
        return;
    }
    let small = RustBench::new(
        bin.clone(),
        &workspace().join("tests/fixtures/apps/rust-web"),
    );
    let rounds = 7;
    let noop = small.medians(rounds, false, &[]);
    let noop_no_cgroup = small.medians(rounds, false, &["--exec-max-procs", "0"]);
    let edit = small.medians(rounds, true, &[]);
    drop(small);
    let generated = tempfile::tempdir().unwrap();
    let modules = 5;
    heavy_rust_app(generated.path(), modules);
    let heavy = RustBench::new(bin, generated.path());
    let heavy_rounds = 5;
    let heavy_edit = heavy.medians(heavy_rounds, true, &[]);
    let _ = writeln!(
        out,
        "Release, static, on the build image (Debian bookworm's cargo 1.63, `scripts/build-image.sh`). cascade: the whole `cascade build --build-image` process (component load, app copy, restore, cargo in bwrap with the build image as `/` in its own pids cgroup, cache layers, export with reuse). cargo: the same cargo run directly, `cargo build --release` under a bare bwrap with the same root, in a copy of the app with its own warm target dir. Small app: `tests/fixtures/apps/rust-web` (a std-only web server), median of {rounds}. Compile-heavy app: generated, {modules} modules of generic numeric code ({} functions), median of {heavy_rounds}. Goal: ≤ 1.1× where the compiler's work dominates.\n",
        modules * 40
    );
    let _ = writeln!(
        out,
        "| app, change | cascade build | cargo build | ratio |\n|---|---|---|---|"
    );
    for (what, (c, g)) in [
        ("small, none (no-op rebuild)", noop),
        (
            "small, none, `--exec-max-procs 0` (no pids cgroup)",
            noop_no_cgroup,
        ),
        ("small, src/main.rs edited", edit),
        ("**compile-heavy, src/main.rs edited**", heavy_edit),
    ] {
        let _ = writeln!(
            out,
            "| {what} | {:.0} ms | {:.0} ms | **{:.2}×** ({:+.0} ms) |",
            c.as_secs_f64() * 1e3,
            g.as_secs_f64() * 1e3,
            c.as_secs_f64() / g.as_secs_f64(),
            (c.as_secs_f64() - g.as_secs_f64()) * 1e3
        );
    }
    let _ = writeln!(
        out,
        "\nCascade adds a fixed cost per build, not a share of the compile: process start and component load, the app copy, the sandbox, the pids cgroup and export. Against a no-op cargo (a few tens of ms) that fixed cost is the whole ratio; against a compile of a second or more it is a few per cent.\n"
    );
}

/// What a build image costs exec: unpacking it (once per stack of layers),
/// finding it unpacked (every later build), and one call's start-up in it
/// against a call of the host's own tool, both through `exec::run`.
fn exec_startup(out: &mut String) {
    use cascade_lifecycle::build_image::BuildImage;
    use cascade_lifecycle::exec::{BuildEnv, ExecPolicy, ExecRequest};
    use cascade_lifecycle::guest_tree::GuestTree;
    let _ = writeln!(out, "## Exec on a build image\n");
    if Command::new("bwrap").arg("--version").output().is_err() {
        let _ = writeln!(out, "skipped: needs bwrap.\n");
        return;
    }
    let (image, _) = build_image();
    let tmp = tempfile::tempdir().unwrap();
    let oci = cascade_lifecycle::oci::store::Oci::new(&tmp.path().join("cache"), None).unwrap();
    let reference = cascade_lifecycle::oci::ImageRef::parse(&image).unwrap();
    let resolved = BuildImage::resolve(&reference, ("linux", "amd64"), &oci).unwrap();
    let store = tmp.path().join("rootfs");
    let (cold, (env, unpacked)) = time(|| resolved.unpack(&oci, &store).unwrap());
    assert!(unpacked);
    let rounds = 30;
    let found: Vec<Duration> = (0..rounds)
        .map(|_| time(|| resolved.unpack(&oci, &store).unwrap()).0)
        .collect();
    let app = GuestTree::create(&tmp.path().join("app")).unwrap();
    let layers = GuestTree::create(&tmp.path().join("layers")).unwrap();
    let id = cascade_lifecycle::ids::BuildpackId::new("bench/exec").unwrap();
    let reporter: Arc<dyn cascade_lifecycle::report::Reporter> = Arc::new(Silent);
    let call = |build_env: &BuildEnv| {
        let policy = ExecPolicy {
            build_env: build_env.clone(),
            timeout: Duration::from_mins(1),
            ..ExecPolicy::default()
        };
        let req = ExecRequest {
            id: &id,
            program: "true",
            args: &[],
            env: &[],
            build_env: &[],
            working_dir: "/workspace",
            app: &app,
            layers: &layers,
            layers_guest: "/layers/bench_exec",
            build_layers: &[],
            quota: None,
            network: false,
            deadline: cascade_lifecycle::deadline::Deadline::after(Duration::from_mins(1)),
        };
        let (d, o) = time(|| cascade_lifecycle::exec::run(&policy, &req, &reporter).unwrap());
        assert_eq!(o.status, 0);
        d
    };
    let mut host = Vec::new();
    let mut in_image = Vec::new();
    for _ in 0..rounds {
        host.push(call(&BuildEnv::Host));
        in_image.push(call(&env));
    }
    let (host, in_image) = (median(host), median(in_image));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let _ = writeln!(
        out,
        "`{image}` (one {:.0} MB layer). Unpacking it is paid once per stack of layers; every later build finds it by its chain id. One call: `true` through `exec::run` (bwrap, no pids cgroup), alternating host and image, median of {rounds}. Goal: a call on the build image within 20 ms of a call of the host's tool.\n",
        resolved
            .image
            .manifest
            .layers()
            .first()
            .map_or(0.0, |l| l.size() as f64)
            / 1e6
    );
    let _ = writeln!(out, "| what | time |\n|---|---|");
    let _ = writeln!(
        out,
        "| first build: unpack the build image | {:.1} s |",
        cold.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| every later build: find it unpacked | {:.3} ms |",
        ms(median(found))
    );
    let _ = writeln!(
        out,
        "| exec call, host tool (`--build-image host`) | {:.1} ms |",
        ms(host)
    );
    let _ = writeln!(
        out,
        "| exec call, build image tool | {:.1} ms (**{:+.1} ms**, {:.2}×) |\n",
        ms(in_image),
        ms(in_image) - ms(host),
        in_image.as_secs_f64() / host.as_secs_f64()
    );
}

/// A fetch served from loopback: the first build downloads, the next is
/// served from the digest-keyed cache.
fn fetch_hit_vs_miss(out: &mut String) {
    use std::io::{Read as _, Write as _};
    let bin = workspace().join("target/release/cascade");
    let _ = writeln!(out, "## Fetch: cache miss vs hit\n");
    if !bin.is_file() {
        let _ = writeln!(out, "skipped: needs target/release/cascade.\n");
        return;
    }
    let body: Vec<u8> = (0..(64u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let sha = hex::encode(sha2::Sha256::digest(&body));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = std::sync::Arc::new(body);
    let data = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                data.len()
            );
            let _ = s.write_all(&data);
        }
    });
    let rounds = 5;
    let mut misses = Vec::new();
    let mut hits = Vec::new();
    for _ in 0..rounds {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("app");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(
            app.join("fetch.toml"),
            format!("[[fetch]]\nurl = \"http://127.0.0.1:{port}/rt\"\nsha256 = \"{sha}\"\ndest = \"rt.bin\"\n"),
        )
        .unwrap();
        let build = |tag: &str| {
            let (d, o) = time(|| {
                Command::new(&bin)
                    .env("CASCADE_CACHE_DIR", tmp.path().join("cache"))
                    .arg("build")
                    .arg(&app)
                    .args([
                        "--buildpack",
                        guests::test_fetcher(),
                        "--allow",
                        "fetch:127.0.0.1",
                        "--layer-compression",
                        "none",
                        "--output",
                    ])
                    .arg(format!("oci:{}:{tag}", tmp.path().join("out").display()))
                    .output()
                    .unwrap()
            });
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            d
        };
        misses.push(build("a"));
        hits.push(build("b"));
    }
    let (m, h) = (median(misses), median(hits));
    let _ = writeln!(
        out,
        "A 64 MiB file fetched by the `test/fetcher` buildpack from a loopback HTTP server into a launch layer (uncompressed layers, so export does not hide the difference); each round a fresh cache: the first build downloads and verifies, the second (a new tag, same cache) copies from the cache. Whole `cascade build` processes, median of {rounds}.\n"
    );
    let _ = writeln!(
        out,
        "| cache miss | cache hit | hit / miss |\n|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| {:.0} ms | {:.0} ms | **{:.2}×** |\n",
        m.as_secs_f64() * 1e3,
        h.as_secs_f64() * 1e3,
        h.as_secs_f64() / m.as_secs_f64()
    );
}

/// A docker-registry on 127.0.0.1 for the registry benchmarks.
struct Registry {
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

fn run_ok(cmd: &mut Command) -> String {
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
fn push_run_image(tmp: &Path, registry: &str, tag: &str) {
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
fn registry_rebase(out: &mut String) {
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

/// `old` with each `## ` section that `new` has replaced by `new`'s, and
/// `new`'s other sections appended.
fn merge_sections(old: &str, new: &str) -> String {
    fn split(text: &str) -> (String, Vec<(String, String)>) {
        let mut parts = text.split("\n## ");
        let head = parts.next().unwrap_or_default().to_owned();
        let sections = parts
            .map(|p| {
                let title = p.lines().next().unwrap_or_default().to_owned();
                (title, format!("\n## {p}"))
            })
            .collect();
        (head, sections)
    }
    let (head, mut sections) = split(old);
    for (title, body) in split(new).1 {
        match sections.iter_mut().find(|(t, _)| *t == title) {
            Some(slot) => slot.1 = body,
            None => sections.push((title, body)),
        }
    }
    let mut out = head;
    for (_, body) in sections {
        out.push_str(&body);
    }
    out
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters sections.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let mut out = String::from(
        "# Cascade benchmarks\n\nGenerated by `cargo bench -p cascade --bench cascade-bench` (release). Every figure is a ratio against a baseline measured in the same run; absolute times vary between these 2-core machines.\n\n",
    );
    let _ = writeln!(
        out,
        "Machine: {} cores, {}.\n",
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        std::env::consts::ARCH
    );
    if want("detect") {
        detect_vs_spawn(&mut out);
    }
    if want("build") {
        cold_vs_warm(&mut out);
    }
    if want("export") {
        export_throughput(&mut out);
    }
    if want("noop") {
        noop_rebuild(&mut out);
    }
    if want("rust") {
        rust_vs_cargo(&mut out);
    }
    if want("exec") {
        exec_startup(&mut out);
    }
    if want("fetch") {
        fetch_hit_vs_miss(&mut out);
    }
    if want("rebase") {
        registry_rebase(&mut out);
    }
    print!("{out}");
    let path = workspace().join("BENCHMARKS.md");
    // A filtered run re-measures some sections: the others stay as the
    // last run left them.
    if !filter.is_empty()
        && let Ok(old) = std::fs::read_to_string(&path)
    {
        out = merge_sections(&old, &out);
    }
    std::fs::write(&path, out).unwrap();
    eprintln!("wrote {}", path.display());
}
