//! Language runtimes made on the spot from this machine's, laid out as
//! their official relocatable builds are, and a loopback HTTP server that
//! serves them as a platform's mirror would: what the Python and Node.js
//! e2e tests and the bench build against (no test reaches the real
//! download sites). Self-contained, so the bench includes it by path.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use sha2::Digest as _;

/// A runtime tarball and what it needs of a run image.
pub struct Runtime {
    pub tarball: Vec<u8>,
    /// Of the tarball, hex.
    pub sha: String,
    /// `3.11.7`, `20.20.2`.
    pub version: String,
    /// The path a mirror serves it at (`/dist/node-v20.20.2-linux-x64.tar.gz`).
    pub file: String,
    /// System libraries it links: a run image needs them.
    pub libs: Vec<PathBuf>,
}

impl Runtime {
    /// An inventory (`[[artifacts]]`) naming this runtime at `url`.
    pub fn inventory(&self, url: &str) -> String {
        let arch = if cfg!(target_arch = "aarch64") {
            "arm64"
        } else {
            "amd64"
        };
        format!(
            "[[artifacts]]\nversion = \"{}\"\nos = \"linux\"\narch = \"{arch}\"\nurl = \"{url}\"\nchecksum = \"sha256:{}\"\n",
            self.version, self.sha
        )
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A command's stdout, or why it failed.
fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A loopback HTTP server for fixed files, counting the requests it serves.
pub struct Files {
    pub port: u16,
    pub hits: Arc<AtomicUsize>,
}

pub fn serve(files: Vec<(&'static str, Vec<u8>)>) -> Files {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let line = String::from_utf8_lossy(&req);
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let body = files
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, b)| b.clone());
            let head = match &body {
                Some(b) => format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    b.len()
                ),
                None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .into(),
            };
            let _ = stream.write_all(head.as_bytes());
            if let Some(b) = body {
                let _ = stream.write_all(&b);
            }
        }
    });
    Files { port, hits }
}

/// The libraries `ldd` resolves for the ELF file at `path` (the loader
/// included), as absolute paths.
pub fn ldd_paths(path: &Path) -> Vec<PathBuf> {
    let ldd = output(Command::new("ldd").arg(path)).unwrap_or_default();
    ldd.lines()
        .filter_map(|line| {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
            // "/lib64/ld-linux-x86-64.so.2 (0x...)"
            line.split("=>")
                .last()
                .and_then(|r| r.split_whitespace().next())
                .filter(|p| p.starts_with('/'))
                .map(PathBuf::from)
        })
        .collect()
}

/// Extension modules left out of the runtime: they link libraries (Tk,
/// ncurses, readline, gdbm) no web app needs and the run image lacks.
const LEFT_OUT_MODULES: [&str; 6] = [
    "_tkinter", "_curses", "readline", "_dbm", "_gdbm", "_sqlite3",
];
/// Top-level stdlib directories left out (tests, Tk, the static library).
const LEFT_OUT_DIRS: [&str; 6] = [
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "site-packages",
    "__pycache__",
];

/// A relocatable CPython made from this machine's (python-build-standalone's
/// install_only layout: `python/bin/python3`, `python/lib/python3.X/...`,
/// libpython found through `$ORIGIN/../lib`, which patchelf writes), made
/// once per process (it takes seconds).
pub fn python() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(make_python)
        .as_ref()
        .map_err(Clone::clone)
}

fn make_python() -> Result<Runtime, String> {
    let info = output(Command::new("python3").args([
        "-c",
        "import sys, sysconfig; print(sys.base_prefix); print('%d.%d.%d' % sys.version_info[:3]); print(sysconfig.get_config_var('LDLIBRARY') or '')",
    ]))?;
    let mut lines = info.lines();
    let unknown = || "python3 did not say its prefix and version".to_owned();
    let prefix = PathBuf::from(lines.next().ok_or_else(unknown)?);
    let version = lines.next().ok_or_else(unknown)?.to_owned();
    let ldlibrary = lines.next().unwrap_or_default().to_owned();
    let xy = version.rsplit_once('.').ok_or_else(unknown)?.0.to_owned();
    let stdlib = prefix.join(format!("lib/python{xy}"));
    let binary = prefix.join(format!("bin/python{xy}"));
    let pip = stdlib.join("site-packages/pip");
    if !(binary.is_file() && stdlib.join("os.py").is_file() && pip.is_dir()) {
        return Err(format!(
            "this machine's python3 ({}) is not laid out as a relocatable CPython (bin/python{xy}, lib/python{xy}/os.py, site-packages/pip)",
            prefix.display()
        ));
    }
    let work = tempfile::tempdir().unwrap();
    let patched = work.path().join(format!("python{xy}"));
    std::fs::copy(&binary, &patched).unwrap();
    // libpython3.X.so (a shared build) or libpython3.X.a (a static one).
    let shared = ldlibrary.contains(".so");
    let libpython = prefix.join("lib").join(format!("libpython{xy}.so.1.0"));
    if shared {
        output(
            Command::new("patchelf")
                .args(["--set-rpath", "$ORIGIN/../lib"])
                .arg(&patched),
        )?;
    }

    let (tarball, modules) = python_tarball(&stdlib, &xy, &patched, shared.then_some(&libpython));

    let mut libs: Vec<PathBuf> = Vec::new();
    for elf in std::iter::once(&binary).chain(&modules) {
        for lib in ldd_paths(elf) {
            if !lib.starts_with(&prefix) && !libs.contains(&lib) {
                libs.push(lib);
            }
        }
    }
    let arch = if cfg!(target_arch = "aarch64") {
        "aarch64"
    } else {
        "x86_64"
    };
    Ok(Runtime {
        sha: sha256(&tarball),
        file: format!("/cpython-{version}-{arch}-linux-install_only.tar.gz"),
        tarball,
        version,
        libs,
    })
}

