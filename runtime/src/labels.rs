//! The labels of a Cascade image, in one module: the CNB labels that make it
//! readable and rebasable by CNB tooling (keys as lifecycle writes them) and
//! Cascade's own. Each is a typed struct written through [`text`]; the
//! lifecycle label is read back through [`Lifecycle`] only.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::oci::document::ImageConfig;
use crate::phase::BuiltBuildpack;

pub const LIFECYCLE_METADATA: &str = "io.buildpacks.lifecycle.metadata";
pub const BUILD_METADATA: &str = "io.buildpacks.build.metadata";
pub const PROJECT_METADATA: &str = "io.buildpacks.project.metadata";
/// Cascade's own: the launch env entries (JSON array of `EnvEntry`) that
/// turned the run image's `Env` into the image's, replayed on rebase.
pub const LAUNCH_ENV: &str = "dev.cascade.launch-env";
/// Cascade's own: every capability call the build made (JSON array of
/// `{buildpack, capability, detail}`: fetched URLs, exec'd command lines
/// with their exit status), so an image says what reached outside the
/// sandbox to make it.
pub const CAPABILITIES: &str = "dev.cascade.capabilities";
/// The buildpacks the app itself named (project.toml `uri`), which held
/// only grants that name them; absent when there are none.
pub const APP_BUILDPACKS: &str = "dev.cascade.app-buildpacks";
/// Cascade's own: how old the base is (`{"created", "version"}` of the run
/// image, [`crate::run_image::BaseAge`]), so a rebase onto an older base is
/// told from a patch without reading the old base again.
pub const RUN_IMAGE: &str = "dev.cascade.run-image";
/// Cascade's own: the build image exec'd tools ran in
/// ([`crate::report::BuildImageRef`]: reference, digest, hermetic), so a
/// platform can list the images built on a build image it has patched.
pub const BUILD_IMAGE: &str = "dev.cascade.build-image";
/// Cascade's own: what the app needs of its run image, the sonames it
/// loads from it and its programs the app runs
/// ([`crate::bloat::contract::Contract`]), checked before a rebase.
pub const STACK_CONTRACT: &str = "dev.cascade.stack-contract";
pub const REBASABLE: &str = "io.buildpacks.rebasable";
/// Labels a run image sets that follow it on rebase.
pub const BASE_PREFIX: &str = "io.buildpacks.base.";

/// `io.buildpacks.lifecycle.metadata`, parsed once, its shape checked: the
/// fields Cascade reads, typed, and the whole document (with the keys other
/// tools wrote) for rebase to rewrite. Rebase, inspect and fleet discovery
/// all read the label through this, so they cannot disagree about it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lifecycle {
    /// `runImage`, when the label has one.
    pub run_image: Option<RunImageMeta>,
    /// `sbom.sha`: the diff_id of the SBOM layer.
    pub sbom_sha: Option<String>,
    /// `app[].sha`: the app layers' diff_ids.
    pub app_shas: Vec<String>,
    /// `(buildpack key, layer name, sha)` of each buildpack layer with one.
    pub layers: Vec<(String, String, String)>,
    /// The label as a JSON object.
    pub document: Value,
}

/// `runImage` of the lifecycle label; a field it lacks is "".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunImageMeta {
    pub image: String,
    /// `NAME@DIGEST` (lifecycle) or the digest alone (Cascade).
    pub reference: String,
    pub top_layer: String,
}

/// A lifecycle label Cascade cannot read, and which field says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct LabelError {
    /// The field, from the label's root (`runImage.topLayer`), or `(root)`.
    pub field: String,
    pub message: String,
}

impl Lifecycle {
    /// The label of an image `config`; `Ok(None)` when it has none.
    pub fn of(config: &ImageConfig) -> Result<Option<Self>, LabelError> {
        config
            .label(LIFECYCLE_METADATA)
            .map(Self::parse)
            .transpose()
    }

