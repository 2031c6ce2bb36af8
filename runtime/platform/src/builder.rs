//! `builder.toml`, pack's schema: `[[buildpacks]]`, `[[order]]`, `[run]`,
//! `[build]`. Cascade reads the parts that mean something for wasm
//! buildpacks and says which file and field is wrong when it can't.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use cascade_engine::ids::BuildpackId;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuilderFile {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub buildpacks: Vec<BuildpackEntry>,
    #[serde(default)]
    pub order: Vec<OrderEntry>,
    #[serde(default)]
    pub run: Option<RunSection>,
    #[serde(default)]
    pub build: Option<BuildSection>,
    /// Deprecated pack schema; `run-image` is honoured.
    #[serde(default)]
    pub stack: Option<StackSection>,
    #[serde(default)]
    pub lifecycle: Option<toml::Table>,
    /// Cascade's: capabilities this builder grants (`allow = ["fetch:HOST"]`),
    /// as `cascade build --allow` does.
    #[serde(default)]
    pub capabilities: Option<CapabilitiesSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesSection {
    #[serde(default)]
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildpackEntry {
    #[serde(default)]
    pub id: Option<BuildpackId>,
    #[serde(default)]
    pub version: Option<String>,
    pub uri: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderEntry {
    pub group: Vec<GroupMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMember {
    pub id: BuildpackId,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    #[serde(default)]
    pub images: Vec<RunImageEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunImageEntry {
    pub image: String,
    #[serde(default)]
    pub mirrors: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    /// The build image exec'd tools run in (`oci:DIR[:TAG]`, relative to
    /// this file, or a registry reference).
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub env: Vec<BuildEnv>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildEnv {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackSection {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, rename = "run-image")]
    pub run_image: Option<String>,
    #[serde(default, rename = "build-image")]
    pub build_image: Option<String>,
    #[serde(default, rename = "run-image-mirrors")]
    pub run_image_mirrors: Vec<String>,
}

pub use crate::config_file::ConfigFileError as BuilderError;

/// The scheme of a `uri` naming a buildpack compiled into the binary.
pub const BUILTIN_SCHEME: &str = "builtin:";

/// Where a `[[buildpacks]]` entry's component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildpackSource {
    /// A `.wasm` file, resolved against the builder's directory.
    File(PathBuf),
    /// `builtin:ID`: a first-party buildpack compiled into the binary
    /// reading the file, so a builder can reorder or combine them with its
    /// own.
    Builtin(BuildpackId),
    /// `docker://HOST/REPO[:TAG][@DIGEST]`: a Wasm OCI artifact in a
    /// registry (pulled by the lifecycle's `distribution`), as written in
    /// the builder.
    Registry {
        uri: String,
        reference: oci_client::Reference,
    },
}

/// A builder after validation: buildpack files resolved against the
/// builder's directory, order groups checked against the declared buildpacks.
#[derive(Debug, Clone)]
pub struct Builder {
    pub path: PathBuf,
    pub buildpacks: Vec<(Option<BuildpackId>, BuildpackSource)>,
    pub order: Vec<Vec<GroupMember>>,
    pub run_image: Option<String>,
    /// `[build] image`, else the legacy `[stack] build-image`: as written
    /// (what builder.lock is keyed by), and resolved against the builder's
    /// directory.
    pub build_image: Option<(String, String)>,
    pub build_env: Vec<(String, String)>,
    /// Capabilities the builder grants.
    pub allow: Vec<String>,
    /// Fields pack's schema has that the file sets and Cascade does not
    /// use (`lifecycle`, `run.images[0].mirrors`, ...): warned about, so a
    /// builder written for pack does not seem to do what it does not.
    pub ignored: Vec<String>,
}

impl Builder {
    /// Read and check the builder at `path`; `builtins` are the ids a
    /// `builtin:ID` uri may name (what the reading binary holds).
    pub fn load(path: &Path, builtins: &[&str]) -> Result<Self, BuilderError> {
        let text = std::fs::read_to_string(path).map_err(|source| BuilderError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text, path, builtins)
    }

    pub fn parse(text: &str, path: &Path, builtins: &[&str]) -> Result<Self, BuilderError> {
        let file: BuilderFile = toml::from_str(text).map_err(|e| BuilderError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        let field = |field: String, message: String| BuilderError::Field {
            path: path.into(),
            field,
            message,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let mut buildpacks = Vec::new();
        for (i, bp) in file.buildpacks.iter().enumerate() {
            let source = source(&bp.uri, base, builtins)
                .map_err(|m| field(format!("buildpacks[{i}].uri"), m))?;
            buildpacks.push((bp.id.clone(), source));
        }
        if file.order.is_empty() {
            return Err(field(
                "order".into(),
                "at least one [[order]] group is required".into(),
            ));
        }
        let mut order = Vec::new();
        for (i, entry) in file.order.iter().enumerate() {
            if entry.group.is_empty() {
                return Err(field(
                    format!("order[{i}].group"),
                    "a group needs at least one buildpack".into(),
                ));
            }
            for (j, member) in entry.group.iter().enumerate() {
                let declared = file
                    .buildpacks
                    .iter()
                    .any(|b| b.id.as_ref().is_none_or(|id| id == &member.id));
                if !declared {
                    return Err(field(
                        format!("order[{i}].group[{j}].id"),
                        format!(
                            "buildpack {:?} is not declared in [[buildpacks]]",
                            member.id.as_str()
                        ),
                    ));
                }
            }
            order.push(entry.group.clone());
        }
        let run_image = file
            .run
            .as_ref()
            .and_then(|r| r.images.first())
            .map(|i| i.image.clone())
            .or_else(|| file.stack.as_ref().and_then(|s| s.run_image.clone()))
            .map(|image| relative_to(base, &image));
        let build_image = file
            .build
            .as_ref()
            .and_then(|b| b.image.clone())
            .or_else(|| file.stack.as_ref().and_then(|s| s.build_image.clone()))
            .map(|image| {
                let resolved = relative_to(base, &image);
                (image, resolved)
            });
        let ignored = ignored(&file);
        let build_env = file
            .build
            .map(|b| b.env.into_iter().map(|e| (e.name, e.value)).collect())
            .unwrap_or_default();
        let allow = file.capabilities.map(|c| c.allow).unwrap_or_default();
        Ok(Self {
            allow,
            path: path.into(),
            buildpacks,
            order,
            run_image,
            build_image,
            build_env,
            ignored,
        })
    }
}

/// Where a `[[buildpacks]]` `uri` points: `builtin:ID`, `docker://…`, or a
/// `.wasm` path (`file://` optional) against the builder's directory.
fn source(uri: &str, base: &Path, builtins: &[&str]) -> Result<BuildpackSource, String> {
    if let Some(reference) = uri.strip_prefix("docker://") {
        let reference = cascade_oci::reference::parse_registry(reference)
            .map_err(|e| format!("{uri:?}: not a registry reference: {e}"))?;
        return Ok(BuildpackSource::Registry {
            uri: uri.to_owned(),
            reference,
        });
    }
    if let Some(id) = uri.strip_prefix(BUILTIN_SCHEME) {
        return builtins
            .iter()
            .find(|b| **b == id)
            .and_then(|b| BuildpackId::new(*b).ok())
            .map(BuildpackSource::Builtin)
            .ok_or_else(|| {
                let have: Vec<String> = builtins
                    .iter()
                    .map(|b| format!("{BUILTIN_SCHEME}{b}"))
                    .collect();
                format!(
                    "{uri:?}: no such built-in buildpack (this binary has: {})",
                    have.join(", ")
                )
            });
    }
    let path = uri.strip_prefix("file://").unwrap_or(uri);
    if path.contains("://") {
        return Err(format!(
            "{uri:?}: use a .wasm path, file://PATH, builtin:ID or docker://HOST/REPO[:TAG][@DIGEST]"
        ));
    }
    Ok(BuildpackSource::File(base.join(path)))
}

/// A layout reference (`oci:DIR[:TAG]`) with a relative DIR, resolved
/// against the builder's directory like every other path in the file;
/// registry references as written.
fn relative_to(base: &Path, image: &str) -> String {
    match image.strip_prefix("oci:") {
        Some(rest) if !Path::new(rest).is_absolute() => {
            format!("oci:{}", base.join(rest.trim_start_matches("./")).display())
        }
        _ => image.to_owned(),
    }
}

/// What [`Builder::ignored`] lists.
fn ignored(file: &BuilderFile) -> Vec<String> {
    let mut ignored = Vec::new();
    if file.description.is_some() {
        ignored.push("description".to_owned());
    }
    if file.lifecycle.is_some() {
        ignored.push("lifecycle (Cascade is its own lifecycle)".to_owned());
    }
    for (i, image) in file.run.iter().flat_map(|r| &r.images).enumerate() {
        if i > 0 {
            ignored.push(format!("run.images[{i}] (only the first is used)"));
        } else if !image.mirrors.is_empty() {
            ignored.push("run.images[0].mirrors".to_owned());
        }
    }
    if let Some(stack) = &file.stack {
        if stack.id.is_some() {
            ignored.push("stack.id".to_owned());
        }
        if !stack.run_image_mirrors.is_empty() {
            ignored.push("stack.run-image-mirrors".to_owned());
        }
    }
    ignored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Builder, BuilderError> {
        Builder::parse(
            text,
            Path::new("/b/builder.toml"),
            &["cascade/procfile", "cascade/node", "cascade/go"],
        )
    }

    #[test]
    fn fields_set_and_not_used_are_listed_for_a_warning() {
        let order = "[[buildpacks]]\nuri = \"builtin:cascade/procfile\"\n[[order]]\n[[order.group]]\nid = \"cascade/procfile\"\n";
        assert_eq!(parse(order).unwrap().ignored, Vec::<String>::new());
        let pack = format!(
            "description = \"for pack\"\n{order}[lifecycle]\nversion = \"0.20.0\"\n[[run.images]]\nimage = \"r\"\nmirrors = [\"m\"]\n[[run.images]]\nimage = \"r2\"\n[stack]\nid = \"io.buildpacks.stacks.jammy\"\nrun-image-mirrors = [\"m\"]\n"
        );
        assert_eq!(
            parse(&pack).unwrap().ignored,
            [
                "description",
                "lifecycle (Cascade is its own lifecycle)",
                "run.images[0].mirrors",
                "run.images[1] (only the first is used)",
                "stack.id",
                "stack.run-image-mirrors",
            ]
        );
    }

    #[test]
    fn parses_packs_schema() {
        let b = parse(
            r#"
[[buildpacks]]
id = "a/b"
uri = "bp/a.wasm"
[[order]]
[[order.group]]
id = "a/b"
optional = true
[[run.images]]
image = "oci:/run:1"
"#,
        )
        .unwrap();
        assert_eq!(
            b.buildpacks[0].1,
            BuildpackSource::File("/b/bp/a.wasm".into())
        );
        assert!(b.order[0][0].optional);
        assert_eq!(b.run_image.as_deref(), Some("oci:/run:1"));
    }

    #[test]
    fn builtin_uris_and_relative_run_images() {
        let b = parse("[[buildpacks]]\nuri = \"builtin:cascade/go\"\n[[order]]\n[[order.group]]\nid = \"cascade/go\"\n[run]\nimages = [{ image = \"oci:./run:base\" }]\n").unwrap();
        assert_eq!(
            b.buildpacks[0].1,
            BuildpackSource::Builtin(BuildpackId::new("cascade/go").unwrap())
        );
        assert_eq!(b.run_image.as_deref(), Some("oci:/b/run:base"));
        assert_eq!(b.build_image, None);
        let build = |section: &str| {
            parse(&format!("[[buildpacks]]\nuri = \"builtin:cascade/go\"\n[[order]]\n[[order.group]]\nid = \"cascade/go\"\n{section}\n"))
                .unwrap()
                .build_image
        };
        assert_eq!(
            build("[build]\nimage = \"oci:build:bookworm\""),
            Some(("oci:build:bookworm".into(), "oci:/b/build:bookworm".into()))
        );
        assert_eq!(
            build("[stack]\nbuild-image = \"reg.example/build:1\""),
            Some(("reg.example/build:1".into(), "reg.example/build:1".into()))
        );
        let absolute = relative_to(Path::new("/b"), "oci:/srv/run:1");
        assert_eq!(absolute, "oci:/srv/run:1");
        assert_eq!(
            relative_to(Path::new("/b"), "reg.example/run:1"),
            "reg.example/run:1"
        );
    }

    #[test]
    fn registry_buildpacks_are_docker_uris() {
        let b = parse("[[buildpacks]]\nuri = \"docker://reg.example:5000/bp/a:1\"\n[[order]]\n[[order.group]]\nid = \"a/b\"\n").unwrap();
        let BuildpackSource::Registry { reference, .. } = &b.buildpacks[0].1 else {
            panic!("{:?}", b.buildpacks[0].1)
        };
        assert_eq!(reference.repository(), "bp/a");
        let err = parse("[[buildpacks]]\nuri = \"https://x/a.wasm\"\n[[order]]\n[[order.group]]\nid = \"a/b\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("buildpacks[0].uri") && err.contains("docker://"),
            "{err}"
        );
    }

    #[test]
    fn names_file_and_field_of_an_undeclared_buildpack() {
        let err = parse("[[buildpacks]]\nid = \"a/b\"\nuri = \"a.wasm\"\n[[order]]\n[[order.group]]\nid = \"x/y\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("builder.toml") && err.contains("order[0].group[0].id"),
            "{err}"
        );
    }

    #[test]
    fn names_the_bad_key_of_malformed_toml() {
        let err = parse("[[order]]\n[[order.group]]\nid = 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("builder.toml") && err.contains("id"), "{err}");
        let err = parse("[[order]\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
