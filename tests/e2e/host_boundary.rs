//! The host side of the sandbox: a hostile buildpack granted nothing makes
//! links, archives and URLs that point at the host, and the host neither
//! writes outside the buildpack's dirs nor puts a byte of the host into an
//! image, a cache or a log (docs/security.md). Every case runs the real
//! hostile component through `cascade build` beside a canary directory,
//! hashed before and after, whose secret must appear nowhere.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::guests;
use cascade_lifecycle::oci::Digest;

use crate::support::*;

/// A directory of host files a buildpack must never reach.
struct Canary {
    dir: PathBuf,
    secret: String,
}

impl Canary {
    fn new(root: &Path) -> Self {
        let dir = root.join("canary");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let secret = format!("cascade-canary-{}-{nanos}", std::process::id());
        std::fs::write(dir.join("secret.txt"), format!("{secret}\n")).unwrap();
        std::fs::write(dir.join("sub/keep"), "keep\n").unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(secret.len() as u64 + 1);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, "secret.txt", format!("{secret}\n").as_bytes())
            .unwrap();
        std::fs::write(dir.join("secret.tar"), tar.into_inner().unwrap()).unwrap();
        Self { dir, secret }
    }

    fn env(&self) -> String {
        format!("CANARY={}", self.dir.display())
    }

    /// Every entry under the canary dir: path, kind and bytes.
    fn snapshot(&self) -> Vec<(PathBuf, String)> {
        walkdir::WalkDir::new(&self.dir)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let what = if e.file_type().is_file() {
                    Digest::of(&std::fs::read(e.path()).unwrap()).to_string()
                } else if e.file_type().is_symlink() {
                    format!("link {}", std::fs::read_link(e.path()).unwrap().display())
                } else {
                    "dir".into()
                };
                (e.path().to_path_buf(), what)
            })
            .collect()
    }

    /// The secret, and its sha256, are in none of the streams and in no
    /// file under `roots` (gzip layers read decompressed; links not
    /// followed).
    #[track_caller]
    fn assert_nowhere(&self, o: &Outcome, roots: &[&Path]) {
        let digest = Digest::of(format!("{}\n", self.secret).as_bytes());
        let needles = [self.secret.as_bytes(), digest.hex().as_bytes()];
        for (name, text) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
            for n in needles {
                assert!(
                    !contains(text.as_bytes(), n),
                    "a host secret reached {name}:\n{text}"
                );
            }
        }
        for root in roots {
            for e in walkdir::WalkDir::new(root).follow_links(false) {
                let Ok(e) = e else { continue };
                if !e.file_type().is_file() {
                    continue;
                }
                let mut bytes = std::fs::read(e.path()).unwrap();
                if bytes.starts_with(&[0x1f, 0x8b]) {
                    let mut plain = Vec::new();
                    if flate2::read::MultiGzDecoder::new(&bytes[..])
                        .read_to_end(&mut plain)
                        .is_ok()
                    {
                        bytes.extend(plain);
                    }
                }
                for n in needles {
                    assert!(
                        !contains(&bytes, n),
                        "a host secret is in {}",
                        e.path().display()
                    );
                }
            }
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// One hostile build: an app, a cache and an output beside the canary.
struct Case {
    tmp: tempfile::TempDir,
    app: PathBuf,
    canary: Canary,
}

impl Case {
    fn new(act: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("app");
        std::fs::create_dir(&app).unwrap();
        std::fs::write(app.join("hostile.txt"), format!("{act}\n")).unwrap();
        let canary = Canary::new(tmp.path());
        Self { tmp, app, canary }
    }

    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    fn cache(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }

    fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    /// Build with the hostile buildpack; `default_cache`: no cache dir is
    /// named, so the cache is the default one under `$HOME`.
    fn build(&self, default_cache: bool, extra: &[&str]) -> Outcome {
        let env = self.canary.env();
        let output = format!("oci:{}:app", self.out().display());
        let mut cmd = cascade();
        cmd.arg("build")
            .arg(&self.app)
            .args(["--output", &output, "--buildpack", guests::test_hostile()])
            .args(["--env", &env])
            .args(extra);
        if default_cache {
            std::fs::create_dir_all(self.home()).unwrap();
            cmd.env_remove("CASCADE_CACHE_DIR")
                .env_remove("XDG_CACHE_HOME")
                .env("HOME", self.home());
        } else {
            cmd.env("CASCADE_CACHE_DIR", self.cache());
        }
        run(&mut cmd).into()
    }

    /// Run `act` with both cache roots and check what every hostile case
    /// must leave: the canary as it was, its secret nowhere.
    #[track_caller]
    fn contained(&self, extra: &[&str], check: impl Fn(&Outcome)) {
        for default_cache in [false, true] {
            let before = self.canary.snapshot();
            let o = self.build(default_cache, extra);
            check(&o);
            assert_eq!(
                self.canary.snapshot(),
                before,
                "the build changed the canary outside its dirs:\n{}",
                o.stderr
            );
            self.canary
                .assert_nowhere(&o, &[&self.out(), &self.cache(), &self.home()]);
        }
    }
}

#[track_caller]
fn failed_saying(o: &Outcome, words: &[&str]) {
    assert_eq!(o.code, 51, "{}", o.stderr);
    for w in words {
        assert!(o.stderr.contains(w), "no {w:?} in:\n{}", o.stderr);
    }
}

#[test]
fn an_archive_unpacked_through_a_link_to_the_host_writes_nothing_there() {
    let c = Case::new("build:link-unpack");
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "pwned.txt", &b"pwned\n"[..])
        .unwrap();
    std::fs::write(c.app.join("evil.tar"), tar.into_inner().unwrap()).unwrap();
    c.contained(&[], |o| {
        failed_saying(o, &["test/hostile", "symbolic link"]);
    });
    assert!(!c.canary.dir.join("pwned.txt").exists());
}

