//! Which package manager installs the app's modules: the one package.json
//! names in `packageManager` (corepack's field), else the one whose lock
//! file the app has: npm (`package-lock.json`, `npm-shrinkwrap.json`),
//! pnpm (`pnpm-lock.yaml`), Yarn classic (`yarn.lock` v1) or Yarn Berry
//! (`yarn.lock` v2+, `.yarnrc.yml`).
//!
//! npm comes with Node.js. The others are npm packages: the version
//! `packageManager` pins (else a pinned default) is installed with that npm
//! into a cached build-only layer and started with the installed node, so
//! the buildpack runs one program only (`exec:node`), on every Node.js
//! release (corepack left the Node.js distribution with 25). A Berry
//! project whose `.yarnrc.yml` names its own release (`yarnPath`) runs that
//! file, downloading nothing.

use std::path::{Component, Path, PathBuf};

use cascade_sdk::BuildpackError;

/// pnpm when `packageManager` does not say.
pub const PNPM: &str = "10.34.9";
/// Yarn classic when `packageManager` does not say.
pub const YARN_CLASSIC: &str = "1.22.22";
/// Yarn Berry when `packageManager` does not say.
pub const YARN_BERRY: &str = "4.18.1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Npm,
    Pnpm,
    YarnClassic,
    YarnBerry,
}

/// The package manager of an app, and how to get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    pub kind: Kind,
    /// The lock file, relative to the app.
    pub lockfile: &'static str,
    /// The npm package and version to install (`pnpm@10.34.9`), or `None`
    /// for npm itself and a Berry release the app carries.
    pub package: Option<String>,
    /// A Berry release in the app (`.yarnrc.yml` `yarnPath`).
    pub yarn_path: Option<PathBuf>,
}

impl Manager {
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Npm => "npm",
            Kind::Pnpm => "pnpm",
            Kind::YarnClassic => "yarn (classic)",
            Kind::YarnBerry => "yarn (berry)",
        }
    }

    /// The script that runs the manager, inside the package installed
    /// under `node_modules` (pnpm 11 and later start their native binary
    /// from `bin/pnpm.mjs`).
    pub fn entry(&self, node_modules: &Path) -> PathBuf {
        match self.kind {
            Kind::Npm => node_modules.join("npm/bin/npm-cli.js"),
            Kind::Pnpm => {
                let mjs = node_modules.join("pnpm/bin/pnpm.mjs");
                if mjs.is_file() {
                    mjs
                } else {
                    node_modules.join("pnpm/bin/pnpm.cjs")
                }
            }
            Kind::YarnClassic => node_modules.join("yarn/bin/yarn.js"),
            Kind::YarnBerry => node_modules.join("@yarnpkg/cli-dist/bin/yarn.js"),
        }
    }
}

/// The lock files, by manager, in the order they are looked for.
const LOCKFILES: [(&str, Kind); 4] = [
    ("pnpm-lock.yaml", Kind::Pnpm),
    ("yarn.lock", Kind::YarnClassic),
    ("npm-shrinkwrap.json", Kind::Npm),
    ("package-lock.json", Kind::Npm),
];

/// The app's manager, or `None` when it has no lock file and names none.
/// A `packageManager` whose lock file is missing is an error naming both.
pub fn detect(
    app: &Path,
    package_manager: Option<&str>,
) -> Result<Option<Manager>, BuildpackError> {
    let has = |f: &str| app.join(f).is_file();
    let found = LOCKFILES.iter().find(|(f, _)| has(f));
    let berry = |lock: &str| {
        has(".yarnrc.yml")
            || std::fs::read_to_string(app.join(lock))
                .is_ok_and(|t| !t.contains("# yarn lockfile v1") && t.contains("__metadata:"))
    };
    let Some(named) = package_manager else {
        let Some((lockfile, kind)) = found else {
            return Ok(None);
        };
        let kind = match kind {
            Kind::YarnClassic if berry(lockfile) => Kind::YarnBerry,
            k => *k,
        };
        let package = match kind {
            Kind::Npm => None,
            Kind::Pnpm => Some(format!("pnpm@{PNPM}")),
            Kind::YarnClassic => Some(format!("yarn@{YARN_CLASSIC}")),
            Kind::YarnBerry => Some(format!("@yarnpkg/cli-dist@{YARN_BERRY}")),
        };
        return finish(app, kind, lockfile, package);
    };
    let bad = |why: &str| {
        BuildpackError::new(format!("package.json: packageManager {named:?}: {why}"))
            .hint("write it as corepack does: \"pnpm@10.1.0\", \"yarn@4.5.0\" or \"npm@10.9.0\"")
    };
    let (name, rest) = named.split_once('@').ok_or_else(|| bad("no @version"))?;
    // corepack's optional "+sha512.<hex>": npm checks the registry's
    // integrity for what it installs.
    let version = rest.split('+').next().unwrap_or_default();
    let plain = |v: &str| {
        !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
    };
    if !plain(version) {
        return Err(bad("the version must be an exact release"));
    }
    let major: u64 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| bad("the version must be an exact release"))?;
    let (kind, lockfile, package) = match name {
        "npm" => (Kind::Npm, "package-lock.json", None),
        "pnpm" => (
            Kind::Pnpm,
            "pnpm-lock.yaml",
            Some(format!("pnpm@{version}")),
        ),
        "yarn" if major < 2 => (
            Kind::YarnClassic,
            "yarn.lock",
            Some(format!("yarn@{version}")),
        ),
        "yarn" => (
            Kind::YarnBerry,
            "yarn.lock",
            Some(format!("@yarnpkg/cli-dist@{version}")),
        ),
        _ => return Err(bad("Cascade installs with npm, pnpm or yarn")),
    };
    let lockfile = match (kind, found) {
        // npm's lock may be either file.
        (Kind::Npm, Some((f, Kind::Npm))) => f,
        _ => lockfile,
    };
    if !has(lockfile) {
        return Err(BuildpackError::new(format!(
            "package.json names {named} but there is no {lockfile}"
        ))
        .hint(format!(
            "run `{name} install` and commit {lockfile}: builds install exactly what it pins"
        )));
    }
    finish(app, kind, lockfile, package)
}

