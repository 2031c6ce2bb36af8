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
//! - `ok`: behaves, and writes a launch layer.

use cascade_sdk::{
    BuildContext, BuildResult, Buildpack, BuildpackError, DetectContext, DetectResult, Result,
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
        _ => Ok(()),
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
        let layer = ctx.layer("ok")?.launch(true);
        std::fs::write(layer.path().join("hello.txt"), "hello from a layer\n")?;
        Ok(BuildResult::new().layer(layer))
    }
}

cascade_sdk::export_buildpack!(Hostile);
