//! `cascade bloat`, `audit --usage` and the stack contract on a run image
//! made from real Debian packages (scripts/debian-run-image.sh: `apt-get
//! download`, `dpkg-deb -x`, a real dpkg status and file lists): a Python
//! app started by the image's python, a dynamically linked C program and a
//! static Go binary, each asserted to reach exactly its packages.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::support::*;

/// The packages of the base; `noexpat` lacks libexpat1.
const PACKAGES: &[&str] = &[
    "base-files",
    "libc6",
    "libgcc-s1",
    "zlib1g",
    "libexpat1",
    "libssl3",
    "libpython3.11-minimal",
    "python3.11-minimal",
    "python3-minimal",
    "bash",
    "libtinfo6",
    "coreutils",
    "libselinux1",
    "libpcre2-8-0",
    "libacl1",
    "libattr1",
    "libgmp10",
    "dash",
];

const TOOLS: &[&str] = &["apt-get", "dpkg-deb", "umoci", "bwrap", "gcc", "go"];

/// The Debian run images, made once under target/ (`base`, `noexpat`,
/// `patched`: the same packages, a later date and version).
fn debian() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let layout = target_dir().join("debian-run");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/debian-run-image.sh");
        for (tag, created, version, drop) in [
            ("base", "2026-01-01T00:00:00Z", "12.1", ""),
            ("noexpat", "2026-02-01T00:00:00Z", "12.2", "libexpat1"),
            ("patched", "2026-03-01T00:00:00Z", "12.3", ""),
        ] {
            ok(Command::new(&script)
                .arg(&layout)
                .args([tag, created, version])
                .args(PACKAGES.iter().filter(|p| **p != drop)));
        }
        layout
    })
}

fn base(tag: &str) -> String {
    format!("oci:{}:{tag}", debian().display())
}

/// The three apps, built on `base` into one layout of the test's.
struct Apps {
    _tmp: tempfile::TempDir,
    layout: PathBuf,
}

impl Apps {
    fn image(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.layout.display())
    }
}

fn apps() -> Apps {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("images");
    // A C program linked against libm and libc.
    let c = tmp.path().join("c");
    std::fs::create_dir(&c).unwrap();
    std::fs::write(
        c.join("hello.c"),
        "#include <stdio.h>\n#include <math.h>\nint main(int n, char **v) { printf(\"%f\\n\", sqrt((double)n)); return 0; }\n",
    )
    .unwrap();
    ok(Command::new("gcc")
        .current_dir(&c)
        .args(["-O2", "-o", "hello", "hello.c", "-lm"]));
    std::fs::remove_file(c.join("hello.c")).unwrap();
    std::fs::write(c.join("Procfile"), "web: ./hello\n").unwrap();
    // A static Go binary.
    let go = tmp.path().join("go");
    std::fs::create_dir(&go).unwrap();
    std::fs::write(
        go.join("main.go"),
        "package main\nimport \"fmt\"\nfunc main() { fmt.Println(\"hi\") }\n",
    )
    .unwrap();
    std::fs::write(go.join("go.mod"), "module example.com/hi\ngo 1.19\n").unwrap();
    ok(Command::new("go")
        .current_dir(&go)
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", tmp.path().join("gocache"))
        .env("GOFLAGS", "-mod=mod")
        .args(["build", "-o", "hello", "."]));
    for f in ["main.go", "go.mod"] {
        std::fs::remove_file(go.join(f)).unwrap();
    }
    std::fs::write(go.join("Procfile"), "web: ./hello\n").unwrap();
    let py = fixture_app("python-socket");
    for (app, tag) in [
        (py.as_path(), "py"),
        (c.as_path(), "c"),
        (go.as_path(), "go"),
    ] {
        build_ok(&[
            app.to_str().unwrap(),
            "--run-image",
            &base("base"),
            "--output",
            &format!("oci:{}:{tag}", layout.display()),
        ]);
    }
    Apps { _tmp: tmp, layout }
}

fn bloat(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let o = cascade_run("bloat", &all);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_schema("bloat", &v);
    v
}

fn names(report: &Value, pick: impl Fn(&Value) -> bool) -> BTreeSet<String> {
    report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| pick(p))
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// What the Python app reaches: its python (the `python3` link's package
/// and the interpreter's), the standard library it loads at every start
/// (with the OpenSSL its `_ssl`/`_hashlib` modules link), the loader and
/// libc, zlib and expat.
const PYTHON_REACHES: &[&str] = &[
    "libc6",
    "libexpat1",
    "libpython3.11-minimal",
    "libssl3",
    "python3-minimal",
    "python3.11-minimal",
    "zlib1g",
];

