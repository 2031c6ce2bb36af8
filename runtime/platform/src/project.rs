//! `project.toml`, the CNB project descriptor (schema 0.2): build env, a
//! buildpack group, and include/exclude patterns (gitignore syntax) for what
//! of the source tree goes into the build and the app layer.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use serde::Deserialize;

use crate::builder::GroupMember;
use cascade_engine::ids::BuildpackId;

pub const FILE_NAME: &str = "project.toml";

#[derive(Debug, Deserialize)]
struct File {
    #[serde(rename = "_", default)]
    meta: Option<toml::Table>,
    #[serde(rename = "io", default)]
    io: Option<Io>,
}

#[derive(Debug, Default, Deserialize)]
struct Io {
    #[serde(default)]
    buildpacks: Option<Buildpacks>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Buildpacks {
    #[serde(default)]
    include: Option<Vec<String>>,
    #[serde(default)]
    exclude: Option<Vec<String>>,
    #[serde(default)]
    group: Vec<GroupEntry>,
    #[serde(default)]
    build: Option<Build>,
    /// pack's builder hint and pre/post groups: accepted, not used
    /// (Cascade has its own default builder), and warned about.
    #[serde(default)]
    builder: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pre: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    post: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupEntry {
    #[serde(default)]
    id: Option<BuildpackId>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    uri: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Build {
    #[serde(default)]
    env: Vec<EnvEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvEntry {
    name: String,
    value: String,
}

pub use crate::config_file::ConfigFileError as ProjectError;

/// One buildpack of the project's group: by id (from the builder), or a
/// `.wasm` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectBuildpack {
    Id(GroupMember),
    File(PathBuf),
}

/// Which paths of the source tree the build sees.
#[derive(Debug, Clone)]
pub enum Filter {
    All,
    Include(Gitignore),
    Exclude(Gitignore),
}

impl Filter {
    /// Whether `rel` (relative to the app dir) is part of the build.
    pub fn keeps(&self, rel: &Path, is_dir: bool) -> bool {
        match self {
            Filter::All => true,
            // A directory is kept when it may hold included files.
            Filter::Include(g) => is_dir || g.matched_path_or_any_parents(rel, is_dir).is_ignore(),
            Filter::Exclude(g) => !g.matched_path_or_any_parents(rel, is_dir).is_ignore(),
        }
    }
}

impl Filter {
    /// Whether an (empty) directory is created for its own sake: always,
    /// except under `include`, where only matched ones are.
    pub fn keeps_dir_itself(&self, rel: &Path) -> bool {
        match self {
            Filter::Include(g) => g.matched_path_or_any_parents(rel, true).is_ignore(),
            _ => true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Project {
    pub filter: Filter,
    pub group: Vec<ProjectBuildpack>,
    pub env: Vec<(String, String)>,
    /// Fields of the CNB schema the file sets and Cascade does not use
    /// (`io.buildpacks.builder`, `pre`, `post`): warned about.
    pub ignored: Vec<String>,
}

impl Default for Project {
    fn default() -> Self {
        Self {
            filter: Filter::All,
            group: Vec::new(),
            env: Vec::new(),
            ignored: Vec::new(),
        }
    }
}

/// The largest `project.toml` read.
pub const MAX_BYTES: u64 = 1 << 20;

impl Project {
    /// Read `<app_dir>/project.toml`, or the defaults when there is none.
    ///
    /// It is read through a handle on the app: a `project.toml` that is a
    /// symbolic link (to a host file whose text a parse error would quote)
    /// is refused, not followed; so is anything but a regular file, and a
    /// file larger than [`MAX_BYTES`].
    pub fn load(app_dir: &Path) -> Result<Self, ProjectError> {
        let path = app_dir.join(FILE_NAME);
        let read_err = |source| ProjectError::Read {
            path: path.clone(),
            source,
        };
        let app = cascade_fs::GuestTree::open_named(app_dir).map_err(read_err)?;
        if !app.exists(FILE_NAME) {
            return Ok(Self::default());
        }
        let file = app.open_file_nofollow(FILE_NAME).map_err(read_err)?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_BYTES + 1), &mut text)
            .map_err(read_err)?;
        if text.len() as u64 > MAX_BYTES {
            return Err(read_err(std::io::Error::other(format!(
                "larger than {MAX_BYTES} bytes"
            ))));
        }
        Self::parse(&text, &path, app_dir)
    }

    pub fn parse(text: &str, path: &Path, app_dir: &Path) -> Result<Self, ProjectError> {
        let file: File = toml::from_str(text).map_err(|e| ProjectError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        let field = |field: &str, message: String| ProjectError::Field {
            path: path.into(),
            field: field.into(),
            message,
        };
        if let Some(meta) = &file.meta
            && let Some(v) = meta.get("schema-version").and_then(toml::Value::as_str)
            && v != "0.2"
        {
            return Err(field(
                "_.schema-version",
                format!("{v:?} is not supported; use \"0.2\""),
            ));
        }
        let bp = file.io.and_then(|io| io.buildpacks).unwrap_or_default();
        let patterns = |key: &str, list: &[String]| -> Result<Gitignore, ProjectError> {
            let mut b = GitignoreBuilder::new(app_dir);
            for (i, p) in list.iter().enumerate() {
                b.add_line(None, p)
                    .map_err(|e| field(&format!("io.buildpacks.{key}[{i}]"), e.to_string()))?;
            }
            b.build()
                .map_err(|e| field(&format!("io.buildpacks.{key}"), e.to_string()))
        };
        let filter = match (&bp.include, &bp.exclude) {
            (Some(_), Some(_)) => {
                return Err(field(
                    "io.buildpacks",
                    "set include or exclude, not both".into(),
                ));
            }
            (Some(list), None) => Filter::Include(patterns("include", list)?),
            (None, Some(list)) => Filter::Exclude(patterns("exclude", list)?),
            (None, None) => Filter::All,
        };
        let group = bp
            .group
            .iter()
            .enumerate()
            .map(|(i, g)| match (&g.id, &g.uri) {
                (_, Some(uri)) => Ok(ProjectBuildpack::File(
                    app_dir.join(uri.strip_prefix("file://").unwrap_or(uri)),
                )),
                (Some(id), None) => Ok(ProjectBuildpack::Id(GroupMember {
                    id: id.clone(),
                    version: g.version.clone(),
                    optional: false,
                })),
                (None, None) => Err(field(
                    &format!("io.buildpacks.group[{i}]"),
                    "needs an id or a uri".into(),
                )),
            })
            .collect::<Result<_, _>>()?;
        let env = bp
            .build
            .map(|b| b.env.into_iter().map(|e| (e.name, e.value)).collect())
            .unwrap_or_default();
        let ignored = [
            ("builder", bp.builder.is_some()),
            ("pre", bp.pre.is_some()),
            ("post", bp.post.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(key, _)| format!("io.buildpacks.{key}"))
        .collect();
        Ok(Self {
            filter,
            group,
            env,
            ignored,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Project, ProjectError> {
        Project::parse(text, Path::new("/app/project.toml"), Path::new("/app"))
    }

    #[test]
    fn pack_only_fields_are_listed_for_a_warning() {
        assert!(
            parse("[_]\nschema-version = \"0.2\"\n")
                .unwrap()
                .ignored
                .is_empty()
        );
        let p = parse("[io.buildpacks]\nbuilder = \"paketo\"\n[[io.buildpacks.pre.group]]\nid = \"a/b\"\n[[io.buildpacks.post.group]]\nid = \"c/d\"\n").unwrap();
        assert_eq!(
            p.ignored,
            [
                "io.buildpacks.builder",
                "io.buildpacks.pre",
                "io.buildpacks.post"
            ]
        );
    }

    #[test]
    fn exclude_uses_gitignore_syntax() {
        let p = parse("[_]\nschema-version = \"0.2\"\n[io.buildpacks]\nexclude = [\"*.log\", \"/target\", \"node_modules/\"]\n").unwrap();
        assert!(!p.filter.keeps(Path::new("debug.log"), false));
        assert!(!p.filter.keeps(Path::new("sub/x.log"), false));
        assert!(!p.filter.keeps(Path::new("target/a.o"), false));
        assert!(!p.filter.keeps(Path::new("web/node_modules/x.js"), false));
        assert!(p.filter.keeps(Path::new("src/target.rs"), false));
        assert!(p.filter.keeps(Path::new("Procfile"), false));
    }

    #[test]
    fn include_keeps_only_matches() {
        let p = parse("[io.buildpacks]\ninclude = [\"public/\", \"Procfile\"]\n").unwrap();
        assert!(p.filter.keeps(Path::new("public/index.html"), false));
        assert!(p.filter.keeps(Path::new("Procfile"), false));
        assert!(!p.filter.keeps(Path::new("secrets.env"), false));
    }

    #[test]
    fn group_env_and_errors_name_the_field() {
        let p = parse("[[io.buildpacks.group]]\nid = \"cascade/procfile\"\n[[io.buildpacks.group]]\nuri = \"bp/x.wasm\"\n[[io.buildpacks.build.env]]\nname = \"A\"\nvalue = \"1\"\n").unwrap();
        assert_eq!(p.group[1], ProjectBuildpack::File("/app/bp/x.wasm".into()));
        assert_eq!(p.env, [("A".to_string(), "1".to_string())]);
        let err = parse("[io.buildpacks]\ninclude = [\"a\"]\nexclude = [\"b\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("project.toml") && err.contains("io.buildpacks"),
            "{err}"
        );
        let err = parse("[[io.buildpacks.group]]\nversion = \"1\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("io.buildpacks.group[0]"), "{err}");
        let err = parse("[io.buildpacks]\nexlude = [\"b\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("exlude"), "{err}");
    }
}
