//! A buildpack that misbehaves on purpose. It passes detect when the app has
//! `hostile.txt`, whose first line is `<phase>:<act>` (phase `detect` or
//! `build`), and then does the act in that phase:
//!
//! - `trap`: panics (a wasm trap);
//! - `loop`: spins forever;
//! - `alloc`: allocates without bound;
//! - `read-etc`: reads `/etc/passwd`;
//! - `write-outside`: writes `/tmp/cascade-escape` and `../escape`;
//! - `spam`: prints 64 MiB to stdout;
//! - `error`: returns a buildpack error;
//! - `read-link`: reads `/workspace/leak`, a symlink the app points outside;
//! - `write-app`: writes into the app dir (read-only during detect);
//! - `edit-workspace`: rewrites `/workspace/main.txt` in place with other
//!   bytes of the same length and puts its mtime back, and plants
//!   `/workspace/planted.txt` (a kept workspace must not carry either into
//!   the next build);
//! - `log-flood`: logs 64 MiB through the log interface;
//! - `bad-layer`: asks for a layer named `../escape`;
//! - `bad-process`: declares a process type `../web`;
//! - `exec-undeclared`: runs `sh` without declaring it;
//! - `exec-network`: runs `busybox wget` against `http://127.0.0.1:PORT/`
//!   (PORT from the platform env) — declared and granted, but not the
//!   network;
//! - `fetch-undeclared`: fetches from a host it did not declare;
//! - `spawn-many`: starts 8 `sleep`s at once;
//! - `huge-output`: writes 64 MiB into a layer;
//! - `exec-sleep`: runs `busybox sleep 60`;
//! - `fork-bomb`: runs a fork bomb with `busybox sh`;
//! - `link-unpack`: links `out` in its layers dir to the host directory
//!   `$CANARY` names (by enough `..` to reach `/`), then unpacks the app's
//!   `evil.tar` into `out`;
//! - `link-archive`: links `a.tar` to `$CANARY/secret.tar` and unpacks it;
//! - `link-launch-layer`: declares a launch layer whose directory is a link
//!   to `$CANARY`;
//! - `link-build-layer`: the same as a build layer;
//! - `link-in-layer`: a launch layer holding a link to `$CANARY/secret.txt`;
//! - `link-cache-layer`: a cache layer holding a link to `$CANARY`;
//! - `fetch-file`: fetches `file://$CANARY/secret.txt` with a wrong sha256,
//!   and logs the error it got;
//! - `write-forever`: writes 1 MiB files into a layer without end;
//! - `exec-write-forever`: has `busybox dd` write zeros into its layers
//!   without end;
//! - `forge-label`: sets the `dev.cascade.capabilities` label itself;
//! - `escape-log`: logs and prints terminal escape sequences;
//! - `ok`: behaves, and writes a launch layer;
//! - `exec-ok`: runs `busybox true`, then behaves as `ok`.

use cascade_sdk::{
    BuildContext, BuildResult, Buildpack, BuildpackError, DetectContext, DetectResult, Process,
    Result, exec,
};

#[derive(Default)]
pub struct Hostile;

