//! Shared helpers: the binary, external tools, a busybox run image, running
//! an image under bwrap.

use std::path::{Path, PathBuf};

pub use crate::mirror::{Files, serve};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const BIN: &str = env!("CARGO_BIN_EXE_cascade");

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

pub fn fixture_app(name: &str) -> PathBuf {
    fixtures().join("apps").join(name)
}

/// The one rule for what a test needs from the host and this host lacks
/// (a tool, a Python module, a pids cgroup): under CI (`CI=true`) the test
/// fails, elsewhere it is skipped, loudly. The caller then returns.
pub fn lacking(what: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what}: required under CI (.ci/run and scripts/setup.sh provide it)"
    );
    eprintln!("!!!!! SKIPPING: {what} !!!!!");
}

/// Whether `tool` is on PATH (see [`lacking`] for when it is not).
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        lacking(&format!(
            "{tool} is not installed (apt-get install it to run this test)"
        ));
    }
    found
}

pub fn have_all(tools: &[&str]) -> bool {
    tools.iter().all(|t| have(t))
}

/// A temporary dir for state shared by the tests of this process. Statics
/// are never dropped, so it lives under cargo's target/tmp, which goes with
/// the build tree, instead of piling up in /tmp run after run.
fn shared_tempdir() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(root).unwrap();
    tempfile::tempdir_in(root).unwrap()
}

/// One compiled-component cache shared by the tests of this process.
pub fn cache_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(shared_tempdir).path()
}

/// `cascade` with a private cache and a clean SOURCE_DATE_EPOCH; build
/// images are unpacked once into a store shared by every test (and run).
pub fn cascade() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("CASCADE_CACHE_DIR", cache_dir())
        .env(
            "CASCADE_ROOTFS_DIR",
            target_dir().join("build-image-rootfs"),
        )
        .env_remove("SOURCE_DATE_EPOCH");
    cmd
}

/// The workspace's target dir, where heavy fixtures are kept between runs.
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

/// Cascade's Debian build image (Go, cargo, gcc, CA certificates), made by
/// scripts/build-image.sh from Debian's packages once under target/ and
/// reused by later runs: `oci:.../target/build-image:bookworm`.
pub fn build_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let layout = target_dir().join("build-image");
        ok(Command::new(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-image.sh"),
        )
        .arg(&layout));
        format!("oci:{}:bookworm", layout.display())
    })
}