#[test]
fn an_archive_that_is_a_link_to_a_host_file_is_not_read() {
    let c = Case::new("build:link-archive");
    c.contained(&[], |o| failed_saying(o, &["test/hostile", "a.tar"]));
}

#[test]
fn a_layer_dir_that_is_a_link_to_the_host_is_refused_naming_buildpack_and_layer() {
    for act in ["build:link-launch-layer", "build:link-build-layer"] {
        let c = Case::new(act);
        c.contained(&[], |o| {
            failed_saying(o, &["test/hostile", "layer stolen", "not a real directory"]);
        });
        let index = std::fs::read_to_string(c.out().join("index.json")).unwrap_or_default();
        assert!(!index.contains("\"app\""), "{act}: an image was written");
    }
}

#[test]
fn links_in_a_layer_are_exported_as_links_never_followed() {
    let c = Case::new("build:link-in-layer");
    c.contained(&[], |o| assert_eq!(o.code, 0, "{}", o.stderr));
    // The image holds the links themselves.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.out().join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let blob = |d: &str| {
        c.out()
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(manifest_digest)).unwrap()).unwrap();
    let mut links = Vec::new();
    for d in layer_digests(&manifest) {
        let file = std::fs::File::open(blob(&d)).unwrap();
        let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(file));
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            if e.header().entry_type().is_symlink() {
                links.push(e.path().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    assert!(
        links.iter().any(|l| l.ends_with("links/leak"))
            && links.iter().any(|l| l.ends_with("links/dir")),
        "{links:?}"
    );
}

#[test]
fn a_cache_layer_holding_links_out_is_saved_and_restored_as_links() {
    let c = Case::new("build:link-cache-layer");
    // Twice: the second build restores the saved layer through the cache.
    for _ in 0..2 {
        c.contained(&[], |o| assert_eq!(o.code, 0, "{}", o.stderr));
    }
}

#[test]
fn a_fetch_with_a_wrong_digest_does_not_tell_what_it_read() {
    let c = Case::new("build:fetch-file");
    let grant = format!("fetch:file:{}", c.canary.dir.display());
    c.contained(&["--allow", &grant], |o| {
        failed_saying(o, &["test/hostile", "sha256 mismatch"]);
    });
    // Without a root, or with another one, file:// is refused outright.
    let o = c.build(false, &["--allow", "fetch:file"]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(o.stderr.contains("fetch:file:/srv/mirror"), "{}", o.stderr);
    let elsewhere = format!("fetch:file:{}", c.app.display());
    c.contained(&["--allow", &elsewhere], |o| {
        failed_saying(o, &["fetch:file denied", "no directory holding"]);
    });
}

#[test]
fn a_project_toml_that_links_out_of_the_app_is_refused_unquoted() {
    let tmp = tempfile::tempdir().unwrap();
    let canary = Canary::new(tmp.path());
    // Not TOML: a parse error would quote it.
    let app = tmp.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("index.html"), "<p>hi</p>\n").unwrap();
    std::os::unix::fs::symlink(canary.dir.join("secret.txt"), app.join("project.toml")).unwrap();
    let before = canary.snapshot();
    let output = format!("oci:{}:app", tmp.path().join("out").display());
    let o = build_in(
        &tmp.path().join("cache"),
        &[app.to_str().unwrap(), "--output", &output],
    );
    assert_ne!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("symbolic link"), "{}", o.stderr);
    assert_eq!(canary.snapshot(), before);
    canary.assert_nowhere(&o, &[&tmp.path().join("out"), &tmp.path().join("cache")]);
}

