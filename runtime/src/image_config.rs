//! An app's image config on a base, built the same way by export (a new app
//! on the run image) and by rebase (an app moved onto a new run image), so
//! that a rebased image is the image a build on the new base would have
//! made, config and all.

use crate::api::EnvEntry;
use crate::labels;
use crate::oci::Digest;
use crate::oci::document::{History, ImageConfig};
use crate::run_image::RunImage;

/// What of an image config is the app's, not the base's.
#[derive(Debug, Clone, Default)]
pub struct AppPart {
    /// The app's layers' diff_ids, in order (they follow the base's).
    pub diff_ids: Vec<Digest>,
    /// The app's history steps, in order (they follow the base's).
    pub history: Vec<History>,
    /// What the app's launch layers do to the environment, in order;
    /// `None` for an image that did not record it (not built by Cascade):
    /// its `Env` is then kept as it is.
    pub launch_env: Option<Vec<EnvEntry>>,
}

impl AppPart {
    /// The app's part of `config`, an image of `base_layers` base layers
    /// built with `launch_env` (read from its label by the caller).
    pub fn of(config: &ImageConfig, base_layers: usize, launch_env: Option<Vec<EnvEntry>>) -> Self {
        let diff_ids = config
            .rootfs
            .diff_ids
            .get(base_layers..)
            .unwrap_or_default()
            .to_vec();
        // The steps from the one of the app's first layer on; those before
        // it (layers and `empty_layer` config steps) were the old base's.
        let history = config.history();
        let cut = history
            .iter()
            .enumerate()
            .filter(|(_, h)| h.made_a_layer())
            .nth(base_layers)
            .map_or(history.len(), |(i, _)| i);
        Self {
            diff_ids,
            history: history[cut..].to_vec(),
            launch_env,
        }
    }
}