fn finish(
    app: &Path,
    kind: Kind,
    lockfile: &'static str,
    package: Option<String>,
) -> Result<Option<Manager>, BuildpackError> {
    let yarn_path = if kind == Kind::YarnBerry {
        yarn_path(app)?
    } else {
        None
    };
    let package = if yarn_path.is_some() { None } else { package };
    Ok(Some(Manager {
        kind,
        lockfile,
        package,
        yarn_path,
    }))
}

/// `.yarnrc.yml`'s `yarnPath`, when it names a file inside the app.
fn yarn_path(app: &Path) -> Result<Option<PathBuf>, BuildpackError> {
    let Ok(text) = std::fs::read_to_string(app.join(".yarnrc.yml")) else {
        return Ok(None);
    };
    let Some(value) = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("yarnPath:"))
    else {
        return Ok(None);
    };
    let value = value.trim().trim_matches(['"', '\'']);
    let path = Path::new(value);
    if !path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(BuildpackError::new(format!(
            ".yarnrc.yml: yarnPath {value:?}: must be a path inside the app"
        )));
    }
    if !app.join(path).is_file() {
        return Err(BuildpackError::new(format!(
            ".yarnrc.yml: yarnPath {value:?}: no such file in the app"
        ))
        .hint("commit the Yarn release it names (.yarn/releases/), or remove yarnPath"));
    }
    Ok(Some(path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn kind(files: &[(&str, &str)], named: Option<&str>) -> Result<Option<Manager>, String> {
        detect(app(files).path(), named).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn the_lock_file_says_which() {
        assert_eq!(kind(&[], None).unwrap(), None);
        let npm = kind(&[("package-lock.json", "{}")], None).unwrap().unwrap();
        assert_eq!((npm.kind, npm.package), (Kind::Npm, None));
        let pnpm = kind(&[("pnpm-lock.yaml", "")], None).unwrap().unwrap();
        assert_eq!(pnpm.package.as_deref(), Some("pnpm@10.34.9"));
        let classic = kind(&[("yarn.lock", "# yarn lockfile v1\n")], None)
            .unwrap()
            .unwrap();
        assert_eq!(classic.kind, Kind::YarnClassic);
        let berry = kind(&[("yarn.lock", "__metadata:\n  version: 8\n")], None)
            .unwrap()
            .unwrap();
        assert_eq!(berry.kind, Kind::YarnBerry);
        let rc = kind(
            &[("yarn.lock", ""), (".yarnrc.yml", "nodeLinker: pnp\n")],
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(rc.kind, Kind::YarnBerry);
    }

    #[test]
    fn package_manager_names_the_version() {
        let m = kind(&[("pnpm-lock.yaml", "")], Some("pnpm@9.1.0+sha512.abc"))
            .unwrap()
            .unwrap();
        assert_eq!(m.package.as_deref(), Some("pnpm@9.1.0"));
        let m = kind(&[("yarn.lock", "")], Some("yarn@1.22.19"))
            .unwrap()
            .unwrap();
        assert_eq!(m.kind, Kind::YarnClassic);
        let m = kind(&[("yarn.lock", "")], Some("yarn@4.5.0"))
            .unwrap()
            .unwrap();
        assert_eq!(m.package.as_deref(), Some("@yarnpkg/cli-dist@4.5.0"));
        let e = kind(&[], Some("pnpm@9.1.0")).unwrap_err();
        assert!(e.contains("no pnpm-lock.yaml"), "{e}");
        let e = kind(&[("yarn.lock", "")], Some("yarn@latest")).unwrap_err();
        assert!(e.contains("exact release"), "{e}");
        let e = kind(&[("yarn.lock", "")], Some("yarn@1.0 --registry=x")).unwrap_err();
        assert!(e.contains("exact release"), "{e}");
        let e = kind(&[], Some("bun@1.1.0")).unwrap_err();
        assert!(e.contains("npm, pnpm or yarn"), "{e}");
    }

    #[test]
    fn a_berry_release_in_the_app_is_run_instead_of_downloaded() {
        let files = [
            ("yarn.lock", "__metadata:\n"),
            (".yarnrc.yml", "yarnPath: .yarn/releases/yarn-4.5.0.cjs\n"),
            (".yarn/releases/yarn-4.5.0.cjs", "//"),
        ];
        let m = kind(&files, None).unwrap().unwrap();
        assert_eq!(m.package, None);
        assert_eq!(
            m.yarn_path.as_deref(),
            Some(Path::new(".yarn/releases/yarn-4.5.0.cjs"))
        );
        let e = kind(
            &[
                ("yarn.lock", ""),
                (".yarnrc.yml", "yarnPath: /etc/passwd\n"),
            ],
            None,
        )
        .unwrap_err();
        assert!(e.contains("inside the app"), "{e}");
    }
}
