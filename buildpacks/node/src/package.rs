//! What package.json says: the Node.js range (`engines.node`), whether it
//! has dependencies, and how the app starts.

use std::path::Path;

use cascade_sdk::BuildpackError;
use serde_json::Value;

/// The parts of package.json this buildpack reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Package {
    pub engines_node: Option<String>,
    pub start: Option<String>,
    /// `scripts.build`: run after the install, so front ends build.
    pub build: Option<String>,
    pub main: Option<String>,
    /// `packageManager` (corepack's field): `pnpm@10.1.0`, `yarn@4.5.0+sha512.…`.
    pub package_manager: Option<String>,
    pub has_dependencies: bool,
    /// `devDependencies` has any: only then has a server's image anything
    /// to leave out.
    pub has_dev_dependencies: bool,
}

impl Package {
    pub fn parse(text: &str) -> Result<Self, BuildpackError> {
        let v: Value = serde_json::from_str(text).map_err(|e| {
            BuildpackError::new(format!(
                "package.json: line {}, column {}: {e}",
                e.line(),
                e.column()
            ))
        })?;
        if !v.is_object() {
            return Err(BuildpackError::new("package.json: not a JSON object"));
        }
        let string = |path: &[&str]| -> Result<Option<String>, BuildpackError> {
            let mut cur = &v;
            for key in path {
                match cur.get(key) {
                    Some(next) => cur = next,
                    None => return Ok(None),
                }
            }
            cur.as_str().map(|s| Some(s.to_owned())).ok_or_else(|| {
                BuildpackError::new(format!("package.json: {}: not a string", path.join(".")))
            })
        };
        let has = |k: &str| {
            v.get(k)
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
        };
        let has_dependencies = ["dependencies", "optionalDependencies", "devDependencies"]
            .iter()
            .any(|k| has(k));
        Ok(Self {
            engines_node: string(&["engines", "node"])?,
            start: string(&["scripts", "start"])?,
            build: string(&["scripts", "build"])?,
            main: string(&["main"])?,
            package_manager: string(&["packageManager"])?,
            has_dependencies,
            has_dev_dependencies: has("devDependencies"),
        })
    }
}

/// Files that make a directory a Node.js app without a package.json, and
/// start one that has no `start` or `main`, in order.
pub const SCRIPTS: [&str; 4] = ["server.js", "app.js", "index.js", "main.js"];

/// The `web` command: `scripts.start` (run directly when it is a plain
/// `node ARGS...`, else by `sh -c`), else `node MAIN`, else the first of
/// [`SCRIPTS`] in the app.
pub fn web_command(pkg: &Package, node: &str, app_dir: &Path) -> Option<Vec<String>> {
    if let Some(start) = &pkg.start {
        let plain = !start
            .chars()
            .any(|c| "$`'\"\\|&;<>()*?[]{}~!#\n".contains(c));
        let words: Vec<&str> = start.split_whitespace().collect();
        return Some(if plain && words.first() == Some(&"node") {
            std::iter::once(node.to_owned())
                .chain(words[1..].iter().map(|w| (*w).to_owned()))
                .collect()
        } else {
            vec!["sh".into(), "-c".into(), start.clone()]
        });
    }
    let main = pkg.main.clone().or_else(|| {
        SCRIPTS
            .into_iter()
            .find(|f| app_dir.join(f).is_file())
            .map(str::to_owned)
    })?;
    Some(vec![node.to_owned(), main])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_engines_scripts_and_dependencies() {
        let p = Package::parse(
            r#"{"engines":{"node":"20.x"},"scripts":{"start":"node server.js"},"dependencies":{"a":"1"}}"#,
        )
        .unwrap();
        assert_eq!(p.engines_node.as_deref(), Some("20.x"));
        assert!(p.has_dependencies);
        assert!(!Package::parse("{}").unwrap().has_dependencies);
        let dev = Package::parse(r#"{"devDependencies": {"tsx": "4"}}"#).unwrap();
        assert!(dev.has_dependencies && dev.has_dev_dependencies);
        assert!(!p.has_dev_dependencies);
        let e = Package::parse("{\n \"name\": }").unwrap_err();
        assert!(
            e.message().starts_with("package.json: line 2, column"),
            "{}",
            e.message()
        );
        let e = Package::parse(r#"{"engines":{"node":20}}"#).unwrap_err();
        assert!(e.message().contains("engines.node"), "{}", e.message());
    }

    #[test]
    fn web_from_start_main_or_a_known_file() {
        let dir = tempfile::tempdir().unwrap();
        let node = "/layers/cascade_node/node/bin/node";
        let start = |s: &str| Package {
            start: Some(s.into()),
            ..Package::default()
        };
        assert_eq!(
            web_command(&start("node server.js --port 1"), node, dir.path()).unwrap(),
            [node, "server.js", "--port", "1"]
        );
        assert_eq!(
            web_command(&start("node a.js && node b.js"), node, dir.path()).unwrap(),
            ["sh", "-c", "node a.js && node b.js"]
        );
        assert!(web_command(&Package::default(), node, dir.path()).is_none());
        std::fs::write(dir.path().join("index.js"), "").unwrap();
        assert_eq!(
            web_command(&Package::default(), node, dir.path()).unwrap(),
            [node, "index.js"]
        );
    }
}