/// The install_only tarball: the patched interpreter, libpython (a shared
/// build's), the standard library but what [`LEFT_OUT_DIRS`] and
/// [`LEFT_OUT_MODULES`] name, and pip; and the extension modules kept.
fn python_tarball(
    stdlib: &Path,
    xy: &str,
    patched: &Path,
    libpython: Option<&PathBuf>,
) -> (Vec<u8>, Vec<PathBuf>) {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.append_path_with_name(patched, format!("python/bin/python{xy}"))
        .unwrap();
    for link in ["python3", "python"] {
        symlink(
            &mut tar,
            &format!("python/bin/{link}"),
            &format!("python{xy}"),
        );
    }
    let mut modules = Vec::new();
    if let Some(libpython) = libpython {
        tar.append_path_with_name(libpython, format!("python/lib/libpython{xy}.so.1.0"))
            .unwrap();
    }
    append_tree(
        &mut tar,
        stdlib,
        &format!("python/lib/python{xy}"),
        &mut |rel| {
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let name = rel.file_name().unwrap().to_string_lossy();
            let top_dir = rel.components().count() == 1 && stdlib.join(rel).is_dir();
            let keep = !(top_dir
                && (LEFT_OUT_DIRS.contains(&name.as_ref()) || name.starts_with("config-")))
                && name != "__pycache__"
                && !(first == "lib-dynload"
                    && LEFT_OUT_MODULES
                        .iter()
                        .any(|m| name.starts_with(&format!("{m}."))));
            if keep && first == "lib-dynload" && name.ends_with(".so") {
                modules.push(stdlib.join(rel));
            }
            keep
        },
    );
    // pip, for `python -m pip`, as python-build-standalone ships it.
    for entry in std::fs::read_dir(stdlib.join("site-packages")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "pip" || (name.starts_with("pip-") && name.ends_with(".dist-info")) {
            append_tree(
                &mut tar,
                &entry.path(),
                &format!("python/lib/python{xy}/site-packages/{name}"),
                &mut |rel| rel.file_name().unwrap() != "__pycache__",
            );
        }
    }
    (tar.into_inner().unwrap().finish().unwrap(), modules)
}

fn symlink<W: std::io::Write>(tar: &mut tar::Builder<W>, path: &str, target: &str) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    tar.append_link(&mut header, path, target).unwrap();
}

/// `dir`'s files under `name`, in name order, those `keep` (given the path
/// relative to `dir`) says yes to; a directory said no to is skipped whole.
fn append_tree<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    name: &str,
    keep: &mut dyn FnMut(&Path) -> bool,
) {
    fn walk<W: std::io::Write>(
        tar: &mut tar::Builder<W>,
        root: &Path,
        rel: &Path,
        name: &str,
        keep: &mut dyn FnMut(&Path) -> bool,
    ) {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let rel = rel.join(entry.file_name());
            if !keep(&rel) {
                continue;
            }
            let at = format!("{name}/{}", rel.display());
            // A link to a directory (Debian's GOROOT is made of them) is
            // walked as the directory.
            if entry.path().is_dir() {
                walk(tar, root, &rel, name, keep);
            } else {
                tar.append_path_with_name(entry.path(), at).unwrap();
            }
        }
    }
    walk(tar, dir, Path::new(""), name, keep);
}

/// The host's node: its binary, version, npm dir and the libraries it links.
struct HostNode {
    binary: PathBuf,
    version: String,
    npm: PathBuf,
    libs: Vec<PathBuf>,
}