#[test]
fn bloat_names_exactly_the_packages_each_app_reaches_and_audit_adds_them_up() {
    if !have_all(TOOLS) {
        return;
    }
    let apps = apps();
    let py = bloat(&[&apps.image("py")]);
    assert_eq!(py["package_database"], "dpkg");
    assert_eq!(names(&py, |p| p["reachable"] == true), set(PYTHON_REACHES));
    let never = names(&py, |p| p["reachable"] == false);
    assert!(
        never.contains("bash") && never.contains("coreutils"),
        "{never:?}"
    );
    let expat = py["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "libexpat1")
        .unwrap();
    assert!(
        expat["via"][0]
            .as_str()
            .unwrap()
            .contains("libexpat.so.1 needed by /usr/bin/python3.11"),
        "{expat}"
    );
    let s = &py["summary"];
    assert_eq!(s["packages"], PACKAGES.len());
    assert_eq!(s["never_reachable"], PACKAGES.len() - PYTHON_REACHES.len());
    assert!(
        s["never_reachable_bytes"].as_u64().unwrap() > 20 << 20,
        "{s}"
    );

    let c = bloat(&[&apps.image("c")]);
    assert_eq!(names(&c, |p| p["reachable"] == true), set(&["libc6"]));
    let go = bloat(&[&apps.image("go")]);
    assert_eq!(names(&go, |p| p["reachable"] == true), set(&[]));
    assert!(go["missing_libraries"].as_array().unwrap().is_empty());

    let o = cascade_run(
        "audit",
        &[
            "--usage",
            &apps.image("py"),
            &apps.image("c"),
            &apps.image("go"),
            "--format",
            "json",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let usage: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_schema("audit-usage", &usage);
    assert_eq!(usage["read"], 3);
    let reached_by = |name: &str| {
        usage["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| {
                (
                    p["reached_by"].as_u64().unwrap(),
                    p["images"].as_u64().unwrap(),
                )
            })
    };
    assert_eq!(reached_by("libc6"), Some((2, 3)));
    assert_eq!(reached_by("libexpat1"), Some((1, 3)));
    assert_eq!(reached_by("bash"), Some((0, 3)));
    let never: BTreeSet<String> = usage["never_reached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = PACKAGES
        .iter()
        .filter(|p| !PYTHON_REACHES.contains(p))
        .map(|p| (*p).to_owned())
        .collect();
    assert_eq!(never, expected);
}

#[test]
fn a_trace_of_the_python_app_loads_a_subset_of_what_is_reachable() {
    if !have_all(TOOLS) || !have("strace") {
        return;
    }
    let apps = apps();
    let port = free_port().to_string();
    let traced = bloat(&[&apps.image("py"), "--trace", "--port", &port]);
    let loaded = names(&traced, |p| p["loaded"] == true);
    let reachable = names(&traced, |p| p["reachable"] == true);
    assert!(
        loaded.contains("python3.11-minimal") && loaded.contains("libc6"),
        "{loaded:?}"
    );
    assert!(
        loaded.is_subset(&reachable),
        "{loaded:?} not within {reachable:?}"
    );
    assert!(
        traced["trace"]["probe"]
            .as_str()
            .unwrap()
            .contains("HTTP/1.0 200 OK"),
        "{}",
        traced["trace"]
    );
    assert_eq!(traced["summary"]["loaded"], loaded.len());
}

#[test]
fn a_vex_document_covers_only_packages_never_reached() {
    if !have_all(TOOLS) || !have("python3") {
        return;
    }
    let apps = apps();
    let tmp = tempfile::tempdir().unwrap();
    let plain = bloat(&[&apps.image("c")]);
    let version = |name: &str| -> String {
        plain["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["version"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // A report in Grype's JSON format: findings in libc6 (the C program
    // reaches it), libssl3 and bash (it never does), in bash at a version
    // the image does not hold (another scan's), and in a library of the
    // app's own that the run image does not carry.
    let grype = serde_json::json!({
        "matches": [
            {"vulnerability": {"id": "CVE-2026-0001", "severity": "High"}, "artifact": {"name": "libc6", "version": version("libc6"), "type": "deb"}},
            {"vulnerability": {"id": "CVE-2026-0002", "severity": "Critical"}, "artifact": {"name": "libssl3", "version": version("libssl3"), "type": "deb"}},
            {"vulnerability": {"id": "CVE-2026-0003", "severity": "Medium"}, "artifact": {"name": "bash", "version": version("bash"), "type": "deb"}},
            {"vulnerability": {"id": "CVE-2026-0004", "severity": "Medium"}, "artifact": {"name": "bash", "version": "4.0-1", "type": "deb"}},
            {"vulnerability": {"id": "GHSA-xxxx", "severity": "Low"}, "artifact": {"name": "left-pad", "version": "1.3.0", "type": "npm"}}
        ],
        "source": {"type": "image"}
    });
    let report = tmp.path().join("grype.json");
    std::fs::write(&report, grype.to_string()).unwrap();
    let vex = tmp.path().join("vex.json");
    let v = bloat(&[
        &apps.image("c"),
        "--vulns",
        report.to_str().unwrap(),
        "--vex",
        vex.to_str().unwrap(),
    ]);
    let ids = |key: &str| -> Vec<String> {
        v["vulnerabilities"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids("reachable"), ["CVE-2026-0001"]);
    assert_eq!(ids("never_reached"), ["CVE-2026-0002", "CVE-2026-0003"]);
    assert_eq!(ids("not_in_run_image"), ["CVE-2026-0004", "GHSA-xxxx"]);
    let doc: Value = serde_json::from_slice(&std::fs::read(&vex).unwrap()).unwrap();
    assert_eq!(doc["@context"], "https://openvex.dev/ns/v0.2.0");
    let statements = doc["statements"].as_array().unwrap();
    let named: Vec<&str> = statements
        .iter()
        .map(|s| s["vulnerability"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(named, ["CVE-2026-0002", "CVE-2026-0003"]);
    for s in statements {
        assert_eq!(s["status"], "not_affected");
        assert_eq!(s["justification"], "vulnerable_code_not_in_execute_path");
        assert!(
            s["products"][0]["@id"]
                .as_str()
                .unwrap()
                .starts_with("pkg:oci/")
        );
    }
    // A consumer nobody here wrote reads it: lib4vex's OpenVEX parser.
    let script = "import sys\nfrom lib4vex.parser import VEXParser\np = VEXParser('openvex')\np.parse(sys.argv[1])\nvulns = p.get_vulnerabilities()\nprint(p.get_metadata()['id'])\nprint(' '.join(sorted(v['id'] + '=' + v['status'] for v in vulns)))\n";
    let o = run(Command::new("python3").args(["-c", script]).arg(&vex));
    if !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("No module named") {
        lacking("the Python module lib4vex (scripts/setup.sh installs it)");
        return;
    }
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("CVE-2026-0002=not_affected CVE-2026-0003=not_affected"),
        "{out}"
    );
}

#[test]
fn a_rebase_that_would_drop_a_library_the_app_loads_is_refused_by_name() {
    if !have_all(TOOLS) {
        return;
    }
    let apps = apps();
    let image = apps.image("py");
    let refused = cascade_run(
        "rebase",
        &[
            &image,
            "--run-image",
            &base("noexpat"),
            "--output",
            &apps.image("py-noexpat"),
        ],
    );
    assert_eq!(refused.code, 70, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("libexpat.so.1") && !refused.stderr.contains("libc.so.6"),
        "{}",
        refused.stderr
    );
    // A patched base that keeps every soname the app needs: no --force.
    let patched = cascade_run(
        "rebase",
        &[
            &image,
            "--run-image",
            &base("patched"),
            "--output",
            &apps.image("py-patched"),
        ],
    );
    assert_eq!(patched.code, 0, "{}", patched.stderr);
    let forced = cascade_run(
        "rebase",
        &[
            &image,
            "--run-image",
            &base("noexpat"),
            "--output",
            &apps.image("py-forced"),
            "--force",
        ],
    );
    assert_eq!(forced.code, 0, "{}", forced.stderr);
}

#[test]
fn a_build_warns_when_a_launch_binary_needs_a_library_nothing_provides() {
    if !have_all(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(tmp.path().join("gone.c"), "int gone(void) { return 7; }\n").unwrap();
    std::fs::write(
        app.join("main.c"),
        "int gone(void);\nint main(void) { return gone(); }\n",
    )
    .unwrap();
    ok(Command::new("gcc").current_dir(tmp.path()).args([
        "-shared",
        "-fPIC",
        "-Wl,-soname,libgone.so.7",
        "-o",
        "libgone.so.7",
        "gone.c",
    ]));
    ok(Command::new("gcc")
        .current_dir(&app)
        .args(["-o", "main", "main.c"])
        .arg(tmp.path().join("libgone.so.7")));
    std::fs::remove_file(app.join("main.c")).unwrap();
    std::fs::write(app.join("Procfile"), "web: ./main\n").unwrap();
    let built = build_ok(&[
        app.to_str().unwrap(),
        "--run-image",
        &base("base"),
        "--output",
        &format!("oci:{}:w", tmp.path().join("images").display()),
    ]);
    let warnings = built["warnings"].to_string();
    assert!(
        warnings.contains("/workspace/main needs libgone.so.7"),
        "{warnings}"
    );
}