fn act(phase: &str, app: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(app.join("hostile.txt"))?;
    let line = text.lines().next().unwrap_or_default().trim();
    let Some((when, what)) = line.split_once(':') else {
        return Ok(());
    };
    if when != phase {
        return Ok(());
    }
    match what {
        "trap" => panic!("hostile buildpack panics on purpose"),
        "loop" => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1; 16 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "read-etc" => {
            let passwd = std::fs::read_to_string("/etc/passwd")?;
            cascade_sdk::log::warn(format!("read {} bytes of /etc/passwd", passwd.len()));
            Ok(())
        }
        "write-outside" => {
            std::fs::write("/tmp/cascade-escape", "escaped")?;
            std::fs::write(app.join("../escape"), "escaped")?;
            Ok(())
        }
        "spam" => {
            let line = "x".repeat(1023);
            for _ in 0..(64 * 1024) {
                println!("{line}");
            }
            Ok(())
        }
        "error" => {
            Err(BuildpackError::new("hostile buildpack fails on purpose").hint("do not use it"))
        }
        "read-link" => {
            let leaked = std::fs::read_to_string(app.join("leak"))?;
            cascade_sdk::log::warn(format!("read {} bytes through the link", leaked.len()));
            Ok(())
        }
        "write-app" => {
            std::fs::write(app.join("planted.txt"), "planted")?;
            Ok(())
        }
        "edit-workspace" => {
            let path = app.join("main.txt");
            let before = std::fs::metadata(&path)?;
            let len = usize::try_from(before.len()).unwrap_or(0);
            let file = std::fs::OpenOptions::new().write(true).open(&path)?;
            std::io::Write::write_all(&mut &file, "X".repeat(len).as_bytes())?;
            file.set_modified(before.modified()?)?;
            std::fs::write(app.join("planted.txt"), "planted")?;
            Ok(())
        }
        "log-flood" => {
            let line = "y".repeat(1023);
            for _ in 0..(64 * 1024) {
                cascade_sdk::log::info(&line);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Acts that need the build context.
fn act_in_build(ctx: &BuildContext) -> Result<Option<BuildResult>> {
    let text = std::fs::read_to_string(ctx.app_dir().join("hostile.txt"))?;
    let what = text.lines().next().unwrap_or_default().trim();
    match what {
        "build:bad-layer" => {
            let _ = ctx.layer("../escape")?;
            Ok(None)
        }
        "build:bad-process" => Ok(Some(
            BuildResult::new().process(Process::new("../web", ["/bin/true"])),
        )),
        "build:exec-ok" => {
            exec::Command::new("busybox").arg("true").run_ok()?;
            Ok(None)
        }
        "build:exec-undeclared" => {
            exec::Command::new("sh").args(["-c", "echo hi"]).run_ok()?;
            Ok(None)
        }
        "build:exec-network" => {
            let port = ctx.platform_env().get("PORT").cloned().unwrap_or_default();
            let out = exec::Command::new("busybox")
                .args([
                    "wget",
                    "-q",
                    "-O",
                    "-",
                    &format!("http://127.0.0.1:{port}/"),
                ])
                .run()?;
            if out.success() {
                return Err(BuildpackError::new("the network was reachable"));
            }
            cascade_sdk::log::info(format!("wget exited {}", out.status));
            Ok(None)
        }
        "build:spawn-many" => {
            let out = exec::Command::new("busybox")
                .args([
                    "sh",
                    "-c",
                    "for i in 1 2 3 4 5 6 7 8; do busybox sleep 1 & done; wait",
                ])
                .run()?;
            cascade_sdk::log::info(format!("spawn-many exited {}", out.status));
            Ok(None)
        }
        "build:huge-output" => {
            let layer = ctx.layer("huge")?.launch(true);
            let chunk = vec![7u8; 1 << 20];
            for i in 0..64 {
                std::fs::write(layer.path().join(format!("part-{i}")), &chunk)?;
            }
            Ok(Some(BuildResult::new().layer(layer)))
        }
        "build:exec-sleep" => {
            exec::Command::new("busybox").args(["sleep", "60"]).run()?;
            Ok(None)
        }
        "build:fork-bomb" => {
            exec::Command::new("busybox")
                // The bomb, then the shell itself forking until a fork
                // fails: it meets the limit however slowly the machine
                // runs the bomb (the shell then stops, saying so).
                .args([
                    "sh",
                    "-c",
                    "bomb() { bomb | bomb & }; bomb; while :; do sleep 5 & done",
                ])
                .run()?;
            Ok(None)
        }
        "build:fetch-undeclared" => {
            let layer = ctx.layer("dl")?;
            layer.fetch("http://example.invalid/x", &"0".repeat(64), "x")?;
            Ok(None)
        }
        "build:write-forever" => {
            let layer = ctx.layer("endless")?;
            let chunk = vec![7u8; 1 << 20];
            for i in 0.. {
                std::fs::write(layer.path().join(format!("part-{i}")), &chunk)?;
            }
            Ok(None)
        }
        "build:exec-write-forever" => {
            let to = format!("of={}/zeros", ctx.layers_dir().display());
            exec::Command::new("busybox")
                .args(["dd", "if=/dev/zero", &to, "bs=1048576"])
                .run()?;
            Ok(None)
        }
        "build:forge-label" => Ok(Some(
            BuildResult::new().label("dev.cascade.capabilities", "[]"),
        )),
        "build:escape-log" => {
            let evil = "\u{1b}]0;pwned\u{7}\u{1b}[2K\rbuild succeeded";
            cascade_sdk::log::warn(evil);
            println!("{evil}");
            Ok(None)
        }
        _ => act_on_the_host_boundary(ctx, what),
    }
}

/// Acts that make links, archives and URLs pointing at the host.
fn act_on_the_host_boundary(ctx: &BuildContext, what: &str) -> Result<Option<BuildResult>> {
    match what {
        "build:link-unpack" => {
            let layers = ctx.layers_dir().to_path_buf();
            cascade_sdk::fs::symlink(to_host(ctx, ""), layers.join("out"))?;
            std::fs::copy(ctx.app_dir().join("evil.tar"), layers.join("evil.tar"))?;
            ctx.unpack(layers.join("evil.tar"), layers.join("out"))?;
            Ok(None)
        }
        "build:link-archive" => {
            let layers = ctx.layers_dir().to_path_buf();
            cascade_sdk::fs::symlink(to_host(ctx, "secret.tar"), layers.join("a.tar"))?;
            ctx.unpack(layers.join("a.tar"), layers.join("x"))?;
            Ok(None)
        }
        "build:link-launch-layer" | "build:link-build-layer" => {
            let layer = ctx.layer("stolen")?;
            let layer = if what.ends_with("launch-layer") {
                layer.launch(true)
            } else {
                layer.build(true)
            };
            std::fs::remove_dir_all(layer.path())?;
            cascade_sdk::fs::symlink(to_host(ctx, ""), layer.path())?;
            Ok(Some(BuildResult::new().layer(layer)))
        }
        "build:link-in-layer" | "build:link-cache-layer" => {
            let layer = ctx.layer("links")?;
            let layer = if what.ends_with("cache-layer") {
                layer.cache(true)
            } else {
                layer.launch(true)
            };
            std::fs::write(layer.path().join("plain.txt"), "plain\n")?;
            cascade_sdk::fs::symlink(to_host(ctx, "secret.txt"), layer.path().join("leak"))?;
            cascade_sdk::fs::symlink(to_host(ctx, ""), layer.path().join("dir"))?;
            Ok(Some(BuildResult::new().layer(layer)))
        }
        "build:fetch-file" => {
            let canary = ctx
                .platform_env()
                .get("CANARY")
                .cloned()
                .unwrap_or_default();
            let layer = ctx.layer("dl")?;
            let e = layer
                .fetch(&format!("file://{canary}/secret.txt"), &"0".repeat(64), "x")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            Err(BuildpackError::new(format!("the fetch said: {e}")))
        }
        _ => Ok(None),
    }
}

/// A relative link target that reaches `$CANARY/rel` on the host from
/// anywhere in the layers dir: enough `..` to reach `/`, then the path.
fn to_host(ctx: &BuildContext, rel: &str) -> String {
    let canary = ctx
        .platform_env()
        .get("CANARY")
        .cloned()
        .unwrap_or_default();
    let up = "../".repeat(40);
    let path = format!("{up}{}/{rel}", canary.trim_start_matches('/'));
    path.trim_end_matches('/').to_owned()
}

impl Buildpack for Hostile {
    fn detect(&self, ctx: &DetectContext) -> Result<DetectResult> {
        if !ctx.app_dir().join("hostile.txt").is_file() {
            return Ok(DetectResult::fail("no hostile.txt"));
        }
        act("detect", ctx.app_dir())?;
        Ok(DetectResult::pass())
    }

    fn build(&self, ctx: &BuildContext) -> Result<BuildResult> {
        act("build", ctx.app_dir())?;
        if let Some(result) = act_in_build(ctx)? {
            return Ok(result);
        }
        let layer = ctx.layer("ok")?.launch(true);
        std::fs::write(layer.path().join("hello.txt"), "hello from a layer\n")?;
        Ok(BuildResult::new().layer(layer))
    }
}

cascade_sdk::export_buildpack!(Hostile);