    pub fn parse(text: &str) -> Result<Self, LabelError> {
        let bad = |field: &str, message: &str| LabelError {
            field: field.into(),
            message: message.into(),
        };
        let document: Value =
            serde_json::from_str(text).map_err(|e| bad("(root)", &format!("not JSON: {e}")))?;
        if !document.is_object() {
            return Err(bad("(root)", "not a JSON object"));
        }
        // Rebase rewrites these in place: each must take a key.
        for key in ["runImage", "sbom", "stack"] {
            if !(document[key].is_null() || document[key].is_object()) {
                return Err(bad(key, "not an object"));
            }
        }
        let text_at = |v: &Value, field: &str| match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(bad(field, "not a string")),
        };
        let run = &document["runImage"];
        let run_image = if run.is_object() {
            let field = |key: &str| {
                text_at(&run[key], &format!("runImage.{key}")).map(Option::unwrap_or_default)
            };
            Some(RunImageMeta {
                image: field("image")?,
                reference: field("reference")?,
                top_layer: field("topLayer")?,
            })
        } else {
            None
        };
        let sbom_sha = text_at(&document["sbom"]["sha"], "sbom.sha")?;
        let list = |key: &str| match &document[key] {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => Ok(items.clone()),
            _ => Err(bad(key, "not a list")),
        };
        let mut app_shas = Vec::new();
        for (i, app) in list("app")?.iter().enumerate() {
            if let Some(sha) = text_at(&app["sha"], &format!("app[{i}].sha"))? {
                app_shas.push(sha);
            }
        }
        let mut layers = Vec::new();
        for (i, bp) in list("buildpacks")?.iter().enumerate() {
            let key = text_at(&bp["key"], &format!("buildpacks[{i}].key"))?.unwrap_or_default();
            let named = match &bp["layers"] {
                Value::Null => continue,
                Value::Object(named) => named,
                _ => return Err(bad(&format!("buildpacks[{i}].layers"), "not an object")),
            };
            for (name, layer) in named {
                let field = format!("buildpacks[{i}].layers.{name}.sha");
                if let Some(sha) = text_at(&layer["sha"], &field)? {
                    layers.push((key.clone(), name.clone(), sha));
                }
            }
        }
        Ok(Self {
            run_image,
            sbom_sha,
            app_shas,
            layers,
            document,
        })
    }

    /// `runImage.topLayer`, "" when there is none.
    pub fn top_layer(&self) -> &str {
        self.run_image.as_ref().map_or("", |r| r.top_layer.as_str())
    }
}

/// Diff ids of what export wrote, by buildpack and layer, plus the app.
pub struct LayerShas<'a> {
    /// (buildpack index, layer name, diff_id)
    pub layers: &'a [(usize, String, String)],
    pub app: &'a str,
    /// The SBOM layer's diff_id (CNB `sbom.sha`).
    pub sbom: Option<&'a str>,
}

pub struct RunImageLabel<'a> {
    pub top_layer: &'a str,
    pub reference: &'a str,
    pub image: &'a str,
}

/// A label's value: its document as canonical JSON text.
pub fn text<T: Serialize>(value: &T) -> String {
    String::from_utf8(crate::oci::document::to_bytes(value)).expect("JSON is UTF-8")
}

/// `io.buildpacks.lifecycle.metadata` as Cascade writes it.
#[derive(Debug, Serialize)]
pub struct LifecycleLabel {
    pub app: Vec<Sha>,
    pub buildpacks: Vec<BuildpackLayers>,
    #[serde(rename = "runImage")]
    pub run_image: RunImageOut,
    pub stack: Stack,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbom: Option<Sha>,
}

#[derive(Debug, Serialize)]
pub struct Sha {
    pub sha: String,
}

/// One buildpack's layers in the lifecycle label.
#[derive(Debug, Serialize)]
pub struct BuildpackLayers {
    pub key: String,
    pub version: String,
    pub layers: BTreeMap<String, LayerMeta>,
}