#[test]
fn a_buildpack_the_app_names_gets_no_grant_unless_one_names_it() {
    let c = Case::new("build:exec-undeclared");
    std::fs::copy(guests::test_hostile(), c.app.join("hostile.wasm")).unwrap();
    std::fs::write(
        c.app.join("project.toml"),
        "[_]\nschema-version = \"0.2\"\n\n[[io.buildpacks.group]]\nuri = \"hostile.wasm\"\n",
    )
    .unwrap();
    let output = format!("oci:{}:app", c.out().display());
    let spawn = |grant: &str| -> Outcome {
        std::fs::write(c.app.join("hostile.txt"), "build:spawn-many\n").unwrap();
        build_in(
            &c.cache(),
            &[
                c.app.to_str().unwrap(),
                "--output",
                &output,
                "--allow",
                grant,
                "--build-image",
                "host",
            ],
        )
    };
    let o = spawn("exec:*");
    failed_saying(
        &o,
        &[
            "exec:busybox denied",
            "project.toml",
            "test/hostile=exec:busybox",
        ],
    );
    if have("bwrap") {
        let o = spawn("test/hostile=exec:busybox");
        assert_eq!(o.code, 0, "{}", o.stderr);
    }
}

/// The same hostile trees walked by hand, as the host would, to show what
/// the suite would see if a fix were reverted: the canary is reachable
/// through the links the buildpack made.
#[test]
fn the_links_the_hostile_buildpack_makes_do_reach_the_host() {
    let c = Case::new("build:ok");
    let layers = c.tmp.path().join("a/b/c/layers");
    std::fs::create_dir_all(&layers).unwrap();
    let target = format!(
        "{}{}",
        "../".repeat(40),
        c.canary.dir.display().to_string().trim_start_matches('/')
    );
    std::os::unix::fs::symlink(&target, layers.join("out")).unwrap();
    assert!(
        layers.join("out/secret.txt").is_file(),
        "the attack needs the link to resolve to the canary"
    );
}

#[test]
fn a_buildpack_cannot_forge_the_platform_labels() {
    let c = Case::new("build:forge-label");
    c.contained(&[], |o| {
        failed_saying(o, &["test/hostile", "label dev.cascade.capabilities"]);
    });
}

#[test]
fn terminal_escapes_in_logs_and_output_are_shown_not_acted_on() {
    let c = Case::new("build:escape-log");
    let o = c.build(false, &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        !o.stderr.contains('\u{1b}'),
        "an escape reached the terminal"
    );
    assert!(
        !o.stderr.contains('\r'),
        "a carriage return reached the terminal"
    );
    assert!(o.stderr.contains("\\u{1b}]0;pwned"), "{}", o.stderr);
}

#[test]
fn a_buildpack_writing_without_end_is_stopped_while_it_runs() {
    let c = Case::new("build:write-forever");
    let o = c.build(
        false,
        &["--max-layers-mib", "16", "--buildpack-timeout", "300"],
    );
    failed_saying(&o, &["test/hostile", "wrote more than 16 MiB"]);
    if have_all(&["bwrap", "busybox"]) {
        std::fs::write(c.app.join("hostile.txt"), "build:exec-write-forever\n").unwrap();
        let o = c.build(
            false,
            &[
                "--max-layers-mib",
                "16",
                "--buildpack-timeout",
                "300",
                "--allow",
                "exec:busybox",
                "--build-image",
                "host",
            ],
        );
        failed_saying(&o, &["test/hostile", "wrote more than 16 MiB"]);
    }
}