/// Set `config` on `base`: its rootfs is the base's diff_ids then the
/// app's; its history the base's (a step per base layer, made at `created`,
/// when the base has none) then the app's; os, architecture and variant the
/// base's; `Env` the launch env replayed on the base's `Env` (when the app
/// recorded one); the labels a
/// base passes on (`io.buildpacks.base.*`, `io.buildpacks.rebasable`) and
/// its age (`dev.cascade.run-image`) the base's; the launch env recorded
/// (`dev.cascade.launch-env`) for the next rebase. The rest of `config` is
/// kept.
pub fn set_on_base(config: &mut ImageConfig, base: &RunImage, app: AppPart, created: Option<&str>) {
    let mut diff_ids: Vec<Digest> = base.layers.iter().map(|l| l.diff_id.clone()).collect();
    diff_ids.extend(app.diff_ids);
    config.rootfs.kind = "layers".into();
    config.rootfs.diff_ids = diff_ids;

    let mut history = base.config.history().to_vec();
    // History must match the layer count when the base had none.
    if history.is_empty() {
        history = base
            .layers
            .iter()
            .map(|_| History {
                created: created.map(str::to_owned),
                ..History::default()
            })
            .collect();
    }
    history.extend(app.history);
    config.history = Some(history);

    base.os().clone_into(&mut config.os);
    base.arch().clone_into(&mut config.architecture);
    config.variant.clone_from(&base.config.variant);

    let run = config.run_config_mut();
    if let Some(entries) = &app.launch_env {
        run.env = Some(crate::env::launch_env(base.config.env(), entries));
    }
    let mut labels = run.labels.take().unwrap_or_default();
    labels.retain(|k, _| !passed_on_by_base(k));
    labels.extend(
        base.config
            .labels()
            .iter()
            .filter(|(k, _)| passed_on_by_base(k))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    let age = base.age();
    if age == crate::run_image::BaseAge::default() {
        labels.remove(labels::RUN_IMAGE);
    } else {
        labels.insert(labels::RUN_IMAGE.into(), labels::text(&age));
    }
    if let Some(entries) = &app.launch_env {
        labels.insert(labels::LAUNCH_ENV.into(), labels::text(entries));
    }
    run.labels = Some(labels);
}

/// Labels that describe the base, not the app: they follow the base.
fn passed_on_by_base(key: &str) -> bool {
    key.starts_with(labels::BASE_PREFIX) || key == labels::REBASABLE
}

/// The launch env an image recorded (`dev.cascade.launch-env`): `None`
/// when it has no such label, an error naming the label when it is not a
/// list of env entries.
pub fn recorded_launch_env(config: &ImageConfig) -> Result<Option<Vec<EnvEntry>>, String> {
    config
        .label(labels::LAUNCH_ENV)
        .map(|text| {
            serde_json::from_str(text).map_err(|e| format!("label {}: {e}", labels::LAUNCH_ENV))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{EnvOp, EnvScope};
    use crate::oci::ImageRef;
    use crate::oci::document::RunConfig;
    use crate::oci::store::BlobHome;
    use crate::run_image::BaseLayer;

    fn base(layers: usize, env: &[&str], labels: &[(&str, &str)]) -> RunImage {
        RunImage {
            reference: ImageRef::Scratch,
            manifest_digest: None,
            config: ImageConfig {
                os: "linux".into(),
                architecture: "arm64".into(),
                variant: Some("v8".into()),
                config: Some(RunConfig {
                    env: Some(env.iter().map(|e| (*e).to_owned()).collect()),
                    labels: Some(
                        labels
                            .iter()
                            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                            .collect(),
                    ),
                    ..RunConfig::default()
                }),
                ..ImageConfig::default()
            },
            layers: (0..layers)
                .map(|i| BaseLayer {
                    media_type: crate::oci::MEDIA_LAYER_GZIP.into(),
                    digest: Digest::of(format!("blob{i}").as_bytes()),
                    size: 1,
                    diff_id: Digest::of(format!("base{i}").as_bytes()),
                })
                .collect(),
            home: BlobHome::None,
        }
    }

    fn path_entry(value: &str) -> EnvEntry {
        EnvEntry {
            name: "PATH".into(),
            value: value.into(),
            op: EnvOp::Prepend,
            delim: Some(":".into()),
            scope: EnvScope::Launch,
        }
    }

    fn app_part() -> AppPart {
        AppPart {
            diff_ids: vec![Digest::of(b"app")],
            history: vec![History {
                created_by: Some("cascade: app".into()),
                ..History::default()
            }],
            launch_env: Some(vec![path_entry("/layers/x/bin")]),
        }
    }

    #[test]
    fn an_app_on_a_base_takes_the_bases_layers_platform_env_and_labels() {
        let old = base(
            1,
            &["PATH=/old/bin"],
            &[("io.buildpacks.base.id", "old"), ("mine", "kept")],
        );
        let mut config = old.config.clone();
        config.run_config_mut().labels = Some(
            [
                ("io.buildpacks.base.id".to_owned(), "old".to_owned()),
                ("app".to_owned(), "kept".to_owned()),
            ]
            .into(),
        );
        let new = base(2, &["PATH=/new/bin"], &[("io.buildpacks.base.id", "new")]);
        set_on_base(&mut config, &new, app_part(), Some("T"));
        assert_eq!(config.rootfs.diff_ids.len(), 3);
        assert_eq!(config.rootfs.diff_ids[2], Digest::of(b"app"));
        assert_eq!(
            config.history().len(),
            3,
            "a step per base layer, then the app's"
        );
        assert_eq!(config.history()[0].created.as_deref(), Some("T"));
        assert_eq!(config.env(), ["PATH=/layers/x/bin:/new/bin"]);
        assert_eq!(config.label("io.buildpacks.base.id"), Some("new"));
        assert_eq!(config.label("app"), Some("kept"));
        let recorded = recorded_launch_env(&config).unwrap().unwrap();
        assert_eq!(Some(recorded), app_part().launch_env);
        // An image that recorded no launch env keeps its Env.
        let mut foreign = old.config.clone();
        let part = AppPart {
            launch_env: None,
            ..app_part()
        };
        set_on_base(&mut foreign, &new, part, Some("T"));
        assert_eq!(foreign.env(), ["PATH=/old/bin"]);
        assert_eq!(foreign.label(labels::LAUNCH_ENV), None);
        assert_eq!(
            (config.architecture.as_str(), config.variant.as_deref()),
            ("arm64", Some("v8"))
        );
    }

    #[test]
    fn the_app_part_is_cut_after_the_base_layers_config_steps_and_all() {
        let mut config = ImageConfig::default();
        config.rootfs.diff_ids = vec![Digest::of(b"b0"), Digest::of(b"a0"), Digest::of(b"a1")];
        let step = |by: &str, empty: bool| History {
            created_by: Some(by.into()),
            empty_layer: empty.then_some(true),
            ..History::default()
        };
        config.history = Some(vec![
            step("base layer", false),
            step("base ENV", true),
            step("app a0", false),
            step("app a1", false),
        ]);
        let part = AppPart::of(&config, 1, None);
        assert_eq!(part.diff_ids, [Digest::of(b"a0"), Digest::of(b"a1")]);
        let by: Vec<_> = part
            .history
            .iter()
            .map(|h| h.created_by.clone().unwrap())
            .collect();
        assert_eq!(by, ["app a0", "app a1"]);
        // More base layers claimed than the config has: nothing, no panic.
        assert!(AppPart::of(&config, 9, None).diff_ids.is_empty());
    }
}
