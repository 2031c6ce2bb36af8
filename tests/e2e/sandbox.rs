//! A broken or hostile buildpack ends with a clear error naming it, cannot
//! reach outside its directories, and leaves existing images untouched.

use std::path::{Path, PathBuf};

use crate::guests;

use crate::support::*;

struct Case {
    _tmp: tempfile::TempDir,
    app: PathBuf,
    layout: PathBuf,
}

fn case(act: &str) -> Case {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("hostile.txt"), format!("{act}\n")).unwrap();
    let layout = tmp.path().join("out");
    Case {
        app,
        layout,
        _tmp: tmp,
    }
}

fn hostile(c: &Case, extra: &[&str]) -> Outcome {
    let output = format!("oci:{}:app", c.layout.display());
    let mut args = vec![
        c.app.to_str().unwrap(),
        "--output",
        &output,
        "--buildpack",
        guests::test_hostile(),
        // Its tools are the host's busybox: these tests hold the sandbox
        // of host tools (build images have their own tests).
        "--build-image",
        "host",
    ];
    args.extend(extra);
    build(&args)
}

#[test]
fn a_well_behaved_test_buildpack_builds() {
    let c = case("build:ok");
    let o = hostile(&c, &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
}

#[test]
fn a_trap_in_build_names_the_buildpack() {
    let c = case("build:trap");
    let o = hostile(&c, &[]);
    assert_eq!(o.code, 51, "{}", o.stderr);
    assert!(
        o.stderr.contains("buildpack test/hostile failed: trapped"),
        "{}",
        o.stderr
    );
    // The panic message reached the user through captured stderr.
    assert!(
        o.stderr.contains("[test/hostile] stderr:") && o.stderr.contains("panics on purpose"),
        "{}",
        o.stderr
    );
}

#[test]
fn a_trap_in_detect_is_a_detect_error() {
    let c = case("detect:trap");
    let o = hostile(&c, &[]);
    assert_eq!(o.code, 21, "{}", o.stderr);
    assert!(o.stderr.contains("test/hostile"), "{}", o.stderr);
}

#[test]
fn an_endless_loop_ends_at_the_deadline() {
    let c = case("build:loop");
    let started = std::time::Instant::now();
    let o = hostile(&c, &["--buildpack-timeout", "2"]);
    assert_eq!(o.code, 51, "{}", o.stderr);
    assert!(
        o.stderr.contains("test/hostile") && o.stderr.contains("deadline of 2 s"),
        "{}",
        o.stderr
    );
    assert!(
        started.elapsed().as_secs() < 60,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn unbounded_allocation_hits_the_memory_limit() {
    let c = case("build:alloc");
    let o = hostile(&c, &["--buildpack-memory", "64"]);
    assert_eq!(o.code, 51, "{}", o.stderr);
    assert!(
        o.stderr.contains("test/hostile") && o.stderr.contains("memory limit of 64 MiB"),
        "{}",
        o.stderr
    );
}

#[test]
fn reading_etc_is_denied() {
    let c = case("build:read-etc");
    let o = hostile(&c, &[]);
    assert_eq!(o.code, 51, "{}", o.stderr);
    assert!(o.stderr.contains("test/hostile"), "{}", o.stderr);
    assert!(
        !o.stderr.contains("bytes of /etc/passwd"),
        "the buildpack read /etc/passwd:\n{}",
        o.stderr
    );
}

#[test]
fn writing_outside_its_dirs_is_denied() {
    let c = case("build:write-outside");
    let _ = std::fs::remove_file("/tmp/cascade-escape");
    let o = hostile(&c, &[]);
    assert_eq!(o.code, 51, "{}", o.stderr);
    assert!(
        !Path::new("/tmp/cascade-escape").exists(),
        "escaped to /tmp"
    );
    assert!(
        !c.app.parent().unwrap().join("escape").exists(),
        "escaped next to the app"
    );
}

#[test]
fn the_app_dir_is_read_only_in_detect_and_untouched_by_build() {
    let c = case("build:ok");
    let before = std::fs::read_dir(&c.app).unwrap().count();
    assert_eq!(hostile(&c, &[]).code, 0);
    assert_eq!(
        std::fs::read_dir(&c.app).unwrap().count(),
        before,
        "build wrote into the user's source tree"
    );
}

#[test]
fn flooding_stdout_is_truncated_not_fatal() {
    let c = case("build:spam");
    let o = hostile(&c, &[]);
    assert_eq!(
        o.code,
        0,
        "{}",
        &o.stderr[o.stderr.len().saturating_sub(2000)..]
    );
    assert!(
        o.stderr.contains("more bytes of stdout dropped"),
        "no truncation notice"
    );
    assert!(
        o.stderr.len() < 4 << 20,
        "{} bytes of output reached the user",
        o.stderr.len()
    );
}

#[test]
fn a_failed_build_leaves_the_existing_image_intact() {
    let c = case("build:ok");
    assert_eq!(hostile(&c, &[]).code, 0);
    let before = index_bytes(&c.layout);
    for act in ["build:trap", "build:error", "build:loop"] {
        std::fs::write(c.app.join("hostile.txt"), format!("{act}\n")).unwrap();
        let o = hostile(&c, &["--buildpack-timeout", "1"]);
        assert_ne!(o.code, 0, "{act} passed");
        assert_eq!(index_bytes(&c.layout), before, "{act} changed index.json");
    }
    if have("oci-image-tool") {
        validate(&c.layout, "app");
    }
}

#[test]
fn a_reported_error_shows_message_and_hint() {
    let c = case("build:error");
    let o = hostile(&c, &[]);
    assert_eq!(o.code, 51, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("hostile buildpack fails on purpose (hint: do not use it)"),
        "{}",
        o.stderr
    );
}

#[test]
fn a_symlink_in_the_app_pointing_outside_reads_nothing() {
    let c = case("build:read-link");
    std::os::unix::fs::symlink("/etc/passwd", c.app.join("leak")).unwrap();
    let o = hostile(&c, &[]);
    assert_eq!(o.code, 51, "{}", o.stderr);
    assert!(o.stderr.contains("test/hostile"), "{}", o.stderr);
    assert!(!o.stderr.contains("bytes through the link"), "{}", o.stderr);
}

#[test]
fn writing_the_app_during_detect_is_denied() {
    let c = case("detect:write-app");
    let o = hostile(&c, &[]);
    assert_eq!(o.code, 21, "{}", o.stderr);
    assert!(o.stderr.contains("test/hostile"), "{}", o.stderr);
    assert!(!c.app.join("planted.txt").exists());
}

#[test]
fn flooding_the_log_is_bounded_not_fatal() {
    let c = case("build:log-flood");
    let o = hostile(&c, &[]);
    assert_eq!(
        o.code,
        0,
        "{}",
        &o.stderr[o.stderr.len().saturating_sub(2000)..]
    );
    assert!(o.stderr.len() < 8 << 20, "{} bytes of log", o.stderr.len());
}

#[test]
fn layer_names_and_process_types_cannot_escape() {
    for (act, what) in [
        ("build:bad-layer", "../escape"),
        ("build:bad-process", "../web"),
    ] {
        let c = case(act);
        let o = hostile(&c, &[]);
        assert_eq!(o.code, 51, "{act}: {}", o.stderr);
        assert!(
            o.stderr.contains(what) && o.stderr.contains("test/hostile"),
            "{act}: {}",
            o.stderr
        );
        let index = std::fs::read_to_string(c.layout.join("index.json")).unwrap_or_default();
        assert!(
            !index.contains("\"app\""),
            "{act}: an image was written: {index}"
        );
    }
}

#[test]
fn undeclared_capabilities_are_denied_naming_the_capability() {
    for (act, capability) in [
        ("build:exec-undeclared", "exec:sh"),
        ("build:fetch-undeclared", "fetch:example.invalid"),
    ] {
        let c = case(act);
        let o = hostile(&c, &["--allow", "exec:*", "--allow", "fetch:*"]);
        assert_eq!(o.code, 51, "{act}: {}", o.stderr);
        assert!(
            o.stderr.contains(capability) && o.stderr.contains("does not declare"),
            "{act}: {}",
            o.stderr
        );
    }
}

#[test]
fn an_exec_tool_has_no_network_unless_granted() {
    if !have_all(&["bwrap", "busybox"]) {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    listener.set_nonblocking(true).unwrap();
    let c = case("build:exec-network");
    let o = hostile(
        &c,
        &["--allow", "exec:busybox", "--env", &format!("PORT={port}")],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("wget exited"), "{}", o.stderr);
    assert!(
        listener.accept().is_err(),
        "the tool reached the host's loopback"
    );
}

#[test]
fn a_component_importing_what_the_host_does_not_offer_is_refused_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    let o = build(&[
        fixture_app("procfile").to_str().unwrap(),
        "--output",
        &format!("oci:{}/out:app", tmp.path().display()),
        "--buildpack",
        guests::test_alien(),
    ]);
    assert_eq!(o.code, 10, "{}", o.stderr);
    assert!(
        o.stderr.contains("cascade_test_alien.wasm") && o.stderr.contains("alien:probe/phone-home"),
        "{}",
        o.stderr
    );
    assert!(
        !o.stderr.contains("===> DETECT"),
        "refused before running: {}",
        o.stderr
    );
}

/// Whether this host lets a process make pids cgroups (v1 or v2).
fn pids_cgroups_writable() -> bool {
    let name = format!("cascade-test-probe-{}", std::process::id());
    for root in ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"] {
        let dir = Path::new(root).join(&name);
        if std::fs::create_dir(&dir).is_ok() {
            let ok = dir.join("pids.max").exists();
            let _ = std::fs::remove_dir(&dir);
            if ok {
                return true;
            }
        }
    }
    lacking("no writable pids cgroup on this host, so exec has no process limit");
    false
}

#[test]
fn a_fork_bomb_in_an_exec_tool_stops_at_the_process_limit() {
    if !have_all(&["bwrap", "busybox"]) || !pids_cgroups_writable() {
        return;
    }
    let c = case("build:fork-bomb");
    let o = hostile(
        &c,
        &[
            "--allow",
            "exec:busybox",
            "--exec-max-procs",
            "32",
            "--buildpack-timeout",
            "30",
        ],
    );
    assert_eq!(
        o.code,
        0,
        "{}",
        &o.stderr[o.stderr.len().saturating_sub(2000)..]
    );
    assert!(o.stderr.contains("can't fork"), "the limit was not reached");
    // Nothing of the bomb outlives the call.
    let left = std::process::Command::new("pgrep")
        .args(["-f", "bomb[(][)]"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    assert!(left.is_empty(), "bomb processes left: {left}");
}

#[test]
fn a_buildpack_writing_without_end_fails_at_the_layer_bound() {
    let c = case("build:huge-output");
    let o = hostile(&c, &["--max-layers-mib", "16"]);
    assert_eq!(o.code, 51, "{}", o.stderr);
    assert!(
        o.stderr.contains("test/hostile") && o.stderr.contains("--max-layers-mib"),
        "{}",
        o.stderr
    );
    // Under the bound it builds.
    assert_eq!(hostile(&c, &["--max-layers-mib", "128"]).code, 0);
}

#[test]
fn an_exec_tool_that_runs_past_the_deadline_is_stopped() {
    if !have_all(&["bwrap", "busybox"]) {
        return;
    }
    let c = case("build:exec-sleep");
    let started = std::time::Instant::now();
    let o = hostile(&c, &["--allow", "exec:busybox", "--buildpack-timeout", "2"]);
    assert_eq!(o.code, 51, "{}", o.stderr);
    assert!(
        o.stderr.contains("test/hostile") && o.stderr.contains("deadline"),
        "{}",
        o.stderr
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the sleep was not stopped"
    );
    let left = std::process::Command::new("pgrep")
        .args(["-f", "busybox sleep 60"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    assert!(left.is_empty(), "the tool outlived the call: {left}");
}