#[derive(Debug, Serialize)]
pub struct LayerMeta {
    pub data: toml::Table,
    pub build: bool,
    pub launch: bool,
    pub cache: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RunImageOut {
    #[serde(rename = "topLayer")]
    pub top_layer: String,
    pub reference: String,
    pub image: String,
}

/// `stack` (platform API < 0.12 readers look here for the run image).
#[derive(Debug, Serialize)]
pub struct Stack {
    #[serde(rename = "runImage")]
    pub run_image: StackRunImage,
}

#[derive(Debug, Serialize)]
pub struct StackRunImage {
    pub image: String,
}

pub fn lifecycle_metadata(
    built: &[BuiltBuildpack],
    shas: &LayerShas<'_>,
    run: &RunImageLabel<'_>,
) -> LifecycleLabel {
    let buildpacks = built
        .iter()
        .enumerate()
        .map(|(i, bp)| BuildpackLayers {
            key: bp.runner.id().to_string(),
            version: bp.runner.manifest().buildpack.version.clone(),
            layers: bp
                .layers
                .iter()
                .map(|l| {
                    let sha = shas
                        .layers
                        .iter()
                        .find(|(b, name, _)| *b == i && name == l.layer.name.as_str())
                        .map(|(_, _, sha)| sha.clone());
                    let meta = LayerMeta {
                        data: l.layer.metadata.clone(),
                        build: l.layer.types.build,
                        launch: l.layer.types.launch,
                        cache: l.layer.types.cache,
                        sha,
                    };
                    (l.layer.name.to_string(), meta)
                })
                .collect(),
        })
        .collect();
    LifecycleLabel {
        app: vec![Sha {
            sha: shas.app.to_owned(),
        }],
        buildpacks,
        run_image: RunImageOut {
            top_layer: run.top_layer.to_owned(),
            reference: run.reference.to_owned(),
            image: run.image.to_owned(),
        },
        stack: Stack {
            run_image: StackRunImage {
                image: run.image.to_owned(),
            },
        },
        sbom: shas.sbom.map(|sha| Sha {
            sha: sha.to_owned(),
        }),
    }
}

/// `io.buildpacks.build.metadata` as Cascade writes it (no launcher: the
/// image needs none).
#[derive(Debug, Serialize)]
pub struct BuildLabel {
    pub buildpacks: Vec<BuildpackInfo>,
    pub processes: Vec<ProcessMeta>,
    pub launcher: Launcher,
}

#[derive(Debug, Serialize)]
pub struct BuildpackInfo {
    pub id: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ProcessMeta {
    #[serde(rename = "type")]
    pub kind: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub direct: bool,
    #[serde(rename = "buildpackID")]
    pub buildpack_id: String,
    #[serde(rename = "working-dir", skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Launcher {
    pub version: String,
    pub source: BTreeMap<String, String>,
}

/// `processes` are (process, buildpack id), already merged and sorted.
pub fn build_metadata(
    built: &[BuiltBuildpack],
    processes: &[(crate::api::Process, String)],
) -> BuildLabel {
    BuildLabel {
        buildpacks: built
            .iter()
            .map(|bp| {
                let info = &bp.runner.manifest().buildpack;
                BuildpackInfo {
                    id: info.id.to_string(),
                    version: info.version.clone(),
                    homepage: info.homepage.clone(),
                }
            })
            .collect(),
        processes: processes
            .iter()
            .map(|(p, id)| ProcessMeta {
                kind: p.kind.to_string(),
                command: p.command.clone(),
                args: p.args.clone(),
                direct: true,
                buildpack_id: id.clone(),
                working_dir: p.working_dir.clone(),
            })
            .collect(),
        launcher: Launcher::default(),
    }
}

/// `dev.cascade.capabilities`: one entry per capability call allowed.
#[derive(Debug, Serialize)]
pub struct CapabilityEntry<'a> {
    pub buildpack: &'a str,
    pub capability: &'a str,
    pub detail: &'a str,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn parse(v: &Value) -> Result<Lifecycle, LabelError> {
        Lifecycle::parse(&v.to_string())
    }