/// `--build-image` of [`build_image`], as build arguments.
pub fn on_build_image() -> [String; 2] {
    ["--build-image".into(), build_image().into()]
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

#[track_caller]
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A build's outcome: exit code and both streams.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Outcome {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// `cascade SUBCOMMAND ARGS...`, whatever its exit code.
pub fn cascade_run(subcommand: &str, args: &[&str]) -> Outcome {
    run(cascade().arg(subcommand).args(args)).into()
}

/// `cascade build ARGS...` with its own cache dir `cache` (so a test sees
/// exactly what its builds cached), whatever its exit code.
pub fn build_in<S: AsRef<std::ffi::OsStr>>(cache: &Path, args: &[S]) -> Outcome {
    run(cascade()
        .env("CASCADE_CACHE_DIR", cache)
        .arg("build")
        .args(args))
    .into()
}

pub fn build(args: &[&str]) -> Outcome {
    cascade_run("build", args)
}

/// The layer digests a manifest lists, in order.
pub fn layer_digests(manifest: &serde_json::Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// Where the SBOM layer is among an image's layers (by the lifecycle
/// label's `sbom.sha`), counted from the top: rebase rewrites that one
/// layer of the app's, so it names the new base.
pub fn sbom_layer_from_top(config: &serde_json::Value) -> usize {
    let label: serde_json::Value = serde_json::from_str(
        config["config"]["Labels"]["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    let at = ids.iter().position(|d| *d == label["sbom"]["sha"]).unwrap();
    ids.len() - 1 - at
}

/// `layers` without the one `from_top` places below the top.
pub fn without(layers: &[String], from_top: usize) -> Vec<String> {
    let mut v = layers.to_vec();
    v.remove(v.len() - 1 - from_top);
    v
}

#[track_caller]
pub fn build_ok(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let o = build(&all);
    assert_eq!(o.code, 0, "build failed:\n{}\n{}", o.stdout, o.stderr);
    serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("report is not JSON ({e}): {}", o.stdout))
}

/// A run image made by umoci from busybox-static: `/bin/busybox` plus the
/// applet links a shell and a web server need. Built once per test process.
pub fn busybox_run_image() -> &'static str {
    static IMAGE: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    &IMAGE
        .get_or_init(|| {
            let dir = shared_tempdir();
            let layout = dir.path().join("run");
            make_run_image(&layout, "base", &[], &[]);
            let reference = format!("oci:{}:base", layout.display());
            (dir, reference)
        })
        .1
}

/// Make (or add to `layout`) a busybox run image tagged `tag`, with extra
/// files (path, content) and extra `umoci config` arguments.
pub fn make_run_image(layout: &Path, tag: &str, files: &[(&str, &str)], config: &[&str]) {
    make_run_image_with_host_files(layout, tag, files, config, &[]);
}

/// [`make_run_image`] plus copies of host files at the same paths (shared
/// libraries a dynamically linked program needs).
pub fn make_run_image_with_host_files(
    layout: &Path,
    tag: &str,
    files: &[(&str, &str)],
    config: &[&str],
    host_files: &[PathBuf],
) {
    let image = format!("{}:{tag}", layout.display());
    if !layout.join("oci-layout").exists() {
        ok(Command::new("umoci").args(["init", "--layout"]).arg(layout));
    }
    let bundle = tempfile::tempdir().unwrap();
    let bundle = bundle.path().join("b");
    ok(Command::new("umoci").args(["new", "--image", &image]));
    ok(Command::new("umoci")
        .args(["unpack", "--rootless", "--image", &image])
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    for d in ["bin", "etc", "tmp", "usr/bin"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "echo", "ls", "httpd", "env", "sleep", "wget"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000::/workspace:/bin/sh\n",
    )
    .unwrap();
    for host in host_files {
        let path = rootfs.join(host.strip_prefix("/").unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(host, path).unwrap();
    }
    for (path, content) in files {
        let path = rootfs.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    ok(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));
    ok(Command::new("umoci")
        .args([
            "config",
            "--image",
            &image,
            "--config.env",
            "PATH=/bin:/usr/bin",
        ])
        .args(config));
    ok(Command::new("umoci").args(["gc", "--layout"]).arg(layout));
}

fn busybox() -> PathBuf {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("busybox-static is installed")
}

/// `skopeo inspect --config` of an image in a layout.
pub fn skopeo_config(layout: &Path, tag: &str) -> serde_json::Value {
    let out = ok(Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--config"])
        .arg(format!("oci:{}:{tag}", layout.display())));
    serde_json::from_str(&out).unwrap()
}

/// `skopeo inspect --raw` (the manifest) of an image in a layout.
pub fn skopeo_manifest(layout: &Path, tag: &str) -> serde_json::Value {
    let out = ok(Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--raw"])
        .arg(format!("oci:{}:{tag}", layout.display())));
    serde_json::from_str(&out).unwrap()
}

pub fn validate(layout: &Path, tag: &str) {
    ok(Command::new("oci-image-tool")
        .args([
            "validate",
            "--type",
            "image",
            "--ref",
            &format!("name={tag}"),
        ])
        .arg(layout));
}

/// Unpack with umoci and return the bundle dir (rootfs is `bundle/rootfs`).
pub fn unpack(layout: &Path, tag: &str, into: &Path) -> PathBuf {
    let bundle = into.join("bundle");
    ok(Command::new("umoci")
        .args([
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:{tag}", layout.display()),
        ])
        .arg(&bundle));
    bundle
}

/// The command to run an image's default process under bwrap, with the
/// image's own Env and WorkingDir, nothing of the host.
pub fn bwrap(
    bundle: &Path,
    config: &serde_json::Value,
    extra_env: &[(&str, &str)],
    share_net: bool,
) -> Command {
    let c = &config["config"];
    let mut cmd = Command::new("bwrap");
    cmd.arg("--bind").arg(bundle.join("rootfs")).arg("/");
    cmd.args([
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--unshare-all",
        "--die-with-parent",
        "--clearenv",
    ]);
    if share_net {
        cmd.arg("--share-net");
    }
    for kv in c["Env"].as_array().into_iter().flatten() {
        let (k, v) = kv.as_str().unwrap().split_once('=').unwrap();
        cmd.args(["--setenv", k, v]);
    }
    for (k, v) in extra_env {
        cmd.args(["--setenv", k, v]);
    }
    cmd.args(["--chdir", c["WorkingDir"].as_str().unwrap_or("/")]);
    cmd.arg("--");
    for part in c["Entrypoint"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(c["Cmd"].as_array().into_iter().flatten())
    {
        cmd.arg(part.as_str().unwrap());
    }
    cmd
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Send `request` to 127.0.0.1:`port` once something listens there (within
/// 15 s) and return the whole response.
pub fn http_when_up(port: u16, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.write_all(request).unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listened on {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Run an unpacked image's default process under bwrap with `PORT` set
/// (network shared, so loopback reaches it), `GET /` once it listens, stop
/// it, and return the response.
pub fn run_and_get(bundle: &Path, config: &serde_json::Value) -> String {
    let port = free_port();
    let mut server = bwrap(bundle, config, &[("PORT", &port.to_string())], true)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let body = http_when_up(port, b"GET / HTTP/1.0\r\n\r\n");
    server.kill().unwrap();
    server.wait().unwrap();
    body
}

/// The image's index.json bytes, to prove a failed build changed nothing.
pub fn index_bytes(layout: &Path) -> Vec<u8> {
    std::fs::read(layout.join("index.json")).unwrap()
}

/// A CNCF distribution registry (`docker-registry` from Debian) on
/// 127.0.0.1 with its own storage, stopped on drop. Its access log is kept
/// so tests can see which requests reached it.
pub struct RegistryServer {
    child: std::process::Child,
    pub host: String,
    config: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
    /// Files its config names (an htpasswd), removed with it.
    _files: Option<tempfile::TempDir>,
}

impl RegistryServer {
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// A registry that wants HTTP basic auth (htpasswd, bcrypt) for `user`.
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        // docker-registry reads bcrypt htpasswd files; Python's crypt makes one.
        let hash = ok(Command::new("python3").args([
            "-W",
            "ignore",
            "-c",
            &format!("import crypt; print(crypt.crypt({password:?}, crypt.mksalt(crypt.METHOD_BLOWFISH)))"),
        ]));
        // Kept as long as the server (which may be restarted), then gone.
        let files = tempfile::tempdir().unwrap();
        let htpasswd = files.path().join("htpasswd");
        std::fs::write(
            &htpasswd,
            format!("{user}:{}\n", hash.trim().replacen("$2b$", "$2y$", 1)),
        )
        .unwrap();
        Self::start_holding(
            &format!(
                "auth:\n  htpasswd:\n    realm: cascade-tests\n    path: {}\n",
                htpasswd.display()
            ),
            Some(files),
        )
    }

    /// A registry with `extra_config` appended to its config.
    pub fn start_with(extra_config: &str) -> Self {
        Self::start_holding(extra_config, None)
    }

    fn start_holding(extra_config: &str, files: Option<tempfile::TempDir>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n{extra_config}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = dir.path().join("registry.log");
        let child = Self::spawn(&config, &log, dir.path());
        let server = Self {
            child,
            host,
            config,
            log,
            dir,
            _files: files,
        };
        server.wait_listening();
        server
    }

    fn spawn(config: &Path, log: &Path, dir: &Path) -> std::process::Child {
        let append = |p: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap()
        };
        Command::new("docker-registry")
            .arg("serve")
            .arg(config)
            // The access log goes to stdout, the application log to stderr.
            .stdout(append(log))
            .stderr(append(&dir.join("stderr.log")))
            .spawn()
            .expect("starting docker-registry")
    }

    fn wait_listening(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(&self.host).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "docker-registry did not listen on {}",
                self.host
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Kill it the hard way (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Start it again on the same address and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(&self.config, &self.log, self.dir.path());
        self.wait_listening();
    }

    /// Bytes of blob uploads in progress (the registry's `_uploads` data).
    pub fn uploading_bytes(&self) -> u64 {
        walkdir::WalkDir::new(self.dir.path().join("data"))
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_type().is_file()
                    && e.path().components().any(|c| c.as_os_str() == "_uploads")
            })
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    }

    /// `HOST:PORT/repo:tag`.
    pub fn image(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host)
    }

    /// Copy an image from a layout into the registry with skopeo.
    pub fn push_layout(&self, layout_ref: &str, repo_tag: &str) {
        ok(Command::new("skopeo")
            .args(["--insecure-policy", "copy", "--dest-tls-verify=false"])
            .arg(layout_ref)
            .arg(format!("docker://{}", self.image(repo_tag))));
    }

    /// Copy `from` to `to` within the registry with skopeo (repo:tag each).
    pub fn copy(&self, from: &str, to: &str) {
        ok(Command::new("skopeo")
            .args([
                "--insecure-policy",
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
            ])
            .arg(format!("docker://{}", self.image(from)))
            .arg(format!("docker://{}", self.image(to))));
    }

    /// `skopeo inspect --raw` (manifest) or `--config` of a registry image.
    pub fn inspect(&self, repo_tag: &str, what: &str) -> serde_json::Value {
        let out = ok(Command::new("skopeo")
            .args(["--insecure-policy", "inspect", "--tls-verify=false", what])
            .arg(format!("docker://{}", self.image(repo_tag))));
        serde_json::from_str(&out).unwrap()
    }

    /// Access-log lines so far.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("HTTP/1.1\""))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `value` checked against `docs/schema/NAME.schema.json` by the Python
/// `jsonschema` validator (scripts/setup.sh installs it with CycloneDX's);
/// panics with every mismatch. Skipped, loudly, where it is missing
/// outside CI.
pub fn assert_schema(name: &str, value: &serde_json::Value) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/schema")
        .join(format!("{name}.schema.json"));
    assert!(schema.is_file(), "{} missing", schema.display());
    let script = "import json, sys\nimport jsonschema\nschema = json.load(open(sys.argv[1]))\nv = jsonschema.Draft202012Validator(schema)\nerrors = [f\"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}\" for e in v.iter_errors(json.load(sys.stdin))]\nprint('\\n'.join(errors) if errors else 'VALID')\n";
    let mut child = match Command::new("python3")
        .args(["-c", script])
        .arg(&schema)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            lacking(&format!("the schema check needs python3: {e}"));
            return;
        }
    };
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        value.to_string().as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'jsonschema'") {
        lacking("the schema check needs the jsonschema module (pip install jsonschema)");
        return;
    }
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(out.status.success(), "the validator did not run: {stderr}");
    assert_eq!(
        said,
        "VALID",
        "output does not match {}:\n{value:#}",
        schema.display()
    );
}

/// Replace `from` (which must be there) by `to` in the file at `path`.
pub fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

/// `capability detail` of each call in a report.
pub fn calls(report: &serde_json::Value) -> Vec<String> {
    report["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| format!("{} {}", u["capability"], u["detail"]))
        .collect()
}

/// The ids of the group a build report says was chosen, in order.
pub fn group_ids(report: &serde_json::Value) -> Vec<&str> {
    report["group"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect()
}

/// Whether a build report says `layer` (`id:name`) was reused.
pub fn reused(report: &serde_json::Value, layer: &str) -> bool {
    let layers = report["layers"].as_array().unwrap();
    let l = layers
        .iter()
        .find(|l| l["name"] == layer)
        .unwrap_or_else(|| panic!("no {layer}: {report}"));
    l["reused"].as_bool().unwrap()
}

/// Extra build arguments for apps that install from a public registry
/// (PyPI, npm): the network, and this machine's CA bundle for the build
/// (it may sit behind a TLS-intercepting proxy; the bundle never reaches
/// the image).
pub fn from_registries() -> Option<Vec<String>> {
    let bundle = std::env::var("SSL_CERT_FILE")
        .ok()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
    if !bundle.is_file() {
        lacking("the registry tests need this machine's CA bundle");
        return None;
    }
    Some(vec![
        "--allow".into(),
        "network".into(),
        "--ca-certificates".into(),
        bundle.display().to_string(),
    ])
}
