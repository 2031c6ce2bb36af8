//! What kind of Python app this is: how its dependencies are declared, and
//! the Pipfile.lock → requirements translation that lets pip install a
//! Pipenv lock exactly (pins and hashes) without installing Pipenv.

use std::fmt::Write as _;
use std::path::Path;

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
        "pyproject.toml",
        "Pipfile.lock",
        "Pipfile",
        "uv.lock",
        "poetry.lock",
    ] {
        if has(f) {
            return Some(f);
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
            pipfile_lock_requirements(&text)?;
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

/// A Pipfile.lock's `default` packages as a pip requirements file: each
/// pin with its markers and hashes (so pip runs in hash-checking mode when
/// every entry has them). Entries pip cannot take from a lock exactly (a
/// VCS checkout, a local path, an editable) are refused by name.
pub fn pipfile_lock_requirements(text: &str) -> Result<String, BuildpackError> {
    let bad = |what: String| BuildpackError::new(format!("Pipfile.lock: {what}"));
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let default = doc
        .get("default")
        .and_then(|d| d.as_object())
        .ok_or_else(|| bad("no \"default\" section".into()))?;
    let mut out = String::from("# generated from Pipfile.lock by cascade/python\n");
    for (name, entry) in default {
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_name {
            return Err(bad(format!("default.{name:?}: not a package name")));
        }
        for unsupported in ["git", "hg", "svn", "bzr", "path", "file", "editable"] {
            if entry.get(unsupported).is_some() {
                return Err(bad(format!(
                    "default.{name}: a \"{unsupported}\" dependency cannot be installed from the lock alone"
                ))
                .hint("publish it to an index (or vendor it as a wheel) and lock again"));
            }
        }
        let version = entry
            .get("version")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad(format!("default.{name}.version: missing")))?;
        if !version.starts_with("==") || version.contains([' ', ';', '\\', '\n']) {
            return Err(bad(format!(
                "default.{name}.version {version:?}: expected an exact pin (==X)"
            )));
        }
        let _ = write!(out, "{name}{version}");
        if let Some(markers) = entry.get("markers").and_then(|m| m.as_str()) {
            if markers.contains(['\\', '\n', '#']) {
                return Err(bad(format!(
                    "default.{name}.markers: unexpected characters"
                )));
            }
            let _ = write!(out, " ; {markers}");
        }
        for hash in entry
            .get("hashes")
            .and_then(|h| h.as_array())
            .into_iter()
            .flatten()
        {
            let hash = hash
                .as_str()
                .filter(|h| {
                    h.split_once(':').is_some_and(|(alg, hex)| {
                        alg.chars().all(|c| c.is_ascii_alphanumeric())
                            && hex.chars().all(|c| c.is_ascii_hexdigit())
                    })
                })
                .ok_or_else(|| bad(format!("default.{name}.hashes: {hash} is not alg:hex")))?;
            let _ = write!(out, " --hash={hash}");
        }
        out.push('\n');
    }
    Ok(out)
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
    fn a_pipfile_lock_becomes_pinned_hashed_requirements() {
        let lock = r#"{"_meta": {}, "default": {
            "flask": {"version": "==3.0.3", "hashes": ["sha256:aa", "sha256:bb"], "markers": "python_version >= '3.8'"},
            "six": {"version": "==1.16.0"}
        }, "develop": {"pytest": {"version": "==8.0.0"}}}"#;
        let req = pipfile_lock_requirements(lock).unwrap();
        assert!(
            req.contains(
                "flask==3.0.3 ; python_version >= '3.8' --hash=sha256:aa --hash=sha256:bb\n"
            ),
            "{req}"
        );
        assert!(
            req.contains("six==1.16.0\n") && !req.contains("pytest"),
            "{req}"
        );
    }

    #[test]
    fn a_pipfile_lock_pip_cannot_honour_is_refused_by_name() {
        let e = |lock: &str| {
            pipfile_lock_requirements(lock)
                .unwrap_err()
                .message()
                .to_owned()
        };
        assert!(
            e(r#"{"default": {"lib": {"git": "https://x", "ref": "abc"}}}"#)
                .contains("default.lib: a \"git\"")
        );
        assert!(e(r#"{"default": {"lib": {"version": ">=1"}}}"#).contains("default.lib.version"));
        assert!(
            e(r#"{"default": {"lib": {"version": "==1 --index-url http://evil"}}}"#)
                .contains("exact pin")
        );
        assert!(
            e(r#"{"default": {"-r /etc/x": {"version": "==1"}}}"#).contains("not a package name")
        );
        assert!(e("{").starts_with("Pipfile.lock: "));
        assert!(e("{}").contains("no \"default\""));
    }
}