    #[test]
    fn the_fields_cascade_reads_are_typed_and_the_rest_is_kept() {
        let label = json!({
            "app": [{"sha": "sha256:a"}],
            "buildpacks": [{"key": "x/y", "layers": {"deps": {"sha": "sha256:d"}, "tmp": {}}}],
            "runImage": {"image": "r:1", "reference": "r@sha256:m", "topLayer": "sha256:t"},
            "sbom": {"sha": "sha256:s"},
            "bom": [{"written": "by lifecycle"}],
        });
        let l = parse(&label).unwrap();
        assert_eq!(l.top_layer(), "sha256:t");
        assert_eq!(l.run_image.as_ref().unwrap().reference, "r@sha256:m");
        assert_eq!(l.sbom_sha.as_deref(), Some("sha256:s"));
        assert_eq!(l.app_shas, ["sha256:a"]);
        assert_eq!(l.layers, [("x/y".into(), "deps".into(), "sha256:d".into())]);
        assert_eq!(l.document, label, "keys other tools wrote are kept");
        let none = parse(&json!({})).unwrap();
        assert_eq!((&none.run_image, none.top_layer()), (&None, ""));
    }

    #[test]
    fn a_label_of_the_wrong_shape_names_the_field() {
        for (label, field) in [
            (json!([]), "(root)"),
            (json!({"runImage": "x"}), "runImage"),
            (json!({"runImage": {"topLayer": 7}}), "runImage.topLayer"),
            (json!({"sbom": {"sha": []}}), "sbom.sha"),
            (json!({"stack": 1}), "stack"),
            (json!({"app": {}}), "app"),
            (json!({"app": [{"sha": 1}]}), "app[0].sha"),
            (
                json!({"buildpacks": [{"key": "k", "layers": []}]}),
                "buildpacks[0].layers",
            ),
            (
                json!({"buildpacks": [{"layers": {"l": {"sha": false}}}]}),
                "buildpacks[0].layers.l.sha",
            ),
        ] {
            assert_eq!(parse(&label).unwrap_err().field, field, "{label}");
        }
        assert_eq!(Lifecycle::parse("{").unwrap_err().field, "(root)");
        let mut config = ImageConfig::default();
        assert_eq!(Lifecycle::of(&config), Ok(None));
        config.run_config_mut().labels = Some([(LIFECYCLE_METADATA.into(), "3".into())].into());
        assert_eq!(Lifecycle::of(&config).unwrap_err().field, "(root)");
    }

    /// JSON made of the keys the label has, nested at random.
    fn label_like() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec![
            "app",
            "buildpacks",
            "runImage",
            "sbom",
            "stack",
            "sha",
            "key",
            "layers",
            "image",
            "reference",
            "topLayer",
            "x",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z:0-9]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..5).prop_map(|m| {
                    Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
            ]
        })
    }

    proptest! {
        // PROPTEST_CASES=100000 for the dedicated run; 256 by default.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Whatever the label holds, parsing it never panics; what it
        /// accepts keeps the document as it was, and each typed field is
        /// the document's.
        #[test]
        fn any_label_parses_or_names_a_field(label in label_like()) {
            match parse(&label) {
                Ok(l) => {
                    prop_assert_eq!(&l.document, &label);
                    let top = label["runImage"]["topLayer"].as_str().unwrap_or_default();
                    prop_assert_eq!(l.top_layer(), top);
                    prop_assert_eq!(l.sbom_sha.as_deref(), label["sbom"]["sha"].as_str());
                }
                Err(e) => prop_assert!(!e.field.is_empty() && !e.message.is_empty()),
            }
        }
    }
}
