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
//! - `ok`: behaves, and writes a launch layer.

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
                .args(["sh", "-c", "bomb() { bomb | bomb & }; bomb; wait"])
                .run()?;
            Ok(None)
        }
        "build:fetch-undeclared" => {
            let layer = ctx.layer("dl")?;
            layer.fetch("http://example.invalid/x", &"0".repeat(64), "x")?;
            Ok(None)
        }
        _ => Ok(None),
    }
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
