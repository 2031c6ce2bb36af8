//! What kind of Python app this is: how its dependencies are declared, and
//! the Pipfile.lock → requirements translation that lets pip install a
//! Pipenv lock exactly (pins and hashes) without installing Pipenv.

use std::fmt::Write as _;
use std::path::{Component, Path};

use cascade_sdk::BuildpackError;

/// How the app declares its dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    /// `uv.lock` beside `pyproject.toml`: `uv sync --frozen`.
    Uv,
    /// `poetry.lock` beside `pyproject.toml`: `poetry install --no-root`.
    Poetry,
    /// `Pipfile.lock`: its pins and hashes, installed by pip.
    Pipenv,
    /// `requirements.txt`: `pip install -r`.
    Pip,
    /// Nothing to install: `.py` files only (or a pyproject.toml without
    /// dependencies).
    None,
}

impl Manager {
    /// The file whose digest decides whether the installed packages still
    /// hold.
    pub fn lockfile(self) -> Option<&'static str> {
        match self {
            Self::Uv => Some("uv.lock"),
            Self::Poetry => Some("poetry.lock"),
            Self::Pipenv => Some("Pipfile.lock"),
            Self::Pip => Some("requirements.txt"),
            Self::None => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Uv => "uv",
            Self::Poetry => "poetry",
            Self::Pipenv => "pipenv",
            Self::Pip => "pip",
            Self::None => "none",
        }
    }
}

/// Scripts that make an app with no manifest a Python app.
pub const SCRIPTS: [&str; 4] = ["main.py", "app.py", "server.py", "manage.py"];

/// Why detect passes, or `None`: a manifest, or a script a process can
/// run (one of [`SCRIPTS`], or any `.py` file when a Procfile names the
/// processes).
pub fn detect(app: &Path) -> Option<&'static str> {
    let has = |f: &str| app.join(f).is_file();
    for f in [
        "requirements.txt",
        "Pipfile.lock",
        "Pipfile",
        "uv.lock",
        "poetry.lock",
    ] {
        if has(f) {
            return Some(f);
        }
    }
    // A pyproject.toml that describes a project; one that only configures
    // tools (ruff, black) sits in apps of every language.
    if let Ok(text) = std::fs::read_to_string(app.join("pyproject.toml")) {
        let project = text
            .parse::<cascade_sdk::toml::Table>()
            .map_or(true, |doc| {
                doc.contains_key("project")
                    || doc.get("tool").and_then(|t| t.get("poetry")).is_some()
            });
        if project {
            return Some("pyproject.toml");
        }
    }
    if let Some(s) = SCRIPTS.iter().find(|s| has(s)) {
        return Some(s);
    }
    let py_files = std::fs::read_dir(app)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "py") && e.path().is_file());
    (py_files && has("Procfile")).then_some(".py files and a Procfile")
}

/// The manager, from the files present; a manifest without the lock it
/// needs is an error naming both.
pub fn manager(app: &Path) -> Result<Manager, BuildpackError> {
    let has = |f: &str| app.join(f).is_file();
    if has("pyproject.toml") {
        if has("uv.lock") {
            return Ok(Manager::Uv);
        }
        if has("poetry.lock") {
            return Ok(Manager::Poetry);
        }
    }
    if has("Pipfile.lock") {
        return Ok(Manager::Pipenv);
    }
    if has("Pipfile") {
        return Err(BuildpackError::new("Pipfile without Pipfile.lock").hint(
            "run `pipenv lock` and commit Pipfile.lock: builds install exactly what it pins",
        ));
    }
    if has("requirements.txt") {
        return Ok(Manager::Pip);
    }
    if has("uv.lock") || has("poetry.lock") {
        return Err(BuildpackError::new(
            "uv.lock or poetry.lock without pyproject.toml",
        ));
    }
    if has("pyproject.toml") && pyproject_has_dependencies(app)? {
        return Err(BuildpackError::new(
            "pyproject.toml declares dependencies but there is no uv.lock, poetry.lock or requirements.txt",
        )
        .hint("run `uv lock` (or `poetry lock`) and commit the lock file: builds install exactly what it pins"));
    }
    Ok(Manager::None)
}