fn host_node() -> Result<HostNode, String> {
    let none = || "no node on PATH".to_owned();
    let binary = std::fs::canonicalize(
        std::env::split_paths(&std::env::var_os("PATH").ok_or_else(none)?)
            .map(|d| d.join("node"))
            .find(|p| p.is_file())
            .ok_or_else(none)?,
    )
    .map_err(|e| e.to_string())?;
    let version = output(Command::new(&binary).arg("--version"))?
        .trim()
        .trim_start_matches('v')
        .to_owned();
    let npm = binary
        .parent()
        .and_then(Path::parent)
        .ok_or_else(none)?
        .join("lib/node_modules/npm");
    let mut libs = Vec::new();
    for p in ldd_paths(&binary) {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let glibc = [
            "ld-linux",
            "libc.",
            "libm.",
            "libdl.",
            "libpthread.",
            "librt.",
        ]
        .iter()
        .any(|g| name.starts_with(g))
            || name.starts_with("libstdc++")
            || name.starts_with("libgcc_s");
        if !glibc {
            // A distro build linking libuv, openssl... is not a
            // nodejs.org-shaped runtime.
            return Err(format!(
                "this machine's node links {name}: not an official-style linux build"
            ));
        }
        libs.push(p);
    }
    if !npm.join("bin/npm-cli.js").is_file() {
        return Err(format!(
            "no npm beside this machine's node ({})",
            npm.display()
        ));
    }
    Ok(HostNode {
        binary,
        version,
        npm,
        libs,
    })
}

/// This machine's node (an official linux build needs only glibc) laid
/// out as nodejs.org ships it, made once per process.
pub fn node() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let node = host_node()?;
            let dist_arch = if cfg!(target_arch = "aarch64") {
                "arm64"
            } else {
                "x64"
            };
            let top = format!("node-v{}-linux-{dist_arch}", node.version);
            let tarball = runtime_tarball(&node, &top);
            Ok(Runtime {
                sha: sha256(&tarball),
                file: format!("/dist/{top}.tar.gz"),
                tarball,
                version: node.version,
                libs: node.libs,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// `node-vX-linux-ARCH.tar.gz` as nodejs.org ships it: one top directory
/// with bin/node, bin/npm and lib/node_modules/npm.
fn runtime_tarball(node: &HostNode, top: &str) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.append_path_with_name(&node.binary, format!("{top}/bin/node"))
        .unwrap();
    tar.append_dir_all(format!("{top}/lib/node_modules/npm"), &node.npm)
        .unwrap();
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_mode(0o777);
    tar.append_link(
        &mut link,
        format!("{top}/bin/npm"),
        "../lib/node_modules/npm/bin/npm-cli.js",
    )
    .unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

/// This machine's Go (its GOROOT: `bin/`, `pkg/`, `src/` but test data,
/// `VERSION`) laid out as go.dev ships it, `go/` on top, made once per
/// process.
pub fn go() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let env = output(Command::new("go").args(["env", "GOROOT", "GOVERSION"]))?;
            let mut lines = env.lines();
            let unknown = || "go env did not say GOROOT and GOVERSION".to_owned();
            let root = PathBuf::from(lines.next().ok_or_else(unknown)?);
            let version = lines
                .next()
                .ok_or_else(unknown)?
                .trim_start_matches("go")
                .to_owned();
            let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let mut tar = tar::Builder::new(gz);
            // Debian's GOROOT links src/ and the rest to /usr/share.
            tar.follow_symlinks(true);
            tar.mode(tar::HeaderMode::Deterministic);
            tar.append_path_with_name(root.join("VERSION"), "go/VERSION")
                .map_err(|e| e.to_string())?;
            for top in ["bin", "pkg", "src"] {
                append_tree(
                    &mut tar,
                    &root.join(top),
                    &format!("go/{top}"),
                    &mut |rel| rel.file_name().is_some_and(|n| n != "testdata"),
                );
            }
            let tarball = tar.into_inner().unwrap().finish().unwrap();
            let arch = if cfg!(target_arch = "aarch64") {
                "arm64"
            } else {
                "amd64"
            };
            Ok(Runtime {
                sha: sha256(&tarball),
                file: format!("/dl/go{version}.linux-{arch}.tar.gz"),
                tarball,
                libs: ldd_paths(&root.join("bin/go")),
                version,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// static-web-server's release archive for this machine, laid out as its
/// GitHub releases are (`static-web-server-v2.42.0-x86_64-unknown-linux-musl/
/// static-web-server`, a static musl binary), made by
/// scripts/static-web-server.sh from its crates.io source once per run.
pub fn static_web_server() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/static-web-server.sh");
            let archive = PathBuf::from(output(&mut Command::new(script))?.trim());
            let tarball =
                std::fs::read(&archive).map_err(|e| format!("{}: {e}", archive.display()))?;
            let name = archive
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or("the script printed no archive")?;
            let version = name
                .strip_prefix("static-web-server-v")
                .and_then(|r| r.split('-').next())
                .ok_or("the archive's name has no version")?
                .to_owned();
            Ok(Runtime {
                sha: sha256(&tarball),
                file: format!(
                    "/static-web-server/static-web-server/releases/download/v{version}/{name}"
                ),
                tarball,
                libs: Vec::new(),
                version,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}
