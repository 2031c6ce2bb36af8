//! The Rust buildpack against cargo alone, and an exec'd tool's start on the
//! build image against the host's.

#[allow(clippy::wildcard_imports)]
use super::*;

/// One Rust app built two ways: `cascade build` (cascade/rust, cargo in
/// bwrap, cache layers) and `cargo build --release` in a copy of it with
/// its own target dir.
pub(super) struct RustBench {
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
pub(super) fn heavy_rust_app(dir: &Path, modules: usize) {
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
pub(super) fn build_image() -> (String, PathBuf) {
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
pub(super) fn rust_vs_cargo(out: &mut String) {
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
pub(super) fn exec_startup(out: &mut String) {
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