/// The digest of what a requirements file installs from inside the app:
/// the file itself, the files it includes (`-r`, `-c`, recursively) and
/// the files of its local `--find-links` directories, each by name and
/// sha256. The installed packages are kept only while all of them hold: a
/// vendored wheel replaced under the same name is installed again.
pub fn requirements_digest(app: &Path, file: &str) -> Result<String, BuildpackError> {
    let mut seen: Vec<String> = Vec::new();
    let mut record = String::new();
    let mut pending = vec![file.to_owned()];
    while let Some(rel) = pending.pop() {
        if seen.contains(&rel) || seen.len() >= 256 {
            continue;
        }
        seen.push(rel.clone());
        let path = app.join(&rel);
        let bytes =
            std::fs::read(&path).map_err(|e| BuildpackError::new(format!("reading {rel}: {e}")))?;
        let _ = writeln!(record, "{rel} {}", cascade_sdk::fs::sha256(&bytes));
        let dir = Path::new(&rel).parent().unwrap_or(Path::new(""));
        for line in String::from_utf8_lossy(&bytes).lines() {
            let line = line.split(" #").next().unwrap_or_default().trim();
            let option = |names: &[&str]| {
                names.iter().find_map(|n| {
                    let rest = line.strip_prefix(n)?;
                    let value = rest.strip_prefix('=').unwrap_or(rest);
                    (rest.starts_with([' ', '=', '\t']) || n.len() == 2).then(|| value.trim())
                })
            };
            // A path inside the app, relative to the requirements file.
            let inside = |value: &str| {
                if value.contains("://") {
                    return None;
                }
                let joined = dir.join(value.strip_prefix("file:").unwrap_or(value));
                // Lexically: `..` may climb back to the app root, not out.
                let mut at: Vec<&std::ffi::OsStr> = Vec::new();
                for c in joined.components() {
                    match c {
                        Component::Normal(n) => at.push(n),
                        Component::CurDir => {}
                        Component::ParentDir => {
                            at.pop()?;
                        }
                        Component::RootDir | Component::Prefix(_) => return None,
                    }
                }
                (!at.is_empty()).then(|| {
                    at.iter()
                        .collect::<std::path::PathBuf>()
                        .display()
                        .to_string()
                })
            };
            if let Some(value) = option(&["--requirement", "--constraint", "-r", "-c"]) {
                pending.extend(inside(value));
            } else if let Some(value) = option(&["--find-links", "-f"])
                && let Some(links) = inside(value)
            {
                let entries =
                    cascade_sdk::fs::read_dir_sorted(app.join(&links)).unwrap_or_default();
                for entry in entries.iter().filter(|e| e.is_file()).take(4096) {
                    let name = entry.file_name().unwrap_or_default().to_string_lossy();
                    let digest = cascade_sdk::fs::sha256_file(entry)
                        .map_err(|e| BuildpackError::new(format!("reading {links}/{name}: {e}")))?;
                    let _ = writeln!(record, "{links}/{name} {digest}");
                }
            }
        }
    }
    Ok(cascade_sdk::fs::sha256(record))
}

/// The lock file read and checked before anything is downloaded: a TOML
/// lock (uv, Poetry) that does not parse, or a Pipfile.lock pip cannot
/// install exactly, is an error naming the file and the place.
pub fn check_lock(app: &Path, manager: Manager) -> Result<(), BuildpackError> {
    let Some(lockfile) = manager.lockfile() else {
        return Ok(());
    };
    let text = std::fs::read_to_string(app.join(lockfile))
        .map_err(|e| BuildpackError::new(format!("reading {lockfile}: {e}")))?;
    match manager {
        Manager::Uv | Manager::Poetry => {
            text.parse::<cascade_sdk::toml::Table>().map_err(|e| {
                BuildpackError::new(format!("{lockfile}: {e}")).hint(format!(
                    "the lock is broken: run `{} lock` and commit it",
                    manager.name()
                ))
            })?;
        }
        Manager::Pipenv => {
            crate::pipfile::requirements(&text)?;
        }
        Manager::Pip | Manager::None => {}
    }
    Ok(())
}

fn pyproject_has_dependencies(app: &Path) -> Result<bool, BuildpackError> {
    let text = std::fs::read_to_string(app.join("pyproject.toml"))
        .map_err(|e| BuildpackError::new(format!("reading pyproject.toml: {e}")))?;
    let doc: cascade_sdk::toml::Table = text
        .parse()
        .map_err(|e| BuildpackError::new(format!("pyproject.toml: {e}")))?;
    let pep621 = doc
        .get("project")
        .and_then(|p| p.get("dependencies"))
        .and_then(|d| d.as_array())
        .is_some_and(|d| !d.is_empty());
    let poetry = doc
        .get("tool")
        .and_then(|t| t.get("poetry"))
        .and_then(|p| p.get("dependencies"))
        .and_then(|d| d.as_table())
        .is_some_and(|d| d.keys().any(|k| k != "python"));
    Ok(pep621 || poetry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        dir
    }

    #[test]
    fn detects_manifests_scripts_and_a_procfile_with_py_files() {
        assert_eq!(
            detect(app(&["requirements.txt"]).path()),
            Some("requirements.txt")
        );
        assert_eq!(detect(app(&["main.py"]).path()), Some("main.py"));
        assert_eq!(detect(app(&["bot.py"]).path()), None);
        assert!(detect(app(&["bot.py", "Procfile"]).path()).is_some());
        assert_eq!(detect(app(&["index.html"]).path()), None);
        let tools_only = app(&["package.json"]);
        std::fs::write(
            tools_only.path().join("pyproject.toml"),
            "[tool.ruff]\nline-length = 100\n",
        )
        .unwrap();
        assert_eq!(
            detect(tools_only.path()),
            None,
            "a ruff config is not a Python app"
        );
        std::fs::write(
            tools_only.path().join("pyproject.toml"),
            "[project]\nname = \"a\"\n",
        )
        .unwrap();
        assert_eq!(detect(tools_only.path()), Some("pyproject.toml"));
    }

    #[test]
    fn the_manager_follows_the_lock() {
        let m = |files: &[&str]| manager(app(files).path());
        assert_eq!(m(&["pyproject.toml", "uv.lock"]).unwrap(), Manager::Uv);
        assert_eq!(
            m(&["pyproject.toml", "poetry.lock"]).unwrap(),
            Manager::Poetry
        );
        assert_eq!(m(&["Pipfile", "Pipfile.lock"]).unwrap(), Manager::Pipenv);
        assert_eq!(m(&["requirements.txt"]).unwrap(), Manager::Pip);
        assert_eq!(m(&["main.py"]).unwrap(), Manager::None);
        assert!(
            m(&["Pipfile"])
                .unwrap_err()
                .message()
                .contains("Pipfile.lock")
        );
        let dir = app(&[]);
        std::fs::write(
            dir.path().join("pyproject.toml"),
            "[project]\nname = \"a\"\ndependencies = [\"flask\"]\n",
        )
        .unwrap();
        let e = manager(dir.path()).unwrap_err();
        assert!(
            e.message().contains("no uv.lock, poetry.lock"),
            "{}",
            e.message()
        );
        std::fs::write(
            dir.path().join("pyproject.toml"),
            "[project]\nname = \"a\"\n",
        )
        .unwrap();
        assert_eq!(manager(dir.path()).unwrap(), Manager::None);
    }

    #[test]
    fn the_requirements_digest_covers_included_files_and_local_wheels() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path();
        std::fs::create_dir_all(app.join("vendor")).unwrap();
        std::fs::create_dir_all(app.join("reqs")).unwrap();
        std::fs::write(
            app.join("requirements.txt"),
            "-r reqs/base.txt\n--find-links vendor\nflask==3\n",
        )
        .unwrap();
        std::fs::write(app.join("reqs/base.txt"), "-c ../constraints.txt\nsix\n").unwrap();
        std::fs::write(app.join("constraints.txt"), "six==1.16.0\n").unwrap();
        std::fs::write(app.join("vendor/a-1-py3-none-any.whl"), "one").unwrap();
        let digest = || requirements_digest(app, "requirements.txt").unwrap();
        let first = digest();
        assert_eq!(digest(), first, "stable");
        std::fs::write(app.join("vendor/a-1-py3-none-any.whl"), "two").unwrap();
        let wheel = digest();
        assert_ne!(wheel, first, "a replaced wheel");
        std::fs::write(app.join("constraints.txt"), "six==1.17.0\n").unwrap();
        assert_ne!(digest(), wheel, "a constraint two includes deep");
        // Paths out of the app are not followed.
        std::fs::write(
            app.join("requirements.txt"),
            "-r ../../etc/passwd\n--find-links /opt/wheels\n",
        )
        .unwrap();
        assert!(requirements_digest(app, "requirements.txt").is_ok());
    }
}
